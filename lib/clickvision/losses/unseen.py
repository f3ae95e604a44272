"""Unseen-category loss of paper A, eq. (16): each domain's softmax runs over its own classes.

Eq. (16) replaces eq. (15)'s softmax by one over the source label set ``Ys`` for source rows
and one over the target label set ``Yt`` for target rows (``Ys != Yt``):

    source rows: lambda l_p(v, v_hat) - (1 - lambda) log( e^{o_y} / sum_{j in Ys} e^{o_j} )
    target rows:                       - mu        log( e^{o_y} / sum_{j in Yt} e^{o_j} )

Two ways to hold the classifiers, both covered:

* **unshared** (MTMDD-VM): a source head with ``|Ys|`` outputs and a target head with
  ``|Yt|`` outputs; pass each head's logits and labels in that head's own indexing
  (``source_columns=None``, ``target_columns=None``). A target class absent from the source
  has no source output at all.
* **shared** (MTMDD-VM*): one head over the union of the two label sets
  (:attr:`LabelSpaces.union`: target classes first, then source-only ones); pass
  ``source_columns=spaces.source_columns`` and ``target_columns=spaces.target_columns`` and
  labels as union indices. Each domain's softmax then sees only its own columns: the
  other columns are not selected, so a target-only class gets no source-side logit and no
  source-side gradient (and vice versa).

The click term and the weights are eq. (15)'s, computed by
:func:`clickvision.losses.click.multidomain_loss` on the restricted logits.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .click import ClickLossTerms, multidomain_loss

__all__ = ["LabelSpaces", "restrict_logits", "unseen_category_loss"]


@dataclass(frozen=True)
class LabelSpaces:
    """The source label set ``Ys``, the target label set ``Yt`` and their union (eq. 16).

    ``union`` lists the target classes first (in ``target`` order), then the source-only
    classes (in ``source`` order), so target union indices equal target-local indices.
    """

    source: tuple[str, ...]
    target: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("source", "target"):
            vals = tuple(str(c) for c in getattr(self, name))
            if not vals:
                raise ValueError(f"LabelSpaces: the {name} label set is empty")
            if len(set(vals)) != len(vals):
                raise ValueError(f"LabelSpaces: the {name} label set has duplicate classes")
            object.__setattr__(self, name, vals)

    @classmethod
    def from_labels(cls, source_labels: Sequence[Hashable], target_labels: Sequence[Hashable]) -> "LabelSpaces":
        """Label sets as the sorted distinct labels seen in each domain."""
        return cls(tuple(sorted({str(x) for x in source_labels})), tuple(sorted({str(x) for x in target_labels})))

    @property
    def union(self) -> tuple[str, ...]:
        tset = set(self.target)
        return self.target + tuple(c for c in self.source if c not in tset)

    @property
    def source_only(self) -> tuple[str, ...]:
        """Source classes absent from the target (the paper's "all 283 source classes" point)."""
        return tuple(c for c in self.source if c not in set(self.target))

    @property
    def target_only(self) -> tuple[str, ...]:
        """Target classes absent from the source: the unseen categories."""
        return tuple(c for c in self.target if c not in set(self.source))

    @property
    def source_columns(self) -> np.ndarray:
        """Union indices of the source classes, in ``source`` order."""
        index = {c: i for i, c in enumerate(self.union)}
        return np.array([index[c] for c in self.source], dtype=np.int64)

    @property
    def target_columns(self) -> np.ndarray:
        """Union indices of the target classes (``0 .. |Yt| - 1``)."""
        return np.arange(len(self.target), dtype=np.int64)

    def encode(self, labels: Sequence[Hashable], space: str) -> np.ndarray:
        """Class names -> indices in ``space`` ('source', 'target' or 'union').

        A label outside that space is an error naming it (e.g. a target-only class among
        the source rows).
        """
        if space not in ("source", "target", "union"):
            raise ValueError(f"space must be 'source', 'target' or 'union', got {space!r}")
        names = getattr(self, space)
        index = {c: i for i, c in enumerate(names)}
        labels = [str(x) for x in labels]
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"labels {unknown[:5]}{' ...' if len(unknown) > 5 else ''} are not in the {space} "
                             f"label set ({len(names)} classes)")
        return np.array([index[x] for x in labels], dtype=np.int64)


def restrict_logits(logits: torch.Tensor, y: torch.Tensor, columns: Sequence[int] | np.ndarray | torch.Tensor | None,
                    what: str = "logits") -> tuple[torch.Tensor, torch.Tensor]:
    """The columns of ``logits`` in ``columns`` and ``y`` re-indexed into them.

    ``columns=None`` returns the inputs unchanged. ``y`` holds column indices of ``logits``;
    a label whose column is not among ``columns`` is an error (a row cannot be scored by a
    softmax that excludes its own class).
    """
    if logits.ndim != 2 or y.ndim != 1 or len(y) != len(logits):
        raise ValueError(f"{what}: logits must be (N, C) and labels (N,), got {tuple(logits.shape)} "
                         f"and {tuple(y.shape)}")
    if columns is None:
        return logits, y
    cols = torch.as_tensor(np.asarray(columns), dtype=torch.long, device=logits.device)
    if cols.ndim != 1 or not len(cols):
        raise ValueError(f"{what}: columns must be a non-empty 1-D list of column indices")
    if len(torch.unique(cols)) != len(cols):
        raise ValueError(f"{what}: columns has duplicates")
    if int(cols.min()) < 0 or int(cols.max()) >= logits.shape[1]:
        raise ValueError(f"{what}: columns must lie in [0, {logits.shape[1]}), got {cols.min()}..{cols.max()}")
    local = torch.full((logits.shape[1],), -1, dtype=torch.long, device=logits.device)
    local[cols] = torch.arange(len(cols), device=logits.device)
    y_local = local[y.long()]
    if (y_local < 0).any():
        bad = sorted(set(y[y_local < 0].tolist()))
        raise ValueError(f"{what}: labels {bad} are not among this domain's classes")
    return logits.index_select(1, cols), y_local


def unseen_category_loss(source_logits: torch.Tensor, source_y: torch.Tensor, v: torch.Tensor, v_hat: torch.Tensor,
                         target_logits: torch.Tensor | None, target_y: torch.Tensor | None,
                         source_columns=None, target_columns=None, lam: float = 0.4, mu: float = 1.0,
                         tau: float = 0.1, bandwidth: float = 0.01, threshold: float = 0.16,
                         valid: torch.Tensor | None = None, variant: str = "paper") -> ClickLossTerms:
    """Eq. (16): eq. (15) with the source softmax over ``Ys`` and the target softmax over ``Yt``.

    ``*_columns``: the logit columns forming each domain's label set (shared head), or
    ``None`` when each head already has exactly its domain's outputs (unshared). Labels are
    column indices of the logits given. Terms as :func:`~clickvision.losses.click.multidomain_loss`
    (``softmax`` = ``(1 - lambda)`` source CE, ``count``/``position`` click terms, ``target`` =
    ``mu`` target CE).
    """
    s_logits, s_y = restrict_logits(source_logits, source_y, source_columns, "source")
    t_logits, t_y = (None, None)
    if target_logits is not None:
        if target_y is None:
            raise ValueError("unseen_category_loss: target_logits given without target_y")
        t_logits, t_y = restrict_logits(target_logits, target_y, target_columns, "target")
    return multidomain_loss(s_logits, s_y, v, v_hat, t_logits, t_y, lam=lam, mu=mu, tau=tau, bandwidth=bandwidth,
                            threshold=threshold, valid=valid, variant=variant)
