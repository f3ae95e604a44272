"""Paper D: the gain of MTL-reconstruct against the information of its auxiliary target (notebook D.07).

The interactions are SIMULATED (:func:`~.core.simulated_interactions`): for each cell of a grid of
densities (paper D's events per user and per item, :data:`~.data.PAPER_D_TABLE2`, or the first
``"built"`` set) and label alignments of the simulated tastes, one :func:`~.core.image_run` simulates
the events, fits the CF model and measures the information gate (the out-of-fold CF2Label mAP of the
CF vectors against the label prior; of the simulator's true item factors too). Every cell uses the
same items (the same split, features and labels), so the Image-only fits, which never see a CF
vector, are computed once per (label ratio, seed) and shared by every cell: each cell's gain is
measured against the very same baseline. Per cell and label ratio, MTL-reconstruct-uniform's task
weight is chosen on validation among ``alphas`` (:func:`~.core.choose_alpha`, training seed
``seeds[0]``), then Image-only and MTL are trained with every seed (:func:`~.core.label_paucity`).

Tables (:class:`InformationSweep`): per-test-image AP rows, the per-cell gate table and the per-(cell,
ratio) gain table, whose interval is the claims engine's (:func:`clickvision.claims.judge`, a
"measured" direction contrast MTL - Image-only on per-image AP, seeds x test images).
:func:`gain_relation` summarises how the gain moves with the measured information (a least-squares
slope and a Spearman correlation over the cells, with intervals from the same two-level bootstrap):
a measurement, not one of the paper's claims.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ... import claims
from ...models import collab
from . import core
from .cf import CFSettings
from .data import PAPER_D_TABLE2, LabelledItems, openclipart_items, paper_density

DENSITIES = ("built", *PAPER_D_TABLE2)
IMAGE_ONLY, MTL = core.IMAGE_ONLY, core.MTL_UNIFORM
ITEM_COLUMNS = ["density", "alignment", "label_ratio", "method", "seed", "item", "value"]


class InformationSweep(NamedTuple):
    """The sweep's tidy tables (see :func:`information_sweep`)."""

    items: pd.DataFrame  # per-test-image AP: density, alignment, label_ratio, method, seed, item, value
    cells: pd.DataFrame  # per (density, alignment): simulated events, CF fit, gates, label prior, alpha per ratio
    gains: pd.DataFrame  # per (density, alignment, label_ratio): alpha, mAPs, MTL - Image-only with its interval
    fits: pd.DataFrame  # per (cell, label_ratio, method, seed): alpha, val_mAP, test_mAP
    alpha_sweep: pd.DataFrame  # per (cell, label_ratio, alpha): MTL's validation mAP at seeds[0]


def _distinct(name: str, values, ok: Callable, what: str) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list of {what}, got {values!r}")
    values = tuple(values)
    if not all(ok(v) for v in values):
        raise ValueError(f"{name} must be a non-empty list of {what}, got {list(values)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {list(values)}")
    return values


