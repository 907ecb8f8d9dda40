"""Each chapter's parameters and their validation (the *Parameters* contract).

A chapter's first code cell (tagged ``parameters``) assigns plain values; its second cell calls
:func:`validate` with ``globals()``. Every parameter the chapter declares in :data:`CHAPTERS` is
checked before any training, caching or writing happens; a bad value raises ``ValueError``
naming the parameter, the value and what is allowed. Parameters not declared here are an error
too, so nothing a reader can turn goes unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import data, devices, models, zoo
from .validation import (check_bool, check_choice, check_int, check_list, check_number, check_optional_int,
                         check_seeds, check_str, fail)


class ChapterParams(dict[str, Any]):
    """Validated parameters with attribute access; ``bundle`` holds the loaded dataset."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err

    def public(self) -> dict[str, Any]:
        """The parameters as written to the results JSON (plain values only)."""
        return {k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in self.items()
                if k not in ("bundle", "spec_path", "runs_root", "table_path")}


# ----------------------------------------------------------------------------- shared pieces


def _dataset(v: dict[str, Any]) -> data.DatasetBundle:
    from .training import cached_bundle

    check_choice("dataset", v["dataset"], data.DATASETS)
    root = v.get("data_root")
    if root is not None and not isinstance(root, str):
        fail("data_root", root, "None or a folder path (string)")
    size = check_optional_int("image_size", v.get("image_size"), 8, 1024)
    if v["dataset"] == "mnist5k" and root is not None:
        fail("data_root", root, "None for dataset='mnist5k' (the embedded sample needs no files)")
    return cached_bundle(v["dataset"], root, size)


def _common(v: dict[str, Any]) -> None:
    devices.resolve_device(v["device"])
    results_dir = check_str("results_dir", v["results_dir"])
    if Path(results_dir).is_file():
        fail("results_dir", results_dir, "a folder path (this is an existing file)")


def _eps(name: str, value: Any) -> float:
    return check_number(name, value, 0.0, 1.0, lo_open=True)


def _epochs(v: dict[str, Any]) -> None:
    check_optional_int("epochs", v["epochs"], 1, 1000)


def _probe(v: dict[str, Any], b: data.DatasetBundle) -> None:
    check_int("n_probe", v["n_probe"], 1, len(b.test))  # type: ignore[arg-type]


def _model(name: str, value: Any, b: data.DatasetBundle, pretrained: bool = False) -> str:
    if not isinstance(value, str):
        fail(name, value, "a model name (string)")
    return zoo.check_model_fits(name, value, b, pretrained)


# ----------------------------------------------------------------------------- chapters

EXPERIMENT = ("dataset", "data_root", "image_size", "model", "ensemble", "epochs", "max_train", "pretrained", "eps",
              "attack_steps", "n_probe")


def _experiment(v: dict[str, Any]) -> data.DatasetBundle:
    """The chapter-1 setting shared by chapters 1-5 (see :class:`advinterp.experiment.Experiment`)."""
    b = _dataset(v)
    pretrained = check_bool("pretrained", v["pretrained"])
    _model("model", v["model"], b, pretrained)
    check_list("ensemble", v["ensemble"], lambda n, x: _model(n, x, b, pretrained), unique=True, min_len=0)
    if v["model"] in v["ensemble"]:
        fail("ensemble", v["ensemble"], "the other members, without model (it is always a member)")
    _epochs(v)
    _max_train(v, b)
    _eps("eps", v["eps"])
    check_int("attack_steps", v["attack_steps"], 1, 1000)
    _probe(v, b)
    return b


def _layers(name: str, value: Any, model: str, b: data.DatasetBundle) -> list[str] | None:
    """``None`` or a non-empty list of named layers of ``model``."""
    if value is None:
        return None
    net = models.build_model(model, b.input_shape, b.num_classes, b.mean, b.std)
    names = models.layer_names(net)
    spec = models.MODELS[model]
    return check_list(name, value, lambda n, x: x if isinstance(x, str) and x in names else fail(
        n, x, f"a named layer of {model}, e.g. one of {list(spec.layers)}"), unique=True)


def _seeds(v: dict[str, Any]) -> None:
    check_seeds("seeds", v["seeds"])


