"""Trivial click predictors ("floors") for paper A's RMSE-S, so "predicts clicks" has a reference (A.02).

The paper reports RMSE-S (Table VII) without defining it and without a trivial predictor beside it.
Three floors, fitted with scikit-learn on the same frozen features the TDL click predictor reads (the
pooled backbone vector ``phi``), on the source TRAINING rows with a non-zero click truth (the rows
eq. (2)'s loss sees), and scored on the source test rows by the same
:func:`~.train.click_metrics` as the trained predictors (RMSE-S under both readings, eq. (9)'s
position error, Table IV's Ratio):

* ``training mean`` -- ``DummyRegressor``: every image gets the mean training click vector;
* ``k-NN`` -- ``KNeighborsRegressor``: the mean click vector of the k nearest training images in
  ``phi`` space; k (and the distance, Euclidean or cosine) chosen on the validation rows;
* ``ridge`` -- ``Ridge``: a linear map ``phi -> v`` (TDL's linear predictor, fitted in closed form
  by squared error); alpha chosen on the validation rows.

Targets are the l2-normalised click vectors N'(v) by default: both RMSE-S readings compare
directions only, and eq. (2) trains on N'(v). The grid point with the lowest validation RMSE-S
(reading 1) is kept; reading 2 is reading 1 squared and halved on the same rows, so both readings
pick the same point. All three are deterministic: no seed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ... import metrics
from .data import DomainData
from .train import click_metrics

FLOORS = ("training mean", "k-NN", "ridge")
DEFAULT_KS = (1, 3, 5, 10, 20, 50)
DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
KNN_METRICS = ("euclidean", "cosine")
#: RMSE-S columns of :func:`rmse_s_table`: metric name -> column label.
#: Reading 1: sqrt(mean ||N'(v) - N'(v_hat)||^2); reading 2: 1/2 mean ||N'(v) - N'(v_hat)||^2 (Caffe's EuclideanLoss).
READINGS = {"rmse_s": "RMSE-S reading 1", "rmse_s_caffe": "RMSE-S reading 2 (Caffe)"}


def _check_grid(values: Sequence, name: str, kind: type, low: float, high: float | None = None,
                strict: bool = False) -> list:
    """The grid ``values`` as ``kind``; a clear ValueError naming ``name`` if empty or out of range."""
    values = list(values)
    if not values:
        raise ValueError(f"{name} is empty: give at least one value to choose from")
    for v in values:
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)
        if ok and kind is int:
            ok = float(v) == int(v)
        if not ok or v < low or (strict and v == low) or (high is not None and v > high):
            bound = (f"in [{low:g}, {high:g}]" if high is not None else f"{'>' if strict else '>='} {low:g}")
            raise ValueError(f"{name} must hold finite {kind.__name__}s {bound}; got {v!r}")
    return [kind(v) for v in values]


def _split_rows(d: DomainData, split: str) -> np.ndarray:
    rows = d.rows(split)
    rows = rows[d.valid[rows]]
    if not len(rows):
        raise ValueError(f"domain {d.name!r}: no {split} row has a non-zero click truth (d.valid)")
    return rows


def click_floors(d: DomainData, ks: Sequence[int] = DEFAULT_KS, alphas: Sequence[float] = DEFAULT_ALPHAS,
                 knn_metrics: Sequence[str] = KNN_METRICS, bandwidth: float = 0.01,
                 normalize_target: bool = True) -> pd.DataFrame:
    """The three floors on domain ``d`` (the source: it needs ``clicks``), as tidy rows.

    Columns ``predictor`` (one of :data:`FLOORS`), ``setting`` (``"k=10, cosine"``, ``"alpha=100"``,
    ``"-"``), ``selected`` (the grid point kept), ``metric``, ``value``. Every grid point has the
    validation metrics (``val_rmse_s``, ``val_rmse_s_caffe``, ``val_position_error``, ``val_ratio``);
    the kept one also the test metrics (``rmse_s``, ...), all from :func:`click_metrics` on the
    rows with a non-zero truth. ``bandwidth`` is the Ratio's (Table IV). ``normalize_target``:
    fit N'(v) (default) rather than the raw TF-IDF click vector.
    """
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsRegressor

    if d.clicks is None or d.valid is None:
        raise ValueError(f"domain {d.name!r} has no click features: the floors need the source")
    tr, va, te = (_split_rows(d, s) for s in ("train", "val", "test"))
    ks = _check_grid(ks, "ks", int, 1, len(tr))
    alphas = _check_grid(alphas, "alphas", float, 0.0, strict=True)
    knn_metrics = list(knn_metrics)
    if not knn_metrics or any(m not in KNN_METRICS for m in knn_metrics):
        raise ValueError(f"knn_metrics must be a non-empty subset of {KNN_METRICS}, got {knn_metrics!r}")
    x = np.asarray(d.phi, dtype=np.float64)
    v = np.asarray(d.clicks, dtype=np.float64)
    target = metrics._l2_normalize_rows(v[tr]) if normalize_target else v[tr]

    candidates = [("training mean", "-", DummyRegressor(strategy="mean"))]
    candidates += [("k-NN", f"k={k}, {m}", KNeighborsRegressor(n_neighbors=k, metric=m, algorithm="brute"))
                   for m in knn_metrics for k in ks]
    candidates += [("ridge", f"alpha={a:g}", Ridge(alpha=a)) for a in alphas]
    out, chosen = [], {}
    for predictor, setting, model in candidates:
        model.fit(x[tr], target)
        val = click_metrics(v, _predict(model, x, va, v.shape[1]), _mask(v, va), bandwidth)
        out += [{"predictor": predictor, "setting": setting, "metric": f"val_{k}", "value": float(m)}
                for k, m in val.items()]
        best = chosen.get(predictor)
        if best is None or val["rmse_s"] < best[0]:  # ties: the first grid point
            chosen[predictor] = (val["rmse_s"], setting, model)
    for predictor, (_, setting, model) in chosen.items():
        test = click_metrics(v, _predict(model, x, te, v.shape[1]), _mask(v, te), bandwidth)
        out += [{"predictor": predictor, "setting": setting, "metric": k, "value": float(m)} for k, m in test.items()]
    rows = pd.DataFrame(out)
    kept = {(p, s) for p, (_, s, _) in chosen.items()}
    rows.insert(2, "selected", [(p, s) in kept for p, s in zip(rows["predictor"], rows["setting"])])
    return rows


def _predict(model, x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The model's prediction on ``rows`` placed in a full-length array (zeros elsewhere)."""
    out = np.zeros((len(x), k))
    out[rows] = model.predict(x[rows])
    return out


