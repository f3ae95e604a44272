"""Paper A's MTMDD-VM on a shared trainable visual trunk (issue #18, item 1; notebook A.14).

Every other paper A notebook trains heads on frozen, cached backbone features: the click
branch reads the frozen pooled vector (or conv map) and the only trainable visual layer
(``psi``) sits on the recognition path, so the click loss never reaches a visual parameter the
recogniser uses. MTMDD-VM's mechanism -- one ConvNet shaped by the click loss on the source and
the softmax on both domains -- cannot act there. Here both branches read ONE
:class:`~clickvision.models.trunk.Trunk` (a trainable copy of the backbone's last ``n_blocks``
blocks run on cached activations, feature kind ``cut<n>``):

* the trunk's conv map ``omega`` -> its global average ``phi`` (the pooled trunk output);
* the click embedding reads ``phi`` (FC / biFC) or the map (CONV variants: through a FIXED 1x1
  projection onto the top principal components of the source training rows' initial map,
  :class:`MapProjection`, the equivalent of the frozen path's PCA-reduced map,
  :func:`~.data.reduce_map_channels`; ``map_channels = 0``: the full 1,280 channels);
* the recognition head's ``psi`` reads ``phi`` (:meth:`TrunkMTMDDNet.recognition_input`).

So a step on the click loss alone changes the recognition branch's input for the same images
(``tests/test_paper_a_trunk.py``); with ``n_blocks = 0`` (the frozen pooled vector, today's
path: the "no shared trunk" ablation) it cannot.

Models (:data:`MODELS`), each on the trunk and on frozen features:

* ``recognition-only`` -- the same network and data with lambda = 0 (no click loss; Table VII's
  lambda = 0 column), unshared classifiers, MTMDD-VM's mu;
* ``MTMDD-VM`` -- unshared classifiers at the lambda and mu selected on validation
  (:func:`~.methods.selected_settings`: A.07's lambda, A.08's mu);
* ``MTMDD-VM*`` -- the shared classifier at its own selected lambda and mu.

Every model trains with one stop rule (:class:`StopRule`): Adam (the heads' optimiser), at most
``max_epochs`` epochs, evaluated every epoch on the validation split, monitor ``val_acc`` = the
MEAN of the source and target validation accuracies (both domains train and both are claimed
about), early stop after ``patience`` evaluations without improvement, best weights restored;
the validation curve of every run is returned. Test accuracy per image gives the claims.

Data: :func:`load_trunk_data` (source / target vendor as parameters; the source needs a
SIMULATED click log, built for ``google`` only). Everything runs with one torch thread.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from ... import metrics
from ...losses.unseen import unseen_category_loss
from ...models.backbone import Backbone
from ...models.mtmdd import SOURCE, TARGET, MTMDDNet, RecognitionHead
from ...models.trunk import Trunk
from ...train import TrainConfig, Trainer
from .core import MAP_CHANNELS, SMOKE_ROWS, item_rows
from .data import (
    SOURCE_VENDOR,
    TARGET_VENDOR,
    DomainData,
    PaperAData,
    _rows_by_key,
    check_vendors,
    emoji_set_of,
    load_paper_a_data,
    reduce_map_channels,
    torch_threads,
    with_target_vendor,
)
from .methods import MethodSettings
from .train import (
    Batches,
    FitResult,
    HeadConfig,
    JointSpec,
    correct_in,
    domain_tensors,
    make_embedding,
    seeded,
)

MODELS = ("recognition-only", "MTMDD-VM", "MTMDD-VM*")
TRUNKS = ("frozen", "trunk")  # "frozen": the cached pooled vector (n_blocks = 0); "trunk": the shared trainable trunk
DOMAINS = (("s", "source", SOURCE), ("t", "target", TARGET))


# --- data ----------------------------------------------------------------------------------------

@dataclass
class TrunkData:
    """Paper A's domains plus the trunk's cached input per domain, row-aligned with them.

    ``acts[name]`` (``name`` in ``source`` / ``target``): the activation entering the trunk's
    blocks (``cut<n>``, float16 ``(n, C, h, w)``); empty when ``n_blocks = 0`` (the trunk then
    reads ``phi``, the pooled vector). ``vendors``: (source, target).
    """

    data: PaperAData
    n_blocks: int
    acts: dict[str, np.ndarray] = field(default_factory=dict)
    vendors: tuple[str, str] = (SOURCE_VENDOR, TARGET_VENDOR)

    def domain(self, name: str) -> DomainData:
        if name not in ("source", "target"):
            raise ValueError(f"TrunkData.domain: name must be 'source' or 'target', got {name!r}")
        return getattr(self.data, name)

    def inputs(self, name: str) -> np.ndarray:
        """The trunk's input rows of domain ``name``: ``cut<n>`` activations, or ``phi`` when ``n_blocks = 0``."""
        d = self.domain(name)
        if self.n_blocks == 0:
            return d.phi
        x = self.acts.get(name)
        if x is None or len(x) != len(d.y):
            raise ValueError(f"TrunkData: no cut{self.n_blocks} activations row-aligned with the {name} domain")
        return x

    def frozen(self) -> TrunkData:
        """The same domains read as frozen pooled features (``n_blocks = 0``): the "no shared trunk" ablation."""
        return TrunkData(self.data, 0, {}, self.vendors)


