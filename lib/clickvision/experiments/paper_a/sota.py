"""Paper A, section IV-C / Table VIII: MTMDD-VM against the state of the art (notebook A.10).

The registry (:mod:`.methods`) runs VGGimg, VGGsrc, TDL[7], TDL, MTTDL, MTMDD-VM
("OURS") and MTMDD-VM* ("OURS*"); this module adds the remaining baselines, each returning
the registry's tidy rows ``method, seed, metric, value`` (``acc_s``, ``acc_t`` on test,
``val_acc_s``, ``val_acc_t``), all on cached backbone features with one torch thread:

* ``DAN`` (Long et al., 2015) -- a visual head (trainable layer psi of width
  ``cfg.visual_hidden`` + batch norm + one classifier) trained on source AND target labels at
  once (the paper's "unified training", both domains labelled), plus the multi-kernel MMD
  between the two domains' psi activations (:func:`~clickvision.losses.domain.dan_mmd_loss`,
  weight ``SotaSettings.mmd_weight``). Acc-S and Acc-T from the one model.
* ``DANN`` (Ganin et al., 2016) -- the same head with a domain adversary reading psi through
  gradient reversal, its weight following Ganin's schedule ``2 / (1 + exp(-10 p)) - 1`` over
  training progress ``p`` (Adam at a constant rate: Ganin's learning-rate annealing is not used).
* ``SCDA`` (Wei et al., 2017) -- training-free descriptors of the backbone's last conv map
  (:func:`~clickvision.models.scda.scda_descriptors`) and a linear SVM with ``C = 1`` (the
  paper's footnote 12) per domain. No fine-tuning of the backbone (the paper fine-tuned it).
* ``SF`` -- score fusion: a visual-only and a click-only recogniser (on TDL's predicted click
  feature) per domain, probabilities fused with the click weight chosen on validation from
  {0.2, 0.4, 0.5, 0.6, 0.8} (footnote 13; :func:`clickvision.fusion.score_fusion`); the chosen
  weight is reported (``click_weight_s`` / ``click_weight_t``).
* ``VSE++`` (Faghri et al., 2018) -- a click predictor from a joint image / word space trained
  on the source with the max-of-hinges loss (:func:`clickvision.losses.vse.vse_hinge_loss`):
  image side ``f(phi)`` an MLP, word side ``g(v) = W v`` a linear map of the K-dim click TF-IDF
  vector (no bias, so ``g(v) = sum_j v_j g(e_j)``). The predicted click feature of an image is
  its cosine similarity to the K single-word vectors ``g(e_j)`` (our reading: the paper does
  not say how VSE++ yields a click feature). Then V + C recognisers per domain, as TDL does.
* ``RACNN`` is left out (:data:`LEFT_OUT`).

:func:`table_viii` runs any of :data:`METHODS` and returns one tidy frame;
:func:`claims_table_viii` judges the section's orderings (per target test image over the seeds).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ... import fusion, metrics, runtime
from ...losses.domain import DomainAdversary, dan_mmd_loss, dann_lambda
from ...losses.unseen import restrict_logits
from ...losses.vse import cosine_similarities, vse_hinge_loss
from ...models.dropout import Dropout
from ...models.mlp import MLP
from ...models.mtmdd import SOURCE, TARGET
from ...models.scda import scda_descriptors, scda_svm
from .data import DomainData, PaperAData, torch_threads
from .methods import METHODS as REGISTRY_METHODS
from .methods import MethodSettings, run_methods
from .core import item_rows, pooled_note
from .train import (Batches, HeadConfig, fit_head, history_labels, validates, accuracy_in, correct_in, domain_tensors, head_scores,
                            predict_clicks, recognition_accuracy, reuse_identical_fits, seeded, train_click_predictor)

SOTA_METHODS = ("DAN", "DANN", "SCDA", "SF", "VSE++")
#: Table VIII's columns in the paper's order (RACNN left out).
METHODS = ("DAN", "DANN", "VGGimg", "VGGsrc", "SCDA", "SF", "VSE++", "TDL[7]", "TDL", "MTTDL", "MTMDD-VM",
           "MTMDD-VM*")
#: The paper's names where they differ from ours.
DISPLAY = {"MTMDD-VM": "OURS", "MTMDD-VM*": "OURS*"}
#: Combined visual + click methods (the right half of Table VIII).
COMBINED = ("SF", "VSE++", "TDL[7]", "TDL", "MTTDL", "MTMDD-VM", "MTMDD-VM*")
LEFT_OUT = {"RACNN": "recurrent attention over crops of full-resolution images needs end-to-end training of a "
                     "large CNN (attention proposal and classification sub-networks at three scales); it is not a "
                     "method on cached features"}

#: Paper A's Table VIII (percent), columns in the paper's order, named as ours (OURS = MTMDD-VM).
PAPER_TABLE_VIII = pd.DataFrame(
    {"DAN": [77.1, 74.9], "DANN": [67.9, 45.8], "VGGimg": [76.5, 70.7], "VGGsrc": [76.5, 72.2],
     "RACNN": [75.9, 71.6], "SCDA": [79.0, 74.8], "SF": [75.2, 70.7], "VSE++": [76.5, 74.3],
     "TDL[7]": [76.4, 71.3], "TDL": [77.5, 72.2], "MTTDL": [77.1, 73.3], "MTMDD-VM": [77.3, 74.7],
     "MTMDD-VM*": [77.7, 76.0]}, index=["Acc-S (%)", "Acc-T (%)"])


@dataclass(frozen=True)
class SotaSettings:
    """The baselines' own settings (the registry's are :class:`~.methods.MethodSettings`)."""

    mmd_weight: float = 1.0  # DAN: weight of the MMD term
    target_weight: float = 1.0  # DAN / DANN: weight of the target cross-entropy (unified training)
    dann_gamma: float = 10.0  # DANN: Ganin's schedule
    adversary_hidden: int = 256  # DANN: the domain classifier's hidden width
    svm_c: float = 1.0  # SCDA: linear SVM penalty (footnote 12)
    sf_weights: tuple[float, ...] = fusion.SF_CLICK_WEIGHTS  # SF: candidate click weights (footnote 13)
    vse_dim: int = 256  # VSE++: joint space width
    vse_margin: float = 0.2  # VSE++: hinge margin alpha (Faghri et al.'s)

    def __post_init__(self) -> None:
        if self.mmd_weight < 0 or self.target_weight < 0 or self.dann_gamma <= 0 or self.svm_c <= 0:
            raise ValueError("SotaSettings: need mmd_weight, target_weight >= 0 and dann_gamma, svm_c > 0")
        if self.adversary_hidden < 1 or self.vse_dim < 1 or self.vse_margin < 0 or not self.sf_weights:
            raise ValueError("SotaSettings: need adversary_hidden, vse_dim >= 1, vse_margin >= 0, sf_weights given")


def _rows(method: str, seed: int, values: dict) -> list[dict]:
    return [{"method": method, "seed": seed, "metric": k, "value": float(v)} for k, v in values.items()]


# --- DAN and DANN: one visual head on both labelled domains ---------------------------------------------

class VisualDomainNet(nn.Module):
    """The visual half of eq. (7): psi (FC + ReLU), batch norm, dropout, one classifier for both domains."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"DAN / DANN adapt the trainable visual layer psi: need visual_hidden >= 1, got {hidden}")
        self.psi = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.norm = nn.BatchNorm1d(hidden, affine=False)
        self.drop = Dropout(dropout)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(psi(phi), logits)``."""
        z = self.psi(phi)
        return z, self.classifier(self.drop(self.norm(z)))


def train_adapted(data: PaperAData, cfg: HeadConfig, method: str, seed: int = 0,
                  sota: SotaSettings = SotaSettings()) -> nn.ModuleDict:
    """DAN or DANN: source and target cross-entropy on one head, plus the MMD / adversarial term.

    One source and one target batch per step (``cfg.batch_size`` each, ``cfg.epochs`` passes
    over the larger domain), one forward for both (the batch norm sees both domains).
    """
    if method not in ("DAN", "DANN"):
        raise ValueError(f"train_adapted: method must be 'DAN' or 'DANN', got {method!r}")
    seeded(seed)
    model = nn.ModuleDict({"net": VisualDomainNet(data.feature_dim, cfg.visual_hidden, len(data.classes),
                                                  cfg.dropout)})
    if method == "DANN":
        model["adversary"] = DomainAdversary(cfg.visual_hidden, (sota.adversary_hidden,), lambd=0.0)
    s, t = data.source, data.target
    batches = {"source": Batches(domain_tensors(s, s.rows("train"), False, SOURCE), cfg.batch_size),
               "target": Batches(domain_tensors(t, t.rows("train"), False, TARGET), cfg.batch_size)}
    total = cfg.epochs * max(len(b) for b in batches.values())
    cols, step = (data.source_columns, data.target_columns), [0]

    def loss_fn(m, b):
        n = len(b["source"]["y"])
        z, logits = m["net"](torch.cat([b["source"]["phi"], b["target"]["phi"]]))
        ce_s = F.cross_entropy(*restrict_logits(logits[:n], b["source"]["y"], cols[0]))
        ce_t = F.cross_entropy(*restrict_logits(logits[n:], b["target"]["y"], cols[1]))
        terms = {"ce_s": ce_s, "ce_t": ce_t}
        if method == "DAN":
            terms["mmd"] = dan_mmd_loss([(z[:n], z[n:])])
            extra = sota.mmd_weight * terms["mmd"]
        else:
            m["adversary"].lambd = dann_lambda(min(1.0, step[0] / max(1, total - 1)), sota.dann_gamma)
            step[0] += 1
            extra = terms["domain"] = m["adversary"](z[:n], z[n:])
        return ce_s + sota.target_weight * ce_t + extra, terms

    va_s, va_t = s.rows("val"), t.rows("val")

    def val_fn(m) -> dict[str, float]:  # the mean of its two domains' validation accuracies, as the joint nets
        acc = [accuracy_in(d.y[r], adapted_logits(m, d, r), c) for d, r, c in ((s, va_s, cols[0]), (t, va_t, cols[1]))]
        return {"val_acc_s": acc[0], "val_acc_t": acc[1], "val_acc": float(np.mean(acc))}

    fit_head(model, loss_fn, batches, cfg, cfg.epochs, seed, method, val_fn if len(va_s) and len(va_t) else None,
             multi_tensor=False)
    return model


@torch.no_grad()
def adapted_logits(model: nn.ModuleDict, d: DomainData, rows: np.ndarray) -> np.ndarray:
    """Logits of ``rows`` in eval mode; the model's mode is restored (it also scores validation mid-training)."""
    was = model.training
    model.eval()
    try:
        return model["net"](torch.from_numpy(np.ascontiguousarray(d.phi[rows])))[1].numpy()
    finally:
        model.train(was)


