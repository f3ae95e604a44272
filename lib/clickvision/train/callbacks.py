"""Hooks into the training loop, and gradient-norm probes (per layer, per loss term)."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from torch import nn

from .config import _POS_INT

if TYPE_CHECKING:
    from .loop import Trainer



class Callback:
    """Hooks :class:`Trainer` calls (no-ops here: override any; duck-typed objects work too).

    ``on_before_backward``: loss and terms still carry their graph (per batch when
    accumulating). ``on_after_backward``: gradients are in ``p.grad`` (unscaled, averaged over
    accumulated batches, before clipping). Steps count from 1.
    """

    def on_before_backward(self, trainer: Trainer, step: int, loss: torch.Tensor,
                           terms: Mapping[str, Any]) -> None: ...

    def on_after_backward(self, trainer: Trainer, step: int) -> None: ...

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None: ...

    def on_eval_end(self, trainer: Trainer, step: int, metrics: dict[str, float]) -> None: ...

    def on_fit_end(self, trainer: Trainer, history: pd.DataFrame) -> None: ...


def _l2(tensors: Iterable[torch.Tensor | None]) -> float:
    """l2 norm of the concatenation of the given tensors (NaN when there are none)."""
    squares = [t.detach().double().square().sum() for t in tensors if t is not None]
    return math.sqrt(float(torch.stack(squares).sum())) if squares else math.nan


class GradNormRecorder(Callback):
    """Per-layer gradient l2 norm every ``every`` steps (paper A Fig. 11).

    A layer's value is the l2 norm of the loss gradient over all its parameters (the caption
    of Fig. 11). ``layers``: module names of the model, or a dict label -> module.
    """

    def __init__(self, layers: Iterable[str] | Mapping[str, nn.Module], every: int = 1) -> None:
        if not _POS_INT(every):
            raise ValueError(f"GradNormRecorder: every must be a positive integer, got {every!r}")
        self.layers = layers if isinstance(layers, Mapping) else list(layers)
        self.every, self.rows = every, []

    def on_after_backward(self, trainer: Trainer, step: int) -> None:
        if step % self.every:
            return
        modules = self.layers
        if not isinstance(modules, Mapping):
            named = dict(trainer.model.named_modules())
            if missing := [n for n in modules if n not in named]:
                raise KeyError(f"GradNormRecorder: no layer {missing}; known: {list(named)[:30]}")
            modules = {n: named[n] for n in modules}
        for name, module in modules.items():
            self.rows.append((step, name, _l2(p.grad for p in module.parameters())))

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows ``step, layer, grad_norm`` (NaN where the layer had no gradient)."""
        return pd.DataFrame(self.rows, columns=["step", "layer", "grad_norm"])


def grad_norms_of_terms(model: nn.Module, terms: Mapping[str, torch.Tensor],
                        params: Iterable[torch.Tensor] | None = None) -> dict[str, float]:
    """l2 norm of the gradient of each loss term separately over ``params`` (default: the
    model's trainable parameters): paper A footnote 7, Table V's gd-ratio = weighted position
    term's norm / weighted count term's. The graph is retained, so the total can still be
    backpropagated: call it from a callback's ``on_before_backward`` at the chosen step.
    """
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    out = {}
    for name, term in terms.items():
        if not (isinstance(term, torch.Tensor) and term.requires_grad):
            raise ValueError(f"grad_norms_of_terms: term {name!r} is not a tensor with a graph")
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        out[name] = _l2(grads) if any(g is not None for g in grads) else 0.0
    return out
