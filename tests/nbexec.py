"""A pytest plugin (``-p nbexec`` in pyproject.toml) with two jobs. A plugin rather than a conftest
hook, because conftest hooks only see items below their folder and the chapters live in book/.

1. nbval executes every chapter once (the chapter test); this keeps each cell's outputs
   (:func:`chapter_tools.record_cell`) so that the book build renders the chapter from them instead
   of executing it again (tests/book/conftest.py).
2. Under pytest-xdist's ``--dist loadscope`` (``make test``'s first phase, Makefile), whose unit of
   work is a notebook (one kernel runs its cells in order) or a test module (its module fixtures are
   set up once), it orders what the workers are handed (:func:`_start_order`): the chapters longest
   first and those that only load chapter 4's models last (:func:`advinterp.sweeps.book.start_rank`,
   the order of ``make book`` too), then the test modules, which even out the two workers' ends.
   Chapters that run side by side and need the same model compute it once
   (:func:`advinterp.core.cache.exclusive`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the order scopes are handed out in
        items.sort(key=_start_order)  # stable: a notebook's cells and a module's tests keep their order


def _start_order(item: pytest.Item) -> tuple[int, int]:
    """Notebooks by :func:`advinterp.sweeps.book.start_rank`, then test modules (in collection order)."""
    path = Path(str(item.path))
    if path.suffix != ".ipynb":
        return (1, 0)
    from advinterp.sweeps.book import start_rank

    return (0, start_rank(path.stem))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and type(item).__name__ == "IPyNbCell":
        from chapter_tools import record_cell

        record_cell(str(item.parent.fspath), item.parent.nb, item.cell_num, item.test_outputs, report.passed)

