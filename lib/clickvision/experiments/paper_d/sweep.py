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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ... import claims, runtime
from ... import threads as threads_mod
from ...models import collab
from . import core
from .cf import CFSettings
from .data import PAPER_D_TABLE2, LabelledItems, load_labelled_items, openclipart_items, paper_density

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
                      n_workers: int | None = 1, threads: int | None = 1, **run_kwargs) -> InformationSweep:
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

    ``n_workers``: processes (:func:`clickvision.runtime.parallel_map`; ``None``: the environment's
    ``CLICKVISION_WORKERS`` or the CPUs). With more than one, the first cell's run is built here and its
    Image-only fits (one per ratio and seed) are spread over the workers, then the other cells' runs
    (simulation, CF fit, gates), then every (cell, label ratio) with those Image-only fits; each job in
    a worker pinned to ``threads`` threads (``None``: left as the worker starts). The numbers are those
    of the serial loop on the same kernels: every fit is a deterministic function of its inputs (a
    test checks it).

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
    grid = [(d, a) for d in densities for a in alignments]
    common = dict(alphas=alphas, seeds=seeds, unit=unit, settings=settings, n_boot=n_boot)
    n = min(runtime.workers(n_workers), len(grid) * len(ratios))
    if n <= 1:  # one process: the first cell's Image-only fits are memoised and handed to the next
        shared: dict = {}
        outs = []
        for density, alignment in grid:
            run = build(alignment, density)
            items = run.items if items is None else items
            _check_items(run, items, (density, alignment))
            run.fits.update(shared)
            parts = [_ratio_part(run, r, **common) for r in ratios]
            shared.update({k: v for p in parts for k, v in p["image_only"].items()})
            outs.append(_cell_tables(run, density, alignment, parts))
            del run
    else:  # processes: the first cell's run fits every Image-only model, then the other cells' runs are
        # built, then every (cell, label ratio) runs on its own with those Image-only fits
        first = build(grid[0][1], grid[0][0])
        items = first.items if items is None else items
        _check_items(first, items, grid[0])  # before its Image-only fits
        y_train = items.y[items.rows("train")]
        fitted = runtime.parallel_map(_image_only_fit, [
            {"run": first, "seed": sd, "mask": core.mask_labels(y_train, r, unit, sd), "settings": settings,
             "threads": threads} for r in ratios for sd in seeds], n, desc="Image-only fits")
        shared = dict(fitted)
        runs = [first, *runtime.parallel_map(_build_cell, [{"build": build, "density": d, "alignment": a,
                                                             "threads": threads} for d, a in grid[1:]],
                                             n, desc="cells' runs")]
        for run, cell in zip(runs[1:], grid[1:]):
            _check_items(run, items, cell)
        for run in runs:
            run.fits.update(shared)
        parts = runtime.parallel_map(_ratio_part, [{"run": run, "ratio": r, "threads": threads, **common}
                                                   for run in runs for r in ratios], n, desc="cells x ratios")
        outs = [_cell_tables(run, d, a, parts[i * len(ratios):(i + 1) * len(ratios)])
                for i, (run, (d, a)) in enumerate(zip(runs, grid))]
        del first, runs
    if verbose:
        for (density, alignment), out in zip(grid, outs):
            print(f"{density}, alignment {alignment:g}: " + core.gate_line(out["gate"], "CF vectors"))
    cols = ["density", "alignment"]

    def joined(key):
        f = pd.concat([o[key] for o in outs], ignore_index=True)
        return f if key == "items" else f[cols + [c for c in f if c not in cols]]

    return InformationSweep(joined("items"), pd.DataFrame([o["cell"] for o in outs]),
                            pd.DataFrame([g for o in outs for g in o["gains"]]), joined("fits"), joined("alpha_sweep"))


def _check_items(run: core.ImageRun, items: LabelledItems, cell: tuple) -> None:
    """A cell's run must be on the sweep's items (else the Image-only fits could not be shared); after a
    trip to a worker process the items are a copy, so equal keys, split and labels count as the same."""
    same = run.items is items or (np.array_equal(run.items.keys, items.keys)
                                  and np.array_equal(run.items.split, items.split)
                                  and np.array_equal(run.items.y, items.y))
    if not same:
        raise ValueError(f"make_run: the run of cell ({cell[0]}, {cell[1]}) is not on the sweep's items "
                         "(every cell must share them, or the Image-only fits could not be shared)")