def adapted_rows(method: str, data: PaperAData, cfg: HeadConfig, seed: int,
                 sota: SotaSettings = SotaSettings()) -> list[dict]:
    """DAN / DANN rows: Acc-S and Acc-T (val and test) of the one model."""
    model = train_adapted(data, cfg, method, seed, sota)
    out, items = {}, []
    for dom, d, cols in data.domains():
        for split, prefix in (("test", ""), ("val", "val_")):
            rows = d.rows(split)
            logits = adapted_logits(model, d, rows)
            out[f"{prefix}acc_{dom}"] = accuracy_in(d.y[rows], logits, cols)
            items += item_rows(correct_in(d.y[rows], logits, cols), d, dom, split, method=method, seed=seed)
    return _rows(method, seed, out) + items


# --- SCDA: conv-map descriptors + linear SVM per domain ----------------------------------------------------

def scda_features(data_map: PaperAData) -> dict[str, np.ndarray]:
    """SCDA descriptors (avg & max pool of the selected positions, 2C values) of every row, per domain."""
    if data_map.source.omega is None:
        raise ValueError("SCDA needs the conv maps: load the data with with_map=True (map_channels=0: all channels)")
    return {"s": scda_descriptors(data_map.source.omega), "t": scda_descriptors(data_map.target.omega)}