def _ch01(v: dict[str, Any]) -> dict[str, Any]:
    b = _experiment(v)
    if v["ensemble"] == []:
        fail("ensemble", v["ensemble"], "at least one other member (an ensemble of one is a single-model attack)")
    _model("heldout", v["heldout"], b, v["pretrained"])
    if v["heldout"] == v["model"] or v["heldout"] in v["ensemble"]:
        fail("heldout", v["heldout"], "an architecture that is not an ensemble member (model or ensemble)")
    check_list("eps_grid", v["eps_grid"], _eps, unique=True)
    check_int("seed", v["seed"], 0, 2**31 - 1)
    _common(v)
    return {"bundle": b}


def _dissection(v: dict[str, Any], b: data.DatasetBundle) -> None:
    from .affinity import AFFINITIES

    check_choice("attack", v["attack"], ("fgsm", "illc", "pgd", "ensemble"))
    check_int("k", v["k"], 1, v["n_probe"])
    check_choice("statistic", v["statistic"], ("max", "mean"))
    check_choice("affinity", v["affinity"], AFFINITIES)
    _seeds(v)
    _common(v)


def _ch02(v: dict[str, Any]) -> dict[str, Any]:
    b = _experiment(v)
    layers = _layers("layers", v["layers"], v["model"], b)
    _dissection(v, b)
    check_number("patch_quantile", v["patch_quantile"], 0.0, 0.5, lo_open=True)
    check_int("n_show", v["n_show"], 1, 50)
    check_int("k_show", v["k_show"], 1, v["k"])
    return {"bundle": b, "layers": layers}


def _ch03(v: dict[str, Any]) -> dict[str, Any]:
    b = _experiment(v)
    layers = _layers("layers", v["layers"], v["model"], b)
    if layers is not None and len(layers) < 2:
        fail("layers", v["layers"], "None or at least two layers (the chapter compares layers)")
    _dissection(v, b)
    attacks = check_list("attacks", v["attacks"], lambda n, x: check_choice(n, x, ("fgsm", "illc", "pgd", "ensemble")),
                         unique=True)
    if v["attack"] not in attacks:
        fail("attack", v["attack"], f"one of attacks={attacks}")
    check_int("n_reference", v["n_reference"], 10, len(b.train))  # type: ignore[arg-type]
    check_int("k_nn", v["k_nn"], 1, v["n_reference"])
    return {"bundle": b, "layers": layers}


def _training_spec(v: dict[str, Any], b: data.DatasetBundle) -> None:
    """Chapter 4's adversarial-training settings (also used by chapters 5 and 7 to find its models)."""
    from .attacks import TRAINING_ATTACKS

    check_choice("train_attack", v["train_attack"], TRAINING_ATTACKS)
    _eps("train_eps", v["train_eps"])
    check_int("train_steps", v["train_steps"], 1, 100)
    check_number("alpha", v["alpha"], 0.0, 100.0)
    lambdas = check_list("lambdas", v["lambdas"], lambda n, x: check_number(n, x, 0.0, 1e6), unique=True)
    check_number("lambda_cl", v["lambda_cl"], 0.0, 1e6, lo_open=True)
    if v["lambda_cl"] not in lambdas:
        fail("lambda_cl", v["lambda_cl"], f"one of lambdas={lambdas} (the consistent-loss model it reports)")
    _single_layer(v, b)
    check_bool("normalize", v["normalize"])


def _max_train(v: dict[str, Any], b: data.DatasetBundle) -> None:
    if v["max_train"] is not None:
        check_int("max_train", v["max_train"], 1, len(b.train))  # type: ignore[arg-type]


def _single_layer(v: dict[str, Any], b: data.DatasetBundle) -> str:
    """``layer``: one named layer of ``model``."""
    layers = _layers("layer", [v["layer"]] if isinstance(v["layer"], str) else v["layer"], v["model"], b)
    if layers is None or len(layers) != 1:
        fail("layer", v["layer"], "one layer name")
    return v["layer"]


def _trainable(v: dict[str, Any], *, probes: bool = True) -> data.DatasetBundle:
    """Data, model and recipe of chapters that train from scratch (no pretrained weights)."""
    b = _dataset(v)
    _model("model", v["model"], b)
    if models.MODELS[v["model"]].torchvision:
        fail("model", v["model"], "a model this chapter trains from scratch (not a torchvision ImageNet model)")
    _epochs(v)
    _max_train(v, b)
    if probes:
        _probe(v, b)
    return b


