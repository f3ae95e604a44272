"""A trainable visual trunk on cached activations, shared by a model's branches.

Every model here used to be a head on frozen, cached backbone features, so no visual
parameter was trainable: paper A's click loss could not reach the recogniser's visual
layers, paper D's CF auxiliary loss could not change the classifier's input, and "one
ConvNet shaped by both losses" did not exist. A :class:`Trunk` runs the backbone's last
``n_blocks`` blocks, trainably, on the cached activation entering them (feature kind
``cut<n>``, :func:`clickvision.features.extract_features`), then pools. Two heads that read
one ``Trunk`` share trainable visual layers: a loss on either branch changes the other's
input (``tests/test_trunk.py`` shows it, and that a frozen trunk does not).

``n_blocks = 0`` is the frozen-feature case (the trunk is the identity on the pooled
vector), so a model can take a ``Trunk`` whatever the depth. How many blocks the default
profile trains is chosen from a measured cost (``bench/bench_trunk.py``: training-step
images/s with 0, 1 and 2 trainable blocks beside the frozen-feature head):
:data:`PROFILE_BLOCKS`.

The cache stays a pure function of the images and the backbone; the trainable copy of the
tail starts from the ImageNet weights, and its batch-norm layers keep their ImageNet
running statistics by default (``freeze_bn=True``: small batches of a few hundred images
would otherwise re-estimate them from noise), while their scale and shift train.
"""
from __future__ import annotations

import copy
import functools

import numpy as np
import torch
from torch import nn

from .backbone import EFFICIENTNET_LITE0, Backbone, load_backbone

#: Trainable blocks per profile, from bench/bench_trunk.py (2 CPU cores, 128 px, batch 64,
#: efficientnet-lite0; one run on a loaded machine): a training step of the frozen-feature head
#: took 2.3 ms, with the last block ("head": 1x1 conv 320 -> 1280, batch norm) trainable 81 ms
#: (36x), with the last two (+ the MBConv block 192 -> 320) 269 ms (118x). One trainable block
#: is what the CPU budget affords for the default profile; the paper profile (a GPU) trains two.
PROFILE_BLOCKS = {"smoke": 1, "default": 1, "paper": 2}


def _pointwise_parts(block: nn.Module) -> tuple[nn.Conv2d, nn.modules.batchnorm._BatchNorm] | None:
    """``(conv, bn)`` when ``block`` is a 1x1 convolution (stride 1, no groups or dilation, no
    padding at that size) followed by batch norm, else None (efficientnet-lite0's "head" is one)."""
    if not isinstance(block, nn.Sequential) or len(block) != 2:
        return None
    conv, bn = block[0], block[1]
    if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.modules.batchnorm._BatchNorm)):
        return None
    if (tuple(conv.kernel_size) != (1, 1) or tuple(conv.stride) != (1, 1) or conv.groups != 1
            or tuple(conv.dilation) != (1, 1) or conv.padding not in ((0, 0), "valid", "same")
            or getattr(conv, "padding_mode", "zeros") != "zeros" or not bn.affine or not bn.track_running_stats):
        return None
    return conv, bn


