"""Parameter checks that fail clearly.

Every check raises ``ValueError`` with a message of the form
``<name>=<value!r> is not allowed: <what is allowed>``, so a reader who mistypes a papermill
parameter sees at once which one and what to write instead. Nothing falls back silently.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn


def fail(name: str, value: Any, allowed: str) -> NoReturn:
    """Raise the standard ``ValueError`` for parameter ``name``."""
    raise ValueError(f"{name}={value!r} is not allowed: {allowed}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``name`` quoted, with the (at most three) closest of ``known`` as a hint when any is close
    (difflib's similarity ratio at least 0.5): ``'epsilon' (did you mean 'eps'?)``, else ``'epsilon'``."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"{name!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` must be one of ``allowed`` (compared with ``==``, type-strict for strings)."""
    allowed = list(allowed)
    if not isinstance(value, str | int | float | type(None)) or value not in allowed:
        fail(name, value, f"one of {', '.join(repr(a) for a in allowed)}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be a real ``bool`` (papermill passes ``True``/``False`` literally)."""
    if not isinstance(value, bool):
        fail(name, value, "True or False")
    return value


def check_number(
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """A finite real number in ``[lo, hi]`` (``(lo, ...`` / ``..., hi)`` when open)."""
    lo_b = "(" if lo_open else "["
    hi_b = ")" if hi_open else "]"
    interval = f"a number in {lo_b}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{hi_b}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        fail(name, value, interval)
    v = float(value)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        fail(name, value, interval)
    if hi is not None and (v > hi or (hi_open and v == hi)):
        fail(name, value, interval)
    return v


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An ``int`` (not a bool, not a float) in ``[lo, hi]``."""
    rng = f"an integer in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(name, value, rng)
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        fail(name, value, rng)
    return v


def check_optional_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int | None:
    """``None`` or an integer in ``[lo, hi]``."""
    return None if value is None else check_int(name, value, lo, hi)


def check_list(
    name: str,
    value: Any,
    item_check: Any,
    *,
    min_len: int = 1,
    unique: bool = False,
) -> list[Any]:
    """A non-empty list/tuple whose items each pass ``item_check(f"{name}[i]", item)``."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        fail(name, value, f"a list with at least {min_len} item(s)")
    if len(value) < min_len:
        fail(name, value, f"a list with at least {min_len} item(s)")
    out = [item_check(f"{name}[{i}]", item) for i, item in enumerate(value)]
    if unique and len(set(map(repr, out))) != len(out):
        fail(name, value, "a list without repeated items")
    return out


def check_seeds(name: str, value: Any, min_len: int = 1) -> list[int]:
    """A list of distinct non-negative integer seeds."""
    return check_list(name, value, lambda n, v: check_int(n, v, 0, 2**31 - 1), min_len=min_len, unique=True)


def check_str(name: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        fail(name, value, "a non-empty string")
    return value