def scda_rows(data_map: PaperAData, seed: int, c: float = 1.0, features: dict | None = None) -> list[dict]:
    """SCDA rows: a linear SVM (penalty ``c``, ``random_state = seed``) per domain on its training rows."""
    x = features or scda_features(data_map)
    out, items = {}, []
    for dom, d, _ in data_map.domains():
        train = d.rows("train")
        svm = scda_svm(c, seed).fit(x[dom][train], d.y[train])  # knows only this domain's training classes
        for split, prefix in (("test", ""), ("val", "val_")):
            rows = d.rows(split)
            hit = (svm.predict(x[dom][rows]) == d.y[rows]).astype(float)
            out[f"{prefix}acc_{dom}"] = float(np.mean(hit))
            items += item_rows(hit, d, dom, split, method="SCDA", seed=seed)
    return _rows("SCDA", seed, out) + items


# --- SF: score fusion of a visual and a click recogniser -----------------------------------------------------

def _probs(head, d: DomainData, v_hat, rows: np.ndarray, cols) -> tuple[np.ndarray, np.ndarray]:
    """Softmax over the domain's columns, and the labels re-indexed into them."""
    lg, y = restrict_logits(torch.from_numpy(head_scores(head, d, v_hat, rows)), torch.from_numpy(d.y[rows]), cols)
    return torch.softmax(lg.double(), dim=1).numpy(), y.numpy()