def load_trunk_data(profile: str, n_blocks: int, source_vendor: str = SOURCE_VENDOR,
                    target_vendor: str = TARGET_VENDOR, with_map: bool = False, map_channels: int | None = None,
                    seed: int = 0, image_size: int = 128) -> TrunkData:
    """Paper A's domains for ``profile`` (as :func:`~.core.load_data`) plus the trunk's ``cut<n_blocks>`` input.

    Source and target are emoji vendors (default google -> twitter, exactly ``load_data``'s
    data); the smoke profile subsamples, conv maps (``with_map``, CONV embeddings of the frozen
    ablation) are PCA-reduced to ``map_channels`` (default the profile's). The activations are
    the cached ``extract_features(kind="cut<n>")`` of the same images, matched by key.
    """
    from ...data.emoji import VENDORS
    from ...features import extract_features

    check_vendors(source_vendor, target_vendor)
    if not isinstance(n_blocks, int) or isinstance(n_blocks, bool) or n_blocks < 0:
        raise ValueError(f"load_trunk_data: n_blocks must be an int >= 0, got {n_blocks!r}")
    if profile not in MAP_CHANNELS:
        raise ValueError(f"profile must be one of {tuple(MAP_CHANNELS)}, got {profile!r}")
    data = load_paper_a_data(with_map=with_map, image_size=image_size)
    data = with_target_vendor(data, target_vendor, with_map, image_size)
    if profile == "smoke":
        data = data.subsample(SMOKE_ROWS, seed)
    if with_map:
        data = reduce_map_channels(data, MAP_CHANNELS[profile] if map_channels is None else map_channels)
    acts: dict[str, np.ndarray] = {}
    if n_blocks:
        kind = f"cut{n_blocks}"
        sets: dict[str, object] = {}  # one image set (and one feature read) per distinct set
        for name, vendor in (("source", source_vendor), ("target", target_vendor)):
            which = "base" if vendor in VENDORS else vendor
            if which not in sets:
                emoji = emoji_set_of(vendor)
                sets[which] = (emoji, extract_features(emoji, image_size=image_size, kind=kind))
            emoji, feats = sets[which]
            d = getattr(data, name)
            rows = _rows_by_key(emoji.items, d.items["key"].astype(str).tolist(), f"load_trunk_data ({name})")
            acts[name] = feats[rows]
    return TrunkData(data, n_blocks, acts, (source_vendor, target_vendor))


# --- the network ---------------------------------------------------------------------------------

