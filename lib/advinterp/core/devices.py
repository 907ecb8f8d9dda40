"""Device selection and seeding (the *Devices* and *Determinism* contracts of the book)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from .validation import fail


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.

    Asking for a device that is absent is a ``ValueError`` rather than a silent CPU fallback.
    """
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        fail("device", device, "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "mps":
        if not torch.backends.mps.is_available():
            fail("device", device, "'mps' needs Apple's Metal backend, which this machine lacks; use 'auto' or 'cpu'")
        return torch.device("mps")
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            fail("device", device, "CUDA is not available on this machine; use 'auto' or 'cpu'")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            fail("device", device, f"a CUDA index below {torch.cuda.device_count()}")
        return torch.device(device)
    fail("device", device, "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    raise AssertionError  # unreachable


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): the chapters' entry (a study's ``setup``) calls it
    once; library functions never do (they use :func:`generator` or :func:`seeded_rng`)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``: random draws that do not disturb the global stream."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def derive_seed(*parts: int | str) -> int:
    """A stable 31-bit seed from several parts (e.g. ``derive_seed(seed, "epoch", 3)``).

    Python's ``hash`` is salted per process, so a SHA-256 digest is used instead.
    """
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@contextmanager
def seeded_rng(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Inside the block torch's global generators (CPU, and ``device``'s when it is CUDA) are seeded
    with ``seed``; afterwards they are exactly as before. Library code whose random draws happen
    inside other libraries (weight initialisation, dropout, Captum's noise) runs in such a block,
    so it is deterministic and never reseeds the caller's stream."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; ``platform.processor()`` elsewhere)."""
    import platform
    from pathlib import Path

    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_machine() -> str:
    """What a measurement ran on: CPU model and cores, the GPU if any, torch and Python versions
    (recorded with every record and benchmark)."""
    import os
    import platform

    gpu = f", CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu_model()}, {os.cpu_count()} CPU cores{gpu}, torch {torch.__version__}, "
            f"Python {platform.python_version()}")
