"""Paper D on a shared trainable visual trunk (D.05): does the CF auxiliary loss help once it can
shape visual parameters that the classifier also reads?

Paper D's mechanism is that the CF reconstruction loss shapes the image representation the
classifier reads. On frozen cached features (D.03, D.04) the label head and the CF head share only
one Linear layer (Linear -> ReLU -> Dropout, ``CollaborativeImageClassifier.trunk``): the auxiliary
loss can move that layer, never the visual features. Here both heads read a
:class:`clickvision.models.trunk.Trunk`: a trainable copy of EfficientNet-Lite0's last ``n_blocks``
blocks (:func:`clickvision.models.trunk.trunk_blocks`) run on the cached ``cut<n>`` activations of the
clip-art images, then pooled, then the same shared Linear layer. The *frozen* arm is the same model
on the frozen pooled features (the "no shared trunk" ablation; identical heads, identical init for a
seed, identical stop rule and budget).

Data as in D.04: the real Open Clip Art images and keyword labels, SIMULATED interactions, the
auxiliary target from :func:`clickvision.experiments.paper_d.core.image_run` (its information gate measured
first). Every arm trains with the same :class:`~clickvision.models.collab.FitSettings` (epoch cap,
patience on validation mAP, lr), every method sees every training row (equal steps), the label
removal per (ratio, seed) is the same for every arm and method. Rows are tidy: per (method, trunk,
seed, label_ratio, item) the test image's AP (:func:`clickvision.experiments.paper_d.data.per_image_ap`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ... import metrics as M
from ... import stats
from ...data import openclipart
from ...models import collab
from ...models.backbone import EFFICIENTNET_LITE0, Backbone, load_backbone
from ...models.trunk import Trunk, trunk_inputs
from .core import ImageRun, mask_labels, seed_averaged_values
from .data import LabelledItems, gaussianize, item_ap_rows, paper_protocol_table, standardize

#: Paper D's Table 5 (mAP) on Toys, the data set whose density the simulation copies: the
#: paper's own numbers, shown beside ours (``paper_effect`` of the MTL-vs-Image-only claim).
PAPER_D_TABLE5_TOYS = {"Image-only": 0.412, "Sequential": 0.41, "Contrastive-loss": 0.411,
                       "MTL-reconstruct uniform": 0.424, "MTL-reconstruct interaction": 0.417,
                       "MTL-reconstruct loss": 0.424}
ARMS = ("frozen", "trunk")
TRUNK_METHODS = (("Image-only", "image_only"), ("MTL-reconstruct uniform", "mtl"))
CONTROL = "MTL-reconstruct true factors"  # the positive control's method name (simulated true factors as target)


def paper_mtl_gain() -> float:
    """Paper D's Toys gain of MTL-reconstruct-uniform over Image-only in mAP (Table 5)."""
    return PAPER_D_TABLE5_TOYS["MTL-reconstruct uniform"] - PAPER_D_TABLE5_TOYS["Image-only"]


def arm_items(items: LabelledItems, n_blocks: int, image_size: int = 128,
              backbone: str = EFFICIENTNET_LITE0) -> LabelledItems:
    """``items`` with the inputs of a ``Trunk(backbone, n_blocks)`` in place of the pooled features:
    the cached ``cut<n>`` activations of the same images (labelled and unlabelled), row-aligned by key.
    ``n_blocks = 0`` returns ``items`` unchanged (the frozen pooled features)."""
    if n_blocks == 0:
        return items
    images = openclipart.load_openclipart()
    acts = trunk_inputs(images, n_blocks, image_size=image_size, backbone=backbone)
    row = {k: i for i, k in enumerate(images.items["key"])}

    def pick(keys: np.ndarray | None) -> np.ndarray | None:
        if keys is None:
            return None
        missing = [k for k in keys if k not in row]
        if missing:
            raise ValueError(f"arm_items: {len(missing)} item keys have no cached activation (e.g. {missing[0]!r})")
        return acts[np.array([row[k] for k in keys], dtype=int)]

    return replace(items, x=pick(items.keys), unlabelled_x=pick(items.unlabelled_keys))


@dataclass
class ArmFit:
    """One trained model's validation and test outcome and its validation curve."""

    val_map: float
    test_scores: np.ndarray
    curve: pd.DataFrame  # epoch, val_mAP
    best_epoch: int
    stopped_epoch: int
    hit_cap: bool


def validation_curve(history: pd.DataFrame) -> pd.DataFrame:
    """(epoch, val_mAP) rows of a Trainer History (the label stage's validation evaluations)."""
    h = history[(history["split"] == "val") & (history["name"] == "mAP")]
    if "stage" in h.columns:
        h = h[h["stage"] == "label"]
    return pd.DataFrame({"epoch": h["epoch"].to_numpy(), "val_mAP": h["value"].to_numpy()})


