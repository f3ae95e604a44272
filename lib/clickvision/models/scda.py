"""SCDA: selective convolutional descriptor aggregation (Wei et al., 2017; paper A's [38]).

A training-free fine-grained descriptor from a conv feature map ``(C, h, w)`` (paper A: the
backbone's last conv map, omega):

1. aggregation map ``A = sum_c map[c]`` (h x w);
2. mask ``M = A > mean(A)``;
3. keep the largest connected component of ``M`` (8-connectivity by default; ties go to
   the component met first in row-major order);
4. the selected deep descriptors (the ``C``-vectors at the kept positions) are average- and
   max-pooled, each pooled vector l2-normalised (``normalize=True``), and the two
   concatenated ("avg&maxPool", ``2C`` values).

A map whose aggregation is constant has an empty mask; then every position is selected
(stated, not hidden: :func:`scda_mask` returns the full mask). The classifier on top is
scikit-learn's linear SVM with the paper's penalty ``C = 1`` (footnote 12):
:func:`scda_svm`. Not implemented: SCDA's flipped-image and relu5_2 ("SCDA_flip+") variants.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["scda_mask", "scda_descriptor", "scda_descriptors", "scda_svm"]


def _as_maps(maps, ndim: int, name: str) -> np.ndarray:
    arr = maps.detach().cpu().numpy() if hasattr(maps, "detach") else np.asarray(maps)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D ({'(C, h, w)' if ndim == 3 else '(N, C, h, w)'}), "
                         f"got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _structure(connectivity: int) -> np.ndarray:
    if connectivity == 8:
        return np.ones((3, 3), dtype=bool)
    if connectivity == 4:
        return ndimage.generate_binary_structure(2, 1)
    raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")


def scda_mask(feature_map, connectivity: int = 8) -> np.ndarray:
    """Steps 1-3: the ``(h, w)`` bool mask of the largest above-mean component of one map."""
    fmap = _as_maps(feature_map, 3, "feature_map")
    agg = fmap.sum(axis=0, dtype=np.float64)
    above = agg > agg.mean()
    if not above.any():
        return np.ones_like(above)
    comp, n_comp = ndimage.label(above, structure=_structure(connectivity))
    sizes = np.bincount(comp.ravel(), minlength=n_comp + 1)[1:]
    return comp == (int(np.argmax(sizes)) + 1)


def scda_descriptor(feature_map, connectivity: int = 8, normalize: bool = True) -> np.ndarray:
    """Step 4 on one ``(C, h, w)`` map: ``[avgPool, maxPool]`` of the selected descriptors (2C)."""
    fmap = _as_maps(feature_map, 3, "feature_map")
    mask = scda_mask(fmap, connectivity)
    selected = fmap[:, mask]  # (C, n_selected)
    parts = [selected.mean(axis=1), selected.max(axis=1)]
    if normalize:
        parts = [p / n if (n := float(np.linalg.norm(p))) > 0 else p for p in parts]
    return np.concatenate(parts).astype(np.float32)


def scda_descriptors(maps, connectivity: int = 8, normalize: bool = True) -> np.ndarray:
    """:func:`scda_descriptor` of every map in an ``(N, C, h, w)`` batch -> ``(N, 2C)`` float32."""
    arr = _as_maps(maps, 4, "maps")
    return np.stack([scda_descriptor(m, connectivity, normalize) for m in arr])


def scda_svm(c: float = 1.0, seed: int = 0, max_iter: int = 5000):
    """The linear SVM on the SCDA descriptors (scikit-learn ``LinearSVC``, penalty ``C = 1``)."""
    from sklearn.svm import LinearSVC

    if not (isinstance(c, (int, float)) and c > 0):
        raise ValueError(f"c (the SVM penalty) must be > 0, got {c!r}")
    return LinearSVC(C=float(c), random_state=seed, max_iter=max_iter)
