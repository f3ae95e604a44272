"""Training and evaluation of paper A's heads on cached backbone features (CPU).

Every model goes through the one :class:`clickvision.train.Trainer` (Adam, fixed number
of epochs as the paper's fixed 10k iterations; no early stopping). Three steps build
every table of section IV-B:

* :func:`train_click_predictor` -- a word embedding trained on the source by eq. (2) or
  the combined loss eq. (12) (TDL's first stage, Fig. 3a);
* :func:`train_recognizer` -- a classifier on ``[N(psi(phi)), N(v_hat)]`` (eq. 7) with the
  click predictor frozen (TDL's second stage; per domain: Acc-S / Acc-T);
* :func:`train_joint` -- one network on both domains with eq. (13)-(15) (MTTDL when the
  target is left out, MDD-VM / MTMDD-VM / MTMDD-VM*).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from ... import metrics, runtime
from ...losses import click as click_losses
from ...losses.unseen import restrict_logits, unseen_category_loss
from ...models.mtmdd import SOURCE, TARGET, MTMDDNet, RecognitionHead, WordEmbedding
from ...train import Callback, TrainConfig, Trainer, grad_norms_of_terms, multi_tensor_steps
from ...train.loop import _get_rng, _set_rng
from .data import DomainData, PaperAData, torch_threads  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class HeadConfig:
    """Sizes and optimisation of the heads (one place; profiles scale ``epochs``)."""

    embedding: str = "conv_bifc"
    hidden: int = 512  # biFC width (paper / authors' code: 4096)
    conv_kernels: int = 64  # CONV filters (paper Fig. 9 best: 1,024; authors' code: 256)
    conv_size: int = 3
    pool: int = 2
    output_relu: bool = False
    visual_hidden: int = 512  # trainable visual layer psi (0: the pooled vector itself)
    dropout: float = 0.5
    epochs: int = 30  # click predictor / joint network
    recognizer_epochs: int = 30
    batch_size: int = 64  # click predictor / joint network, per domain
    recognizer_batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    device: str = "cpu"
    optimizer: str = "adam"  # 'adam' (every head here) | 'sgd' (the authors' Caffe solver; A.15's arm)
    momentum: float = 0.9  # SGD only (the authors' solver); Adam ignores it
    # 0: every head trains its fixed ``epochs`` / ``recognizer_epochs``. > 0: one stop rule for every model
    # family (click predictor, recognizer, joint network, DAN / DANN, VSE++): stop after ``patience`` epochs
    # without a better validation score of its own (classifiers: accuracy; click predictors: the loss) and
    # keep the best epoch; the epochs are then caps (:func:`train_config`)
    patience: int = 0
    # True: every head is also scored on validation at each epoch's end without a stop rule (patience 0), so
    # a fixed-epoch run shows its validation curves (:func:`~.joint.curve_plateau`); what trains is unchanged
    curves: bool = False
    # the click predictors' own cap (0: ``epochs``): under a stop rule their validation loss creeps down for
    # longer than the classifiers' accuracy does, so a notebook may give them room to stop on their own
    # without moving the cap of the other families (DANN's adversary ramp is scheduled over ``epochs``)
    click_epochs: int = 0

    def __post_init__(self) -> None:
        from ...models.mtmdd import EMBEDDINGS

        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"HeadConfig.embedding must be one of {EMBEDDINGS}, got {self.embedding!r}")
        for name in ("hidden", "conv_kernels", "conv_size", "pool", "epochs", "recognizer_epochs", "batch_size",
                     "recognizer_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HeadConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.patience, int) or isinstance(self.patience, bool) or self.patience < 0:
            raise ValueError(f"HeadConfig.patience must be an integer >= 0, got {self.patience!r}")
        if not isinstance(self.click_epochs, int) or isinstance(self.click_epochs, bool) or self.click_epochs < 0:
            raise ValueError(f"HeadConfig.click_epochs must be an integer >= 0 (0: epochs), got {self.click_epochs!r}")
        if not isinstance(self.curves, bool):
            raise ValueError(f"HeadConfig.curves must be True or False, got {self.curves!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"HeadConfig.optimizer must be one of ('adam', 'sgd'), got {self.optimizer!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"HeadConfig.momentum must lie in [0, 1), got {self.momentum!r}")
        if self.visual_hidden < 0 or not 0 <= self.dropout < 1 or not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"HeadConfig: need visual_hidden >= 0, 0 <= dropout < 1, lr > 0, weight_decay >= 0; "
                             f"got {self.visual_hidden}, {self.dropout}, {self.lr}, {self.weight_decay}")

    @property
    def click_cap(self) -> int:
        """The click predictors' epochs (their cap under a stop rule): ``click_epochs``, else ``epochs``."""
        return self.click_epochs or self.epochs

    def scaled(self, **changes) -> "HeadConfig":
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)


