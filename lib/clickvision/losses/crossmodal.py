"""Cross-modal pair loss, paper C eq. (5)-(6) (cross-modal knowledge transfer).

Eq. (5): ``d_c^2(i_p, t_p) = ||phi(i_p) - phi(t_p)||^2``, the squared Euclidean distance
between the representations of a paired image and text at one layer. Eq. (6) sums it over
the layers fc6 and fc7 and over the pairs. There are no negatives: section 4.1 calls the
layers "contrastive loss layers", but the authors labelled every pair similar, which makes
Caffe's contrastive loss exactly eq. (5) (halved); we implement eq. (5).
"""
from __future__ import annotations

import torch

__all__ = ["pair_sq_distance", "pair_loss", "pair_loss_layers"]

REDUCTIONS = ("mean", "sum", "none")


def pair_sq_distance(image_repr: torch.Tensor, text_repr: torch.Tensor) -> torch.Tensor:
    """Per-pair ``||image_repr[p] - text_repr[p]||^2``, eq. (5); shape ``(n_pairs,)``."""
    for t, name in ((image_repr, "image_repr"), (text_repr, "text_repr")):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"pair loss: {name} must be a 2-D tensor (pairs x features), "
                             f"got {getattr(t, 'shape', type(t).__name__)}")
    if image_repr.shape != text_repr.shape:
        raise ValueError(f"pair loss: image_repr {tuple(image_repr.shape)} and text_repr "
                         f"{tuple(text_repr.shape)} must have the same shape (row p = pair p)")
    return (image_repr - text_repr).pow(2).sum(dim=1)


def pair_loss(image_repr: torch.Tensor, text_repr: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Eq. (5) reduced over pairs: ``"mean"`` (per pair, batch-size free), ``"sum"`` (eq. 6), ``"none"``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"pair loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    d = pair_sq_distance(image_repr, text_repr)
    return d.mean() if reduction == "mean" else d.sum() if reduction == "sum" else d


def pair_loss_layers(pairs, reduction: str = "mean") -> torch.Tensor:
    """Cross-modal transfer loss, eq. (6): :func:`pair_loss` summed over layers.

    ``pairs``: an iterable of ``(image_activations, text_activations)``, one per layer.
    """
    terms = [pair_loss(i, t, reduction) for i, t in pairs]
    if not terms:
        raise ValueError("pair_loss_layers: no layers given")
    return torch.stack(terms).sum() if reduction != "none" else torch.stack(terms).sum(0)
