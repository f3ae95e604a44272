"""Benchmark: rank a 100k-image gallery for 1,000 queries with paper B's CF score (eq. 1 -> eq. 3).

Compares, in one run, :func:`clickvision.retrieval.rank_gallery` (low-rank eq.-3 profiles,
blocked top-k neighbours, sparse CF scoring) with the literal reference
(:func:`~clickvision.retrieval.naive_neighbours`: eq. 3 image by image on the explicit
training-queries x images click matrix, full sorts; :func:`~clickvision.retrieval.naive_cf_rank`:
a Python loop over the gallery per query):

* ``small`` -- both whole on a small gallery: identical top lists, measured ratio;
* ``full``  -- the fast path whole on the full gallery; the reference timed on a slice of
  ``--naive-images`` neighbour rows and ``--naive-queries`` queries (checked equal to the fast
  results on that slice) and extrapolated linearly to the full gallery (its cost per row and
  per query does not depend on which rows).

Vectors are random (SIMULATED factors: only the sizes matter for the time). Not run by the tests::

    .venv/bin/python bench/bench_retrieval.py [--images 100000] [--queries 1000] [--train-queries 1000]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _vectors(n_images: int, n_queries: int, n_train: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))  # a little cluster structure, as real factors have
    v = centres[rng.integers(50, size=n_images)] + 0.7 * rng.normal(size=(n_images, dim))
    return rng.normal(size=(n_queries, dim)), v, rng.normal(size=(n_train, dim))


def run(n_images: int, n_queries: int, n_train: int, dim: int, k: int, top: int, naive_images: int | None,
        naive_queries: int | None) -> dict:
    from clickvision import retrieval

    q, v, tq = _vectors(n_images, n_queries, n_train, dim)
    t0 = time.perf_counter()
    fast = retrieval.rank_gallery(q, v, tq, k=k, top=top)
    fast_s = time.perf_counter() - t0
    nb = retrieval.top_k_neighbours(retrieval.low_rank_profiles(tq, v), k)  # for the slice checks
    rows = np.arange(n_images) if naive_images is None else np.linspace(0, n_images - 1, naive_images).astype(int)
    t0 = time.perf_counter()
    slow_nb = retrieval.naive_neighbours(v, tq, k, images=rows)
    nb_s = (time.perf_counter() - t0) * n_images / len(rows)
    chosen = np.arange(n_queries) if naive_queries is None else np.arange(naive_queries)
    t0 = time.perf_counter()
    slow = retrieval.naive_cf_rank(q[chosen], v, nb, top)
    rank_s = (time.perf_counter() - t0) * n_queries / len(chosen)
    same = bool(np.array_equal(slow_nb.index, nb.index[rows]) and np.array_equal(slow, fast[chosen]))
    naive_s = nb_s + rank_s
    return {"images": n_images, "queries": n_queries, "train_queries": n_train, "D": dim, "k": k,
            "fast_s": round(fast_s, 2), "naive_s": round(naive_s, 1),
            "naive_extrapolated": naive_images is not None or naive_queries is not None,
            "naive_rows_timed": int(len(rows)), "naive_queries_timed": int(len(chosen)),
            "ratio_naive_over_fast": round(naive_s / fast_s, 1), "same_results": same}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100_000, help="gallery size")
    ap.add_argument("--queries", type=int, default=1_000, help="queries to rank")
    ap.add_argument("--train-queries", type=int, default=1_000, help="training queries of eq. (3)")
    ap.add_argument("--dim", type=int, default=64, help="latent size D")
    ap.add_argument("--k", type=int, default=20, help="neighbours per image")
    ap.add_argument("--top", type=int, default=25, help="ranked list length (DCG@25)")
    ap.add_argument("--small-images", type=int, default=2_000, help="gallery of the whole-reference run")
    ap.add_argument("--naive-images", type=int, default=200, help="reference neighbour rows timed (full run)")
    ap.add_argument("--naive-queries", type=int, default=3, help="reference queries timed (full run)")
    args = ap.parse_args(argv)
    results = []
    for label, n, nq, ni, nqq in (("small", args.small_images, 50, None, None),
                                  ("full", args.images, args.queries, args.naive_images, args.naive_queries)):
        r = {"run": label, **run(n, nq, args.train_queries, args.dim, args.k, args.top, ni, nqq)}
        results.append(r)
        print(json.dumps(r), flush=True)
    full = results[-1]
    print(f"{full['images']:,} images x {full['queries']:,} queries: fast {full['fast_s']:.1f} s, naive "
          f"{'~' if full['naive_extrapolated'] else ''}{full['naive_s']:.0f} s "
          f"({full['ratio_naive_over_fast']:.0f}x); small run {results[0]['ratio_naive_over_fast']:.0f}x, "
          f"same results: {all(r['same_results'] for r in results)}")
    return results


if __name__ == "__main__":
    sys.exit(0 if all(r["same_results"] for r in main()) else 1)