class Batches:
    """Re-iterable mini-batches of row-aligned tensors, reshuffled every pass (torch's RNG).

    A last batch of one row is dropped (batch norm needs two).
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], batch_size: int, shuffle: bool = True) -> None:
        sizes = {len(t) for t in tensors.values()}
        if len(sizes) != 1 or not sizes or 0 in sizes:
            raise ValueError(f"Batches: tensors must be non-empty and row-aligned, got sizes {sizes}")
        self.tensors, self.batch_size, self.shuffle = dict(tensors), int(batch_size), shuffle
        self.n = sizes.pop()

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (rest >= 2)

    def __iter__(self):
        tensors = self.tensors
        if self.shuffle:
            order = torch.randperm(self.n)
            tensors = {k: t.index_select(0, order) for k, t in tensors.items()}  # = t[order], faster
        for i in range(len(self)):
            yield {k: t[i * self.batch_size:(i + 1) * self.batch_size] for k, t in tensors.items()}


def domain_tensors(d: DomainData, rows: np.ndarray, with_map: bool, domain: int,
                   v_hat: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Tensors of ``rows``: phi, omega (if needed), y, domain, v and valid (source), v_hat (given)."""
    out = {"phi": torch.from_numpy(np.ascontiguousarray(d.phi[rows])),
           "y": torch.from_numpy(d.y[rows]), "domain": torch.full((len(rows),), domain, dtype=torch.long)}
    if with_map:
        if d.omega is None:
            raise ValueError("a CONV embedding needs the conv map: load the data with with_map=True")
        out["omega"] = torch.from_numpy(np.ascontiguousarray(d.omega[rows]))
    if d.clicks is not None:
        out["v"] = torch.from_numpy(d.clicks[rows])
        out["valid"] = torch.from_numpy(d.valid[rows])
    if v_hat is not None:
        out["v_hat"] = torch.from_numpy(np.ascontiguousarray(v_hat[rows]))
    return out


def make_embedding(cfg: HeadConfig, data: PaperAData, kind: str | None = None) -> WordEmbedding:
    """The word embedding ``cfg`` (or ``kind``) asks for, sized for ``data``'s features."""
    return WordEmbedding(kind or cfg.embedding, data.feature_dim, data.k, cfg.hidden, cfg.conv_kernels,
                         cfg.conv_size, cfg.pool, cfg.dropout, cfg.output_relu, data.map_channels)



def train_config(cfg: HeadConfig, epochs: int, seed: int, monitor: str | None = None,
                 mode: str = "max") -> TrainConfig:
    """The :class:`TrainConfig` of every head (click predictor, recognizer, joint network, DAN / DANN,
    VSE++): ``cfg``'s optimizer (Adam, or SGD with ``cfg.momentum``), lr and weight decay, ``epochs``
    passes; with ``cfg.patience`` and the head's validation ``monitor`` (``mode`` 'max' or 'min'), early
    stopping after ``cfg.patience`` evaluations (one per epoch) without a better score, the best epoch
    restored (``epochs`` a cap)."""
    momentum = cfg.momentum if cfg.optimizer == "sgd" else 0.0  # TrainConfig: momentum is SGD's only
    stop = ({"monitor": monitor, "mode": mode, "patience": cfg.patience, "restore_best": True}
            if cfg.patience and monitor else {})
    return TrainConfig(epochs=epochs, optimizer=cfg.optimizer, lr=cfg.lr, momentum=momentum,
                       weight_decay=cfg.weight_decay, seed=seed, device=cfg.device, progress=False, **stop)


_HISTORIES: list | None = None  # the sink of :func:`record_histories`, when one is open
_LABELS: dict = {}


