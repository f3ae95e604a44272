"""Paper C (CHTN, IJCAI 2017): CHTN training, Tables 1 and 2 and their claims.

The data (targets, sources, features) live in :mod:`.paper_c_data`, the retrieval views
(top-k tables, typed queries, figures) in :mod:`.paper_c_views`; both are re-exported here,
so a notebook needs one import: ``from clickvision.experiments import paper_c as pc``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .. import metrics, runtime
from ..models.chtn import CHTN, CHTNLoss, calibrate_pair_weight
from ..models.crossmodal_baselines import BASELINES, SEEDED, make_baseline, one_thread
from ..models.crossmodal_deep import TensorBatches, multi_tensor_steps
from ..train import TrainConfig, Trainer
from .paper_c_data import (CLIPART_TOPICS, DEFAULT_SOURCE, PAPER_SIZES, TARGETS, CrossModalData,  # noqa: F401
                           image_features, load_source, load_target, prepare_data)
from .paper_c_views import (plot_examples, plot_image_query, plot_text_query, rank, retrieval_table,  # noqa: F401
                            text_query)

_T1 = {  # paper Table 1, (Img->Txt, Txt->Img, average) per data set
    "CCA": [(.176, .178, .177), (.159, .189, .174), (.110, .116, .113)],
    "CFA": [(.330, .306, .318), (.299, .301, .300), (.341, .308, .325)],
    "KCCA (Poly)": [(.230, .224, .227), (.129, .157, .143), (.271, .280, .276)],
    "KCCA (Gaussian)": [(.357, .328, .343), (.295, .162, .229), (.312, .329, .321)],
    "Bimodal AE": [(.301, .267, .284), (.234, .376, .305), (.404, .447, .426)],
    "Multimodal DBN": [(.204, .145, .175), (.178, .144, .161), (.438, .363, .401)],
    "Corr-AE": [(.373, .357, .365), (.306, .340, .323), (.411, .475, .443)],
    "JRL": [(.408, .353, .381), (.410, .444, .427), (.416, .377, .397)],
    "LGCFL": [(.416, .360, .388), (.408, .374, .391), (.381, .435, .408)],
    "CMDN": [(.409, .364, .387), (.410, .450, .430), (.458, .444, .451)],
    "Deep-SM": [(.458, .345, .402), (.389, .496, .443), (.440, .414, .427)],
    "CHTN": [(.508, .432, .470), (.518, .516, .517), (.467, .477, .472)],
    "OnlyCross": [(.465, .407, .436), (.360, .406, .383), (.433, .443, .438)],
    "NoShare": [(.483, .422, .453), (.488, .442, .465), (.446, .467, .457)],
    "NoSrcSp": [(.489, .415, .452), (.487, .495, .491), (.435, .457, .446)],
}
PAPER_MAP = pd.DataFrame([(m, d, *v) for m, rows in _T1.items()
                          for d, v in zip(("Wikipedia", "NUS-WIDE-10k", "Pascal Sentences"), rows)],
                         columns=["method", "data set", "img2txt", "txt2img", "average"])
LEFT_OUT = {"Multimodal DBN": "stacked RBMs (Gaussian and replicated-softmax) trained by contrastive divergence: "
                              "not small, and a stand-in would be our own design, not the method",
            "CMDN": "two-stage hierarchy of four separately pre-trained networks (stacked AEs + multimodal DBN) "
                    "feeding a stacked network: not small"}


# ------------------------------------------------------------------------------- CHTN
@dataclass
class CHTNRun:
    """One trained CHTN (or ablation) with its History, pair weight and test MAP."""

    model: CHTN
    history: pd.DataFrame
    pair_weight: float
    scores: dict[str, float]
    image_repr: np.ndarray  # test images' probability vectors
    text_repr: np.ndarray


def _t(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=dtype)  # a copy: cached arrays may be read-only


def _loaders(data: CrossModalData, batch_size: int, with_source: bool) -> dict:
    x, t, y = data.view("train")
    out = {"target": TensorBatches(_t(x), _t(t), _t(y, torch.long), batch_size=batch_size)}
    if with_source:
        out["source"] = TensorBatches(_t(data.source_image), _t(data.source_labels, torch.long),
                                      batch_size=batch_size)
    return out


def calibrate(data: CrossModalData, hidden: int = 256, dropout: float = 0.5, batch_size: int = 64,
              kernel_num: int = 5) -> float:
    """Pair-loss weight for this data (:func:`~clickvision.models.chtn.calibrate_pair_weight`),
    measured once with the full CHTN at seed 0 on the first training batches."""
    runtime.seed_everything(0)
    model = CHTN(data.image["train"].shape[1], data.text["train"].shape[1], len(data.classes),
                 len(data.source_classes), hidden=hidden, dropout=dropout)
    batch = {k: next(iter(v)) for k, v in _loaders(data, batch_size, True).items()}
    with one_thread():
        return calibrate_pair_weight(model, batch, CHTNLoss(kernel_num=kernel_num))


def represent(model: CHTN, data: CrossModalData, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Each modality's softmax probability vectors for ``split``."""
    return (model.represent(_t(data.image[split]), "image").numpy(),
            model.represent(_t(data.text[split]), "text").numpy())


