"""Losses and confidence weights of paper D (Collaborative Image Understanding, section 3.4).

| paper | here |
|---|---|
| eq. (1) class-balanced BCE, missing labels masked | :func:`class_balanced_bce`, :func:`class_balance_weights` |
| l_CF_R = exp(L1 + L2) (on means; the code's exp(MSE + MAE) - 1 as option) | :func:`reconstruction_loss` |
| eq. (2) l_AUX = min(w, Omega) * l_CF_R | :func:`auxiliary_loss` (w already capped) |
| eq. (3) l_MTL = l_MAIN + alpha * l_AUX | :func:`mtl_loss` |
| confidence h: uniform, sqrt(|U_i|), 1 / l_WEIGHT(CF2Label(q_i), y_i) | :func:`confidence_weights`, :func:`positive_label_loss` |
| Omega: clip to the train 25th-75th percentile, rescale to [1, 3] (authors' code) | :func:`clip_and_rescale` |
| triplet loss of the Contrastive-loss baseline (4.3.1) | :func:`triplet_loss` |

Readings pinned in docs/READING-NOTES.md: eq. (1) lacks its minus sign and its mean-normalised
class weights apply to the positive term; l_WEIGHT as printed is non-positive (a sign slip),
so the loss-based weight here is 1 / mean(-log y_hat) over the positive labels.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CLASS_WEIGHTINGS = ("paper", "code", "none")
RECONSTRUCTIONS = ("paper", "code")
CONFIDENCES = ("uniform", "interaction", "loss")


def class_balance_weights(labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. (1)'s class weights: ``1 / eta_n`` normalised so that their mean is 1.

    ``eta_n`` counts the positives of class ``n`` among the labels that remain after
    ``mask`` (True = observed). A class with no remaining positive gets weight 0 and the
    others are normalised over the classes that have one.
    """
    labels = labels.to(torch.float64)
    if mask is not None:
        labels = labels * mask.to(labels.dtype)
    eta = labels.sum(0)
    raw = torch.where(eta > 0, 1.0 / eta.clamp(min=1), torch.zeros_like(eta))
    present = eta > 0
    if not present.any():
        raise ValueError("class_balance_weights: no class has a positive label")
    return (raw / raw[present].mean()).to(torch.float32)


