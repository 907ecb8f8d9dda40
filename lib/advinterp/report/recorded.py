"""Recorded runs at scale (``book/recorded/``): results files made on real CIFAR-10, with provenance.

A recorded run is a folder ``book/recorded/<run>/`` holding one results file per chapter it ran
(``<chapter>.json``, the chapter's own format with every effect's per-seed values,
:mod:`advinterp.report.results`) and a ``provenance.json`` saying what ran where: ``what``,
``commit``, ``date``, ``machine`` (device, torch version) and ``commands`` (the command per
chapter). Records come in **tiers** (:data:`TIERS`): the CPU tier (small networks, on a 2-core
machine) and the GPU tier (ResNet-20). ``book/recorded/scale.yaml`` names, for every chapter and
tier, the run its "At scale: CIFAR-10" section shows, or ``null`` with the reason it has none yet,
and ``stale`` when a later change of the code has altered what the chapter measures (the page
says so until the record is redone); :func:`record_sweep` writes a new run from a finished sweep
(``make scale-cpu``, ``make scale``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core import paths
from ..core.cache import atomic_write_text
from ..core.devices import describe_machine
from ..core.validation import check_choice, fail

#: what every run's provenance.json carries
PROVENANCE_FIELDS = ("what", "commit", "date", "machine", "commands")
#: the recorded tiers, by the key scale.yaml uses, with the title pages show
TIERS = {"cpu": "CIFAR-10, CPU tier", "gpu": "CIFAR-10, GPU (ResNet-20)"}


def recorded_dir() -> Path:
    return paths.repo_root() / "book" / "recorded"


@dataclass(frozen=True)
class Record:
    """One chapter's results in one recorded run."""

    run: str
    chapter: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    provenance: dict[str, Any]

    @property
    def command(self) -> str | None:
        return self.provenance.get("commands", {}).get(self.chapter)

    @property
    def seeds(self) -> list[int]:
        seeds = self.params.get("seeds")
        return list(seeds) if isinstance(seeds, list) else [self.params.get("seed", 0)]


def save_figures(notebook: Path, dest: Path) -> list[Path]:
    """Every captioned figure of an executed chapter notebook (cells whose myst-nb metadata names a
    figure) as ``<dest>/<name>.png``, with its caption in ``<dest>/captions.json``: the pictures a
    record keeps so that a reader sees the recorded run, not only its numbers."""
    import base64

    if not notebook.is_file():
        return []
    nb = json.loads(notebook.read_text())
    saved, captions = [], {}
    for cell in nb.get("cells", []):
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        png = next((o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})), None)
        if not figure.get("name") or png is None:
            continue
        path = dest / f"{figure['name']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(png if isinstance(png, str) else "".join(png)))
        saved.append(path)
        captions[figure["name"]] = figure.get("caption", "")
    if captions:
        atomic_write_text(json.dumps(captions, indent=1) + "\n", dest / "captions.json")
    return saved


def figures(chapter: str, tier: str, folder: Path | None = None) -> list[tuple[Path, str]]:
    """The figures (PNG and caption) the record of ``tier`` keeps for ``chapter`` (none: empty)."""
    entry = scale_index(folder).get(chapter, {}).get(tier, {})
    if not entry.get("run"):
        return []
    base = (folder or recorded_dir()) / entry["run"] / "figures" / chapter
    captions = json.loads((base / "captions.json").read_text()) if (base / "captions.json").is_file() else {}
    return [(base / f"{name}.png", caption) for name, caption in captions.items() if (base / f"{name}.png").is_file()]


def show_figures(chapter: str, folder: Path | None = None) -> int:
    """Display, in a notebook, every figure the recorded tiers keep for ``chapter``, each under a line
    naming the tier and its caption; returns how many were shown."""
    from IPython.display import Image, Markdown, display

    shown = 0
    for tier, title in TIERS.items():
        for path, caption in figures(chapter, tier, folder):
            display(Markdown(f"**{title}** ({scale_index(folder)[chapter][tier]['run']}): {caption}"))
            display(Image(filename=str(path), width=720))
            shown += 1
    return shown


