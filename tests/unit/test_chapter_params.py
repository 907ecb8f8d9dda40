"""Every chapter's parameters cell + validation cell, driven by a table of bad values.

Each bad value must raise a ``ValueError`` that names the parameter, before anything is
trained, cached or written. The table grows with the book: one block per chapter.
"""

from __future__ import annotations

import json

import pytest

from chapter_tools import REPO, notebook_cells, run_parameters

BAD: dict[str, list[tuple[str, object]]] = {
    "01-adversarial-examples": [
        ("dataset", "nope"), ("dataset", 3), ("eps", -0.1), ("eps", 2), ("eps", 0), ("eps", "0.3"),
        ("model", "nope"), ("model", "alexnet"), ("ensemble", ["nope"]), ("ensemble", "mlp"),
        ("ensemble", ["small_cnn"]), ("heldout", "mlp"), ("eps_grid", [0.1, 1.5]), ("eps_grid", []),
        ("attack_steps", 0), ("attack_steps", 2.5), ("n_probe", 0), ("n_probe", 1001), ("seed", -1),
        ("epochs", 0), ("device", "tpu"), ("device", "cuda:7"), ("image_size", 2), ("data_root", 5),
        ("data_root", "/no/such/folder"), ("results_dir", ""), ("max_train", 0), ("max_train", 10**6),
        ("pretrained", "yes"), ("pretrained", True),
    ],
    "02-neurons-and-patches": [
        ("dataset", "nope"), ("eps", 1.5), ("model", "nope"), ("attack", "cw"), ("layers", ["nope"]),
        ("layers", "conv2"), ("layers", []), ("k", 0), ("k", 501), ("statistic", "median"), ("affinity", "wordnet3"),
        ("affinity", "cifar10"), ("patch_quantile", 0), ("patch_quantile", 0.9), ("n_show", 0), ("k_show", 21),
        ("seeds", []), ("seeds", [0, 0]), ("seeds", 0), ("n_probe", 0), ("device", "gpu"), ("heldout", "small_cnn"),
        ("n_boot", 5),
    ],
    "03-neuron-consistency": [
        ("dataset", "nope"), ("eps", -1), ("attacks", ["fgsm", "cw"]), ("attacks", []), ("attack", "fgsm2"),
        ("layers", ["conv2"]), ("layers", ["conv2", "nope"]), ("k", 10**4), ("n_reference", 5),
        ("n_reference", 10**6), ("k_nn", 0), ("seeds", [-3]), ("statistic", 1), ("affinity", "cifar10"),
    ],
    "04-consistent-loss": [
        ("dataset", "nope"), ("model", "alexnet"), ("train_attack", "cw"), ("train_eps", 0), ("train_eps", 1.1),
        ("train_steps", 0), ("alpha", -1), ("lambdas", [-0.1]), ("lambdas", []), ("lambdas", [1.0, 1.0]),
        ("lambda_cl", 3.0), ("lambda_cl", -1), ("layer", "nope"), ("consistency", "l1"), ("anchor_clean", "no"),
        ("finetune_epochs", 0), ("finetune_lr", 0), ("lambda_squared", -1), ("heldout", "nope"), ("eval_steps", 2),
        ("eval_restarts", 0), ("k", 0), ("n_probe", 5000), ("seeds", "0"), ("epochs", -2), ("max_train", 0),
        ("n_robust", 501), ("aa_iters", 0), ("n_boot", 5),
    ],
    "05-tracing-and-detection": [
        ("dataset", "nope"), ("model", "nope"), ("ensemble", ["nope"]), ("eps", 3), ("attacks", ["cw"]),
        ("attack", "illc"), ("baseline", "one"), ("log_odds", 1), ("top_k", 0), ("weighted", "yes"), ("k", 0),
        ("n_reference", 3), ("lambdas", [-1.0]), ("lambda_cl", 0.5), ("train_attack", "none"), ("seeds", [1.5]),
        ("trace_layers", ["nope"]), ("consistency", "l2"), ("finetune_epochs", 1.5), ("n_permutations", 5),
    ],
    "06-error-detection": [
        ("dataset", "nope"), ("model", "vgg16"), ("model", "nope"), ("conductance_layer", "nope"), ("conductance_layer", ["conv1", "conv2"]),
        ("table_rates", [0.05, 0.05]), ("table_rates", [0.02, 0.03]), ("mutation_op", "NS"),
        ("conductance_steps", 0), ("n_mutants", 1), ("mutation_op", "XYZ"), ("mutation_rate", 0.001),
        ("mutation_rate", 0), ("mutation_rate", 1.5), ("table_rates", [0.1, 0.0001]), ("table_rates", [0.1]),
        ("target_train_acc", 1.0), ("target_train_acc", 0), ("seeds", []), ("epochs", 0), ("device", "tpu"),
    ],
    "07-sensitivity-regularization": [
        ("dataset", "nope"), ("model", "resnet18"), ("at_attack", "cw"), ("at_eps", 0), ("at_eps", 3), ("at_steps", 0),
        ("lambdas_nas", [-1.0, 1.0, 1.0]), ("lambdas_nas", []), ("lambdas_jac", [0.1]), ("normalization", "batch"),
        ("match_tol", 2), ("n_mprt", 300), ("n_robust", 501), ("aa_targets", 0), ("aa_iters", 0),
        ("nas_layers", ["nope"]), ("nas_layers", []), ("units_per_layer", 0), ("estimator", "exact"),
        ("attribution", "lime"), ("n_eval", 1), ("n_eval", 10**5), ("eval_steps", 0), ("eval_restarts", 0),
        ("lambda_cl", 7.0), ("seeds", [0, -1]), ("k", 0), ("k", 501),
    ],
    "08-side-by-side": [
        ("sweep_spec", "configs/nope.yaml"), ("sweep_spec", 3), ("runs_dir", ""), ("rerun", "yes"), ("results_dir", ""),
    ],
}
CASES = [(stem, name, value) for stem, rows in BAD.items() for name, value in rows]


