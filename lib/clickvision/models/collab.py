"""Paper D's label models: CF2Label (4.2) and the image classifier with a CF head (3.4, 4.3).

* :class:`CF2Label` -- labels from a CF vector alone (the pre-study of Table 4, and the
  source of the loss-based confidence weights): BN -> Linear -> ReLU -> Dropout 0.1 ->
  Linear, widths ``linspace(cf_dim, n_labels, 3)`` as in the authors' code.
* :class:`CollaborativeImageClassifier` -- image model = (optional trainable backbone) ->
  shared trunk -> label head, plus the authors' CF head BN -> Linear(128) -> BN -> ReLU ->
  Linear(cf_dim) that predicts the CF vector (MTL-reconstruct). Here the backbone is the
  frozen EfficientNet-Lite0 whose pooled features are cached (fine-tuning a CNN does not
  fit the CPU budget); pass ``backbone=`` to fine-tune one on a GPU, nothing else changes.
* :func:`fit_image_model` trains one of the methods of Table 5 through the one Trainer:
  ``image_only``, ``mtl`` (eq. 3 with per-item confidence weights, eq. 2), ``sequential``
  (CF stage, then label stage, no freezing) and ``contrastive`` (triplet loss on predicted
  CF vectors, positive = the training item with the nearest CF vector, negative random).
Model selection: the epoch with the best validation mAP (validation items are cold, as
the test items), never the test split.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import metrics
from ..losses import cf as losses
from ..train import TrainConfig, Trainer, multi_tensor_steps, predict
from .dropout import Dropout

METHODS = ("image_only", "mtl", "sequential", "contrastive")


class CF2Label(nn.Module):
    """CF vector -> label logits (paper D 4.2; widths as in the authors' code)."""

    def __init__(self, cf_dim: int, n_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        mid = int(round(np.linspace(cf_dim, n_labels, 3)[1]))
        self.net = nn.Sequential(nn.BatchNorm1d(cf_dim), nn.Linear(cf_dim, mid), nn.ReLU(), Dropout(dropout),
                                 nn.Linear(mid, n_labels))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return self.net(q)


class CollaborativeImageClassifier(nn.Module):
    """Shared trunk with a label head and (when ``cf_dim``) a CF-vector head."""

    def __init__(self, in_dim: int, n_labels: int, cf_dim: int | None = None, hidden: int = 128,
                 dropout: float = 0.2, backbone: nn.Module | None = None,
                 input_mean: np.ndarray | None = None, input_std: np.ndarray | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("input_mean", torch.as_tensor(0.0 if input_mean is None else input_mean,
                                                           dtype=torch.float32))
        self.register_buffer("input_std", torch.as_tensor(1.0 if input_std is None else input_std,
                                                          dtype=torch.float32))
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), Dropout(dropout))
        self.label_head = nn.Linear(hidden, n_labels)
        self.cf_head = None if cf_dim is None else nn.Sequential(
            nn.BatchNorm1d(hidden), nn.Linear(hidden, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, cf_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(label logits, predicted CF vector or None)."""
        if self.backbone is not None:
            x = self.backbone(x).flatten(1)
        return self.from_normalized((x - self.input_mean) / self.input_std)

    def from_normalized(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`forward` from the normalised visual features ``z = (visual - input_mean) /
        input_std``: training on frozen features normalises the training matrix once
        (elementwise, so the same numbers) instead of every batch."""
        h = self.trunk(z)
        return self.label_head(h), (self.cf_head(h) if self.cf_head is not None else None)

    def visual_features(self, x: torch.Tensor) -> torch.Tensor:
        """The visual representation both heads read, before normalisation: the backbone's pooled
        output (trainable when the backbone is), or ``x`` itself on frozen cached features."""
        return x if self.backbone is None else self.backbone(x).flatten(1)

    def shared_features(self, x: torch.Tensor) -> torch.Tensor:
        """The label head's (and the CF head's) input ``h``: the shared Linear -> ReLU -> Dropout
        layer on the normalised visual features (what :meth:`forward` feeds both heads)."""
        return self.trunk((self.visual_features(x) - self.input_mean) / self.input_std)


def _row_batches(tensors: dict[str, torch.Tensor], rows: np.ndarray, batch_size: int, extra=None):
    """Factory of one epoch's dict batches over ``rows`` in a random order (Trainer-seeded).

    ``extra(idx)`` may add entries computed from the batch's row indices (triplets)."""
    rows = torch.as_tensor(rows, dtype=torch.long)

    def epoch():
        order = rows[torch.randperm(len(rows))]
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            if len(idx) < 2:  # batch norm needs two rows
                continue
            batch = {k: v.index_select(0, idx) for k, v in tensors.items()}  # = v[idx], a faster gather
            if extra is not None:
                batch.update(extra(idx))
            yield batch
    return epoch



def _label_scores(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    out = model(batch)
    return out[0] if isinstance(out, tuple) else out


def predict_scores(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Label scores (logits) of ``x`` rows, in eval mode (either model of this module)."""
    loader = [torch.as_tensor(x[s:s + batch_size], dtype=torch.float32) for s in range(0, len(x), batch_size)]
    return predict(model, loader, forward=_label_scores).numpy()


def _map_val_fn(x_val: np.ndarray, y_val: np.ndarray):
    keep = y_val.any(0)
    return lambda model: {"mAP": metrics.average_precision_macro(y_val[:, keep], predict_scores(model, x_val)[:, keep])}


@dataclass
class FitSettings:
    """Training settings shared by the image models (Adam; best validation-mAP epoch kept)."""

    epochs: int = 40
    lr: float = 3e-3  # chosen in development among 1e-3, 3e-3, 1e-2 on Image-only's validation mAP
    weight_decay: float = 1e-5
    batch_size: int = 256
    hidden: int = 128
    dropout: float = 0.2
    patience: int | None = 6
    class_weighting: str = "paper"  # eq. (1) 'paper' | the code's 'code' pos_weight | 'none'
    reconstruction: str = "paper"  # 'paper' exp(L1+L2) | 'code' exp(MSE+MAE)-1
    normalize_weights: bool = True  # eq. (2) per batch: sum w l / sum w (code) or mean w l
    cf_epochs: int = 10  # Sequential: epochs of the CF-only stage
    margin: float = 0.2  # Contrastive: triplet margin tau
    device: str = "auto"
    extra: dict = field(default_factory=dict)


def _pos_weight(settings: FitSettings, y: np.ndarray, mask: np.ndarray) -> torch.Tensor | None:
    yt, mt = torch.as_tensor(y), torch.as_tensor(mask)
    if settings.class_weighting == "paper":
        return losses.class_balance_weights(yt, mt)
    if settings.class_weighting == "code":
        return losses.code_pos_weight(yt, mt)
    if settings.class_weighting == "none":
        return None
    raise ValueError(f"class_weighting must be one of {losses.CLASS_WEIGHTINGS}, got {settings.class_weighting!r}")


def nearest_cf_neighbour(q: np.ndarray, has_cf: np.ndarray) -> np.ndarray:
    """For every row, the index of the other row with a CF vector nearest in L2 (-1 if none)."""
    cand = np.flatnonzero(has_cf)
    qc = torch.as_tensor(q[cand], dtype=torch.float64)
    d = torch.cdist(torch.as_tensor(q, dtype=torch.float64), qc)
    self_pos = {int(c): j for j, c in enumerate(cand)}
    for i, j in self_pos.items():
        d[i, j] = float("inf")
    out = cand[d.argmin(1).numpy()] if len(cand) > 1 else np.full(len(q), -1)
    return np.where(has_cf, out, -1)


def fit_image_model(method: str, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                    label_mask: np.ndarray | None = None, q: np.ndarray | None = None,
                    cf_weights: np.ndarray | None = None, alpha: float = 1.0, seed: int = 0,
                    settings: FitSettings | None = None, backbone: nn.Module | None = None,
                    backbone_lr: float | None = None) -> tuple[CollaborativeImageClassifier, pd.DataFrame]:
    """Train one Table 5 method on training features ``x`` (n, d) and labels ``y`` (n, C).

    ``label_mask`` (n, C) True where a label is observed (label paucity: unlabelled rows stay in
    the batches and add nothing to the label loss, so every method takes the same number of
    steps, as in the authors' code); ``q`` the CF vectors
    of the training items (standardised), ``cf_weights`` their capped confidences (0 = no CF
    vector). Returns the model at its best validation-mAP epoch and the Trainer History.

    ``backbone``: a module applied to the rows of ``x`` (and ``x_val``) before the shared layer,
    e.g. a :class:`clickvision.models.trunk.Trunk` on cached ``cut<n>`` activations; it is
    trained with the heads (so both losses shape it) and the input normalisation is then the
    mean and sd of its initial pooled output on the training rows (eval mode, no gradient).
    ``backbone_lr``: its own learning rate (a parameter group; default: the heads' ``lr``).
    Without a backbone nothing changes (the frozen-feature model of D.03-D.04).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    s = settings or FitSettings()
    uses_cf = method != "image_only"
    if uses_cf and q is None:
        raise ValueError(f"method {method!r} needs the CF vectors q")
    mask = np.ones_like(y, dtype=bool) if label_mask is None else np.asarray(label_mask, bool)
    weights = np.ones(len(x)) if cf_weights is None else np.asarray(cf_weights, np.float64)
    if backbone is None:
        in_dim, mean, std = x.shape[1], x.mean(0), x.std(0) + 1e-6
    else:
        pooled = initial_pooled(backbone, x)
        in_dim, mean, std = pooled.shape[1], pooled.mean(0), pooled.std(0) + 1e-6
    torch.manual_seed(seed)
    model = CollaborativeImageClassifier(in_dim, y.shape[1], q.shape[1] if uses_cf else None, s.hidden,
                                         s.dropout, backbone=backbone, input_mean=mean, input_std=std)
    x_t = torch.as_tensor(x, dtype=torch.float32)
    # frozen features: the training matrix is normalised once here (the very operation forward
    # applies per batch, elementwise, so the same numbers) and the losses start at the trunk
    prenormalized = backbone is None
    if prenormalized:
        x_t = (x_t - model.input_mean) / model.input_std
    tensors = {"x": x_t, "y": torch.as_tensor(y, dtype=torch.float32), "mask": torch.as_tensor(mask)}
    if uses_cf:
        tensors.update(q=torch.as_tensor(q, dtype=torch.float32), w=torch.as_tensor(weights, dtype=torch.float32))
    pos_weight = _pos_weight(s, y, mask)
    rows = np.arange(len(x))  # every method sees every training row: equal steps (as the authors' code)

    def run(m, xb):  # the model on rows of tensors["x"]
        return m.from_normalized(xb) if prenormalized else m(xb)

    def main_loss(logits, b):
        pw = None if pos_weight is None else pos_weight.to(logits.device)
        return losses.class_balanced_bce(logits, b["y"], b["mask"], pw)

    def aux_loss(pred_q, b):
        per_item = losses.reconstruction_loss(pred_q, b["q"], s.reconstruction)
        return losses.auxiliary_loss(per_item, b["w"], s.normalize_weights)

    def mtl_fn(m, b):
        logits, pred_q = run(m, b["x"])
        main = main_loss(logits, b)
        if pred_q is None:
            return main
        aux = aux_loss(pred_q, b)
        return losses.mtl_loss(main, aux, alpha), {"main": main, "aux": aux}

    extra = None
    if method == "contrastive":
        has_cf = weights > 0
        positive = torch.as_tensor(nearest_cf_neighbour(q, has_cf))
        pool = torch.as_tensor(np.flatnonzero(has_cf))

        def extra(idx):
            pos = positive[idx]
            neg = pool[torch.randint(0, len(pool), (len(idx),))]
            ok = pos >= 0
            return {"xp": tensors["x"].index_select(0, pos.clamp(min=0)), "xn": tensors["x"].index_select(0, neg),
                    "ok": ok}

        def contrastive_fn(m, b):
            logits, qa = run(m, b["x"])
            main = main_loss(logits, b)
            if not b["ok"].any():
                return main, {"main": main}
            _, qp = run(m, b["xp"][b["ok"]])
            _, qn = run(m, b["xn"][b["ok"]])
            aux = losses.triplet_loss(qa[b["ok"]], qp, qn, s.margin)
            return losses.mtl_loss(main, aux, alpha), {"main": main, "aux": aux}

    def config(epochs: int, monitor: bool) -> TrainConfig:
        return TrainConfig(epochs=epochs, optimizer="adam", lr=s.lr, weight_decay=s.weight_decay, seed=seed,
                           device=s.device, log_every=10, monitor="mAP" if monitor else None, mode="max",
                           patience=s.patience if monitor else None)

    params = None
    if backbone is not None and backbone_lr is not None:
        own = {id(p) for p in backbone.parameters()}
        params = [{"params": [p for p in backbone.parameters() if p.requires_grad], "lr": float(backbone_lr)},
                  {"params": [p for p in model.parameters() if id(p) not in own]}]
    val_fn = _map_val_fn(x_val, y_val)
    histories = []
    if method == "sequential":  # stage 1: the auxiliary task only, on the items with a CF vector
        cf_rows = np.flatnonzero(weights > 0)
        stage1 = multi_tensor_steps(Trainer(model, lambda m, b: aux_loss(run(m, b["x"])[1], b),
                                             config(s.cf_epochs, False), params=params))
        histories.append(stage1.fit(_row_batches(tensors, cf_rows, s.batch_size)).assign(stage="cf"))
        loss_fn = lambda m, b: main_loss(run(m, b["x"])[0], b)  # noqa: E731
    elif method == "contrastive":
        loss_fn = contrastive_fn
    else:
        loss_fn = mtl_fn
    trainer = multi_tensor_steps(Trainer(model, loss_fn, config(s.epochs, True), params=params))
    histories.append(trainer.fit(_row_batches(tensors, rows, s.batch_size, extra), val_fn=val_fn).assign(stage="label"))
    history = pd.concat(histories, ignore_index=True)
    history.attrs.update(trainer.history.attrs)
    return model, history


def initial_pooled(backbone: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """``backbone``'s output on the rows of ``x`` before any training (eval mode, no gradient),
    as float64: the statistics of the trunk's input normalisation."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        out = [backbone(torch.as_tensor(x[s:s + batch_size], dtype=torch.float32)).flatten(1).double()
               for s in range(0, len(x), batch_size)]
    backbone.train(was_training)
    if not out:
        raise ValueError("initial_pooled: x has no rows")
    return torch.cat(out).numpy()


def fit_cf2label(q: np.ndarray, y: np.ndarray, q_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                 epochs: int = 40, lr: float = 3e-3, batch_size: int = 256, seed: int = 0,
                 weight_decay: float = 1e-5, patience: int | None = 6, device: str = "auto") -> tuple[CF2Label, pd.DataFrame]:
    """Train :class:`CF2Label` with BCE per class (4.2); best validation-mAP epoch when given."""
    torch.manual_seed(seed)
    model = CF2Label(q.shape[1], y.shape[1])
    tensors = {"x": torch.as_tensor(q, dtype=torch.float32), "y": torch.as_tensor(y, dtype=torch.float32)}
    loss_fn = lambda m, b: losses.class_balanced_bce(m(b["x"]), b["y"])  # noqa: E731
    monitor = q_val is not None
    cfg = TrainConfig(epochs=epochs, optimizer="adam", lr=lr, weight_decay=weight_decay, seed=seed, device=device,
                      log_every=10, monitor="mAP" if monitor else None, mode="max",
                      patience=patience if monitor else None)
    trainer = multi_tensor_steps(Trainer(model, loss_fn, cfg))
    history = trainer.fit(_row_batches(tensors, np.arange(len(q)), batch_size),
                          val_fn=_map_val_fn(q_val, y_val) if monitor else None)
    return model, history


def out_of_fold_scores(q: np.ndarray, y: np.ndarray, n_folds: int = 5, seed: int = 0, **fit_kwargs) -> np.ndarray:
    """Label logits of every item from a CF2Label that never saw it (k-fold, docs/READING-NOTES.md).

    Each fold's CF2Label trains a fixed number of epochs on the other folds (no test-set look).
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    fold = np.random.default_rng(seed).permutation(len(q)) % n_folds
    out = np.zeros(y.shape, dtype=np.float32)
    for k in range(n_folds):
        held = fold == k
        model, _ = fit_cf2label(q[~held], y[~held], seed=seed + k, patience=None, **fit_kwargs)
        out[held] = predict_scores(model, q[held])
    return out


def out_of_fold_positive_loss(q: np.ndarray, y: np.ndarray, n_folds: int = 5, seed: int = 0,
                              **fit_kwargs) -> np.ndarray:
    """``l_WEIGHT`` of every item (mean ``-log y_hat`` over its positives, NaN: none) from
    :func:`out_of_fold_scores`: the loss-based confidence never scores an item in-sample."""
    logits = torch.as_tensor(out_of_fold_scores(q, y, n_folds, seed, **fit_kwargs))
    return losses.positive_label_loss(logits, torch.as_tensor(y)).numpy().astype(np.float64)
