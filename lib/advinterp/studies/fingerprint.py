"""The fingerprint of the code that measures a chapter: a recorded run whose fingerprint differs from
the one the current code gives is stale, automatically (issue 44, item 2).

A chapter's fingerprint is the SHA-256 of two things:

* **what the chapter measures** - every metric of its study (timings aside) on the tiny setting
  :data:`TINY` (with the chapter's :data:`CHANGES`), run from an empty model cache, its numbers rounded
  to :data:`DIGITS` significant digits. It changes when a constant, a formula or an order of operations on
  the chapter's measurement path changes, and stays when a refactor keeps the behaviour (a renamed
  variable, a moved function, a new docstring);
* **what the tiny setting does not exercise** - the code that makes the tier's models from its data
  (:data:`MODEL_PACKAGES`: datasets and their recipes, architectures, training, attacks), as the
  digest of its statements with docstrings, comments and imports left out, in an order that does not
  depend on the module they sit in (:func:`code_digest`): editing what a CIFAR-10 recipe or loader does
  moves it, editing a docstring or moving a function between these modules does not.

``book/recorded/fingerprints.json`` holds the current code's fingerprints; ``tests/unit/test_studies.py``
fails when it no longer matches the code (``python -m advinterp.studies.fingerprint --write`` writes
it again: every record made with another fingerprint is then stale).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.cache import atomic_write_text
from ..report.results import plain
from . import STUDIES, study

#: the tiny setting every chapter's study runs on (a few dozen images, one epoch)
TINY: dict[str, Any] = {
    "device": "cpu", "epochs": 1, "max_train": 200, "n_probe": 40, "seeds": [0], "seed": 0, "attack_steps": 2,
    "k": 5, "k_show": 3, "n_show": 1, "n_reference": 40, "k_nn": 3, "train_steps": 1, "eval_steps": 2,
    "eval_restarts": 1, "at_steps": 1, "n_eval": 4, "eps_grid": [0.1], "n_mutants": 3, "lambdas": [10.0],
    "lambdas_nas": [1.0], "lambdas_jac": [0.1], "units_per_layer": 2, "finetune_epochs": 1, "aa_iters": 5,
    "aa_targets": 1, "n_robust": 20, "n_mprt": 4, "n_boot": 20, "n_permutations": 20,
    "trace_layers": ["conv2", "fc1"]}
#: per chapter, what its tiny run changes besides (chapter 3 also reads the ensemble set; chapter 6 needs a
#: classifier that makes training errors)
CHANGES: dict[str, dict[str, Any]] = {
    "03-neuron-consistency": {"attacks": ["fgsm", "illc", "ensemble"], "attack": "ensemble"},
    "06-error-detection": {"max_train": 400, "target_train_acc": 0.5},
}
#: significant digits a metric keeps in the fingerprint
DIGITS = 6
#: CPU threads of the tiny runs (a sum split over more threads may round differently)
THREADS = 1
#: the packages that make a tier's models from its data
MODEL_PACKAGES = ("data", "models", "training", "attacks")
#: modules of those packages that only measure (they make no model and no cached adversarial set): what
#: they do is in the tiny runs' metrics, so the model code's digest leaves them out
MEASURING = ("attacks/success.py",)
#: the chapters that have a fingerprint (those that measure claims), in the order their tiny runs share models
CHAPTERS = tuple(stem for stem in STUDIES if stem != "08-side-by-side")


def fingerprints_path() -> Path:
    return paths.book_dir() / "recorded" / "fingerprints.json"


def tiny_params(stem: str) -> dict[str, Any]:
    """The chapter's declared defaults with :data:`TINY` and its :data:`CHANGES`."""
    chapter = study(stem).CHAPTER
    return {**chapter.defaults, **{k: v for k, v in TINY.items() if k in chapter.names}, **CHANGES.get(stem, {})}


