"""Paper A's networks: word embeddings (click predictors) and the MTMDD-VM family (Fig. 8).

**Word embeddings** (:class:`WordEmbedding`, paper A eq. 3 and eq. 8, Fig. 6):

* ``"fc"`` -- the linear embedding of TDL [7], ``v_hat = E phi`` (eq. 3);
* ``"bifc"`` -- ``E3 f(E2 phi)``, two FC layers with a ReLU ``f`` between;
* ``"conv_fc"`` -- ``E3 E1(omega)``: the CONV transformation then one FC;
* ``"conv_bifc"`` -- ``E3 f(E2 E1(omega))`` (eq. 8, the paper's choice).

``phi`` is the backbone's pooled vector (``in_channels``), ``omega`` its last conv map
(``map_channels``, default the same; docs/READING-NOTES.md: FC and biFC read phi, the CONV variants
read omega). ``E1`` = conv (``conv_kernels`` filters of
``conv_size`` x ``conv_size``, 'same' padding) -> ReLU -> max pool to ``pool`` x ``pool``
(the authors' code: conv, ReLU, max-pool). ``output_relu`` adds the ReLU the text mentions
"to filter out negative word frequencies" (eq. 8 as printed has none).

**One network** (:class:`MTMDDNet`): embedding -> predicted click ``v_hat``; recognition on
``[N(psi(phi)), N(v_hat)]`` (eq. 7, batch norm without learned scale as in the authors'
code), dropout, classifier(s); ``psi`` is an optional trainable visual layer (FC + ReLU,
the heads' stand-in for fine-tuning the ConvNet's fc layers). It covers

| model | how |
|---|---|
| TDL [7] (Fig. 3a) | ``fc`` embedding trained by eq. (2); then a recognizer on the frozen predictions |
| MTTDL (eq. 14) | source-only training with ``multitask_loss(tau=0)``; target recognizer separately |
| MDD-VM (lambda = 1) | two domains, unshared classifiers, click loss only on the source |
| MTMDD-VM | two domains, ``shared_classifier=False`` (one classifier per domain) |
| MTMDD-VM* | two domains, ``shared_classifier=True`` (one classifier for both) |

Two paths: on cached backbone features (``forward(phi, omega, domain)``, CPU default), and
end to end (:class:`EndToEndClickNet`: a :class:`~clickvision.models.backbone.Backbone`
whose last blocks train, ``Backbone.trainable_tail(n)``; used for Fig. 11).
"""
from __future__ import annotations

import torch
from torch import nn

from .backbone import Backbone, EfficientNetLiteBackbone
from .dropout import Dropout

EMBEDDINGS = ("fc", "bifc", "conv_fc", "conv_bifc")
SOURCE, TARGET = 0, 1


