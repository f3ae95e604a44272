"""Click-prediction and recognition losses of paper A (MTMDD-VM), eqs. (2) and (9)-(15).

Shapes: ``v`` (ground-truth click features, e.g. TF-IDF of eq. 1) and ``v_hat`` (predicted)
are ``(N, K)``; ``valid`` is an optional ``(N,)`` bool mask of rows whose ground truth is
not a zero row (docs/READING-NOTES.md: a zero row is 0/0 in eq. 1 and N'(0) is undefined, so it is
dropped from every click-loss term). Each term is averaged over the rows it applies to (as
each loss layer of the authors' Caffe net is normalised by its own batch); ``reduction=
"none"`` returns per-row values with masked rows set to 0.

* :func:`count_loss` -- eq. (2): ``||N'(v) - N'(v_hat)||^2``.
* :func:`smooth_binarize` -- eq. (11) before N': ``sigmoid(a (x - B/2))``,
  ``a = 2/B ln((1-T)/T)``, so ``S(0) = T`` and ``S(B) = 1 - T``.
* :func:`position_loss` -- eq. (10) with S replaced by the smooth binariser (eq. 11):
  ``||N'(S(v)) - N'(S(BN(v_hat)))||^2``. Batch norm (batch statistics, no affine, Fig. 8)
  is on the prediction path only: normalising the target would move its zeros.
  ``variant="code"`` is the authors' code: no batch norm, and ``1/sqrt(K)`` instead of N'.
* :func:`position_error` -- eq. (9), the exact set error ``|A xor A_hat|`` (evaluation only).
* :func:`binarize_prediction` -- the set ``A_hat`` eq. (10)-(11) train: ``BN(v_hat) > B/2``.
* :func:`combined_click_loss` -- eq. (12): ``(1 - tau) count + tau position``.
* :func:`multitask_loss` -- eq. (13) (``tau`` as eq. 12), eq. (14) is ``tau = 0``.
* :func:`multidomain_loss` -- eq. (15): source rows ``lambda l_p - (1 - lambda) log p``,
  target rows ``-mu log p`` and **no click loss** (they have no ground-truth click).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

POSITION_VARIANTS = ("paper", "code")
_NORM_EPS = 1e-12


class ClickLossTerms(NamedTuple):
    """A loss and its weighted parts (for logging and the gd-ratio of Table V)."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


def _check_pair(v: torch.Tensor, v_hat: torch.Tensor) -> None:
    if v.ndim != 2 or v.shape != v_hat.shape:
        raise ValueError(f"click loss: v and v_hat must both be (N, K), got {tuple(v.shape)} and {tuple(v_hat.shape)}")


