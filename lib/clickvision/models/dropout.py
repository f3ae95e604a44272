"""Dropout whose mask is the same on every CPU: drawn from ``torch.rand``, not from a Bernoulli kernel.

Why not ``nn.Dropout``: on the CPU, PyTorch draws dropout's Bernoulli mask with MKL's MCG31 stream
when the processor's vendor is Intel and with its own mt19937 stream otherwise (ATen,
``native/cpu/DistributionKernels.cpp``, ``bernoulli_scalar_kernel``: "The situation of AMD, move to
using the default version"). The same seed therefore trains a different model on an Intel and on
an AMD machine of the same kind: every model with dropout drew other masks, and validation
choices and verdicts moved with the CPU (session notes of stops 29-30: paper C's CHTN selection,
D.F4). ``torch.rand`` (``uniform_``) has one CPU implementation, so the masks here depend only on
the seed. On this machine's non-MKL path it is also faster (``bench/bench_dropout.py``).

Semantics are ``nn.Dropout``'s: in training mode each element is kept with probability ``1 - p``
(``u >= p`` for ``u`` uniform in [0, 1)) and scaled by ``1 / (1 - p)``; in eval mode, or with
``p = 0``, the input passes unchanged. Under ``torch.func.vmap(randomness="different")``
(:mod:`clickvision.train.batched`) every member draws its own mask.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Dropout", "dropout"]


def _check(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"dropout: p must be a number in [0, 1), got {p!r}")
    return float(p)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``x`` with each element zeroed with probability ``p`` and the rest scaled by ``1 / (1 - p)``
    (training), or ``x`` itself (not training, or ``p = 0``). The mask comes from ``torch.rand``."""
    p = _check(p)
    if not training or p == 0.0:
        return x
    keep = torch.rand_like(x).ge(p).to(x.dtype).mul_(1.0 / (1.0 - p))  # 0 or 1 / (1 - p); ge has a vmap rule, ge_ not
    return x * keep


class Dropout(nn.Module):
    """``nn.Dropout``'s drop-in replacement with a CPU-independent mask (see the module docstring)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
