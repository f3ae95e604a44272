"""Benchmark: the cost of a trainable visual trunk against the frozen-feature head.

A training step (forward, cross-entropy, backward, Adam) of a linear classifier (``--classes``
41, the default emoji class set) on a batch of ``--batch`` 64 cached activations, with the
trunk (:class:`clickvision.models.trunk.Trunk`, efficientnet-lite0 with its ImageNet
weights) training its last 0, 1, 2, ... blocks (``--blocks`` 0,1,2): 0 is the frozen-feature
head on pooled vectors, the reference every ratio is against, measured in the same run.
The activations are SIMULATED (Gaussian, the shape the cache stores at ``--size`` 128 px,
float16 like the cache): only their shape matters for the time. A few warm-up steps are
excluded; each configuration then runs ``--steps`` steps, in rounds interleaved with the
other configurations so machine load hits them alike; the median round is reported.

Every trunk is timed twice: as it trains (a 1x1 convolution followed by batch norm on its
running statistics run as one matrix product, ``Trunk(fold_pointwise=True)``) and through the
convolution and batch-norm modules (``fold_pointwise=False``); the last column is their ratio.

Also printed, for the budget: the images/s of computing the cached activations from pixels
is bench_backbone.py's subject (not repeated here). Not run by the tests::

    .venv/bin/python bench/bench_trunk.py
    .venv/bin/python bench/bench_trunk.py --blocks 0,1,2,3 --threads 1
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", default="0,1,2", help="comma-separated trainable block counts (0 = frozen head)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=41)
    ap.add_argument("--steps", type=int, default=10, help="steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args(argv)

    from clickvision.models.backbone import load_backbone
    from clickvision.models.trunk import Trunk

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bb = load_backbone()
    blocks = [int(b) for b in args.blocks.split(",")]
    if 0 not in blocks:
        blocks = [0, *blocks]
    setups = {}
    x = torch.zeros(1, 3, args.size, args.size)
    configs = [(n, fold) for n in blocks for fold in ((True, False) if n else (True,))]
    for n, fold in configs:
        trunk = Trunk(bb, n, fold_pointwise=fold)
        with torch.no_grad():
            shape = bb.forward_before(x, n).shape[1:] if n else (bb.feature_dim,)
        acts = torch.randn(args.batch, *shape).half()
        y = torch.randint(0, args.classes, (args.batch,))
        model = nn.Sequential(trunk, nn.Linear(trunk.out_dim, args.classes)).train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=1e-3)
        setups[n, fold] = (model, opt, acts, y, sum(p.numel() for p in params), tuple(shape))

    def step(config: tuple[int, bool]) -> None:
        model, opt, acts, y, _, _ = setups[config]
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(acts), y)
        loss.backward()
        opt.step()

    for config in configs:  # warm-up
        for _ in range(3):
            step(config)
    times: dict[tuple[int, bool], list[float]] = {c: [] for c in configs}
    for _ in range(args.rounds):
        for config in configs:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(config)
            times[config].append((time.perf_counter() - t0) / args.steps)
    ref = statistics.median(times[0, True])
    print(f"trunk training step, efficientnet-lite0 at {args.size} px, batch {args.batch}, "
          f"{torch.get_num_threads()} torch threads, median of {args.rounds} rounds x {args.steps} steps")
    print(f"{'blocks':>6} {'cached input':>16} {'trainable params':>17} {'ms/step':>9} {'images/s':>9} "
          f"{'x frozen head':>14} {'unfolded ms':>12} {'x faster folded':>16}")
    for n in blocks:
        med = statistics.median(times[n, True])
        _, _, _, _, n_params, shape = setups[n, True]
        unfolded = (f"{1000 * statistics.median(times[n, False]):>12.2f} "
                    f"{statistics.median(times[n, False]) / med:>16.2f}") if n else f"{'':>12} {'':>16}"
        print(f"{n:>6} {'x'.join(map(str, shape)):>16} {n_params:>17,} {1000 * med:>9.2f} "
              f"{args.batch / med:>9.0f} {med / ref:>14.1f} {unfolded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