@pytest.mark.parametrize("stem,name,value", CASES, ids=[f"{s[:2]}-{n}={v!r}" for s, n, v in CASES])
def test_bad_value_is_a_value_error_naming_the_parameter(stem, name, value, no_writes):
    with pytest.raises(ValueError, match=rf"^{name}(\[\d+\])?="):
        run_parameters(stem, **{name: value, "results_dir": str(no_writes / "results")} if name != "results_dir"
                       else {name: value})
    assert not (no_writes / "results").exists()


@pytest.mark.parametrize("stem", sorted(s for s in BAD if s != "08-side-by-side"))
def test_imagefolder_without_data_root(stem, no_writes):
    with pytest.raises(ValueError, match="^data_root=None is not allowed"):
        run_parameters(stem, dataset="imagefolder", data_root=None)


@pytest.mark.parametrize("stem", sorted(BAD))
def test_defaults_validate_and_every_parameter_is_declared(stem):
    ns = run_parameters(stem)
    from advinterp.studies import chapter

    cells = notebook_cells(stem)
    first = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assigned: dict = {}
    exec("".join(first["source"]), assigned)
    declared = {k for k in assigned if not k.startswith("__")}
    assert declared == set(chapter(stem).names), "parameters cell and the study's declaration must agree"
    assert ns["P"].public().keys() == declared


