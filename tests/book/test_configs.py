"""The natural-image configurations (GPU and CPU tier): every chapter accepts them, and a papermill dry run on CPU with the
sizes scaled down by parameters runs end to end on generated data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from chapter_tools import run_parameters  # noqa: E402

CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
WNIDS = ["n01440764", "n02084071", "n02121808"]  # tench, dog, domestic cat
SCALE_DOWN = {"device": "cpu", "epochs": 1, "max_train": 60, "n_probe": 30, "k": 5, "k_show": 3, "n_show": 1,
              "n_reference": 30, "k_nn": 3, "seeds": [0], "seed": 0, "n_mutants": 3, "n_eval": 4, "eval_steps": 2,
              "attack_steps": 2, "train_steps": 1, "at_steps": 1, "eps_grid": [0.03137],
              "finetune_epochs": 1, "n_robust": 20, "n_mprt": 4, "aa_iters": 5, "aa_targets": 1, "n_boot": 20,
              "n_permutations": 20}


def _tree(root: Path, classes: list[str], per_class: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", max(3, per_class // 2))):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def fake_cifar(tmp_path_factory):
    return _tree(tmp_path_factory.mktemp("cifar"), CIFAR, 6, 32)


@pytest.fixture(scope="module")
def fake_imagenet(tmp_path_factory):
    return _tree(tmp_path_factory.mktemp("imagenet"), WNIDS, 24, 72)


def _config(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / name).read_text())


CHAPTERS = sorted(p.stem for p in (REPO / "book").glob("0[1-7]-*.ipynb"))


@pytest.mark.parametrize("config", ["cifar10-gpu.yaml", "cifar10-cpu.yaml"])
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_cifar10_config_validates_for_every_chapter(chapter, config, fake_cifar, tmp_cache):
    cfg = {**_config(config), **SCALE_DOWN, "dataset": "imagefolder", "data_root": str(fake_cifar)}
    run_parameters(chapter, **{k: v for k, v in cfg.items() if k in _declared(chapter)})


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c[:2] in ("01", "02", "03")])
def test_imagenet_config_validates_for_the_dissection_chapters(chapter, fake_imagenet, tmp_cache):
    cfg = {**_config("imagenet-gpu.yaml"), **SCALE_DOWN, "data_root": str(fake_imagenet), "image_size": 64,
           "pretrained": False}
    run_parameters(chapter, **{k: v for k, v in cfg.items() if k in _declared(chapter)})


def _declared(chapter: str) -> set[str]:
    from advinterp.studies import chapter as declaration

    return set(declaration(chapter).names)


@pytest.mark.parametrize("config,chapter,extra", [
    ("cifar10-gpu.yaml", "01-adversarial-examples", {}),
    ("imagenet-gpu.yaml", "02-neurons-and-patches", {"image_size": 64, "pretrained": False}),
])
def test_papermill_dry_run_on_cpu(config, chapter, extra, fake_cifar, fake_imagenet, tmp_path, monkeypatch):
    """The real config through papermill, with sizes scaled down by parameters (no GPU, no download).

    papermill runs in a fresh process, as a user runs it, with a time limit: late in a full session,
    in-process executions of this test have twice waited forever on a kernel that had gone idle."""
    import os
    import subprocess

    monkeypatch.setenv("ADVINTERP_CACHE", str(tmp_path / "cache"))
    root = fake_cifar if config.startswith("cifar") else fake_imagenet
    overrides = {**SCALE_DOWN, "dataset": "imagefolder", "data_root": str(root), "results_dir": str(tmp_path / "r"),
                 **extra}
    if config.startswith("imagenet"):
        overrides.update({"ensemble": ["alexnet"], "model": "resnet18"})  # vgg16 is slow on a CPU
    # the whole shared configuration, every chapter's parameters included: a chapter accepts the names
    # other chapters declare (a name no chapter declares would stop it)
    params = {**_config(config), **overrides}
    assert set(params) - _declared(chapter), "the dry run should pass other chapters' parameters too"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, "-m", "papermill", str(REPO / "book" / f"{chapter}.ipynb"), str(tmp_path / "out.ipynb"),
                           "-f", str(tmp_path / "params.yaml"), "--cwd", str(REPO / "book"), "-k", "python3",
                           "--no-progress-bar", "--execution-timeout", "600"],
                          timeout=900, env=os.environ.copy(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "r" / f"{chapter}.json").read_text())["metrics"]
    assert metrics


#: what a tier's sweep may set beside its configuration: where the data is (and, for the GPU tier, that
#: its CIFAR-10 comes as an image folder), and which seed a run of a one-seed chapter takes
SWEEP_MAY_SET = {"data_root", "dataset"}


@pytest.mark.parametrize("sweep", ["cpu-cifar10.yaml", "scale-cifar10.yaml"])
def test_a_tier_config_alone_runs_a_chapter_as_its_record_did(sweep):
    """Issue 44, item 5 (one source of settings): a tier's sweep passes its configuration file and sets no
    chapter parameter of its own (the CPU tier's sweep once set chapter 6's operator, rate, mutants and
    table rates, so the config alone ran NAI at five filters and failed)."""
    spec = yaml.safe_load((REPO / "configs" / "sweeps" / sweep).read_text())
    assert set(spec.get("params") or {}) <= SWEEP_MAY_SET, spec["params"]
    for run in spec["runs"]:
        assert not run.get("params"), (run["chapter"], run["params"])
        assert set(run.get("grid") or {}) <= {"seed"}, (run["chapter"], run["grid"])
