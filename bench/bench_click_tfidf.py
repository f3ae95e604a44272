"""Benchmark: click TF-IDF (paper A eq. 1) on a Clickture-Lite-sized SIMULATED log, against the
authors'-code method, in the same run.

Runs, each in its own child process (so ``ru_maxrss`` is that run's peak alone):

* ``write``     -- writes the SIMULATED log (``synthetic_scale_log``, ``--rows`` triads over
  ``--images`` keys) to a scratch TSV once; reported, not compared;
* ``eq1``       -- ours: ``word_click_matrix`` (streaming ``iter_click_log``, query formation
  memoised per query, chunked sparse accumulation) then ``click_tfidf`` (eq. 1), top-K words;
* ``sklearn``   -- the authors' code: stream the same log with the same query formation, build
  one document per image repeating each word once per click, then scikit-learn's
  ``CountVectorizer(max_features=K)`` + ``TfidfTransformer(smooth_idf=True, norm="l2")``.
  It runs on the first ``--sklearn-rows`` triads (default: all); if it cannot finish in
  ``--timeout`` seconds it is stopped, and both methods are then timed on the largest subset
  that finished (say so in a report);
* ``check``     -- on a small prefix of the log, our ``click_tfidf(variant="code")`` equals the
  scikit-learn result (max absolute difference printed).

Not run by the tests::

    .venv/bin/python bench/bench_click_tfidf.py [--rows 23100000] [--images 1000000] [--k 1000]
"""
from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write(path: str, rows: int, images: int, queue) -> None:
    from clickvision.click.log import write_click_log
    from clickvision.click.simulator import synthetic_scale_log

    t0 = time.perf_counter()
    n = write_click_log(synthetic_scale_log(n_rows=rows, n_images=images, seed=0), path)
    queue.put({"run": "write", "rows": n, "seconds": round(time.perf_counter() - t0, 1),
               "peak_rss_mib": round(_peak_mib(), 1)})


def _records(path: str, rows: int | None):
    from clickvision.click.log import iter_click_log

    it = iter_click_log(path)
    return it if rows is None else itertools.islice(it, rows)


def _eq1(path: str, rows: int | None, k: int, queue) -> None:
    from clickvision.click.features import QueryFormer, click_tfidf, word_click_matrix

    t0 = time.perf_counter()
    wc = word_click_matrix(_records(path, rows), k=k, former=QueryFormer())
    t1 = time.perf_counter()
    tf = click_tfidf(wc)
    t2 = time.perf_counter()
    queue.put({"run": "eq1", "rows": wc.stats["rows"], "images": wc.n_images,
               "distinct_words": wc.stats["distinct_words"], "vocabulary": wc.k, "nnz": int(tf.features.nnz), "seconds": round(t2 - t0, 1),
               "seconds_matrix": round(t1 - t0, 1), "seconds_tfidf": round(t2 - t1, 2),
               "peak_rss_mib": round(_peak_mib(), 1)})


def _sklearn_documents(path: str, rows: int | None):
    """Per-image documents of the authors' code: each word of a clicked query, once per click."""
    from clickvision.click.features import QueryFormer

    former, docs, n = QueryFormer(), {}, 0
    for query, key, clicks in _records(path, rows):
        n += 1
        words = former.words(query)
        if words:
            docs.setdefault(key, []).extend(words * clicks)
    return docs, n


def _sklearn(path: str, rows: int | None, k: int, queue) -> None:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    t0 = time.perf_counter()
    docs, n = _sklearn_documents(path, rows)
    t1 = time.perf_counter()
    counts = CountVectorizer(analyzer=lambda doc: doc, max_features=k).fit_transform(docs.values())
    tf = TfidfTransformer(smooth_idf=True, norm="l2").fit_transform(counts)
    t2 = time.perf_counter()
    queue.put({"run": "sklearn", "rows": n, "images": len(docs), "vocabulary": counts.shape[1], "nnz": int(tf.nnz),
               "seconds": round(t2 - t0, 1), "seconds_documents": round(t1 - t0, 1),
               "seconds_vectorize": round(t2 - t1, 1), "peak_rss_mib": round(_peak_mib(), 1)})


def _check(path: str, rows: int, k: int, queue) -> None:
    """Our code variant equals scikit-learn on the same per-image documents."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    from clickvision.click.features import QueryFormer, click_tfidf, word_click_matrix

    wc = word_click_matrix(_records(path, rows), k=k, former=QueryFormer())
    ours = click_tfidf(wc, variant="code").features
    docs, _ = _sklearn_documents(path, rows)
    vocab = {w: j for j, w in enumerate(wc.vocabulary)}
    cv = CountVectorizer(analyzer=lambda doc: doc, vocabulary=vocab)
    ref = TfidfTransformer(smooth_idf=True, norm="l2").fit_transform(cv.transform([docs.get(x, []) for x in wc.keys]))
    diff = abs(ours - ref).max() if ours.nnz or ref.nnz else 0.0
    queue.put({"run": "check", "rows": rows, "images": wc.n_images, "max_abs_diff": float(diff),
               "equal": bool(np.isclose(diff, 0.0, atol=1e-12))})


def _child(target, args: tuple, timeout: float | None) -> dict | None:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None
    return queue.get() if not queue.empty() else None


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=23_100_000, help="triads (Clickture-Lite: 23.1 M)")
    ap.add_argument("--images", type=int, default=1_000_000, help="distinct image keys (Clickture-Lite: 1 M)")
    ap.add_argument("--k", type=int, default=1000, help="vocabulary size K (paper A: 1,000)")
    ap.add_argument("--sklearn-rows", type=int, default=None, help="triads for the scikit-learn run (default: all)")
    ap.add_argument("--check-rows", type=int, default=200_000, help="triads of the equality check")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before a run is stopped")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = str(Path(tmp) / "simulated-log.tsv")
        for target, a, timeout in ((_write, (path, args.rows, args.images), None),
                                   (_check, (path, min(args.check_rows, args.rows), args.k), args.timeout),
                                   (_eq1, (path, None, args.k), args.timeout),
                                   (_sklearn, (path, args.sklearn_rows, args.k), args.timeout)):
            out = _child(target, a, timeout)
            out = out or {"run": target.__name__.strip("_"), "status": f"did not finish in {timeout} s"}
            print(json.dumps(out), flush=True)
            results.append(out)
        sk = results[-1]
        if "seconds" not in sk or sk.get("rows") != results[2].get("rows"):
            rows = sk.get("rows") or min(args.rows, 2_000_000)
            if "seconds" not in sk:
                sk = _child(_sklearn, (path, rows, args.k), args.timeout) or {}
                print(json.dumps(sk), flush=True)
                results.append(sk)
            same = _child(_eq1, (path, rows, args.k), args.timeout) or {}
            print(json.dumps({**same, "run": f"eq1 on the sklearn subset ({rows:,} rows)"}), flush=True)
            results.append(same)
            eq1 = same
        else:
            eq1 = results[2]
    if "seconds" in eq1 and "seconds" in sk:
        print(f"sklearn (authors' code) / eq1 (ours) time: {sk['seconds'] / eq1['seconds']:.2f}x; peak RSS "
              f"{sk['peak_rss_mib'] / eq1['peak_rss_mib']:.2f}x, on {eq1['rows']:,} triads")
    return results


if __name__ == "__main__":
    main()
