"""Backbone throughput on this machine: images/second of EfficientNet-Lite0 feature extraction.

Two measurements, each reported as images/s and as a ratio against a reference taken in
the same run (absolute numbers move with the machine's load; ratios much less):

1. inference only (random normalised tensors, batch 64, ``inference_mode``): 128 vs 224 px,
   default (NCHW) vs ``channels_last`` memory format;
2. end to end through :func:`clickvision.features.compute_features` (PNG decode, resize,
   normalise, inference): 128 vs 224 px, DataLoader ``num_workers`` 0 vs 1.

Images are the real emoji PNGs when ``--images`` names a folder (e.g. data/processed/emoji),
else synthetic 72 px RGBA PNGs (coloured discs on transparency, like emoji) in a temp folder.
Every shape is warmed up first; configurations are interleaved over ``--repeats`` rounds
and the best round is kept (other processes on the machine only ever slow a round down).

    python bench/bench_backbone.py [--n 256] [--repeats 2] [--images DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from clickvision.data.base import ImageSet
from clickvision.features import compute_features
from clickvision.models.backbone import load_backbone


def synthetic_emoji(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` 72 px RGBA PNGs with a few random discs each (stand-ins for emoji)."""
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        im = Image.new("RGBA", (72, 72), (0, 0, 0, 0))
        draw = ImageDraw.Draw(im)
        for _ in range(3):
            x, y, r = rng.integers(10, 62), rng.integers(10, 62), rng.integers(6, 30)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)) + (255,))
        f = folder / f"e{i:05d}.png"
        im.save(f)
        files.append(str(f))
    return files


def image_set(files: list[str]) -> ImageSet:
    n = len(files)
    items = pd.DataFrame({"key": [f"k{i}" for i in range(n)], "path": files, "label": ["x"] * n, "split": [""] * n})
    return ImageSet("bench", items)


def inference_rate(bb, size: int, channels_last: bool, n: int, batch_size: int) -> float:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    bb.to(memory_format=fmt)
    x = torch.randn(batch_size, 3, size, size).contiguous(memory_format=fmt)
    with torch.inference_mode():
        bb(x)  # warm-up at the timed shape (oneDNN builds its kernels per shape)
        done, t0 = 0, time.perf_counter()
        while done < n:
            bb(x)
            done += batch_size
    return done / (time.perf_counter() - t0)


def end_to_end_rate(bb, ims: ImageSet, size: int, workers: int, batch_size: int) -> float:
    t0 = time.perf_counter()
    compute_features(ims, bb, image_size=size, batch_size=batch_size, num_workers=workers)
    return len(ims) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="images per configuration")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds; best kept")
    ap.add_argument("--images", type=Path, default=None, help="folder of PNGs (searched recursively)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}, n {args.n}")
    bb = load_backbone("efficientnet-lite0")

    with tempfile.TemporaryDirectory() as tmp:
        if args.images is not None:
            files = sorted(str(p) for p in args.images.rglob("*.png"))[: args.n]
            source = f"{len(files)} PNGs from {args.images}"
        else:
            files = synthetic_emoji(Path(tmp), args.n)
            source = f"{len(files)} synthetic 72 px RGBA PNGs"
        ims = image_set(files)
        warm = ims.subset(np.arange(len(ims)) < args.batch_size)
        for s in (128, 224):  # warm-up at the timed shapes, both memory formats
            for cl in (False, True):
                compute_features(warm, bb, image_size=s, batch_size=args.batch_size, channels_last=cl)
        infer_cfg = [(s, cl) for s in (128, 224) for cl in (False, True)]
        e2e_cfg = [(s, w) for s in (128, 224) for w in (0, 1)]
        infer = {c: 0.0 for c in infer_cfg}
        e2e = {c: 0.0 for c in e2e_cfg}
        for _ in range(args.repeats):
            for c in infer_cfg:
                infer[c] = max(infer[c], inference_rate(bb, c[0], c[1], args.n, args.batch_size))
            for c in e2e_cfg:
                e2e[c] = max(e2e[c], end_to_end_rate(bb, ims, c[0], c[1], args.batch_size))

    print("\ninference only (random tensors), images/s")
    for s in (128, 224):
        print(f"  {s} px: default {infer[(s, False)]:6.1f}   channels_last {infer[(s, True)]:6.1f}"
              f"   ratio channels_last/default {infer[(s, True)] / infer[(s, False)]:.2f}")
    print(f"  ratio 128/224 (channels_last) {infer[(128, True)] / infer[(224, True)]:.2f}")
    print(f"\nend to end ({source}: decode + resize + channels_last inference), images/s")
    for s in (128, 224):
        print(f"  {s} px: num_workers=0 {e2e[(s, 0)]:6.1f}   num_workers=1 {e2e[(s, 1)]:6.1f}"
              f"   ratio 1/0 {e2e[(s, 1)] / e2e[(s, 0)]:.2f}")
    print(f"  ratio 128/224 (num_workers=0) {e2e[(128, 0)] / e2e[(224, 0)]:.2f}")


if __name__ == "__main__":
    main()