def sf_rows(data: PaperAData, cfg: HeadConfig, seed: int, settings: MethodSettings = MethodSettings(),
            sota: SotaSettings = SotaSettings()) -> list[dict]:
    """SF rows: fused Acc-S / Acc-T, the chosen click weight per domain, and each recogniser's own accuracy."""
    predictor = train_click_predictor(data, cfg, settings.click, seed).model  # TDL's predictor (same seed)
    n, out = len(data.classes), {}
    for dom, d, cols in data.domains():
        v_hat = predict_clicks(predictor, d)
        vis = recognition_accuracy(d, cfg, None, True, seed, n, cols, keep=True)
        clk = recognition_accuracy(d, cfg, v_hat, False, seed, n, cols, keep=True)
        (pv_val, y_val), (pc_val, _) = (_probs(vis["head"], d, None, d.rows("val"), cols),
                                        _probs(clk["head"], d, v_hat, d.rows("val"), cols))
        (pv_test, y_test), (pc_test, _) = (_probs(vis["head"], d, None, d.rows("test"), cols),
                                           _probs(clk["head"], d, v_hat, d.rows("test"), cols))
        res = fusion.score_fusion(pv_val, pc_val, y_val, pv_test, pc_test, y_test, sota.sf_weights)
        out.update({f"acc_{dom}": res.test_acc, f"val_acc_{dom}": float(res.validation["val_acc"].max()),
                    f"click_weight_{dom}": res.click_weight, f"visual_acc_{dom}": vis["test"],
                    f"click_acc_{dom}": clk["test"]})
    return _rows("SF", seed, out)


# --- VSE++: a joint image / word space with hardest negatives ---------------------------------------------

