"""The DNN-based compared methods of paper C's Table 1, on the same feature vectors as CHTN,
and the one training-length rule every network of paper C follows (:class:`StopRule`).

:class:`CorrAE` (Feng et al., 2014), :class:`BimodalAE` (Ngiam et al., 2011) and
:class:`DeepSM` (Wei et al., 2017) - like CHTN and its ablations - train until the
validation MAP stops improving (:class:`StopRule`: evaluated every ``eval_every`` steps,
stopped after ``patience`` evaluations without a gain above ``min_delta`` once
``min_steps`` are done, at most ``max_steps``; the best weights are restored). All train
through the one :class:`~clickvision.train.Trainer`; the interface (``fit`` /
``transform``) is :class:`~clickvision.models.crossmodal_baselines.CrossModalMethod`'s.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import runtime
from ..metrics import cross_modal_map
from ..train import TrainConfig, Trainer, multi_tensor_steps
from .dropout import Dropout
from ..train.callbacks import Callback
from .crossmodal_baselines import Array, CrossModalMethod, Val, _check_pairs
from .mlp import MLP

__all__ = ["TensorBatches", "multi_tensor_steps", "StopRule", "MinSteps", "fit_to_convergence", "CorrAE",
           "BimodalAE", "DeepSM"]


@dataclass(frozen=True)
class StopRule:
    """When a paper C network stops training: the same rule for CHTN, its ablations and
    every deep baseline (no network gets a fixed, hand-picked length).

    The validation average MAP (monitor ``val_map``) is evaluated every ``eval_every``
    optimizer steps; training stops after ``patience`` evaluations in a row without a gain
    above ``min_delta``, but not before ``min_steps``, and at the latest at ``max_steps``
    (the cap: a run that reaches it is flagged ``capped``). The weights of the best
    evaluation are restored. :meth:`for_accumulation` keeps the same budget in batches when
    each optimizer step accumulates several batches (the authors' solver).
    """

    max_steps: int = 1500
    eval_every: int = 25
    patience: int = 4
    min_delta: float = 0.002
    min_steps: int = 200

    def __post_init__(self) -> None:
        for name in ("max_steps", "eval_every", "patience"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"StopRule.{name} must be a positive integer, got {v!r}")
        if not isinstance(self.min_steps, (int, np.integer)) or not 0 <= self.min_steps <= self.max_steps:
            raise ValueError(f"StopRule.min_steps must be an integer in [0, max_steps={self.max_steps}], "
                             f"got {self.min_steps!r}")
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"StopRule.min_delta must be a finite number >= 0, got {self.min_delta!r}")

    def for_accumulation(self, accumulate: int) -> "StopRule":
        """The same rule counted in optimizer steps of ``accumulate`` batches each (same batches seen)."""
        if accumulate == 1:
            return self
        per = lambda v: max(1, round(v / accumulate))  # noqa: E731
        return replace(self, max_steps=per(self.max_steps), eval_every=per(self.eval_every),
                       min_steps=min(per(self.max_steps), round(self.min_steps / accumulate)))

    def config(self, seed: int, optimizer: str = "adam", lr: float = 1e-3, **solver) -> TrainConfig:
        """The :class:`~clickvision.train.TrainConfig` of this rule (monitor ``val_map``, max)."""
        return TrainConfig(max_steps=self.max_steps, optimizer=optimizer, lr=lr, seed=seed, device="cpu",
                           eval_every=self.eval_every, monitor="val_map", mode="max", patience=self.patience,
                           min_delta=self.min_delta, restore_best=True, progress=False, **solver)


class MinSteps(Callback):
    """Cancel an early stop before ``min_steps`` optimizer steps (TrainConfig has no minimum)."""

    def __init__(self, min_steps: int) -> None:
        self.min_steps = int(min_steps)

    def on_eval_end(self, trainer: Trainer, step: int, metrics: dict[str, float]) -> None:  # noqa: D102
        if step < self.min_steps:
            trainer.should_stop = False


def fit_to_convergence(net: nn.Module, loss_fn, data, val_fn: Callable[[nn.Module], dict] | None,
                       rule: StopRule, seed: int, **solver) -> tuple[pd.DataFrame, dict]:
    """Train ``net`` by ``rule`` (validation MAP from ``val_fn``: a dict with ``val_map``).

    Returns the History and the stop record: ``stop_step`` (steps trained), ``best_step``
    (the restored weights' step), ``best_val`` (their validation MAP), ``capped`` (the run
    reached ``max_steps`` without the patience running out). ``val_fn=None`` trains
    ``rule.max_steps`` steps and keeps the last weights (no validation split).
    """
    if val_fn is None:
        cfg = TrainConfig(max_steps=rule.max_steps, seed=seed, device="cpu", restore_best=False, progress=False,
                          **{"optimizer": "adam", "lr": 1e-3, **solver})
        trainer = multi_tensor_steps(Trainer(net, loss_fn, cfg))
        history = trainer.fit(data)
        return history, {"stop_step": trainer.step, "best_step": trainer.step, "best_val": math.nan, "capped": True}
    solver = {"optimizer": "adam", "lr": 1e-3, **solver}
    trainer = multi_tensor_steps(Trainer(net, loss_fn, rule.config(seed, **solver), callbacks=[MinSteps(rule.min_steps)]))
    history = trainer.fit(data, val_fn=val_fn)
    return history, {"stop_step": trainer.step, "best_step": int(history.attrs.get("best_step", trainer.step)),
                     "best_val": float(history.attrs.get("best_value", math.nan)),
                     "capped": not trainer.should_stop}


class TensorBatches:
    """Re-iterable seeded minibatches of row-aligned tensors (shuffled by torch's global RNG)."""

    def __init__(self, *tensors: torch.Tensor, batch_size: int = 64) -> None:
        self.tensors, self.batch_size = tensors, min(batch_size, len(tensors[0]))

    def __len__(self) -> int:
        return len(self.tensors[0]) // self.batch_size

    def __iter__(self):
        perm = torch.randperm(len(self.tensors[0]))
        for i in range(len(self)):
            idx = perm[i * self.batch_size:(i + 1) * self.batch_size]
            yield tuple(t.index_select(0, idx) for t in self.tensors)  # = t[idx], a faster gather



def _as_tensors(*arrays: Array) -> list[torch.Tensor]:
    return [torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in arrays]


class _NetMethod(CrossModalMethod):
    """Shared training plumbing: Adam via the one Trainer, stopped by :class:`StopRule` on the
    validation MAP (given ``val``; without it ``rule.max_steps`` steps). ``steps``, when
    given, replaces the rule's cap (``max_steps``); ``dropout`` is chosen on validation by
    the notebooks like every other network's."""

    def __init__(self, hidden: int = 128, code: int = 64, steps: int | None = None, lr: float = 1e-3,
                 batch_size: int = 64, seed: int = 0, eval_every: int | None = None, dropout: float = 0.0,
                 rule: StopRule | None = None) -> None:
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{self.name}: dropout must be in [0, 1), got {dropout!r}")
        rule = rule or StopRule()
        if steps is not None:
            rule = replace(rule, max_steps=steps, min_steps=min(rule.min_steps, steps))
        if eval_every is not None:
            rule = replace(rule, eval_every=eval_every)
        self.hidden, self.code, self.lr, self.rule = hidden, code, lr, rule
        self.batch_size, self.seed, self.dropout = batch_size, seed, dropout

    def _train(self, net: nn.Module, loss_fn, data: TensorBatches, val: Val) -> None:
        runtime.seed_everything(self.seed)
        val_fn = None
        if val is not None:
            vi, vt, vy = val

            def val_fn(model):  # noqa: ANN001 - Trainer hook
                self.net_ = model
                m = cross_modal_map(*self.transform(vi, vt), vy)
                return {"val_map": m["average"], "val_img2txt": m["img2txt"], "val_txt2img": m["txt2img"]}
        self.history_, self.stop_ = fit_to_convergence(net, loss_fn, data, val_fn, self.rule, self.seed, lr=self.lr)
        self.net_ = net.eval()

    @torch.no_grad()
    def _run(self, fn, z: Array) -> Array:
        self.net_.eval()
        return fn(torch.as_tensor(z, dtype=torch.float32)).numpy().astype(float)


class CorrAE(_NetMethod):
    """Correspondence autoencoder: one autoencoder per view, codes tied by a squared distance.

    Loss ``(1 - alpha) (rec_image + rec_text) + alpha ||code_image - code_text||^2``
    (Feng et al., 2014); the codes are the common space; ``dropout`` after each hidden layer.
    """

    name = "Corr-AE"

    def __init__(self, alpha: float = 0.2, **kw) -> None:
        super().__init__(**kw)
        self.alpha = alpha

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        _check_pairs(image, text)
        runtime.seed_everything(self.seed)
        dx, dt = image.shape[1], text.shape[1]
        p = self.dropout
        net = nn.ModuleDict({"enc_i": MLP(dx, [self.hidden], self.code, dropout=p),
                             "dec_i": MLP(self.code, [self.hidden], dx, dropout=p),
                             "enc_t": MLP(dt, [self.hidden], self.code, dropout=p),
                             "dec_t": MLP(self.code, [self.hidden], dt, dropout=p)})
        a = self.alpha

        def loss_fn(m, batch):
            x, t = batch
            ci, ct = m["enc_i"](x), m["enc_t"](t)
            rec = F.mse_loss(m["dec_i"](ci), x) + F.mse_loss(m["dec_t"](ct), t)
            corr = (ci - ct).pow(2).sum(1).mean()
            return (1 - a) * rec + a * corr, {"reconstruction": rec, "correlation": corr}
        self._train(net, loss_fn, TensorBatches(*_as_tensors(image, text), batch_size=self.batch_size), val)

    def _image(self, x: Array) -> Array:
        return self._run(self.net_["enc_i"], x)

    def _text(self, t: Array) -> Array:
        return self._run(self.net_["enc_t"], t)


class BimodalAE(_NetMethod):
    """Bimodal deep autoencoder (Ngiam et al., 2011): a shared code from both views that
    reconstructs both; trained with one view zeroed in two thirds of the examples, so a
    single view maps to the shared code (image alone -> image repr, text alone -> text repr);
    ``dropout`` on the joined view layer and the decoder's hidden layer."""

    name = "Bimodal AE"

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        _check_pairs(image, text)
        runtime.seed_everything(self.seed)
        self.dx_ = dx = image.shape[1]
        self.dt_ = dt = text.shape[1]
        net = nn.ModuleDict({"enc_i": MLP(dx, [], self.hidden), "enc_t": MLP(dt, [], self.hidden),
                             "drop": Dropout(self.dropout), "code": MLP(2 * self.hidden, [], self.code),
                             "dec": MLP(self.code, [self.hidden], dx + dt, dropout=self.dropout)})

        def loss_fn(m, batch):
            x, t = batch
            keep = torch.randint(0, 3, (len(x), 1))  # 0: both views, 1: image only, 2: text only
            code = self._encode(m, x * (keep != 2), t * (keep != 1))
            out = m["dec"](code)
            rec = F.mse_loss(out[:, :dx], x) + F.mse_loss(out[:, dx:], t)
            return rec, {"reconstruction": rec}
        self._train(net, loss_fn, TensorBatches(*_as_tensors(image, text), batch_size=self.batch_size), val)

    @staticmethod
    def _encode(m: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return m["code"](m["drop"](torch.cat([torch.relu(m["enc_i"](x)), torch.relu(m["enc_t"](t))], 1)))

    def _image(self, x: Array) -> Array:
        return self._run(lambda z: self._encode(self.net_, z, torch.zeros(len(z), self.dt_)), x)

    def _text(self, t: Array) -> Array:
        return self._run(lambda z: self._encode(self.net_, torch.zeros(len(z), self.dx_), z), t)


class DeepSM(_NetMethod):
    """Deep semantic matching (Wei et al., 2017): a classifier per view (image features ->
    MLP, text BoW -> MLP), trained on the target labels; each view's softmax probability
    vector is its common representation. The paper uses no validation split; here it stops
    by the same :class:`StopRule` as every other network (default dropout 0.5)."""

    name = "Deep-SM"

    def __init__(self, dropout: float = 0.5, **kw) -> None:
        super().__init__(dropout=dropout, **kw)

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        if labels is None:
            raise ValueError("Deep-SM needs labels")
        _check_pairs(image, text, labels)
        runtime.seed_everything(self.seed)
        self.classes_, idx = np.unique(labels, return_inverse=True)
        c = len(self.classes_)
        net = nn.ModuleDict({"image": MLP(image.shape[1], [self.hidden], c, dropout=self.dropout),
                             "text": MLP(text.shape[1], [self.hidden], c, dropout=self.dropout)})

        def loss_fn(m, batch):
            x, t, y = batch
            li, lt = F.cross_entropy(m["image"](x), y), F.cross_entropy(m["text"](t), y)
            return li + lt, {"image": li, "text": lt}
        x, t = _as_tensors(image, text)
        self._train(net, loss_fn, TensorBatches(x, t, torch.as_tensor(idx), batch_size=self.batch_size), val)

    def _image(self, x: Array) -> Array:
        return self._run(lambda z: self.net_["image"](z).softmax(1), x)

    def _text(self, t: Array) -> Array:
        return self._run(lambda z: self.net_["text"](z).softmax(1), t)