class MapProjection(nn.Module):
    """A FIXED 1x1 projection of a conv map onto its top ``n_channels`` principal components.

    ``forward(omega)``: ``(N, C, h, w)`` -> ``(N, n_channels, h, w)`` = ``basis^T (omega - mean)``
    per position. Built by :meth:`fit` from maps of training rows only (centred PCA over every
    position's channel vector, as :func:`~.data.reduce_map_channels`); the buffers never
    train, so gradients pass through it to the trunk unchanged in direction.
    """

    def __init__(self, mean: torch.Tensor, basis: torch.Tensor) -> None:
        super().__init__()
        if mean.ndim != 1 or basis.ndim != 2 or basis.shape[0] != mean.shape[0]:
            raise ValueError(f"MapProjection: need mean (C,) and basis (C, k), got {tuple(mean.shape)}, "
                             f"{tuple(basis.shape)}")
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("basis", basis.float().clone())

    @classmethod
    def fit(cls, maps: np.ndarray | torch.Tensor, n_channels: int) -> MapProjection:
        """The projection onto the top ``n_channels`` components of ``maps`` ``(N, C, h, w)`` (training rows)."""
        x = torch.as_tensor(np.asarray(maps) if not isinstance(maps, torch.Tensor) else maps).float()
        if x.ndim != 4 or not len(x):
            raise ValueError(f"MapProjection.fit: maps must be (N, C, h, w) with N >= 1, got {tuple(x.shape)}")
        c = x.shape[1]
        if not isinstance(n_channels, int) or not 0 < n_channels <= c:
            raise ValueError(f"MapProjection.fit: n_channels must be an int in 1..{c}, got {n_channels!r}")
        vectors = x.permute(0, 2, 3, 1).reshape(-1, c)
        mean = vectors.double().mean(dim=0)
        centred = vectors.double() - mean
        _, eigvec = torch.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
        return cls(mean.float(), eigvec.flip(1)[:, :n_channels].float())

    @property
    def out_channels(self) -> int:
        return int(self.basis.shape[1])

    def forward(self, omega: torch.Tensor) -> torch.Tensor:
        if omega.ndim != 4 or omega.shape[1] != self.basis.shape[0]:
            raise ValueError(f"MapProjection expects (N, {self.basis.shape[0]}, h, w), got {tuple(omega.shape)}")
        om = omega.float().permute(0, 2, 3, 1) - self.mean
        return (om @ self.basis).permute(0, 3, 1, 2)