def _pointwise_frozen_bn(conv: nn.Conv2d, bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` for a 1x1 ``conv`` and a ``bn`` that uses its running statistics, as ONE matrix
    product over the pixels with the batch norm folded into the weights (the usual inference folding,
    kept differentiable: gradients reach ``conv.weight``, ``bn.weight`` and ``bn.bias`` as before).

    On the CPU a training step of efficientnet-lite0's head on 4 x 4 maps took 1.3x less time this
    way than through the convolution and batch-norm kernels (``bench/bench_trunk.py``, one thread,
    a loaded machine), and A.14's and D.05's notebooks 1.5x and 1.7x fewer CPU-seconds; the result
    equals the two-module path to float rounding (``tests/test_trunk.py``). Returns ``(N, C, h, w)``
    (a channels-last view).
    """
    n, c, h, w = x.shape
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    weight = conv.weight.reshape(conv.out_channels, c) * scale[:, None]
    out = torch.addmm(shift, x.permute(0, 2, 3, 1).reshape(n * h * w, c), weight.t())
    return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def trunk_blocks(profile: str, n_blocks: int | None = None) -> int:
    """Trainable blocks for ``profile`` (:data:`PROFILE_BLOCKS`), unless ``n_blocks`` says otherwise."""
    if n_blocks is not None and int(n_blocks) >= 0:
        return int(n_blocks)
    if profile not in PROFILE_BLOCKS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {tuple(PROFILE_BLOCKS)}")
    return PROFILE_BLOCKS[profile]


class Trunk(nn.Module):
    """The last ``n_blocks`` blocks of ``backbone`` as a trainable module, then global pooling.

    ``forward(acts)``: ``acts`` is the cached activation entering those blocks
    (``(N, C, h, w)``, any float dtype) -> pooled ``(N, out_dim)`` float32. With
    ``n_blocks = 0`` ``acts`` is already the pooled vector ``(N, out_dim)`` and is returned
    as float32. ``trainable=False`` (or :meth:`freeze`) fixes every parameter.
    """

    def __init__(self, backbone: Backbone | str = EFFICIENTNET_LITE0, n_blocks: int = 1,
                 trainable: bool = True, freeze_bn: bool = True, fold_pointwise: bool = True) -> None:
        super().__init__()
        bb = load_backbone(backbone) if isinstance(backbone, str) else backbone
        if not isinstance(n_blocks, int) or isinstance(n_blocks, bool) or n_blocks < 0:
            raise ValueError(f"Trunk: n_blocks must be an int >= 0, got {n_blocks!r}")
        self.backbone_name = bb.name
        self.n_blocks = n_blocks
        self.out_dim = bb.feature_dim
        self.freeze_bn = bool(freeze_bn)
        self.fold_pointwise = bool(fold_pointwise)
        named = bb._named_blocks()
        start = bb.cut_index(n_blocks) if n_blocks else len(named)
        self.block_names = [name for name, _ in named[start:]]
        self.blocks = nn.ModuleList(copy.deepcopy(block) for _, block in named[start:])
        self._steps = [bb.block_step(i, name) for i, (name, _) in enumerate(named) if i >= start]
        self.set_trainable(trainable)
        self.train(False)

    # -- trainability -------------------------------------------------------------------
    def set_trainable(self, trainable: bool) -> Trunk:
        """Make every parameter trainable (or fixed); returns self."""
        for p in self.blocks.parameters():
            p.requires_grad_(bool(trainable))
        return self

    def freeze(self) -> Trunk:
        return self.set_trainable(False)

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.blocks.parameters())

    def train(self, mode: bool = True) -> Trunk:
        super().train(mode)
        if mode and self.freeze_bn:
            for m in self.blocks.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    # -- forward ------------------------------------------------------------------------
    def feature_map(self, acts: torch.Tensor) -> torch.Tensor:
        """The last conv map ``(N, out_dim, h, w)`` from cached activations (``n_blocks >= 1``)."""
        if self.n_blocks == 0:
            raise ValueError("Trunk(n_blocks=0) reads pooled vectors and has no conv map; use n_blocks >= 1")
        x = acts.float()
        if x.ndim != 4:
            raise ValueError(f"Trunk(n_blocks={self.n_blocks}) expects cached activations (N, C, h, w) "
                             f"(feature kind 'cut{self.n_blocks}'), got shape {tuple(acts.shape)}")
        for step, block in zip(self._steps, self.blocks):
            x = step(self._fast(block), x)
        return x

    def _fast(self, block: nn.Module):
        """``block`` itself, or (``fold_pointwise``, a 1x1 conv + batch norm on its running statistics)
        the same map as one matrix product (:func:`_pointwise_frozen_bn`)."""
        parts = _pointwise_parts(block) if self.fold_pointwise else None
        if parts is None or parts[1].training:
            return block
        return functools.partial(_pointwise_frozen_bn, *parts)

    def forward(self, acts: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, out_dim)``: the map's global average (``n_blocks = 0``: the input)."""
        if self.n_blocks == 0:
            x = acts.float()
            if x.ndim != 2 or x.shape[1] != self.out_dim:
                raise ValueError(f"Trunk(n_blocks=0) expects pooled features (N, {self.out_dim}), "
                                 f"got shape {tuple(acts.shape)}")
            return x
        return self.feature_map(acts).mean(dim=(2, 3))

    def feature_kind(self) -> str:
        """The cached feature kind this trunk reads (``pooled`` or ``cut<n>``)."""
        return "pooled" if self.n_blocks == 0 else f"cut{self.n_blocks}"

    def extra_repr(self) -> str:
        return (f"backbone={self.backbone_name!r}, n_blocks={self.n_blocks}, blocks={self.block_names}, "
                f"trainable={self.trainable}, freeze_bn={self.freeze_bn}, fold_pointwise={self.fold_pointwise}")


def trunk_inputs(imageset, n_blocks: int, image_size: int = 128, backbone: str = EFFICIENTNET_LITE0,
                 **kwargs) -> np.ndarray:
    """The cached input of a ``Trunk(backbone, n_blocks)`` for ``imageset`` (pooled when ``n_blocks == 0``)."""
    from ..features import cut_kind, extract_features

    kind = "pooled" if n_blocks == 0 else cut_kind(n_blocks)
    return extract_features(imageset, backbone=backbone, image_size=image_size, kind=kind, **kwargs)
