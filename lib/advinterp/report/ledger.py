"""The ledger of smallest effects of interest: every delta each effect has had, with its reason, the
commit that declared it and the date, appended and never edited (``delta_ledger.json`` beside this
module; ``tests/unit/test_ledger.py`` fails when an entry is edited or removed, reading the file's
history in git, and when a study's declared effect differs from its last entry).

A verdict is decided at the effect's current delta; :func:`earlier` gives the deltas it had before,
so that a page can say when an earlier delta would have decided the claim otherwise (a reader then
sees that a threshold moved after the numbers came in, and which way the verdict went with it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: the ledger, in the order its entries were appended
LEDGER = Path(__file__).with_name("delta_ledger.json")


@dataclass(frozen=True)
class Declaration:
    """One declaration of an effect's smallest effect of interest."""

    effect: str
    delta: float
    reason: str
    commit: str
    date: str
    #: for a re-declaration: why the delta changed
    why_changed: str = ""

    def words(self) -> str:
        """``δ = 0.01 (declared in 6838ddf, 2026-11-25)``."""
        return f"δ = {self.delta:g} (declared in {self.commit}, {self.date})"


@lru_cache(maxsize=1)
def entries() -> tuple[Declaration, ...]:
    """Every declaration, oldest first."""
    return tuple(Declaration(**e) for e in json.loads(LEDGER.read_text()))


def history(effect: str) -> list[Declaration]:
    """The declarations of one effect (by its results-file name), oldest first."""
    return [d for d in entries() if d.effect == effect]


def current(effect: str) -> Declaration | None:
    """The effect's last declaration (None when it was never declared)."""
    found = history(effect)
    return found[-1] if found else None


def earlier(effect: str) -> list[Declaration]:
    """The declarations before the current one whose delta differs from the current delta."""
    found = history(effect)
    return [d for d in found[:-1] if d.delta != found[-1].delta]
