"""Paper A, section IV-A1 / Table II: noisy-source cleaning on the embedded emoji (notebook A.09).

The paper cleans Clickture-Dog with a fine-tuned VGG's probability of each image's own label
(its label comes from the query, so a wrong query makes a wrong label that pixels betray).
Our **simulated** log plants the noise in the *clicks* instead: a noisy image keeps its label
and pixels and receives another class's clicks (``DomainData.noisy``). A visual classifier
cannot see that noise, so the default scorer here is P(y | click TF-IDF): out-of-fold
multinomial logistic regression on the source's eq. (1) click features, its inverse
regularisation ``C`` chosen by the out-of-fold log-loss of the own label (a proper score for
the probability that is thresholded; the planted noise never enters the choice).
``scorer="visual"`` scores with the pooled backbone vector, to show what it cannot see.

Table II is then applied by :func:`clickvision.cleaning.clean_by_clicks` (band edges
rescaled to our class sizes) to every source image; the removed *training* images are
dropped from the source's training split, val and test stay whole, so every arm is tested on
the same images. Arms: ``none`` (the noisy source), ``table2`` (the cleaning), ``random``
(as many training images removed at random: less data, the same noise), ``oracle`` (exactly
the planted noisy training images removed). The recognizer is MTMDD-VM (eq. 15) from the
paper A core (:func:`.joint.joint_run`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ... import cleaning, runtime
from ...click import build as click_build
from .data import LOG_NAME, PaperAData, torch_threads
from .joint import joint_run
from .train import HeadConfig, JointSpec

ARMS = ("none", "table2", "random", "oracle")
SCORERS = ("click", "visual")
#: Table II as printed: (band, half, drop an image when its own-label probability is below).
PAPER_TABLE_II = pd.DataFrame(
    [("n < 8", "All", 0.0), ("8 <= n < 100", "First", 0.2), ("8 <= n < 100", "Second", 0.4),
     ("100 <= n < 300", "First", 0.3), ("100 <= n < 300", "Second", 0.5), ("n >= 300", "First", 0.4),
     ("n >= 300", "Second", 0.6)], columns=["paper band", "click half", "threshold"])
#: Section IV-A1: Clickture-Dog before and after cleaning (the paper gives no per-band counts).
PAPER_COUNTS = {"classes": 283, "images": 95041, "kept": 32691}


def image_click_counts(data: PaperAData, log_name: str = LOG_NAME) -> np.ndarray:
    """Each source image's total clicks in the SIMULATED log (0 for an image never clicked)."""
    log = pd.read_csv(click_build.click_log_path(log_name), sep="\t", header=None, names=["query", "key", "clicks"],
                      dtype={"query": str, "key": str, "clicks": np.int64}, keep_default_na=False)
    total = log.groupby("key")["clicks"].sum()
    return data.source.items["key"].astype(str).map(total).fillna(0).to_numpy(float)


def _oof_probs(x, y: np.ndarray, c: float, n_splits: int, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return cross_val_predict(LogisticRegression(C=c, max_iter=1000), x, y, cv=folds, method="predict_proba")


def own_label_scores(data: PaperAData, scorer: str = "click", cs: Sequence[float] = (1.0, 10.0, 100.0),
                     n_splits: int = 5, seed: int = 0, visual_dims: int = 128) -> tuple[np.ndarray, pd.DataFrame]:
    """Out-of-fold own-label probability of every source image, ``C`` chosen by own-label log-loss.

    ``scorer``: ``"click"`` (the click TF-IDF, sparse) or ``"visual"`` (the pooled backbone
    vector projected on its top ``visual_dims`` principal components, unit-scaled: a linear
    stand-in for the paper's fine-tuned VGG that costs a second instead of a minute; 0 keeps
    the full vector). Returns the chosen probabilities and one row per ``C``: ``scorer, C,
    log_loss, chosen``.
    """
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {SCORERS}, got {scorer!r}")
    if not cs or any(not c > 0 for c in cs):
        raise ValueError(f"cs must be a non-empty list of positive numbers, got {list(cs)}")
    s = data.source
    if scorer == "click" and s.clicks is None:
        raise ValueError("own_label_scores: the source has no click features")
    x = sp.csr_matrix(s.clicks) if scorer == "click" else s.phi
    classes, y = np.unique(s.y, return_inverse=True)
    small = pd.Series(y).value_counts()
    if (small < n_splits).any():
        raise ValueError(f"own_label_scores: classes {classes[small[small < n_splits].index].tolist()} have fewer "
                         f"than n_splits = {n_splits} images")
    rows, best = [], None
    with torch_threads(1):
        if scorer == "visual" and visual_dims:
            from sklearn.decomposition import PCA

            if not 0 < visual_dims <= min(s.phi.shape):
                raise ValueError(f"visual_dims must be in 0..{min(s.phi.shape)}, got {visual_dims}")
            x = PCA(visual_dims, random_state=seed).fit_transform(s.phi.astype(np.float64))
            x = x / x[:, 0].std()
        for c in cs:
            p = cleaning.own_label_probability(_oof_probs(x, y, float(c), n_splits, seed), y)
            loss = float(-np.log(np.clip(p, 1e-12, 1.0)).mean())
            rows.append({"scorer": scorer, "C": float(c), "log_loss": loss})
            if best is None or loss < best[0]:
                best = (loss, p)
    table = pd.DataFrame(rows)
    table["chosen"] = table["log_loss"] == table["log_loss"].min()
    return best[1], table


def cleaning_summary(result: cleaning.CleaningResult, noisy: np.ndarray, scorer: str) -> tuple[pd.DataFrame, dict]:
    """Table II counts per band (with the planted noise in and removed) and the precision/recall."""
    noisy = np.asarray(noisy, bool)
    stages = result.stages.copy()
    names = list(stages["band"].iloc[:-1])
    stages["noisy"] = [int(noisy[result.band == b].sum()) for b in range(len(names))] + [int(noisy.sum())]
    stages["noisy_removed"] = [int((noisy & ~result.keep)[result.band == b].sum()) for b in range(len(names))] + \
        [int((noisy & ~result.keep).sum())]
    stages.insert(0, "scorer", scorer)
    return stages, {"scorer": scorer, **cleaning.cleaning_scores(result.keep, noisy)}


def train_keep_masks(data: PaperAData, keep: np.ndarray, arms: Sequence[str], seed: int) -> dict[str, np.ndarray]:
    """Per arm, the source rows trained on: test/val always kept; train rows kept per the arm.

    ``random`` removes as many training rows as ``table2`` does, uniformly at random (``seed``).
    """
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"arms must be among {ARMS}, got {unknown}")
    s = data.source
    if s.noisy is None:
        raise ValueError("train_keep_masks: the source has no planted-noise column")
    train = s.split == "train"
    keep = np.asarray(keep, bool)
    out = {}
    for arm in arms:
        drop = np.zeros(len(train), bool)
        if arm == "table2":
            drop = train & ~keep
        elif arm == "oracle":
            drop = train & s.noisy
        elif arm == "random":
            n_drop = int((train & ~keep).sum())
            drop[np.random.default_rng(seed).choice(np.flatnonzero(train), size=n_drop, replace=False)] = True
        out[arm] = ~drop
    return out