def _number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def information_sweep(densities, alignments, ratios, alphas, seeds=(0,), *, unit: str = "items",
                      cf_settings: CFSettings | None = None, settings: collab.FitSettings | None = None,
                      items: LabelledItems | None = None, cf2label_epochs: int = 20,
                      n_boot: int = claims.N_RESAMPLES, make_run: Callable | None = None, verbose: bool = False,
                      **run_kwargs) -> InformationSweep:
    """Gain of MTL-reconstruct-uniform over Image-only across density x alignment x label ratio.

    For each (density, alignment) cell, one run: :func:`~.core.image_run` (SIMULATED interactions at
    that alignment and density, CF model seeded by ``seeds[0]``, the gate measured out of fold with
    ``cf2label_epochs``; ``run_kwargs``: its ``cf_scope``, ``unlabelled``, ``cf_model``,
    ``max_users``), on ``items`` (default :func:`~.data.openclipart_items` with ``seeds[0]``) for
    every cell. ``make_run(alignment, density)``: another way to build a cell's run (it must use
    ``items``; the unit tests pass small synthetic runs). Then, per label ratio, alpha chosen on
    validation among ``alphas`` and both methods trained with every seed
    (:func:`~.core.label_paucity`, labels removed per ``unit`` and seed; the Image-only fits of the
    first cell are reused by every other cell: they do not depend on the interactions).

    Returns :class:`InformationSweep`:

    * ``items``: per-test-image AP rows (density, alignment, label_ratio, method, seed, item = image
      key, value); the Image-only rows of every cell are the same fits;
    * ``cells``: per cell the simulated events (``events``, ``events_per_user``,
      ``events_per_item``: what was actually simulated, before any ``max_users`` subset; beside
      them paper D's ``paper_events_per_user``/``_item``), the events and items of the CF fit, the
      gate (``gate_map`` with ``gate_lo``/``gate_hi``, ``prior``, ``gate_ratio``, ``gate_open``,
      ``information`` = gate_map - prior), the true factors' out-of-fold mAP (``true_factor_map``,
      ``_lo``, ``_hi``; NaN for the built set, which stores no factors) and ``alpha_<ratio>``, the
      alpha chosen at each ratio;
    * ``gains``: per (cell, ratio) the chosen ``alpha``, the seed-averaged test mAP of both methods
      and MTL's relative gain (``gain_%``), and MTL - Image-only on per-test-image AP (``ap_diff``,
      its 90% interval ``ap_lo``/``ap_hi``, ``mde``, ``n_seeds``, ``n_items``: a "measured"
      direction contrast judged by :func:`clickvision.claims.judge` with ``n_boot`` resamples), with
      the cell's ``information``;
    * ``fits`` and ``alpha_sweep``: every fit's validation and test mAP, and the validation sweeps.
    """
    densities = _distinct("densities", densities, lambda d: d in DENSITIES, f"densities of {DENSITIES}")
    alignments = _distinct("alignments", alignments, lambda a: _number(a) and 0 <= a <= 1, "alignments in [0, 1]")
    ratios = _distinct("ratios", ratios, lambda r: _number(r) and 0 < r <= 1, "label ratios in (0, 1]")
    alphas = _distinct("alphas", alphas, lambda a: _number(a) and a > 0, "positive task weights")
    seeds = _distinct("seeds", seeds, lambda s: isinstance(s, (int, np.integer)) and not isinstance(s, bool),
                      "integer training seeds")
    if unit not in ("items", "entries"):
        raise ValueError(f"unit must be 'items' or 'entries', got {unit!r}")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if "density" in run_kwargs or "alignment" in run_kwargs:
        raise ValueError("run_kwargs must not set density or alignment: the sweep sets them per cell")
    items = items if items is not None else (openclipart_items(seed=seeds[0]) if make_run is None else None)

    def simulated_run(alignment, density):
        return core.image_run(alignment, cf_settings, seeds[0], cf2label_epochs, items=items, density=density,
                              **run_kwargs)

    build = make_run or simulated_run
    shared: dict = {}  # Image-only fits by fit_and_score's memo key: they never see a CF vector
    item_rows, cell_rows, gain_rows, fit_rows, sweep_rows = [], [], [], [], []
    for density in densities:
        for alignment in alignments:
            run = build(alignment, density)
            if items is None:
                items = run.items
            if run.items is not items:
                raise ValueError(f"make_run: the run of cell ({density}, {alignment}) is not on the sweep's items "
                                 "(every cell must share them, or the Image-only fits could not be shared)")
            run.fits.update(shared)
            summary, _ = core.label_paucity(run, ratios, alphas, seeds, unit, settings, None, item_keys=True)
            shared.update({k: v for k, v in run.fits.items() if k[0] == "image_only"})
            cell = {"density": density, "alignment": alignment}
            its = summary.attrs["items"].assign(**cell)[ITEM_COLUMNS]
            item_rows.append(its)
            fit_rows.append(summary.attrs["fits"].assign(**cell))
            sweep_rows.append(summary.attrs["alpha_sweep"].assign(**cell))
            row = _cell_row(run, density, alignment)
            by_ratio = summary[summary["method"] == MTL].set_index("label_ratio")
            base = summary[summary["method"] == IMAGE_ONLY].set_index("label_ratio")["mean"]
            for r in ratios:
                row[f"alpha_{r:g}"] = float(by_ratio.loc[r, "alpha"])
                j = claims.judge(claims.Claim("D", "measured", "", "direction", arms=(MTL, IMAGE_ONLY)),
                                 its[its["label_ratio"] == r], n_resamples=n_boot)
                gain_rows.append({**cell, "label_ratio": r, "alpha": float(by_ratio.loc[r, "alpha"]),
                                  "image_only_map": float(base.loc[r]), "mtl_map": float(by_ratio.loc[r, "mean"]),
                                  "gain_%": float(by_ratio.loc[r, "gain_%"]), "ap_diff": j.estimate,
                                  "ap_lo": j.ci_low, "ap_hi": j.ci_high, "mde": j.mde, "n_seeds": j.n_seeds,
                                  "n_items": j.n_items, "information": row["information"]})
            cell_rows.append(row)
            if verbose:
                print(f"{density}, alignment {alignment:g}: " + core.gate_line(run.gate, "CF vectors"))
            del run
    cols = ["density", "alignment"]
    return InformationSweep(pd.concat(item_rows, ignore_index=True), pd.DataFrame(cell_rows),
                            pd.DataFrame(gain_rows),
                            pd.concat(fit_rows, ignore_index=True).pipe(lambda f: f[cols + [c for c in f if c not in cols]]),
                            pd.concat(sweep_rows, ignore_index=True).pipe(
                                lambda f: f[cols + [c for c in f if c not in cols]]))