def _ch04(v: dict[str, Any]) -> dict[str, Any]:
    b = _trainable(v)
    _training_spec(v, b)
    check_int("eval_steps", v["eval_steps"], 1, 1000)
    if v["eval_steps"] <= v["train_steps"]:
        fail("eval_steps", v["eval_steps"], f"more than train_steps={v['train_steps']} (the evaluation attack must be stronger)")
    check_int("eval_restarts", v["eval_restarts"], 1, 100)
    check_int("k", v["k"], 1, v["n_probe"])
    from .affinity import AFFINITIES

    check_choice("affinity", v["affinity"], AFFINITIES)
    check_int("n_show", v["n_show"], 1, 50)
    check_int("k_show", v["k_show"], 1, v["k"])
    _seeds(v)
    _common(v)
    return {"bundle": b}


def _ch05(v: dict[str, Any]) -> dict[str, Any]:
    b = _trainable(v)
    check_list("ensemble", v["ensemble"], lambda n, x: _model(n, x, b), unique=True, min_len=0)
    if v["model"] in v["ensemble"]:
        fail("ensemble", v["ensemble"], "the other members, without model (it is always a member)")
    _eps("eps", v["eps"])
    check_int("attack_steps", v["attack_steps"], 1, 1000)
    _training_spec(v, b)
    attacks = check_list("attacks", v["attacks"], lambda n, x: check_choice(n, x, ("fgsm", "illc", "pgd", "ensemble")),
                         unique=True)
    check_choice("attack", v["attack"], ("fgsm", "illc", "pgd", "ensemble"))
    if v["attack"] not in attacks:
        fail("attack", v["attack"], f"one of attacks={attacks}")
    check_choice("baseline", v["baseline"], ("zero", "mean"))
    check_bool("log_odds", v["log_odds"])
    check_bool("weighted", v["weighted"])
    check_int("n_reference", v["n_reference"], 10, len(b.train))  # type: ignore[arg-type]
    check_int("k", v["k"], 1, v["n_reference"])
    check_int("top_k", v["top_k"], 1, 10_000)
    from .affinity import AFFINITIES

    check_choice("affinity", v["affinity"], AFFINITIES)
    _seeds(v)
    _common(v)
    return {"bundle": b}


def _ch06(v: dict[str, Any]) -> dict[str, Any]:
    b = _trainable(v, probes=False)
    _single_layer(v, b)
    check_int("conductance_steps", v["conductance_steps"], 1, 1000)
    check_int("n_mutants", v["n_mutants"], 2, 10_000)
    from .mutation import OPERATORS, n_mutated

    check_choice("mutation_op", v["mutation_op"], OPERATORS)
    net = models.build_model(v["model"], b.input_shape, b.num_classes, b.mean, b.std)
    n_mutated(net, v["mutation_rate"])
    check_list("table_rates", v["table_rates"], lambda n, x: n_mutated(net, x, n), unique=True, min_len=2)
    check_number("target_train_acc", v["target_train_acc"], 0.0, 1.0, lo_open=True, hi_open=True)
    _seeds(v)
    _common(v)
    return {"bundle": b}


def _ch07(v: dict[str, Any]) -> dict[str, Any]:
    b = _trainable(v)
    _training_spec(v, b)
    from .attacks import TRAINING_ATTACKS
    from .interpretability import METHODS
    from .sensitivity import ESTIMATORS

    check_choice("at_attack", v["at_attack"], TRAINING_ATTACKS)
    _eps("at_eps", v["at_eps"])
    check_int("at_steps", v["at_steps"], 1, 100)
    lam = check_list("lambdas_nas", v["lambdas_nas"], lambda n, x: check_number(n, x, 0.0, 1e6, lo_open=True),
                     unique=True)
    check_number("lambda_nas", v["lambda_nas"], 0.0, 1e6, lo_open=True)
    if v["lambda_nas"] not in lam:
        fail("lambda_nas", v["lambda_nas"], f"one of lambdas_nas={lam} (the regularised model it reports)")
    _layers("nas_layers", v["nas_layers"], v["model"], b)
    check_int("units_per_layer", v["units_per_layer"], 1, 100_000)
    check_choice("estimator", v["estimator"], ESTIMATORS)
    check_choice("attribution", v["attribution"], METHODS)
    check_int("n_eval", v["n_eval"], 2, v["n_probe"])
    check_int("eval_steps", v["eval_steps"], 1, 1000)
    check_int("eval_restarts", v["eval_restarts"], 1, 100)
    _seeds(v)
    _common(v)
    return {"bundle": b}


