"""Chapter 8's sweep (``configs/sweeps/side-by-side.yaml``) runs every chapter at its defaults, which
chapter 8 adopts from the chapter's own execution, and some chapters at values of their own (chapter 3
at a second eps). Those execute here, in ``make test``'s first phase, where one worker has time while
the other runs chapters 4 and 7 (Makefile: test); chapter 8, in the second phase, finds them complete
and only adopts the chapters' runs and collects the table. Under a plain ``pytest`` this module runs
after chapter 8 and finds nothing left to do."""

from __future__ import annotations

from advinterp.core import paths
from advinterp.sweeps import is_complete, load_spec, overrides_of, run_dir, run_own
from chapter_tools import REPO

SPEC = REPO / "configs" / "sweeps" / "side-by-side.yaml"


def test_the_side_by_side_sweeps_own_runs_execute_and_are_complete():
    spec = load_spec(SPEC)
    own = run_own(SPEC, progress_bar=False)
    assert own, "the sweep runs no chapter at values of its own: drop this module and its Makefile entries"
    root = paths.repo_root() / "runs" / spec["name"]
    for run in own:
        assert overrides_of(run)
        status = run_dir(root, run) / "status.json"
        assert is_complete(root, run), (run.chapter, run.params, status.read_text() if status.is_file() else "no status")