def fit_arm(run: ImageRun, items: LabelledItems, method: str, target: np.ndarray | None, alpha: float, seed: int,
            label_mask: np.ndarray | None, settings: collab.FitSettings, n_blocks: int,
            backbone: Backbone | None = None, trunk_lr: float | None = None) -> ArmFit:
    """Train ``method`` ('image_only' or 'mtl') on ``items``' inputs with ``run``'s rows and weights.

    ``n_blocks = 0``: the frozen pooled features (no backbone module); otherwise a fresh
    ``Trunk(backbone, n_blocks)`` (ImageNet weights) trained with the heads, at ``trunk_lr`` when given.
    ``target``: the auxiliary target of the training rows (``run.q`` by default; the positive control
    passes the simulator's factors). Training rows: the labelled training images, then the unlabelled
    training images (auxiliary target only), as :func:`clickvision.experiments.paper_d.core.fit_and_score`.
    """
    tr, va, te = items.rows("train"), items.rows("val"), items.rows("test")
    x, y = items.x[tr], items.y[tr]
    mask = np.ones_like(y, dtype=bool) if label_mask is None else np.asarray(label_mask, bool)
    extra = items.unlabelled_rows("train") if run.n_extra else np.array([], dtype=int)
    if len(extra) != run.n_extra:
        raise ValueError(f"fit_arm: run has {run.n_extra} unlabelled rows, items {len(extra)}")
    if len(extra):
        x = np.concatenate([x, items.unlabelled_x[extra]])
        y = np.vstack([y, np.zeros((len(extra), y.shape[1]), dtype=y.dtype)])
        mask = np.vstack([mask, np.zeros((len(extra), y.shape[1]), dtype=bool)])
    q = run.q if target is None else target
    w = run.weights("uniform") if method != "image_only" else None
    module = None
    if n_blocks:
        module = Trunk(backbone if backbone is not None else load_backbone(EFFICIENTNET_LITE0), n_blocks)
    model, hist = collab.fit_image_model(method, x, y, items.x[va], items.y[va], mask, q, w, alpha, seed, settings,
                                         backbone=module, backbone_lr=trunk_lr if n_blocks else None)
    curve = validation_curve(hist)
    best_step, steps = hist.attrs.get("best_step"), hist.groupby("step")["epoch"].max()

    def epoch_of(step) -> int:
        return int(steps.loc[:step].iloc[-1]) if step is not None and (steps.index <= step).any() else -1

    return ArmFit(float(hist.attrs.get("best_value", np.nan)), collab.predict_scores(model, items.x[te]), curve,
                  epoch_of(best_step), epoch_of(hist.attrs.get("stopped_step")), bool(hist.attrs.get("hit_cap")))


@dataclass
class TrunkResult:
    """What :func:`shared_trunk` returns: tables for the notebook, tidy rows for the claims."""

    summary: pd.DataFrame  # per (label_ratio, trunk, method): seed-mean test mAP, sd, paper's range, val mAP, epochs
    per_seed: pd.DataFrame  # per (label_ratio, trunk, method, seed): val and test mAP, best/stopped epoch
    items: pd.DataFrame  # per (method, trunk, seed, label_ratio, item): test image AP
    curves: pd.DataFrame  # per (label_ratio, trunk, method, seed, epoch): validation mAP
    info: dict = field(default_factory=dict)


def control_target(run: ImageRun) -> np.ndarray:
    """The positive control's auxiliary target: the simulator's true item factors of the training rows
    (SIMULATED; standardised, then rank-normalised as every target, as D.03's control)."""
    if run.factors is None:
        raise ValueError("control_target: the run has no simulator factors (the built set stores none; "
                         "pass density= to image_run)")
    f = standardize(run.factors, np.arange(len(run.factors)))
    return gaussianize(f, np.arange(len(f)))


