"""Each chapter executes once per ``make test``: the book build renders what nbval executed (its
outputs put in Jupyter Book's execution cache) instead of executing the chapter again.

Determinism is checked more cheaply and more strictly than by a second execution of the book:
``tests/unit/test_studies.py`` runs every chapter's study twice on a tiny setting, each time from an
empty model cache (so training, attacks and every metric are recomputed), and compares the metrics.
"""

from __future__ import annotations

import pytest


def test_the_build_renders_the_chapters_nbval_executed(built_book):
    reused = built_book["reused"]
    if not reused:
        pytest.skip("no chapter ran under nbval in this session (run the whole suite: make test)")
    assert built_book["log"].count("Using cached notebook") >= len(reused), "the build executed a chapter again"
    executed = [line for line in built_book["log"].splitlines() if "Executing notebook" in line]
    assert len(executed) <= 1 + max(0, 10 - len(reused)), executed
