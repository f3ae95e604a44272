"""Bootstrap helpers for tables; the verdicts on the papers' claims come from :mod:`clickvision.claims`.

Paper D reports mAP as the mean and a 90% range over 50 resamples of 90% of the test rows
drawn WITHOUT replacement (section 4.1.4, Table 5), and marks gains "significant" by paired
t-tests on those resamples. That range is NOT a confidence interval: a subsample of 90% of n
rows without replacement has a mean whose spread is sqrt(0.1 / 0.9) = 1/3 of a bootstrap
mean's (finite-population correction), so the range is about a third of the proper width,
and the t-test on overlapping subsamples overstates significance. It is kept, under its own
name (:func:`paper_d_subsamples`), only to display the paper's protocol beside its numbers.
Every claim is judged by :func:`clickvision.claims.judge` (a two-level bootstrap WITH
replacement over training seeds and test items).

:func:`bootstrap_indices` draws the classic bootstrap (all n rows, with replacement) unless
asked otherwise; :func:`bootstrap_metric` scores every method on the SAME resamples;
:func:`bootstrap_ci` and :func:`paired_query_test` work on per-query values (paper B).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel


def _check_ci(ci: float) -> None:
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie strictly between 0 and 1, got {ci!r}")


def _percentiles(values: np.ndarray, ci: float) -> tuple[float, float]:
    tail = (1 - ci) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail])
    return float(lo), float(hi)


def bootstrap_indices(
    n: int,
    n_resamples: int = 1000,
    fraction: float = 1.0,
    seed: int = 0,
    replace: bool = True,
) -> np.ndarray:
    """Row indices of ``n_resamples`` resamples of ``round(fraction * n)`` rows, (R, m).

    The default is the classic bootstrap: all n rows, drawn WITH replacement. ``replace=False``
    draws subsamples without replacement (it needs ``fraction < 1``); that is paper D's
    protocol (:func:`paper_d_subsamples`), whose range is about a third of a confidence
    interval's width. Each row is sorted; the same ``seed`` gives the same indices.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    if not replace and fraction >= 1:
        raise ValueError("replace=False with fraction 1 draws every row every time: nothing is resampled")
    m = max(1, int(round(fraction * n)))
    rng = np.random.default_rng(seed)
    draws = [rng.choice(n, size=m, replace=bool(replace)) for _ in range(n_resamples)]
    return np.sort(np.stack(draws), axis=1)


def paper_d_subsamples(n: int, n_resamples: int = 50, seed: int = 0) -> np.ndarray:
    """PAPER D's protocol: ``n_resamples`` subsamples of 90% of the n test rows WITHOUT replacement.

    For displaying the paper's "mean and 90% range over 50 resamples" beside its numbers only:
    the range is about 1/3 of a bootstrap confidence interval's width (see the module doc), so
    it must not decide a claim (use :func:`clickvision.claims.judge`).
    """
    return bootstrap_indices(n, n_resamples, fraction=0.9, seed=seed, replace=False)


def bootstrap_metric(
    metric_fn: Callable[[Any, Any], float],
    y_true: Any,
    scores_by_method: dict[str, Any],
    indices: np.ndarray,
) -> pd.DataFrame:
    """Score every method on the same resamples: tidy rows (method, resample, value).

    ``metric_fn(y_true[idx], scores[idx])`` is called for each row ``idx`` of ``indices``
    (from :func:`bootstrap_indices`) and each method's scores (rows aligned with y_true).
    """
    y_true = np.asarray(y_true)
    indices = np.asarray(indices)
    if not scores_by_method:
        raise ValueError("scores_by_method is empty: give at least one method")
    if indices.ndim != 2 or indices.size == 0 or indices.dtype.kind not in "iu":
        raise ValueError(f"indices must be a non-empty (R, m) integer array, got {indices.shape}")
    if indices.min() < 0 or indices.max() >= len(y_true):
        raise ValueError(f"indices must lie in [0, {len(y_true)}) (rows of y_true)")
    rows = []
    for method, scores in scores_by_method.items():
        scores = np.asarray(scores)
        if len(scores) != len(y_true):
            raise ValueError(
                f"scores_by_method[{method!r}] has {len(scores)} rows, y_true has {len(y_true)}"
            )
        for r, idx in enumerate(indices):
            rows.append((method, r, float(metric_fn(y_true[idx], scores[idx]))))
    return pd.DataFrame(rows, columns=["method", "resample", "value"])


