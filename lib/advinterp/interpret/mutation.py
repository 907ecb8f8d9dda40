"""Model mutation and the label change rate (Wang et al., ICSE 2019), as Wu et al. use it.

A *mutant* changes a fraction ``rate`` (gamma) of all conv filters of the model, with one of
Wang et al.'s operators (sec. 3.2, applied to whole conv filters):

* ``NAI`` (neuron activation inverse): the filter's kernel and bias are negated, so its
  pre-activation output changes sign;
* ``GF`` (Gaussian fuzzing): the filter's kernel is replaced by Gaussian noise with, at each
  kernel position, the mean and standard deviation of that position over the layer's filters;
* ``WS`` (weight shuffling): the filter's kernel weights are permuted at random.

A mutant is kept only if its accuracy on a validation set exceeds ``0.9 x`` the original's. The
**label change rate** of an input is the fraction of kept mutants whose prediction differs from
the original model's: wrong (or adversarial) inputs sit near decision boundaries and flip more.

Mutants are drawn **without replacement**: an NAI mutant is fixed by the filters it negates, so a
draw that repeats an earlier one is skipped and only ``C(filters, changed)`` distinct NAI mutants
exist (48 single-filter mutants of a 48-filter network; :func:`distinct_mutants`); a GF or WS
mutant draws fresh noise or a fresh permutation and is distinct from every other. Each mutant is
generated deterministically from ``(seed, index)`` and evaluated once on the one model, which is
mutated in place and restored: memory never holds N copies.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch
from torch import nn

from ..core import cache, progress
from ..core.devices import derive_seed, generator
from ..core.stats import wilson_interval
from ..core.validation import check_choice, check_int, check_number, fail
from ..data import datasets
from ..models.predict import predict

OPERATORS = ("NAI", "GF", "WS")
#: operators whose mutant is fixed by the filters it changes (the others draw noise or a permutation)
DETERMINISTIC = ("NAI",)


def conv_filters(model: nn.Module) -> list[tuple[nn.Conv2d, int]]:
    """Every (conv layer, output channel) of the model."""
    return [(m, c) for m in model.modules() if isinstance(m, nn.Conv2d) for c in range(m.out_channels)]


def n_mutated(model: nn.Module, rate: float, name: str = "mutation_rate") -> int:
    """How many filters a mutant changes: ``round(rate * number of conv filters)``; a rate that
    changes none is a ``ValueError`` (named ``name``)."""
    check_number(name, rate, 0.0, 1.0, lo_open=True)
    total = len(conv_filters(model))
    if total == 0:
        fail(name, rate, "a model with conv layers (this one has none to mutate)")
    n = round(rate * total)
    if n < 1:
        fail(name, rate, f"at least {0.5 / total:.4f}: this model has {total} conv filters, so "
             f"{rate} x {total} rounds to 0 and no filter would mutate")
    return n


def distinct_mutants(model: nn.Module, operator: str, rate: float) -> int | None:
    """How many distinct mutants ``operator`` can make at ``rate``: ``C(filters, changed)`` for NAI,
    None (unbounded) for the operators that draw noise or a permutation."""
    check_choice("mutation_op", operator, OPERATORS)
    if operator not in DETERMINISTIC:
        return None
    return math.comb(len(conv_filters(model)), n_mutated(model, rate))


class _Mutation:
    """One mutant, applied in place and undone."""

    def __init__(self, model: nn.Module, operator: str, rate: float, seed: int) -> None:
        filters = conv_filters(model)
        g = generator(seed)
        chosen = torch.randperm(len(filters), generator=g)[: n_mutated(model, rate)]
        #: which filters change: with NAI (deterministic) two mutants that change the same filters are
        #: the same model
        self.filters = tuple(sorted(chosen.tolist()))
        self.saved: list[tuple[nn.Conv2d, int, torch.Tensor, torch.Tensor | None]] = []
        self.new: list[tuple[nn.Conv2d, int, torch.Tensor, torch.Tensor | None]] = []
        for i in chosen.tolist():
            conv, c = filters[i]
            w = conv.weight.data
            bias = conv.bias.data[c].clone() if conv.bias is not None else None
            self.saved.append((conv, c, w[c].clone(), bias))
            if operator == "NAI":
                new_w, new_b = -w[c], (-bias if bias is not None else None)
            elif operator == "WS":
                order = torch.randperm(w[c].numel(), generator=g).to(w.device)
                new_w, new_b = w[c].flatten()[order].view_as(w[c]), bias
            else:
                mean, std = w.mean(0), w.std(0)
                noise = torch.randn(w[c].shape, generator=g).to(w.device)
                new_w, new_b = mean + std * noise, bias
            self.new.append((conv, c, new_w.clone(), new_b))

    def __enter__(self) -> None:
        for conv, c, w, b in self.new:
            conv.weight.data[c] = w
            if b is not None:
                conv.bias.data[c] = b

    def __exit__(self, *exc: object) -> None:
        for conv, c, w, b in reversed(self.saved):
            conv.weight.data[c] = w
            if b is not None:
                conv.bias.data[c] = b


@dataclass
class MutationResult:
    """Predictions of the kept mutants on the evaluated inputs."""

    operator: str
    rate: float
    original: torch.Tensor      # (n_inputs,) the original model's predictions
    predictions: torch.Tensor   # (n_mutants, n_inputs)
    tried: int                  # distinct mutants generated, kept or not
    possible: int | None = None  # distinct mutants the operator can make at this rate (None: unbounded)

    @property
    def kept(self) -> int:
        """Accepted mutants, all distinct (drawn without replacement)."""
        return len(self.predictions)

    @property
    def exhausted(self) -> bool:
        """Whether every distinct mutant the operator can make was tried."""
        return self.possible is not None and self.tried >= self.possible

    @property
    def changes(self) -> torch.Tensor:
        """``(n_mutants, n_inputs)`` 1 where the mutant's label differs from the original's."""
        return (self.predictions != self.original.unsqueeze(0)).float()

    def lcr(self, n_mutants: int | None = None) -> torch.Tensor:
        """Label change rate per input over the first ``n_mutants`` kept mutants (all by default)."""
        return self.changes[:n_mutants].mean(0)


#: tries before :func:`mutate_and_predict` may stop early for a hopeless acceptance rate
EARLY_CHECK = 100


#: z of the Wilson bound behind the early stop (about 99.9 % one-sided, so stopping is rarely wrong)
EARLY_STOP_Z = 3.0


def mutate_and_predict(model: nn.Module, x: torch.Tensor, x_val: torch.Tensor | None, y_val: torch.Tensor, *,
                       operator: str = "NAI", rate: float = 0.05, n_mutants: int = 100, seed: int = 0,
                       accept: float = 0.9, max_tries: int | None = None,
                       val_index: torch.Tensor | None = None, allow_fewer: bool = False) -> MutationResult:
    """Generate ``n_mutants`` distinct accepted mutants and record their predictions on ``x``.

    A mutant is accepted when its accuracy on the validation images exceeds ``accept`` times the
    original's: ``(x_val, y_val)``, or, with ``x_val=None``, the images ``x[val_index]`` with labels
    ``y_val`` (then one forward pass over ``x`` serves both). Mutants are drawn without replacement
    (an NAI draw that repeats an earlier one's filters is skipped and not counted). Raises
    ``RuntimeError`` if fewer are accepted within ``max_tries`` distinct mutants (default
    ``20 * n_mutants``) or once every distinct mutant has been tried (NAI at a rate that changes few
    of few filters), so the reader can change ``mutation_rate`` or ``mutation_op``; with
    ``allow_fewer`` either case returns the accepted ones instead (their number is
    :attr:`MutationResult.kept`, for a table that reports it). It stops as soon as (after at least
    :data:`EARLY_CHECK` tries) even an optimistic acceptance rate, the upper Wilson bound at z = 3 of
    the rate so far, would leave it short (a rate that failed a CIFAR-10 run took all 2,000 tries,
    13 minutes, to say so).
    """
    check_choice("mutation_op", operator, OPERATORS)
    check_int("n_mutants", n_mutants, 1, 100_000)
    n_mutated(model, rate)
    max_tries = max_tries or 20 * n_mutants
    if x_val is None and val_index is None:
        raise ValueError("x_val=None needs val_index (which images of x validate a mutant)")
    possible = distinct_mutants(model, operator, rate)
    budget = max_tries if possible is None else min(max_tries, possible)

    def val_accuracy(pred_x: torch.Tensor | None) -> float:
        pred = pred_x[val_index] if x_val is None else predict(model, x_val)  # type: ignore[index]
        return float((pred == y_val).float().mean())

    original = predict(model, x)
    base_acc = val_accuracy(original)
    kept: list[torch.Tensor] = []
    seen: set[tuple[int, ...]] = set()  # NAI: the filter sets drawn so far
    tried = draws = 0
    bar = progress.bar(total=n_mutants, desc=f"{operator} mutants (rate {rate})", leave=False)
    with torch.no_grad():
        while len(kept) < n_mutants and tried < budget and draws < 50 * budget:
            mutation = _Mutation(model, operator, rate, derive_seed(seed, operator, rate, draws))
            draws += 1
            if operator in DETERMINISTIC:
                if mutation.filters in seen:
                    continue
                seen.add(mutation.filters)
            tried += 1
            with mutation:
                pred_x = predict(model, x) if x_val is None else None
                if val_accuracy(pred_x) > accept * base_acc:
                    kept.append(pred_x if pred_x is not None else predict(model, x))
                    bar.update(1)
            if tried >= EARLY_CHECK:
                optimistic_rate = wilson_interval(len(kept), tried, EARLY_STOP_Z)[1]
                if len(kept) + optimistic_rate * (budget - tried) < n_mutants:
                    break
    bar.close()
    result = MutationResult(operator, rate, original,
                            torch.stack(kept) if kept else original.new_empty((0, len(original))), tried, possible)
    if len(kept) < n_mutants and not allow_fewer:
        changed = f"{n_mutated(model, rate)} of {len(conv_filters(model))} conv filters"
        if possible is not None and tried >= possible:
            raise RuntimeError(f"only {len(kept)} of the {possible} distinct {operator} mutants at mutation_rate={rate} "
                               f"({changed}) kept {accept:.0%} of the original accuracy, fewer than "
                               f"n_mutants={n_mutants}: use mutation_op GF or WS (each draw a distinct mutant), "
                               "another mutation_rate, or a network with more filters")
        early = (f" (stopped after {tried} of {budget} tries: even at an optimistic acceptance rate the rest "
                 "would not reach n_mutants)" if tried < budget else "")
        raise RuntimeError(f"only {len(kept)} of {tried} {operator} mutants at mutation_rate={rate} "
                           f"({changed}) kept {accept:.0%} of the original accuracy{early}; use a smaller mutation_rate")
    return result


def sprt(changes: torch.Tensor, threshold: float, *, delta: float = 0.05, alpha: float = 0.05,
         beta: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Wang et al.'s sequential probability ratio test on each input's mutant label changes.

    Tests H0: LCR <= threshold - delta against H1: LCR >= threshold + delta, reading mutants in
    order and stopping as soon as the likelihood ratio crosses a bound. Returns ``(flagged,
    mutants_used)`` per input (flagged = H1 accepted; undecided inputs are decided by the final
    ratio's side of 0).
    """
    p0, p1 = max(threshold - delta, 1e-6), min(threshold + delta, 1 - 1e-6)
    upper, lower = torch.log(torch.tensor((1 - beta) / alpha)), torch.log(torch.tensor(beta / (1 - alpha)))
    step1, step0 = torch.log(torch.tensor(p1 / p0)), torch.log(torch.tensor((1 - p1) / (1 - p0)))
    llr = torch.cumsum(changes * step1 + (1 - changes) * step0, dim=0)  # (n_mutants, n_inputs)
    crossed = (llr >= upper) | (llr <= lower)
    any_cross = crossed.any(0)
    first = torch.where(any_cross, crossed.float().argmax(0), torch.full_like(any_cross, len(changes) - 1, dtype=torch.long))
    final = llr.gather(0, first.view(1, -1)).squeeze(0)
    return final > 0, first + 1


def cached_mutants(model_key: str, data_identity: str, model: nn.Module, x: torch.Tensor, y_val: torch.Tensor,
                   val_index: torch.Tensor, *, operator: str, rate: float, n_mutants: int, seed: int,
                   allow_fewer: bool) -> MutationResult:
    """:func:`mutate_and_predict` (mutants accepted on the images ``val_index`` of ``x``, predictions on
    all of ``x``), cached by the model's key, the data's identity, every setting and this module's code."""
    def compute() -> dict[str, torch.Tensor]:
        res = mutate_and_predict(model, x, None, y_val, val_index=val_index, operator=operator, rate=rate,
                                 n_mutants=n_mutants, seed=seed, allow_fewer=allow_fewer)
        return {"original": res.original, "predictions": res.predictions, "tried": torch.tensor(res.tried),
                "possible": torch.tensor(-1 if res.possible is None else res.possible)}

    description = {"model": model_key, "data": data_identity, "code": cache.code_version(sys.modules[__name__], datasets),
                   "op": operator, "rate": rate, "n": n_mutants, "seed": seed, "val": val_index.tolist()}
    found = cache.memoized("mutants", description, compute)
    possible = int(found["possible"])
    return MutationResult(operator, rate, found["original"], found["predictions"], int(found["tried"]),
                          None if possible < 0 else possible)