class WordEmbedding(nn.Module):
    """A click predictor ``v_hat = h(phi, omega)`` (eq. 3 linear, eq. 8 nonlinear)."""

    def __init__(self, kind: str, in_channels: int, vocab_size: int, hidden: int = 1024, conv_kernels: int = 256,
                 conv_size: int = 3, pool: int = 2, dropout: float = 0.5, output_relu: bool = False,
                 map_channels: int | None = None) -> None:
        super().__init__()
        map_channels = in_channels if map_channels is None else map_channels
        if kind not in EMBEDDINGS:
            raise ValueError(f"WordEmbedding: kind must be one of {EMBEDDINGS}, got {kind!r}")
        for name, value in (("in_channels", in_channels), ("map_channels", map_channels),
                            ("vocab_size", vocab_size), ("hidden", hidden),
                            ("conv_kernels", conv_kernels), ("conv_size", conv_size), ("pool", pool)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"WordEmbedding: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"WordEmbedding: dropout must be in [0, 1), got {dropout!r}")
        self.kind, self.output_relu = kind, bool(output_relu)
        self.reads_map = kind.startswith("conv")
        width = in_channels
        if self.reads_map:  # E1: the "convolutional" transformation (conv, ReLU, pooling)
            self.conv = nn.Sequential(nn.Conv2d(map_channels, conv_kernels, conv_size, padding=conv_size // 2),
                                      nn.ReLU(), nn.AdaptiveMaxPool2d(pool), nn.Flatten())
            width = conv_kernels * pool * pool
        if kind.endswith("bifc"):  # E2, f, E3
            self.fc1 = nn.Linear(width, hidden)
            self.drop = Dropout(dropout)
            width = hidden
        self.fc2 = nn.Linear(width, vocab_size)  # E3 (E for the linear embedding)

    @property
    def layers(self) -> dict[str, nn.Module]:
        """Named transformations: ``E1`` (conv), ``E2`` (first FC of biFC), ``E3`` (output FC)."""
        out: dict[str, nn.Module] = {}
        if self.reads_map:
            out["E1"] = self.conv[0]
        if hasattr(self, "fc1"):
            out["E2"] = self.fc1
        out["E3"] = self.fc2
        return out

    def forward(self, phi: torch.Tensor | None, omega: torch.Tensor | None = None) -> torch.Tensor:
        if self.reads_map:
            if omega is None or omega.ndim != 4:
                raise ValueError(f"{self.kind} embedding reads the conv map omega (N, C, h, w); got "
                                 f"{None if omega is None else tuple(omega.shape)}")
            x = self.conv(omega.float())
        else:
            if phi is None or phi.ndim != 2:
                raise ValueError(f"{self.kind} embedding reads the pooled vector phi (N, C); got "
                                 f"{None if phi is None else tuple(phi.shape)}")
            x = phi
        if hasattr(self, "fc1"):
            x = self.drop(torch.relu(self.fc1(x)))
        x = self.fc2(x)
        return torch.relu(x) if self.output_relu else x


def embedding_parameter_count(kind: str, in_channels: int, vocab_size: int, hidden: int = 1024,
                              conv_kernels: int = 256, conv_size: int = 3, pool: int = 2,
                              map_channels: int | None = None) -> int:
    """Trainable parameters of ``WordEmbedding(kind, in_channels, vocab_size, hidden, conv_kernels, conv_size,
    pool, map_channels=map_channels)`` in closed form (weights and biases; no module is built).

    ``E1`` (CONV kinds): ``map_channels x conv_kernels x conv_size^2 + conv_kernels``, output
    ``conv_kernels x pool^2``; ``E2`` (biFC kinds): ``width x hidden + hidden``; ``E3``: ``width x
    vocab_size + vocab_size``. Dropout, ReLU and pooling have none.
    """
    if kind not in EMBEDDINGS:
        raise ValueError(f"embedding_parameter_count: kind must be one of {EMBEDDINGS}, got {kind!r}")
    map_channels = in_channels if map_channels is None else map_channels
    for name, value in (("in_channels", in_channels), ("map_channels", map_channels), ("vocab_size", vocab_size),
                        ("hidden", hidden), ("conv_kernels", conv_kernels), ("conv_size", conv_size),
                        ("pool", pool)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"embedding_parameter_count: {name} must be a positive integer, got {value!r}")
    count, width = 0, in_channels
    if kind.startswith("conv"):
        count += map_channels * conv_kernels * conv_size * conv_size + conv_kernels
        width = conv_kernels * pool * pool
    if kind.endswith("bifc"):
        count += width * hidden + hidden
        width = hidden
    return count + width * vocab_size + vocab_size


class RecognitionHead(nn.Module):
    """Eq. (7) and the classifier(s): ``[N(psi(phi)), N(v_hat)]`` -> dropout -> FC.

    ``use_visual`` / ``use_click`` pick the parts of the representation (V, C, V+C of
    Table VI); ``visual_hidden > 0`` inserts the trainable visual layer ``psi`` (FC + ReLU).
    ``shared_classifier``: one FC for both domains (MTMDD-VM*), else one per domain.
    """

    def __init__(self, visual_dim: int, click_dim: int, n_classes: int, use_visual: bool = True,
                 use_click: bool = True, visual_hidden: int = 512, shared_classifier: bool = True,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if not (use_visual or use_click):
            raise ValueError("RecognitionHead: use_visual and use_click cannot both be False")
        if n_classes < 2 or visual_hidden < 0:
            raise ValueError(f"RecognitionHead: need n_classes >= 2 and visual_hidden >= 0, got "
                             f"{n_classes}, {visual_hidden}")
        self.use_visual, self.use_click, self.shared = bool(use_visual), bool(use_click), bool(shared_classifier)
        width = 0
        if use_visual:
            self.visual = (nn.Sequential(nn.Linear(visual_dim, visual_hidden), nn.ReLU())
                           if visual_hidden else nn.Identity())
            self.visual_norm = nn.BatchNorm1d(visual_hidden or visual_dim, affine=False)
            width += visual_hidden or visual_dim
        if use_click:
            self.click_norm = nn.BatchNorm1d(click_dim, affine=False)
            width += click_dim
        self.drop = Dropout(dropout)
        self.classifier = nn.Linear(width, n_classes)
        if not self.shared:
            self.target_classifier = nn.Linear(width, n_classes)

    def representation(self, phi: torch.Tensor | None, v_hat: torch.Tensor | None) -> torch.Tensor:
        """``phi_combined`` of eq. (7) (before dropout)."""
        parts = []
        if self.use_visual:
            parts.append(self.visual_norm(self.visual(phi)))
        if self.use_click:
            parts.append(self.click_norm(v_hat))
        return torch.cat(parts, dim=1)

    def forward(self, phi: torch.Tensor | None, v_hat: torch.Tensor | None,
                domain: torch.Tensor | int = SOURCE) -> torch.Tensor:
        z = self.drop(self.representation(phi, v_hat))
        if self.shared:
            return self.classifier(z)
        if isinstance(domain, int):
            return (self.classifier if domain == SOURCE else self.target_classifier)(z)
        is_target = domain.to(z.device).view(-1, 1) == TARGET
        return torch.where(is_target, self.target_classifier(z), self.classifier(z))


class MTMDDNet(nn.Module):
    """One configurable network for TDL, MTTDL, MDD-VM, MTMDD-VM and MTMDD-VM* (Fig. 8).

    ``forward(phi, omega, domain)`` -> ``{"click": v_hat, "logits": o}``; ``domain`` is 0
    (source) / 1 (target) per row, or one int for the whole batch. Source and target rows
    go through one forward, so the batch norms of eq. (7) see both domains. With
    ``head=None`` the network is a bare click predictor (``logits`` absent).
    """

    def __init__(self, embedding: WordEmbedding | None, head: RecognitionHead | None) -> None:
        super().__init__()
        if embedding is None and head is None:
            raise ValueError("MTMDDNet needs an embedding, a head or both")
        if head is not None and head.use_click and embedding is None:
            raise ValueError("MTMDDNet: a head that uses the click feature needs an embedding")
        self.embedding, self.head = embedding, head

    @classmethod
    def build(cls, n_classes: int, feature_dim: int, vocab_size: int, embedding: str | None = "conv_bifc",
              use_visual: bool = True, use_click: bool = True, shared_classifier: bool = True,
              visual_hidden: int = 512, hidden: int = 1024, conv_kernels: int = 256, conv_size: int = 3,
              pool: int = 2, dropout: float = 0.5, output_relu: bool = False) -> "MTMDDNet":
        """Build from plain parameters (see the class and :class:`WordEmbedding`)."""
        wants_click = use_click or not n_classes
        emb = (WordEmbedding(embedding, feature_dim, vocab_size, hidden, conv_kernels, conv_size, pool, dropout,
                             output_relu) if embedding is not None and wants_click else None)
        head = (RecognitionHead(feature_dim, vocab_size, n_classes, use_visual, use_click, visual_hidden,
                                shared_classifier, dropout) if n_classes else None)
        return cls(emb, head)

    def forward(self, phi: torch.Tensor | None, omega: torch.Tensor | None = None,
                domain: torch.Tensor | int = SOURCE) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        v_hat = None
        if self.embedding is not None:
            v_hat = out["click"] = self.embedding(phi, omega)
        if self.head is not None:
            out["logits"] = self.head(phi, v_hat, domain)
        return out


# --- end to end (Fig. 11) ----------------------------------------------------------------------

class BackboneSplit(nn.Module):
    """A backbone cut before its last ``n_tail`` blocks: ``prefix`` (frozen) and ``forward`` (tail).

    ``prefix(x)`` runs the frozen blocks in eval mode without a graph, so its output can be
    computed once and cached (exactly what the frozen part would give every step: frozen
    blocks keep their batch-norm statistics and have no dropout in eval mode);
    ``forward(h)`` runs the trainable tail and returns the last conv map. EfficientNet-Lite
    is cut at any block; other backbones run whole in ``forward`` (``prefix`` is identity).
    """

    def __init__(self, backbone: Backbone, n_tail: int, channels_last: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.trainable = backbone.trainable_tail(n_tail)
        self.names = list(backbone.blocks)
        self.cut = len(self.names) - min(n_tail, len(self.names))
        self.splits = isinstance(backbone, EfficientNetLiteBackbone)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:  # about 2x faster depthwise convs (and their backward) on the CPU
            backbone.to(memory_format=torch.channels_last)

    def _run(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        return self.backbone.run_blocks(x, start, stop)

    @torch.no_grad()
    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        if not self.splits:
            return x
        was = self.backbone.training
        self.backbone.eval()
        try:
            return self._run(x.contiguous(memory_format=self.memory_format), 0, self.cut)
        finally:
            self.backbone.train(was)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h.contiguous(memory_format=self.memory_format)
        if not self.splits:
            return self.backbone.forward_features(h)
        return self._run(h, self.cut, len(self.names))

    def layer(self, name: str) -> nn.Module:
        """A named backbone block (``"head"``, ``"_blocks.15"`` ...)."""
        return self.backbone.blocks[name]


class EndToEndClickNet(nn.Module):
    """Backbone tail + :class:`MTMDDNet` trained end to end (paper A Fig. 8 / Fig. 11).

    Input: the cached output of ``split.prefix`` for an image batch; the tail computes the
    conv map omega, its average pool is phi, and the network's heads follow.
    """

    def __init__(self, split: BackboneSplit, net: MTMDDNet) -> None:
        super().__init__()
        self.split, self.net = split, net

    def forward(self, h: torch.Tensor, domain: torch.Tensor | int = SOURCE) -> dict[str, torch.Tensor]:
        omega = self.split(h)
        return self.net(self.split.backbone.pool(omega), omega, domain)