class VSEEmbedding(nn.Module):
    """Image side ``f(phi)`` (MLP) and word side ``g(v) = W v`` (linear, no bias) in one joint space."""

    def __init__(self, visual_dim: int, k: int, hidden: int, dim: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.image = MLP(visual_dim, (hidden,), dim, dropout=dropout)
        self.word = nn.Linear(k, dim, bias=False)

    def forward(self, phi: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image(phi), self.word(v)

    def predicted_clicks(self, phi: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of ``f(phi)`` to each single-word vector ``g(e_j)`` (a column of W): ``(n, K)``."""
        return cosine_similarities(self.image(phi), self.word.weight.T)


def train_vse(data: PaperAData, cfg: HeadConfig, seed: int = 0, sota: SotaSettings = SotaSettings()) -> VSEEmbedding:
    """VSE++ on the source training rows (images with a zero click vector take no part)."""
    seeded(seed)
    net = VSEEmbedding(data.feature_dim, data.k, cfg.hidden, sota.vse_dim, cfg.dropout)
    s = data.source
    batches = Batches(domain_tensors(s, s.rows("train"), False, SOURCE), cfg.batch_size)

    def loss_fn(m, b):
        f, g = m(b["phi"], b["v"])
        return vse_hinge_loss(f, g, sota.vse_margin, b["valid"])

    val = domain_tensors(s, s.rows("val"), False, SOURCE) if validates(cfg) else None
    ok = val["valid"].to(torch.bool) if val is not None else None

    @torch.no_grad()
    def val_fn(m) -> dict[str, float]:  # retrieval on the source validation pairs (image, its click vector)
        was = m.training
        m.eval()
        try:
            f, g = m(val["phi"][ok], val["v"][ok])
            return {"val_rsum": metrics.matched_rsum(cosine_similarities(f, g)),
                    "val_loss": float(vse_hinge_loss(f, g, sota.vse_margin))}
        finally:
            m.train(was)

    # the stop rule watches the validation R-sum (recall@1, 5, 10 both ways), the score Faghri et al. select
    # VSE++ by: the hardest-negative hinge over the whole validation set rises while retrieval still improves
    # (it stopped every fit by epoch 6 with its best at epoch 2, an untrained rival in Table VIII)
    fit_head(net, loss_fn, batches, cfg, cfg.epochs, seed, "VSE++", val_fn if ok is not None and int(ok.sum()) > 1
             else None, "val_rsum", multi_tensor=False)
    return net


@torch.no_grad()
def vse_clicks(net: VSEEmbedding, d: DomainData) -> np.ndarray:
    net.eval()
    return net.predicted_clicks(torch.from_numpy(np.ascontiguousarray(d.phi))).numpy()


def vse_rows(data: PaperAData, cfg: HeadConfig, seed: int, sota: SotaSettings = SotaSettings()) -> list[dict]:
    """VSE++ rows: V + C recognisers per domain on the VSE++ predicted click feature."""
    net = train_vse(data, cfg, seed, sota)
    out, items = {}, []
    for dom, d, cols in data.domains():
        acc = recognition_accuracy(d, cfg, vse_clicks(net, d), True, seed, len(data.classes), cols)
        out.update({f"acc_{dom}": acc["test"], f"val_acc_{dom}": acc["val"]})
        items += item_rows(acc["test_correct"], d, dom, method="VSE++", seed=seed)
        items += item_rows(acc["val_correct"], d, dom, "val", method="VSE++", seed=seed)
    return _rows("VSE++", seed, out) + items


# --- Table VIII -------------------------------------------------------------------------------------------------

def _check_aligned(data: PaperAData, data_map: PaperAData) -> None:
    for a, b in ((data.source, data_map.source), (data.target, data_map.target)):
        if len(a.y) != len(b.y) or not np.array_equal(a.y, b.y) or not np.array_equal(a.split, b.split):
            raise ValueError("table_viii: data and data_map must hold the same rows (load both with one profile/seed)")


def table_viii(data: PaperAData, data_map: PaperAData | None, cfg: HeadConfig, seeds: Sequence[int],
               settings: MethodSettings = MethodSettings(), methods: Sequence[str] = METHODS,
               sota: SotaSettings = SotaSettings(), curves: list | None = None, **labels) -> pd.DataFrame:
    """Every method of Table VIII x seed: tidy ``method, seed, metric, value`` (+ ``labels`` columns).

    ``data_map``: the same rows with the full conv maps (SCDA only; ``None``: ``data`` itself).
    ``curves``: a list the joint methods' (MTTDL, OURS, OURS*) validation curves are appended to
    (:func:`~.methods.run_methods`).
    Rows come in ``methods`` order, seeds ascending within each method.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        why = "; ".join(f"{m} is left out: {LEFT_OUT[m]}" for m in unknown if m in LEFT_OUT)
        raise ValueError(f"methods {unknown} are not among {METHODS}" + (f" ({why})" if why else ""))
    frames = []
    registry = [m for m in methods if m in REGISTRY_METHODS]
    if registry:
        frames.append(run_methods(registry, data, cfg, seeds, settings, curves))
    rows: list[dict] = []
    with torch_threads(1):
        if "SCDA" in methods:
            data_map = data if data_map is None else data_map
            _check_aligned(data, data_map)
            feats = scda_features(data_map)
            rows += [r for seed in seeds for r in scda_rows(data_map, seed, sota.svm_c, feats)]
        for seed in runtime.progress(seeds, desc="Table VIII: seeds"):
            for m in methods:
                with history_labels(method=m, seed=seed):
                    if m in ("DAN", "DANN"):
                        rows += adapted_rows(m, data, cfg, seed, sota)
                    elif m == "SF":
                        rows += sf_rows(data, cfg, seed, settings, sota)
                    elif m == "VSE++":
                        rows += vse_rows(data, cfg, seed, sota)
    frames.append(pd.DataFrame(rows, columns=["method", "seed", "metric", "value", "item"]))
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True)
    order = {m: i for i, m in enumerate(methods)}
    frame = frame.sort_values(["method", "seed"], key=lambda c: c.map(order) if c.name == "method" else c,
                              kind="stable").reset_index(drop=True)
    for key, value in labels.items():
        frame[key] = value
    return frame


def table_viii_targets(datasets: Mapping[str, tuple[PaperAData, PaperAData | None]], cfg: HeadConfig,
                       seeds: Sequence[int], settings: MethodSettings = MethodSettings(),
                       methods: Sequence[str] = METHODS, sota: SotaSettings = SotaSettings(),
                       curves: list | None = None) -> pd.DataFrame:
    """:func:`table_viii` on each target domain: ``datasets[vendor] = (data, data_map)`` (the same source).

    Rows carry a ``target`` column (the vendor) and each ``item`` key is prefixed ``<vendor>/``, so the
    claims pool the targets' test images as distinct items (issue #18 item 2: pooled over targets where
    a claim is about the method, not the domain); a per-seed metric pools as the mean over the targets.
    The recorded histories (:func:`~.train.record_histories`) and ``curves`` are labelled with the target.
    Inside one :func:`~.train.reuse_identical_fits` block: a click predictor or recogniser whose inputs an
    earlier target's run already trained (the source-only ones) is copied, not trained again (the same
    numbers; the copy is not recorded as a second fit).
    """
    from .core import over_targets

    def one(job: tuple[str, PaperAData, PaperAData | None]) -> pd.DataFrame:
        vendor, data, data_map = job
        part: list = []
        frame = table_viii(data, data_map, cfg, seeds, settings, methods, sota, curves=part)
        if curves is not None:
            curves.extend(c.assign(target=vendor) for c in part)
        return frame

    if not datasets:
        raise ValueError("table_viii_targets: need at least one target domain")
    with reuse_identical_fits():  # the source-only fits (click predictors, source recognisers) train once
        return over_targets({v: (v, *pair) for v, pair in datasets.items()}, one)


# --- the baselines' own settings, searched on validation (issue #18 item 3) ------------------------------------

#: Each Table VIII baseline's key setting searched on validation in A.10: method -> (SotaSettings field, grid).
#: Three values each, the size of the grids A.07 (lambda) and A.08 (mu) searched for the click models; DANN's
#: target weight gets OURS's mu grid (both weigh the target's cross-entropy). The reference, kept unless
#: another value beats it (:func:`search_baselines`), is the value the notebook passes (the paper's or the
#: method's authors'), added to the grid when missing.
BASELINE_GRIDS: dict[str, tuple[str, tuple[float, ...]]] = {
    "DAN": ("mmd_weight", (0.1, 1.0, 10.0)),
    "DANN": ("target_weight", (0.1, 0.5, 1.0)),
    "SCDA": ("svm_c", (0.1, 1.0, 10.0)),
    "VSE++": ("vse_margin", (0.05, 0.2, 0.5)),
}
SEARCH_LABEL = "search"  # the history label (:func:`~.train.history_labels`) of a search run: "<field>=<value>"


@dataclass(frozen=True)
class BaselineSearch:
    """:func:`search_baselines`' result: per searched method its chosen settings, the selection table,
    and the chosen runs' rows (in :func:`table_viii_targets`' format, so Table VIII reuses them)."""

    settings: dict[str, SotaSettings]
    table: pd.DataFrame  # method, setting, value, mean_diff, se, n_items, n_seeds, beats, chosen, reference
    rows: pd.DataFrame
    chosen_labels: dict[str, str]  # method -> the SEARCH_LABEL value of its chosen runs

    def keep_chosen(self, records: list) -> list:
        """The entries of :func:`~.train.record_histories` without the search runs that were not chosen."""
        return [r for r in records if r[0].get(SEARCH_LABEL) is None
                or self.chosen_labels.get(r[0].get("method")) == r[0].get(SEARCH_LABEL)]


def search_baselines(datasets: Mapping[str, tuple[PaperAData, PaperAData | None]], cfg: HeadConfig,
                     seeds: Sequence[int], sota: SotaSettings = SotaSettings(), methods: Sequence[str] = METHODS,
                     grids: Mapping[str, tuple[str, Sequence[float]]] = BASELINE_GRIDS, z: float = 1.0
                     ) -> BaselineSearch:
    """Run every baseline of ``methods`` that has a grid at each of its values, on every target and seed
    (:func:`table_viii_targets`), and choose per method by :func:`clickvision.selection.select_robust` on
    per-image validation Acc-T pooled over the targets (``val_correct_t``): the reference (``sota``'s
    value) is kept unless another value beats it by more than ``z`` standard errors, the rule the click
    models' settings were selected by in A.04 / A.07 / A.08. Nothing here reads a test score.
    ValueError naming the grid when a field is not a :class:`SotaSettings` field or a grid is empty."""
    from dataclasses import fields

    known = {f.name for f in fields(SotaSettings)}
    chosen, tables, frames, labels = {}, [], [], {}
    with reuse_identical_fits():  # a fit the grid does not change (a source recogniser) trains once
        for m in [m for m in methods if m in grids]:
            field, grid = grids[m]
            if field not in known or not len(grid):
                raise ValueError(f"search_baselines: grids[{m!r}] = {grids[m]!r}: need a SotaSettings field "
                                 f"({sorted(known)}) and a non-empty grid")
            chosen[m], table, rows = _search_one(m, field, grid, datasets, cfg, seeds, sota, z)
            labels[m] = f"{field}={getattr(chosen[m], field):g}"
            tables.append(table)
            frames.append(rows)
    cols = ["method", "setting", "value", "reference", "mean_diff", "se", "n_items", "n_seeds", "beats", "chosen"]
    table = pd.concat(tables, ignore_index=True)[cols] if tables else pd.DataFrame(columns=cols)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return BaselineSearch(chosen, table, rows, labels)


def _search_one(m: str, field: str, grid, datasets, cfg: HeadConfig, seeds: Sequence[int], sota: SotaSettings,
                z: float) -> tuple[SotaSettings, pd.DataFrame, pd.DataFrame]:
    """One baseline's grid for :func:`search_baselines`: its chosen settings, its rows of the selection
    table and the chosen run's rows."""
    from dataclasses import replace

    from ...selection import select_robust

    ref = float(getattr(sota, field))
    runs = []
    for v in sorted({float(x) for x in grid} | {ref}):
        with history_labels(**{SEARCH_LABEL: f"{field}={v:g}"}):
            part = table_viii_targets(datasets, cfg, seeds, methods=[m], sota=replace(sota, **{field: v}))
        runs.append(part.assign(grid_value=v))
    rows = pd.concat(runs, ignore_index=True)
    sel = select_robust(rows, "grid_value", ref, "val_correct_t", z=z)
    table = (sel.table.reset_index().rename(columns={"grid_value": "value"})
             .assign(method=m, setting=field, reference=ref))
    return (replace(sota, **{field: float(sel.value)}), table,
            rows[rows["grid_value"] == sel.value].drop(columns="grid_value"))


def settings_table(settings: MethodSettings, sota: SotaSettings, methods: Sequence[str] = METHODS,
                   search: BaselineSearch | None = None) -> pd.DataFrame:
    """Every Table VIII method's settings: ``method, setting, value, source`` (where the value was selected).

    The registry's click settings come from ``settings.table`` (validation selections of A.04 / A.07 /
    A.08, or the paper's values where none was recorded); the baselines' own settings are the
    notebook's parameters, except each one's key setting searched on validation by ``search``
    (:func:`search_baselines`; SF's click weight is searched per seed and domain).
    """
    fixed = "notebook parameter (not searched on validation)"
    searched = {} if search is None else dict(zip(search.table["method"], search.table["setting"]))

    def own_of(m: str, field: str, name: str, default_source: str) -> tuple[str, float, str]:
        if searched.get(m) != field:
            return name, getattr(sota, field), default_source
        t = search.table[search.table["method"] == m]
        grid = ", ".join(f"{v:g}" for v in t["value"])
        return (name, getattr(search.settings[m], field),
                f"validation, A.10 (val Acc-T per image, pooled over the targets; grid [{grid}], "
                f"reference {t['reference'].iloc[0]:g})")

    own = {"DAN": [own_of("DAN", "mmd_weight", "mmd_weight", fixed),
                   own_of("DAN", "target_weight", "target_weight", fixed)],
           "DANN": [own_of("DANN", "target_weight", "target_weight", fixed),
                    ("gamma", sota.dann_gamma, "Ganin's schedule (not searched on validation)")],
           "SCDA": [own_of("SCDA", "svm_c", "svm_c", "paper footnote 12 (not searched on validation)")],
           "SF": [("click_weight", float("nan"), f"validation, per seed and domain, from {list(sota.sf_weights)}")],
           "VSE++": [own_of("VSE++", "vse_dim", "dim", fixed),
                     own_of("VSE++", "vse_margin", "margin", "Faghri et al. (not searched)")],
           "VGGimg": [("-", float("nan"), "no setting beyond the shared heads")],
           "VGGsrc": [("-", float("nan"), "no setting beyond the shared heads")]}
    reg = settings.table([m for m in methods if m in REGISTRY_METHODS or m == "SF"])
    rows = []
    for m in methods:
        rows += [{"method": DISPLAY.get(m, m), "setting": k, "value": v, "source": src} for k, v, src in own.get(m, [])]
        rows += [{**r, "method": DISPLAY.get(m, m)} for r in reg[reg["method"] == m].to_dict("records")]
    return pd.DataFrame(rows, columns=["method", "setting", "value", "source"])


# --- claims (section IV-C) ------------------------------------------------------------------------------------

def best_combined(rows: pd.DataFrame, metric: str = "val_acc_t") -> str:
    """The combined visual + click method with the best mean validation Acc-T (selection on val)."""
    sub = rows[rows["method"].isin(COMBINED) & (rows["metric"] == metric)]
    if sub.empty:
        raise ValueError("best_combined: no combined visual + click method among the rows")
    means = sub.groupby("method", sort=False)["value"].mean()
    return str(means.idxmax())


def claims_table_viii(rows: pd.DataFrame) -> list:
    """IV-C's orderings on Acc-T as ``(Claim, data)`` pairs: per target test image over the seeds
    where both methods give per-image scores (SF only per seed: then per-seed Acc-T). Rows of several
    targets (:func:`table_viii_targets`) are pooled: every target's test images, the per-seed mean."""
    from .claims import A, acc_scores

    paper = PAPER_TABLE_VIII.loc["Acc-T (%)"]
    ran = set(rows["method"])
    pooled = pooled_note(rows)

    def name(m):
        return DISPLAY.get(m, m)

    def pair(claim_id, text, a, b):
        if not {a, b} <= ran:
            return []
        arms = {name(a): {"method": a}, name(b): {"method": b}}
        return [(A(claim_id, text + f" (Acc-T{pooled}; paper {paper[a]:.1f} vs {paper[b]:.1f} %)", "direction",
                   arms=tuple(arms), paper_effect=(paper[a] - paper[b]) / 100), acc_scores(rows, "t", arms))]

    out = []
    if "VGGsrc" in ran and ran & set(COMBINED):
        best = best_combined(rows)
        out += pair("VIII-combined-beats-visual", "Combining the predicted click feature with the visual one beats "
                    f"the visual feature alone: the best V + C method (chosen on validation Acc-T: {name(best)}) beats "
                    "VGGsrc", best, "VGGsrc")
    # the paper's like-for-like comparison: TDL and VGGimg are both initialised from ImageNet (its Table VIII:
    # 72.2 vs 70.7); TDL = VGGsrc (72.2 vs 72.2) is a tie in the paper, not a claim (issue #18 item 7)
    out += pair("VIII-TDL-beats-VGGimg", "TDL (visual + predicted click) beats VGGimg (visual alone, ImageNet "
                "initialisation like TDL's)", "TDL", "VGGimg")
    out += pair("VIII-joint-beats-SF", "Training one recogniser on the combined feature (TDL) beats score fusion of "
                "a visual and a click recogniser (SF)", "TDL", "SF")
    out += pair("VIII-VGGsrc-beats-VGGimg", "VGGsrc (initialised from the source model) beats VGGimg (ImageNet "
                "initialisation) on the target", "VGGsrc", "VGGimg")
    out += pair("VIII-MTTDL-beats-TDL", "Multitask training (MTTDL) beats TDL", "MTTDL", "TDL")
    out += pair("VIII-OURS-beats-MTTDL", "Multidomain training (OURS = MTMDD-VM) beats MTTDL", "MTMDD-VM", "MTTDL")
    out += pair("VIII-OURS-beats-VSE++", "OURS (MTMDD-VM) beats VSE++ as the click predictor", "MTMDD-VM", "VSE++")
    ours = [m for m in ("MTMDD-VM", "MTMDD-VM*") if m in ran]
    others = [m for m in ran if m not in ("MTMDD-VM", "MTMDD-VM*")]
    if ours and others:  # both sides chosen on validation Acc-T, never on the test numbers being judged
        val_t = rows[rows["metric"] == "val_acc_t"].groupby("method")["value"].mean()
        if not set(ours + others) <= set(val_t.index):
            raise ValueError(f"claims_table_viii: methods {sorted(set(ours + others) - set(val_t.index))} have no "
                             "val_acc_t rows to choose OURS's rival on validation")
        top = max(ours, key=lambda m: val_t[m])
        rival = max(others, key=lambda m: val_t[m])
        arms = {name(top): {"method": top}, name(rival): {"method": rival}}
        out.append((A("VIII-OURS-best-Acc-T", f"OURS or OURS* has the best Acc-T of all methods: the better of them on "
                      f"validation ({name(top)}) against the best other method on validation ({name(rival)}) (paper: "
                      f"only OURS* 76.0 tops Acc-T; OURS 74.7 trails DAN 74.9 and SCDA 74.8){pooled}", "direction",
                      arms=tuple(arms),
                      paper_effect=(paper.get(top, np.nan) - paper.get(rival, np.nan)) / 100),
                    acc_scores(rows, "t", arms)))
    return out
