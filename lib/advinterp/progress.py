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


def bar(*args: Any, **kwargs: Any) -> tqdm:
    """``tqdm.auto.tqdm(*args, **kwargs)``, off when ``TQDM_DISABLE`` is set."""
    if not enabled():
        kwargs["disable"] = True
    return tqdm(*args, **kwargs)
