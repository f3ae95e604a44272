"""Paper B experiments (notebooks B.01, B.02): the SIMULATED click graph, CNN + CF ranking, DCG@25.

Data: the SIMULATED Clickture-format click logs and graded Dev sets (``cv.click.build``) over
real images (emoji drawn by Google; Open Clip Art) and the cached EfficientNet-Lite0 pooled
features. The training click graph keeps the triads on *train-split* images only, so the Dev
images (val/test split) and the Dev queries (withheld by the simulator) are both unseen in
training, as paper B's test phase requires (section 3). The Dev queries are split in two by a
fixed seeded draw: ``val`` queries choose hyper-parameters (neighbour count k), ``test``
queries are reported. Each query ranks only its own judged candidates (Clickture Dev).

Methods (each returns a score per Dev (query, candidate) pair):
  ``CNN+CF``     paper B: eq. (1) factors, eq. (3) similarities, the CF score (docs/READING-NOTES.md)
  ``CNN, R=Vq.Vi``  the same factors ranked by the predicted clicks alone (ablation)
  ``CCL-style``  click-weighted cross-view linear embedding, CCL in spirit (clicks)
  ``BoW-kNN (clicks)``  BoWDNN-R in spirit: words of the clicked queries of visual neighbours
  ``BoW-kNN (annotations)``  the same with the neighbours' annotation words: no clicks
  ``CNN+text, no clicks``  the eq. (1) model trained on the training images' own annotation
                 phrases instead of clicks (backbone + word vectors, no clicks)
  ``random``, ``oracle``  scale: a random order and the judged order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import features as feats_mod
from .. import retrieval, runtime, stats
from ..click import build as click_build
from ..click.log import read_click_log
from ..click.simulator import CLICKTURE_LITE, query_candidates
from ..data.base import DataError, ImageSet
from ..models import click_cf
from .paper_b_figures import example_rankings, plot_subgraph  # noqa: F401  (the notebooks' B.* names)

PAPER_TABLE1 = {"BoWDNN-R": 50.89, "CCL": 50.59, "PAMIR": 50.17, "PSI": 49.91, "CMRNN": 50.71, "MRW-NN": 51.04,
                "CNN+CF": 79.88}
"""Paper B Table 1, DCG@25 x 100 on Clickture Dev (real clicks, 1,000 queries)."""
DATASETS = ("emoji-google", "openclipart")
CF, PLAIN, CCL, BOW_CLICKS, BOW_TEXT, TEXT_MODEL, RANDOM, ORACLE = (
    "CNN+CF", "CNN, R=Vq.Vi", "CCL-style", "BoW-kNN (clicks)", "BoW-kNN (annotations)", "CNN+text, no clicks",
    "random", "oracle")
METHODS = (ORACLE, CF, PLAIN, CCL, BOW_CLICKS, TEXT_MODEL, BOW_TEXT, RANDOM)
USES_CLICKS = {CF: True, PLAIN: True, CCL: True, BOW_CLICKS: True, BOW_TEXT: False, TEXT_MODEL: False,
               RANDOM: False, ORACLE: False}
PAPER_ROW = {CF: PAPER_TABLE1["CNN+CF"], CCL: PAPER_TABLE1["CCL"], BOW_CLICKS: PAPER_TABLE1["BoWDNN-R"]}


@dataclass
class ClickData:
    """One SIMULATED click data set joined with its images and CNN features (row-aligned)."""

    name: str
    images: ImageSet
    features: np.ndarray
    log: pd.DataFrame      # SIMULATED triads on train-split images: the training click graph
    log_all: pd.DataFrame  # every SIMULATED triad
    dev: pd.DataFrame      # query, key, relevance, judgment, part ('val' | 'test')
    whitening: tuple[np.ndarray, np.ndarray]  # feature centring + 128-axis PCA whitening, train images

    @property
    def keys(self) -> list[str]:
        return self.images.items["key"].tolist()

    def rows(self, keys) -> np.ndarray:
        return pd.Index(self.keys).get_indexer(keys)


def load_click_data(name: str = "emoji-google", val_share: float = 0.5, train_images_only: bool = True,
                    split_seed: int = 0, max_dev_queries: int | None = None, feature_pcs: int = 128) -> ClickData:
    """Load a SIMULATED log + Dev set, check that its keys join the images, attach features.

    Features are computed (cached) on the full default ImageSet and indexed by key, so the
    cache ``make features`` fills is hit; their whitening (``feature_pcs`` principal axes) is
    fitted once on the train-split images. ``val_share`` of the Dev queries (seeded by
    ``split_seed``) form the validation part; ``max_dev_queries`` keeps that many per part.
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if not 0 < val_share < 1:
        raise ValueError(f"val_share must lie in (0, 1), got {val_share!r}")
    from .. import data

    images = click_build.source_images(name)
    full = data.load_emoji() if name.startswith("emoji") else data.load_openclipart()
    full_rows = pd.Index(full.items["key"]).get_indexer(images.items["key"])
    if (full_rows < 0).any():
        raise DataError(f"{name}: image keys missing from the default ImageSet {full.name!r}")
    features = feats_mod.extract_features(full, image_size=128, kind="pooled")[full_rows]
    log_all = read_click_log(click_build.click_log_path(name))
    dev = click_build.load_dev_set(name)
    key_index = pd.Index(images.items["key"])
    for what, frame in (("log", log_all), ("Dev set", dev)):
        bad = key_index.get_indexer(frame["key"]) < 0
        if bad.any():
            raise DataError(f"{name}: {bad.sum()} {what} keys do not join the images, e.g. "
                            f"{frame['key'][bad].iloc[0]!r}")
    split = images.items.set_index("key")["split"]
    log = log_all[log_all["key"].map(split) == "train"] if train_images_only else log_all
    queries = np.array(sorted(dev["query"].unique()), dtype=object)
    order = np.random.default_rng(split_seed).permutation(len(queries))
    val = set(queries[order[: int(round(val_share * len(queries)))]])
    dev = dev.assign(part=np.where(dev["query"].isin(val), "val", "test"))
    if max_dev_queries is not None:
        kept = [q for q in queries[order] if q in val][:max_dev_queries] + \
               [q for q in queries[order] if q not in val][:max_dev_queries]
        dev = dev[dev["query"].isin(set(kept))]
    train_rows = np.flatnonzero(images.items["split"].to_numpy() == "train")
    whitening = click_cf.whitening_basis(features[train_rows], feature_pcs)
    return ClickData(name, images, features, log.reset_index(drop=True), log_all, dev.reset_index(drop=True),
                     whitening)