@contextlib.contextmanager
def record_histories():
    """Collect the History of every paper-A head trained inside the block (with ``cfg.patience`` they hold
    the validation curve): yields a list of ``(labels, family, history)``, ``labels`` those set by
    :func:`history_labels` (e.g. method and seed), ``family`` 'click predictor', 'recognizer', 'joint', ...
    Fits served from :func:`reuse_identical_fits`' store are not trained again and so not recorded."""
    global _HISTORIES
    outer, _HISTORIES = _HISTORIES, []
    try:
        yield _HISTORIES
    finally:
        _HISTORIES = outer


@contextlib.contextmanager
def history_labels(**labels):
    """Labels (method=..., seed=...) attached to the histories :func:`record_histories` collects inside."""
    global _LABELS
    outer, _LABELS = _LABELS, {**_LABELS, **labels}
    try:
        yield
    finally:
        _LABELS = outer


def _record(family: str, history: pd.DataFrame) -> pd.DataFrame:
    if _HISTORIES is not None:
        _HISTORIES.append((dict(_LABELS), family, history))
    return history


def validates(cfg: HeadConfig) -> bool:
    """Whether ``cfg``'s heads are scored on validation each epoch: under a stop rule or for their curves."""
    return bool(cfg.patience) or cfg.curves


def fit_head(model: nn.Module, loss_fn, train_data, cfg: HeadConfig, epochs: int, seed: int, family: str,
             val_fn=None, monitor: str = "val_acc", mode: str = "max", callbacks=(), curve: bool = False,
             multi_tensor: bool = True) -> pd.DataFrame:
    """Train one paper-A head and record its History (:func:`record_histories`, as ``family``): the one place
    that decides how every model family (click predictor, recogniser, joint network, DAN / DANN, VSE++) is
    scored on validation. ``val_fn(model)`` -> its validation scores, None when the data have no validation
    rows. With ``cfg.patience`` the stop rule watches ``val_fn``'s ``monitor`` (``mode`` 'max' or 'min') and
    keeps the best epoch (:func:`train_config`); with ``cfg.curves`` or ``curve`` (and no stop rule) it is only
    evaluated each epoch, for the curve, and the fixed epochs train as without it. ``multi_tensor``: one
    foreach optimizer step (:func:`~clickvision.train.loop.multi_tensor_steps`; the same numbers)."""
    stopping = bool(cfg.patience) and val_fn is not None
    evaluate = val_fn is not None and (stopping or cfg.curves or curve)
    trainer = Trainer(model, loss_fn, train_config(cfg, epochs, seed, monitor if stopping else None, mode),
                      callbacks=list(callbacks))
    if multi_tensor:
        trainer = multi_tensor_steps(trainer)
    return _record(family, trainer.fit(train_data, val_fn=val_fn if evaluate else None))


class TermGradNorms(Callback):
    """Gradient l2 norm of each weighted loss term at given steps (Table V's gd-ratio, fn. 7)."""

    def __init__(self, steps: set[int]) -> None:
        self.steps, self.rows = set(steps), []

    def on_before_backward(self, trainer: Trainer, step: int, loss: torch.Tensor, terms) -> None:
        if step in self.steps:
            grad_terms = {k: v for k, v in terms.items() if isinstance(v, torch.Tensor) and v.requires_grad}
            norms = grad_norms_of_terms(trainer.model, grad_terms)
            self.rows += [(step, k, v) for k, v in norms.items()]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["step", "term", "grad_norm"])


@dataclass
class ClickLossSpec:
    """Which click loss: eq. (2) (``tau = 0``) or eq. (12), with the binariser's B and T."""

    tau: float = 0.0
    bandwidth: float = 0.01
    threshold: float = 0.16
    variant: str = "paper"

    def __call__(self, v: torch.Tensor, v_hat: torch.Tensor, valid: torch.Tensor):
        return click_losses.combined_click_loss(v, v_hat, self.tau, self.bandwidth, self.threshold, valid,
                                                self.variant)


@dataclass
class FitResult:
    model: nn.Module
    history: pd.DataFrame
    grad_terms: pd.DataFrame = field(default_factory=pd.DataFrame)


