"""Benchmark: stream a Clickture-Lite-sized SIMULATED click log (23.1 M triads) to disk.

Reports time, rows/s and peak RSS of each run, every run in its own child process so that
``ru_maxrss`` is that run's peak alone:

* ``reference`` -- the same number of rows, one fixed pre-formatted line written repeatedly
  (the disk/IO floor of this machine, measured in this run);
* ``small``     -- the simulated log with ``--small-rows`` rows (1 M by default);
* ``full``      -- the simulated log with ``--rows`` rows (23.1 M by default).

Bounded memory shows as ``full`` peak RSS ~ ``small`` peak RSS; the cost of generating and
validating rows shows as the ratio ``full`` time / ``reference`` time. Not run by the tests::

    .venv/bin/python bench/bench_click_log.py [--rows 23100000] [--images 1000000] [--gzip]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path


def _run(kind: str, rows: int, images: int, path: str, queue) -> None:
    from clickvision.click.log import write_click_log
    from clickvision.click.simulator import synthetic_scale_log

    start = time.perf_counter()
    if kind == "reference":
        line = "simulated query 1234567\timg0123456\t1\n"
        with open(path, "w", encoding="utf-8") as fh:
            for _ in range(rows // 8192):
                fh.write(line * 8192)
            fh.write(line * (rows % 8192))
        written = rows
    else:
        written = write_click_log(synthetic_scale_log(n_rows=rows, n_images=images, seed=0), path)
    seconds = time.perf_counter() - start
    size = Path(path).stat().st_size
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    queue.put({"run": kind, "rows": written, "seconds": round(seconds, 1),
               "rows_per_s": round(written / seconds), "file_mib": round(size / 2**20, 1),
               "peak_rss_mib": round(peak_mib, 1)})


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=23_100_000, help="triads of the full log (Clickture-Lite: 23.1 M)")
    ap.add_argument("--images", type=int, default=1_000_000, help="distinct image keys (Clickture-Lite: 1 M)")
    ap.add_argument("--small-rows", type=int, default=1_000_000, help="triads of the small run")
    ap.add_argument("--gzip", action="store_true", help="write .tsv.gz instead of .tsv")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    suffix = ".tsv.gz" if args.gzip else ".tsv"
    ctx = mp.get_context("spawn")
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-click-log-") as tmp:
        for kind, rows in (("reference", args.rows), ("small", args.small_rows), ("full", args.rows)):
            queue = ctx.Queue()
            path = str(Path(tmp) / f"{kind}{'.tsv' if kind == 'reference' else suffix}")
            proc = ctx.Process(target=_run, args=(kind, rows, args.images, path, queue))
            proc.start()
            result = queue.get()
            proc.join()
            Path(path).unlink()
            results.append(result)
            print(json.dumps(result), flush=True)
    by = {r["run"]: r for r in results}
    print(f"full / reference time: {by['full']['seconds'] / max(by['reference']['seconds'], 1e-9):.1f}x; "
          f"peak RSS full / small: {by['full']['peak_rss_mib'] / by['small']['peak_rss_mib']:.2f}x "
          f"({args.rows:,} vs {args.small_rows:,} rows)")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
