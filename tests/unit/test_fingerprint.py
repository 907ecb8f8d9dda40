"""The measurement fingerprint (issue 44, item 2): it moves when a chapter's measurement changes and stays
when a refactor keeps the behaviour (a docstring, a function moved between modules)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from advinterp.attacks import linf
from advinterp.studies import fingerprint as F


def _package(root, modules: dict[str, str]):
    pkg = root / "data"
    pkg.mkdir(parents=True, exist_ok=True)
    for old in pkg.glob("*.py"):
        old.unlink()
    for name, source in modules.items():
        (pkg / f"{name}.py").write_text(textwrap.dedent(source))
    return F.code_digest(("data",), root)


A = '''
    """Module a."""
    import math

    STEP = 2.5


    def step(eps, steps):
        """The step."""
        return STEP * eps / steps
'''
B = '''
    def other(x):
        return x + 1
'''


def test_the_model_code_digest_ignores_docstrings_comments_imports_and_moves(tmp_path):
    base = _package(tmp_path, {"a": A, "b": B})
    redoc = A.replace('"""The step."""', '"""The step of the attack, documented anew."""  # and a comment')
    assert _package(tmp_path, {"a": redoc, "b": B}) == base
    moved = A.replace("import math\n", "") + B            # 'other' moved from b into a; b emptied
    assert _package(tmp_path, {"a": moved, "b": "import math\n"}) == base
    assert _package(tmp_path, {"a": A.replace("2.5", "2.0"), "b": B}) != base


def test_a_rounding_difference_keeps_it_and_a_change_of_a_metric_moves_it():
    metrics = {"a_per_seed": [0.123456789], "b": 3, "c": float("nan"), "seconds_x": 12.0, "epoch_time": 1.0}
    base = F.fingerprint(metrics, "m")
    assert F.fingerprint({**metrics, "a_per_seed": [0.1234567891]}, "m") == base      # 1e-9: float noise
    assert F.fingerprint({**metrics, "seconds_x": 99.0, "epoch_time": 3.0}, "m") == base  # timings
    assert F.fingerprint({**metrics, "a_per_seed": [0.12346]}, "m") != base
    assert F.fingerprint(metrics, "n") != base


@pytest.mark.slow
def test_a_constant_on_chapter_1s_measurement_path_moves_its_fingerprint(tmp_path, monkeypatch):
    """Madry et al.'s step of 2.5 eps / steps changed to 2.0: chapter 1's tiny run measures something else."""
    stem = "01-adversarial-examples"

    def run(folder: str) -> str:
        monkeypatch.setenv("ADVINTERP_CACHE", str(tmp_path / folder))
        return F.fingerprint(F.tiny_metrics(stem), "m")

    before = run("a")
    monkeypatch.setattr(linf.default_step_size, "__doc__", "a docstring changed, nothing else")
    assert run("b") == before
    monkeypatch.setattr(linf, "default_step_size", lambda eps, steps: 2.0 * eps / steps)
    assert run("c") != before


def test_the_measuring_modules_exist_and_make_nothing_that_is_cached():
    """A module the model code's digest leaves out (:data:`F.MEASURING`) only measures: it makes no model
    and no cached adversarial set (what it does is in the tiny runs' metrics)."""
    base = Path(F.__file__).resolve().parents[1]
    for name in F.MEASURING:
        source = (base / name).read_text()
        assert name.split("/")[0] in F.MODEL_PACKAGES
        for made in ("cache.", "cached_", "standard_model", "train("):
            assert made not in source, (name, made)
