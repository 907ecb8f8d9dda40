"""Parameter declarations: each knob's name, allowed values, default and meaning, written once.

A :class:`Param` is declared next to the library code that uses it (``EPOCHS`` in
:mod:`advinterp.training.loop`, ``TRAIN_STEPS`` in :mod:`advinterp.training.adversarial`, ...);
the library checks its own arguments with it, and a chapter's declaration lists the same objects
(:class:`Chapter`), so a bound is never written twice. Checking a parameter loads no data and
builds no model: checks that need the data (``n_probe`` against the test split, a model against
the image size) belong to the study's ``setup``.

Every check raises the ``ValueError`` of :mod:`advinterp.core.validation`:
``<name>=<value!r> is not allowed: <what is allowed>``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import validation as v

Check = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Param:
    """One parameter: ``check(name, value)`` returns the value or raises ``ValueError``."""

    name: str
    check: Check
    default: Any
    help: str
    allowed: str = ""

    def validate(self, value: Any, name: str | None = None) -> Any:
        """``value`` if allowed, else the standard ``ValueError`` naming ``name`` (default: own name)."""
        return self.check(name or self.name, value)

    def renamed(self, name: str, *, default: Any = ..., help: str | None = None) -> Param:
        """The same check under another name (e.g. ``at_eps`` with the bounds of ``eps``)."""
        return replace(self, name=name, default=self.default if default is ... else default,
                       help=self.help if help is None else help)


def integer(name: str, default: int | None, lo: int | None, hi: int | None, help: str, *,
            optional: bool = False) -> Param:
    """An ``int`` in ``[lo, hi]`` (``None`` allowed when ``optional``)."""
    check: Check = (lambda n, x: v.check_optional_int(n, x, lo, hi)) if optional else (lambda n, x: v.check_int(n, x, lo, hi))
    return Param(name, check, default, help, f"integer in [{lo}, {hi}]" + (" or None" if optional else ""))


def number(name: str, default: float | None, lo: float | None, hi: float | None, help: str, *,
           lo_open: bool = False, hi_open: bool = False) -> Param:
    """A finite real number in ``[lo, hi]`` (open ends when asked)."""
    return Param(name, lambda n, x: v.check_number(n, x, lo, hi, lo_open=lo_open, hi_open=hi_open), default, help,
                 f"number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")


def choice(name: str, default: Any, options: Iterable[Any], help: str) -> Param:
    """One of ``options``."""
    opts = tuple(options)
    return Param(name, lambda n, x: v.check_choice(n, x, opts), default, help, " | ".join(map(str, opts)))


def flag(name: str, default: bool, help: str) -> Param:
    """``True`` or ``False``."""
    return Param(name, v.check_bool, default, help, "True | False")


def text(name: str, default: str | None, help: str, *, optional: bool = False) -> Param:
    """A non-empty string (or ``None`` when ``optional``)."""
    def check(n: str, x: Any) -> str | None:
        if optional and x is None:
            return None
        return v.check_str(n, x)

    return Param(name, check, default, help, "a non-empty string" + (" or None" if optional else ""))


def folder(name: str, default: str | None, help: str) -> Param:
    """``None`` or a string naming an existing folder."""
    def check(n: str, x: Any) -> str | None:
        if x is None:
            return None
        if not isinstance(x, str):
            v.fail(n, x, "None or a folder path (string)")
        if not Path(x).expanduser().is_dir():
            v.fail(n, x, "an existing folder (this path does not exist or is not a folder)")
        return x

    return Param(name, check, default, help, "None or an existing folder")


def listof(item: Param, name: str, default: Sequence[Any] | None, help: str, *, min_len: int = 1,
           unique: bool = True, optional: bool = False) -> Param:
    """A list whose items each pass ``item``'s check (``None`` allowed when ``optional``)."""
    def check(n: str, x: Any) -> list[Any] | None:
        if optional and x is None:
            return None
        return v.check_list(n, x, item.check, min_len=min_len, unique=unique)

    return Param(name, check, None if default is None else list(default), help, f"list of {item.allowed}")