def seeded(seed: int) -> None:
    runtime.seed_everything(seed)


# --- reuse of identical trainings (same inputs, bit for bit: same result) -------------------------

_MEMO: dict | None = None  # active inside reuse_identical_fits()


@contextlib.contextmanager
def reuse_identical_fits() -> Iterator[None]:
    """Inside the block, a click predictor or recognizer whose training inputs equal, bit for bit,
    those of one trained earlier in the block is not trained again: a copy of that result is
    returned and the random streams are left as that training left them.

    Every training here seeds itself and is deterministic on the CPU, so the result is a function
    of what it reads (the tensors its loss reads, in the order of the same ``randperm``; sizes,
    configuration, loss, seed, initial head, torch's thread count), and the copy is exactly what a
    second training would give. Grids re-train such cases (A.13: the untouched domain of a
    reduced-data setting; A.11: VGGimg's target recognizer at every source subset of a draw).
    Nested blocks share the outer block's store; it is dropped when the outermost block ends.
    """
    global _MEMO
    outer = _MEMO
    if outer is None:
        _MEMO = {}
    try:
        yield
    finally:
        if outer is None:
            _MEMO = None


def _fingerprint(*parts) -> bytes:
    """A digest of arrays / tensors (dtype, shape, bytes) and of other values by ``repr``."""
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.detach().cpu().numpy()
        if isinstance(part, np.ndarray):
            arr = np.ascontiguousarray(part)
            h.update(f"ndarray {arr.dtype.str} {arr.shape}|".encode())
            h.update(arr.view(np.uint8).reshape(-1) if arr.size else b"")
        else:
            h.update(f"{type(part).__qualname__} {part!r}|".encode())
    return h.digest()


def _memoized(key: Callable[[], bytes], train: Callable[[], object]):
    """``train()``, or inside :func:`reuse_identical_fits` a copy of the stored result for ``key()``."""
    if _MEMO is None:
        return train()
    key = key()
    if key in _MEMO:
        result, rng = _MEMO[key]
        _set_rng(rng)
        return copy.deepcopy(result)
    result = train()
    _MEMO[key] = (copy.deepcopy(result), _get_rng())
    return result


def train_click_predictor(data: PaperAData, cfg: HeadConfig, loss: ClickLossSpec, seed: int = 0,
                          kind: str | None = None, gd_steps: set[int] | None = None) -> FitResult:
    """First stage of TDL (Fig. 3a): a word embedding on the source training rows."""
    src = data.source
    reads_map = (kind or cfg.embedding).startswith("conv")  # = WordEmbedding.reads_map
    tensors = domain_tensors(src, src.rows("train"), reads_map, SOURCE)
    read = [tensors[k] for k in ("phi", "omega", "v", "valid") if k in tensors]  # what loss_fn reads
    val = domain_tensors(src, src.rows("val"), reads_map, SOURCE) if validates(cfg) else None
    # with a stop rule the fit also depends on what val_fn reads
    val_read = [val[k] for k in ("phi", "omega", "v", "valid") if k in val] if val is not None else []
    key = lambda: _fingerprint("click_predictor", *read, *val_read, data.feature_dim, data.k,  # noqa: E731
                               data.map_channels, cfg, loss, seed, kind, sorted(gd_steps or ()),
                               torch.get_num_threads())

    def train() -> FitResult:
        seeded(seed)
        emb = make_embedding(cfg, data, kind)
        net = MTMDDNet(emb, None)
        batches = Batches(tensors, cfg.batch_size)

        def loss_fn(model, b):
            out = loss(b["v"], model(b["phi"], b.get("omega"))["click"], b["valid"])
            return out.total, out.terms

        grads = TermGradNorms(gd_steps or set())

        @torch.no_grad()
        def val_fn(model) -> dict[str, float]:  # the click loss on the source validation rows
            was = model.training
            model.eval()
            try:
                out = loss(val["v"], model(val["phi"], val.get("omega"))["click"], val["valid"])
                return {"val_loss": float(out.total)}
            finally:
                model.train(was)

        has_val = val is not None and len(val["y"]) > 0
        history = fit_head(net, loss_fn, batches, cfg, cfg.click_cap, seed, "click predictor",
                           val_fn if has_val else None, "val_loss", "min", callbacks=[grads])
        return FitResult(net, history, grads.to_frame())

    return _memoized(key, train)


