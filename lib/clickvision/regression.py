"""Regression checks that survive a change of machine.

A notebook prints two kinds of numbers:

* **exact** ones - data counts, metric oracles, deterministic tables (closed-form fits,
  fixed simulations). The same on every machine; ``pytest --nbval`` compares them digit by
  digit against the committed outputs.
* **trained** ones - anything read off a model trained by stochastic optimisation. CPUs
  differ in their float kernels (PyTorch dispatches AVX-512 or AVX2 code, oneDNN and BLAS
  choose per CPU and per thread count), and training amplifies last-bit differences into
  changes of about a seed's spread. The README's "bit-reproducible for a fixed seed" holds
  on one machine only.

Cells that print trained numbers carry the nbval tag ``nbval-ignore-output`` (nbval still
runs them and fails on an exception). Instead of their digits, the notebook's regression
cell calls :func:`check`, which reads back the metrics this run recorded in
``results/<experiment>.csv`` and compares them with the committed file **within a
tolerance from the measured seed spread**: for each metric

    tol = max(atol, n_sd * sd)

where ``sd`` is the spread of that quantity over seeds (given by the notebook, which
measured it, or taken from per-seed rows of the committed file) and ``atol`` a floor for
quantities with no measured spread. ``n_sd = 3`` by default: a change of machine moves a
trained number about as much as a change of seed does.

The comparison only happens when a reference folder is set (``CLICKVISION_REFERENCE_DIR``;
the test command sets it to the committed ``results/``, while the notebooks write to a
scratch copy). Under ``make workbook`` or in JupyterLab the run *is* the new reference, so
there is nothing to compare with and the cell prints the same line without comparing; the
printed line never contains a measured number, so nbval compares it exactly.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths

IGNORE_TAG = "nbval-ignore-output"
N_SD = 3.0
KEY = ("run_id", "metric")


class RegressionError(AssertionError):
    """A trained number moved further from the committed one than its tolerance allows."""


def reference_dir() -> Path | None:
    """The folder of committed results to compare with, or None (nothing to compare)."""
    env = os.environ.get("CLICKVISION_REFERENCE_DIR")
    if not env:
        return None
    ref = Path(env).resolve()
    if ref == paths.RESULTS_DIR.resolve():  # comparing a file with itself proves nothing
        return None
    return ref


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=[*KEY, "value"])
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def process_started() -> str:
    """This process's start time, in the format of ``results.record``'s ``time`` column."""
    import time

    import psutil

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(int(psutil.Process().create_time())))


def seed_sd(table: pd.DataFrame) -> pd.Series:
    """Per-metric sd over seeds of rows that differ only in their seed (NaN when one seed).

    Indexed by (run_id, metric): every run of a group gets its group's spread.
    """
    from .results import RESERVED

    params = [c for c in table.columns if c not in RESERVED]
    if table.empty or "seed" not in table.columns:
        return pd.Series(dtype=float)
    cells = table[params].astype(object).where(table[params].notna(), "") if params else None
    keyed = table.assign(_group=cells.astype(str).agg("|".join, axis=1) if params else "")
    sd = keyed.groupby(["_group", "metric"])["value"].transform(lambda v: v.std(ddof=1) if len(v) > 1 else np.nan)
    return pd.Series(sd.to_numpy(), index=pd.MultiIndex.from_frame(keyed[list(KEY)]))


#: The columns of :func:`compare`'s table (also of the empty one :func:`check` returns when nothing is compared).
COMPARE_COLUMNS = ["run_id", "metric", "reference", "value", "tolerance", "ok"]


def compare(run: pd.DataFrame, ref: pd.DataFrame, *, sd: float | Mapping[str, float] | None = None,
            atol: float = 0.0, n_sd: float = N_SD, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per committed (run_id, metric): reference, value, tolerance, ok.

    ``sd``: the measured seed spread - one number for every metric, or metric -> sd (a metric
    it does not name falls back on the per-seed spread in ``ref``, then on ``atol``).
    ``metrics``: compare only these metric names (default: every committed one).
    """
    if metrics is not None:
        ref = ref[ref["metric"].isin(metrics)]
    spread = seed_sd(ref)
    merged = ref[[*KEY, "value"]].merge(run[[*KEY, "value"]], on=list(KEY), how="left",
                                        suffixes=("_ref", "_run"))
    rows = []
    for r in merged.itertuples(index=False):
        if isinstance(sd, Mapping):
            s = sd.get(r.metric, math.nan)
        elif sd is not None:
            s = float(sd)
        else:
            s = math.nan
        if math.isnan(s):
            s = float(spread.get((r.run_id, r.metric), math.nan)) if len(spread) else math.nan
        tol = max(atol, n_sd * s) if not math.isnan(s) else atol
        ref_v, run_v = float(r.value_ref), float(r.value_run)
        ok = (not math.isnan(run_v)) and (abs(run_v - ref_v) <= tol or (ref_v == run_v))
        rows.append({"run_id": r.run_id, "metric": r.metric, "reference": ref_v, "value": run_v,
                     "tolerance": tol, "ok": ok})
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def differing_selections(run: pd.DataFrame, ref: pd.DataFrame, selections: list[str]) -> set[str]:
    """The run ids whose recorded ``selections`` (discrete settings chosen on validation, e.g. a
    dropout rate) differ between this run and the committed one: on another CPU a choice between
    near-equal candidates can flip, and every number trained with it then moves by more than a
    seed's spread, so those runs' metrics are not comparable with the committed ones."""
    if not selections:
        return set()
    a = run[run["metric"].isin(selections)].groupby(["run_id", "metric"])["value"].last()
    b = ref[ref["metric"].isin(selections)].groupby(["run_id", "metric"])["value"].last()
    both = a.index.intersection(b.index)
    differ = [i for i in both if not np.isclose(float(a[i]), float(b[i]), rtol=0, atol=1e-12)]
    return {run_id for run_id, _ in differ}