def subsample_queries(log: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """The triads of a seeded ``fraction`` of the log's queries (nested: smaller is a subset)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    queries = np.array(sorted(log["query"].unique()), dtype=object)
    order = np.random.default_rng(seed).permutation(len(queries))
    keep = set(queries[order[: max(1, int(np.ceil(fraction * len(queries))))]])
    return log[log["query"].isin(keep)].reset_index(drop=True)


# --- B.01: the click graph ------------------------------------------------------------------------

def click_graph_summary(data: ClickData) -> pd.DataFrame:
    """Counts of the SIMULATED click graph beside Clickture-Lite's published figures."""
    rows = []
    for label, log in (("all triads", data.log_all), ("training graph (train images)", data.log)):
        per_img, per_q = log.groupby("key").size(), log.groupby("query").size()
        rows.append({"graph": label, "triads": len(log), "queries": log["query"].nunique(),
                     "images": log["key"].nunique(), "clicks": int(log["clicks"].sum()),
                     "triads/image": len(log) / len(per_img), "triads/query": len(log) / len(per_q),
                     "single-click share": float((log["clicks"] == 1).mean())})
    lite = CLICKTURE_LITE
    rows.append({"graph": "Clickture-Lite (published)", "triads": lite["triads"], "queries": lite["queries"],
                 "images": lite["images"], "clicks": np.nan, "triads/image": lite["triads_per_image"],
                 "triads/query": lite["triads_per_query"], "single-click share": np.nan})
    return pd.DataFrame(rows).set_index("graph")


def dev_summary(data: ClickData) -> pd.DataFrame:
    """The SIMULATED Dev set: queries, pairs, grades per part, and word coverage of its queries."""
    vocab = click_cf.WordVocabulary.from_queries(data.log["query"].unique())
    rows = []
    for part, d in data.dev.groupby("part"):
        queries = d["query"].unique()
        cov = vocab.coverage(queries)
        rows.append({"part": part, "queries": len(queries), "pairs": len(d),
                     "Excellent": int((d["relevance"] == 3).sum()), "Good": int((d["relevance"] == 2).sum()),
                     "Bad": int((d["relevance"] == 0).sum()),
                     "queries seen in log": int(np.isin(queries, data.log_all["query"]).sum()),
                     "share of words known": float(cov.mean()), "queries with no known word": int((cov == 0).sum())})
    return pd.DataFrame(rows).set_index("part")


def degree_table(log: pd.DataFrame) -> pd.DataFrame:
    """Degrees of the bipartite graph: triads per image, per query, and clicks per triad."""
    return pd.DataFrame({"per image": log.groupby("key").size().describe(),
                         "per query": log.groupby("query").size().describe(),
                         "clicks per triad": log["clicks"].describe()}).T


def subgraph(log: pd.DataFrame, n_queries: int = 4, per_query: int = 3, seed: int = 0) -> pd.DataFrame:
    """A small connected piece of the click graph like paper B's Figure 1: edges ``query, key, clicks``.

    The hub is a seeded choice among the 20 most clicked images with ``n_queries`` queries that
    clicked them at least twice (single clicks are often the simulated junk clicks); then its
    ``n_queries`` most clicked queries and, for each, its ``per_query`` most clicked images.
    """
    strong = log[log["clicks"] >= 2]
    per_img = strong.groupby("key").agg(queries=("query", "nunique"), clicks=("clicks", "sum"))
    per_img = per_img[per_img["queries"] >= n_queries]
    if len(per_img) == 0:
        raise ValueError(f"no image has {n_queries} distinct queries with >= 2 clicks")
    hubs = per_img.sort_values(["clicks", "queries"], ascending=False).index[:20].to_numpy()
    hub = np.random.default_rng(seed).choice(hubs)
    queries = log[log["key"] == hub].nlargest(n_queries, "clicks")["query"]
    edges = [log[log["query"] == q].nlargest(per_query, "clicks") for q in queries]
    edges.append(log[(log["key"] == hub) & log["query"].isin(queries)])
    return pd.concat(edges).drop_duplicates(["query", "key"]).reset_index(drop=True)


# --- B.02: the methods -------------------------------------------------------------------------

def annotation_log(data: ClickData, log: pd.DataFrame | None = None) -> pd.DataFrame:
    """The training images' (those of ``log``) own annotation phrases as pseudo-triads (no clicks)."""
    train = data.images.items[data.images.items["key"].isin(set((data.log if log is None else log)["key"]))]
    return click_cf.annotation_pseudo_log(train["key"], train["text"], lambda t: query_candidates(t)[0])


@dataclass
class FittedMethods:
    """Everything trained on one click data set (one seed, one D, one amount of clicks)."""

    cf: click_cf.ClickCFFit
    text_model: click_cf.ClickCFFit | None
    ccl: click_cf.CrossViewEmbedding | None
    neighbours: retrieval.Neighbours
    dim: int
    log: pd.DataFrame  # the training click graph they learned from


def val_dcg_fn(data: ClickData, seed: int = 0):
    """``fit -> {"val_dcg": ...}``: mean DCG@25 x100 of ``R = V_q . V_i`` on the val Dev queries
    (the Trainer keeps the best epoch by it)."""
    val = data.dev[data.dev["part"] == "val"].reset_index(drop=True)
    queries = val["query"].unique().tolist()
    q_idx, i_idx = pd.Index(queries).get_indexer(val["query"]), data.rows(val["key"])

    def fn(fit: click_cf.ClickCFFit) -> dict[str, float]:
        score = _pair_scores(fit.query_vectors(queries), fit.image_vectors(data.features), q_idx, i_idx)
        return {"val_dcg": float(retrieval.dcg_per_query(val.assign(score=score), seed=seed).mean() * 100)}

    return fn


def fit_methods(data: ClickData, dim: int = 64, epochs: int = 8, lr: float = 0.005, negatives: int = 4,
                target: str = "log1p", weight_decay: float = 1e-3, max_k: int = 50, seed: int = 0,
                baselines: bool = True, log: pd.DataFrame | None = None) -> FittedMethods:
    """Train paper B's model (and the learned comparators) on the training click graph.

    Both eq.-(1) models keep the epoch with the best val DCG@25 (:func:`val_dcg_fn`).
    """
    log = data.log if log is None else log
    val_fn = val_dcg_fn(data, seed)
    train = dict(dim=dim, epochs=epochs, lr=lr, negatives=negatives, target=target, weight_decay=weight_decay,
                 seed=seed, val_fn=val_fn, monitor="val_dcg", whitening=data.whitening)
    cf = click_cf.fit_click_cf(log, data.features, data.keys, **train)
    v = cf.image_vectors(data.features)
    profiles = retrieval.low_rank_profiles(cf.query_vectors(cf.train_queries), v)
    nb = retrieval.top_k_neighbours(profiles, min(max_k, len(v) - 1))
    text_model = ccl = None
    if baselines:
        text_model = click_cf.fit_click_cf(annotation_log(data, log), data.features, data.keys, **train)
        ccl = click_cf.fit_cross_view_pls(log, data.features, data.keys, dim=dim, target=target,
                                          whitening=data.whitening)
    return FittedMethods(cf, text_model, ccl, nb, dim, log)


def _pair_scores(query_vecs: np.ndarray, image_vecs: np.ndarray, q_idx: np.ndarray, i_idx: np.ndarray) -> np.ndarray:
    return np.einsum("pd,pd->p", query_vecs[q_idx], image_vecs[i_idx])


def score_dev(data: ClickData, fitted: FittedMethods, ks: tuple[int, ...] = (5, 10, 20, 50), bow_k: int = 10,
              seed: int = 0) -> pd.DataFrame:
    """The Dev pairs with one score column per method (``CNN+CF@k`` for each k of ``ks``)."""
    dev = data.dev.reset_index(drop=True)
    queries = dev["query"].unique().tolist()
    q_idx, i_idx = pd.Index(queries).get_indexer(dev["query"]), data.rows(dev["key"])
    out = dev.copy()
    cf = fitted.cf
    qv, iv = cf.query_vectors(queries), cf.image_vectors(data.features)
    predicted = qv @ iv.T  # eq. (1) for every Dev query and every image of the pool
    out[PLAIN] = predicted[q_idx, i_idx]
    for k in ks:
        if k <= fitted.neighbours.k:
            w = retrieval.neighbour_weights(fitted.neighbours.truncate(k), len(iv))
            out[f"{CF}@{k}"] = retrieval.cf_scores(predicted, w)[q_idx, i_idx]
    if fitted.text_model is not None:
        tm = fitted.text_model
        out[TEXT_MODEL] = _pair_scores(tm.query_vectors(queries), tm.image_vectors(data.features), q_idx, i_idx)
    if fitted.ccl is not None:
        out[CCL] = _pair_scores(fitted.ccl.query_vectors(queries), fitted.ccl.image_vectors(data.features),
                                q_idx, i_idx)
    log = fitted.log
    train_keys = np.array(sorted(log["key"].unique()), dtype=object)
    mix = click_cf.visual_neighbour_mix(data.features[data.rows(train_keys)], data.features, bow_k)
    texts = data.images.items.set_index("key").loc[train_keys, "text"].tolist()
    for name, kw in ((BOW_CLICKS, {"log": log}), (BOW_TEXT, {"texts": texts})):
        vocab = click_cf.WordVocabulary.from_queries(log["query"].unique() if "log" in kw else texts)
        bags = click_cf.knn_word_profiles(click_cf.word_bags(vocab, train_keys, **kw), mix)
        out[name] = click_cf.bag_cosines(vocab, queries, bags, q_idx, i_idx)
    out[RANDOM] = np.random.default_rng(seed).random(len(out))
    out[ORACLE] = out["relevance"].astype(float)
    return out


def select_k(per_query: pd.DataFrame) -> int:
    """The neighbour count k of ``CNN+CF@k`` with the best mean DCG@25 on the ``val`` queries."""
    val = per_query[(per_query["part"] == "val") & per_query["method"].str.startswith(f"{CF}@")]
    means = val.groupby("method")["dcg"].mean()
    best = means[means == means.max()].index
    return min(int(m.split("@")[1]) for m in best)


def finalize(per_query: pd.DataFrame, k: int) -> pd.DataFrame:
    """Rename ``CNN+CF@k`` (the selected k) to ``CNN+CF`` and drop the other k."""
    pq = per_query[~per_query["method"].str.startswith(f"{CF}@") | (per_query["method"] == f"{CF}@{k}")]
    return pq.assign(method=pq["method"].replace({f"{CF}@{k}": CF}))


def dcg_table(per_query: pd.DataFrame, part: str = "test", n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean DCG@25 x100 per method with a 90 % bootstrap interval over queries; paper B's figure beside."""
    rows = []
    for m in [x for x in METHODS if x in set(per_query["method"])]:
        v = per_query[(per_query["method"] == m) & (per_query["part"] == part)].sort_values("query")["dcg"]
        mean, lo, hi = stats.bootstrap_ci(v.to_numpy(), n_resamples=n_resamples, seed=seed)
        rows.append({"method": m, "uses clicks": USES_CLICKS.get(m, True), "DCG@25": mean, "lo": lo, "hi": hi,
                     "paper": PAPER_ROW.get(m, np.nan)})
    return pd.DataFrame(rows).set_index("method")


@dataclass
class DatasetRun:
    """Everything one data set's evaluation produced."""

    per_query: pd.DataFrame  # method, query, part, dcg (x100); CNN+CF at the chosen k
    k: int                   # neighbour count chosen on the val queries
    data: ClickData
    fitted: FittedMethods
    scored: pd.DataFrame     # the Dev pairs with one score column per method


def run_dataset(name: str, dim: int = 64, epochs: int = 8, lr: float = 0.005, negatives: int = 4,
                target: str = "log1p", weight_decay: float = 1e-3, click_share: float = 1.0, seed: int = 0,
                data: ClickData | None = None, max_dev_queries: int | None = None) -> DatasetRun:
    """Train, score and evaluate every method on one data set (``click_share`` of the training
    click queries); ``CNN+CF``'s k is chosen on the val queries."""
    data = data or load_click_data(name, max_dev_queries=max_dev_queries)
    log = subsample_queries(data.log, click_share, seed) if click_share < 1 else data.log
    fitted = fit_methods(data, dim, epochs, lr, negatives, target, weight_decay, seed=seed, log=log)
    scored = score_dev(data, fitted, seed=seed)
    pq = retrieval.dcg_by_method(scored, seed=seed)
    k = select_k(pq)
    return DatasetRun(finalize(pq, k), k, data, fitted, scored)


def comparisons(per_query: pd.DataFrame, against: str = CF, part: str = "test", seed: int = 0) -> pd.DataFrame:
    """Paired tests over queries (``cv.stats.paired_query_test``) of ``against`` minus every other method."""
    wide = per_query[per_query["part"] == part].pivot(index="query", columns="method", values="dcg")
    rows = []
    for m in [x for x in METHODS if x in wide.columns and x not in (against, ORACLE)]:
        t = stats.paired_query_test(wide[against].to_numpy(), wide[m].to_numpy(), seed=seed)
        rows.append({"vs": m, "uses clicks": USES_CLICKS.get(m, True), "mean diff": t["mean_diff"], "lo": t["lo"],
                     "hi": t["hi"], "p (bootstrap)": t["p_value"], "p (paired t)": t["t_p_value"]})
    return pd.DataFrame(rows).set_index("vs")


CONTENT_ONLY_REASON = (
    "the simulated clicks are a noisy copy of the annotation text that the content-only baselines read (the Dev "
    "grades are computed from that text, the clicks from a noisy engine over it), so content-only ahead of clicks "
    "is built into this simulation and cannot test the paper's claim")


def query_scores(per_query_by_seed: dict, part: str = "test") -> pd.DataFrame:
    """Tidy per-query DCG@25 x100 rows (method, seed, item = query, value) for :mod:`clickvision.claims`.

    ``per_query_by_seed``: ``{seed: DatasetRun.per_query}``, every seed a full :func:`run_dataset`
    on the same data (the same queries); only ``part`` queries are kept.
    """
    frames = []
    for sd, pq in per_query_by_seed.items():
        t = pq[pq["part"] == part]
        frames.append(pd.DataFrame({"method": t["method"].to_numpy(), "seed": int(sd),
                                    "item": t["query"].astype(str).to_numpy(), "value": t["dcg"].to_numpy(float)}))
    return pd.concat(frames, ignore_index=True)


def claim_list(name: str) -> list:
    """Paper B's Table 1 claims on one data set, as :class:`clickvision.claims.Claim` (DCG@25 x100).

    The content-only comparison is untestable here (:data:`CONTENT_ONLY_REASON`); the click-trained
    comparisons are direction claims judged on per-query DCG@25, seeds x test queries.
    ``paper_effect``: CNN+CF minus the paper's row for that baseline (Table 1, x100).
    """
    from ..claims import Claim

    def direction(cid, text, other, paper=None):
        return Claim("B", f"B.02-{cid}-{name}", f"{text} ({name}, simulated clicks; DCG@25 x100 per test query)",
                     "direction", arms=(CF, other), paper_effect=paper)

    return [
        Claim("B", f"B.02-cf-beats-content-only-{name}",
              f"CNN+CF beats the content-only (no-click) baselines on DCG@25 ({name})", "untestable",
              reason=CONTENT_ONLY_REASON),
        direction("cf-beats-ccl", "CNN+CF beats a click-trained cross-view embedding (CCL in spirit) on DCG@25", CCL,
                  PAPER_TABLE1["CNN+CF"] - PAPER_TABLE1["CCL"]),
        direction("cf-beats-bowdnn", "CNN+CF beats bag-of-words similarity ranking (BoWDNN-R in spirit) on DCG@25",
                  BOW_CLICKS, PAPER_TABLE1["CNN+CF"] - PAPER_TABLE1["BoWDNN-R"]),
        direction("cf-step-helps", "the CF step (eq. 3 similarities, neighbour score) beats ranking by R = Vq.Vi alone",
                  PLAIN),
    ]


def sweep_dim_clicks(data: ClickData, dims: tuple[int, ...] = (16, 64), fractions: tuple[float, ...] = (0.25, 1.0),
                     seeds: tuple[int, ...] = (0,), k: int = 20, done: dict | None = None, **train) -> pd.DataFrame:
    """Test DCG@25 x100 of ``CNN+CF`` (k fixed) and ``R=Vq.Vi`` per latent size D x share of the
    click queries (nested samples) x seed; ``train``: :func:`fit_methods` arguments.

    ``done``: ``{(share, D, seed): FittedMethods}`` already trained (the main run), not refitted.
    """
    rows = []
    for frac in runtime.progress(fractions, desc="click share: fractions"):
        for seed in seeds:
            log = subsample_queries(data.log, frac, seed)
            for dim in dims:
                fitted = (done or {}).get((frac, dim, seed)) or fit_methods(
                    data, dim, seed=seed, baselines=False, log=log, max_k=k, **train)
                scored = score_dev(data, fitted, ks=(k,), seed=seed)
                pq = retrieval.dcg_by_method(scored, [f"{CF}@{k}", PLAIN], seed=seed)
                for m, v in pq[pq["part"] == "test"].groupby("method")["dcg"].mean().items():
                    rows.append({"clicks share": frac, "triads": len(log), "D": dim, "seed": seed,
                                 "method": CF if m.startswith(CF) else m, "DCG@25": v})
    return pd.DataFrame(rows)