def _mask(v: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(v), dtype=bool)
    mask[rows] = True
    return mask


def rmse_s_table(tdl_rows: pd.DataFrame, floors: pd.DataFrame, predictor: str = "TDL click predictor",
                 paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """A.02's table: the trained predictor per seed and its mean, the selected floors, and the paper.

    ``tdl_rows``: tidy rows with ``representation == "click"`` and ``seed`` (:func:`~.core.tdl_run`);
    ``floors``: :func:`click_floors`. Columns: the two readings (:data:`READINGS`), eq. (9)'s
    position error, the chosen setting, and ``paper`` -- the paper's Table VII values (x 1e-2 -> units),
    which it prints for its jointly trained click predictors (lambda > 0) and for untrained click heads
    (lambda = 0), not for TDL or a trivial predictor; ``paper`` defaults to
    :data:`~.joint.PAPER_TABLE_VII`.
    """
    cols = [*READINGS, "position_error"]
    click = tdl_rows[(tdl_rows["representation"] == "click") & tdl_rows["metric"].isin(cols)]
    if click.empty:
        raise ValueError("tdl_rows has no click rows with rmse_s / rmse_s_caffe (representation == 'click')")
    per_seed = click.pivot_table(index="seed", columns="metric", values="value").reindex(columns=cols)
    body = [(f"{predictor}, seed {s}", r, "trained (eq. 2)") for s, r in per_seed.iterrows()]
    body.append((f"{predictor}, mean of {len(per_seed)} seeds", per_seed.mean(), "trained (eq. 2)"))
    sel = floors[floors["selected"] & floors["metric"].isin(cols)]
    for name in FLOORS:
        f = sel[sel["predictor"] == name]
        if len(f):
            body.append((f"floor: {name}", f.set_index("metric")["value"].reindex(cols),
                         f"{f['setting'].iloc[0]} (validation)"))
    table = pd.DataFrame([r for _, r, _ in body], index=[n for n, _, _ in body]).reindex(columns=cols)
    table.columns = [*READINGS.values(), "position error (eq. 9)"]
    table["setting"] = [s for _, _, s in body]
    ranges = paper_rmse_s_ranges(paper)
    table["paper (Table VII)"] = ""
    for label, key in (("paper: trained click heads (lambda > 0)", "trained"),
                       ("paper: untrained click head (lambda = 0)", "untrained")):
        table.loc[label] = [np.nan] * 3 + ["", "{:.3f} - {:.3f}".format(*ranges[key])]
    return table


def paper_rmse_s_ranges(paper: pd.DataFrame | None = None) -> dict[str, tuple[float, float]]:
    """The paper's Table VII RMSE-S range (x 1e-2 -> units): ``trained`` (lambda > 0, the click loss on)
    and ``untrained`` (lambda = 0, the click head gets no gradient); ``paper`` defaults to
    :data:`~.joint.PAPER_TABLE_VII`."""
    if paper is None:
        from .joint import PAPER_TABLE_VII as paper
    rmse = paper.loc["RMSE-S (1e-2)"] / 100
    lam = np.array([lam for _, lam in rmse.index], dtype=float)
    return {key: (float(rmse[sel].min()), float(rmse[sel].max()))
            for key, sel in (("trained", lam > 0), ("untrained", lam == 0))}