def _pin(threads: int | None) -> None:
    if threads:
        threads_mod.pin(threads)


def _image_only_fit(run: core.ImageRun, seed: int, mask: np.ndarray, settings, threads: int | None) -> tuple:
    """One Image-only fit (a worker's job): (memo key, fit) of :func:`~.core.fit_and_score`."""
    _pin(threads)
    before = set(run.fits)
    core.fit_and_score(run, "image_only", "uniform", 1.0, seed, mask, settings)
    (key,) = set(run.fits) - before
    return key, run.fits[key]


def _build_cell(build: Callable, density: str, alignment: float, threads: int | None) -> core.ImageRun:
    """One cell's run (a worker's job): simulation, CF fit and gates."""
    _pin(threads)
    return build(alignment, density)


def _ratio_part(run: core.ImageRun, ratio: float, alphas: tuple, seeds: tuple, unit: str, settings, n_boot: int,
                threads: int | None = None) -> dict:
    """One (cell, label ratio): alpha chosen on validation, both methods trained with every seed
    (:func:`~.core.label_paucity`), MTL - Image-only judged by the claims engine; ``image_only``, the
    Image-only fits (memo entries) for the next cell."""
    _pin(threads)
    summary, _ = core.label_paucity(run, (ratio,), alphas, seeds, unit, settings, None, item_keys=True)
    its = summary.attrs["items"]
    mtl = summary[summary["method"] == MTL].iloc[0]
    base = summary[summary["method"] == IMAGE_ONLY].iloc[0]
    j = claims.judge(claims.Claim("D", "measured", "", "direction", arms=(MTL, IMAGE_ONLY)), its, n_resamples=n_boot)
    gain = {"label_ratio": ratio, "alpha": float(mtl["alpha"]), "image_only_map": float(base["mean"]),
            "mtl_map": float(mtl["mean"]), "gain_%": float(mtl["gain_%"]), "ap_diff": j.estimate, "ap_lo": j.ci_low,
            "ap_hi": j.ci_high, "mde": j.mde, "n_seeds": j.n_seeds, "n_items": j.n_items}
    return {"items": its, "fits": summary.attrs["fits"], "alpha_sweep": summary.attrs["alpha_sweep"], "gain": gain,
            "image_only": {k: v for k, v in run.fits.items() if k[0] == "image_only"}}


def _cell_tables(run: core.ImageRun, density: str, alignment: float, parts: list) -> dict:
    """One cell's rows of the sweep's tables from its per-ratio parts (:func:`_ratio_part`)."""
    cell = {"density": density, "alignment": alignment}
    row = _cell_row(run, density, alignment)
    for p in parts:
        row[f"alpha_{p['gain']['label_ratio']:g}"] = p["gain"]["alpha"]
    return {"items": pd.concat([p["items"] for p in parts], ignore_index=True).assign(**cell)[ITEM_COLUMNS],
            "cell": row, "gains": [{**cell, **p["gain"], "information": row["information"]} for p in parts],
            "fits": pd.concat([p["fits"] for p in parts], ignore_index=True).assign(**cell),
            "alpha_sweep": pd.concat([p["alpha_sweep"] for p in parts], ignore_index=True).assign(**cell),
            "gate": dict(run.gate)}


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


# ----------------------------------------------------------------------------- the grid of a profile
PROFILE_EPOCHS = {"smoke": 2, "default": 30, "paper": 80}  # upper bound on the image models' epochs
PAPER_GRID = {"densities": ("Pinterest", "Clothing", "Toys", "MovieLens"), "alignments": (0.0, 0.25, 0.5, 0.75, 1.0),
              "label_ratios": (0.05, 0.1, 0.25, 0.5, 1.0), "alphas": (0.5, 1.0, 1.5, 2.0)}