def check(experiment: str, *, sd: float | Mapping[str, float] | None = None, atol: float = 0.0,
          n_sd: float = N_SD, metrics: list[str] | None = None, quiet: bool = False,
          selections: list[str] | None = None) -> pd.DataFrame | None:
    """Compare this run's ``results/<experiment>.csv`` with the committed one (see module doc).

    Raises :class:`RegressionError` naming every metric outside its tolerance, or one that
    this run did not record. Prints one line that holds no measured number. ``selections``:
    recorded metrics that are settings chosen on validation; a run whose selections differ from
    the committed run's (:func:`differing_selections`) is not compared (the returned table's
    ``attrs["not_compared"]`` names those run ids; nothing is printed, so the cell's output is
    the same on every machine).
    """
    if atol < 0 or n_sd < 0:
        raise ValueError(f"check({experiment!r}): atol and n_sd must be >= 0, got {atol=}, {n_sd=}")
    rule = f"tolerance max({atol:g}, {n_sd:g} x seed sd)"
    ref_dir = reference_dir()
    if not quiet:
        print(f"Regression check of {experiment}: trained metrics compared with the committed "
              f"results/{experiment}.csv under the tests ({rule}); exact outputs compared by nbval.")
    if ref_dir is None:
        return None
    ref = _read(ref_dir / f"{experiment}.csv")
    if ref.empty:
        raise RegressionError(f"no committed results for {experiment!r} in {ref_dir}")
    run = _read(paths.RESULTS_DIR / f"{experiment}.csv")
    if "time" in run.columns:  # the scratch results start as a copy of the committed ones:
        run = run[run["time"].astype(str) >= process_started()]  # keep this kernel's rows only
    if run.empty:
        raise RegressionError(f"{experiment}: this run recorded no metrics in "
                              f"{paths.RESULTS_DIR / (experiment + '.csv')}")
    # compare the committed runs this run repeated (a results file may also hold other
    # parameter sets, e.g. sweep points); every metric of those runs must be there. A run
    # with other parameters (a smoke run, a sweep point) repeats none: nothing to compare.
    ref = ref[ref["run_id"].isin(set(run["run_id"]))]
    if ref.empty:
        return None
    skip = differing_selections(run, ref, list(selections or []))
    ref, run = ref[~ref["run_id"].isin(skip)], run[~run["run_id"].isin(skip)]
    if ref.empty:
        return _empty_table(skip)
    table = compare(run, ref, sd=sd, atol=atol, n_sd=n_sd, metrics=metrics)
    table.attrs["not_compared"] = sorted(skip)
    bad = table[~table["ok"]]
    if len(bad):
        lines = [f"  {r.metric} [{r.run_id}]: committed {r.reference:.6g}, this run {r.value:.6g}, "
                 f"tolerance {r.tolerance:.3g}" for r in bad.itertuples()]
        raise RegressionError(f"{experiment}: {len(bad)} of {len(table)} metrics outside tolerance "
                              f"({rule}):\n" + "\n".join(lines))
    return table


def _empty_table(skip: set[str]) -> pd.DataFrame:
    t = pd.DataFrame(columns=COMPARE_COLUMNS)
    t.attrs["not_compared"] = sorted(skip)
    return t


# --- the notebooks' nbval tags -------------------------------------------------------------

def tagged_cells(nb_path: Path) -> list[int]:
    """Indices (among all cells) of the cells tagged ``nbval-ignore-output``."""
    cells = json.loads(Path(nb_path).read_text())["cells"]
    return [i for i, c in enumerate(cells) if IGNORE_TAG in c.get("metadata", {}).get("tags", [])]


def set_ignore_tags(nb_path: Path, cell_ids: list[str]) -> int:
    """Tag the cells with these ids ``nbval-ignore-output``; return how many were newly tagged.

    Writes the notebook back with nbformat's formatting (1-space indent, as Jupyter does).
    """
    nb_path = Path(nb_path)
    nb = json.loads(nb_path.read_text())
    wanted, added = set(cell_ids), 0
    for c in nb["cells"]:
        if c.get("id") in wanted:
            tags = c.setdefault("metadata", {}).setdefault("tags", [])
            if IGNORE_TAG not in tags:
                tags.append(IGNORE_TAG)
                added += 1
            wanted.discard(c["id"])
    if wanted:
        raise KeyError(f"{nb_path}: no cells with ids {sorted(wanted)}")
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return added