def _check_unit(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _reduce(per_row: torch.Tensor, valid: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if valid is not None:
        valid = valid.to(device=per_row.device, dtype=torch.bool)
        if valid.shape != per_row.shape:
            raise ValueError(f"valid mask has shape {tuple(valid.shape)}, expected {tuple(per_row.shape)}")
        per_row = torch.where(valid, per_row, torch.zeros_like(per_row))
        if reduction == "mean":
            return per_row.sum() / valid.sum().clamp(min=1)
    return per_row.mean() if reduction == "mean" else per_row


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """N'(x) row by row (a zero row stays zero)."""
    return F.normalize(x, p=2.0, dim=1, eps=_NORM_EPS)


def count_loss(v: torch.Tensor, v_hat: torch.Tensor, valid: torch.Tensor | None = None,
               reduction: str = "mean") -> torch.Tensor:
    """Count-based click loss, paper A eq. (2): ``||N'(v) - N'(v_hat)||_2^2`` per row."""
    _check_pair(v, v_hat)
    per_row = (l2_normalize(v) - l2_normalize(v_hat)).pow(2).sum(dim=1)
    return _reduce(per_row, valid, reduction)


def binarizer_slope(bandwidth: float, threshold: float) -> float:
    """``a = 2/B ln((1 - T)/T)`` of eq. (11); needs ``B > 0`` and ``0 < T < 0.5``."""
    if not (isinstance(bandwidth, (int, float)) and bandwidth > 0 and math.isfinite(bandwidth)):
        raise ValueError(f"bandwidth B must be a finite number > 0, got {bandwidth!r}")
    if not (isinstance(threshold, (int, float)) and 0.0 < threshold < 0.5):
        raise ValueError(f"threshold T must be in (0, 0.5), got {threshold!r}")
    return 2.0 / bandwidth * math.log((1.0 - threshold) / threshold)


def smooth_binarize(x: torch.Tensor, bandwidth: float = 0.01, threshold: float = 0.16) -> torch.Tensor:
    """The sigmoid of eq. (11) (before N'): ``1 / (1 + exp(-a (x - B/2)))``; ``S(0) = T``."""
    a = binarizer_slope(bandwidth, threshold)
    return torch.sigmoid(a * (x - bandwidth / 2.0))


def indicator_binarize(x: torch.Tensor) -> torch.Tensor:
    """The indicator of eq. (10) (before N'): 1 where ``x != 0`` else 0 (Fig. 7a)."""
    return (x != 0).to(x.dtype)


def batch_standardize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Batch norm without affine parameters, batch statistics (the BN before SIGMOID in Fig. 8)."""
    if x.shape[0] < 2:
        raise ValueError("batch norm before the sigmoid needs a batch of at least 2 rows")
    return F.batch_norm(x, None, None, training=True, eps=eps)


def sigmoid_input(v_hat: torch.Tensor, batch_norm: bool = True) -> torch.Tensor:
    """What the sigmoid of eq. (11) sees on the prediction path (Table IV's "Ratio" is read here)."""
    return batch_standardize(v_hat) if batch_norm else v_hat


def binarize_prediction(v_hat: torch.Tensor, bandwidth: float = 0.01, variant: str = "paper") -> torch.Tensor:
    """The word set the position loss trains, as a bool ``(N, K)`` mask (evaluation only).

    Eq. (10)-(11) compare ``S(v)`` with ``S(z)``, ``z = BN(v_hat)`` (``variant="paper"``, batch
    statistics of the rows given) or ``z = v_hat`` (``"code"``), where ``S(x) = sigmoid(a (x - B/2))``
    with ``a > 0``: ``S(z) > 1/2`` exactly where ``z > B/2``, whatever T. That is the predicted set
    ``A_hat`` the loss pushes toward the truth's; eq. (9) on it is ``position_error(v, mask)``.
    """
    if variant not in POSITION_VARIANTS:
        raise ValueError(f"binarize_prediction: variant must be one of {POSITION_VARIANTS}, got {variant!r}")
    if not (isinstance(bandwidth, (int, float)) and bandwidth > 0 and math.isfinite(bandwidth)):
        raise ValueError(f"bandwidth B must be a finite number > 0, got {bandwidth!r}")
    return sigmoid_input(v_hat, variant == "paper") > bandwidth / 2.0


def position_loss(v: torch.Tensor, v_hat: torch.Tensor, bandwidth: float = 0.01, threshold: float = 0.16,
                  valid: torch.Tensor | None = None, variant: str = "paper", batch_norm: bool | None = None,
                  reduction: str = "mean") -> torch.Tensor:
    """Position-sensitive loss, paper A eq. (10) with the smooth binariser of eq. (11).

    ``variant="paper"``: ``||N'(S(v)) - N'(S(BN(v_hat)))||^2`` (batch norm on the prediction
    path only). ``variant="code"``: ``||S(v) - S(v_hat)||^2 / K`` (scaling by ``1/sqrt(K)``,
    no batch norm). ``batch_norm`` overrides the variant's choice.
    """
    _check_pair(v, v_hat)
    if variant not in POSITION_VARIANTS:
        raise ValueError(f"position_loss: variant must be one of {POSITION_VARIANTS}, got {variant!r}")
    use_bn = (variant == "paper") if batch_norm is None else bool(batch_norm)
    s_true = smooth_binarize(v, bandwidth, threshold)
    s_pred = smooth_binarize(sigmoid_input(v_hat, use_bn), bandwidth, threshold)
    if variant == "paper":
        per_row = (l2_normalize(s_true) - l2_normalize(s_pred)).pow(2).sum(dim=1)
    else:
        per_row = (s_true - s_pred).pow(2).sum(dim=1) / v.shape[1]
    return _reduce(per_row, valid, reduction)


def indicator_position_loss(v: torch.Tensor, v_hat: torch.Tensor, valid: torch.Tensor | None = None,
                            reduction: str = "mean") -> torch.Tensor:
    """Eq. (10) with the exact indicator S (not differentiable; evaluation and Fig. 7 only)."""
    _check_pair(v, v_hat)
    per_row = (l2_normalize(indicator_binarize(v)) - l2_normalize(indicator_binarize(v_hat))).pow(2).sum(dim=1)
    return _reduce(per_row, valid, reduction)


def position_error(v: torch.Tensor, v_hat: torch.Tensor) -> torch.Tensor:
    """Eq. (9): ``|(A u A_hat) \\ (A n A_hat)|`` per row, A / A_hat the nonzero positions."""
    _check_pair(v, v_hat)
    return ((v != 0) ^ (v_hat != 0)).sum(dim=1)


def combined_click_loss(v: torch.Tensor, v_hat: torch.Tensor, tau: float = 0.1, bandwidth: float = 0.01,
                        threshold: float = 0.16, valid: torch.Tensor | None = None,
                        variant: str = "paper") -> ClickLossTerms:
    """Eq. (12): ``(1 - tau) ||N'(v) - N'(v_hat)||^2 + tau ||S(v) - S(v_hat)||^2``.

    Returns the total and the *weighted* terms ``count`` and ``position`` (a term whose
    weight is 0 is not computed: ``tau = 0`` is eq. 2, ``tau = 1`` the position loss alone).
    """
    _check_unit("tau", tau)
    terms: dict[str, torch.Tensor] = {}
    if tau < 1:
        terms["count"] = (1.0 - tau) * count_loss(v, v_hat, valid)
    if tau > 0:
        terms["position"] = tau * position_loss(v, v_hat, bandwidth, threshold, valid, variant)
    return ClickLossTerms(sum(terms.values()), terms)


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if logits.ndim != 2 or y.ndim != 1 or len(y) != len(logits):
        raise ValueError(f"logits must be (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(y.shape)}")
    return F.cross_entropy(logits, y)


def multitask_loss(logits: torch.Tensor, y: torch.Tensor, v: torch.Tensor, v_hat: torch.Tensor, lam: float = 0.4,
                   tau: float = 0.1, bandwidth: float = 0.01, threshold: float = 0.16,
                   valid: torch.Tensor | None = None, variant: str = "paper") -> ClickLossTerms:
    """Eq. (13): ``-(1 - lambda) log p_y + lambda l_p_hat(v, v_hat)`` on source rows.

    ``tau = 0`` gives eq. (14) (MTTDL: the count loss only). Terms: ``softmax`` (weighted by
    ``1 - lambda``) and the click terms ``count`` / ``position`` (weighted by ``lambda``).
    """
    _check_unit("lam", lam)
    terms: dict[str, torch.Tensor] = {}
    if lam < 1:
        terms["softmax"] = (1.0 - lam) * _cross_entropy(logits, y)
    if lam > 0:
        click = combined_click_loss(v, v_hat, tau, bandwidth, threshold, valid, variant)
        terms.update({k: lam * t for k, t in click.terms.items()})
    return ClickLossTerms(sum(terms.values()), terms)


def multidomain_loss(source_logits: torch.Tensor, source_y: torch.Tensor, v: torch.Tensor, v_hat: torch.Tensor,
                     target_logits: torch.Tensor | None, target_y: torch.Tensor | None, lam: float = 0.4,
                     mu: float = 1.0, tau: float = 0.1, bandwidth: float = 0.01, threshold: float = 0.16,
                     valid: torch.Tensor | None = None, variant: str = "paper") -> ClickLossTerms:
    """Eq. (15): source rows ``lambda l_p_hat - (1 - lambda) log p``; target rows ``-mu log p``.

    Target rows enter only through their softmax term: they have no ground-truth click, so no
    click loss (the caller passes no click prediction for them). Each domain's terms are
    averaged over that domain's batch (as the authors' per-domain loss layers); with equal
    batch sizes this is eq. (6)'s mean over ``n + n'`` up to a factor 2. Term ``target``
    is ``mu`` times the target cross-entropy.
    """
    if not (isinstance(mu, (int, float)) and mu >= 0 and math.isfinite(mu)):
        raise ValueError(f"mu must be a finite number >= 0, got {mu!r}")
    out = multitask_loss(source_logits, source_y, v, v_hat, lam, tau, bandwidth, threshold, valid, variant)
    terms = dict(out.terms)
    if target_logits is not None and mu > 0:
        if target_y is None:
            raise ValueError("multidomain_loss: target_logits given without target_y")
        terms["target"] = mu * _cross_entropy(target_logits, target_y)
    return ClickLossTerms(sum(terms.values()), terms)
