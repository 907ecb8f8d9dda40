"""Content-addressed, atomic, verified storage of tensors (the *Nothing lost* contract).

* Keys are SHA-256 digests of a JSON description of everything that determines the content
  (:func:`key_of`), including a digest of the code that produced it (:func:`code_version`).
* A file is serialised in memory, prefixed with the SHA-256 of its payload, written to a
  temporary name in the same folder, flushed to disk and renamed (:func:`atomic_save`): one
  rename, so a run killed during a save leaves the previous file, never half a file.
* A file whose payload does not match its recorded digest (truncated, tampered with) is
  reported, removed and recomputed, never loaded (:func:`verified_load`).
* Payloads are read with ``torch.load(..., weights_only=True)``: a file carrying pickled code
  is refused, reported and recomputed too.
* Processes sharing a cache (``make test``'s two workers, a sweep's concurrent runs) compute each
  entry once (:func:`exclusive`): the second process to want it waits for the first and loads it.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a payload is saved or loaded: a results file needs no torch
    import torch

from . import paths

#: First line of every cache file; the second line is the payload's SHA-256 in hex.
MAGIC = b"advinterp-cache-v1\n"


class CorruptCacheWarning(UserWarning):
    """A cached file failed verification and will be recomputed."""


def key_of(description: Any, length: int = 20) -> str:
    """A stable hex digest of a JSON-serialisable description (dict keys sorted)."""
    blob = json.dumps(description, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def code_version(*modules: ModuleType) -> str:
    """Digest of the source files of ``modules``: editing the code that determines a cached
    object invalidates it."""
    h = hashlib.sha256()
    for module in sorted(modules, key=lambda m: m.__name__):
        path = getattr(module, "__file__", None)
        if path is None:  # pragma: no cover - builtins have no source
            raise ValueError(f"module {module.__name__} has no source file to version")
        h.update(module.__name__.encode())
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def library_version() -> str:
    """Digest of every source file of the ``advinterp`` package: results made by another version
    of the library are not reused as if they were current (see :mod:`advinterp.sweeps`)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def notebook_digest(chapter: str, notebooks: Path | None = None) -> str:
    """Digest of a chapter notebook's source (``<notebooks>/<chapter>.ipynb``, by default in
    :func:`advinterp.core.paths.book_dir`): results made with an older version of the notebook are
    not reused as if they were current."""
    return hashlib.sha256(((notebooks or paths.book_dir()) / f"{chapter}.ipynb").read_bytes()).hexdigest()[:16]


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """Save ``obj`` (tensors, dicts, lists, numbers, strings) to ``path`` atomically, with its digest."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    _atomic_write(Path(path), MAGIC + digest + b"\n" + payload)


def atomic_write_text(text: str, path: Path) -> None:
    """Write a text file atomically (results JSON, metadata)."""
    _atomic_write(Path(path), text.encode())


def verified_load(path: Path, map_location: str | torch.device = "cpu") -> Any | None:
    """Load a file written by :func:`atomic_save`; ``None`` if absent.

    A file with a bad header or digest, or one that ``weights_only=True`` refuses, is reported
    with a :class:`CorruptCacheWarning`, removed, and ``None`` is returned so the caller
    recomputes it.
    """
    path = Path(path)
    if not path.exists():
        return None
    blob = path.read_bytes()
    problem = None
    header_len = len(MAGIC) + 65
    if not blob.startswith(MAGIC) or len(blob) < header_len or blob[header_len - 1:header_len] != b"\n":
        problem = "it lacks the cache header (not written by advinterp, or truncated)"
    elif hashlib.sha256(blob[header_len:]).hexdigest().encode() != blob[len(MAGIC):header_len - 1]:
        problem = "its SHA-256 does not match the recorded one (truncated or modified)"
    if problem is None:
        import torch

        try:
            return torch.load(io.BytesIO(blob[header_len:]), map_location=map_location, weights_only=True)
        except Exception as err:  # UnpicklingError for pickled code, RuntimeError for a bad archive...
            problem = f"torch.load(weights_only=True) refused it ({type(err).__name__}: {str(err)[:200]})"
    warnings.warn(f"cached file {path} is not usable: {problem}; it is removed and will be recomputed",
                  CorruptCacheWarning, stacklevel=2)
    discard(path)
    return None


def discard(path: Path) -> None:
    """Remove a cached file (no error when absent)."""
    Path(path).unlink(missing_ok=True)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Cache a dict of tensors (moved to CPU)."""
    atomic_save({k: v.detach().cpu() for k, v in tensors.items()}, path)


def load_tensors(path: Path) -> dict[str, torch.Tensor] | None:
    """Load a dict saved by :func:`save_tensors`, or ``None`` if absent or corrupt."""
    return verified_load(path)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold this machine's lock on the cache entry ``path`` while checking for it and computing it,
    so that two processes sharing the cache compute it once: the second waits, then finds it. An
    advisory ``flock`` on a file outside the cache (the operating system's temporary folder, so the
    cache holds only results), released by the kernel if its holder dies (the waiter then resumes
    from the holder's checkpoint)."""
    folder = Path(tempfile.gettempdir()) / "advinterp-locks"
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:32]
    with open(folder / f"{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_tensors(path: Path, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Return the tensors at ``path``, computing and saving them first when absent (once across
    processes: :func:`exclusive`)."""
    with exclusive(path):
        found = load_tensors(path)
        if found is not None:
            return found
        result = compute()
        save_tensors(path, result)
        return result


def memoized(kind: str, description: Any, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Tensors computed once per ``description`` (which must name everything that determines them,
    code version included) and cached under ``<cache>/<kind>/``: reruns and book builds reuse
    expensive analyses (conductance, mutants, ...)."""
    return cached_tensors(paths.cache_dir() / kind / f"{key_of(description)}.pt", compute)