def _ch08(v: dict[str, Any]) -> dict[str, Any]:
    from pathlib import Path

    from . import paths, sweep

    spec_path = Path(check_str("sweep_spec", v["sweep_spec"]))
    spec_path = spec_path if spec_path.is_absolute() else paths.repo_root() / spec_path
    spec = sweep.load_spec(spec_path, name="sweep_spec")
    runs_root = Path(check_str("runs_dir", v["runs_dir"]))
    runs_root = runs_root if runs_root.is_absolute() else paths.repo_root() / runs_root
    check_bool("rerun", v["rerun"])
    check_str("results_dir", v["results_dir"])
    return {"spec_path": spec_path, "runs_root": runs_root, "table_path": runs_root / spec["name"] / "table.csv"}


DISSECTION = ("attack", "k", "statistic", "affinity", "seeds", "device", "results_dir")
TRAINING = ("train_attack", "train_eps", "train_steps", "alpha", "lambdas", "lambda_cl", "layer", "normalize")

#: chapter stem -> (declared parameter names, checker returning derived entries)
CHAPTERS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "01-adversarial-examples": (
        (*EXPERIMENT, "heldout", "eps_grid", "seed", "device", "results_dir"),
        _ch01,
    ),
    "02-neurons-and-patches": (
        (*EXPERIMENT, "layers", *DISSECTION, "patch_quantile", "n_show", "k_show"),
        _ch02,
    ),
    "03-neuron-consistency": (
        (*EXPERIMENT, "layers", *DISSECTION, "attacks", "n_reference", "k_nn"),
        _ch03,
    ),
    "04-consistent-loss": (
        ("dataset", "data_root", "image_size", "model", "epochs", "max_train", "n_probe", *TRAINING, "eval_steps",
         "eval_restarts", "k", "affinity", "n_show", "k_show", "seeds", "device", "results_dir"),
        _ch04,
    ),
    "05-tracing-and-detection": (
        ("dataset", "data_root", "image_size", "model", "ensemble", "epochs", "max_train", "n_probe", "eps",
         "attack_steps", *TRAINING, "attacks", "attack", "baseline", "log_odds", "top_k", "weighted", "k",
         "n_reference", "affinity", "seeds", "device", "results_dir"),
        _ch05,
    ),
    "06-error-detection": (
        ("dataset", "data_root", "image_size", "model", "epochs", "max_train", "target_train_acc", "layer",
         "conductance_steps", "n_mutants", "mutation_op", "mutation_rate", "table_rates", "seeds", "device",
         "results_dir"),
        _ch06,
    ),
    "07-sensitivity-regularization": (
        ("dataset", "data_root", "image_size", "model", "epochs", "max_train", "n_probe", "at_attack", "at_eps",
         "at_steps", "lambdas_nas", "lambda_nas", "nas_layers", "units_per_layer", "estimator", *TRAINING,
         "attribution", "n_eval", "eval_steps", "eval_restarts", "seeds", "device", "results_dir"),
        _ch07,
    ),
    "08-side-by-side": (("sweep_spec", "runs_dir", "rerun", "results_dir"), _ch08),
}


def validate(chapter: str, namespace: Mapping[str, Any]) -> ChapterParams:
    """Validate chapter ``chapter``'s parameters, read from ``namespace`` (a notebook's ``globals()``)."""
    if chapter not in CHAPTERS:
        raise KeyError(f"no parameter specification for chapter {chapter!r}; known: {sorted(CHAPTERS)}")
    names, checker = CHAPTERS[chapter]
    missing = [n for n in names if n not in namespace]
    if missing:
        raise KeyError(f"chapter {chapter} does not define parameters {missing}")
    values = {n: namespace[n] for n in names}
    derived = checker(values)
    return ChapterParams({**values, **derived})

