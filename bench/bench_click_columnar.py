"""Benchmark: the columnar click pipeline against the authors' method and the streaming one, in ONE
run on the same SIMULATED Clickture-Lite-sized log (paper A eq. 1, top-K words).

Runs, each in its own child process (``ru_maxrss`` is that run's peak alone; CPU seconds from
``RUSAGE_CHILDREN`` before / after):

* ``check``     -- on the first ``--check-rows`` triads (1 M by default), the columnar word click
  matrix and click TF-IDF (eq. 1 and the code variant) are IDENTICAL to the streaming ones (keys,
  vocabulary, counts, word clicks; max |difference| printed, asserted <= 1e-12);
* ``columnar``  -- ``columnar_word_click_matrix`` (polars, blocks of ``--batch-mb``) + ``click_tfidf``;
* ``sklearn``   -- the authors' method (``bench_click_tfidf._sklearn``: per-image documents,
  ``CountVectorizer`` + ``TfidfTransformer``);
* ``eq1``       -- the streaming path (``bench_click_tfidf._eq1``: ``word_click_matrix`` + ``click_tfidf``);
* ``dask``      -- only with ``--dask N``: ``clickvision.click.distributed`` on a LocalCluster of N
  single-thread worker processes (cluster start-up timed apart), its time against the columnar run's
  (``peak_rss_mib`` is the client's alone; the workers' memory is not counted).

Each run loads WordNet itself (a few seconds, counted in its time). The log: ``--log PATH`` is
reused when it exists (at least ``--rows`` lines; a longer one is cut to its first ``--rows``
lines, which is the same log, the simulator's output being prefix-stable) and written there
otherwise, so the 23.1 M-row log (~0.86 GB, minutes to simulate) is made once. Not run by the tests::

    .venv/bin/python bench/bench_click_columnar.py --rows 23100000 --log data/cache/bench/simulated-23.1M.tsv
    .venv/bin/python bench/bench_click_columnar.py --rows 2000000 --log /tmp/sim-23.1M.tsv --skip eq1
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_click_tfidf import _child, _eq1, _peak_mib, _sklearn, _write  # noqa: E402  (same methods, same helpers)


def _columnar(path: str, rows, k: int, batch_mb: int, queue) -> None:
    from clickvision.click.columnar import columnar_word_click_matrix
    from clickvision.click.features import QueryFormer, click_tfidf

    assert rows is None, "the columnar run reads the whole (prefix) file"
    t0 = time.perf_counter()
    wc = columnar_word_click_matrix(path, k=k, former=QueryFormer(), batch_bytes=batch_mb << 20)
    t1 = time.perf_counter()
    tf = click_tfidf(wc)
    t2 = time.perf_counter()
    queue.put({"run": "columnar", "rows": wc.stats["rows"], "images": wc.n_images,
               "distinct_words": wc.stats["distinct_words"], "vocabulary": wc.k, "nnz": int(tf.features.nnz),
               "seconds": round(t2 - t0, 1), "seconds_matrix": round(t1 - t0, 1), "seconds_tfidf": round(t2 - t1, 2),
               "stages": wc.stats["seconds"], "batches": wc.stats["batches"],
               "spilled_entries": wc.stats["spilled_entries"], "peak_rss_mib": round(_peak_mib(), 1)})


def _dask(path: str, k: int, workers: int, batch_mb: int, queue) -> None:
    """The distributed path (Dask LocalCluster of ``workers`` processes) on the same log."""
    from clickvision.click.distributed import distributed_word_click_matrix
    from clickvision.click.features import click_tfidf
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        t1 = time.perf_counter()
        wc = distributed_word_click_matrix(path, k=k, client=client, batch_bytes=batch_mb << 20)
        tf = click_tfidf(wc)
        t2 = time.perf_counter()
    queue.put({"run": "dask", "workers": workers, "rows": wc.stats["rows"], "images": wc.n_images,
               "vocabulary": wc.k, "nnz": int(tf.features.nnz), "partitions": wc.stats["partitions"],
               "seconds": round(t2 - t1, 1), "seconds_cluster_start": round(t1 - t0, 1),
               "peak_rss_mib": round(_peak_mib(), 1)})


def _check(path: str, k: int, queue) -> None:
    """Columnar == streaming (word click matrix and both TF-IDF variants) on ``path``."""
    import numpy as np

    from clickvision.click.columnar import columnar_word_click_matrix
    from clickvision.click.features import QueryFormer, click_tfidf, word_click_matrix
    from clickvision.click.log import iter_click_log

    t0 = time.perf_counter()
    a = word_click_matrix(iter_click_log(path), k=k, former=QueryFormer())
    t1 = time.perf_counter()
    b = columnar_word_click_matrix(path, k=k, former=QueryFormer())
    t2 = time.perf_counter()
    same = (list(a.keys) == list(b.keys) and a.vocabulary == b.vocabulary and a.counts.shape == b.counts.shape
            and np.array_equal(a.counts.indptr, b.counts.indptr) and np.array_equal(a.counts.indices, b.counts.indices)
            and np.array_equal(a.counts.data, b.counts.data) and np.array_equal(a.word_clicks, b.word_clicks)
            and all(a.stats[s] == b.stats[s] for s in set(a.stats) & set(b.stats)))
    diffs = {}
    for variant in ("paper", "code"):
        fa, fb = click_tfidf(a, variant=variant).features, click_tfidf(b, variant=variant).features
        diffs[variant] = float(abs(fa - fb).max()) if fa.nnz or fb.nnz else 0.0
    queue.put({"run": "check", "rows": a.stats["rows"], "images": a.n_images, "vocabulary": a.k,
               "identical_matrix": bool(same), "max_abs_diff": diffs,
               "equal": bool(same and max(diffs.values()) <= 1e-12),
               "seconds_streaming": round(t1 - t0, 1), "seconds_columnar": round(t2 - t1, 1)})


def _timed_child(target, args: tuple, timeout: float | None) -> dict | None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = _child(target, args, timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out is not None:
        out["cpu_seconds"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1)
    return out


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def _prefix(src: Path, dst: Path, rows: int) -> None:
    """The first ``rows`` lines of ``src`` into ``dst`` (a byte copy)."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        left = rows
        while left:
            chunk = fin.read(1 << 24)
            if not chunk:
                break
            n = chunk.count(b"\n")
            if n >= left:
                cut = -1
                for _ in range(left):
                    cut = chunk.index(b"\n", cut + 1)
                chunk = chunk[:cut + 1]
                n = left
            fout.write(chunk)
            left -= n


