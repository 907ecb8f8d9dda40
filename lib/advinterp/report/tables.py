"""Tables of words (verdicts, effects, reasons) that read well in both renderings of the book: in
HTML every cell whole and left-aligned (pandas would cut long text); in the PDF a Markdown table,
which the book's LaTeX builder sets with wrapped columns (myst-nb prefers ``text/markdown`` there,
and ``text/html`` in HTML)."""

from __future__ import annotations

import pandas as pd


class Table:
    """``frame`` for display (a notebook's last expression): ``_repr_html_`` for the HTML book,
    ``_repr_markdown_`` for the PDF."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def _styler(self) -> "pd.io.formats.style.Styler":
        return (self.frame.style.hide(axis="index")
                .set_properties(**{"text-align": "left", "vertical-align": "top"})
                .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))

    def _repr_html_(self) -> str:
        return self._styler().to_html()

    def _repr_markdown_(self) -> str:
        def cell(value: object) -> str:
            return " ".join(str(value).split()).replace("|", "\\|")

        head = "| " + " | ".join(cell(c) for c in self.frame.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.frame.columns) + "|"
        rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.frame.itertuples(index=False)]
        return "\n".join([head, rule, *rows]) + "\n"

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)
