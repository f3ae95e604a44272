"""Paper A, section IV-A1 / Table II: noisy-source cleaning on the embedded emoji (notebook A.09).

The paper cleans Clickture-Dog with a fine-tuned VGG's probability of each image's own label
(its label comes from the query, so a wrong query makes a wrong label that pixels betray)
and keeps 34 % of it. Our **simulated** log plants the noise (``DomainData.noisy``): a noisy
image is indexed under another class's text, so it receives that class's clicks
(``click_label`` in :func:`clickvision.click.build.load_label_noise`). Two noise modes
(:func:`with_noise`):

* ``"clicks"`` (the simulator as it is): the noisy image keeps its label and pixels; only its
  clicks name another class. Cleaning can only change the click supervision.
* ``"labels"`` (the paper's kind): a noisy *training* image is also labelled with the class
  whose clicks it received (returned for that class's query, labelled by it), while its
  pixels show its true class. Val and test keep their true labels, so accuracy measures the
  truth and cleaning can matter for it.

**Which scorer, by a rule fixed before any run** (:data:`SCORER_FOR_NOISE`): a scorer sees the
noise only through the evidence that disagrees with the label. Under ``"clicks"`` label and
pixels agree and the clicks disagree, so the scorer is P(y | click TF-IDF); under
``"labels"`` label and clicks agree (both come from the query) and the pixels disagree, so it
is P(y | visual vector), the paper's kind. Within a scorer, the logistic regression's ``C``
is chosen by the out-of-fold log-loss of the (given) label; the planted noise enters neither
choice. Both scorers are scored in both modes for their AUROC, as a diagnostic only.

Table II is applied by :func:`clickvision.cleaning.clean_by_clicks` (band edges rescaled to
our class sizes) to every source image, with ``rule="calibrated"`` by default: its
thresholds scaled to keep the paper's 34 %. The removed *training* images leave the source's
training split; val and test stay whole, so every arm is tested on the same images. Removal is
judged on the training images (where it changes anything) against random removal of as many
(:func:`removal_judged`, :func:`claims_table_ii`). Arms: ``none`` (the noisy source),
``table2`` (the cleaning), ``random`` (as many training images removed at random: less data,
the same noise), ``oracle`` (exactly the planted noisy training images removed). The
recognizer is MTMDD-VM (eq. 15) from the paper A core (:func:`.joint.joint_run`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ... import cleaning, runtime
from ...click import build as click_build
from .data import LOG_NAME, PaperAData, torch_threads
from .joint import joint_run
from .train import HeadConfig, JointSpec, history_labels

ARMS = ("none", "table2", "random", "oracle")
SCORERS = ("click", "visual")
NOISES = ("clicks", "labels")
#: The scorer each noise mode uses (module docstring): the evidence that disagrees with the label.
SCORER_FOR_NOISE = {"clicks": "click", "labels": "visual"}
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


def with_noise(data: PaperAData, noise: str = "clicks", table: pd.DataFrame | None = None) -> PaperAData:
    """The data under noise mode ``noise`` (module docstring); ``"clicks"`` returns ``data`` itself.

    ``"labels"``: every planted noisy *training* source image (``noisy`` and split ``train``)
    is relabelled to the class whose clicks it received: ``table``'s ``click_label`` for its
    ``key`` (default: the built log's :func:`~clickvision.click.build.load_label_noise`). Its
    pixels, clicks and split stay; ``items["true_label"]`` keeps the old label. Nothing else
    changes (val/test noisy images keep their true labels; the target is untouched).
    """
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    if noise == "clicks":
        return data
    s = data.source
    if s.noisy is None:
        raise ValueError("with_noise: the source has no planted-noise column")
    if table is None:
        table = click_build.load_label_noise(LOG_NAME)
    if not {"key", "click_label"} <= set(table.columns):
        raise ValueError(f"with_noise: table needs columns key and click_label, got {list(table.columns)}")
    rows = np.flatnonzero(s.noisy & (s.split == "train"))
    keys = s.items["key"].astype(str).to_numpy()[rows]
    click_label = table.assign(key=table["key"].astype(str)).set_index("key")["click_label"].astype(str)
    missing = [k for k in keys if k not in click_label.index]
    if missing:
        raise ValueError(f"with_noise: no click_label for noisy training images {missing[:5]}")
    label_id = {str(c): i for i, c in enumerate(data.classes)}
    given = click_label.loc[keys].to_numpy()
    unknown = sorted({c for c in given if c not in label_id})
    if unknown:
        raise ValueError(f"with_noise: click labels {unknown[:5]} are not classes of the data")
    y = s.y.copy()
    y[rows] = [label_id[c] for c in given]
    if (y[rows] == s.y[rows]).any():
        raise ValueError("with_noise: a planted noisy image's click label equals its own label")
    items = s.items.copy()
    items["true_label"] = items["label"]
    items.loc[rows, "label"] = given
    return replace(data, source=replace(s, items=items, y=y))


def planted_training_noise(data: PaperAData) -> np.ndarray:
    """Per source image: planted noisy and in the training split (what cleaning should remove)."""
    s = data.source
    if s.noisy is None:
        raise ValueError("planted_training_noise: the source has no planted-noise column")
    return np.asarray(s.noisy, bool) & (s.split == "train")


def thin_classes(data: PaperAData, keep: np.ndarray, min_images: int = 2) -> pd.DataFrame:
    """Classes left with fewer than ``min_images`` kept source training images (none vanishes silently).

    One row per such class: ``class, train_images, kept``.
    """
    s = data.source
    keep = np.asarray(keep, bool)
    if keep.shape != s.y.shape:
        raise ValueError(f"keep has {keep.shape} entries, expected {s.y.shape} (one per source image)")
    train = s.split == "train"
    rows = []
    for c, name in enumerate(data.classes):
        n = int((train & (s.y == c)).sum())
        k = int((train & keep & (s.y == c)).sum())
        if k < min_images:
            rows.append({"class": name, "train_images": n, "kept": k})
    return pd.DataFrame(rows, columns=["class", "train_images", "kept"])


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


def cleaning_summary(result: cleaning.CleaningResult, noisy: np.ndarray, scorer: str,
                     train: np.ndarray | None = None) -> tuple[pd.DataFrame, dict]:
    """Table II counts per band (with the noise in and removed) and the precision/recall.

    ``noisy``: the noise to judge by (e.g. :func:`planted_training_noise`); ``train``: when
    given, the stages add ``train`` / ``train_kept`` and the scores are over training images.
    """
    noisy = np.asarray(noisy, bool)
    stages = result.stages.copy()
    names = list(stages["band"].iloc[:-1])
    per_band = lambda m: [int(m[result.band == b].sum()) for b in range(len(names))] + [int(m.sum())]  # noqa: E731
    if train is not None:
        train = np.asarray(train, bool)
        stages["train"] = per_band(train)
        stages["train_kept"] = per_band(train & result.keep)
    stages["noisy"] = per_band(noisy)
    stages["noisy_removed"] = per_band(noisy & ~result.keep)
    stages.insert(0, "scorer", scorer)
    on = np.ones(len(noisy), bool) if train is None else train
    return stages, {"scorer": scorer, **cleaning.cleaning_scores(result.keep[on], noisy[on])}


def table_ii_view(result: cleaning.CleaningResult, stages: pd.DataFrame) -> pd.DataFrame:
    """Table II as run, beside the paper's: one row per (rescaled) band and a total.

    Columns: the paper's band and thresholds (as printed), the thresholds applied here
    (``"calibrated"``: the printed pair times ``result.scale``; ``"rank"``: per class, not per
    band), then :func:`cleaning_summary`'s counts.
    """
    paper = PAPER_TABLE_II.groupby("paper band", sort=False)["threshold"].apply(
        lambda t: " / ".join(f"{x:g}" for x in t))
    pairs = cleaning.PAPER_THRESHOLDS
    if result.rule == "rank":
        ours = ["top share per class"] * len(pairs)
    else:
        ours = [" / ".join(f"{result.scale * x:.3g}" for x in (pair[:1] if pair[0] == pair[1] else pair))
                for pair in pairs]
    table = stages.drop(columns="scorer").set_index("band")
    table.insert(0, "paper band", list(paper.index) + [""])
    table.insert(1, "paper thresholds (First / Second)", list(paper) + [""])
    table.insert(2, f"thresholds here ({result.rule})", ours + [""])
    e = [f"{x:.1f}" for x in result.edges]
    table.index = ([f"n < {e[0]}"] + [f"{a} <= n < {b}" for a, b in zip(e[:-1], e[1:])] + [f"n >= {e[-1]}", "total"])
    return table


def removal_judged(result: cleaning.CleaningResult, own_prob: np.ndarray, data: PaperAData) -> dict:
    """The cleaning's removal on the source training images against their planted noise.

    :func:`clickvision.cleaning.removal_scores` on the training rows (noise score
    ``1 - own_prob``; its ``noisy`` and ``removed`` are counts), plus the masks ``keep_mask``
    and ``noisy_mask``, ``score`` and ``item`` (image keys) there, for :func:`claims_table_ii`,
    and the cleaning's ``rule`` and ``keep_rate_all`` (the share kept of every source image).
    """
    train = data.source.split == "train"
    keep, noisy = np.asarray(result.keep, bool)[train], planted_training_noise(data)[train]
    score = 1.0 - np.asarray(own_prob, float)[train]
    out = cleaning.removal_scores(keep, noisy, score)
    return {**out, "rule": result.rule, "keep_rate_all": result.keep_rate, "keep_mask": keep, "noisy_mask": noisy,
            "score": score, "item": data.source.items["key"].astype(str).to_numpy()[train]}


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
            with torch_threads(1), history_labels(method=arm, seed=seed):
                out = joint_run(sub, cfg, spec, seed)
            out += [{"metric": "n_train_s", "value": float(train.sum()), "seed": seed},
                    {"metric": "noise_train_s", "value": float(sub.source.noisy[train].mean()), "seed": seed},
                    {"metric": "classes_train_s", "value": float(len(np.unique(sub.source.y[train]))), "seed": seed}]
            rows += [{**r, "arm": arm} for r in out]
    return pd.DataFrame(rows)


def _rule_text(judged: Mapping) -> str:
    rate = 100 * judged["keep_rate_all"]
    return {"paper": f"Cleaning with Table II's thresholds as printed (keeping {rate:.1f} %)",
            "calibrated": f"Cleaning with Table II's thresholds scaled to keep {rate:.1f} %",
            "rank": f"Cleaning to the top {rate:.1f} % of each class by own-label probability"}[judged["rule"]]


def claims_table_ii(rows: pd.DataFrame | None, judged: Mapping[str, Mapping | None]) -> list:
    """IV-A1 as ``(Claim, data)`` pairs, per noise mode: the cleaning removes the noise; it improves recognition.

    ``judged[noise]``: :func:`removal_judged` of that mode plus its ``scorer`` (``None``: the
    removal claims are untestable); ``rows``: :func:`cleaning_accuracy` rows with a ``noise``
    column (``None`` or a mode without rows: no accuracy claims for it). Claim ids of the
    ``"clicks"`` mode are the notebook's earlier ones; the ``"labels"`` mode adds ``-labels``.

    Removal, one deterministic cleaning pass judged per source training image (the images
    resampled; :func:`clickvision.cleaning.removal_item_values`), each against random removal of
    as many images: precision > the noise rate, recall > the removed share (at a matched keep
    rate these two test the same event, more noisy images removed than chance, on two scales),
    and the scorer's AUROC > 0.5 (threshold-free). Accuracy, per test image over the seeds:
    table2 > none (the paper's implicit claim) and, where the ``random`` arm ran, table2 > random
    (as many training images removed: the cleaning's choice of images, data loss held equal).
    """
    from .claims import A, acc_scores

    out = []
    for noise, jd in judged.items():
        if noise not in NOISES:
            raise ValueError(f"judged: noise must be one of {NOISES}, got {noise!r}")
        sfx = "" if noise == "clicks" else "-labels"
        kind = {"clicks": "clicks of another class", "labels": "mislabelled images (label and clicks of another "
                "class, pixels of their own)"}[noise]
        ids = (f"TableII-removes-noise{sfx}", f"TableII-removal-recall{sfx}", f"TableII-scorer-AUROC{sfx}")
        if jd is None:
            out += [(A(i, f"Table II's cleaning removes the planted noise ({kind}; SIMULATED)", "untestable",
                       reason="the removal and noise flags were not given"), None) for i in ids]
        else:
            where = (f"SIMULATED noise: {kind}; scorer P(y | {jd['scorer']}); judged on {jd['n']} source training "
                     f"images, {100 * jd['random_precision']:.1f} % noisy, {100 * (1 - jd['keep_rate']):.1f} % removed")
            vals = cleaning.removal_item_values(jd["keep_mask"], jd["noisy_mask"], jd["score"])
            texts = {
                "precision": f"{_rule_text(jd)} removes noisy images more often than random removal of as many: "
                             f"precision above the noise rate ({where})",
                "recall": f"{_rule_text(jd)} removes a larger share of the noisy images than random removal of as "
                          f"many: recall above the removed share ({where})",
                "auroc": "The own-label probability ranks the planted noisy images below the clean ones: AUROC of "
                         f"1 - p above random (0.5) ({where})"}
            names = {"precision": ("cleaning, precision", "random removal, precision"),
                     "recall": ("cleaning, recall", "random removal, recall"),
                     "auroc": ("scorer, AUROC", "random, AUROC")}
            for cid, stat in zip(ids, ("precision", "recall", "auroc")):
                arms = names[stat]
                data = pd.concat([pd.DataFrame({"method": arm, "seed": 0, "item": jd["item"], "value": vals[col]})
                                  for arm, col in zip(arms, (stat, f"random_{stat}"))], ignore_index=True)
                out.append((A(cid, texts[stat], "direction", arms=arms), data))
        if rows is None or "noise" not in rows.columns or not (rows["noise"] == noise).any():
            continue
        sub = rows[rows["noise"] == noise]
        for metric, label in (("t", "Acc-T"), ("s", "Acc-S")):
            arms = {"table2": {"arm": "table2"}, "none": {"arm": "none"}}
            out.append((A(f"TableII-cleaning-improves-{label}{sfx}", f"Training MTMDD-VM on the cleaned source "
                          f"improves {label} over the noisy source (SIMULATED noise: {kind})", "direction",
                          arms=tuple(arms)), acc_scores(sub, metric, arms)))
        if (sub["arm"] == "random").any():
            for metric, label in (("t", "Acc-T"), ("s", "Acc-S")):
                arms = {"table2": {"arm": "table2"}, "random": {"arm": "random"}}
                out.append((A(f"TableII-cleaning-beats-random-{label}{sfx}", "The cleaning's choice of images matters: "
                              f"MTMDD-VM trained on the cleaned source has a higher {label} than on the source with as "
                              f"many training images removed at random (SIMULATED noise: {kind})", "direction",
                              arms=tuple(arms)), acc_scores(sub, metric, arms)))
    return out
