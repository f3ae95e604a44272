"""The DNN-based compared methods of paper C's Table 1, on the same feature vectors as CHTN.

:class:`CorrAE` (Feng et al., 2014) and :class:`BimodalAE` (Ngiam et al., 2011) select
their training length on the validation MAP, as paper C says they need a validation split;
:class:`DeepSM` (Wei et al., 2017) uses none. All train through the one
:class:`~clickvision.train.Trainer`; the interface (``fit`` / ``transform``) is
:class:`~clickvision.models.crossmodal_baselines.CrossModalMethod`'s.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import runtime
from ..metrics import cross_modal_map
from ..train import TrainConfig, Trainer
from .crossmodal_baselines import Array, CrossModalMethod, Val, _check_pairs
from .mlp import MLP

__all__ = ["TensorBatches", "multi_tensor_steps", "CorrAE", "BimodalAE", "DeepSM"]


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
            yield tuple(t[idx] for t in self.tensors)


def multi_tensor_steps(trainer: Trainer) -> Trainer:
    """Let the trainer's optimizer update all parameters in one multi-tensor (``foreach``)
    step: the same arithmetic, much less per-parameter overhead for small networks on the CPU."""
    for group in trainer.optimizer.param_groups:
        group["foreach"] = True
    return trainer


def _as_tensors(*arrays: Array) -> list[torch.Tensor]:
    return [torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in arrays]


class _NetMethod(CrossModalMethod):
    """Shared training plumbing: SGD via the one Trainer, validation MAP selection if asked."""

    select_on_val = True

    def __init__(self, hidden: int = 128, code: int = 64, steps: int = 400, lr: float = 1e-3,
                 batch_size: int = 64, seed: int = 0, eval_every: int = 50) -> None:
        self.hidden, self.code, self.steps, self.lr = hidden, code, steps, lr
        self.batch_size, self.seed, self.eval_every = batch_size, seed, eval_every

    def _train(self, net: nn.Module, loss_fn, data: TensorBatches, val: Val) -> None:
        runtime.seed_everything(self.seed)
        use_val = self.select_on_val and val is not None
        val_fn = None
        if use_val:
            vi, vt, vy = val

            def val_fn(model):  # noqa: ANN001 - Trainer hook
                self.net_ = model
                ri, rt = self.transform(vi, vt)
                return {"val_map": cross_modal_map(ri, rt, vy)["average"]}
        cfg = TrainConfig(max_steps=self.steps, optimizer="adam", lr=self.lr, seed=self.seed, device="cpu",
                          eval_every=self.eval_every, monitor="val_map" if use_val else None, mode="max",
                          restore_best=use_val, progress=False)
        self.history_ = multi_tensor_steps(Trainer(net, loss_fn, cfg)).fit(data, val_fn=val_fn)
        self.net_ = net.eval()

    @torch.no_grad()
    def _run(self, fn, z: Array) -> Array:
        self.net_.eval()
        return fn(torch.as_tensor(z, dtype=torch.float32)).numpy().astype(float)


class CorrAE(_NetMethod):
    """Correspondence autoencoder: one autoencoder per view, codes tied by a squared distance.

    Loss ``(1 - alpha) (rec_image + rec_text) + alpha ||code_image - code_text||^2``
    (Feng et al., 2014); the codes are the common space; the number of steps is chosen on
    the validation MAP.
    """

    name = "Corr-AE"

    def __init__(self, alpha: float = 0.2, **kw) -> None:
        super().__init__(**kw)
        self.alpha = alpha

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        _check_pairs(image, text)
        runtime.seed_everything(self.seed)
        dx, dt = image.shape[1], text.shape[1]
        net = nn.ModuleDict({"enc_i": MLP(dx, [self.hidden], self.code), "dec_i": MLP(self.code, [self.hidden], dx),
                             "enc_t": MLP(dt, [self.hidden], self.code), "dec_t": MLP(self.code, [self.hidden], dt)})
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
    single view maps to the shared code (image alone -> image repr, text alone -> text repr)."""

    name = "Bimodal AE"

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        _check_pairs(image, text)
        runtime.seed_everything(self.seed)
        self.dx_ = dx = image.shape[1]
        self.dt_ = dt = text.shape[1]
        net = nn.ModuleDict({"enc_i": MLP(dx, [], self.hidden), "enc_t": MLP(dt, [], self.hidden),
                             "code": MLP(2 * self.hidden, [], self.code),
                             "dec": MLP(self.code, [self.hidden], dx + dt)})

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
        return m["code"](torch.cat([torch.relu(m["enc_i"](x)), torch.relu(m["enc_t"](t))], 1))

    def _image(self, x: Array) -> Array:
        return self._run(lambda z: self._encode(self.net_, z, torch.zeros(len(z), self.dt_)), x)

    def _text(self, t: Array) -> Array:
        return self._run(lambda z: self._encode(self.net_, torch.zeros(len(z), self.dx_), z), t)


class DeepSM(_NetMethod):
    """Deep semantic matching (Wei et al., 2017): a classifier per view (image features ->
    MLP, text BoW -> MLP), trained on the target labels; each view's softmax probability
    vector is its common representation. Uses no validation split (as in the paper)."""

    name = "Deep-SM"
    select_on_val = False

    def _fit(self, image: Array, text: Array, labels: Array | None = None, val: Val = None) -> None:
        if labels is None:
            raise ValueError("Deep-SM needs labels")
        _check_pairs(image, text, labels)
        runtime.seed_everything(self.seed)
        self.classes_, idx = np.unique(labels, return_inverse=True)
        c = len(self.classes_)
        net = nn.ModuleDict({"image": MLP(image.shape[1], [self.hidden], c, dropout=0.5),
                             "text": MLP(text.shape[1], [self.hidden], c, dropout=0.5)})

        def loss_fn(m, batch):
            x, t, y = batch
            li, lt = F.cross_entropy(m["image"](x), y), F.cross_entropy(m["text"](t), y)
            return li + lt, {"image": li, "text": lt}
        x, t = _as_tensors(image, text)
        self._train(net, loss_fn, TensorBatches(x, t, torch.as_tensor(idx), batch_size=self.batch_size), None)

    def _image(self, x: Array) -> Array:
        return self._run(lambda z: self.net_["image"](z).softmax(1), x)

    def _text(self, t: Array) -> Array:
        return self._run(lambda z: self.net_["text"](z).softmax(1), t)