def _cell_row(run: core.ImageRun, density: str, alignment: float) -> dict:
    """One row of the per-cell table (see :func:`information_sweep`)."""
    info, gate, fg = run.info, run.gate, run.factor_gate or {}
    paper = paper_density(density) if density in PAPER_D_TABLE2 else {}
    return {"density": density, "alignment": alignment, "events": info.get("events", np.nan),
            "events_per_user": info.get("events_per_user", np.nan),
            "events_per_item": info.get("events_per_item", np.nan),
            "paper_events_per_user": paper.get("events_per_user", np.nan),
            "paper_events_per_item": paper.get("events_per_item", np.nan),
            "cf_items": info.get("cf_items", np.nan), "cf_events": info.get("cf_events", np.nan),
            "gate_map": gate["map"], "gate_lo": gate["lo"], "gate_hi": gate["hi"], "prior": gate["prior"],
            "gate_ratio": gate["ratio"], "gate_open": bool(gate["open"]), "information": gate["map"] - gate["prior"],
            "true_factor_map": fg.get("map", np.nan), "true_factor_lo": fg.get("lo", np.nan),
            "true_factor_hi": fg.get("hi", np.nan)}


def cell_name(density: str, alignment: float) -> str:
    """A cell's arm name in :func:`gain_relation`'s resampling: ``"Toys, alignment 0.5"``."""
    return f"{density}, alignment {alignment:g}"


def gain_difference_items(items: pd.DataFrame, ratio: float | None = None) -> pd.DataFrame:
    """Tidy rows (method = cell name, seed, item, value = MTL - Image-only per-image AP) per cell, at
    label ``ratio`` (``None``: the mean over the ratios of each (seed, image)): one arm per cell, for
    the two-level bootstrap of :func:`gain_relation`."""
    missing = set(ITEM_COLUMNS) - set(items.columns)
    if missing:
        raise ValueError(f"items lacks columns {sorted(missing)} (use information_sweep(...).items)")
    sub = items if ratio is None else items[items["label_ratio"] == ratio]
    if sub.empty:
        raise ValueError(f"no AP rows at label ratio {ratio} (have {sorted(items['label_ratio'].unique())})")
    wide = sub.pivot_table(index=["density", "alignment", "label_ratio", "seed", "item"], columns="method",
                           values="value", aggfunc="first")
    diff = (wide[MTL] - wide[IMAGE_ONLY]).rename("value").reset_index()
    diff = diff.groupby(["density", "alignment", "seed", "item"], as_index=False, sort=False)["value"].mean()
    diff["method"] = [cell_name(d, a) for d, a in zip(diff["density"], diff["alignment"])]
    return diff