SOLVERS = {  # name -> TrainConfig fields
    "adam": {"optimizer": "adam", "lr": 1e-3},  # every network of this notebook family
    "paper": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},  # the authors' solver
}


def train_chtn(data: CrossModalData, variant: str = "CHTN", seed: int = 0, steps: int = 300, hidden: int = 256,
               dropout: float = 0.5, solver: str = "adam", batch_size: int = 64, pair_weight: float | None = None,
               kernel_num: int = 5, eval_every: int | None = None) -> CHTNRun:
    """Train one CHTN variant for ``steps`` steps of ``batch_size`` target pairs (and as many
    source images). ``solver``: a key of :data:`SOLVERS` ("paper": SGD lr 0.01, momentum 0.9,
    weight decay 5e-4). No validation split is used for training or selection (as in the
    paper); ``eval_every`` only logs the validation MAP into the History (for curves)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")
    if pair_weight is None:
        pair_weight = calibrate(data, hidden, dropout, batch_size, kernel_num)
    runtime.seed_everything(seed)
    model = CHTN(data.image["train"].shape[1], data.text["train"].shape[1], len(data.classes),
                 len(data.source_classes), hidden=hidden, dropout=dropout, variant=variant)
    val_fn = None
    if eval_every:
        def val_fn(m):  # noqa: ANN001 - Trainer hook
            return {f"val_{k}": v for k, v in metrics.cross_modal_map(*represent(m, data, "val"),
                                                                         data.labels["val"]).items()}
    cfg = TrainConfig(max_steps=steps, **SOLVERS[solver], seed=seed, device="cpu", eval_every=eval_every or "epoch",
                      restore_best=False, progress=False)
    loss = CHTNLoss(pair_weight=pair_weight, kernel_num=kernel_num)
    with one_thread():
        trainer = multi_tensor_steps(Trainer(model, loss, cfg))
        history = trainer.fit(_loaders(data, batch_size, model.flags.source_pathway), val_fn=val_fn)
        ri, rt = represent(model, data)
    return CHTNRun(model, history, pair_weight, metrics.cross_modal_map(ri, rt, data.labels["test"]), ri, rt)


# ------------------------------------------------------------------------------- tables
def run_baseline(name: str, data: CrossModalData, seed: int = 0, **kw) -> dict[str, float]:
    """Fit one Table 1 method on the training pairs (validation where it selects) -> test MAP.
    ``kw`` go to the method (e.g. ``steps``, ``hidden`` of the networks)."""
    with one_thread():
        method = make_baseline(name, seed=seed, **kw).fit(*data.view("train"), val=data.view("val"))
        ri, rt = method.transform(data.image["test"], data.text["test"])
    return metrics.cross_modal_map(ri, rt, data.labels["test"])


NETWORKS = ("Bimodal AE", "Corr-AE", "Deep-SM")  # the baselines that take steps / hidden


def table1(datasets: dict[str, CrossModalData], seeds: list[int], methods: tuple[str, ...] = (*BASELINES, "CHTN"),
           net_kw: dict | None = None, **chtn_kw) -> pd.DataFrame:
    """Tidy Table 1: ``target, method, seed, img2txt, txt2img, average``. ``net_kw`` go to
    the network baselines (:data:`NETWORKS`), ``chtn_kw`` to :func:`train_chtn`.
    Deterministic methods (no seed) run once and their row is repeated for every seed."""
    rows = []
    for target, data in datasets.items():
        for method in methods:
            for seed in seeds:
                if method == "CHTN":
                    scores = train_chtn(data, "CHTN", seed, **chtn_kw).scores
                elif method in SEEDED or seed == seeds[0]:  # else: the deterministic row of seeds[0]
                    scores = run_baseline(method, data, seed, **((net_kw or {}) if method in NETWORKS else {}))
                rows.append({"target": target, "method": method, "seed": seed, **scores})
    return pd.DataFrame(rows)


TABLE2_ORDER = ("OnlyCross", "NoShare", "NoSrcSp", "CHTN")  # the rows of the paper's Table 2


def table2(datasets: dict[str, CrossModalData], seeds: list[int], variants: tuple[str, ...] = TABLE2_ORDER,
           **chtn_kw) -> pd.DataFrame:
    """Tidy Table 2 (the ablations and CHTN), same columns as :func:`table1`."""
    return pd.DataFrame([{"target": t, "method": v, "seed": s, **train_chtn(d, v, s, **chtn_kw).scores}
                         for t, d in datasets.items() for v in variants for s in seeds])


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof 0) over seeds, one row per (target, method), methods in
    input order. The claims use the seed-paired gaps of :func:`paired_gap` (sample sd)."""
    order = {m: i for i, m in enumerate(dict.fromkeys(df["method"]))}
    g = df.groupby(["target", "method"], sort=False)[["img2txt", "txt2img", "average"]]
    out = g.mean().join(g.std(ddof=0).add_suffix(" sd")).reset_index()
    out["n_seeds"] = g.size().to_numpy()
    return out.sort_values(["target", "method"], key=lambda s: s.map(order) if s.name == "method" else s,
                           kind="stable").reset_index(drop=True)