def test_papermill_stops_at_the_parameters_cell(tmp_path):
    """Through papermill itself: the run fails in the cell after the injected parameters."""
    import papermill as pm

    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(REPO / "book" / "01-adversarial-examples.ipynb"), str(out),
                            parameters={"eps": 2, "results_dir": str(tmp_path / "results")}, progress_bar=False,
                            cwd=str(REPO / "book"))
    assert err.value.ename == "ValueError" and "eps=2 is not allowed" in err.value.evalue
    nb = json.loads(out.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    failed = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    injected = next(i for i, c in enumerate(code) if "injected-parameters" in c["metadata"].get("tags", []))
    assert failed == [injected + 1], "the validation cell right after the parameters is the one that fails"
    assert not (tmp_path / "results").exists()


def test_headline_attack_must_be_among_the_attacks(no_writes):
    with pytest.raises(ValueError, match=r"^attack='ensemble' is not allowed: one of attacks="):
        run_parameters("03-neuron-consistency", attacks=["fgsm", "pgd"])


@pytest.mark.parametrize("stem", sorted(BAD))
def test_papermill_sees_every_parameter(stem):
    """papermill's own parser (used for `--help-notebook` and unknown-parameter warnings) must
    read every line of the parameters cell."""
    import nbformat
    from papermill.inspection import _infer_parameters

    from advinterp.studies import chapter

    nb = nbformat.read(str(REPO / "book" / f"{stem}.ipynb"), as_version=4)
    assert {p.name for p in _infer_parameters(nb)} == set(chapter(stem).names)


@pytest.mark.parametrize("stem", sorted(BAD))
def test_notebook_defaults_are_the_declared_defaults(stem):
    """Each parameter is declared once (in the chapter's study); the notebook's parameters cell is a
    copy papermill can read, and a drift between the two (say, chapter 5's copy of chapter 4's
    training settings) fails here instead of silently training other models."""
    from advinterp.studies import chapter

    cells = notebook_cells(stem)
    first = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assigned: dict = {}
    exec("".join(first["source"]), assigned)
    declared = chapter(stem).defaults
    differ = {k: (assigned[k], declared[k]) for k in declared if assigned[k] != declared[k]}
    assert not differ, f"notebook vs declared defaults: {differ}"


def test_shared_training_parameters_are_one_declaration():
    from advinterp.studies import consistent_loss, interpretability, tracing, variants

    for study in (consistent_loss, tracing, interpretability):
        shared = [p for p in study.CHAPTER.params if p.name in {q.name for q in variants.TRAINING}]
        assert shared == list(variants.TRAINING)


@pytest.mark.parametrize("stem", sorted(BAD))
def test_validation_loads_no_data_and_builds_no_model(stem, monkeypatch):
    from advinterp.data import datasets
    from advinterp.models import architectures
    from advinterp.studies import chapter

    def forbidden(*args, **kwargs):
        raise AssertionError("validation must not load data or build a model")

    monkeypatch.setattr(datasets, "load_dataset", forbidden)
    datasets.cached_bundle.cache_clear()
    monkeypatch.setattr(architectures, "build_model", forbidden)
    chapter(stem).validate(chapter(stem).defaults)
    datasets.cached_bundle.cache_clear()


def test_library_checks_use_the_chapter_bounds():
    """A bound is written once: the chapter's epochs and train_steps are the library's own checks."""
    from advinterp.studies import consistent_loss, variants
    from advinterp.training import adversarial, loop

    assert consistent_loss.CHAPTER.params[consistent_loss.CHAPTER.names.index("epochs")] is loop.EPOCHS
    assert adversarial.TRAIN_STEPS in variants.TRAINING
    assert adversarial.AdversarialObjective().eps == adversarial.TRAIN_EPS.default, "one declared default"
    with pytest.raises(ValueError, match="^epochs=10001"):
        loop.TrainConfig(epochs=10_001).validate()
    with pytest.raises(ValueError, match="^train_steps=1001"):
        adversarial.AdversarialObjective(steps=1001)


def test_a_typo_stops_a_chapter_within_seconds_naming_the_closest_names(tmp_path):
    """Through papermill: a mistyped parameter name stops chapter 1 in its validation cell (before any
    data is loaded) with the closest declared names, instead of running the whole chapter with the
    default."""
    import time

    import papermill as pm

    start = time.time()
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(REPO / "book" / "01-adversarial-examples.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"epsilon": 0.1, "results_dir": str(tmp_path / "results")},
                            progress_bar=False, cwd=str(REPO / "book"))
    assert time.time() - start < 90
    assert err.value.ename == "ValueError" and "'epsilon'" in err.value.evalue and "'eps'" in err.value.evalue
    assert not (tmp_path / "results").exists()


def test_a_name_another_chapter_declares_passes_and_an_unknown_one_does_not():
    """Shared configuration files pass every chapter's parameters to every chapter: a name declared
    by another chapter is allowed; one no chapter declares is not."""
    from advinterp.core.params import injected_parameters
    from advinterp.studies import transfer

    ns = run_parameters("01-adversarial-examples")
    injected = "# Parameters\nk = 50\ntarget_train_acc = 0.86\n"
    P = transfer.validate({**ns, "In": ["", injected], "k": 50, "target_train_acc": 0.86})
    assert "k" not in P
    with pytest.raises(ValueError, match=r"^parameters=\['n_probes'\] is not allowed: .*did you mean 'n_probe'"):
        transfer.validate({**ns, "In": ["", "# Parameters\nn_probes = 50\n"], "n_probes": 50})
    assert injected_parameters({"In": ["x = 1", "# Parameters (papermill: ...)\neps = 0.3"]}) == []
