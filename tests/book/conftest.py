from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chapter_tools import seed_execution_cache

REPO = Path(__file__).resolve().parents[2]
SESSION_START = time.time()


def _results_since(start: float) -> dict[str, str]:
    """Default-parameter results files written since ``start`` (chapters run in this session)."""
    folder = REPO / "results"
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text() for p in folder.glob("*.json") if p.stat().st_mtime >= start}


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> dict:
    """Build the whole book once (warnings are errors) into a temporary folder; the chapters nbval
    executed in this session are rendered from their outputs, any other is executed by the build."""
    before = _results_since(SESSION_START)
    build_start = time.time()
    out = tmp_path_factory.mktemp("book")
    reused = seed_execution_cache(out)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"TQDM_DISABLE": "1"}
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(REPO), "--path-output", str(out), "-W", "--keep-going"],
                          capture_output=True, text=True, env=env, cwd=REPO)
    log = proc.stdout + proc.stderr
    (out / "build.log").write_text(log)
    return {"returncode": proc.returncode, "log": log, "html": out / "_build" / "html", "reused": reused,
            "results_before": before, "results_after": _results_since(build_start)}
