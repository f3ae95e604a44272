"""Dropout on this machine: clickvision's uniform-mask Dropout against torch's nn.Dropout.

clickvision.models.dropout draws the mask from torch.rand so that it is the same on every CPU
(torch's Bernoulli kernel takes MKL's stream on Intel processors and its own elsewhere). This
measures what that costs or saves: forward + backward of one training step at the shapes the
workbook's heads drop (batch x width: paper A's classifier input, paper C's and D's hidden
layers), one thread, reported as a ratio against nn.Dropout measured in the same run (absolute
times move with the machine's load, ratios much less). Configurations are interleaved over
``--repeats`` rounds and the best round is kept.

    python bench/bench_dropout.py [--repeats 5] [--steps 200]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from torch import nn

from clickvision.models.dropout import Dropout

SHAPES = [(128, 1256), (256, 1280), (128, 256), (256, 128)]


def step_ms(layer: nn.Module, x: torch.Tensor, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        layer(x).sum().backward()
    return (time.perf_counter() - t0) * 1e3 / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers = {"nn.Dropout (reference)": nn.Dropout(0.5).train(), "clickvision Dropout": Dropout(0.5).train()}
    rows = []
    for shape in SHAPES:
        x = torch.randn(*shape, requires_grad=True)
        best = {name: float("inf") for name in layers}
        for name, layer in layers.items():  # warm-up
            step_ms(layer, x, 10)
        for _ in range(args.repeats):
            for name, layer in layers.items():
                best[name] = min(best[name], step_ms(layer, x, args.steps))
        ref = best["nn.Dropout (reference)"]
        rows += [{"shape": f"{shape[0]} x {shape[1]}", "layer": name, "ms per step": round(ms, 3),
                  "ratio to reference": round(ms / ref, 2)} for name, ms in best.items()]
    print(f"forward + backward, p = 0.5, 1 thread, best of {args.repeats} rounds of {args.steps} steps")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
