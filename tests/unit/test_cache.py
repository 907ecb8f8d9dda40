"""The cache: keys, atomic writes, verification, weights_only."""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import pytest
import torch

from advinterp.core import cache
from advinterp.data.datasets import cached_bundle
from advinterp.training import loop as training
from advinterp.training import objectives
from advinterp.training.loop import TrainConfig


def test_roundtrip_and_atomic_file(tmp_path):
    path = tmp_path / "a" / "t.pt"
    cache.save_tensors(path, {"x": torch.arange(5)})
    assert torch.equal(cache.load_tensors(path)["x"], torch.arange(5))
    assert [p.name for p in path.parent.iterdir()] == ["t.pt"], "no temporary files left behind"
    assert cache.load_tensors(tmp_path / "absent.pt") is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign"])
def test_damaged_files_are_reported_removed_and_not_loaded(tmp_path, damage):
    path = tmp_path / "t.pt"
    cache.save_tensors(path, {"x": torch.arange(1000)})
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[-100] ^= 0xFF
    elif damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob = bytearray(b"not a cache file")
    path.write_bytes(bytes(blob))
    with pytest.warns(cache.CorruptCacheWarning):
        assert cache.load_tensors(path) is None
    assert not path.exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_refused_by_weights_only(tmp_path):
    """Even with a correct digest (an attacker who rewrote the whole file), code is not run."""
    path = tmp_path / "evil.pt"
    torch_save = torch.save
    import io

    buf = io.BytesIO()
    torch_save({"x": _Evil()}, buf, pickle_module=pickle)
    payload = buf.getvalue()
    import hashlib

    path.write_bytes(cache.MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    with pytest.warns(cache.CorruptCacheWarning, match="weights_only"):
        assert cache.verified_load(path) is None


def test_killed_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "big.pt"
    old = {"x": torch.zeros(10)}
    cache.save_tensors(path, old)
    script = textwrap.dedent(f"""
        import torch, sys
        from advinterp.core import cache
        big = {{"x": torch.ones(60_000_000)}}
        print("ready", flush=True)
        while True:
            cache.save_tensors(__import__("pathlib").Path({str(path)!r}), big)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(0.3)  # mid-way through serialising / writing 240 MB
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    loaded = cache.load_tensors(path)
    assert loaded is not None, "the cache must hold a complete file after a kill"
    assert loaded["x"].numel() in (10, 60_000_000)
    for tmp in path.parent.glob(".big.pt.*.tmp"):
        tmp.unlink()  # a killed writer may leave its temporary file; it is never read


def _variant(value):
    if isinstance(value, bool):
        return not value
    if value is None:
        return 100
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.1
    return {"mnist5k": "mnist", "small_cnn": "mlp", "adam": "sgd", "constant": "cosine"}.get(value, value + "x")


def test_key_changes_with_every_determining_input(monkeypatch):
    base = TrainConfig()
    obj = objectives.CrossEntropy()
    monkeypatch.setattr(training, "bundle_for", lambda cfg: cached_bundle("mnist5k", None, None))
    keys = {training.model_key(base, obj)}
    for f in dataclasses.fields(TrainConfig):
        changed = dataclasses.replace(base, **{f.name: _variant(getattr(base, f.name))})
        keys.add(training.model_key(changed, obj))
    assert len(keys) == 1 + len(dataclasses.fields(TrainConfig)), "every config field must enter the key"

    @dataclasses.dataclass(frozen=True)
    class OtherObjective(objectives.CrossEntropy):
        weight: float = 2.0

        def describe(self):
            return {"objective": "other", "weight": self.weight}

    assert training.model_key(base, OtherObjective()) not in keys
    monkeypatch.setattr(training, "training_code_version", lambda: "edited")
    assert training.model_key(base, obj) not in keys


def test_code_version_follows_source(tmp_path, monkeypatch):
    mod = tmp_path / "fake_mod.py"
    mod.write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    m = importlib.import_module("fake_mod")
    v1 = cache.code_version(m)
    mod.write_text("x = 2\n")
    assert cache.code_version(m) != v1


def test_zip_of_model_is_not_left_partial(tmp_path):
    """A saved model is a complete torch archive (sanity check of the on-disk format)."""
    path = tmp_path / "m.pt"
    cache.atomic_save({"w": torch.ones(3)}, path)
    blob = path.read_bytes()
    payload = blob[len(cache.MAGIC) + 65:]
    import io

    assert zipfile.is_zipfile(io.BytesIO(payload))


_CONCURRENT = '''
import sys, time
from pathlib import Path
import torch
from advinterp.core import cache
counter = Path(sys.argv[1])
def compute():
    with open(counter, "a") as f:
        f.write("computed\\n")
    time.sleep(1.5)
    return {"x": torch.arange(3)}
out = cache.memoized("concurrency-test", {"what": "one entry"}, compute)
assert out["x"].tolist() == [0, 1, 2]
'''


def test_two_processes_compute_one_entry_once(tmp_path):
    """The second process waits for the first (cache.exclusive) and loads what it saved."""
    counter = tmp_path / "computed.txt"
    env = {**os.environ, "ADVINTERP_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(counter)], env=env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert counter.read_text().count("computed") == 1


def test_a_killed_holder_releases_the_lock(tmp_path):
    entry = tmp_path / "entry.pt"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
                               "from advinterp.core import cache\nwith cache.exclusive(Path(sys.argv[1])):\n"
                               "    print('held', flush=True)\n    time.sleep(600)", str(entry)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    start = time.time()
    with cache.exclusive(entry):
        pass
    assert time.time() - start < 10