def scale_index(folder: Path | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{chapter: {tier: {"run": name | None, "note": text, "stale": text?}}}`` from ``scale.yaml``."""
    path = (folder or recorded_dir()) / "scale.yaml"
    raw = yaml.safe_load(path.read_text()) if path.is_file() else {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for chapter, tiers in (raw or {}).items():
        unknown = set(tiers or {}) - set(TIERS)
        if unknown:
            raise ValueError(f"scale.yaml: {chapter} names tiers {sorted(unknown)}; a tier is one of {list(TIERS)}")
        out[chapter] = {t: (e if isinstance(e, dict) else {"run": e, "note": ""}) for t, e in (tiers or {}).items()}
    return out


def load(run: str, chapter: str, folder: Path | None = None) -> Record:
    """The results of ``chapter`` in recorded run ``run`` (FileNotFoundError naming the file)."""
    base = (folder or recorded_dir()) / run
    payload = json.loads((base / f"{chapter}.json").read_text())
    provenance = json.loads((base / "provenance.json").read_text())
    record = Record(run, chapter, payload["metrics"], payload.get("params", {}), provenance)
    if len(record.seeds) == 1:  # one seed has no spread (older records wrote 0 for it)
        record.metrics.update({k: None for k in record.metrics if k.endswith("_std")})
    return record


def scale_record(chapter: str, tier: str, folder: Path | None = None) -> tuple[Record | None, str]:
    """The record of ``tier`` a chapter's "At scale" section shows and the index's note (None: not
    run in that tier)."""
    check_choice("tier", tier, TIERS)
    entry = scale_index(folder).get(chapter, {}).get(tier, {"run": None, "note": "not listed in book/recorded/scale.yaml"})
    if not entry.get("run"):
        return None, entry.get("note", "")
    return load(entry["run"], chapter, folder), entry.get("note", "")


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=paths.repo_root(), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _header_comment(path: Path) -> str:
    """The comment lines ``scale.yaml`` opens with (what its fields mean), kept when it is rewritten."""
    lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
    head = []
    for line in lines:
        if not line.startswith("#"):
            break
        head.append(line)
    return "".join(head)


def record_sweep(sweep_root: Path, run: str, *, what: str, command: str, folder: Path | None = None,
                 tier: str | None = None) -> Path:
    """Write recorded run ``run`` from a finished sweep folder (``runs/<name>``): one results file
    per chapter (a ``split: seeds`` group aggregated over its seed runs, per-seed values
    concatenated) and the provenance (with each chapter's summed run seconds, and the seconds of each
    of its runs). Recording into an existing record keeps the provenance it replaces under
    ``earlier`` (newest first: what a rerun reused from the model cache, the first run paid for). With
    ``tier``, ``scale.yaml`` then names this run in that tier for every chapter it holds. Returns the
    run's folder."""
    import pandas as pd

    from .sweeps import aggregate_seed_runs

    singles = pd.read_csv(sweep_root / "runs.csv")
    dest = (folder or recorded_dir()) / run
    commands, seconds, run_seconds = {}, {}, {}
    for chapter, rows in singles.groupby("chapter", sort=False):
        ok = rows[rows.status == "ok"]
        files = [sweep_root / chapter / r / "results" / f"{chapter}.json" for r in ok.run]
        payloads = [json.loads(f.read_text()) for f in files if f.is_file()]
        if not payloads:
            continue
        params = dict(payloads[0]["params"])
        one_seed = "seed" in params and "seeds" not in params  # chapter 1: one seed per run
        metrics, _ = aggregate_seed_runs([p["metrics"] for p in payloads], spread_all=one_seed)
        if one_seed:
            params["seeds"] = [p["params"]["seed"] for p in payloads]
        elif "seeds" in params:
            params["seeds"] = [s for p in payloads for s in p["params"].get("seeds", [])]
        atomic_write_text(json.dumps({"chapter": chapter, "params": params, "metrics": metrics}, indent=2,
                                     sort_keys=True) + "\n", dest / f"{chapter}.json")
        save_figures(sweep_root / chapter / str(ok.run.iloc[0]) / "notebook.ipynb", dest / "figures" / chapter)
        commands[chapter] = command
        seconds[chapter] = float(ok.seconds.sum())
        run_seconds[chapter] = {str(r.run): float(r.seconds) for r in ok.itertuples()}
    provenance = {"what": what, "commit": _git_commit(), "date": pd.Timestamp.now().date().isoformat(),
                  "machine": describe_machine(), "commands": commands, "device_seconds": seconds,
                  "run_seconds": run_seconds}
    provenance_path = dest / "provenance.json"
    if provenance_path.is_file():  # a record made again: the earlier one's provenance is kept, newest first
        old = json.loads(provenance_path.read_text())
        earlier = old.pop("earlier", [])
        if (old.get("commit"), old.get("run_seconds")) != (provenance["commit"], run_seconds):
            earlier = [old, *earlier]
        if earlier:
            provenance["earlier"] = earlier
    atomic_write_text(json.dumps(provenance, indent=1) + "\n", provenance_path)
    if tier is not None:
        check_choice("tier", tier, TIERS)
        index = scale_index(folder)
        for chapter in commands:
            index.setdefault(chapter, {})[tier] = {"run": run, "note": what}
        _write_index(index, folder)
    return dest


def _write_index(index: dict[str, dict[str, dict[str, Any]]], folder: Path | None) -> None:
    path = (folder or recorded_dir()) / "scale.yaml"
    atomic_write_text(_header_comment(path) + yaml.safe_dump(index, sort_keys=True, allow_unicode=True, width=200),
                      path)


def annotate(tier: str, notes: dict[str, str] | None = None, *, stale: dict[str, str | None] | None = None,
             folder: Path | None = None) -> None:
    """Rewrite ``scale.yaml``'s notes for ``tier``: ``notes`` maps a chapter to the sentence its page
    shows under the tier's column (what the setting is, what it lacks; :func:`record_sweep` writes the
    run's ``what`` for every chapter); ``stale`` maps a chapter to the reason its record is out of date,
    or to None once it has been redone. Every chapter named must already have an entry in that tier."""
    check_choice("tier", tier, TIERS)
    index = scale_index(folder)
    for chapter in {*(notes or {}), *(stale or {})}:
        if tier not in index.get(chapter, {}):
            fail("chapter", chapter, f"a chapter with a {tier!r} entry in scale.yaml, one of "
                 f"{sorted(c for c, tiers in index.items() if tier in tiers)}")
    for chapter, note in (notes or {}).items():
        index[chapter][tier]["note"] = note
    for chapter, reason in (stale or {}).items():
        if reason is None:
            index[chapter][tier].pop("stale", None)
        else:
            index[chapter][tier]["stale"] = reason
    _write_index(index, folder)