def shared_trunk(run: ImageRun, ratios: tuple, alpha: float, seeds: tuple, n_blocks: int,
                 settings: collab.FitSettings, unit: str = "items", arms: tuple = ARMS, control: bool = False,
                 trunk_lr: float | None = None, n_resamples: int = 50, verbose: bool = False) -> TrunkResult:
    """Image-only and MTL-reconstruct-uniform, each on the frozen pooled features and on a shared
    trainable ``Trunk(n_blocks)``, at every label ratio and training seed (same label removal,
    :func:`clickvision.experiments.paper_d.core.mask_labels`, for every arm and method of a (ratio, seed)).

    ``control``: also MTL with the simulator's true item factors as the target (:func:`control_target`,
    method :data:`CONTROL`), on every arm. Same ``settings`` (epoch cap, patience on validation mAP) for
    every arm; ``trunk_lr`` the trunk's own learning rate (None: the heads' ``lr``). The summary's
    ``mean``, ``lo_paper`` and ``hi_paper``: paper D's displayed range (``n_resamples`` subsamples of 90 %
    of the test images, seeds averaged per subsample; display only, the claims use ``items``).
    """
    if not set(arms) <= set(ARMS) or not arms:
        raise ValueError(f"arms must be a non-empty subset of {ARMS}, got {arms}")
    if n_blocks < 1 and "trunk" in arms:
        raise ValueError(f"n_blocks must be >= 1 for the trunk arm, got {n_blocks}")
    inputs = {"frozen": run.items}
    backbone = None
    if "trunk" in arms:
        inputs["trunk"] = arm_items(run.items, n_blocks)
        backbone = load_backbone(EFFICIENTNET_LITE0)
    methods = list(TRUNK_METHODS) + ([(CONTROL, "mtl")] if control else [])
    target = {CONTROL: control_target(run)} if control else {}
    it = run.items
    tr, te = it.rows("train"), it.rows("test")
    y_te = it.y[te]
    idx = stats.paper_d_subsamples(len(y_te), n_resamples, seed=0)
    per_seed, item_rows, curves, ranges = [], [], [], []
    for ratio in ratios:
        scores = {(arm, name): [] for arm in arms for name, _ in methods}
        for sd in seeds:
            mask = mask_labels(it.y[tr], ratio, unit, sd)
            for arm in arms:
                by_method = {}
                for name, method in methods:
                    out = fit_arm(run, inputs[arm], method, target.get(name), alpha, sd, mask, settings,
                                  n_blocks if arm == "trunk" else 0, backbone, trunk_lr)
                    by_method[name] = {sd: out.test_scores}
                    scores[arm, name].append(out.test_scores)
                    row = {"label_ratio": ratio, "trunk": arm, "method": name, "seed": sd, "val_mAP": out.val_map,
                           "test_mAP": M.average_precision_macro(y_te, out.test_scores),
                           "best_epoch": out.best_epoch, "stopped_epoch": out.stopped_epoch, "hit_cap": out.hit_cap}
                    per_seed.append(row)
                    curves.append(out.curve.assign(label_ratio=ratio, trunk=arm, method=name, seed=sd))
                    if verbose:
                        print(f"ratio {ratio:g} seed {sd} {arm:6s} {name}: val mAP {out.val_map:.4f}, "
                              f"best epoch {out.best_epoch} of {out.stopped_epoch}")
                item_rows.append(item_ap_rows(y_te, by_method, trunk=arm, label_ratio=ratio))
        for arm in arms:
            values = seed_averaged_values(y_te, {name: scores[arm, name] for name, _ in methods}, idx)
            ranges.append(paper_protocol_table(values).assign(label_ratio=ratio, trunk=arm))
    per_seed = pd.DataFrame(per_seed)
    summary = (per_seed.groupby(["label_ratio", "trunk", "method"], sort=False)
               .agg(test_mAP=("test_mAP", "mean"), test_sd=("test_mAP", "std"), val_mAP=("val_mAP", "mean"),
                    best_epoch=("best_epoch", "mean"), stopped_epoch=("stopped_epoch", "mean"),
                    at_cap=("hit_cap", "sum"), seeds=("seed", "count")).reset_index())
    summary = summary.merge(pd.concat(ranges, ignore_index=True)[["label_ratio", "trunk", "method", "mean", "lo_paper",
                                                                  "hi_paper"]], on=["label_ratio", "trunk", "method"])
    items = pd.concat(item_rows, ignore_index=True)[["method", "trunk", "seed", "label_ratio", "item", "value"]]
    return TrunkResult(summary, per_seed, items, pd.concat(curves, ignore_index=True),
                       {"n_blocks": n_blocks, "alpha": alpha, "trunk_lr": trunk_lr, "epochs": settings.epochs,
                        "patience": settings.patience})


def arm_rows(items: pd.DataFrame, label_ratio: float) -> pd.DataFrame:
    """Claim rows (method, seed, item, value) at one ratio, the method named with its arm:
    ``"<method> (<trunk>)"``."""
    t = items[items["label_ratio"] == label_ratio]
    return t.assign(method=t["method"] + " (" + t["trunk"] + ")")[["method", "seed", "item", "value"]]


def gain_rows(items: pd.DataFrame, label_ratio: float, method: str = "MTL-reconstruct uniform",
              baseline: str = "Image-only") -> pd.DataFrame:
    """Per (trunk, seed, item) at one ratio: ``method``'s AP minus ``baseline``'s on the same test image,
    the same seed and label removal (its paired gain), as claim rows with method = ``"gain <trunk>"``.
    A direction claim on ("gain trunk", "gain frozen") is then judged on the per-(seed, item) difference
    of the two gains: what sharing a trainable trunk adds to the auxiliary loss's effect."""
    t = items[items["label_ratio"] == label_ratio]
    wide = t.pivot_table(index=["trunk", "seed", "item"], columns="method", values="value")
    for m in (method, baseline):
        if m not in wide.columns:
            raise ValueError(f"gain_rows: no rows of method {m!r} at label ratio {label_ratio}")
    d = (wide[method] - wide[baseline]).rename("value").reset_index()
    d["method"] = "gain " + d["trunk"]
    return d[["method", "seed", "item", "value"]]