def _fmt(mean: float, sd: float) -> str:
    return f"{mean:.3f} ± {sd:.3f}"


def paired_gap(df: pd.DataFrame, target: str, a: str, b: str) -> tuple[float, float, int, int]:
    """Seed-paired ``average(a) - average(b)`` on ``target``: (mean, sample sd, seeds, seeds
    where a > b). A deterministic method's one row counts for every seed."""
    rows = df[df["target"] == target]
    ga, gb = (rows[rows["method"] == m].set_index("seed")["average"] for m in (a, b))
    if ga.empty or gb.empty:
        raise ValueError(f"no runs of {a!r} or {b!r} on target {target!r}")
    d = (ga - gb).dropna() if len(ga) > 1 and len(gb) > 1 else \
        (ga.to_numpy()[:, None] - gb.to_numpy()[None, :]).ravel()
    d = pd.Series(np.asarray(d, float))
    return float(d.mean()), float(d.std()) if len(d) > 1 else 0.0, len(d), int((d > 0).sum())


def resolved(mean: float, sd: float, margin: float = 0.0) -> bool:
    """A paired gap that is positive and resolved: above one sd over seeds and above ``margin``
    (the workbook's rule for ordering claims; with one seed the sd is 0)."""
    return bool(mean > max(sd, margin))


def _gap_text(mean: float, sd: float, n: int, wins: int) -> str:
    note = "" if resolved(mean, sd) or resolved(-mean, sd) else ", within 1 sd of 0: not resolved"
    return f"difference {mean:+.3f} ± {sd:.3f} ({wins}/{n} seeds{note})"


