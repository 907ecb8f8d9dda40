"""Where the book keeps data, caches and results.

Everything large lives under the repository's ``data/`` folder (git-ignored), so a clone is
self-contained. Two environment variables override the defaults:

* ``ADVINTERP_DATA``  - root of downloaded datasets (default ``<repo>/data``)
* ``ADVINTERP_CACHE`` - trained models and adversarial datasets (default ``<repo>/data/cache``)
"""

from __future__ import annotations

import os
from pathlib import Path

#: ``lib/advinterp`` (this module lives in ``lib/advinterp/core``)
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def repo_root() -> Path:
    """The repository root when the package runs from a checkout, else the working directory.

    The library is installed in editable mode from ``lib/``, so ``lib/advinterp/../..`` is the
    checkout; a checkout is recognised by its ``_toc.yml``.
    """
    candidate = _PACKAGE_DIR.parent.parent
    if (candidate / "_toc.yml").is_file():
        return candidate
    return Path.cwd()


def book_dir() -> Path:
    """Where the chapter notebooks live (``<repo>/book``)."""
    return repo_root() / "book"


def data_dir() -> Path:
    """Root of downloaded datasets and small derived data (``$ADVINTERP_DATA`` or ``<repo>/data``)."""
    env = os.environ.get("ADVINTERP_DATA")
    return Path(env) if env else repo_root() / "data"


def cache_dir() -> Path:
    """Root of trained models and cached tensors (``$ADVINTERP_CACHE`` or ``<repo>/data/cache``)."""
    env = os.environ.get("ADVINTERP_CACHE")
    return Path(env) if env else data_dir() / "cache"


def package_data(name: str) -> Path:
    """A small file shipped in the repository's ``data/`` folder (class-affinity matrices...)."""
    path = repo_root() / "data" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: it is part of the repository (data/{name}); "
            "restore it with `git checkout -- data/`."
        )
    return path


def resolve_results_dir(results_dir: str | os.PathLike[str]) -> Path:
    """A chapter's ``results_dir`` parameter: relative paths are taken from the repository root."""
    path = Path(results_dir)
    return path if path.is_absolute() else repo_root() / path
