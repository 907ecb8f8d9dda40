"""The book as a PDF (``make pdf``): Jupyter Book's LaTeX builder with XeLaTeX renders every page,
with the glued numbers, the figures, the scorecard table and the bibliography, and no raw MyST.
Built only where Debian's TeX packages are installed (``make pdf`` installs them; ``make test`` does
not, to keep its budget): elsewhere the test is skipped and says so."""

from __future__ import annotations

import subprocess


def test_the_pdf_builds(built_pdf):
    assert built_pdf["returncode"] == 0 and built_pdf["pdf"].is_file(), built_pdf["log"][-3000:]
    pages = int(next(line.split()[-1] for line in built_pdf["info"].splitlines() if line.startswith("Pages:")))
    assert pages >= 40, pages


def test_the_pdf_carries_the_book_and_no_raw_myst(built_pdf):
    text = built_pdf["text"]
    text = text[:text.find("API REFERENCE")]  # the API chapter (its title page) quotes MyST roles in docstrings
    for heading in ("Scorecard", "How a verdict is decided", "What we found", "At scale: CIFAR-10"):
        assert heading in text, heading
    assert "Dong" in text and "2017" in text, "the bibliography is missing"
    for raw in ("{glue:", "```", ":::", "{numref}", "{cite}", "{doc}"):
        assert raw not in text, raw
    assert any(v in text for v in ("holds", "opposite", "negligible", "inconclusive")), "the scorecard's verdicts are missing"


def _textblock(log: str) -> dict[str, float]:
    """The text block the LaTeX run reports (``_config.yml``'s preamble types it out), in points (TeX
    wraps log lines at 79 characters: the line is joined first)."""
    import re

    start = log.find("advinterp-textblock:")
    assert start >= 0, "the LaTeX log lacks the text block line (_config.yml's preamble)"
    chunk = log[start:start + 800].replace("\n", "")
    values = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)pt", chunk[:chunk.find("paperheight") + 30])}
    assert {"odd", "even", "width", "top", "height", "footskip"} <= set(values), values
    return values


def _pages_with(text_pages: list[str], needle: str) -> list[int]:
    return [i + 1 for i, page in enumerate(text_pages) if needle in page]


#: how far (points) ink may stray outside the text block (antialiasing; the frames Sphinx draws around
#: code cells and admonitions sit about 4 pt outside it by design)
SLACK = 5.0


def test_nothing_is_drawn_outside_the_text_block(built_pdf, tmp_path):
    """On the scorecard's pages and on each chapter's "At scale" page (its widest table), every mark
    lies within the text block's width, and nothing of the body reaches into the footer's band."""
    import numpy as np
    from PIL import Image

    pdf = built_pdf["pdf"]
    block = _textblock(pdf.with_suffix(".log").read_text(errors="replace"))
    pages = built_pdf["text"].split("\f")
    chosen = set(_pages_with(pages, "SCORECARD") + _pages_with(pages, "Scorecard")[:3])
    for page in _pages_with(pages, "At scale: CIFAR-10"):
        chosen.add(page)
    assert len(chosen) >= 8, sorted(chosen)
    dpi = 50
    scale = dpi / 72.0
    problems = []
    for page in sorted(chosen):
        stem = tmp_path / f"p{page}"
        subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-gray", "-png",
                        "-singlefile", str(pdf), str(stem)], check=True)
        ink = np.asarray(Image.open(f"{stem}.png").convert("L")) < 200
        left = block["odd"] if page % 2 else block["even"]
        x0, x1 = (left - SLACK) * scale, (left + block["width"] + SLACK) * scale
        y0, y1 = block["top"] * scale, (block["top"] + block["height"]) * scale
        body = ink[int(y0):int(y1)]
        cols = np.flatnonzero(body.any(axis=0))
        if cols.size and (cols[0] < x0 or cols[-1] > x1):
            problems.append(f"page {page}: ink from x={cols[0] / scale:.0f}pt to {cols[-1] / scale:.0f}pt, "
                            f"text block {left:.0f}-{left + block['width']:.0f}pt")
        # the band between the text block and the footer line is empty unless the body ran into it
        band = ink[int(y1 + SLACK * scale):int((block["top"] + block["height"] + block["footskip"] / 2) * scale)]
        if band.any():
            problems.append(f"page {page}: the body runs below the text block into the footer")
    assert not problems, "\n".join(problems)


def test_the_pdf_log_has_no_wide_overfull_box(built_pdf):
    """No line of a table or paragraph sticks out of the text block by more than a few points."""
    import re

    log = built_pdf["pdf"].with_suffix(".log").read_text(errors="replace")
    wide = [float(x) for x in re.findall(r"Overfull \\hbox \(([0-9.]+)pt too wide\)", log)]
    assert all(w <= 10.0 for w in wide), sorted(wide)[-5:]
