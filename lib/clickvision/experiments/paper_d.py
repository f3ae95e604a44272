"""Paper D (Collaborative Image Understanding) experiments: Table 5 and Figures 3-4, plus the
entry point of every paper D experiment (``from clickvision.experiments import paper_d as D``).

The data and the evaluation protocol live in :mod:`.paper_d_data`, the CF models, CF vectors
and CF2Label (Tables 3-4) in :mod:`.paper_d_cf`; both are re-exported here.

Images: the real Open Clip Art images with their real keywords as labels and SIMULATED
interactions (:mod:`clickvision.click.interactions`). No real image ever meets a real
interaction here. Items split 70/15/15; validation and test items are cold (their
interactions are dropped before the CF model is fit). Model selection on validation only.
Tables: mAP with paper D's own range (50 subsamples of 90% of the test rows, the SAME for
every method and seed, seeds averaged per subsample: about a third of a confidence interval,
display only). Claims: per-test-image AP rows in ``attrs['items']`` (seeds x images), judged
by :mod:`clickvision.claims`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .. import stats
from .. import metrics as M
from ..click import build as click_build
from ..click.interactions import InteractionSimConfig, simulate_interactions
from ..data import openclipart
from ..losses import cf as losses
from ..models import collab
from .paper_d_cf import (CFSettings, cf2label_table, cf_auc_table, cornac_rows, fit_cf,  # noqa: F401
                         item_cf_vectors, per_user_auc_rows)
from .paper_d_data import (NON_CONTENT_KEYWORDS, SPLIT_FRACTIONS, LabelledItems, bootstrap_table,  # noqa: F401
                           item_ap_rows, movielens_items, multi_hot, openclipart_items, paper_protocol_table,
                           per_class_ap, per_image_ap, standardize, subsample_users)


# ----------------------------------------------------------------------------- Table 5 and Figs 3-4
@dataclass
class ImageRun:
    """Everything the image experiments share: items, standardised CF vectors, weights."""

    items: LabelledItems
    q: np.ndarray  # (n_train, d) standardised CF vectors of the training items
    n_interactions: np.ndarray  # (n_train,)
    positive_loss: np.ndarray | None = None  # out-of-fold l_WEIGHT of the training items
    oof_map: float = float("nan")  # out-of-fold CF2Label mAP on the training items
    true_factor_oof_map: float = float("nan")  # the same from the simulator's own item factors
    fits: dict = field(default_factory=dict, repr=False)  # memo of fit_and_score (same inputs, same model)

    def weights(self, scheme: str) -> np.ndarray:
        return losses.confidence_weights(scheme, self.n_interactions, self.positive_loss)


def image_run(alignment: float = 0.5, cf_settings: CFSettings | None = None, seed: int = 0,
              cf2label_epochs: int = 20, items: LabelledItems | None = None, max_users: int | None = None) -> ImageRun:
    """Items, CF vectors (VAE on the training items' SIMULATED interactions) and confidences;
    ``oof_map``: the out-of-fold CF2Label mAP on the training items (label information in q).

    ``alignment`` 0.5 loads the built simulated interactions; any other value re-simulates
    them with :class:`InteractionSimConfig` ``(label_alignment=alignment)`` (same seed).
    ``max_users``: keep a seeded subset of the simulated users (smoke runs). A re-simulated run
    also scores an out-of-fold CF2Label on the simulator's true item factors (``true_factor_oof_map``):
    the label information the interactions were drawn from, before the CF model recovers any.
    """
    items = items or openclipart_items(seed=seed)
    tr, true_map = items.rows("train"), float("nan")
    if alignment == 0.5:
        events = click_build.load_simulated_interactions("openclipart").events
    else:
        images = openclipart.load_openclipart()
        config = InteractionSimConfig(label_alignment=alignment, label_column="labels")
        sim = simulate_interactions(images, config, seed=click_build.SEED)
        events, row_of = sim.events, {k: i for i, k in enumerate(images.items["key"])}
        f = sim.meta["item_factors"][[row_of[k] for k in items.keys[tr]]]
        oof_f = collab.out_of_fold_scores(standardize(f, np.arange(len(f))), items.y[tr], seed=seed, epochs=cf2label_epochs)
        true_map = M.average_precision_macro(items.y[tr], oof_f)
    if max_users is not None:
        events = subsample_users(events, max_users, seed)
    q, n = item_cf_vectors(events, items.keys[tr], "vae", cf_settings, seed, cache_tag=f"openclipart-a{alignment}")
    q = standardize(q, np.flatnonzero(n > 0))
    oof = collab.out_of_fold_scores(q, items.y[tr], seed=seed, epochs=cf2label_epochs)
    pl = losses.positive_label_loss(torch.as_tensor(oof), torch.as_tensor(items.y[tr])).numpy().astype(np.float64)
    return ImageRun(items, q, n, pl, M.average_precision_macro(items.y[tr], oof), true_map)


def fit_and_score(run: ImageRun, method: str, scheme: str = "uniform", alpha: float = 1.0, seed: int = 0,
                  label_mask: np.ndarray | None = None, settings: collab.FitSettings | None = None) -> dict:
    """Train one method; return its validation mAP and test scores (memoised on ``run``: a
    training run is a deterministic function of these arguments)."""
    mask_key = None if label_mask is None else hashlib.sha1(np.packbits(label_mask).tobytes()).hexdigest()
    key = (method, scheme if method != "image_only" else None, alpha if method != "image_only" else None, seed,
           mask_key, repr(settings))
    if key in run.fits:
        return run.fits[key]
    it = run.items
    tr, va, te = it.rows("train"), it.rows("val"), it.rows("test")
    w = run.weights(scheme) if method != "image_only" else None
    model, hist = collab.fit_image_model(method, it.x[tr], it.y[tr], it.x[va], it.y[va], label_mask, run.q, w,
                                         alpha, seed, settings)
    run.fits[key] = {"val_mAP": hist.attrs.get("best_value", np.nan),
                     "test_scores": collab.predict_scores(model, it.x[te])}
    return run.fits[key]


TABLE5 = (("Image-only", "image_only", "uniform"), ("Sequential", "sequential", "uniform"),
          ("Contrastive-loss", "contrastive", "uniform"), ("MTL-reconstruct uniform", "mtl", "uniform"),
          ("MTL-reconstruct interaction", "mtl", "interaction"), ("MTL-reconstruct loss", "mtl", "loss"))


def alpha_sweep(run: ImageRun, alphas: tuple, seed: int = 0, settings: collab.FitSettings | None = None,
                scheme: str = "uniform") -> pd.DataFrame:
    """Validation (for selection) and test mAP of MTL-reconstruct over the task weight alpha (eq. 3)."""
    te = run.items.rows("test")
    rows = []
    for a in alphas:
        out = fit_and_score(run, "mtl", scheme, a, seed, settings=settings)
        rows.append({"alpha": a, "val_mAP": out["val_mAP"],
                     "test_mAP": M.average_precision_macro(run.items.y[te], out["test_scores"])})
    return pd.DataFrame(rows)


def seed_averaged_values(y_test: np.ndarray, scores: dict, idx: np.ndarray) -> pd.DataFrame:
    """Tidy (method, resample, value) mAP rows for paper D's displayed range: ``scores`` maps a
    method to a list of test score matrices (one per training seed); each is scored on the SAME
    resamples ``idx`` and the seeds are averaged resample by resample (the paper's protocol:
    the seed spread is averaged away, so this range is no interval for a claim)."""
    values = [stats.bootstrap_metric(M.average_precision_macro, y_test, {name: s}, idx)
              for name, per_seed in scores.items() for s in per_seed]
    return pd.concat(values).groupby(["method", "resample"], sort=False, as_index=False)["value"].mean()


def table5(run: ImageRun, alpha: float, seeds: tuple = (0,), settings: collab.FitSettings | None = None,
           n_resamples: int = 50, methods: tuple = TABLE5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 5 on the test items: per method, the mAP over paper D's subsamples averaged over
    ``seeds`` (:func:`paper_protocol_table`: the paper's range and the gain vs Image-only), with
    ``attrs['items']`` the per-test-image AP of every method and seed (the claims' scores);
    and a per-seed table (validation and test mAP) that shows the spread over training seeds."""
    y_te = run.items.y[run.items.rows("test")]
    idx = stats.paper_d_subsamples(len(y_te), n_resamples, seed=0)
    scores, per_seed, by_seed = {}, [], {}
    for name, method, scheme in methods:
        for sd in seeds:
            out = fit_and_score(run, method, scheme, alpha, sd, settings=settings)
            scores.setdefault(name, []).append(out["test_scores"])
            by_seed.setdefault(name, {})[sd] = out["test_scores"]
            per_seed.append({"method": name, "seed": sd, "val_mAP": out["val_mAP"],
                             "test_mAP": M.average_precision_macro(y_te, out["test_scores"])})
    table = paper_protocol_table(seed_averaged_values(y_te, scores, idx), "Image-only")
    table.attrs["items"] = item_ap_rows(y_te, by_seed)
    return table, pd.DataFrame(per_seed)


def mask_labels(y: np.ndarray, ratio: float, unit: str = "items", seed: int = 0) -> np.ndarray:
    """Observed-label mask keeping a ``ratio`` of the training labels at random.

    ``unit="items"``: whole images lose all their labels (the paper's "labels missing for a
    fraction of the training images"); ``"entries"``: single (image, class) entries are
    masked (the authors' code). Nested: the kept set at a small ratio is inside a larger one's.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio!r}")
    rng = np.random.default_rng(seed)
    if unit == "items":
        u = rng.random(len(y))
        return np.repeat((u < ratio)[:, None], y.shape[1], 1)
    if unit == "entries":
        return rng.random(y.shape) < ratio
    raise ValueError(f"unit must be 'items' or 'entries', got {unit!r}")


PAUCITY_METHODS = (("Image-only", "image_only"), ("MTL-reconstruct uniform", "mtl"))


def label_paucity(run: ImageRun, ratios: tuple, alpha: float, seeds: tuple = (0,), unit: str = "items",
                  settings: collab.FitSettings | None = None, n_resamples: int = 50
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figs. 3-4: Image-only vs MTL-reconstruct-uniform as training labels get scarcer.

    Per training seed the labels are removed at random (:func:`mask_labels` seeded by the seed:
    the same removal for both methods). Returns (summary, per_seed): per (ratio, method) the
    seed-averaged mean mAP and 90% interval on the test items (same resamples for every method
    and seed), the relative gain and paired p-value of MTL over Image-only; and per (ratio,
    seed) each method's test mAP and MTL's relative gain, to show the spread over seeds.
    The summary's mean and range follow paper D's protocol (display only); ``attrs['items']``
    holds the per-test-image AP of every (ratio, method, seed) for the claims."""
    it = run.items
    tr, te = it.rows("train"), it.rows("test")
    y_te = it.y[te]
    idx = stats.paper_d_subsamples(len(y_te), n_resamples, seed=0)
    rows, per_seed, item_rows = [], [], []
    for ratio in ratios:
        scores = {name: [] for name, _ in PAUCITY_METHODS}
        by_seed = {name: {} for name, _ in PAUCITY_METHODS}
        for sd in seeds:
            mask = mask_labels(it.y[tr], ratio, unit, sd)
            row = {"label_ratio": ratio, "seed": sd}
            for name, method in PAUCITY_METHODS:
                scores[name].append(fit_and_score(run, method, "uniform", alpha, sd, mask, settings)["test_scores"])
                by_seed[name][sd] = scores[name][-1]
                row[name] = M.average_precision_macro(y_te, scores[name][-1])
            row["gain_%"] = 100 * (row["MTL-reconstruct uniform"] - row["Image-only"]) / row["Image-only"]
            per_seed.append(row)
        values = seed_averaged_values(y_te, scores, idx)
        rows.append(paper_protocol_table(values, "Image-only").assign(label_ratio=ratio))
        item_rows.append(item_ap_rows(y_te, by_seed, label_ratio=ratio))
    summary = pd.concat(rows, ignore_index=True)
    summary.attrs["items"] = pd.concat(item_rows, ignore_index=True)
    return summary, pd.DataFrame(per_seed)


def alignment_sweep(alignments: tuple, ratios: tuple, alpha: float, seeds: tuple = (0,), unit: str = "items",
                    cf_settings: CFSettings | None = None, settings: collab.FitSettings | None = None,
                    items: LabelledItems | None = None, n_resamples: int = 50, cf2label_epochs: int = 20,
                    reuse: ImageRun | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How the finding moves with the SIMULATED label alignment (docs/READING-NOTES.md, paper D).

    Per alignment (re-simulated, CF model seeded by ``seeds[0]``): the out-of-fold CF2Label mAP
    of the simulator's item factors and of the training items' CF vectors (how much label
    information the simulated interactions put in q), then Image-only vs
    MTL-reconstruct-uniform at each label ratio (:func:`label_paucity`, both of its tables;
    ``attrs['items']``: the per-image AP rows of every alignment).
    ``reuse``: a run on the same ``items`` whose Image-only fits are reused (they do not depend
    on the interactions), so every alignment is compared with the very same baseline."""
    items = items or openclipart_items(seed=seeds[0])
    rows, per_seed, item_rows = [], [], []
    for a in alignments:
        run = image_run(a, cf_settings, seeds[0], cf2label_epochs, items=items)
        if reuse is not None and reuse.items is items:  # Image-only never sees a CF vector: same fits
            run.fits.update({k: v for k, v in reuse.fits.items() if k[0] == "image_only"})
        summary, seeds_table = label_paucity(run, ratios, alpha, seeds, unit, settings, n_resamples)
        info = dict(alignment=a, cf2label_oof_mAP=run.oof_map, true_factor_oof_mAP=run.true_factor_oof_map)
        item_rows.append(summary.attrs["items"].assign(alignment=a))
        rows.append(summary.assign(**info))
        rows[-1].attrs = {}
        per_seed.append(seeds_table.assign(alignment=a))
    out = pd.concat(rows, ignore_index=True)
    out.attrs["items"] = pd.concat(item_rows, ignore_index=True)  # per-image AP, with an alignment column
    return out, pd.concat(per_seed, ignore_index=True)