class TrunkMTMDDNet(nn.Module):
    """:class:`~clickvision.models.mtmdd.MTMDDNet` whose click and recognition branches read one :class:`Trunk`.

    ``forward(x, omega=None, domain)``: ``x`` is the trunk's input (``cut<n>`` activations; the
    pooled vector when ``trunk.n_blocks = 0``); the trunk's pooled output is ``phi`` for both the
    embedding and ``psi``; CONV embeddings read the trunk's map through ``projection`` (or the
    full map when ``projection`` is None). With ``n_blocks = 0`` there is no map: a CONV
    embedding then reads ``omega`` as given (the frozen path's cached, reduced map).
    """

    def __init__(self, trunk: Trunk, net: MTMDDNet, projection: MapProjection | None = None) -> None:
        super().__init__()
        if net.head is None:
            raise ValueError("TrunkMTMDDNet: the network needs a recognition head")
        self.trunk, self.net, self.projection = trunk, net, projection

    @property
    def reads_map(self) -> bool:
        return self.net.embedding is not None and self.net.embedding.reads_map

    def visual(self, x: torch.Tensor, omega: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(``phi``, ``omega``) the heads read: the trunk's pooled output and (CONV) its (projected) map."""
        if self.trunk.n_blocks == 0:
            if self.reads_map and omega is None:
                raise ValueError("TrunkMTMDDNet(n_blocks=0): a CONV embedding needs the cached map omega")
            return self.trunk(x), omega
        fmap = self.trunk.feature_map(x)
        phi = fmap.mean(dim=(2, 3))
        if not self.reads_map:
            return phi, None
        return phi, (fmap if self.projection is None else self.projection(fmap))

    def recognition_input(self, x: torch.Tensor, omega: torch.Tensor | None = None) -> torch.Tensor:
        """What the recognition head's ``psi`` reads for these images: the pooled trunk output."""
        return self.visual(x, omega)[0]

    def forward(self, x: torch.Tensor, omega: torch.Tensor | None = None,
                domain: torch.Tensor | int = SOURCE) -> dict[str, torch.Tensor]:
        phi, om = self.visual(x, omega)
        return self.net(phi, om, domain)


def build_trunk_net(tdata: TrunkData, cfg: HeadConfig, spec: JointSpec,
                    backbone: str | Backbone = "efficientnet-lite0", map_channels: int | None = None, profile: str = "default") -> TrunkMTMDDNet:
    """The joint network of ``spec`` (shared / unshared classifier) on a trunk of ``tdata.n_blocks`` blocks.

    CONV embeddings on a trainable trunk read its map through a :class:`MapProjection` fitted on the
    source training rows' initial map (the cached map, which the untrained trunk reproduces) to
    ``map_channels`` (default the profile's :data:`~.core.MAP_CHANNELS`; 0: the full map).
    """
    data = tdata.data
    trunk = Trunk(backbone, tdata.n_blocks)
    projection, map_dim = None, data.map_channels
    if cfg.embedding.startswith("conv") and tdata.n_blocks:
        k = MAP_CHANNELS[profile] if map_channels is None else int(map_channels)
        rows = data.source.rows("train")
        with torch.no_grad():
            fmap = trunk.feature_map(torch.from_numpy(np.ascontiguousarray(tdata.inputs("source")[rows])))
        projection = MapProjection.fit(fmap, k) if k else None
        map_dim = k or int(fmap.shape[1])
    emb = make_embedding(cfg, data) if map_dim == data.map_channels else _embedding_with_map(cfg, data, map_dim)
    head = RecognitionHead(data.feature_dim, data.k, len(data.classes), True, True, cfg.visual_hidden, spec.shared,
                           cfg.dropout)
    return TrunkMTMDDNet(trunk, MTMDDNet(emb, head), projection)


def _embedding_with_map(cfg: HeadConfig, data: PaperAData, map_channels: int):
    from ...models.mtmdd import WordEmbedding

    return WordEmbedding(cfg.embedding, data.feature_dim, data.k, cfg.hidden, cfg.conv_kernels, cfg.conv_size,
                         cfg.pool, cfg.dropout, cfg.output_relu, map_channels)


# --- losses --------------------------------------------------------------------------------------

def trunk_joint_loss(model: TrunkMTMDDNet, batch: Mapping, spec: JointSpec,
                     columns: tuple[np.ndarray | None, np.ndarray | None] = (None, None)):
    """Eq. (15) / (16) on one step's ``{"source": ..., "target": ...}`` batch through the trunk.

    As :func:`~.train.joint_loss`: source and target rows go through one forward (the
    trunk and the batch norms of eq. 7 see both); the click loss reads only the source rows.
    Batch keys: ``x`` (the trunk's input), ``omega`` (frozen CONV only), ``y``, ``domain``, and
    on the source ``v``, ``valid``.
    """
    c = spec.click
    s, t = batch["source"], batch["target"]
    n = len(s["y"])
    omega = torch.cat([s["omega"], t["omega"]]) if "omega" in s else None
    out = model(torch.cat([s["x"], t["x"]]), omega, torch.cat([s["domain"], t["domain"]]))
    logits, v_hat = out["logits"], out["click"]
    sc, tc = columns
    return unseen_category_loss(logits[:n], s["y"], s["v"], v_hat[:n], logits[n:], t["y"], sc, tc, spec.lam,
                                spec.mu, c.tau, c.bandwidth, c.threshold, s["valid"], c.variant)


def click_loss_only(model: TrunkMTMDDNet, source: Mapping, spec: JointSpec) -> torch.Tensor:
    """The click loss of eq. (12) alone (no softmax) on source rows: what reaches the trunk from the click branch."""
    out = model(source["x"], source.get("omega"), SOURCE)
    return spec.click(source["v"], out["click"], source["valid"]).total


# --- training ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StopRule:
    """One stop rule for every compared model: at most ``max_epochs``, validation every epoch on
    ``val_acc`` (the mean of source and target validation accuracy), stop after ``patience``
    evaluations without improvement (never before ``min_epochs``), best weights restored."""

    max_epochs: int = 12
    patience: int = 3
    min_epochs: int = 1

    def __post_init__(self) -> None:
        for name in ("max_epochs", "patience", "min_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"StopRule.{name} must be a positive integer, got {v!r}")
        if self.min_epochs > self.max_epochs:
            raise ValueError(f"StopRule: min_epochs ({self.min_epochs}) exceeds max_epochs ({self.max_epochs})")


def _tensors(tdata: TrunkData, name: str, rows: np.ndarray, domain: int, with_omega: bool) -> dict[str, torch.Tensor]:
    d = tdata.domain(name)
    out = domain_tensors(d, rows, with_omega, domain)
    del out["phi"]
    out["x"] = torch.from_numpy(np.ascontiguousarray(tdata.inputs(name)[rows]))
    return out


@torch.no_grad()
def trunk_logits(model: TrunkMTMDDNet, tdata: TrunkData, name: str, rows: np.ndarray,
                 chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(logits, v_hat) of ``rows`` of domain ``name`` (eval mode, its own classifier)."""
    domain = SOURCE if name == "source" else TARGET
    was = model.training
    model.eval()
    try:
        d, x = tdata.domain(name), tdata.inputs(name)
        logits, clicks = [], []
        for i in range(0, len(rows), chunk):
            r = rows[i:i + chunk]
            omega = (torch.from_numpy(np.ascontiguousarray(d.omega[r]))
                     if model.reads_map and tdata.n_blocks == 0 else None)
            out = model(torch.from_numpy(np.ascontiguousarray(x[r])), omega, domain)
            logits.append(out["logits"])
            clicks.append(out["click"])
        return torch.cat(logits).numpy(), torch.cat(clicks).numpy()
    finally:
        model.train(was)


def _columns(data: PaperAData, name: str):
    return data.source_columns if name == "source" else data.target_columns


def validation_accuracy(model: TrunkMTMDDNet, tdata: TrunkData) -> dict[str, float]:
    """``val_acc_s``, ``val_acc_t`` and their mean ``val_acc`` (the stop rule's monitor)."""
    out = {}
    for dom, name, _ in DOMAINS:
        d = tdata.domain(name)
        rows = d.rows("val")
        out[f"val_acc_{dom}"] = float(correct_in(d.y[rows], trunk_logits(model, tdata, name, rows)[0],
                                                 _columns(tdata.data, name)).mean())
    out["val_acc"] = 0.5 * (out["val_acc_s"] + out["val_acc_t"])
    return out


def train_trunk_joint(tdata: TrunkData, cfg: HeadConfig, spec: JointSpec, stop: StopRule, seed: int = 0,
                      trunk_lr_scale: float = 1.0, profile: str = "default",
                      backbone: str | Backbone = "efficientnet-lite0") -> FitResult:
    """Train the joint network of ``spec`` on ``tdata``'s trunk (frozen when ``n_blocks = 0``) under ``stop``.

    Adam at ``cfg.lr`` (the heads' optimiser), the trunk's parameters at ``trunk_lr_scale`` x that
    lr (a param group; 1: the same). The History holds the validation curve (``val_acc``,
    ``val_acc_s``, ``val_acc_t`` per epoch) and ``attrs`` the best and stop steps.
    """
    if not spec.two_domain:
        raise ValueError("train_trunk_joint trains on both domains (spec.two_domain=True)")
    if not trunk_lr_scale > 0:
        raise ValueError(f"trunk_lr_scale must be > 0, got {trunk_lr_scale!r}")
    seeded(seed)
    net = build_trunk_net(tdata, cfg, spec, backbone, profile=profile)
    with_omega = net.reads_map and tdata.n_blocks == 0
    data = tdata.data
    train_data = {name: Batches(_tensors(tdata, name, tdata.domain(name).rows("train"), domain, with_omega),
                                cfg.batch_size) for _, name, domain in DOMAINS}
    columns = (data.source_columns, data.target_columns)
    trunk_params = [p for p in net.trunk.parameters() if p.requires_grad]
    head_params = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("trunk.")]
    groups = [{"params": head_params}]
    if trunk_params:
        groups.append({"params": trunk_params, "lr": cfg.lr * trunk_lr_scale})
    steps_per_epoch = max(len(b) for b in train_data.values())
    config = TrainConfig(epochs=stop.max_epochs, optimizer="adam", lr=cfg.lr, weight_decay=cfg.weight_decay,
                         seed=seed, device=cfg.device, progress=False, monitor="val_acc", mode="max",
                         patience=stop.patience, min_steps=stop.min_epochs * steps_per_epoch, restore_best=True)

    def loss_fn(model, b):
        out = trunk_joint_loss(model, b, spec, columns)
        return out.total, out.terms

    trainer = Trainer(net, loss_fn, config, params=groups)
    history = trainer.fit(train_data, val_fn=lambda model: validation_accuracy(model, tdata))
    return FitResult(net, history)


# --- the design: {recognition-only, MTMDD-VM, MTMDD-VM*} x {frozen, trunk} x seeds ---------------------

def model_spec(model: str, settings: MethodSettings) -> JointSpec:
    """The eq. (15) spec of ``model`` (:data:`MODELS`) at the validated settings.

    ``recognition-only`` is MTMDD-VM with lambda = 0 (no click loss; same network, data and mu).
    """
    if model == "recognition-only":
        base = settings.joint("MTMDD-VM")
        return JointSpec(lam=0.0, mu=base.mu, click=base.click, shared=False, two_domain=True)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    return settings.joint(model)


def trunk_run(tdata: TrunkData, cfg: HeadConfig, spec: JointSpec, stop: StopRule, seed: int,
              trunk_lr_scale: float = 1.0, profile: str = "default", backbone: str | Backbone = "efficientnet-lite0",
              **labels) -> tuple[list[dict], pd.DataFrame]:
    """Train one model; tidy rows (``acc_s``, ``acc_t``, ``val_acc_*``, ``rmse_s`` / ``rmse_s_caffe`` (the two
    readings, :func:`~.train.click_metrics`), ``best_epoch``,
    ``epochs_run``, and per test image ``correct_s`` / ``correct_t`` with ``item``) and its validation curve
    (``epoch, name, value`` for ``val_acc`` / ``val_acc_s`` / ``val_acc_t``), both with ``labels`` and ``seed``."""
    fit = train_trunk_joint(tdata, cfg, spec, stop, seed, trunk_lr_scale, profile, backbone)
    net, data = fit.model, tdata.data
    rows: list[dict] = []
    for split in ("test", "val"):
        p = "" if split == "test" else "val_"
        for dom, name, _ in DOMAINS:
            d = tdata.domain(name)
            r = d.rows(split)
            logits, v_hat = trunk_logits(net, tdata, name, r)
            correct = correct_in(d.y[r], logits, _columns(data, name))
            rows.append({"metric": f"{p}acc_{dom}", "value": float(correct.mean())})
            if split == "test":
                rows += item_rows(correct, d, dom)
            if name == "source":
                ok = d.valid[r]
                rows.append({"metric": f"{p}rmse_s", "value": float(metrics.rmse_normalized(d.clicks[r][ok],
                                                                                             v_hat[ok]))})
                rows.append({"metric": f"{p}rmse_s_caffe",
                             "value": float(metrics.euclidean_loss_normalized(d.clicks[r][ok], v_hat[ok]))})
    h = fit.history
    val = h[h["split"] == "val"]
    kept = val.loc[val["step"] == h.attrs.get("best_step", -1), "epoch"]
    rows += [{"metric": "best_epoch", "value": float(kept.iloc[0]) if len(kept) else float("nan")},
             {"metric": "epochs_run", "value": float(val["epoch"].max())}]
    rows = [{**labels, "seed": seed, **r} for r in rows]
    curve = val[val["name"].isin(["val_acc", "val_acc_s", "val_acc_t"])][["epoch", "name", "value"]]
    return rows, curve.assign(seed=seed, **labels).reset_index(drop=True)


def shared_trunk_design(tdata: TrunkData, cfg: HeadConfig, settings: MethodSettings, seeds: Sequence[int],
                        stop: StopRule, models: Sequence[str] = MODELS, trunks: Sequence[str] = TRUNKS,
                        trunk_lr_scale: float = 1.0, profile: str = "default") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every model x trunk x seed under one stop rule: (tidy rows, validation curves), columns ``model``, ``trunk``.

    ``trunk = "trunk"`` trains on ``tdata`` (its ``n_blocks`` trainable blocks), ``"frozen"`` on its pooled
    features (:meth:`TrunkData.frozen`); the same specs, budget and stop rule for both.
    """
    bad = [m for m in models if m not in MODELS] + [t for t in trunks if t not in TRUNKS]
    if bad or not models or not trunks or not seeds:
        raise ValueError(f"shared_trunk_design: models must be among {MODELS}, trunks among {TRUNKS}, seeds "
                         f"non-empty; got {list(models)}, {list(trunks)}, {list(seeds)}")
    if "trunk" in trunks and tdata.n_blocks == 0:
        raise ValueError("shared_trunk_design: tdata has n_blocks = 0, no trainable trunk to compare")
    rows, curves = [], []
    with torch_threads(1):
        for seed in seeds:
            for trunk in trunks:
                td = tdata if trunk == "trunk" else tdata.frozen()
                for model in models:
                    r, c = trunk_run(td, cfg, model_spec(model, settings), stop, seed, trunk_lr_scale, profile,
                                     model=model, trunk=trunk)
                    rows += r
                    curves.append(c)
    frame = pd.DataFrame(rows)
    if "item" not in frame.columns:
        frame["item"] = np.nan
    return frame, pd.concat(curves, ignore_index=True)


def arm_intervals(rows: pd.DataFrame, by: Sequence[str] = ("trunk", "model"), n_resamples: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Per arm and domain: test accuracy (mean over seeds and test images) with the workbook's two-level
    bootstrap interval (:func:`clickvision.claims.resample_means`, level :data:`~clickvision.claims.CONFIDENCE`)."""
    from ...claims import CONFIDENCE, resample_means, score_grid

    out = []
    tail = (1 - CONFIDENCE) / 2
    for dom, _, _ in DOMAINS:
        sub = rows[rows["metric"] == f"correct_{dom}"]
        if sub.empty:
            raise ValueError(f"arm_intervals: no correct_{dom} rows")
        labels = sub[list(by)].astype(str).agg(" | ".join, axis=1)
        data = sub.assign(method=labels)[["method", "seed", "item", "value"]]
        arms = tuple(dict.fromkeys(labels))
        grid = score_grid(data, arms, f"arm_intervals({dom})")
        if grid.n_seeds * grid.n_items < 2:
            draws = np.repeat(grid.values.mean(axis=(1, 2))[None, :], 2, axis=0)
        else:
            draws = resample_means(grid.values, n_resamples, seed)
        lo, hi = np.quantile(draws, [tail, 1 - tail], axis=0)
        for i, arm in enumerate(arms):
            keys = dict(zip(by, arm.split(" | ")))
            out.append({**keys, "domain": dom, "acc": float(grid.values[i].mean()), "ci_low": float(lo[i]),
                        "ci_high": float(hi[i]), "n_seeds": grid.n_seeds, "n_items": grid.n_items})
    return pd.DataFrame(out)


# --- the paper's numbers and the claims -------------------------------------------------------------

def _paper_cell(row: str, model: str, settings: MethodSettings) -> float:
    """Table VII's ``row`` (percent) for ``model`` at the lambda it runs with here (recognition-only: lambda = 0
    of the unshared model); NaN when the paper printed no such column."""
    from .joint import PAPER_TABLE_VII, model_name

    shared = model == "MTMDD-VM*"
    lam = 0.0 if model == "recognition-only" else float(settings.lam[model])
    col = (model_name(shared, lam), lam)
    return float(PAPER_TABLE_VII.loc[row, col]) if col in PAPER_TABLE_VII.columns else float("nan")


def paper_table(rows: pd.DataFrame, settings: MethodSettings) -> pd.DataFrame:
    """Acc-S / Acc-T (percent, mean and sd over seeds) per model and trunk, and the paper's Table VII where it
    maps (labelled as the paper's: a fine-tuned VGG trunk, so beside our trunk rows only)."""
    acc = rows[rows["metric"].isin(["acc_s", "acc_t"])]
    summ = acc.groupby(["model", "trunk", "metric"])["value"].agg(["mean", "std"]).mul(100).unstack("metric")
    summ.columns = [f"{m} ({'ours' if s == 'mean' else 'ours sd'})" for s, m in summ.columns]
    out = summ.reset_index()
    for label, row in (("acc_s", "Acc-S (%)"), ("acc_t", "Acc-T (%)")):
        out[f"{label} (paper, Table VII)"] = [_paper_cell(row, m, settings) if t == "trunk" else np.nan
                                              for m, t in zip(out["model"], out["trunk"])]
    out["_order"] = out["model"].map({m: i for i, m in enumerate(MODELS)})
    out = out.sort_values(["trunk", "_order"])
    cols = ["model", "trunk"] + [c for d in ("acc_s", "acc_t") for c in
                                 (f"{d} (ours)", f"{d} (ours sd)", f"{d} (paper, Table VII)")]
    return out[cols].round(1).reset_index(drop=True)


def _effect(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def gain_items(rows: pd.DataFrame, dom: str = "t") -> pd.DataFrame:
    """Per (seed, test image) the click loss's gain (MTMDD-VM minus recognition-only correctness) on each trunk:
    tidy ``method`` = ``"gain, shared trunk"`` / ``"gain, frozen features"``, ``seed``, ``item``, ``value``."""
    from .claims import scores

    arms = {f"{m}|{t}": {"model": m, "trunk": t} for m in ("MTMDD-VM", "recognition-only") for t in TRUNKS}
    d = scores(rows, f"correct_{dom}", arms)
    w = d.pivot_table(index=["seed", "item"], columns="method", values="value")
    names = {"trunk": "gain, shared trunk", "frozen": "gain, frozen features"}
    out = [(w[f"MTMDD-VM|{t}"] - w[f"recognition-only|{t}"]).rename("value").reset_index().assign(method=names[t])
           for t in TRUNKS]
    return pd.concat(out, ignore_index=True)[["method", "seed", "item", "value"]]


def claims_shared_trunk(rows: pd.DataFrame, settings: MethodSettings) -> list:
    """A.14's claims as ``(Claim, data)`` pairs, per test image over the seeds (see the notebook)."""
    from .claims import DOMAIN, A, scores

    lam = float(settings.lam["MTMDD-VM"])
    out = []
    for dom, ident in (("t", "target"), ("s", "source")):
        label = DOMAIN[dom]
        arms = {"MTMDD-VM, shared trunk": {"model": "MTMDD-VM", "trunk": "trunk"},
                "recognition-only, shared trunk": {"model": "recognition-only", "trunk": "trunk"}}
        paper = _paper_cell(f"{label} (%)", "MTMDD-VM", settings) - _paper_cell(f"{label} (%)", "recognition-only",
                                                                                settings)
        out.append((A(f"A14-trunk-click-loss-helps-{ident}",
                      f"On a shared trainable visual trunk, training with the click loss (MTMDD-VM, lambda = {lam:g}) "
                      f"gives a higher {label} than the same network without it (lambda = 0, recognition only)",
                      "direction", arms=tuple(arms), paper_effect=_effect(paper / 100)),
                    scores(rows, f"correct_{dom}", arms)))
    if "frozen" in set(rows["trunk"]):
        out.append((A("A14-sharing-adds-to-click-gain",
                      "The click loss's Acc-T gain over recognition-only is larger on the shared trainable trunk than "
                      "on frozen features (judged on per-image differences: gain on the trunk minus gain frozen, "
                      "paired by seed and image)", "direction",
                      arms=("gain, shared trunk", "gain, frozen features")), gain_items(rows, "t")))
    if "MTMDD-VM*" in set(rows["model"]):
        arms = {"MTMDD-VM*, shared trunk": {"model": "MTMDD-VM*", "trunk": "trunk"},
                "MTMDD-VM, shared trunk": {"model": "MTMDD-VM", "trunk": "trunk"}}
        paper = _paper_cell("Acc-T (%)", "MTMDD-VM*", settings) - _paper_cell("Acc-T (%)", "MTMDD-VM", settings)
        out.append((A("A14-trunk-shared-classifier-better",
                      "On the shared trunk, MTMDD-VM* (one classifier for both domains) has a higher Acc-T than "
                      "MTMDD-VM (one classifier per domain), each at its own selected lambda and mu", "direction",
                      arms=tuple(arms), paper_effect=_effect(paper / 100)),
                    scores(rows, "correct_t", arms)))
    return out
