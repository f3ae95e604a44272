"""Score fusion ("SF" in paper A's Table VIII): a weighted sum of two recognisers' probabilities.

``p = (1 - w) p_visual + w p_click``: a visual-feature recogniser and a (predicted) click-
feature recogniser, each trained on its own; the click weight ``w`` is chosen from
``{0.2, 0.4, 0.5, 0.6, 0.8}`` (paper A footnote 13; the paper picked 0.2 on the table it
reports, we pick on the validation split and report test). Ties in validation accuracy
go to the earliest weight in the grid.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .metrics import accuracy

__all__ = ["SF_CLICK_WEIGHTS", "fuse_scores", "select_click_weight", "score_fusion", "FusionResult"]

#: Paper A footnote 13: the candidate weights of the click-feature recogniser.
SF_CLICK_WEIGHTS: tuple[float, ...] = (0.2, 0.4, 0.5, 0.6, 0.8)


def _probs(p, name: str) -> np.ndarray:
    arr = np.asarray(p.detach().cpu().numpy() if hasattr(p, "detach") else p, dtype=float)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty (n, C) probability matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if arr.min() < 0:
        raise ValueError(f"{name} must be probabilities (non-negative); pass softmax outputs, not logits")
    return arr


def _weight(w: float) -> float:
    if isinstance(w, bool) or not isinstance(w, (int, float, np.floating)) or not 0.0 <= float(w) <= 1.0:
        raise ValueError(f"click_weight must be a number in [0, 1], got {w!r}")
    return float(w)


def fuse_scores(p_visual, p_click, click_weight: float) -> np.ndarray:
    """``(1 - w) p_visual + w p_click`` for two ``(n, C)`` probability matrices."""
    pv, pc = _probs(p_visual, "p_visual"), _probs(p_click, "p_click")
    if pv.shape != pc.shape:
        raise ValueError(f"p_visual has shape {pv.shape} but p_click has shape {pc.shape}")
    w = _weight(click_weight)
    return (1.0 - w) * pv + w * pc


def select_click_weight(p_visual_val, p_click_val, y_val,
                        weights: Sequence[float] = SF_CLICK_WEIGHTS) -> tuple[float, pd.DataFrame]:
    """The click weight with the best validation accuracy, and every weight's accuracy.

    Returns ``(best_weight, table)`` with ``table`` columns ``click_weight``, ``val_acc``.
    """
    if not len(weights):
        raise ValueError("weights is empty")
    ws = [_weight(w) for w in weights]
    accs = [accuracy(y_val, fuse_scores(p_visual_val, p_click_val, w)) for w in ws]
    best = ws[int(np.argmax(accs))]  # first maximum: the earliest weight wins a tie
    return best, pd.DataFrame({"click_weight": ws, "val_acc": accs})


@dataclass
class FusionResult:
    """The chosen weight, the validation table, and the fused test scores (and accuracy)."""

    click_weight: float
    validation: pd.DataFrame
    test_scores: np.ndarray
    test_acc: float | None


def score_fusion(p_visual_val, p_click_val, y_val, p_visual_test, p_click_test, y_test=None,
                 weights: Sequence[float] = SF_CLICK_WEIGHTS) -> FusionResult:
    """SF: choose the click weight on validation, fuse the test probabilities with it."""
    w, table = select_click_weight(p_visual_val, p_click_val, y_val, weights)
    scores = fuse_scores(p_visual_test, p_click_test, w)
    return FusionResult(w, table, scores, None if y_test is None else accuracy(y_test, scores))