@dataclass(frozen=True)
class SweepPlan:
    """D.07's parameters (the notebook's parameters cell has the same defaults; a test checks it) and
    what a profile makes of them (:meth:`grid`): ``paper`` widens every dimension left at its default
    to :data:`PAPER_GRID`; ``smoke`` keeps the last density, the ends of the ratios and one alpha."""

    profile: str = "default"
    seed: int = 0
    densities: tuple = ("Pinterest", "Toys")
    alignments: tuple = (0.0, 0.5, 1.0)
    label_ratios: tuple = (0.1,)
    n_seeds: int = 5
    alphas: tuple = ()
    mask_unit: str = "items"
    epochs: int = 0
    cf_model: str = "ease"
    vae_beta: float = 1.0
    cf_scope: str = "all-but-test"
    unlabelled: bool = True

    def __post_init__(self):
        for name in ("densities", "alignments", "label_ratios", "alphas"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        d, al, r, a = self.densities, self.alignments, self.label_ratios, self.alphas
        checks = [
            ("profile", self.profile in PROFILE_EPOCHS, f"one of {sorted(PROFILE_EPOCHS)}"),
            ("densities", bool(d) and all(x in DENSITIES for x in d) and len(set(d)) == len(d),
             f"distinct names of {DENSITIES}"),
            ("alignments", bool(al) and all(_number(x) and 0 <= x <= 1 for x in al) and len(set(al)) == len(al),
             "distinct values in [0, 1]"),
            ("label_ratios", bool(r) and all(_number(x) and 0 < x <= 1 for x in r) and len(set(r)) == len(r),
             "distinct ratios in (0, 1]"),
            ("alphas", all(_number(x) and x > 0 for x in a) and len(set(a)) == len(a),
             "distinct positive numbers (or [] for D.03's selection)"),
            ("n_seeds", isinstance(self.n_seeds, int) and self.n_seeds > 0, "a positive integer"),
            ("epochs", isinstance(self.epochs, int) and self.epochs >= 0, "an integer >= 0"),
            ("vae_beta", _number(self.vae_beta) and self.vae_beta > 0, "a positive number"),
            ("mask_unit", self.mask_unit in ("items", "entries"), "'items' or 'entries'"),
            ("cf_model", self.cf_model in ("ease", "vae", "bpr"), "'ease', 'vae' or 'bpr'"),
            ("cf_scope", self.cf_scope in ("all-but-test", "train"), "'all-but-test' or 'train'"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"{name} must be {what}, got {getattr(self, name)!r}")

    def grid(self) -> dict:
        """What :func:`information_sweep` runs: densities, alignments, ratios, alphas (and where the
        alpha comes from, ``alpha_source``), seeds, the image models' ``epochs`` and the gates'
        ``cf2label_epochs``."""
        base = SweepPlan()
        dens, al, ratios = list(self.densities), sorted(self.alignments), sorted(self.label_ratios)
        if self.alphas:
            alphas = sorted(self.alphas)
            source = f"the grid {alphas} (parameter alphas), one chosen on validation per cell and ratio"
        else:
            d03_alpha, source = core.selected_alpha(self.profile)
            alphas = [d03_alpha]
        if self.profile == "smoke":  # one density, the ends of the ratios, one alpha: seconds
            dens, ratios, alphas = dens[-1:], sorted({ratios[0], ratios[-1]}), alphas[:1]
        if self.profile == "paper":  # the full grid, where the parameters are left at their defaults
            dens = list(PAPER_GRID["densities"]) if self.densities == base.densities else dens
            al = list(PAPER_GRID["alignments"]) if self.alignments == base.alignments else al
            ratios = list(PAPER_GRID["label_ratios"]) if self.label_ratios == base.label_ratios else ratios
            if not self.alphas:
                alphas = list(PAPER_GRID["alphas"])
                source = f"the grid {alphas}, one chosen on validation per cell and ratio (paper profile)"
        seeds = tuple(range(self.seed, self.seed + (1 if self.profile == "smoke" else self.n_seeds)))
        return {"densities": dens, "alignments": al, "ratios": ratios, "alphas": alphas, "alpha_source": source,
                "seeds": seeds, **self._epochs()}

    def _epochs(self) -> dict:
        """The image models' ``epochs`` and the gates' ``cf2label_epochs`` (no grid needed: D.03's alpha
        is read only by :meth:`grid`)."""
        return {"epochs": self.epochs or PROFILE_EPOCHS[self.profile],
                "cf2label_epochs": 2 if self.profile == "smoke" else 20}

    def sweep_kwargs(self) -> dict:
        """The keyword arguments of :func:`information_sweep` (without the grid's lists)."""
        smoke = self.profile == "smoke"
        smoke_cf = {"vae_epochs": 2, "bpr_epochs": 2, "ease_lams": (1000.0,)} if smoke else {}  # one EASE l2
        e = self._epochs()
        return {"unit": self.mask_unit, "cf_settings": CFSettings(vae_beta=self.vae_beta,
                                                                  **{**core.TARGET_CF_SETTINGS, **smoke_cf}),
                "settings": collab.FitSettings(epochs=e["epochs"]), "cf2label_epochs": e["cf2label_epochs"],
                "cf_scope": self.cf_scope, "unlabelled": self.unlabelled, "cf_model": self.cf_model,
                "max_users": 2000 if smoke else None}  # smoke: a subset of the simulated users

    def run(self, n_workers: int | None = 1, threads: int | None = 1, verbose: bool = False,
            items: LabelledItems | None = None) -> InformationSweep:
        """:func:`information_sweep` over :meth:`grid` with :meth:`sweep_kwargs` (``items``: default
        :func:`~.data.openclipart_items` with the plan's seed)."""
        g = self.grid()
        return information_sweep(g["densities"], g["alignments"], g["ratios"], g["alphas"], g["seeds"],
                                 verbose=verbose, n_workers=n_workers, threads=threads, items=items,
                                 **self.sweep_kwargs())


# ----------------------------------------------------------------------------- the figure
def _gain_bar(ax, cell: pd.Series, gain: pd.Series, shift: float, **style) -> None:
    """One (cell, ratio) point: its gain with the 90% interval (vertical) at the cell's information
    (+ ``shift``) with the gate's interval (horizontal)."""
    ax.errorbar(cell["information"] + shift, gain["ap_diff"],
                yerr=[[gain["ap_diff"] - gain["ap_lo"]], [gain["ap_hi"] - gain["ap_diff"]]],
                xerr=[[cell["gate_map"] - cell["gate_lo"]], [cell["gate_hi"] - cell["gate_map"]]],
                capsize=0, alpha=0.9, **style)


def gain_figure(cells: pd.DataFrame, gains: pd.DataFrame, n_seeds: int, title: str | None = None):
    """MTL - Image-only (per-test-image AP, 90% interval) against the information of the cell's target
    (gate mAP - prior, with the gate's interval): one point per (cell, label ratio); colour the ratio,
    marker the density; the ratios of a cell drawn side by side (a small offset, for legibility)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    ratios = sorted(gains["label_ratio"].unique())
    densities = list(dict.fromkeys(cells["density"]))
    colours = {r: f"C{i}" for i, r in enumerate(ratios)}
    markers = dict(zip(densities, "osD^vP"))
    span = float(np.ptp(cells["information"])) or 1.0
    offset = {r: (i - (len(ratios) - 1) / 2) * 0.012 * span for i, r in enumerate(ratios)}
    fig, ax = plt.subplots(figsize=(7.5, 4.2 if len(cells) <= 8 else 5.2))
    by_cell = cells.set_index(["density", "alignment"])
    for _, g in gains.iterrows():
        _gain_bar(ax, by_cell.loc[(g["density"], g["alignment"])], g, offset[g["label_ratio"]],
                  fmt=markers[g["density"]], color=colours[g["label_ratio"]], ms=5, lw=0.8)
    side = {d: (-1) ** i for i, d in enumerate(densities)}  # each density's labels on its own side of the bar
    for _, c in cells.iterrows():  # each cell labelled with its density and alignment, by its highest interval
        top = gains.loc[(gains["density"] == c["density"]) & (gains["alignment"] == c["alignment"]), "ap_hi"].max()
        s = side[c["density"]]
        ax.annotate(f"{c['density']}, a={c['alignment']:g}", (c["information"], top), textcoords="offset points",
                    xytext=(-3 * s, 2), ha="right" if s > 0 else "left", fontsize=7, color="0.25")
    ax.margins(y=0.12)
    ax.axhline(0, color="k", lw=0.8, ls=":")
    handles = ([Line2D([], [], color=colours[r], marker="o", ls="", label=f"label ratio {r:g}") for r in ratios]
               + [Line2D([], [], color="0.3", marker=markers[d], ls="", label=f"density: {d}") for d in densities])
    ax.legend(handles=handles, fontsize=7, ncol=2, loc="best")
    ax.set(xlabel="information of the CF target: out-of-fold CF2Label mAP - label prior",
           ylabel="MTL - Image-only, per-test-image AP",
           title=title or f"Gain vs the target's information (SIMULATED interactions, {n_seeds} seed(s), "
                          "90% intervals)")
    fig.tight_layout()
    return fig, ax


def gain_panels(cells: pd.DataFrame, gains: pd.DataFrame, title: str):
    """One panel per label ratio (shared y): MTL - Image-only (per-test-image AP, 90% interval) against
    the information of each cell's target on a log axis (gate mAP - prior, with the gate's interval);
    marker and colour the density. For grids too large for :func:`gain_figure`'s labelled cells."""
    import matplotlib.pyplot as plt

    ratios = sorted(gains["label_ratio"].unique())
    densities = list(dict.fromkeys(cells["density"]))
    markers, colours = dict(zip(densities, "osD^vP")), {d: f"C{i}" for i, d in enumerate(densities)}
    by_cell = cells.set_index(["density", "alignment"])
    fig, axes = plt.subplots(1, len(ratios), figsize=(2.4 * len(ratios) + 0.8, 3.4), sharey=True, squeeze=False)
    for ax, r in zip(axes[0], ratios):
        for _, g in gains[gains["label_ratio"] == r].iterrows():
            _gain_bar(ax, by_cell.loc[(g["density"], g["alignment"])], g, 0.0,
                      fmt=markers[g["density"]], color=colours[g["density"]], ms=4, lw=0.7)
        ax.axhline(0, color="k", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlim(left=max(ax.get_xlim()[0], 0.3 * float(cells["information"].clip(lower=1e-6).min())))
        ax.set_title(f"label ratio {r:g}", fontsize=9)
        ax.set_xlabel("information (log)", fontsize=8)
    axes[0][0].set_ylabel("MTL - Image-only, per-test-image AP")
    axes[0][-1].legend([plt.Line2D([], [], color=colours[d], marker=markers[d], ls="") for d in densities],
                       densities, fontsize=7, loc="upper left", title="density", title_fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, axes[0]


# ----------------------------------------------------------------------------- a recorded run
RECORDED_TABLES = ("cells", "gains", "fits", "alpha_sweep", "relation")


def save_recorded(sw: InformationSweep, relation: pd.DataFrame, folder: Path, meta: Mapping[str, Any]) -> Path:
    """Write a sweep run away from the workbook (the ``paper`` grid on a larger machine) to ``folder``:
    its tables as CSV (:data:`RECORDED_TABLES`), the per-test-image AP rows as gzip CSV
    (``items.csv.gz``, :data:`ITEM_COLUMNS`; Image-only's rows once, the first cell's: every cell shares
    those fits, and :func:`load_recorded` copies them back to each) and ``run.json`` (``meta``: plan,
    commit, device, times).
    Each file is written whole or not at all. Returns ``folder``."""
    import json

    from ...io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"cells": sw.cells, "gains": sw.gains, "fits": sw.fits, "alpha_sweep": sw.alpha_sweep,
              "relation": relation}
    for name, frame in tables.items():
        with atomic_path(folder / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    items = sw.items[ITEM_COLUMNS]
    if len(items):  # Image-only's rows once, the first cell's: the same fits in every cell
        d, a = items["density"].iloc[0], items["alignment"].iloc[0]
        items = items[(items["method"] != IMAGE_ONLY) | ((items["density"] == d) & (items["alignment"] == a))]
    with atomic_path(folder / "items.csv.gz") as tmp:
        items.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    with atomic_path(folder / "run.json") as tmp:
        Path(tmp).write_text(json.dumps(dict(meta), indent=1, default=str) + "\n")
    return folder


def _expand_image_only(items: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Image-only's rows, stored once (the first cell's), copied to every cell as the sweep made them."""
    mtl, base = items[items["method"] != IMAGE_ONLY], items[items["method"] == IMAGE_ONLY]
    if base.empty:
        return items
    per_cell = [base.assign(density=d, alignment=a) for d, a in zip(cells["density"], cells["alignment"])]
    return pd.concat([mtl, *per_cell], ignore_index=True)[ITEM_COLUMNS]  # rows in another order than the sweep's


def recorded_paper_run() -> Path:
    """The committed record of D.07's ``paper`` profile (:func:`main` run on a 16-core machine): the
    checkout's ``results/recorded/D.07-Information-Sweep-paper`` (not the results folder of a test run)."""
    from ... import paths

    return paths.PROJ_ROOT / "results" / "recorded" / "D.07-Information-Sweep-paper"


def load_recorded(folder: Path) -> tuple[dict, dict]:
    """(tables, meta) of :func:`save_recorded`'s folder: ``tables`` maps each of
    :data:`RECORDED_TABLES` (and ``items`` when its file is there) to a DataFrame. FileNotFoundError
    naming the folder and the missing files."""
    import json

    folder = Path(folder)
    need = [f"{n}.csv" for n in RECORDED_TABLES] + ["run.json"]
    missing = [n for n in need if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a recorded sweep run, missing {missing}")
    tables = {n: pd.read_csv(folder / f"{n}.csv") for n in RECORDED_TABLES}
    if (folder / "items.csv.gz").is_file():
        tables["items"] = _expand_image_only(pd.read_csv(folder / "items.csv.gz"), tables["cells"])
    try:
        meta = json.loads((folder / "run.json").read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{folder / 'run.json'}: not JSON ({e})") from None
    return tables, meta


def main(argv=None) -> int:
    """``python -m clickvision.experiments.paper_d.sweep --profile paper --out DIR``: D.07's sweep run
    headless (no notebook) on a larger machine, recorded with :func:`save_recorded`."""
    import argparse
    import json
    import time

    from ... import provenance

    ap = argparse.ArgumentParser(prog="python -m clickvision.experiments.paper_d.sweep", description=main.__doc__)
    ap.add_argument("--profile", default="paper", choices=sorted(PROFILE_EPOCHS))
    ap.add_argument("--out", required=True, type=Path, help="folder the tables, items and run.json go to")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: CLICKVISION_WORKERS or the CPUs)")
    ap.add_argument("--threads", type=int, default=1, help="threads per worker process")
    ap.add_argument("--plan", default="{}", help="JSON of other SweepPlan fields, e.g. '{\"n_seeds\": 3}'")
    ap.add_argument("--commit", default=None, help="the commit to record (default: the checkout's)")
    ap.add_argument("--items", type=Path, default=None,
                    help="a saved LabelledItems .npz (data.save_labelled_items of openclipart_items with the plan's seed) "
                         "instead of the Open Clip Art build: "
                         "for a machine without the images and the backbone's weights")
    args = ap.parse_args(argv)
    try:
        fields = json.loads(args.plan)
    except json.JSONDecodeError as e:
        ap.error(f"--plan is not JSON: {e}")
    if not isinstance(fields, dict):
        ap.error(f"--plan must be a JSON object of SweepPlan fields, got {args.plan!r}")
    unknown = set(fields) - set(SweepPlan.__dataclass_fields__) | ({"profile"} & set(fields))
    if unknown:
        ap.error(f"--plan: unknown or not allowed fields {sorted(unknown)} (profile is --profile)")
    plan = SweepPlan(profile=args.profile, **fields)
    grid = plan.grid()
    print(f"profile {plan.profile}: {grid}", flush=True)
    t0, c0 = time.time(), time.process_time()
    items = load_labelled_items(args.items) if args.items else None
    sw = plan.run(n_workers=args.workers, threads=args.threads, verbose=True, items=items)
    relation = gain_relation(sw.items, sw.cells) if len(sw.cells) >= 3 else pd.DataFrame(columns=["label_ratio"])
    meta = {"plan": asdict(plan), "grid": grid, "commit": args.commit or provenance.commit(),
            "versions": provenance.versions(), "device": provenance.device(),
            "workers": runtime.workers(args.workers), "threads": args.threads,
            "items": str(args.items) if args.items else "openclipart_items(seed)",
            "wall_s": round(time.time() - t0, 1), "parent_cpu_s": round(time.process_time() - c0, 1),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    save_recorded(sw, relation, args.out, meta)
    print(f"recorded in {args.out}: {len(sw.cells)} cells, {len(sw.gains)} gains, {len(sw.items):,} AP rows, "
          f"{meta['wall_s']} s", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - the command line
    raise SystemExit(main())