def measured(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics a fingerprint reads, as a results file holds them (:func:`advinterp.report.results.plain`:
    NaN as None): every one but wall-clock timings, numbers rounded to :data:`DIGITS` significant digits."""
    def rounded(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.{DIGITS}g}")
        if isinstance(v, list):
            return [rounded(x) for x in v]
        return v
    return {k: rounded(v) for k, v in sorted(plain(metrics).items()) if "time" not in k and "seconds" not in k}


def tiny_metrics(stem: str) -> dict[str, Any]:
    """The chapter's study on its tiny setting (in the current model cache): its summary metrics."""
    mod = study(stem)
    setup = mod.setup(mod.validate(tiny_params(stem)))
    return dict(mod.summarize(mod.run(setup), setup))


def _normalised(node: ast.AST) -> ast.AST:
    """``node`` without docstrings (a string constant opening a body)."""
    for child in ast.walk(node):
        body = getattr(child, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            child.body = body[1:] or [ast.Pass()]
    return node


def code_digest(packages: tuple[str, ...] = MODEL_PACKAGES, root: Path | None = None) -> str:
    """Digest of the statements of every module of ``packages`` (sub-packages of ``advinterp``) but
    :data:`MEASURING`: docstrings, comments and imports left out, each top-level statement digested on its own and the
    digests sorted, so that a function moved from one of these modules to another keeps it."""
    base = root or Path(__file__).resolve().parents[1]
    digests = []
    for package in packages:
        for path in sorted((base / package).rglob("*.py")):
            if path.relative_to(base).as_posix() in MEASURING:
                continue
            tree = _normalised(ast.parse(path.read_text()))
            for stmt in tree.body:
                if isinstance(stmt, ast.Import | ast.ImportFrom | ast.Pass):
                    continue
                digests.append(hashlib.sha256(ast.dump(stmt, annotate_fields=False).encode()).hexdigest())
    return hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()[:16]


def fingerprint(metrics: Mapping[str, Any], models: str) -> str:
    """A chapter's fingerprint from its tiny-run ``metrics`` and the model code's digest."""
    blob = json.dumps({"measured": measured(metrics), "models": models}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def current(chapters: tuple[str, ...] = CHAPTERS) -> dict[str, str]:
    """Every chapter's fingerprint under the current code: their tiny runs, one after another in one empty
    model cache (chapters 5 and 7 read chapter 4's models, as the chapters do), on :data:`THREADS` thread."""
    import torch

    models = code_digest()
    out = {}
    before, threads = os.environ.get("ADVINTERP_CACHE"), torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="advinterp-fingerprint-") as cache:
        os.environ["ADVINTERP_CACHE"] = cache
        torch.set_num_threads(THREADS)
        try:
            for stem in chapters:
                out[stem] = fingerprint(tiny_metrics(stem), models)
        finally:
            torch.set_num_threads(threads)
            if before is None:
                os.environ.pop("ADVINTERP_CACHE", None)
            else:
                os.environ["ADVINTERP_CACHE"] = before
    return out


def committed(path: Path | None = None) -> dict[str, str]:
    """The fingerprints ``book/recorded/fingerprints.json`` holds (empty when it does not exist)."""
    path = path or fingerprints_path()
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text())["fingerprints"])


def write(prints: Mapping[str, str], path: Path | None = None) -> Path:
    path = path or fingerprints_path()
    payload = {"about": "each chapter's measurement fingerprint under the code of this commit "
                        "(advinterp.studies.fingerprint); a record with another one is stale",
               "fingerprints": dict(prints)}
    atomic_write_text(json.dumps(payload, indent=1) + "\n", path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m advinterp.studies.fingerprint",
                                     description="Every chapter's measurement fingerprint under the current code.")
    parser.add_argument("--write", action="store_true", help="write book/recorded/fingerprints.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    prints = current()
    old = committed()
    for stem, value in prints.items():
        print(f"{stem}: {value}" + ("" if old.get(stem) == value else f"  (committed: {old.get(stem, 'none')})"))
    if args.write:
        print(f"wrote {write(prints)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
