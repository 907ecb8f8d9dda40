"""Tables of words (verdicts, effects, reasons) that read well in both renderings of the book: in
HTML every cell whole and left-aligned (pandas would cut long text); in the PDF a MyST
``list-table`` (myst-nb prefers ``text/markdown`` there, and ``text/html`` in HTML) with column
widths from the text each column holds, set as a ``longtable`` in small type, so a table keeps to
the text block, wraps its cells ragged-right and breaks across pages instead of running into the
footer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


class Table:
    """``frame`` for display (a notebook's last expression): ``_repr_html_`` for the HTML book,
    ``_repr_markdown_`` for the PDF."""

    def __init__(self, frame: pd.DataFrame, colors: Mapping[str, str] | None = None,
                 colored: Sequence[str] = (), font_size: str | None = None) -> None:
        self.frame = frame
        #: a CSS font size for the whole table (HTML), e.g. ``"0.85em"`` for a wide one
        self.font_size = font_size
        #: a cell of a ``colored`` column that starts with a key of ``colors`` gets that text colour (HTML)
        self.colors = dict(colors or {})
        self.colored = [c for c in colored if c in frame.columns]

    def _color(self, value: object) -> str:
        text = str(value)
        hit = max((k for k in self.colors if text.startswith(k)), key=len, default=None)
        return f"color: {self.colors[hit]}; font-weight: 600" if hit else ""

    def _styler(self) -> "pd.io.formats.style.Styler":
        styler = (self.frame.style.hide(axis="index")
                  .set_properties(**{"text-align": "left", "vertical-align": "top"})
                  .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))
        if self.colors and self.colored:
            styler = styler.map(self._color, subset=self.colored)
        if self.font_size:
            styler = styler.set_table_attributes(f'style="font-size: {self.font_size}"')
        return styler

    def _repr_html_(self) -> str:
        return self._styler().to_html()

    def _repr_markdown_(self) -> str:
        def cell(value: object) -> str:
            return " ".join(str(value).split()) or " "

        lines = ["```{raw} latex", "\\begingroup\\footnotesize", "```", "",
                 "```{list-table}", ":header-rows: 1", ":class: longtable",
                 f":widths: {' '.join(str(w) for w in column_widths(self.frame))}", ""]
        for row in [list(self.frame.columns), *self.frame.itertuples(index=False)]:
            lines += [f"{'*' if i == 0 else ' '} - {cell(v)}" for i, v in enumerate(row)]
        lines += ["```", "", "```{raw} latex", "\\endgroup", "```", ""]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def column_widths(frame: pd.DataFrame, total: int = 100) -> list[int]:
    """Relative column widths for the PDF: each column's longest text, damped (a long column wraps
    onto more lines rather than starving the others) and kept above a few characters."""
    longest = [max([len(str(c)), *(len(" ".join(str(v).split())) for v in frame[c])]) for c in frame.columns]
    weights = [min(max(n, 12), 120) ** 0.6 for n in longest]
    return [max(1, round(total * w / sum(weights))) for w in weights]