def gain_relation(items: pd.DataFrame, cells: pd.DataFrame, x: str = "information",
                  n_boot: int = claims.N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """How MTL's gain over Image-only moves with the measured information of the target, per label
    ratio and, with more than one ratio, over all of them (``label_ratio`` "all": each (seed, image)'s
    gain averaged over the ratios): a measurement across the cells, not a paper claim.

    ``x``: the column of ``cells`` that measures the information (default ``information``, the
    gate's out-of-fold mAP minus the label prior). Per ratio: ``slope``, the least-squares slope of
    the cells' mean per-image AP gain on ``x`` (AP per unit of ``x``), and ``spearman``, the rank
    correlation of the two over the cells, each with a 90% interval (``_lo``/``_hi``) from the claims
    engine's two-level bootstrap (:func:`clickvision.claims.resample_means`: seeds and test images
    drawn with replacement, the same draws for every cell; ``x`` is held fixed, so its own
    uncertainty is left out). ``slope`` times the range of ``x`` is the engine's ``trend`` estimate.
    """
    if x not in cells.columns:
        raise ValueError(f"x must be a column of cells, got {x!r} (have {list(cells.columns)})")
    if len(cells) < 3:
        raise ValueError(f"gain_relation needs at least 3 cells, got {len(cells)}")
    xs_by = {cell_name(d, a): float(v) for d, a, v in zip(cells["density"], cells["alignment"], cells[x])}
    arms = tuple(xs_by)
    xs = np.array([xs_by[a] for a in arms])
    if not np.isfinite(xs).all() or np.ptp(xs) == 0:
        raise ValueError(f"cells[{x!r}] must be finite and not all equal, got {list(xs)}")
    tail = (1 - claims.CONFIDENCE) / 2
    rows = []
    present = sorted(items["label_ratio"].unique())
    for ratio in [*present, None] if len(present) > 1 else present:
        grid = claims.score_grid(gain_difference_items(items, ratio), arms, "gain_relation")
        draws = claims.resample_means(grid.values, n_boot, seed)  # (n_boot, cells)
        point = grid.values.mean(axis=(1, 2))
        xc = xs - xs.mean()
        slope = lambda y: (y - y.mean(-1, keepdims=True)) @ xc / (xc @ xc)  # noqa: E731
        rx = rankdata(xs)

        def spearman(y):
            ry = rankdata(y, axis=-1)
            ry, rxc = ry - ry.mean(-1, keepdims=True), rx - rx.mean()
            den = np.sqrt((ry ** 2).sum(-1) * (rxc @ rxc))
            return np.divide(ry @ rxc, den, out=np.full(ry.shape[:-1], np.nan), where=den > 0)

        s_draws, r_draws = slope(draws), spearman(draws)
        rows.append({"label_ratio": "all" if ratio is None else ratio, "n_cells": len(arms),
                     "n_seeds": grid.n_seeds, "n_items": grid.n_items,
                     "slope": float(slope(point)), "slope_lo": float(np.quantile(s_draws, tail)),
                     "slope_hi": float(np.quantile(s_draws, 1 - tail)),
                     "spearman": float(spearman(point)), "spearman_lo": float(np.nanquantile(r_draws, tail)),
                     "spearman_hi": float(np.nanquantile(r_draws, 1 - tail))})
    return pd.DataFrame(rows)


def save_items(items: pd.DataFrame, notebook: str, params: Mapping[str, Any]) -> Path:
    """Write the per-test-image AP rows of a sweep (gzip CSV, :data:`ITEM_COLUMNS`), so that every
    contrast and relation of the notebook can be recomputed from ``results/``: the committed run
    (profile ``default`` with the notebook's own parameters, :func:`clickvision.provenance.is_committed_run`)
    writes ``results/evidence/<notebook>-items.csv.gz``, any other run
    ``results/runs/<notebook>.<run id>.items.csv.gz``. Returns the path written."""
    from ... import paths, provenance, results
    from ...io import atomic_path

    missing = set(ITEM_COLUMNS) - set(items.columns)
    if missing:
        raise ValueError(f"items lacks columns {sorted(missing)} (use information_sweep(...).items)")
    if provenance.is_committed_run(notebook, params):
        path = paths.RESULTS_DIR / "evidence" / f"{notebook}-items.csv.gz"
    else:
        path = paths.RESULTS_DIR / "runs" / f"{notebook}.{results.run_id(dict(params))}.items.csv.gz"
    paths.ensure_dir(path.parent)
    with atomic_path(path) as tmp:
        items[ITEM_COLUMNS].to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    return path