def cleaning_accuracy(data: PaperAData, keep: np.ndarray, cfg: HeadConfig, spec: JointSpec, seeds: Sequence[int],
                      arms: Sequence[str] = ARMS) -> pd.DataFrame:
    """MTMDD-VM trained on each arm's source (target whole): tidy ``arm, seed, metric, value``.

    Adds ``n_train_s`` (source training images), ``noise_train_s`` (their planted-noise rate) and
    ``classes_train_s`` (classes left with a source training image: a strict cleaning can empty
    one; the target still has it, and the source softmax simply sees no example of it).
    """
    rows = []
    s = data.source
    for seed in runtime.progress(seeds, desc="Table II: seeds"):
        for arm, mask in train_keep_masks(data, keep, arms, seed).items():
            sub = data.__class__(s.subset(np.flatnonzero(mask)), data.target, data.classes, data.vocabulary,
                                 data.word_clicks, data.tfidf, data.meta)
            train = sub.source.split == "train"
            with torch_threads(1):
                out = joint_run(sub, cfg, spec, seed)
            out += [{"metric": "n_train_s", "value": float(train.sum()), "seed": seed},
                    {"metric": "noise_train_s", "value": float(sub.source.noisy[train].mean()), "seed": seed},
                    {"metric": "classes_train_s", "value": float(len(np.unique(sub.source.y[train]))), "seed": seed}]
            rows += [{**r, "arm": arm} for r in out]
    return pd.DataFrame(rows)


def claims_table_ii(rows: pd.DataFrame, scores: dict, keep: np.ndarray | None = None,
                    noisy: np.ndarray | None = None) -> list:
    """IV-A1 as ``(Claim, data)`` pairs: Table II's cleaning removes the noise; cleaning improves recognition.

    ``keep`` / ``noisy`` (per source image): the removal claim, precision > noise rate, is judged
    per image: image i scores ``noisy_i * removed_i * n / n_removed`` (mean: the precision)
    against ``noisy_i`` (mean: the noise rate), one deterministic cleaning pass (no seeds), the
    images resampled. The accuracy claims are per test image over the seeds.
    """
    from .claims import A, acc_scores

    out = []
    nb, na = scores["noise_before"], scores["noise_after"]
    text = ("Table II's cleaning (own-label probability by click-count half and class-size band) filters out the "
            "noisy images: removal beats chance (precision > the noise rate; SIMULATED planted noise, scorer "
            f"P(y | {scores['scorer']}); noise {100 * nb:.1f} % before, {100 * na:.1f} % after)")
    if keep is not None and noisy is not None:
        keep, noisy = np.asarray(keep, bool), np.asarray(noisy, float)
        removed = ~keep
        n, k = len(keep), max(1, int(removed.sum()))
        items = np.array([f"image{i:06d}" for i in range(n)])  # strings, like the accuracy claims' image keys
        data = pd.DataFrame({"method": ["removed, noisy share"] * n + ["all, noisy share"] * n, "seed": 0,
                             "item": np.concatenate([items, items]),
                             "value": np.concatenate([noisy * removed * n / k, noisy])})
        out.append((A("TableII-removes-noise", text, "direction", arms=("removed, noisy share", "all, noisy share")),
                    data))
    else:
        out.append((A("TableII-removes-noise", text, "untestable",
                      reason="the per-image removal and noise flags were not given"), None))
    for metric, label in (("t", "Acc-T"), ("s", "Acc-S")):
        arms = {"table2": {"arm": "table2"}, "none": {"arm": "none"}}
        out.append((A(f"TableII-cleaning-improves-{label}", f"Training MTMDD-VM on the cleaned source improves {label} "
                      "over the noisy source", "direction", arms=tuple(arms)), acc_scores(rows, metric, arms)))
    return out