def claims_table1(df: pd.DataFrame, margin: float = 0.01) -> list[dict]:
    """C-T1-best: on every target, CHTN's seed-paired gap over the best other method (by mean
    average MAP) is positive and resolved (:func:`resolved`). C-T1-reorder: the compared
    methods reorder across targets, i.e. some pair of baselines swaps order with a resolved
    gap above ``margin`` on both targets (a swap within the seed noise does not count)."""
    s = summarize(df)
    best, means, targets = [], {}, sorted(s["target"].unique())
    for target in targets:
        g = s[s["target"] == target].set_index("method")
        rival = g.drop(index="CHTN")["average"].idxmax()
        gap = paired_gap(df, target, "CHTN", rival)
        best.append((resolved(*gap[:2]),
                     f"{target}: CHTN {_fmt(g.loc['CHTN', 'average'], g.loc['CHTN', 'average sd'])} vs {rival} "
                     f"{_fmt(g.loc[rival, 'average'], g.loc[rival, 'average sd'])}, {_gap_text(*gap)}"))
        means[target] = g.drop(index="CHTN")["average"]
    names = sorted(set.intersection(*(set(m.index) for m in means.values())))
    gaps = {(t, a, b): paired_gap(df, t, a, b) for t in targets for a in names for b in names if a != b}
    flips = [(a, b, t, u) for i, a in enumerate(names) for b in names[i + 1:] for t in targets for u in targets
             if resolved(*gaps[(t, a, b)][:2], margin) and resolved(*gaps[(u, b, a)][:2], margin)]
    shown = "; ".join(f"{a} {means[t][a]:.3f} > {b} {means[t][b]:.3f} on {t}, but {means[u][a]:.3f} < {means[u][b]:.3f}"
                      f" on {u}" for a, b, t, u in flips[:3])
    return [dict(paper="C", claim_id="C-T1-best", claim="CHTN has the best average MAP on every target domain",
                 evidence="; ".join(e for _, e in best), held=bool(all(h for h, _ in best))),
            dict(paper="C", claim_id="C-T1-reorder", claim="The compared methods' order changes across data sets",
                 evidence=f"{len(flips)} baseline pair(s) swap with a resolved gap > {margin} on both targets"
                          + (f": {shown}" if flips else ""),
                 held=bool(flips))]


ABLATION_CLAIMS = (("C-T2-onlycross-noshare", "OnlyCross", "NoShare", "single-modal transfer helps: OnlyCross < NoShare"),
                   ("C-T2-noshare-chtn", "NoShare", "CHTN", "the shared layers help: NoShare < CHTN"),
                   ("C-T2-nosrcsp-chtn", "NoSrcSp", "CHTN", "source supervision helps: NoSrcSp < CHTN"))


def claims_table2(df: pd.DataFrame) -> list[dict]:
    """The three ablation claims. Held when, on every target, the seed-paired gap (higher
    variant - lower variant, seed k against seed k) is positive and resolved (above one sd
    over seeds, :func:`resolved`). The evidence gives means ± sd, the paired difference ± its
    sd, and on how many seeds it held."""
    s = summarize(df).set_index(["target", "method"])
    out = []
    for cid, lo, hi, text in ABLATION_CLAIMS:
        parts, held = [], True
        for target in sorted(df["target"].unique()):
            gap = paired_gap(df, target, hi, lo)
            held &= resolved(*gap[:2])
            parts.append(f"{target}: {lo} {_fmt(s.loc[(target, lo), 'average'], s.loc[(target, lo), 'average sd'])} "
                         f"vs {hi} {_fmt(s.loc[(target, hi), 'average'], s.loc[(target, hi), 'average sd'])}, "
                         f"{_gap_text(*gap)}")
        out.append(dict(paper="C", claim_id=cid, claim=text, evidence="; ".join(parts), held=held))
    return out


def with_paper(summary: pd.DataFrame, methods: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Our mean average MAP per method and target beside the paper's three data sets
    (rows: ``methods``, default ours then the paper's others)."""
    ours = summary.pivot_table(index="method", columns="target", values="average", sort=False)
    ours.columns = [f"{c} (ours)" for c in ours.columns]
    paper = PAPER_MAP.assign(method=PAPER_MAP["method"].replace({"JRL": "JRL (spirit)", "LGCFL": "LGCFL (spirit)"}))
    paper = paper.pivot_table(index="method", columns="data set", values="average", sort=False)
    paper.columns = [f"{c} (paper)" for c in paper.columns]
    return ours.join(paper, how="outer").reindex(list(methods or dict.fromkeys([*ours.index, *paper.index])))