@torch.no_grad()
def predict_clicks(net: MTMDDNet, d: DomainData, chunk: int = 512) -> np.ndarray:
    """Predicted click features ``v_hat`` of every row of a domain (eval mode)."""
    was = net.training
    net.eval()
    try:
        reads_map = net.embedding.reads_map
        outs = []
        for i in range(0, len(d.y), chunk):
            phi = torch.from_numpy(d.phi[i:i + chunk])
            omega = torch.from_numpy(d.omega[i:i + chunk]) if reads_map else None
            outs.append(net.embedding(phi, omega))
        return torch.cat(outs).numpy()
    finally:
        net.train(was)


def train_recognizer(d: DomainData, cfg: HeadConfig, v_hat: np.ndarray | None, use_visual: bool, seed: int = 0,
                     n_classes: int | None = None, columns: np.ndarray | None = None,
                     init: RecognitionHead | None = None) -> RecognitionHead:
    """Second stage of TDL (eq. 4-5): a classifier on ``[N(psi(phi)), N(v_hat)]``, predictor frozen.

    ``columns``: the domain's classes among the ``n_classes`` outputs (eq. 16: the softmax
    runs over them only; ``None``: every output). ``init``: a head of the same shape to start
    from (VGGsrc: the source-trained head fine-tuned on this domain).
    """
    n_classes = n_classes or int(d.y.max()) + 1
    use_click = v_hat is not None
    tensors = domain_tensors(d, d.rows("train"), False, SOURCE, v_hat)
    # only what loss_fn reads: the click truth v / valid would be reshuffled every epoch for nothing
    tensors = {k: t for k, t in tensors.items() if k in ("phi", "y", "v_hat")}
    va = d.rows("val")
    # with a stop rule the fit also depends on what val_fn reads (the validation rows' inputs and labels)
    val_read = ((d.phi[va], d.y[va], *((v_hat[va],) if use_click else ())) if validates(cfg) else ())
    key = lambda: _fingerprint(  # noqa: E731
        "recognizer", *tensors.values(), *val_read, d.phi.shape[1], v_hat.shape[1] if use_click else 1, n_classes,
        use_visual, cfg, seed, columns, *(x for kv in (init.state_dict() if init is not None else {}).items()
                                          for x in kv), torch.get_num_threads())

    def train() -> RecognitionHead:
        seeded(seed)
        head = RecognitionHead(d.phi.shape[1], v_hat.shape[1] if use_click else 1, n_classes, use_visual, use_click,
                               cfg.visual_hidden, True, cfg.dropout)
        if init is not None:
            head.load_state_dict(init.state_dict())
        batches = Batches(tensors, cfg.recognizer_batch_size)

        def loss_fn(model, b):
            return nn.functional.cross_entropy(*restrict_logits(model(b["phi"], b.get("v_hat")), b["y"], columns))

        def val_fn(model) -> dict[str, float]:  # its own accuracy on the domain's validation rows
            return {"val_acc": accuracy_in(d.y[va], head_scores(model, d, v_hat, va), columns)}

        with history_labels(domain=d.name):  # a method's source and target recognisers: two curves, told apart
            fit_head(head, loss_fn, batches, cfg, cfg.recognizer_epochs, seed, "recognizer", val_fn if len(va) else None)
        return head

    return _memoized(key, train)


@torch.no_grad()
def head_scores(head: RecognitionHead, d: DomainData, v_hat: np.ndarray | None, rows: np.ndarray,
                domain: int = SOURCE) -> np.ndarray:
    was = head.training
    head.eval()
    try:
        phi = torch.from_numpy(d.phi[rows])
        vh = None if v_hat is None else torch.from_numpy(v_hat[rows])
        return head(phi, vh, domain).numpy()
    finally:
        head.train(was)


def accuracy_in(y: np.ndarray, logits: np.ndarray, columns: np.ndarray | None = None) -> float:
    """Top-1 accuracy with the argmax taken over ``columns`` only (a domain's label set, eq. 16)."""
    if columns is None:
        return metrics.accuracy(y, logits)
    lg, yy = restrict_logits(torch.from_numpy(np.asarray(logits)), torch.from_numpy(np.asarray(y)), columns)
    return metrics.accuracy(yy.numpy(), lg.numpy())