def summarize_bootstrap(df: pd.DataFrame, ci: float = 0.9) -> pd.DataFrame:
    """Mean and percentile range per method: columns method, mean, lo, hi, n_resamples.

    The range is a confidence interval only if the resamples are bootstrap resamples (with
    replacement, all rows); over :func:`paper_d_subsamples` it is paper D's narrow range."""
    _check_ci(ci)
    missing = {"method", "resample", "value"} - set(df.columns)
    if missing:
        raise ValueError(f"df lacks columns {sorted(missing)} (use bootstrap_metric's output)")
    rows = []
    for method, group in df.groupby("method", sort=False):
        values = group["value"].to_numpy(dtype=float)
        lo, hi = _percentiles(values, ci)
        rows.append((method, float(values.mean()), lo, hi, len(values)))
    return pd.DataFrame(rows, columns=["method", "mean", "lo", "hi", "n_resamples"])


def _two_sided_p(diffs: np.ndarray) -> float:
    """2 x the share of differences on the far side of 0, add-one smoothed, at most 1."""
    far = min(np.sum(diffs <= 0), np.sum(diffs >= 0))
    return float(min(1.0, 2 * (far + 1) / (len(diffs) + 1)))


def _paired_t_p(a: np.ndarray, b: np.ndarray) -> float:
    diffs = a - b
    if np.ptp(diffs) <= 1e-12 * max(float(np.abs(diffs).max()), 1.0):  # t undefined
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_rel(a, b).pvalue)


def paired_bootstrap_test(df: pd.DataFrame, a: str, b: str, ci: float = 0.9) -> dict[str, float]:
    """Compare methods ``a`` and ``b`` on paired resamples (same resample id, same rows).

    Meaningful only on bootstrap resamples (with replacement); on paper D's subsamples the
    interval is about 1/3 too narrow. Claims are judged by :func:`clickvision.claims.judge`.

    Returns ``mean_diff`` (mean of a - b), ``lo``/``hi`` (percentile interval of the paired
    differences), ``p_value`` (two-sided: twice the add-one-smoothed share of differences
    on the other side of 0, so its floor is 2 / (R + 1), 0.039 for R = 50),
    ``t_p_value`` (scipy's ``ttest_rel`` on the paired values, as in paper D; resamples
    are not independent, so treat it as optimistic), and ``n_resamples``.
    """
    _check_ci(ci)
    wide = df.pivot(index="resample", columns="method", values="value")
    for name in (a, b):
        if name not in wide.columns:
            raise ValueError(f"method {name!r} is not in df (methods: {list(wide.columns)})")
    pair = wide[[a, b]]
    if pair.isna().any().any():
        raise ValueError(f"methods {a!r} and {b!r} were not scored on the same resamples")
    va, vb = pair[a].to_numpy(dtype=float), pair[b].to_numpy(dtype=float)
    diffs = va - vb
    lo, hi = _percentiles(diffs, ci)
    return {
        "mean_diff": float(diffs.mean()), "lo": lo, "hi": hi,
        "p_value": _two_sided_p(diffs), "t_p_value": _paired_t_p(va, vb),
        "n_resamples": len(diffs),
    }


def bootstrap_ci(
    values: Any, n_resamples: int = 1000, ci: float = 0.9, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of per-query values and its percentile bootstrap interval.

    Resamples the queries with replacement (paper B's intervals over queries).
    """
    _check_ci(ci)
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-d array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contains NaN or infinite entries")
    idx = bootstrap_indices(values.size, n_resamples, fraction=1.0, seed=seed, replace=True)
    lo, hi = _percentiles(values[idx].mean(axis=1), ci)
    return float(values.mean()), lo, hi


def paired_query_test(
    values_a: Any, values_b: Any, n_resamples: int = 1000, ci: float = 0.9, seed: int = 0
) -> dict[str, float]:
    """Paired test over queries (paper B, Table 1's significance): a - b per query.

    ``mean_diff`` and its bootstrap interval over queries; ``p_value`` from the same
    bootstrap (as in :func:`paired_bootstrap_test`); ``t_p_value`` from ``ttest_rel`` on
    the per-query values, which are independent draws here, so that test is valid.
    """
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(f"values_a and values_b must be 1-d, equal length >= 2: {a.shape}, {b.shape}")
    mean_diff, lo, hi = bootstrap_ci(a - b, n_resamples, ci, seed)
    idx = bootstrap_indices(a.size, n_resamples, fraction=1.0, seed=seed, replace=True)
    return {
        "mean_diff": mean_diff, "lo": lo, "hi": hi,
        "p_value": _two_sided_p((a - b)[idx].mean(axis=1)), "t_p_value": _paired_t_p(a, b),
        "n_resamples": n_resamples,
    }
