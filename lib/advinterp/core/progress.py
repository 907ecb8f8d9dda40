"""Progress bars for long work (``tqdm.auto``: a widget in Jupyter, text in a terminal).

``TQDM_DISABLE=1`` switches every bar off; the book build sets it, so rendered pages carry no
progress widgets.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm


def enabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")


def bar(*args: Any, min_total: int = 0, **kwargs: Any) -> tqdm:
    """``tqdm.auto.tqdm(*args, **kwargs)``, off when ``TQDM_DISABLE`` is set or when the known
    total is below ``min_total`` (no bar for work that ends at once)."""
    total = kwargs.get("total")
    if total is None and args and hasattr(args[0], "__len__"):
        total = len(args[0])
    if not enabled() or (total is not None and total < min_total):
        kwargs["disable"] = True
    return tqdm(*args, **kwargs)
