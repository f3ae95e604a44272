"""Squared maximum mean discrepancy with a family of Gaussian kernels.

Paper C eq. (1)-(2) (single-modal transfer, after Long et al., 2015, "DAN") and paper A's
DAN baseline use this one implementation. For samples ``x`` (n x d) and ``y`` (m x d) the
biased (V-statistic) estimate of eq. (1) is

    MMD^2 = mean_{i,j} k(x_i, x_j) + mean_{i,j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j),

with ``k = sum_{u=0}^{kernel_num-1} exp(-||a - b||^2 / (s * kernel_mul^(u - kernel_num // 2)))``:
a family of ``kernel_num`` Gaussian kernels whose bandwidths grow by ``kernel_mul``,
centred on ``s`` = the mean squared distance over all distinct pairs of the pooled sample
(the heuristic of Long et al.'s code). ``kernel_num=5`` is Long et al.'s multi-kernel MMD
(the default), ``kernel_num=1`` the single kernel of paper C's prototxt.

Gradient: the authors' Caffe MMD layer (and Long et al.'s code) treats the data-driven
bandwidth as a constant in the backward pass; ``detach_bandwidth=True`` (the default) does
the same. ``detach_bandwidth=False`` differentiates through it too (the exact gradient of
the value computed); ``bandwidth=`` fixes it outright.
"""
from __future__ import annotations

import torch

__all__ = ["gaussian_kernel_bandwidths", "multi_gaussian_kernel", "mmd2", "mmd2_layers"]


def _check_sample(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"mmd2: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 2 or t.shape[0] < 1:
        raise ValueError(f"mmd2: {name} must be a 2-D (samples x features) tensor with at least one row, "
                         f"got shape {tuple(t.shape)}")


def gaussian_kernel_bandwidths(sq_dists: torch.Tensor, kernel_num: int = 5, kernel_mul: float = 2.0,
                               bandwidth: float | None = None,
                               detach_bandwidth: bool = True) -> list[torch.Tensor | float]:
    """The ``kernel_num`` bandwidths ``s * kernel_mul**(u - kernel_num // 2)``, u = 0..kernel_num-1.

    ``s`` = ``bandwidth`` when given, else the mean of ``sq_dists`` over its off-diagonal
    entries (the pooled sample's distinct pairs), clamped away from 0 (and detached from the
    graph when ``detach_bandwidth``).
    """
    if not isinstance(kernel_num, int) or isinstance(kernel_num, bool) or kernel_num < 1:
        raise ValueError(f"mmd2: kernel_num must be a positive integer, got {kernel_num!r}")
    if not float(kernel_mul) > 0:
        raise ValueError(f"mmd2: kernel_mul must be > 0, got {kernel_mul!r}")
    if bandwidth is None:
        n = sq_dists.shape[0]
        if n < 2:
            raise ValueError("mmd2: need at least two samples in total to set the bandwidth; pass bandwidth=")
        base = (sq_dists.detach() if detach_bandwidth else sq_dists).sum() / (n * n - n)  # zero diagonal
        base = base.clamp_min(torch.finfo(sq_dists.dtype).tiny ** 0.5)
    else:
        if not float(bandwidth) > 0:
            raise ValueError(f"mmd2: bandwidth must be > 0 or None, got {bandwidth!r}")
        base = float(bandwidth)
    return [base * float(kernel_mul) ** (u - kernel_num // 2) for u in range(kernel_num)]


def multi_gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidths: list) -> torch.Tensor:
    """``sum_s exp(-||a_i - b_j||^2 / s)`` for every pair (rows of ``a`` by rows of ``b``)."""
    d = _sq_dists(a, b)
    return sum(torch.exp(-d / s) for s in bandwidths)


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances ``|a|^2 + |b|^2 - 2 a.b`` (one matrix product,
    clamped at 0 against rounding)."""
    d = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1)[None, :] - 2.0 * (a @ b.T)
    return d.clamp_min(0.0)


def mmd2(x: torch.Tensor, y: torch.Tensor, kernel_num: int = 5, kernel_mul: float = 2.0,
         bandwidth: float | None = None, detach_bandwidth: bool = True) -> torch.Tensor:
    """Squared MMD between the samples ``x`` (n x d) and ``y`` (m x d), paper C eq. (1).

    Biased estimate (all pairs, diagonals included), so it is >= 0 and exactly 0 when the
    two samples are identical. ``bandwidth=None``: the kernel family is centred on the mean
    squared distance between distinct points of the pooled sample, a constant for the
    gradient unless ``detach_bandwidth=False`` (module docstring). Returns a scalar tensor
    with a gradient to both samples.
    """
    _check_sample(x, "x")
    _check_sample(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"mmd2: x has {x.shape[1]} features but y has {y.shape[1]}")
    n = x.shape[0]
    pooled = torch.cat([x, y], dim=0)
    d = _sq_dists(pooled, pooled)
    bws = gaussian_kernel_bandwidths(d, kernel_num, kernel_mul, bandwidth, detach_bandwidth)
    k = sum(torch.exp(-d / s) for s in bws)
    kxx, kyy, kxy = k[:n, :n].mean(), k[n:, n:].mean(), k[:n, n:].mean()
    return (kxx + kyy - 2 * kxy).clamp_min(0.0)


def mmd2_layers(pairs, kernel_num: int = 5, kernel_mul: float = 2.0,
                detach_bandwidth: bool = True) -> torch.Tensor:
    """Single-modal transfer loss, paper C eq. (2): the sum of :func:`mmd2` over layers.

    ``pairs``: an iterable of ``(source_activations, target_activations)``, one per layer
    (paper C: fc6 and fc7).
    """
    terms = [mmd2(s, t, kernel_num, kernel_mul, detach_bandwidth=detach_bandwidth) for s, t in pairs]
    if not terms:
        raise ValueError("mmd2_layers: no layers given")
    return torch.stack(terms).sum()
