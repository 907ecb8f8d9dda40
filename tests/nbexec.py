"""A pytest plugin (``-p nbexec`` in pyproject.toml): nbval executes every chapter once (the chapter
test); this keeps each cell's outputs (:func:`chapter_tools.record_cell`) so that the book build renders
the chapter from them instead of executing it again (tests/book/conftest.py). A plugin rather than a
conftest hook, because conftest hooks only see items below their folder and the chapters live in
book/."""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and type(item).__name__ == "IPyNbCell":
        from chapter_tools import record_cell

        record_cell(str(item.parent.fspath), item.parent.nb, item.cell_num, item.test_outputs, report.passed)
