"""DCG@25 per query (paper B eq. 4): the vectorised ``retrieval.dcg_per_query`` against a loop of
``metrics.dcg_at_k`` over each query's slice (the implementation it replaced, the same ranking).

B.01-B.02 score about 700 (method, data set) rankings of the judged Dev candidates; this reports the
time per ranking for Dev-like frames (queries x 80 candidates) as a ratio against the loop measured
in the same run, best of ``--repeats`` interleaved rounds (ratios move much less with load than times).

    python bench/bench_dcg.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from clickvision import metrics, retrieval


def loop_reference(frame: pd.DataFrame, seed: int = 0) -> pd.Series:
    codes, names = pd.factorize(frame["query"], sort=True)
    tiebreak = np.random.default_rng(seed).permutation(len(frame))
    order = np.lexsort((tiebreak, -frame["score"].to_numpy(float), codes))
    rel = frame["relevance"].to_numpy(dtype=float)[order]
    starts = np.searchsorted(codes[order], np.arange(len(names)))
    ends = np.append(starts[1:], len(order))
    return pd.Series([metrics.dcg_at_k(rel[a:min(b, a + 25)], 25) for a, b in zip(starts, ends)], index=names)


def ms(fn, frame, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(frame)
    return (time.perf_counter() - t0) * 1e3 / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n_queries in (100, 400, 1000):
        frame = pd.DataFrame({"query": np.repeat([f"q{i}" for i in range(n_queries)], 80),
                              "relevance": rng.choice([0, 2, 3], 80 * n_queries),
                              "score": rng.standard_normal(80 * n_queries)})
        np.testing.assert_allclose(retrieval.dcg_per_query(frame).to_numpy(), loop_reference(frame).to_numpy(),
                                   rtol=1e-12)
        fns = {"loop of metrics.dcg_at_k (reference)": loop_reference, "retrieval.dcg_per_query": retrieval.dcg_per_query}
        best = {k: float("inf") for k in fns}
        for _ in range(args.repeats):
            for k, fn in fns.items():
                best[k] = min(best[k], ms(fn, frame, 5))
        ref = best["loop of metrics.dcg_at_k (reference)"]
        rows += [{"queries x 80": n_queries, "implementation": k, "ms per ranking": round(v, 2),
                  "ratio to reference": round(v / ref, 3)} for k, v in best.items()]
    print(f"best of {args.repeats} rounds of 5 calls")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