def code_pos_weight(labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The authors' code: ``pos_weight = n_labelled / n_positive`` per class (0 where no positive)."""
    labels = labels.to(torch.float64)
    mask = torch.ones_like(labels) if mask is None else mask.to(labels.dtype)
    pos, seen = (labels * mask).sum(0), mask.sum(0)
    return torch.where(pos > 0, seen / pos.clamp(min=1), torch.zeros_like(pos)).to(torch.float32)


def class_balanced_bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None,
                       pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. (1) with its minus sign: ``-sum_n [w_n y^n log y_hat^n + (1 - y^n) log(1 - y_hat^n)]``.

    ``pos_weight`` (w_n) multiplies the positive term (:func:`class_balance_weights`, or the
    code's :func:`code_pos_weight`; None: plain BCE). Masked entries (``mask`` False) are
    removed: they contribute neither loss nor gradient. Summed over classes, averaged over
    the rows that have at least one observed label (0 when none has).
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    targets = targets.to(logits.dtype)
    w = torch.ones(logits.shape[-1], dtype=logits.dtype, device=logits.device) if pos_weight is None \
        else pos_weight.to(logits.dtype)
    per_entry = -(w * targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits))
    if mask is None:
        return per_entry.sum(1).mean()
    mask = mask.to(torch.bool)
    per_entry = torch.where(mask, per_entry, torch.zeros_like(per_entry))
    rows = mask.any(1).sum()
    return per_entry.sum() / rows.clamp(min=1).to(logits.dtype)


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "paper",
                        eps: float = 1e-12) -> torch.Tensor:
    """Per-item ``l_CF_R`` (section 3.4), shape (n,).

    ``kind="paper"``: ``exp(L1 + L2)`` with L1 = mean |q - q_hat| and L2 = sqrt(mean (q - q_hat)^2)
    (the paper's sums overflow ``exp`` for 65-d vectors: means, as docs/READING-NOTES.md pins).
    ``kind="code"``: the authors' ``exp(MSE + MAE) - 1``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    diff = pred - target
    mae = diff.abs().mean(-1)
    mse = diff.square().mean(-1)
    if kind == "paper":
        return torch.exp(mae + torch.sqrt(mse + eps))
    if kind == "code":
        return torch.expm1(mse + mae)
    raise ValueError(f"kind must be one of {RECONSTRUCTIONS}, got {kind!r}")


def auxiliary_loss(per_item: torch.Tensor, weights: torch.Tensor | None = None,
                   normalize: bool = True) -> torch.Tensor:
    """Eq. (2) over a batch: ``sum_i w_i l_i / sum_i w_i`` (``normalize``, the authors' code) or
    ``mean_i w_i l_i``. ``weights`` are the capped confidences min(w, Omega); None: uniform.
    Items with weight 0 (no CF vector) contribute nothing; 0 when every weight is 0.
    """
    if weights is None:
        return per_item.mean()
    weights = weights.to(per_item.dtype)
    if normalize:
        return (weights * per_item).sum() / weights.sum().clamp(min=torch.finfo(per_item.dtype).tiny)
    return (weights * per_item).mean()


def mtl_loss(main: torch.Tensor, aux: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. (3): ``l_MAIN + alpha * l_AUX``."""
    return main + alpha * aux


def positive_label_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``l_WEIGHT`` with the sign fixed: the mean of ``-log y_hat^n`` over each item's positives.

    Shape (n,); NaN for an item with no positive label (its weight is then undefined).
    """
    labels = labels.to(logits.dtype)
    n_pos = labels.sum(1)
    loss = -(labels * F.logsigmoid(logits)).sum(1) / n_pos
    return torch.where(n_pos > 0, loss, torch.full_like(loss, float("nan")))


def clip_and_rescale(weights: np.ndarray, train: np.ndarray | None = None, percentiles: tuple[float, float] = (25, 75),
                     out_range: tuple[float, float] = (1.0, 3.0)) -> np.ndarray:
    """The authors' cap Omega: clip to the ``train`` rows' 25th-75th percentile, then map that
    interval linearly onto ``[1, 3]``. A constant input (uniform) maps to the range's low end.
    NaN weights (no evidence) become the low end too.
    """
    weights = np.asarray(weights, dtype=np.float64)
    train = np.ones(len(weights), bool) if train is None else np.asarray(train, bool)
    ref = weights[train & np.isfinite(weights)]
    if ref.size == 0:
        raise ValueError("clip_and_rescale: no finite training weight to take percentiles from")
    lo, hi = np.percentile(ref, percentiles)
    a, b = out_range
    clipped = np.clip(np.nan_to_num(weights, nan=lo), lo, hi)
    if hi <= lo:
        return np.full_like(clipped, a)
    return a + (clipped - lo) * (b - a) / (hi - lo)


def confidence_weights(scheme: str, n_interactions: np.ndarray | None = None,
                       positive_loss: np.ndarray | None = None, train: np.ndarray | None = None,
                       rescale: bool = True) -> np.ndarray:
    """Per-item CF-vector confidence ``h`` (section 3.4), capped by :func:`clip_and_rescale`.

    ``uniform``: 1 for every item. ``interaction``: ``sqrt(|U_i|)``. ``loss``:
    ``1 / l_WEIGHT`` from ``positive_loss`` (out-of-fold CF2Label, :func:`positive_label_loss`).
    Items without interactions get weight 0 under every scheme (no CF vector to trust).
    """
    if scheme not in CONFIDENCES:
        raise ValueError(f"scheme must be one of {CONFIDENCES}, got {scheme!r}")
    if n_interactions is None:
        raise ValueError("confidence_weights: n_interactions is required (items without any get weight 0)")
    n_interactions = np.asarray(n_interactions, dtype=np.float64)
    if scheme == "uniform":
        return (n_interactions > 0).astype(np.float64)
    if scheme == "interaction":
        raw = np.sqrt(n_interactions)
    else:
        if positive_loss is None:
            raise ValueError("confidence_weights('loss') needs positive_loss")
        pl = np.asarray(positive_loss, dtype=np.float64)  # NaN (no positive label) stays NaN -> low end
        raw = np.where(np.isnan(pl), np.nan, np.where(pl > 0, 1.0 / np.where(pl > 0, pl, 1.0), np.inf))
    has = n_interactions > 0
    if rescale:
        raw = clip_and_rescale(raw, (train if train is not None else np.ones(len(raw), bool)) & has)
    return np.where(has, raw, 0.0)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = 0.2) -> torch.Tensor:
    """``max(L2(a, p) - L2(a, n) + tau, 0)`` averaged over the batch (section 4.3.1)."""
    d_pos = (anchor - positive).square().sum(-1).clamp(min=1e-12).sqrt()
    d_neg = (anchor - negative).square().sum(-1).clamp(min=1e-12).sqrt()
    return F.relu(d_pos - d_neg + margin).mean()
