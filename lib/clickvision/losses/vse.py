"""VSE++'s hinge loss with hardest negatives (Faghri et al., 2018; paper A's [39], Table VIII).

A batch of ``n`` matched pairs (image ``i``, text ``i``) is embedded in one joint space and
scored by cosine similarity ``s(i, j) = <f_i, g_j> / (|f_i| |g_j|)``. For each positive
pair the *hardest* negative in the batch is taken on both sides ("max of hinges", MH):

    l_i = max_{j != i} [alpha - s(i, i) + s(i, j)]_+  +  max_{j != i} [alpha - s(i, i) + s(j, i)]_+

(the first term: the hardest negative text for image ``i``; the second: the hardest negative
image for text ``i``). ``hardest=False`` gives the sum of hinges over every negative (VSE0,
Faghri et al.'s baseline). Rows flagged invalid (paper A: images with a zero click vector,
whose text side is undefined) take no part, neither as positives nor as negatives.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cosine_similarities", "vse_hinge_loss"]


def cosine_similarities(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(n, m)`` cosine similarities between the rows of ``a`` (n x d) and ``b`` (m x d)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"cosine_similarities: need (n, d) and (m, d), got {tuple(a.shape)} and {tuple(b.shape)}")
    return F.normalize(a, dim=1, eps=eps) @ F.normalize(b, dim=1, eps=eps).T


def vse_hinge_loss(image: torch.Tensor, text: torch.Tensor, margin: float = 0.2, valid: torch.Tensor | None = None,
                   hardest: bool = True, reduction: str = "mean") -> torch.Tensor:
    """VSE++ loss of ``n`` matched (image, text) embedding pairs (rows aligned), module docstring.

    ``margin``: alpha >= 0. ``valid``: bool ``(n,)``, rows to use (default all). ``hardest``:
    max of hinges (VSE++) or sum of hinges (VSE0). ``reduction``: ``"mean"`` over the valid
    rows or ``"sum"`` (Faghri et al.'s code). Fewer than two valid rows have no negative: the
    loss is 0 (with a gradient graph, so a training step still runs).
    """
    if image.ndim != 2 or text.ndim != 2 or image.shape != text.shape:
        raise ValueError(f"vse_hinge_loss: image and text must be (n, d) of one shape, got {tuple(image.shape)} "
                         f"and {tuple(text.shape)}")
    if not margin >= 0:
        raise ValueError(f"vse_hinge_loss: margin must be >= 0, got {margin!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"vse_hinge_loss: reduction must be 'mean' or 'sum', got {reduction!r}")
    if valid is not None:
        valid = valid.to(torch.bool)
        if valid.shape != (image.shape[0],):
            raise ValueError(f"vse_hinge_loss: valid must be ({image.shape[0]},), got {tuple(valid.shape)}")
        image, text = image[valid], text[valid]
    n = image.shape[0]
    if n < 2:
        return (image.sum() + text.sum()) * 0.0
    s = cosine_similarities(image, text)  # s[i, j]: image i, text j
    pos = s.diagonal()
    eye = torch.eye(n, dtype=torch.bool, device=s.device)
    cost_text = (margin - pos[:, None] + s).clamp_min(0.0).masked_fill(eye, 0.0)  # image i vs negative text j
    cost_image = (margin - pos[None, :] + s).clamp_min(0.0).masked_fill(eye, 0.0)  # text j vs negative image i
    if hardest:
        per_row = cost_text.max(dim=1).values + cost_image.max(dim=0).values
    else:
        per_row = cost_text.sum(dim=1) + cost_image.sum(dim=0)
    return per_row.mean() if reduction == "mean" else per_row.sum()
