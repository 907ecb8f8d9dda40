"""Every chapter study keeps the written contract (:class:`advinterp.studies.Study`), chapter 8 reads
the others through what they export, and a chapter ends with one call
(:func:`advinterp.studies.ending.conclude`)."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace

import pytest

from advinterp.report.settings import Setting
from advinterp.report import claims
from advinterp.studies import STUDIES, SideBySide, Study, declared_claims, default_validate, exports, study
from advinterp.studies.ending import conclude
from chapter_tools import REPO

#: the contract's functions and their parameters (names and order)
SIGNATURES = {name: [p for p in inspect.signature(getattr(Study, name)).parameters if p != "self"]
              for name in ("validate", "setup", "run", "summarize", "verdicts")}


@pytest.mark.parametrize("stem", list(STUDIES))
def test_every_study_satisfies_the_contract(stem):
    mod = study(stem)
    assert isinstance(mod, Study), f"{mod.__name__} lacks part of the Study contract"
    assert mod.CHAPTER.stem == stem
    for name, params in SIGNATURES.items():
        got = list(inspect.signature(getattr(mod, name)).parameters)
        assert len(got) == len(params), f"{mod.__name__}.{name}{tuple(got)}: the contract is {name}{tuple(params)}"
    assert isinstance(mod.CLAIMS, tuple) and all(isinstance(c, claims.Claim) for c in mod.CLAIMS)
    assert all(c.chapter == stem for c in mod.CLAIMS), "a claim names another chapter"
    assert isinstance(mod.SETTINGS, tuple) and all(isinstance(s, Setting) for s in mod.SETTINGS)
    assert bool(mod.SETTINGS) == bool(mod.CLAIMS), "a chapter that decides a paper's claims shows what the paper ran"
    names = set(mod.CHAPTER.names)
    for s in mod.SETTINGS:
        assert set(s.params) <= names, f"{stem}: setting {s.label!r} reads parameters the chapter lacks"
    assert isinstance(getattr(mod, "SIDE_BY_SIDE", SideBySide()), SideBySide)


def test_a_module_without_part_of_the_contract_does_not_satisfy_it():
    mod = study("01-adversarial-examples")
    partial = SimpleNamespace(**{n: getattr(mod, n) for n in ("CHAPTER", "CLAIMS", "validate", "setup", "run")})
    assert not isinstance(partial, Study)


def test_the_default_validate_checks_the_chapters_parameters():
    mod = study("02-neurons-and-patches")
    validate = default_validate(mod.CHAPTER)
    P = validate({**mod.CHAPTER.defaults, "n_probe": 100})
    assert P.n_probe == 100 and mod.CHAPTER.stem in (validate.__doc__ or "")
    with pytest.raises(ValueError, match="n_probe"):
        validate({**mod.CHAPTER.defaults, "n_probe": -1})


def test_the_scorecard_reads_each_studys_claims_and_no_registry_is_left():
    assert not hasattr(claims, "CLAIMS")
    every = declared_claims()
    assert list(every) == list(STUDIES) and not every["08-side-by-side"]
    assert all(every[stem] for stem in STUDIES if stem != "08-side-by-side")


def test_chapter_8_reads_each_measure_from_exactly_one_chapter():
    found = exports()
    assert "08-side-by-side" not in found
    assert sum(s.curve is not None for s in found.values()) == 1
    assert sum(bool(s.across_eps) for s in found.values()) == 1
    columns = [c for s in found.values() for c in s.cells]
    assert len(columns) == len(set(columns)), "two chapters export the same column"


@pytest.mark.parametrize("stem", [s for s in STUDIES])
def test_every_chapter_ends_with_the_one_call(stem):
    nb = json.loads((REPO / "book" / f"{stem}.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert sum("conclude(study, result, setup, results_dir)" in c for c in code) == 1
    assert not any("results.publish(" in c or "claims.at_scale(" in c for c in code), \
        "the chapter writes out what conclude does"


def test_conclude_publishes_then_decides_the_chapters_claims(tmp_path):
    mod = study("02-neurons-and-patches")
    P = mod.validate(mod.CHAPTER.defaults)
    fake = SimpleNamespace(CHAPTER=mod.CHAPTER, CLAIMS=mod.CLAIMS, summarize=lambda result, setup: {"n_seeds": 1},
                           verdicts=lambda result, setup, metrics: {"word": "x"})
    ending = conclude(fake, None, SimpleNamespace(P=P), tmp_path, show=False)  # type: ignore[arg-type]
    written = json.loads(ending.path.read_text())
    assert ending.path.parent == tmp_path and written["metrics"]["n_seeds"] == 1
    assert ending.scale is not None and len(ending.scale.table) == len(mod.CLAIMS)
    assert "scale_summary" in ending.scale.words and ending.n_recorded_figures == 0
    silent = conclude(SimpleNamespace(**{**vars(fake), "CLAIMS": ()}), None, SimpleNamespace(P=P), tmp_path,
                      show=False)  # type: ignore[arg-type]
    assert silent.scale is None


def _code_cells(stem: str) -> list[tuple[list[str], str]]:
    nb = json.loads((REPO / "book" / f"{stem}.ipynb").read_text())
    return [(c["metadata"].get("tags", []), "".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("stem", list(STUDIES))
def test_a_chapter_reads_its_own_study_only_and_shows_no_plumbing(stem):
    """The notebook calls its study, never a module the study imports (``study.V.``, ``study.attribution.``);
    it imports nothing it does not use; its setup and closing cells (imports, ``validate``, ``setup``,
    ``conclude``) show the reader their output only (Jupyter Book's ``remove-input``)."""
    import re
    from types import ModuleType

    mod = study(stem)
    cells = _code_cells(stem)
    source = "\n".join(src for _, src in cells)
    for name in set(re.findall(r"\bstudy\.(\w+)\.", source)):
        assert not isinstance(getattr(mod, name, None), ModuleType), f"{stem} reaches through study.{name}"
    for imported in re.findall(r"^from advinterp\.[\w.]+ import (.+)$", source, flags=re.M):
        for name in (n.strip().split(" as ")[-1] for n in imported.split(",")):
            assert re.search(rf"\b{name}\s*[.(\[]", source), f"{stem} imports {name} unused"
    for tags, src in cells:
        if "study.validate(globals())" in src or "conclude(study" in src:
            assert "remove-input" in tags, f"{stem}: a plumbing cell shows its code: {src.splitlines()[0]}"


#: the sections of a chapter study, in the order every study keeps them
SECTIONS = ("declarations", "setup", "run", "summarize", "verdicts", "display helpers")


@pytest.mark.parametrize("stem", list(STUDIES))
def test_every_study_reads_in_the_same_order(stem):
    """Declarations (parameters, claims, settings), ``setup``, ``run``, ``summarize``, ``verdicts``, display
    helpers: a newcomer finds each part of any study where it is in the others."""
    import re

    source = inspect.getsource(study(stem))
    marks = [(m.start(), m.group(1)) for m in re.finditer(r"^# -{77} (.+)$", source, flags=re.M)]
    titles = [t for _, t in marks]
    assert titles == [s for s in SECTIONS if s in titles] and titles[:1] == ["declarations"], titles
    for name in ("setup", "run", "summarize", "verdicts"):
        where = re.search(rf"^def {name}\(", source, flags=re.M)
        if where is None:
            continue
        section = [t for start, t in marks if start < where.start()][-1]
        assert section == name, f"{stem}: {name} sits under '{section}'"
