"""Tables of words (verdicts, effects, reasons) that read well in both renderings of the book: in
HTML every cell whole and left-aligned (pandas would cut long text), in the PDF a ``longtable`` with
wrapped columns that fits the page and may break across pages."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


class Table:
    """``frame`` for display (a notebook's last expression): ``_repr_html_`` for the HTML book,
    ``_repr_latex_`` for the PDF. ``widths``: each column's share of the line width (default: equal
    shares)."""

    def __init__(self, frame: pd.DataFrame, widths: Sequence[float] | None = None) -> None:
        self.frame = frame
        n = len(frame.columns)
        shares = list(widths) if widths is not None else [1.0 / n] * n
        if len(shares) != n:
            raise ValueError(f"widths={list(shares)} is not allowed: one share per column ({n})")
        total = sum(shares)
        self.widths = [s / total for s in shares]

    def _styler(self) -> "pd.io.formats.style.Styler":
        return (self.frame.style.hide(axis="index")
                .set_properties(**{"text-align": "left", "vertical-align": "top"})
                .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))

    def _repr_html_(self) -> str:
        return self._styler().to_html()

    def _repr_latex_(self) -> str:
        # the columns share 0.96 of the line, less the space between columns
        spec = "".join(f"p{{\\dimexpr {0.96 * w:.3f}\\linewidth-2\\tabcolsep\\relax}}" for w in self.widths)
        body = (self.frame.style.hide(axis="index").format(escape="latex")
                .format_index(escape="latex", axis=1)
                .to_latex(environment="longtable", column_format=spec, hrules=True))
        return "\\begingroup\\scriptsize\n" + body + "\\endgroup\n"

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)
