"""Domain-adaptation terms for paper A's Table VIII baselines: DANN and DAN.

* **DANN** (Ganin et al., 2016; the paper's [19]): a domain classifier reads the features
  through a *gradient reversal layer* -- identity forward, ``-lambda`` times the gradient
  backward -- so the classifier learns to tell the domains apart while the feature
  extractor learns to confuse it. :class:`GradientReversal` is the autograd Function,
  :func:`grad_reverse` its call, :func:`dann_lambda` Ganin's schedule
  ``2 / (1 + exp(-gamma p)) - 1`` over training progress ``p`` in [0, 1],
  :func:`domain_adversarial_loss` the binary cross-entropy of the domain classifier
  (source = 0, target = 1), and :class:`DomainAdversary` ties the three together with a
  small MLP discriminator (its parameters go into the optimiser with the network's).
* **DAN** (Long et al., 2015; the paper's [36]): the multi-kernel MMD between the two
  domains' activations of the adapted layers, added to the source classification loss.
  :func:`dan_mmd_loss` is a thin wrapper over :mod:`clickvision.losses.mmd` (shared with
  paper C): the biased all-pairs estimate with 5 Gaussian kernels, bandwidths ``s * 2^u``
  around the mean pooled squared distance. Long et al.'s linear-time unbiased estimate is
  not implemented (the batches here are small enough for the quadratic one).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models.mlp import MLP
from .mmd import mmd2_layers

__all__ = ["GradientReversal", "grad_reverse", "dann_lambda", "domain_adversarial_loss", "DomainAdversary",
           "dan_mmd_loss"]


def _check_lambda(lambd: float) -> float:
    if isinstance(lambd, bool) or not isinstance(lambd, (int, float)) or not math.isfinite(lambd) or lambd < 0:
        raise ValueError(f"lambd (the gradient-reversal weight) must be a finite number >= 0, got {lambd!r}")
    return float(lambd)


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-lambd`` (DANN)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:  # noqa: D102
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # noqa: D102
        return -ctx.lambd * grad_output, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """``x`` unchanged, with the gradient flowing back through it scaled by ``-lambd``."""
    return GradientReversal.apply(x, _check_lambda(lambd))


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """Ganin et al.'s reversal-weight schedule ``2 / (1 + exp(-gamma p)) - 1``, ``p`` in [0, 1]."""
    if not (isinstance(progress, (int, float)) and 0.0 <= progress <= 1.0):
        raise ValueError(f"progress must be a number in [0, 1], got {progress!r}")
    if not (isinstance(gamma, (int, float)) and gamma > 0 and math.isfinite(gamma)):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def domain_adversarial_loss(source_domain_logits: torch.Tensor, target_domain_logits: torch.Tensor) -> torch.Tensor:
    """DANN's domain loss: mean binary cross-entropy, source rows labelled 0, target rows 1.

    Inputs are the domain classifier's logits, shape ``(n,)`` or ``(n, 1)``, computed on
    features that went through :func:`grad_reverse`. Averaged over all ``n_s + n_t`` rows.
    """
    parts = []
    for name, z, label in (("source", source_domain_logits, 0.0), ("target", target_domain_logits, 1.0)):
        if z.ndim == 2 and z.shape[1] == 1:
            z = z[:, 0]
        if z.ndim != 1 or not len(z):
            raise ValueError(f"domain_adversarial_loss: {name} logits must be (n,) or (n, 1) with n >= 1, "
                             f"got {tuple(z.shape)}")
        parts.append((z, torch.full_like(z, label)))
    logits = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    return F.binary_cross_entropy_with_logits(logits, labels)


class DomainAdversary(nn.Module):
    """Gradient reversal + an MLP domain classifier + :func:`domain_adversarial_loss`.

    ``forward(source_features, target_features)`` returns the domain loss; minimising the
    total loss trains the classifier to separate the domains and, through the reversed
    gradient, the features to confuse it. ``lambd`` may be changed between steps
    (``adversary.lambd = dann_lambda(step / n_steps)``).
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (256,), dropout: float = 0.0, lambd: float = 1.0) -> None:
        super().__init__()
        self.classifier = MLP(in_dim, hidden, 1, dropout=dropout)
        self.lambd = _check_lambda(lambd)

    def forward(self, source_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:  # noqa: D102
        zs = self.classifier(grad_reverse(source_features, self.lambd))
        zt = self.classifier(grad_reverse(target_features, self.lambd))
        return domain_adversarial_loss(zs, zt)


def dan_mmd_loss(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], kernel_num: int = 5,
                 kernel_mul: float = 2.0, detach_bandwidth: bool = True) -> torch.Tensor:
    """DAN's multi-kernel MMD penalty: the sum over adapted layers of MMD^2(source, target).

    ``pairs``: ``(source_activations, target_activations)`` per adapted layer (each
    ``(n, d)`` and ``(m, d)``). Delegates to :func:`clickvision.losses.mmd.mmd2_layers`
    (bandwidth a constant of the backward pass, as Long et al.'s code, unless
    ``detach_bandwidth=False``).
    """
    return mmd2_layers(list(pairs), kernel_num=kernel_num, kernel_mul=kernel_mul, detach_bandwidth=detach_bandwidth)
