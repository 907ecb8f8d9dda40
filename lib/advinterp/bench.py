"""Performance benchmarks of the book's hot paths (``make bench``; < 5 minutes on 2 CPU cores).

Each row is a ratio measured on the machine it runs on, against the budget of the design: the
median of :data:`REPEATS` repeats in which numerator and denominator are timed alternately, with
the min-max over the repeats (one shot on a shared 2-core machine read the same ratio as 17.4 and
5.3 in a row):

* PGD-k time / (k forward+backward passes of the same batch) - target <= 1.1;
* APGD-100 (AutoAttack's core member) / 100 forward+backward passes - about 1;
* consistent-loss epoch / standard epoch - at most train_steps + 2.5;
* top-K mining throughput / forward-only throughput - target >= 0.9;
* our conductance / Captum's ``LayerConductance`` on the same layer and batch;
* our PGD / a reference implementation (torchattacks), when installed.

``python -m advinterp.bench --json book/recorded/bench-<machine>.json`` also records the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .attacks import apgd, linf
from .core.devices import describe_machine, resolve_device, seeded_rng
from .interpret.conductance import layer_conductance, zero_baseline
from .interpret.topk import mine_topk
from .models.architectures import build_model
from .training.adversarial import AdversarialObjective
from .training.objectives import CrossEntropy

#: alternating repeats behind each figure (the median is reported, with the min-max)
REPEATS = 5


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def _once(fn: Callable[[], object], device: torch.device | None) -> float:
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _ratio(numerator: Callable[[], object], denominator: Callable[[], object], *, scale: float = 1.0,
           repeats: int = REPEATS, device: torch.device | None = None) -> dict[str, float]:
    """``time(numerator) / (scale * time(denominator))`` measured ``repeats`` times, the two timed
    alternately (after one warm-up each) so that a slow spell of a shared machine hits both: the
    median and the min-max of the per-repeat ratios."""
    numerator(), denominator()
    _sync(device)
    ratios = []
    for _ in range(repeats):
        a = _once(numerator, device)
        b = _once(denominator, device)
        ratios.append(a / (scale * b))
    arr = np.asarray(ratios)
    return {"value": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max()), "repeats": repeats}


def run(device: str = "auto", batch: int = 256, k: int = 20) -> list[dict[str, object]]:
    dev = resolve_device(device)
    with seeded_rng(0, dev):
        return _run(dev, batch, k)


def _run(dev: torch.device, batch: int, k: int) -> list[dict[str, object]]:
    model = build_model("small_cnn", (1, 28, 28), 10, [0.13], [0.31]).to(dev).eval()
    x = torch.rand(batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    rows: list[dict[str, object]] = []

    def fwd_bwd() -> None:
        xg = x.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)

    def frozen_pass() -> None:
        with linf.frozen([model]):
            fwd_bwd()

    pgd_k = _ratio(lambda: linf.pgd([model], x, y, eps=0.3, steps=k), frozen_pass, scale=k, device=dev)
    rows.append({"benchmark": f"PGD-{k} / {k} forward+backward", **pgd_k, "target": "<= 1.1"})
    apgd_100 = _ratio(lambda: apgd.apgd(model, x, y, eps=0.3, n_iter=100), frozen_pass, scale=100, device=dev)
    rows.append({"benchmark": "APGD-100 / 100 forward+backward", **apgd_100, "target": "about 1"})

    train_model = build_model("small_cnn", (1, 28, 28), 10, [0.13], [0.31]).to(dev)
    opt = torch.optim.Adam(train_model.parameters(), 1e-3)
    xs, ys = torch.rand(1024, 1, 28, 28, device=dev), torch.randint(0, 10, (1024,), device=dev)

    def epoch(objective: object) -> None:
        for i in range(0, len(xs), 64):
            out = objective(train_model, xs[i:i + 64], ys[i:i + 64])  # type: ignore[operator]
            opt.zero_grad()
            out.loss.backward()
            opt.step()

    steps = 3
    cl = _ratio(lambda: epoch(AdversarialObjective(eps=0.3, steps=steps, lam=10.0)), lambda: epoch(CrossEntropy()),
                device=dev)
    rows.append({"benchmark": f"consistent-loss epoch / standard epoch (PGD-{steps})", **cl,
                 "target": f"<= {steps + 2.5}"})

    probes = torch.rand(4096, 1, 28, 28, device=dev)

    def forward_only() -> None:
        with torch.no_grad():
            for i in range(0, len(probes), 256):
                model(probes[i:i + 256])

    mining = _ratio(forward_only, lambda: mine_topk(model, probes, ["conv2", "fc1"], 20), device=dev)
    rows.append({"benchmark": "top-K mining throughput / forward throughput", **mining, "target": ">= 0.9"})

    from captum.attr import LayerConductance

    xc = x[:64]
    target = model(xc).argmax(1)
    lc = LayerConductance(model, model.conv2)
    cond = _ratio(lambda: layer_conductance(model, xc, "conv2", steps=10, reduce="none"),
                  lambda: lc.attribute(xc, baselines=zero_baseline(model, xc), target=target, n_steps=10,
                                       method="riemann_trapezoid"), device=dev)
    rows.append({"benchmark": "conductance (ours, right rule) / Captum LayerConductance", **cond,
                 "target": "<= 1 is faster"})
    try:
        import torchattacks  # type: ignore[import-not-found]

        ref = torchattacks.PGD(model, eps=0.3, alpha=2.5 * 0.3 / k, steps=k, random_start=True)
        ours = _ratio(lambda: linf.pgd([model], x, y, eps=0.3, steps=k), lambda: ref(x, y), device=dev)
        rows.append({"benchmark": f"PGD-{k} (ours) / torchattacks PGD", **ours, "target": "<= 1 is faster"})
    except ImportError:
        rows.append({"benchmark": f"PGD-{k} (ours) / torchattacks PGD", "value": None,
                     "target": "torchattacks not installed"})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m advinterp.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = run(args.device)
    print(f"machine: {describe_machine()}")
    width = max(len(str(r["benchmark"])) for r in rows)
    for r in rows:
        value = "n/a" if r["value"] is None else f"{r['value']:.2f} [{r['min']:.2f}-{r['max']:.2f}]"
        print(f"{str(r['benchmark']).ljust(width)}  {value:>17}  (target {r['target']})")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": describe_machine(), "date": time.strftime("%Y-%m-%d"), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
