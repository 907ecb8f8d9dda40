"""The book as a PDF (``make pdf``): Jupyter Book's LaTeX builder with XeLaTeX renders every page,
with the glued numbers, the figures, the scorecard table and the bibliography, and no raw MyST.
Built only where Debian's TeX packages are installed (``make pdf`` installs them; ``make test`` does
not, to keep its budget): elsewhere the test is skipped and says so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chapter_tools import REPO, seed_execution_cache

NEEDED = ("xelatex", "latexmk", "pdftotext", "pdfinfo")


@pytest.fixture(scope="session")
def built_pdf(tmp_path_factory) -> dict:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no TeX here ({', '.join(missing)} missing): `make pdf` installs Debian's TeX packages")
    out = tmp_path_factory.mktemp("pdf")
    seed_execution_cache(out)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"TQDM_DISABLE": "1"}
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(REPO), "--builder", "pdflatex", "--path-output", str(out)],
                          capture_output=True, text=True, env=env, cwd=REPO)
    pdf = out / "_build" / "latex" / "advinterp-book.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout if pdf.is_file() else ""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout if pdf.is_file() else ""
    return {"returncode": proc.returncode, "log": proc.stdout + proc.stderr, "pdf": pdf, "text": text, "info": info}


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
