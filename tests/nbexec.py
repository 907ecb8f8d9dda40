"""A pytest plugin (``-p nbexec`` in pyproject.toml) with two jobs. A plugin rather than a conftest
hook, because conftest hooks only see items below their folder and the chapters live in book/.

1. nbval executes every chapter once (the chapter test); this keeps each cell's outputs
   (:func:`chapter_tools.record_cell`) so that the book build renders the chapter from them instead
   of executing it again (tests/book/conftest.py).
2. Under pytest-xdist's ``--dist loadgroup`` (``make test``'s first phase, Makefile), it says which
   tests must run one after another on one worker (:func:`group_of`): a notebook's cells (one kernel runs them in order),
   a test module's tests (its module fixtures are set up once), and chapter 4 with chapter 7, the other
   long chapter, which reuses chapter 4's fine-tuned models (:data:`SHARES_CHAPTER_4`): it runs after
   chapter 4 on its worker, since the two long chapters side by side took about 13 % longer than one
   after another (Makefile: test). That group goes first (it is the longest), then the other notebooks,
   then the test modules, and last the short chapters that also load chapter 4's models
   (:data:`AFTER_CHAPTER_4`: 5), handed to whichever worker frees first: by then chapter 4 has made its
   models (were it not, the chapter would wait for them: two processes wanting one model compute it once
   in any order, advinterp.core.cache.exclusive), and the worker that holds chapters 4 and 7 no longer
   runs chapter 5 after them when the other worker has time for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: chapters whose study reuses chapter 4's fine-tuned variants (advinterp.studies.variants, by cache
#: key), in the order they run; tests/unit/test_suite_phases.py checks the list against the studies
SHARES_CHAPTER_4 = ("04-consistent-loss", "07-sensitivity-regularization")
CHAPTER_4_GROUP = "chapter-4-models"
#: short chapters that reuse chapter 4's models, each a group of its own handed out last
AFTER_CHAPTER_4 = ("05-tracing-and-detection",)


def group_of(nodeid: str) -> str:
    """The group of a collected test, from its node id: a notebook's or a module's own, chapter 4's
    for :data:`SHARES_CHAPTER_4`."""
    path = Path(nodeid.split("::")[0])
    if path.suffix == ".ipynb":
        return CHAPTER_4_GROUP if path.stem in SHARES_CHAPTER_4 else f"notebook {path}"
    return f"module {path}"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup``: one group (:func:`group_of`) at a time per worker, groups handed out in
    collection order with ``--no-loadscope-reorder``. (pytest-xdist's own loadgroup reads
    ``xdist_group`` marks by renaming node ids, which pytest 9 no longer allows.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the order groups are handed out in
        items.sort(key=_start_order)  # stable: a notebook's cells and a module's tests keep their order


def _start_order(item: pytest.Item) -> tuple[int, int]:
    """Longest work first, so that short modules fill the end of both workers: chapter 4's group (in
    :data:`SHARES_CHAPTER_4`'s order), then the other notebooks, then test modules, then
    :data:`AFTER_CHAPTER_4`."""
    path = Path(str(item.path))
    if path.suffix != ".ipynb":
        return (2, 0)
    if path.stem in SHARES_CHAPTER_4:
        return (0, SHARES_CHAPTER_4.index(path.stem))
    if path.stem in AFTER_CHAPTER_4:
        return (3, AFTER_CHAPTER_4.index(path.stem))
    return (1, 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and type(item).__name__ == "IPyNbCell":
        from chapter_tools import record_cell

        record_cell(str(item.parent.fspath), item.parent.nb, item.cell_num, item.test_outputs, report.passed)