def seeds(name: str = "seeds", default: Sequence[int] = (0, 1, 2),
          help: str = "one run per seed; headline numbers are mean and std over seeds") -> Param:
    """A list of distinct non-negative integer seeds."""
    return Param(name, v.check_seeds, list(default), help, "list of distinct integers in [0, 2**31 - 1]")


class ChapterParams(dict[str, Any]):
    """Validated parameters with attribute access (``P.eps``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err

    declared: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        """The parameters as written to the results JSON: the declared ones (derived entries such
        as a study's data are left out)."""
        return {k: self[k] for k in self.declared}


@dataclass(frozen=True)
class Chapter:
    """A chapter's parameters: the declared :class:`Param` objects (in the order of the notebook's
    ``parameters`` cell) and the checks that relate several of them (pure: no data, no model)."""

    stem: str
    params: tuple[Param, ...]
    relations: Callable[[ChapterParams], None] = field(default=lambda P: None)

    def overrides(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``values`` that differ from this chapter's declared defaults (lists and
        tuples compare alike)."""
        def same(a: Any, b: Any) -> bool:
            if isinstance(a, list | tuple) and isinstance(b, list | tuple):
                return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
            return a == b

        return {k: val for k, val in values.items() if k in self.defaults and not same(val, self.defaults[k])}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, namespace: Mapping[str, Any]) -> ChapterParams:
        """Check every declared parameter read from ``namespace`` (a notebook's ``globals()``);
        a missing declaration is a ``KeyError``, a bad value a ``ValueError`` naming it."""
        missing = [n for n in self.names if n not in namespace]
        if missing:
            raise KeyError(f"chapter {self.stem} does not define parameters {missing}")
        values = {p.name: p.validate(namespace[p.name]) for p in self.params}
        P = ChapterParams(values)
        P.declared = self.names
        self.relations(P)
        return P


def at_most(name: str, value: int, bound_name: str, bound: int) -> None:
    """``value`` (parameter ``name``) may not exceed another parameter's value ``bound``."""
    if value > bound:
        v.fail(name, value, f"at most {bound_name}={bound}")


def one_of(name: str, value: Any, list_name: str, values: Sequence[Any], why: str = "") -> None:
    """``value`` must be an element of the list parameter ``list_name``."""
    if value not in values:
        v.fail(name, value, f"one of {list_name}={list(values)}" + (f" ({why})" if why else ""))


def key_values(items: Iterable[str], option: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` strings (a command line's repeated ``--set``) as a mapping, each value read as YAML
    (``3``, ``0.1``, ``[0, 1]``, ``null``, text); an item without ``=`` or without a key raises the
    standard ``ValueError`` naming ``option``."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            v.fail(option, item, "KEY=VALUE, the value read as YAML (e.g. data_root=/abs/path, seeds=[0, 1])")
        out[key] = yaml.safe_load(value)
    return out


# ----------------------------------------------------------------------------- papermill

def injected_parameters(namespace: Mapping[str, Any]) -> list[str]:
    """The names papermill injected into this kernel (the last cell it added, whose source starts
    with the line ``# Parameters``, found in IPython's input history ``In``); none outside papermill."""
    history = namespace.get("In")
    if not isinstance(history, list):
        return []
    for source in reversed(history):
        if isinstance(source, str) and source.lstrip().splitlines()[:1] == ["# Parameters"]:
            names = []
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign):
                    names += [t.id for t in node.targets if isinstance(t, ast.Name)]
            return names
    return []


def check_unknown(chapter: Chapter, names: Sequence[str], every_chapter: Mapping[str, Sequence[str]]) -> None:
    """A name that no chapter of ``every_chapter`` declares stops the chapter with the closest declared
    names (a name another chapter declares is allowed: shared configuration files such as
    ``configs/cifar10-gpu.yaml`` pass every chapter's parameters to every chapter)."""
    declared_anywhere = {n for declared in every_chapter.values() for n in declared}
    unknown = [n for n in names if n not in chapter.names and n not in declared_anywhere]
    if unknown:
        hints = ", ".join(v.did_you_mean(n, chapter.names) for n in unknown)
        v.fail("parameters", unknown, f"names this chapter declares; unknown: {hints}. Chapter "
             f"{chapter.stem} declares: {', '.join(chapter.names)}")
