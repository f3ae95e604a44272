"""Choosing a setting on validation so that the choice does not rest on noise.

The plain rule (the value with the best mean validation accuracy) picks among settings whose
accuracies differ by less than one validation image in a hundred; on 239 validation images and one
seed that choice is decided by the last digits of the training run, which differ between CPUs
(paper A's A.04 picked B = 0.001 on an Intel AVX512 CPU and 0.01 on an AMD AVX2 one, from the
same code and seed). Every later notebook then runs at whatever the noise chose.

:func:`select_robust` keeps a *reference* value (the paper's setting, or the grid value nearest to
it: :func:`nearest`) unless another value beats it on validation by more than ``z`` standard errors
of the paired difference (the idea of the "one standard error" rule of Hastie, Tibshirani and
Friedman, applied to a difference from a default instead of to the best). The difference is paired
per validation item: for each item, the candidate's correctness minus the reference's, averaged
over the seeds both ran; its mean and its standard error over the items
(:func:`scipy.stats.sem`) decide. Among the candidates that clear the bar the largest mean
difference wins. The rule is deterministic, uses every seed either side ran, and returns the
table it decided on, so a notebook can show why a value was kept or changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["Selection", "nearest", "select_near", "select_robust"]

#: A candidate must clear ``z`` SE by more than this: a gain on exactly one item makes mean and SE equal
#: (1/n both), and which side of the bar rounding puts it on must not decide (it would differ by CPU).
_TOL = 1e-9


@dataclass(frozen=True)
class Selection:
    """The value chosen, the reference it was measured against, and per candidate: ``mean_diff`` (candidate
    minus reference, mean over items of the per-item difference averaged over common seeds), ``se`` (its
    standard error over the items), ``n_items``, ``n_seeds`` (seeds both ran), ``beats`` (mean_diff > z se
    and > 0; by more than a rounding tolerance) and ``chosen``."""

    value: Any
    reference: Any
    metric: str
    z: float
    table: pd.DataFrame

    def describe(self, name: str) -> str:
        """One line for a notebook: what was chosen and why."""
        row = self.table.loc[self.value] if self.value != self.reference else None
        if row is None:
            best = self.table.drop(index=self.reference, errors="ignore")
            if best.empty:
                return f"{name} = {self.reference:g} (the reference; no other value was run)"
            top = best["mean_diff"].idxmax()
            b = best.loc[top]
            return (f"{name} = {self.reference:g} kept (the reference): no value beats it on validation by more than "
                    f"{self.z:g} SE (best other: {name} = {top:g}, {b['mean_diff']:+.4f} +- {b['se']:.4f} on "
                    f"{int(b['n_items'])} items x {int(b['n_seeds'])} seed(s))")
        return (f"{name} = {self.value:g} chosen over the reference {self.reference:g}: {row['mean_diff']:+.4f} +- "
                f"{row['se']:.4f} (SE) on {int(row['n_items'])} validation items x {int(row['n_seeds'])} seed(s)")


def nearest(candidates: Sequence, preferred: float) -> Any:
    """The candidate closest to ``preferred`` (the first on a tie): the reference when the grid lacks the
    paper's exact value (a smoke profile's T grid without 0.16). ValueError on an empty grid."""
    values = list(candidates)
    if not values:
        raise ValueError("nearest: no candidate values")
    out = values[int(np.argmin([abs(float(v) - float(preferred)) for v in values]))]
    return out.item() if isinstance(out, np.generic) else out


def select_robust(rows: pd.DataFrame, column: str, reference: Any, metric: str, *, z: float = 1.0,
                  item: str = "item", seed: str = "seed", value: str = "value") -> Selection:
    """Keep ``reference`` unless a value of ``column`` beats it on per-item ``metric`` by more than ``z`` SE.

    ``rows``: tidy rows with ``column``, ``metric``, ``item``, ``seed`` and ``value`` (one per setting, seed
    and validation item, e.g. ``val_correct_t``); rows of other metrics are ignored. A candidate is
    compared with the reference on the (seed, item) pairs both have: per item the difference is averaged
    over those seeds, then its mean and :func:`scipy.stats.sem` over the items are taken. ValueError
    (naming the parameter) when a column is missing, no row has ``metric``, the reference has no row, or
    ``z`` is negative.
    """
    if not z >= 0:
        raise ValueError(f"select_robust: z must be >= 0, got {z!r}")
    missing = [c for c in ("metric", column, item, seed, value) if c not in rows.columns]
    if missing:
        raise ValueError(f"select_robust: rows lack column(s) {missing} (column={column!r}, item={item!r}, "
                         f"seed={seed!r}); they have {list(rows.columns)}")
    sub = rows[rows["metric"] == metric]
    if sub.empty:
        raise ValueError(f"select_robust: no rows of metric {metric!r} (metrics: {sorted(rows['metric'].unique())})")
    wide = sub.pivot_table(index=[seed, item], columns=column, values=value, aggfunc="mean")
    if reference not in wide.columns:
        raise ValueError(f"select_robust: the reference {column} = {reference!r} has no {metric!r} rows "
                         f"(values run: {list(wide.columns)})")
    table = []
    for cand in wide.columns:
        diff = (wide[cand] - wide[reference]).dropna()  # the (seed, item) pairs both ran; 0 for the reference
        per_item = diff.groupby(level=item).mean()
        n = len(per_item)
        mean = float(per_item.mean()) if n else float("nan")
        se = float(stats.sem(per_item.to_numpy())) if n > 1 else float("nan")
        table.append({column: cand, "mean_diff": mean, "se": se, "n_items": n,
                      "n_seeds": int(diff.index.get_level_values(seed).nunique()),
                      "beats": bool(cand != reference and n > 1 and mean > 0 and mean - z * se > _TOL)})
    table = pd.DataFrame(table).set_index(column)
    winners = table[table["beats"]]
    chosen = winners["mean_diff"].idxmax() if len(winners) else reference
    chosen = chosen.item() if isinstance(chosen, np.generic) else chosen
    table["chosen"] = table.index == chosen
    return Selection(value=chosen, reference=reference, metric=metric, z=float(z), table=table)


def select_near(rows: pd.DataFrame, column: str, preferred: float, metric: str, *, z: float = 1.0,
                **columns: str) -> Selection:
    """:func:`select_robust` with the reference taken as the value of ``column`` nearest ``preferred`` among
    those with ``metric`` rows (:func:`nearest`: the paper's setting, or the grid's closest to it).
    ``columns``: ``item``, ``seed``, ``value`` as for :func:`select_robust`, whose errors this raises when
    a column or the metric's rows are missing."""
    ran = rows.loc[rows["metric"] == metric, column] if {"metric", column} <= set(rows.columns) else ()
    reference = nearest(sorted(pd.unique(ran)), preferred) if len(ran) else preferred
    return select_robust(rows, column, reference, metric, z=z, **columns)
