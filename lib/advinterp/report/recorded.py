"""Recorded runs at scale (``book/recorded/``): results files made on real CIFAR-10, with provenance.

A recorded run is a folder ``book/recorded/<run>/`` holding one results file per chapter it ran
(``<chapter>.json``, the chapter's own format with every effect's per-seed values,
:mod:`advinterp.report.results`) and a ``provenance.json`` saying what ran where: ``what``,
``commit``, ``date``, ``machine`` (device, torch version) and ``commands`` (the command per
chapter). Records come in **tiers** (:data:`TIERS`): the CPU tier (small networks, on a 2-core
machine) and the GPU tier (ResNet-20). ``book/recorded/scale.yaml`` names, for every chapter and
tier, the run its "At scale: CIFAR-10" section shows, or ``null`` with the reason it has none yet,
and ``stale`` when a later change of the code has altered what the chapter measures, in words; the
code decides it too: a record whose measurement fingerprint (``provenance.json``'s ``fingerprints``)
is missing or differs from ``fingerprints.json``'s, the current code's, is stale (:func:`stale_reason`;
the page says so until the record is redone); :func:`record_sweep` writes a new run from a finished sweep
(``make scale-cpu``, ``make scale``). The appendix "Reproducing at scale" reads every record whole:
its provenance (:func:`read_provenance`, :func:`provenance_line`, :func:`run_seconds`,
:func:`record_minutes`, :func:`accuracy_table`, :func:`mean_epoch_seconds`) and its chapters'
numbers (:func:`run_results`, :func:`numbered_metrics`, :func:`dissected_accuracy`), the chapters
being those the record's own files name.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..core import paths
from ..core.cache import atomic_write_text
from ..core.devices import describe_machine
from ..core.validation import check_choice, fail
from ..data.datasets import tree_digest
from .results import aggregate_seed_runs

if TYPE_CHECKING:
    import pandas as pd

#: what every run's provenance.json carries
PROVENANCE_FIELDS = ("what", "commit", "date", "machine", "commands")
#: the recorded tiers, by the key scale.yaml uses, with the title pages show
TIERS = {"cpu": "CIFAR-10, CPU tier", "gpu": "CIFAR-10, GPU (ResNet-20)"}


def recorded_dir() -> Path:
    return paths.book_dir() / "recorded"


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
    def fingerprint(self) -> str | None:
        """The measurement fingerprint of the code that made it (:mod:`advinterp.studies.fingerprint`), or
        None for a record made before records carried one."""
        return self.provenance.get("fingerprints", {}).get(self.chapter)

    @property
    def missing_seeds(self) -> list[int]:
        """The seeds the tier plans that this record does not hold yet (recorded in stretches)."""
        planned = self.provenance.get("planned_seeds") or []
        return [s for s in planned if s not in self.seeds]

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
    if not entry.get("run") or seed_records(entry["run"], chapter, folder):
        return []  # a tier recorded in stretches keeps numbers only: figures in the folder are an older record's
    base = (folder or recorded_dir()) / entry["run"] / "figures" / chapter
    captions = json.loads((base / "captions.json").read_text()) if (base / "captions.json").is_file() else {}
    return [(base / f"{name}.png", caption) for name, caption in captions.items() if (base / f"{name}.png").is_file()]


def show_figures(chapter: str, folder: Path | None = None) -> int:
    """Display, in a notebook, every figure the current recorded tiers keep for ``chapter``, each under a
    line naming the tier and its caption; a stale record's figures are not drawn (a line says so);
    returns how many were shown."""
    from IPython.display import Image, Markdown, display

    shown = 0
    for tier, title in TIERS.items():
        kept = figures(chapter, tier, folder)
        if kept and stale_reason(chapter, tier, folder):
            display(Markdown(f"**{title}**: the record is stale, so its {len(kept)} figure(s) are not shown."))
            continue
        for path, caption in kept:
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


# ---- a tier recorded in stretches: one file per (chapter, seed) run ------------------------------

#: the folder of a run's per-(chapter, seed) records: ``<run>/runs/<chapter>/seed-<s>.json``
SEED_RUNS = "runs"


def seed_record_path(run: str, chapter: str, seed: int, folder: Path | None = None) -> Path:
    return (folder or recorded_dir()) / run / SEED_RUNS / chapter / f"seed-{seed}.json"


def write_seed_record(run: str, chapter: str, seed: int, results: Mapping[str, Any], provenance: Mapping[str, Any],
                      folder: Path | None = None) -> Path:
    """Record one finished (chapter, seed) run, atomically, as soon as it finishes: its results file's
    ``params``, ``metrics`` and ``seconds``, and ``provenance`` (commit, fingerprint, data digest,
    seconds, machine with its torch version, date, command, the tier's planned seeds)."""
    path = seed_record_path(run, chapter, seed, folder)
    payload = {"chapter": chapter, "seed": seed, "params": dict(results["params"]), "metrics": dict(results["metrics"]),
               "seconds": dict(results.get("seconds") or {}), "provenance": dict(provenance)}
    atomic_write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", path)
    return path


def seed_records(run: str, chapter: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """Every per-seed record of ``chapter`` in ``run``, in seed order (empty when it has none)."""
    base = (folder or recorded_dir()) / run / SEED_RUNS / chapter
    found = [json.loads(p.read_text()) for p in base.glob("seed-*.json")] if base.is_dir() else []
    return sorted(found, key=lambda r: r["seed"])


def same_setting(params: Mapping[str, Any]) -> str:
    """What must be equal for per-seed records to combine: their parameters but the seed(s), the
    results folder and where the data were (the data are compared by their digest)."""
    from ..core.cache import key_of

    return key_of({k: v for k, v in params.items() if k not in ("seed", "seeds", "results_dir", "data_root")})


def combinable(records: list[dict[str, Any]], fingerprint: str | None) -> list[dict[str, Any]]:
    """The records a chapter's tier verdict may combine: those sharing one fingerprint (the current one
    when any record has it, else the newest record's), one data digest and the same parameters as the
    newest of them."""
    if not records:
        return []
    newest = max(records, key=lambda r: r["provenance"].get("finished", 0))
    pick = [r for r in records if r["provenance"].get("fingerprint") == fingerprint] if fingerprint else []
    anchor = max(pick, key=lambda r: r["provenance"].get("finished", 0)) if pick else newest

    def group(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["provenance"].get("fingerprint"), r["provenance"].get("data", {}).get("sha256"), same_setting(r["params"]))
    return [r for r in records if group(r) == group(anchor)]


def _from_seed_records(run: str, chapter: str, records: list[dict[str, Any]], folder: Path | None) -> Record:
    """One chapter's record of a tier recorded in stretches: its combinable seed runs aggregated (per-seed
    values concatenated in seed order), with the provenance they share."""
    group = combinable(records, current_fingerprints(folder).get(chapter))
    one_seed = "seed" in group[0]["params"] and "seeds" not in group[0]["params"]
    metrics, _ = aggregate_seed_runs([r["metrics"] for r in group], spread_all=one_seed)
    params = {k: v for k, v in group[0]["params"].items() if k != "seed"}
    params["seeds"] = [r["seed"] for r in group]
    first = group[0]["provenance"]
    provenance = {
        "what": first.get("what", ""), "commit": ", ".join(dict.fromkeys(r["provenance"].get("commit", "") for r in group)),
        "date": max(r["provenance"].get("date", "") for r in group), "machine": first.get("machine", ""),
        "commands": {chapter: first.get("command", "")}, "fingerprints": {chapter: first.get("fingerprint")},
        "data": [first["data"]] if first.get("data") else [],
        "seed_seconds": {chapter: {str(r["seed"]): r["provenance"].get("seconds") for r in group}},
        "planned_seeds": first.get("planned_seeds", params["seeds"]),
        "left_out": [r["seed"] for r in records if r not in group]}
    return Record(run, chapter, metrics, params, provenance)


def load(run: str, chapter: str, folder: Path | None = None) -> Record:
    """The results of ``chapter`` in recorded run ``run``: its per-seed records combined when the tier was
    recorded in stretches (:func:`combinable`), else the run's ``<chapter>.json`` (FileNotFoundError naming
    the file)."""
    base = (folder or recorded_dir()) / run
    records = seed_records(run, chapter, folder)
    if records:
        record = _from_seed_records(run, chapter, records, folder)
    else:
        payload = json.loads((base / f"{chapter}.json").read_text())
        provenance = json.loads((base / "provenance.json").read_text())
        record = Record(run, chapter, payload["metrics"], payload.get("params", {}), provenance)
    if len(record.seeds) == 1:  # one seed has no spread (older records wrote 0 for it)
        record.metrics.update({k: None for k in record.metrics if k.endswith("_std")})
    return record


#: the current code's measurement fingerprint of every chapter (:mod:`advinterp.studies.fingerprint`)
FINGERPRINTS = "fingerprints.json"


def current_fingerprints(folder: Path | None = None) -> dict[str, str]:
    """``book/recorded/fingerprints.json``: each chapter's fingerprint under the code of this commit
    (empty when the file does not exist)."""
    path = (folder or recorded_dir()) / FINGERPRINTS
    return dict(json.loads(path.read_text())["fingerprints"]) if path.is_file() else {}


def stale_reason(chapter: str, tier: str, folder: Path | None = None) -> str | None:
    """Why the record of ``tier`` for ``chapter`` is stale, or None when it is current. The code decides:
    a record made without a measurement fingerprint, or with another one than the current code's
    (:func:`current_fingerprints`), is stale; ``scale.yaml``'s hand-written ``stale`` says why in words.
    A stale record is shown as such and is evidence nowhere."""
    entry = scale_index(folder).get(chapter, {}).get(tier, {})
    reasons = [entry["stale"]] if entry.get("stale") else []
    if entry.get("run"):
        moved = fingerprint_moved(load(entry["run"], chapter, folder), folder)
        if moved:
            reasons.append(moved)
    return "; ".join(reasons) or None


def fingerprint_moved(record: Record, folder: Path | None = None) -> str | None:
    """Why ``record``'s fingerprint makes it stale, in words, or None when it is the current code's
    (:func:`current_fingerprints`): a record made without one, or with another one, is stale (a folder whose
    ``fingerprints.json`` names no fingerprint for the chapter has nothing to compare with)."""
    now = current_fingerprints(folder).get(record.chapter)
    if record.fingerprint is None:
        return "it was made before a record carried the fingerprint of the code that measured it"
    if now is not None and record.fingerprint != now:
        return (f"the code's measurement of this chapter has changed since (recorded fingerprint {record.fingerprint}, "
                f"current {now})")
    return None


def scale_record(chapter: str, tier: str, folder: Path | None = None) -> tuple[Record | None, str]:
    """The record of ``tier`` a chapter's "At scale" section shows and the index's note (None: not
    run in that tier)."""
    check_choice("tier", tier, TIERS)
    entry = scale_index(folder).get(chapter, {}).get(tier, {"run": None, "note": "not listed in book/recorded/scale.yaml"})
    if not entry.get("run"):
        return None, entry.get("note", "")
    return load(entry["run"], chapter, folder), entry.get("note", "")


def git_commit() -> str:
    """The short hash of the checked-out commit (``unknown`` outside a git checkout)."""
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
    concatenated) and the provenance (with each chapter's summed run seconds, the seconds of each
    of its runs and of each seed within them, and the data each ran on: :func:`advinterp.data.datasets.tree_digest`
    of every ``data_root``). Recording into an existing record keeps the provenance it replaces under
    ``earlier`` (newest first: what a rerun reused from the model cache, the first run paid for). With
    ``tier``, ``scale.yaml`` then names this run in that tier for every chapter it holds. Returns the
    run's folder."""
    import pandas as pd

    singles = pd.read_csv(sweep_root / "runs.csv")
    dest = (folder or recorded_dir()) / run
    commands, seconds, run_seconds, seed_seconds, data = {}, {}, {}, {}, {}
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
        seed_seconds[chapter] = {k: v for p in payloads for k, v in (p.get("seconds") or {}).items()}
        root = params.get("data_root")
        if root and root not in data:
            data[root] = tree_digest(root)
    provenance = {"what": what, "commit": git_commit(), "date": pd.Timestamp.now().date().isoformat(),
                  "machine": describe_machine(), "commands": commands, "device_seconds": seconds,
                  "run_seconds": run_seconds, "seed_seconds": seed_seconds, "data": list(data.values()),
                  # the measurement fingerprints of the code that ran (this commit's, which the tests hold to it)
                  "fingerprints": {c: f for c, f in current_fingerprints().items() if c in commands}}
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


def point_index(tier: str, run: str, chapter: str, what: str, folder: Path | None = None) -> None:
    """Point ``scale.yaml``'s ``tier`` entry of ``chapter`` at ``run`` (a tier recorded in stretches, after
    each of its runs). A hand-written ``stale`` note described the record this one replaces: it goes."""
    check_choice("tier", tier, TIERS)
    index = scale_index(folder)
    entry = index.setdefault(chapter, {}).get(tier) or {}
    if entry.get("run") != run or "stale" in entry or entry.get("note") != what:
        index[chapter][tier] = {"run": run, "note": what}
        _write_index(index, folder)


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


# ----------------------------------------------------------------------------- reading a whole record

def read_provenance(run: str, folder: Path | None = None) -> dict[str, Any]:
    """The ``provenance.json`` of recorded run ``run`` (FileNotFoundError naming the file)."""
    return dict(json.loads(((folder or recorded_dir()) / run / "provenance.json").read_text()))


def provenance_line(provenance: Mapping[str, Any]) -> str:
    """``what | machine | date | commit abc1234``: the line a page prints above a record's numbers
    (the commit's first word, at most 10 characters; a field the provenance lacks is left out)."""
    parts = [str(provenance[k]) for k in ("what", "machine", "date") if provenance.get(k)]
    if provenance.get("commit"):
        parts.append(f"commit {str(provenance['commit']).split()[0][:10]}")
    return " | ".join(parts)


def run_results(run: str, folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every results file of recorded run ``run`` as written (``params`` and ``metrics``, no spread
    removed), by the chapter the file names, in the book's order: the chapters are those the record
    holds, whatever they are (every ``*.json`` of its folder but ``provenance.json``)."""
    base = (folder or recorded_dir()) / run
    if not base.is_dir():
        raise FileNotFoundError(f"no recorded run {base}")
    payloads = [json.loads(p.read_text()) for p in sorted(base.glob("*.json")) if p.name != "provenance.json"]
    return {p["chapter"]: p for p in sorted(payloads, key=lambda p: chapter_number(p["chapter"]))}


def run_chapters(run: str, folder: Path | None = None) -> list[str]:
    """The chapters recorded run ``run`` holds, in the book's order: those with a results file of their
    own (a record made in one sweep) and those with per-seed records (a tier recorded in stretches)."""
    base = (folder or recorded_dir()) / run
    stems = {p.stem for p in base.glob("*.json") if p.name != "provenance.json"} if base.is_dir() else set()
    seeds = base / SEED_RUNS
    stems |= {d.name for d in seeds.iterdir() if any(d.glob("seed-*.json"))} if seeds.is_dir() else set()
    return sorted(stems, key=chapter_number)


def record_state(record: Record, folder: Path | None = None) -> str:
    """In words, whether ``record`` is evidence: "current, seeds 0, 1 (2 of 3)" when it was made by code
    with the current fingerprint (:func:`current_fingerprints`), else why it is stale."""
    if record.fingerprint is None:
        return "stale (made before records carried a fingerprint)"
    if fingerprint_moved(record, folder):
        return "stale (the code's fingerprint has moved)"
    planned = record.provenance.get("planned_seeds") or record.seeds
    return f"current, seeds {', '.join(str(s) for s in record.seeds)} ({len(record.seeds)} of {len(planned)})"


def chapter_number(stem: str) -> int:
    """The number a chapter's stem starts with: ``"02-neurons-and-patches"`` -> 2."""
    found = re.match(r"(\d+)-", stem)
    if found is None:
        raise ValueError(f"chapter={stem!r} is not allowed: a chapter stem that starts with its number "
                         "(e.g. 02-neurons-and-patches)")
    return int(found.group(1))


def numbered_metrics(results: Mapping[str, Mapping[str, Any]], prefix: str) -> dict[str, Any]:
    """Every chapter's metrics under ``<prefix><N>_<metric>`` for chapter N (``results`` as
    :func:`run_results` gives them): the names a page glues one record's numbers by, e.g.
    ``c2_topk_target_agreement`` for chapter 2's ``topk_target_agreement`` with ``prefix="c"``."""
    return {f"{prefix}{chapter_number(chapter)}_{name}": value
            for chapter, payload in results.items() for name, value in payload["metrics"].items()}


def accuracy_table(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """The test accuracy a record made by hand lists (``test_accuracy``: seed -> network -> accuracy)
    as a table: one row per seed (the index, ``seed``), one column per network."""
    import pandas as pd

    if not isinstance(provenance.get("test_accuracy"), Mapping):
        fail("test_accuracy", provenance.get("test_accuracy"), "a mapping seed -> network -> accuracy in the provenance")
    return pd.DataFrame(provenance["test_accuracy"]).T.rename_axis("seed")


def dissected_accuracy(run: str, folder: Path | None = None) -> float:
    """The test accuracy, mean over the seeds the provenance lists, of the network recorded run
    ``run`` dissects: the ``model`` parameter its chapters' results files share."""
    models = {p["params"].get("model") for p in run_results(run, folder).values()}
    if len(models) != 1 or None in models:
        fail("model", sorted(map(str, models)), f"one dissected network named by every chapter of record {run}")
    (model,) = models
    table = accuracy_table(read_provenance(run, folder))
    if model not in table.columns:
        fail("model", model, f"a network whose test accuracy the provenance of {run} lists ({list(table.columns)})")
    return float(table[model].mean())


def mean_epoch_seconds(provenance: Mapping[str, Any], label: str, *, drop_last: bool = False) -> float:
    """Mean seconds per epoch of the one ``epoch_seconds`` entry of a record made by hand whose label
    (free text, e.g. ``"resnet20 (8-epoch recipe)"``) contains ``label``; ``drop_last`` leaves out
    the last epoch (one that stopped early). A label that matches no entry or several is an error
    naming the labels."""
    entries = provenance.get("epoch_seconds") or {}
    matches = [seconds for name, seconds in entries.items() if label in name]
    if len(matches) != 1:
        fail("label", label, f"words of exactly one epoch_seconds label ({len(matches)} match): {list(entries)}")
    seconds = matches[0][:-1] if drop_last else matches[0]
    if not seconds:
        fail("label", label, "an entry with at least one epoch to average")
    return float(sum(seconds) / len(seconds))


def run_seconds(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """The seconds each run of a recorded sweep took (``run_seconds``): columns ``chapter``, ``run``,
    ``seconds``; no rows for a record made by hand."""
    import pandas as pd

    rows = [(chapter, run, s) for chapter, runs in (provenance.get("run_seconds") or {}).items()
            for run, s in runs.items()]
    return pd.DataFrame(rows, columns=["chapter", "run", "seconds"])


def seed_seconds(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """The seconds each chapter of a recorded sweep spent on each seed (``seed_seconds``: the studies'
    own clocks, models trained on first use included) and on work of its own (chapter 7's selection
    seed): one row per chapter, one column per seed or piece of work; empty for a record made before
    the studies kept them."""
    import pandas as pd

    frame = pd.DataFrame.from_dict(provenance.get("seed_seconds") or {}, orient="index")
    frame.index.name = "chapter"
    return frame


def record_minutes(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """Minutes per chapter (rows; the index is named ``minutes per chapter``) of this record and of
    every earlier one it replaced (columns, newest first: ``this record (<commit>)``, then
    ``earlier (<commit>, <date>)``), from their ``device_seconds``: a record made again keeps what
    the records before it cost, since a rerun reloads their models from the cache."""
    import pandas as pd

    costs = {f"this record ({str(provenance['commit'])[:7]})": provenance["device_seconds"]}
    costs.update({f"earlier ({str(e['commit'])[:7]}, {e['date']})": e["device_seconds"]
                  for e in provenance.get("earlier", [])})
    return (pd.DataFrame(costs) / 60).rename_axis("minutes per chapter")


def seed_run_table(run: str, folder: Path | None = None) -> pd.DataFrame:
    """What each (chapter, seed) run of a tier recorded in stretches cost and what made it: one row per
    run (``chapter``, ``seed``; chapter 7's selection step as ``selection``) with its minutes, commit,
    measurement fingerprint and whether it is the current code's (``current``), the data's digest and
    date; empty when the tier has no such runs."""
    import pandas as pd

    base = (folder or recorded_dir()) / run / SEED_RUNS
    current = current_fingerprints(folder)
    rows = []
    for path in sorted(base.glob("*/*.json")) if base.is_dir() else []:
        record = json.loads(path.read_text())
        prov = record.get("provenance", {})
        chapter = path.parent.name
        rows.append({"chapter": chapter, "seed": record.get("seed", path.stem),
                     "minutes": (prov.get("seconds") or float("nan")) / 60, "commit": prov.get("commit", ""),
                     "fingerprint": prov.get("fingerprint", ""),
                     "current": prov.get("fingerprint") is not None and prov.get("fingerprint") == current.get(chapter),
                     "data SHA-256": str((prov.get("data") or {}).get("sha256", ""))[:16], "date": prov.get("date", "")})
    return pd.DataFrame(rows, columns=["chapter", "seed", "minutes", "commit", "fingerprint", "current",
                                       "data SHA-256", "date"])


def data_lines(provenance: Mapping[str, Any]) -> list[str]:
    """A line per data set a record ran on: its number of files and the SHA-256 of its listing
    (:func:`advinterp.data.datasets.tree_digest`); none for records made before it was kept."""
    return [f"data: {d['files']} files, listing SHA-256 {d['sha256'][:16]}..." for d in provenance.get("data") or []]


#: the recorded benchmark files the appendix compares, by machine
BENCH_FILES = {"2-core CPU": "bench-cpu-2core.json", "H100": "bench-h100.json"}


def bench_table(files: Mapping[str, str] = BENCH_FILES, folder: Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The recorded benchmarks (:mod:`advinterp.bench`) side by side: one column per machine of ``files``
    and the targets last, a row per benchmark; and a line per machine saying what it was and when."""
    import pandas as pd

    columns, lines, targets = {}, [], None
    for name, file in files.items():
        bench = json.loads(((folder or recorded_dir()) / file).read_text())
        lines.append(f"{name}: {bench['machine']} | {bench['date']}")
        frame = pd.DataFrame(bench["rows"]).set_index("benchmark")
        columns[name] = frame["value"]
        targets = frame["target"]
    return pd.DataFrame({**columns, "target": targets}), lines
