"""Tidy results registry.

``record`` appends one row per metric to ``results/<experiment>.csv``:
``experiment, run_id, <parameter columns>, seed, metric, value, time, commit, versions,
device`` (the last three: :mod:`clickvision.provenance`; the profile is a parameter). Re-running the same
parameters and seed replaces that run's rows, never duplicates them. Writes are atomic and
locked, so parallel sweep workers can share a file.

The claims ledger (``results/claims.csv``) is written by :class:`clickvision.claims.Ledger`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths
from .io import atomic_path, file_lock

RESERVED = ("experiment", "run_id", "seed", "metric", "value", "time", "commit", "versions", "device")


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, tuple):
        v = list(v)
    return v


def run_id(params: Mapping[str, Any], seed: int | None = None) -> str:
    """Stable short hash of the parameters (sorted) and the seed."""
    blob = json.dumps({k: _jsonable(v) for k, v in sorted(params.items())}, sort_keys=True, default=str)
    return hashlib.sha1(f"{blob}|{seed}".encode()).hexdigest()[:12]


def results_path(experiment: str) -> Path:
    if not experiment or "/" in experiment or experiment.startswith("."):
        raise ValueError(f"experiment name must be a plain file stem, got {experiment!r}")
    return paths.RESULTS_DIR / f"{experiment}.csv"


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except Exception as exc:  # pragma: no cover - message matters
        raise ValueError(f"cannot read results file {path}: {exc}") from exc


def record(
    experiment: str,
    metrics: Mapping[str, float],
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Record ``metrics`` (name -> value) of one run; return the rows written.

    Parameter values become columns (lists/dicts are JSON-encoded). A run with the same
    ``params`` and ``seed`` as an earlier one replaces its rows.
    """
    params = dict(params or {})
    if "seed" in params:  # a notebook's parameters usually carry the seed: move it to its column
        p_seed = params.pop("seed")
        if seed is not None and seed != p_seed:
            raise ValueError(f"seed={seed!r} disagrees with params['seed']={p_seed!r}")
        seed = p_seed
    clash = set(params) & set(RESERVED)
    if clash:
        raise ValueError(f"parameter names {sorted(clash)} clash with result columns {RESERVED}")
    if not metrics:
        raise ValueError(f"record({experiment!r}): no metrics given")
    for name, value in metrics.items():
        if not isinstance(value, (int, float)) and not hasattr(value, "item"):
            raise TypeError(f"metric {name!r} must be a number, got {type(value).__name__}")
    rid = run_id(params, seed)
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    from . import provenance

    stamp = provenance.stamp()
    enc = {k: (json.dumps(_jsonable(v)) if isinstance(_jsonable(v), (list, dict)) else _jsonable(v))
           for k, v in params.items()}
    rows = pd.DataFrame(
        [{"experiment": experiment, "run_id": rid, **enc, "seed": seed, "metric": m,
          "value": float(_jsonable(v)), "time": now, **stamp} for m, v in metrics.items()]
    )
    path = results_path(experiment)
    replace_rows(path, rows, "run_id", {rid})
    log = os.environ.get("CLICKVISION_RUN_LOG")  # set by the sweep runner for each grid point
    if log:
        with open(log, "a") as fh:
            for r in rows.to_dict("records"):
                fh.write(json.dumps(r, default=str) + "\n")
    return rows


def replace_rows(path: Path, new: pd.DataFrame, key: str, values: Iterable[Any], *,
                 read: Callable[[Path], pd.DataFrame] = _read_csv,
                 sort_by: list[str] | None = None) -> pd.DataFrame:
    """Under ``path``'s lock: drop the rows whose ``key`` (as text) is in ``values``, append
    ``new``, optionally sort, and write the table atomically. Returns the table written.

    The one way rows are replaced in a shared CSV (results, re-recorded sweep rows, the
    claims ledger), so parallel writers never lose each other's rows."""
    drop = {str(v) for v in values}
    with file_lock(path):
        old = read(path)
        if len(old):
            old = old[~old[key].astype(str).isin(drop)]
        table = pd.concat([old, new], ignore_index=True) if len(old) else new
        if sort_by:
            table = table.sort_values(sort_by, kind="stable")
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    return table


def load(experiment: str) -> pd.DataFrame:
    """All rows of ``results/<experiment>.csv`` (empty frame when none)."""
    return _read_csv(results_path(experiment))


def latest_run(experiment: str, profile: str, results_dir: Path | None = None, *,
               who: str = "latest_run") -> tuple[pd.DataFrame, str]:
    """The rows of the latest run of ``profile`` in ``results_dir/<experiment>.csv`` (else of the latest
    ``default``-profile run), and a note naming the fallback ("" when ``profile``'s own run was found).

    How one notebook carries forward what an earlier one selected on validation (paper A's settings,
    paper D's alpha). An empty frame when the file or both profiles' runs are missing; ValueError naming
    the file (prefixed by ``who``) when it cannot be read or lacks the run columns."""
    path = Path(paths.RESULTS_DIR if results_dir is None else results_dir) / f"{experiment}.csv"
    if not path.exists():
        return pd.DataFrame(), ""
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise ValueError(f"{who}: cannot read {path}: {exc}") from exc
    missing = [c for c in ("run_id", "metric", "value", "time") if c not in frame.columns]
    if missing:
        raise ValueError(f"{who}: {path} lacks column(s) {missing}; it has {list(frame.columns)}")
    for prof in dict.fromkeys((profile, "default")):
        sub = frame[frame["profile"].astype(str) == prof] if "profile" in frame.columns else frame
        if len(sub):
            run = sub.sort_values("time", kind="stable")["run_id"].iloc[-1]
            note = "" if prof == profile else f"; no {profile}-profile run, the {prof}-profile one"
            return sub[sub["run_id"] == run], note
    return pd.DataFrame(), ""


def run_value(rows: pd.DataFrame, metric: str, path: Path | str, *, who: str = "run_value") -> float:
    """The one finite value of ``metric`` in a run's ``rows`` (:func:`latest_run`); ValueError naming
    ``path``, the run and the metric when it has none, several, or a non-number."""
    hit = rows[rows["metric"] == metric]
    if len(hit) != 1:
        run = rows["run_id"].iloc[0] if len(rows) else "(none)"
        raise ValueError(f"{who}: {path} run {run} has {len(hit)} rows of metric {metric!r} (need exactly one)")
    try:
        value = float(hit["value"].iloc[0])
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value):
        raise ValueError(f"{who}: {path}: metric {metric!r} has value {hit['value'].iloc[0]!r}, not a finite number")
    return value


def is_number(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
