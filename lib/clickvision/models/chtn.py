"""Cross-modal Hybrid Transfer Network (CHTN), paper C section 3, on frozen backbone features.

The frozen convolutional layers of the paper (AlexNet conv1-5) are our cached backbone
features, so every pathway here starts at the paper's fc6:

* **source image pathway** ``fc6-s -> fc7-s -> fc8-s`` (classifier over the source labels);
* **target image pathway** ``fc6-i -> fc7-i``, its own parameters (not tied to the source);
* **target text pathway** ``BoW -> batch norm -> fc6-t -> fc7-t``;
* **layer-sharing correlation subnetwork**: ``fc8 -> fc9 -> classifier``, ONE module that
  both the image and the text representation pass through (eq. 7).

Losses (:class:`CHTNLoss`): MMD between source and target image pathways at fc6 and fc7
(eq. 1-2, training images only), source supervision (eq. 3-4), the pair loss between
paired image and text at fc6 and fc7 (eq. 5-6, weighted), and the correlation loss (eq. 7).
At test time each modality's softmax probability vector is its common representation.

Ablations (Table 2) are flags of the same network; each removes exactly what it names:

=============  ==========================================================================
variant        removed
=============  ==========================================================================
``CHTN``       nothing
``NoSrcSp``    the source classifier fc8-s and the source supervision loss (eq. 3)
``NoShare``    the shared fc8/fc9/classifier: fc7-i and fc7-t get one classifier each
``OnlyCross``  the source pathway (so MMD and source supervision) and the shared layers
``NoSource``   the source pathway (so MMD and source supervision); the shared layers stay
               (a control the paper lacks: single-modal transfer with the shared layers)
``NoMMD``      the MMD (eq. 2) only; the source pathway and its classifier stay (a control:
               the target image pathway has its own parameters, so without the MMD nothing
               of the source reaches the target network)
=============  ==========================================================================
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.crossmodal import pair_loss_layers
from ..losses.mmd import mmd2_layers
from .dropout import Dropout

VARIANTS = ("CHTN", "NoSrcSp", "NoShare", "OnlyCross", "NoSource", "NoMMD")


@dataclass(frozen=True)
class VariantFlags:
    """Which parts a variant keeps (see the module docstring's table)."""

    source_pathway: bool
    source_supervision: bool
    shared_layers: bool
    mmd: bool = True

    @classmethod
    def of(cls, variant: str) -> "VariantFlags":
        if variant not in VARIANTS:
            raise ValueError(f"CHTN variant must be one of {VARIANTS}, got {variant!r}")
        source = variant not in ("OnlyCross", "NoSource")
        return cls(source_pathway=source,
                   source_supervision=variant in ("CHTN", "NoShare", "NoMMD"),
                   shared_layers=variant in ("CHTN", "NoSrcSp", "NoSource", "NoMMD"),
                   mmd=source and variant != "NoMMD")


class Pathway(nn.Module):
    """``[batch norm ->] fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout``; returns fc6 and fc7."""

    def __init__(self, in_dim: int, hidden: int, dropout: float = 0.0, input_batch_norm: bool = False) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm1d(in_dim) if input_batch_norm else nn.Identity()
        self.fc6, self.fc7 = nn.Linear(in_dim, hidden), nn.Linear(hidden, hidden)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: D102
        h6 = F.relu(self.fc6(self.input_norm(x)))
        h7 = F.relu(self.fc7(self.drop(h6)))
        return h6, h7


class SharedCorrelation(nn.Module):
    """Layer-sharing correlation subnetwork: ``fc8 -> ReLU -> fc9 -> ReLU -> classifier`` (eq. 7)."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc8, self.fc9 = nn.Linear(in_dim, hidden), nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, n_classes)
        self.drop = Dropout(dropout)

    def forward(self, h7: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = F.relu(self.fc8(self.drop(h7)))
        h = F.relu(self.fc9(self.drop(h)))
        return self.classifier(self.drop(h))


class CHTN(nn.Module):
    """CHTN on feature vectors (module docstring). ``hidden`` = width of fc6/fc7 (paper 4,096),
    ``shared_hidden`` = width of fc8/fc9 (paper 4,096; default ``hidden``)."""

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, n_source_classes: int,
                 hidden: int = 256, shared_hidden: int | None = None, dropout: float = 0.5,
                 variant: str = "CHTN") -> None:
        super().__init__()
        for name, v in (("image_dim", image_dim), ("text_dim", text_dim), ("n_classes", n_classes),
                        ("n_source_classes", n_source_classes), ("hidden", hidden)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"CHTN: {name} must be a positive integer, got {v!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"CHTN: dropout must be in [0, 1), got {dropout!r}")
        self.variant, self.flags = variant, VariantFlags.of(variant)
        shared_hidden = shared_hidden or hidden
        self.source = Pathway(image_dim, hidden, dropout) if self.flags.source_pathway else None
        self.source_classifier = (nn.Linear(hidden, n_source_classes)
                                  if self.flags.source_supervision else None)
        self.image = Pathway(image_dim, hidden, dropout)
        self.text = Pathway(text_dim, hidden, dropout, input_batch_norm=True)
        if self.flags.shared_layers:
            self.shared = SharedCorrelation(hidden, shared_hidden, n_classes, dropout)
            self.image_classifier = self.text_classifier = None
        else:
            self.shared = None
            self.image_classifier = nn.Linear(hidden, n_classes)
            self.text_classifier = nn.Linear(hidden, n_classes)
        self.drop = Dropout(dropout)

    def _classify(self, h7: torch.Tensor, modality: str) -> torch.Tensor:
        if self.shared is not None:
            return self.shared(h7)
        head = self.image_classifier if modality == "image" else self.text_classifier
        return head(self.drop(h7))

    def forward_image(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Target image pathway (+ classifier): ``{"fc6", "fc7", "logits"}``."""
        h6, h7 = self.image(x)
        return {"fc6": h6, "fc7": h7, "logits": self._classify(h7, "image")}

    def forward_text(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Target text pathway (+ classifier): ``{"fc6", "fc7", "logits"}``."""
        h6, h7 = self.text(t)
        return {"fc6": h6, "fc7": h7, "logits": self._classify(h7, "text")}

    def forward_source(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Source image pathway: ``{"fc6", "fc7"}`` and ``"logits"`` when it has a classifier."""
        if self.source is None:
            raise RuntimeError(f"CHTN variant {self.variant!r} has no source pathway")
        h6, h7 = self.source(x)
        out = {"fc6": h6, "fc7": h7}
        if self.source_classifier is not None:
            out["logits"] = self.source_classifier(self.drop(h7))
        return out

    @torch.no_grad()
    def represent(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """Common representation at test time: the softmax probability vector (section 3.2)."""
        if modality not in ("image", "text"):
            raise ValueError(f"modality must be 'image' or 'text', got {modality!r}")
        was = self.training
        self.eval()
        try:
            out = self.forward_image(x) if modality == "image" else self.forward_text(x)
            return out["logits"].softmax(dim=1)
        finally:
            self.train(was)


class CHTNLoss:
    """``loss_fn(model, batch)`` for :class:`~clickvision.train.Trainer`: the weighted sum of
    MMD (eq. 2), source supervision (eq. 3), pair loss (eq. 6) and correlation loss (eq. 7).

    ``batch`` = ``{"target": (image, text, label), "source": (image, label)}`` (the source
    part is ignored by OnlyCross and NoSource). The pair loss is the per-pair mean of eq. (5), summed over
    fc6 and fc7, times ``pair_weight`` (paper: 0.001 for AlexNet's scale; recalibrate, see
    :func:`calibrate_pair_weight`). Returns ``(loss, {term: value})``; terms a variant lacks
    are not logged. ``kernel_num`` / ``kernel_mul`` / ``detach_bandwidth``: the MMD's kernel
    family (:func:`~clickvision.losses.mmd.mmd2`).
    """

    def __init__(self, pair_weight: float = 1e-3, mmd_weight: float = 1.0, source_weight: float = 1.0,
                 correlation_weight: float = 1.0, kernel_num: int = 5, kernel_mul: float = 2.0,
                 detach_bandwidth: bool = True) -> None:
        for name, v in (("pair_weight", pair_weight), ("mmd_weight", mmd_weight),
                        ("source_weight", source_weight), ("correlation_weight", correlation_weight)):
            if not float(v) >= 0:
                raise ValueError(f"CHTNLoss: {name} must be >= 0, got {v!r}")
        self.pair_weight, self.mmd_weight = float(pair_weight), float(mmd_weight)
        self.source_weight, self.correlation_weight = float(source_weight), float(correlation_weight)
        self.kernel_num, self.kernel_mul, self.detach_bandwidth = kernel_num, kernel_mul, detach_bandwidth

    def terms(self, model: CHTN, batch: Mapping) -> dict[str, torch.Tensor]:
        """The unweighted loss terms the model's variant has."""
        image, text, label = batch["target"]
        img, txt = model.forward_image(image), model.forward_text(text)
        out = {"pair": pair_loss_layers([(img["fc6"], txt["fc6"]), (img["fc7"], txt["fc7"])]),
               "correlation": F.cross_entropy(img["logits"], label) + F.cross_entropy(txt["logits"], label)}
        if model.flags.source_pathway:
            s_image, s_label = batch["source"]
            src = model.forward_source(s_image)
            if model.flags.mmd:
                out["mmd"] = mmd2_layers([(src["fc6"], img["fc6"]), (src["fc7"], img["fc7"])],
                                         self.kernel_num, self.kernel_mul, self.detach_bandwidth)
            if "logits" in src:
                out["source"] = F.cross_entropy(src["logits"], s_label)
        return out

    def __call__(self, model: CHTN, batch: Mapping) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t = self.terms(model, batch)
        weights = {"pair": self.pair_weight, "correlation": self.correlation_weight,
                   "mmd": self.mmd_weight, "source": self.source_weight}
        loss = sum(weights[k] * v for k, v in t.items())
        return loss, t


def calibrate_pair_weight(model: CHTN, batch: Mapping, loss: CHTNLoss | None = None) -> float:
    """The pair-loss weight for our feature scale, by the paper's own rule (section 4.1).

    The paper weights the pair loss by 0.001 "because the magnitude of Loss_Cross is ...
    about 1,000 times" the other terms'. We measure the same ratio on one training batch
    with the untrained network: ``weight = 10 ** -round(log10(pair / mean(other terms)))``.
    """
    import math

    loss = loss or CHTNLoss()
    with torch.no_grad():
        was = model.training
        model.eval()
        try:
            t = loss.terms(model, batch)
        finally:
            model.train(was)
    others = [float(v) for k, v in t.items() if k != "pair"]
    ratio = float(t["pair"]) / max(sum(others) / len(others), 1e-12)
    return 10.0 ** -round(math.log10(max(ratio, 1e-12)))
