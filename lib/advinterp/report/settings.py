"""What ran beside what the paper ran: each chapter declares the settings that matter to its claims
(:class:`Setting`: a label, the parameters that set it, the paper's value) and :func:`settings_table`
words them from the parameters of the runs themselves (this page's results and each recorded tier's),
never from typed text. :func:`stated_settings` finds settings typed in a chapter's prose, so that a test
can fail when one contradicts what a run recorded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .tables import Table

#: the column of the paper's values
PAPER = "paper"
#: words that attribute a sentence to a paper (its numbers are the paper's, not a run's)
ATTRIBUTED = re.compile(r"et al\.|\{cite[tp]?\}|\bpaper\b|\bauthors\b", re.IGNORECASE)


def _word(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_word(v) for v in value) if value else "none"
    return str(value)


@dataclass(frozen=True)
class Setting:
    """One row of the table: ``label``, the ``params`` that set it (read from each run), the
    ``paper``'s value in words, and optionally ``show``, which words a run's value from its
    parameters (by default the parameters' values joined by " / ")."""

    label: str
    params: tuple[str, ...]
    paper: str
    show: Callable[[Mapping[str, Any]], str] | None = None

    def value(self, params: Mapping[str, Any]) -> str:
        """This setting in a run with ``params`` ("not recorded" where the run lacks a parameter)."""
        if any(p not in params for p in self.params):
            return "not recorded"
        if self.show is not None:
            return self.show(params)
        return " / ".join(_word(params[p]) for p in self.params)


def settings_frame(settings: Sequence[Setting], runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per setting: its label, the paper's value, then its value in each run of ``runs``
    (``{column: params}``, in order)."""
    rows = [{"setting": s.label, PAPER: s.paper, **{name: s.value(p) for name, p in runs.items()}} for s in settings]
    return pd.DataFrame(rows, columns=["setting", PAPER, *runs])


def settings_table(settings: Sequence[Setting], runs: Mapping[str, Mapping[str, Any]]) -> Table:
    """:func:`settings_frame` for display (whole cells in HTML, a list-table in the PDF)."""
    return Table(settings_frame(settings, runs), font_size="0.85em")


# ---- settings typed in prose ---------------------------------------------------------------------

#: the layer names the library's networks use (a layer typed in prose is a setting too)
LAYER_NAME = r"(?:conv\d+|fc\d+|layer\d+|features\[\d+\]|block\d+)"
#: the networks' registered names (``advinterp.models.architectures.MODELS``), matched as whole words
NETWORK_NAME = r"(?:small_cnn|small_resnet|wide_cnn|mlp|vgg_cifar|resnet20|resnet18|alexnet|vgg16|resnet50)"

#: sentence patterns that state a setting, each with the parameters the value may be the value of
STATED: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"\b(\d[\d,]*) (?:accepted |distinct )?mutants\b"), ("n_mutants",)),
    (re.compile(r"\bgamma\s*=\s*(\d*\.?\d+)"), ("mutation_rate", "table_rates")),
    (re.compile(r"\brates? (?:of )?(\d*\.\d+)"), ("mutation_rate", "table_rates")),
    (re.compile(r"\b(\d+) (?:training |fine-tuning )?epochs\b"), ("epochs", "finetune_epochs")),
    (re.compile(r"\bPGD-(\d+)\b"), ("eval_steps", "train_steps", "at_steps", "attack_steps")),
    (re.compile(r"(?<!every )\b(\d+) (?:sign |attack |PGD )?steps\b"), ("attack_steps", "eval_steps", "train_steps", "at_steps")),
    (re.compile(r"\bm\s*=\s*(\d+)\b"), ("conductance_steps",)),
    (re.compile(r"\b(\d[\d,]*) (?:test |probe )?(?:probes|probe images)\b"), ("n_probe", "n_robust")),
    (re.compile(r"\b(\d[\d,]*) real (?:training |reference )?images\b"), ("n_reference",)),
    (re.compile(r"\b(\d[\d,]*) permutations\b"), ("n_permutations",)),
    (re.compile(r"\bK\s*=\s*(\d+)\b"), ("k",)),
    (re.compile(r"\btop-(\d+)\b(?! influential)"), ("k", "k_show")),
    (re.compile(r"\btop-(\d+) influential"), ("top_k",)),
    (re.compile(r"\b(\d+) restarts\b"), ("eval_restarts",)),
    (re.compile(r"\b(?:eps|ε|epsilon)\s*=\s*(\d*\.?\d+(?:/255)?)"), ("eps", "train_eps", "at_eps", "eps_grid")),
    (re.compile(r"\b(?:λ|lambda)\s*=\s*(\d*\.?\d+)"), ("lambda_cl", "lambdas", "lambda_nas", "lambdas_nas")),
    (re.compile(r"\b(?:layer|at|on|of) (" + LAYER_NAME + r")\b"), ("layer", "layers", "conductance_layer",
                                                                    "trace_layers", "nas_layers")),
    (re.compile(r"\b(" + NETWORK_NAME + r")\b(?! (?:has|would|reaches|is held))"), ("model", "ensemble", "heldout")),
)
def sentences(markdown: str) -> list[str]:
    """The sentences of a markdown text (fence lines, code spans and roles removed: a parameter's name
    or a glued value is not a typed setting; a fenced block's text, e.g. a margin note, is kept)."""
    text = re.sub(r"^\s*(```|:::).*$", " ", markdown, flags=re.MULTILINE)
    text = re.sub(r"\{[\w:-]+\}`[^`\n]*`|`[^`\n]*`", " ", text)
    text = re.sub(r"\s+", " ", text)
    return [s for s in re.split(r"(?<=;)\s+|(?<=[.:!?])\s+(?=[A-Z*(])", text) if s]


#: characters before a number searched for a paper's attribution ("Wu et al.'s gamma = 0.01")
ATTRIBUTION_REACH = 40


def stated_settings(markdown: str) -> list[tuple[str, tuple[str, ...], str]]:
    """Every setting the prose states as a number: ``(number, parameters it may be, sentence)``,
    skipping a number attributed to a paper (:data:`ATTRIBUTED` within :data:`ATTRIBUTION_REACH`
    characters before it, in its sentence)."""
    out = []
    for sentence in sentences(markdown):
        for pattern, params in STATED:
            for m in pattern.finditer(sentence):
                if not ATTRIBUTED.search(sentence[max(0, m.start() - ATTRIBUTION_REACH):m.start()]):
                    out.append((m.group(1).replace(",", ""), params, sentence))
    return out


def contradictions(markdown: str, runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Stated settings that no candidate parameter of some run has: ``"'100 mutants ...' but n_mutants
    = 50 in a run"``. A parameter a run does not have is no contradiction (another chapter's)."""
    runs = list(runs)
    found = []
    for number, params, sentence in stated_settings(markdown):
        for run in runs:
            values = [run[p] for p in params if p in run]
            if values and not any(_same(number, v) for v in values):
                found.append(f"{sentence!r} states {number}, but {' / '.join(f'{p} = {run[p]}' for p in params if p in run)} "
                             "in a run")
                break
    return found


def unheld(markdown: str, runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Stated settings that no run holds (for text that describes many chapters at once, the README or
    the appendix, whose sentences name no one run): ``"'PGD-40 ...' states 40, which no run has"``."""
    runs = list(runs)
    found = []
    for number, params, sentence in stated_settings(markdown):
        having = [run[p] for run in runs for p in params if p in run]
        if having and not any(_same(number, v) for v in having):
            found.append(f"{sentence!r} states {number}, which no run has as {' / '.join(params)}")
    return found


def _same(stated: str, value: Any) -> bool:
    """Whether a stated value is the run's value (or one of its values, for a list parameter): numbers
    compared as numbers (``8/255`` as a fraction), names as names."""
    if isinstance(value, list | tuple):
        return any(_same(stated, v) for v in value)
    try:
        number = (float(stated[:-4]) / 255) if stated.endswith("/255") else float(stated)
        return math.isclose(number, float(value), rel_tol=1e-3)
    except (TypeError, ValueError):
        return stated == str(value)