def correct_in(y: np.ndarray, logits: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """Per row 1.0 / 0.0: is the argmax over ``columns`` (eq. 16) the label? Its mean is :func:`accuracy_in`."""
    lg, yy = np.asarray(logits), np.asarray(y)
    if columns is not None:
        t_lg, t_y = restrict_logits(torch.from_numpy(lg), torch.from_numpy(yy), columns)
        lg, yy = t_lg.numpy(), t_y.numpy()
    return (lg.argmax(axis=1) == yy).astype(float)


def recognition_accuracy(d: DomainData, cfg: HeadConfig, v_hat: np.ndarray | None, use_visual: bool, seed: int,
                         n_classes: int, columns: np.ndarray | None = None,
                         init: RecognitionHead | None = None, keep: bool = False) -> dict:
    """Train a recognizer on the domain's training rows; accuracy on ``val`` and ``test``.

    ``columns`` / ``init`` as :func:`train_recognizer`; ``keep`` adds the trained ``head``.
    ``test_correct``: per test row (``d.rows("test")``, in order) 1.0 / 0.0 correctness, the
    per-item scores the claims are judged on; ``val_correct`` the same per validation row (what
    :func:`clickvision.selection.select_robust` selects settings on).
    """
    head = train_recognizer(d, cfg, v_hat, use_visual, seed, n_classes, columns, init)
    out = {}
    for split in ("val", "test"):
        rows = d.rows(split)
        logits = head_scores(head, d, v_hat, rows)
        out[split] = accuracy_in(d.y[rows], logits, columns)
        out[f"{split}_correct"] = correct_in(d.y[rows], logits, columns)
    if keep:
        out["head"] = head
    return out



ITEM_METRICS = ("position_error_bin", "position_error", "precision_at_a", "precision_at_a_bn", "word_ap")
"""The per-image quantities of :func:`click_metrics` (their means over the images are its values of
the same names): :func:`click_item_values` returns them one value per image."""


def click_item_values(v_true: np.ndarray, v_hat: np.ndarray, valid: np.ndarray, bandwidth: float = 0.01,
                      variant: str = "paper") -> dict[str, np.ndarray]:
    """Per image with a non-zero truth (the rows ``valid`` selects, in order): eq. (9)'s error on the
    binarised prediction (``position_error_bin``) and on the raw one (``position_error``), precision@|A|
    ranked by ``v_hat`` (``precision_at_a``) and by ``BN(v_hat)`` (``precision_at_a_bn``) and word AP
    (``word_ap``); see :func:`click_metrics`, whose values of these names are the means of these arrays.

    The binarisation ``BN(v_hat) > B/2`` uses batch statistics over ALL the selected rows (as in
    :func:`click_metrics`), so an image's value depends on the other rows given: pass the same rows as
    to :func:`click_metrics` (e.g. every source test image) to get that aggregate's per-image terms.
    """
    rows = np.flatnonzero(valid)
    if not len(rows):
        raise ValueError("click_metrics: valid selects no row (every click truth is zero)")
    vt, vp = torch.from_numpy(v_true[rows]), torch.from_numpy(v_hat[rows])
    a_hat = click_losses.binarize_prediction(vp.double(), bandwidth, variant)
    truth = v_true[rows] != 0
    scores = np.asarray(v_hat[rows], dtype=np.float64)
    z = click_losses.sigmoid_input(vp.double()).numpy()
    bn_scores = z if variant == "paper" else scores  # what the sigmoid of eq. (11) reads
    return {"position_error_bin": click_losses.position_error(vt, a_hat.to(vt.dtype)).double().numpy(),
            "position_error": click_losses.position_error(vt, vp.clamp(min=0)).double().numpy(),
            "precision_at_a": np.asarray(metrics.r_precision(truth, scores), dtype=np.float64),
            "precision_at_a_bn": np.asarray(metrics.r_precision(truth, bn_scores), dtype=np.float64),
            "word_ap": np.asarray(metrics.word_average_precision(truth, scores), dtype=np.float64)}


def click_metrics(v_true: np.ndarray, v_hat: np.ndarray, valid: np.ndarray, bandwidth: float = 0.01,
                  variant: str = "paper") -> dict:
    """RMSE-S under both readings, eq. (9) errors, word-ranking scores and Table IV's Ratio on rows with a
    non-zero truth.

    ``rmse_s``: reading 1, sqrt(mean ||N'(v) - N'(v_hat)||^2) (:func:`~clickvision.metrics.rmse_normalized`,
    the docs/READING-NOTES.md pin); ``rmse_s_caffe``: reading 2, Caffe's ``EuclideanLoss`` on normalised
    vectors, 1/(2n) sum ||N'(v) - N'(v_hat)||^2 = 1 - mean cosine for non-zero predictions
    (:func:`~clickvision.metrics.euclidean_loss_normalized`). The paper never defines RMSE-S.

    Eq. (9), ``|A xor A_hat|`` per image with A = the words with a non-zero truth, mean over images:
    ``position_error_bin`` with A_hat the set the position loss trains (eq. 10-11: ``BN(v_hat) > B/2``,
    :func:`~clickvision.losses.click.binarize_prediction`, batch statistics over these rows, as Ratio);
    ``position_error`` the raw reading, A_hat = ``v_hat > 0``. ``true_words``, ``pred_words_bin`` and
    ``pred_words`` are the mean |A| and |A_hat| under the two readings. Word rankings per image against
    A: ``precision_at_a`` (of the |A| words with the highest ``v_hat``, the share in A;
    :func:`~clickvision.metrics.r_precision`), ``precision_at_a_bn`` (the same ranked by ``BN(v_hat)``,
    the sigmoid's input) and ``word_ap`` (average precision of the ``v_hat`` ranking,
    :func:`~clickvision.metrics.word_average_precision`), each a mean over images. The per-image terms of
    eq. (9) and the rankings (:data:`ITEM_METRICS`) are :func:`click_item_values`'s arrays; each value
    here is the plain mean of its array.
    """
    per_image = click_item_values(v_true, v_hat, valid, bandwidth, variant)
    rows = np.flatnonzero(valid)
    vp = torch.from_numpy(v_hat[rows])
    z = click_losses.sigmoid_input(vp.double()).numpy()
    a_hat = click_losses.binarize_prediction(vp.double(), bandwidth, variant)
    truth = v_true[rows] != 0
    means = {k: float(np.mean(per_image[k])) for k in ITEM_METRICS}
    return {"rmse_s": metrics.rmse_normalized(v_true[rows], v_hat[rows]),
            "rmse_s_caffe": metrics.euclidean_loss_normalized(v_true[rows], v_hat[rows]),
            "position_error": means["position_error"],
            "ratio": float(np.mean((z >= 0) & (z <= bandwidth))),
            "position_error_bin": means["position_error_bin"],
            "true_words": float(truth.sum(axis=1).mean()),
            "pred_words_bin": float(a_hat.sum(dim=1).double().mean()),
            "pred_words": float((vp > 0).sum(dim=1).double().mean()),
            "precision_at_a": means["precision_at_a"],
            "precision_at_a_bn": means["precision_at_a_bn"],
            "word_ap": means["word_ap"]}


# --- the joint network (eq. 13-15) ----------------------------------------------------------------

@dataclass
class JointSpec:
    """Eq. (15): lambda, mu, the click loss; ``shared`` classifier; ``two_domain`` (False: MTTDL)."""

    lam: float = 0.4
    mu: float = 1.0
    click: ClickLossSpec = field(default_factory=lambda: ClickLossSpec(tau=0.1))
    shared: bool = True
    two_domain: bool = True


def build_joint_net(data: PaperAData, cfg: HeadConfig, spec: JointSpec) -> MTMDDNet:
    emb = make_embedding(cfg, data)
    head = RecognitionHead(data.feature_dim, data.k, len(data.classes), True, True, cfg.visual_hidden,
                           spec.shared, cfg.dropout)
    return MTMDDNet(emb, head)


def joint_loss(model: MTMDDNet, batch: Mapping, spec: JointSpec, reads_map: bool,
               columns: tuple[np.ndarray | None, np.ndarray | None] = (None, None)) -> click_losses.ClickLossTerms:
    """Eq. (15) on one step's ``{"source": ..., "target": ...}`` batch (eq. 13/14 without a target).

    Source and target rows go through one forward (the batch norms of eq. 7 see both); the
    click loss reads only the source rows' predictions: target rows have no ground truth.
    ``columns``: (source, target) softmax columns -- eq. (16) when the label sets differ.
    """
    c = spec.click
    s, t = batch["source"], batch.get("target")
    sc, tc = columns
    if t is None:
        out = model(s["phi"], s.get("omega"), SOURCE)
        return unseen_category_loss(out["logits"], s["y"], s["v"], out["click"], None, None, sc, tc, spec.lam,
                                    spec.mu, c.tau, c.bandwidth, c.threshold, s["valid"], c.variant)
    n = len(s["y"])
    keys = ("phi", "omega") if reads_map else ("phi",)
    cat = {k: torch.cat([s[k], t[k]]) for k in keys}
    out = model(cat["phi"], cat.get("omega"), torch.cat([s["domain"], t["domain"]]))
    logits, v_hat = out["logits"], out["click"]
    return unseen_category_loss(logits[:n], s["y"], s["v"], v_hat[:n], logits[n:], t["y"], sc, tc, spec.lam,
                                spec.mu, c.tau, c.bandwidth, c.threshold, s["valid"], c.variant)


def train_joint(data: PaperAData, cfg: HeadConfig, spec: JointSpec, seed: int = 0, curve: bool = False) -> FitResult:
    """One network on source (+ target) by eq. (13)/(14)/(15); target rows get no click loss.

    With ``curve`` (or ``cfg.curves``, or ``cfg.patience``) the history also records, at each epoch's end, the validation
    accuracy of the network's own classifier, ``val_acc_s``, (two-domain) ``val_acc_t`` and their mean
    ``val_acc`` (rows ``split == "val"``): the validation curve that shows whether the epochs reached a
    plateau. With ``cfg.patience`` training stops on ``val_acc`` (:func:`train_config`). Evaluating leaves the random
    streams as found, so the trained network is the same with or without it."""
    seeded(seed)
    net = build_joint_net(data, cfg, spec)
    reads_map = net.embedding.reads_map
    src = Batches(domain_tensors(data.source, data.source.rows("train"), reads_map, SOURCE), cfg.batch_size)
    if spec.two_domain:
        tgt = Batches(domain_tensors(data.target, data.target.rows("train"), reads_map, TARGET), cfg.batch_size)
        train_data = {"source": src, "target": tgt}
    else:
        train_data = {"source": src}

    columns = (data.source_columns, data.target_columns)

    def loss_fn(model, b):
        return joint_loss(model, b, spec, reads_map, columns)

    s_val, t_val = data.source.rows("val"), data.target.rows("val")

    def val_fn(model) -> dict[str, float]:
        if not len(s_val) or (spec.two_domain and not len(t_val)):
            return {}
        out = {"val_acc_s": accuracy_in(data.source.y[s_val], joint_outputs(model, data.source, s_val, SOURCE)[0],
                                        data.source_columns)}
        if spec.two_domain:
            out["val_acc_t"] = accuracy_in(data.target.y[t_val], joint_outputs(model, data.target, t_val, TARGET)[0],
                                           data.target_columns)
        out["val_acc"] = float(np.mean(list(out.values())))  # what the stop rule watches: both domains alike
        return out

    has_val = bool(len(s_val)) and (not spec.two_domain or bool(len(t_val)))
    history = fit_head(net, loss_fn, train_data, cfg, cfg.epochs, seed, "joint", val_fn if has_val else None,
                       curve=curve)  # an evaluation per epoch only when needed
    return FitResult(net, history)


@torch.no_grad()
def joint_outputs(net: MTMDDNet, d: DomainData, rows: np.ndarray, domain: int) -> tuple[np.ndarray, np.ndarray]:
    """(logits, v_hat) of ``rows`` through the joint network, one domain, eval mode."""
    was = net.training
    net.eval()
    try:
        omega = torch.from_numpy(d.omega[rows]) if net.embedding.reads_map else None
        out = net(torch.from_numpy(d.phi[rows]), omega, domain)
        return out["logits"].numpy(), out["click"].numpy()
    finally:
        net.train(was)
