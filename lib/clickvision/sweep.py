"""Headless parameter sweeps over a notebook.

    python -m clickvision.sweep NOTEBOOK -p NAME V1 V2 ... [-p NAME2 ...] [--jobs N]

Runs papermill once per grid point (executed copies under ``results/runs/<notebook>/``).
A point whose executed copy exists is skipped, so a sweep resumes after a crash or Ctrl-C.
A failing point does not stop the others; its notebook is named at the end. Values are
Python literals (``0.1``, ``True``, ``'smoke'``, ``[1,2]``); anything else is a string.
Every result row a run records (``clickvision.results.record``) goes to ``results/`` as
usual and is also logged beside the run, and the gathered table is printed at the end.
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures as cf
import hashlib
import itertools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths
from .nbrun import RunInfo, notebook_parameters, run_notebook

RUN_LOG_ENV = "CLICKVISION_RUN_LOG"


def parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def grid(spec: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(spec)
    return [dict(zip(names, combo)) for combo in itertools.product(*(spec[n] for n in names))]


def point_name(params: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in params.items()]
    name = "__".join(re.sub(r"[^A-Za-z0-9_.=-]+", "-", p) for p in parts) or "defaults"
    if len(name) > 120:
        name = name[:100] + "-" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def check_names(notebook: Path, spec: dict[str, list[Any]]) -> None:
    known = notebook_parameters(notebook)
    unknown = [n for n in spec if n not in known]
    if unknown:
        raise SystemExit(
            f"error: unknown parameter {', '.join(map(repr, unknown))} for {notebook}; "
            f"it accepts: {', '.join(sorted(known))}")


def run_sweep(notebook: str | Path, spec: dict[str, list[Any]], jobs: int = 1,
              runs_dir: Path | None = None, timeout_s: int = 3600) -> tuple[pd.DataFrame, list[RunInfo]]:
    """Run every grid point not yet done; return (gathered rows, infos of the runs made)."""
    notebook = Path(notebook).resolve()
    if not notebook.exists():
        raise SystemExit(f"error: notebook not found: {notebook}")
    check_names(notebook, spec)
    out_dir = (runs_dir or paths.RUNS_DIR) / notebook.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    points = grid(spec)
    todo, done = [], 0
    for p in points:
        final = out_dir / f"{point_name(p)}.ipynb"
        if final.exists():
            done += 1
        else:
            todo.append(p)
    print(f"{notebook.name}: {len(points)} points, {done} already done, {len(todo)} to run")

    def one(p: dict[str, Any]) -> RunInfo:
        name = point_name(p)
        running = out_dir / f"{name}.running.ipynb"
        log = out_dir / f"{name}.rows.jsonl"
        if log.exists():
            log.unlink()
        info = run_notebook(notebook, running, p, env={RUN_LOG_ENV: str(log)}, timeout_s=timeout_s)
        if info.ok:
            os.replace(running, out_dir / f"{name}.ipynb")
            info.output = str(out_dir / f"{name}.ipynb")
        else:
            failed = out_dir / f"{name}.failed.ipynb"
            if running.exists():
                os.replace(running, failed)
            info.output = str(failed)
        print(f"  [{'ok' if info.ok else 'FAILED'}] {name} ({info.wall_s:.0f} s)", flush=True)
        return info

    infos: list[RunInfo] = []
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for info in pool.map(one, todo):
            infos.append(info)
    return gather(out_dir, points), infos


def gather(out_dir: Path, points: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for p in points:
        log = out_dir / f"{point_name(p)}.rows.jsonl"
        if (out_dir / f"{point_name(p)}.ipynb").exists() and log.exists():
            rows += [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clickvision.sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook")
    ap.add_argument("-p", "--param", nargs="+", action="append", metavar=("NAME", "VALUE"),
                    default=[], help="a parameter and its values (repeatable)")
    ap.add_argument("--jobs", "-j", type=int, default=1, help="grid points run at once")
    ap.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    args = ap.parse_args(argv)
    spec: dict[str, list[Any]] = {}
    for item in args.param:
        if len(item) < 2:
            ap.error(f"-p {item[0]}: give at least one value")
        spec[item[0]] = [parse_value(v) for v in item[1:]]
    table, infos = run_sweep(args.notebook, spec, jobs=args.jobs, timeout_s=args.timeout)
    failed = [i for i in infos if not i.ok]
    if len(table):
        cols = [c for c in table.columns if c not in ("experiment", "run_id", "time")]
        with pd.option_context("display.width", 160, "display.max_rows", 200):
            print(table[cols].to_string(index=False))
    for i in failed:
        print(f"\nFAILED: {i.output}\n{i.log_tail}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
