"""Paper A Fig. 11: per-layer gradient magnitudes of the click predictor, end to end.

Heads on cached features have no conv layers to show, so this fine-tunes the last backbone
blocks with the click branch (CONV+biFC) on a small subset of source training images at low
resolution on the CPU (docs/READING-NOTES.md). Three runs, one per loss: ``Count`` (tau = 0, eq. 2),
``Position`` (tau = 1, eq. 10-11) and ``Combined`` (tau = 0.1, eq. 12); each records, every
``every`` iterations, the l2 norm of the loss gradient over each layer's parameters (the
caption of Fig. 11) with :class:`clickvision.train.GradNormRecorder`.

Panels (our EfficientNet-Lite0 has no VGG conv1-5; its last three blocks are the
trainable conv stages, ``n_tail = 3``, kept few because depthwise convolutions are slow to
backpropagate on the CPU): CONV1 = ``_blocks.14`` (first trainable), CONV3 = ``_blocks.15``,
CONV5 = ``head`` (the last 1x1 conv, the pool5 analogue), FC1 = E2 and FC2 = E3 of the word
embedding (and E1, its CONV transformation, as an extra panel). The frozen part of the
backbone runs once (its output is cached: frozen blocks are in eval mode, so every step
would see the same values).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ...models.backbone import load_backbone
from ...models.mtmdd import BackboneSplit, EndToEndClickNet, MTMDDNet, WordEmbedding
from ...train import GradNormRecorder, TrainConfig, Trainer
from .data import PaperAData
from .train import Batches, ClickLossSpec

RUNS = {"Count": 0.0, "Position": 1.0, "Combined": 0.1}
PANELS = {"CONV1": "_blocks.14", "CONV3": "_blocks.15", "CONV5": "head"}
N_TAIL = 3


def subset_rows(data: PaperAData, n_images: int, seed: int) -> np.ndarray:
    """``n_images`` source training rows with a non-zero click feature (seeded)."""
    s = data.source
    rows = s.rows("train")
    rows = rows[s.valid[rows]]
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=min(n_images, len(rows)), replace=False))


@torch.no_grad()
def prefix_activations(split: BackboneSplit, images, rows: np.ndarray, image_size: int,
                       batch_size: int = 64) -> torch.Tensor:
    """Output of the frozen backbone part for ``rows`` of an ImageSet (computed once)."""
    transform = split.backbone.transform(image_size)
    outs = []
    for i in range(0, len(rows), batch_size):
        x = torch.stack([transform(images.load_image(int(r))) for r in rows[i:i + batch_size]])
        outs.append(split.prefix(x))
    return torch.cat(outs)


def gradient_magnitudes(data: PaperAData, images, image_rows: np.ndarray, n_images: int = 192,
                        image_size: int = 64, iterations: int = 300, every: int = 5, batch_size: int = 32,
                        hidden: int = 256, conv_kernels: int = 64, lr: float = 0.01, bandwidth: float = 0.01,
                        threshold: float = 0.16, runs: dict[str, float] | None = None,
                        seed: int = 0) -> pd.DataFrame:
    """Fig. 11: rows ``run, tau, step, layer, grad_norm`` for the Count / Position / Combined runs.

    ``images``: the ImageSet whose rows ``image_rows[i]`` are the source domain's row ``i``
    (``data.source``). Each run starts from the same ImageNet weights and the same seed;
    SGD with momentum 0.9 and weight decay 5e-4 (the authors' solver; ``lr`` raised for
    the short run).
    """
    runs = runs or RUNS
    rows = subset_rows(data, n_images, seed)
    backbone = load_backbone()
    split = BackboneSplit(backbone, N_TAIL, channels_last=True)
    initial = {k: v.clone() for k, v in backbone.state_dict().items()}
    h = prefix_activations(split, images, np.asarray(image_rows)[rows], image_size)
    s = data.source
    tensors = {"h": h, "v": torch.from_numpy(s.clicks[rows]), "valid": torch.from_numpy(s.valid[rows])}
    out = []
    for name, tau in runs.items():
        backbone.load_state_dict(initial)
        split = BackboneSplit(backbone, N_TAIL, channels_last=True)
        torch.manual_seed(seed)
        emb = WordEmbedding("conv_bifc", backbone.feature_dim, data.k, hidden, conv_kernels, 3, 2, 0.5)
        model = EndToEndClickNet(split, MTMDDNet(emb, None))
        loss = ClickLossSpec(tau=tau, bandwidth=bandwidth, threshold=threshold)

        def loss_fn(m, b, loss=loss):
            result = loss(b["v"], m(b["h"])["click"], b["valid"])
            return result.total, result.terms

        layers = {panel: split.layer(block) for panel, block in PANELS.items()}
        layers.update({"E1": emb.conv[0], "FC1": emb.fc1, "FC2": emb.fc2})
        recorder = GradNormRecorder(layers, every=every)
        cfg = TrainConfig(max_steps=iterations, optimizer="sgd", lr=lr, momentum=0.9, weight_decay=5e-4,
                          seed=seed, device="cpu", progress=False)
        params = [p for p in model.parameters() if p.requires_grad]
        Trainer(model, loss_fn, cfg, callbacks=[recorder], params=params).fit(Batches(tensors, batch_size))
        frame = recorder.to_frame()
        frame.insert(0, "tau", tau)
        frame.insert(0, "run", name)
        out.append(frame)
    backbone.load_state_dict(initial)
    return pd.concat(out, ignore_index=True)


def late_ratio(frame: pd.DataFrame, late_from: float = 0.3, a: str = "Combined", b: str = "Count") -> pd.DataFrame:
    """Per layer: median over the late iterations (after ``late_from`` of the run) of run a / run b."""
    last = frame["step"].max()
    late = frame[frame["step"] > late_from * last]
    piv = late.pivot_table(index=["layer", "step"], columns="run", values="grad_norm")
    ratio = (piv[a] / piv[b]).groupby(level="layer").median()
    early = frame[frame["step"] <= late_from * last].pivot_table(index=["layer", "step"], columns="run",
                                                                 values="grad_norm")
    cv = {r: frame[frame["run"] == r].groupby("layer")["grad_norm"].agg(lambda x: x.std() / x.mean())
          for r in frame["run"].unique()}
    out = pd.DataFrame({f"late median {a}/{b}": ratio})
    if len(early):
        out[f"early median {a}/{b}"] = (early[a] / early[b]).groupby(level="layer").median()
    for r, series in cv.items():
        out[f"cv {r}"] = series
    return out


def claims_fig11(ratios: pd.DataFrame, layers: Sequence[str], position: pd.DataFrame | None = None,
                 factor: float = 2.0) -> list:
    """Fig. 11's claims as ``(Claim, data)`` pairs for a :class:`clickvision.claims.Ledger`.

    One fine-tuning run per loss on one seed: the items are the panels (``layers``), so the
    intervals say how the finding varies across the network's layers, not across seeds.
    ``ratios``: :func:`late_ratio` Combined / Count (its ``cv`` columns give the fluctuation
    claim); ``position``: :func:`late_ratio` with ``a="Position"``. "About the same" is an
    equivalence of log2(median late ratio) with 0 within +/- log2(``factor``).
    """
    from ...claims import Claim

    layers = list(layers)
    out = [(Claim("A", "Fig11-combined-tracks-count",
                  "Late in training (after 30 % of the iterations) the combined loss's per-layer gradient norms "
                  "track the count loss's", "structural",
                  reason="the combined loss (eq. 12 at tau = 0.1) is 0.9 x the count loss plus 0.1 x the position "
                         "loss, so its gradients track the count loss's by construction (the late medians of "
                         "Combined / Count are in the table above)"), None)]
    if position is not None:
        pcol = [c for c in position.columns if c.startswith("late median")][0]
        pv = np.log2(position.loc[layers, pcol].to_numpy(float))
        data = pd.DataFrame({"method": ["log2 Position/Count"] * len(layers) + ["log2 1"] * len(layers),
                             "seed": 0, "item": list(range(len(layers))) * 2,
                             "value": np.concatenate([pv, np.zeros(len(layers))])})
        out.append((Claim("A", "Fig11-position-converges-late",
                           "Late in training the position loss's per-layer gradient norms also become about the same "
                           f"as the count loss's: log2 of the late median ratio within +/-{np.log2(factor):g} "
                           f"(a factor {factor:g}), averaged over the panels {', '.join(layers)}", "equivalence",
                           arms=("log2 Position/Count", "log2 1"), margin=float(np.log2(factor))), data))
    if {"cv Position", "cv Count"} <= set(ratios.columns):
        data = pd.concat([pd.DataFrame({"method": r, "seed": 0, "item": range(len(layers)),
                                        "value": ratios.loc[layers, f"cv {r}"].to_numpy(float)})
                          for r in ("Position", "Count")], ignore_index=True)
        out.append((Claim("A", "Fig11-position-fluctuates-more",
                           "The position loss's gradient magnitudes fluctuate more than the count loss's (coefficient "
                           f"of variation over the run, panels {', '.join(layers)} as the items)", "direction",
                           arms=("Position", "Count")), data))
    return out
