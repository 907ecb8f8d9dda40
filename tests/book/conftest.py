"""The book's builds, shared by the tests of this folder: the HTML build (``built_book``) and, where
TeX is installed, the PDF build (``built_pdf``). Both start at once when the session needs both
(:func:`book_builds`): Sphinx and XeLaTeX each keep one core busy, so side by side they take the time
of the longer one. The chapters nbval executed in this run are rendered from their outputs
(:func:`chapter_tools.seed_execution_cache`); any other is executed by the build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from chapter_tools import seed_execution_cache

REPO = Path(__file__).resolve().parents[2]
#: what the PDF build and its tests need (Debian's TeX packages and poppler-utils; ``make pdf`` installs them)
PDF_TOOLS = ("xelatex", "latexmk", "pdftotext", "pdfinfo")


@dataclass
class Build:
    """One ``jupyter-book build`` running (or finished) into ``out``; its log in ``out/build.log``."""

    proc: subprocess.Popen
    out: Path
    reused: list[str]

    def finish(self) -> tuple[int, str]:
        """Wait for the build; its return code and log."""
        returncode = self.proc.wait()
        return returncode, (self.out / "build.log").read_text()


def start_build(out: Path, *builder: str) -> Build:
    """Start ``jupyter-book build`` of the repository into ``out`` (warnings are errors for HTML)."""
    reused = seed_execution_cache(out)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"TQDM_DISABLE": "1"}
    jb = Path(sys.executable).with_name("jupyter-book")
    args = [str(jb), "build", str(REPO), *builder, "--path-output", str(out)]
    if not builder:
        args += ["-W", "--keep-going"]
    with open(out / "build.log", "w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    return Build(proc, out, reused)


def pdf_tools_missing() -> list[str]:
    return [tool for tool in PDF_TOOLS if shutil.which(tool) is None]


@pytest.fixture(scope="session")
def book_builds(request, tmp_path_factory) -> dict[str, Build]:
    """The builds this session's tests need, started together: ``html`` always, ``pdf`` when a
    collected test uses ``built_pdf`` and TeX is installed."""
    wanted = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    builds = {"html": start_build(tmp_path_factory.mktemp("book"))}
    if "built_pdf" in wanted and not pdf_tools_missing():
        builds["pdf"] = start_build(tmp_path_factory.mktemp("pdf"), "--builder", "pdflatex")
    yield builds
    for build in builds.values():
        if build.proc.poll() is None:
            build.proc.kill()


@pytest.fixture(scope="session")
def built_book(book_builds) -> dict:
    """The whole book built once, warnings as errors, into a temporary folder."""
    build = book_builds["html"]
    returncode, log = build.finish()
    return {"returncode": returncode, "log": log, "html": build.out / "_build" / "html", "reused": build.reused}


@pytest.fixture(scope="session")
def built_pdf(book_builds) -> dict:
    """The book as a PDF, with its text and page information; skipped (and says why) without TeX."""
    missing = pdf_tools_missing()
    if missing:
        pytest.skip(f"no TeX here ({', '.join(missing)} missing): `make pdf` installs Debian's TeX packages")
    build = book_builds["pdf"]
    returncode, log = build.finish()
    pdf = build.out / "_build" / "latex" / "advinterp-book.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout if pdf.is_file() else ""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout if pdf.is_file() else ""
    return {"returncode": returncode, "log": log, "pdf": pdf, "text": text, "info": info}
