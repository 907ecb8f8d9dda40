"""Each chapter's parameters and their validation (the *Parameters* contract).

A chapter's first code cell (tagged ``parameters``) assigns plain values; its second cell calls
:func:`validate` with ``globals()``. Every parameter the chapter declares in :data:`CHAPTERS` is
checked before any training, caching or writing happens; a bad value raises ``ValueError``
naming the parameter, the value and what is allowed. Parameters not declared here are an error
too, so nothing a reader can turn goes unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import data, devices, zoo
from .validation import (check_bool, check_choice, check_int, check_list, check_number, check_optional_int,
                         check_seeds, check_str, fail)  # noqa: F401  (used by later chapters' specs)


class ChapterParams(dict[str, Any]):
    """Validated parameters with attribute access; ``bundle`` holds the loaded dataset."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err

    def public(self) -> dict[str, Any]:
        """The parameters as written to the results JSON (plain values only)."""
        return {k: v for k, v in self.items() if k not in ("bundle",)}


# ----------------------------------------------------------------------------- shared pieces


def _dataset(v: dict[str, Any]) -> data.DatasetBundle:
    from .training import cached_bundle

    check_choice("dataset", v["dataset"], data.DATASETS)
    root = v.get("data_root")
    if root is not None and not isinstance(root, str):
        fail("data_root", root, "None or a folder path (string)")
    size = check_optional_int("image_size", v.get("image_size"), 8, 1024)
    if v["dataset"] == "mnist5k" and root is not None:
        fail("data_root", root, "None for dataset='mnist5k' (the embedded sample needs no files)")
    return cached_bundle(v["dataset"], root, size)


def _common(v: dict[str, Any]) -> None:
    devices.resolve_device(v["device"])
    results_dir = check_str("results_dir", v["results_dir"])
    if Path(results_dir).is_file():
        fail("results_dir", results_dir, "a folder path (this is an existing file)")


def _eps(name: str, value: Any) -> float:
    return check_number(name, value, 0.0, 1.0, lo_open=True)


def _epochs(v: dict[str, Any]) -> None:
    check_optional_int("epochs", v["epochs"], 1, 1000)


def _probe(v: dict[str, Any], b: data.DatasetBundle) -> None:
    check_int("n_probe", v["n_probe"], 1, len(b.test))  # type: ignore[arg-type]


def _model(name: str, value: Any, b: data.DatasetBundle, pretrained: bool = False) -> str:
    if not isinstance(value, str):
        fail(name, value, "a model name (string)")
    return zoo.check_model_fits(name, value, b, pretrained)


# ----------------------------------------------------------------------------- chapters


def _ch01(v: dict[str, Any]) -> dict[str, Any]:
    b = _dataset(v)
    _model("model", v["model"], b)
    check_list("ensemble", v["ensemble"], lambda n, x: _model(n, x, b), unique=True)
    _model("heldout", v["heldout"], b)
    if v["heldout"] == v["model"] or v["heldout"] in v["ensemble"]:
        fail("heldout", v["heldout"], "an architecture that is not an ensemble member (model or ensemble)")
    if v["model"] in v["ensemble"]:
        fail("ensemble", v["ensemble"], "the other members, without model (it is always a member)")
    _epochs(v)
    _eps("eps", v["eps"])
    check_list("eps_grid", v["eps_grid"], _eps, unique=True)
    check_int("attack_steps", v["attack_steps"], 1, 1000)
    _probe(v, b)
    check_int("seed", v["seed"], 0, 2**31 - 1)
    _common(v)
    return {"bundle": b}


#: chapter stem -> (declared parameter names, checker returning derived entries)
CHAPTERS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "01-adversarial-examples": (
        ("dataset", "data_root", "image_size", "model", "ensemble", "heldout", "epochs", "eps", "eps_grid",
         "attack_steps", "n_probe", "seed", "device", "results_dir"),
        _ch01,
    ),
}


def validate(chapter: str, namespace: Mapping[str, Any]) -> ChapterParams:
    """Validate chapter ``chapter``'s parameters, read from ``namespace`` (a notebook's ``globals()``)."""
    if chapter not in CHAPTERS:
        raise KeyError(f"no parameter specification for chapter {chapter!r}; known: {sorted(CHAPTERS)}")
    names, checker = CHAPTERS[chapter]
    missing = [n for n in names if n not in namespace]
    if missing:
        raise KeyError(f"chapter {chapter} does not define parameters {missing}")
    values = {n: namespace[n] for n in names}
    derived = checker(values)
    return ChapterParams({**values, **derived})