def _log_with_rows(log: Path, rows: int, images: int, scratch: Path, timeout: float | None) -> tuple[str, dict]:
    """A file of exactly ``rows`` simulated triads: the cached ``log`` (cut when longer) or a new one."""
    if not log.is_file():
        log.parent.mkdir(parents=True, exist_ok=True)
        info = _child(_write, (str(log), rows, images), timeout) or {"run": "write", "status": "failed"}
        print(json.dumps(info), flush=True)
    have = _count_lines(log)
    if have < rows:
        raise SystemExit(f"{log} has {have:,} rows, fewer than --rows {rows:,}: remove it or pass another --log")
    if have == rows:
        return str(log), {"log": str(log), "rows": have}
    out = scratch / f"prefix-{rows}.tsv"
    _prefix(log, out, rows)
    return str(out), {"log": str(log), "rows": rows, "cut_from": have}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=23_100_000, help="triads (Clickture-Lite: 23.1 M)")
    ap.add_argument("--images", type=int, default=1_000_000, help="distinct image keys of a new log (1 M)")
    ap.add_argument("--k", type=int, default=1000, help="vocabulary size K (paper A: 1,000)")
    ap.add_argument("--log", default=None, help="simulated log to reuse (written there when missing); "
                                                 "default: a temporary one")
    ap.add_argument("--check-rows", type=int, default=1_000_000, help="triads of the equality check (0: skip)")
    ap.add_argument("--batch-mb", type=int, default=32, help="columnar block size (MiB of TSV)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["sklearn", "eq1"], help="runs to leave out")
    ap.add_argument("--dask", type=int, default=0, metavar="N",
                    help="also run the Dask path on a LocalCluster of N workers (needs the distributed extra)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds before a run is stopped")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    results: list[dict] = []
    if args.dir is not None:  # a folder that does not exist yet is made (its temporary subfolder is removed after)
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        scratch = Path(tmp)
        log = Path(args.log) if args.log else scratch / "simulated-log.tsv"
        path, info = _log_with_rows(log, args.rows, args.images, scratch, args.timeout)
        print(json.dumps({"run": "log", **info, "bytes": os.path.getsize(path)}), flush=True)
        if args.check_rows:
            check_path = path
            if args.check_rows < args.rows:
                check_path = str(scratch / "check.tsv")
                _prefix(Path(path), Path(check_path), args.check_rows)
            out = _child(_check, (check_path, args.k), args.timeout) or {"run": "check", "status": "did not finish"}
            print(json.dumps(out), flush=True)
            results.append(out)
            if not out.get("equal"):
                raise SystemExit("columnar and streaming results differ (or the check did not finish)")
        runs = [("columnar", _columnar, (path, None, args.k, args.batch_mb)),
                ("sklearn", _sklearn, (path, None, args.k)), ("eq1", _eq1, (path, None, args.k))]
        if args.dask:
            runs.append(("dask", _dask, (path, args.k, args.dask, args.batch_mb)))
        by = {}
        for name, target, a in runs:
            if name in args.skip:
                continue
            out = _timed_child(target, a, args.timeout) or {"run": name, "status": f"did not finish in {args.timeout} s"}
            if "seconds" in out:
                out["rows_per_s"] = round(out["rows"] / out["seconds"])
            print(json.dumps(out), flush=True)
            results.append(out)
            by[name] = out
    col = by.get("columnar", {})
    names = {"sklearn": "authors' method (sklearn)", "eq1": "streaming (ours, eq1)"}
    lines = [f"on {col.get('rows', args.rows):,} triads, K = {args.k}, {os.cpu_count()} CPUs:"]
    for name in ("columnar", "sklearn", "eq1"):
        r = by.get(name)
        if r and "seconds" in r:
            lines.append(f"  {names.get(name, 'columnar (polars)'):28s} {r['seconds']:8.1f} s  {r['rows_per_s']:>10,} rows/s"
                         f"  cpu {r.get('cpu_seconds', float('nan')):7.1f} s  peak {r['peak_rss_mib']:7.1f} MiB")
    if "seconds" in col:
        for name in ("sklearn", "eq1"):
            r = by.get(name)
            if r and "seconds" in r:
                lines.append(f"  {names[name]} / columnar: time {r['seconds'] / col['seconds']:.2f}x, cpu "
                             f"{r['cpu_seconds'] / col['cpu_seconds']:.2f}x, peak RSS {r['peak_rss_mib'] / col['peak_rss_mib']:.2f}x")
    dask = by.get("dask", {})
    if "seconds" in dask and "seconds" in col:
        lines.append(f"  dask ({dask['workers']} workers, {dask['partitions']} partitions) {dask['seconds']:8.1f} s"
                     f" (+{dask['seconds_cluster_start']:.1f} s cluster start); columnar / dask: time "
                     f"{col['seconds'] / dask['seconds']:.2f}x")
    if all(n in by and "seconds" in by[n] for n in ("sklearn", "eq1")):
        lines.append(f"  authors' method / streaming: time {by['sklearn']['seconds'] / by['eq1']['seconds']:.2f}x")
    print("\n".join(lines), flush=True)
    return results


if __name__ == "__main__":
    main()
