"""Paper D's framework on REAL interactions: MovieLens movies as the items (notebook D.06).

Nothing is simulated here. Items: the MovieLens movies of the embedded extract (the dslabs copy of
ml-latest-small: 100,004 real ratings by 671 users) that carry a genre and at least ``min_ratings``
ratings, split 70/15/15 (:func:`~.data.movielens_items`). Labels: their real genres. Content: the
movie's title text, TF-IDF of its words plus the year and the decade as tokens
(:func:`title_documents`; scikit-learn's ``TfidfVectorizer`` fitted on the training movies only),
reduced to a dense width by ``TruncatedSVD`` (fitted on the training movies only): the text stands in
for the image features of D.03-D.04 (the model is the same head, it reads a feature matrix).
Auxiliary target: CF vectors from the real ratings (EASE by default, the CF model of D.03's default),
fitted on the ratings of every item movie except the test movies (``cf_scope="all-but-test"``, as
D.03; ``"train"``: the training movies' ratings only), so the test movies are cold: none of their
ratings reaches the CF fit or the label model. The target is gated before it is used
(:func:`~.cf.information_gate`: out-of-fold CF2Label mAP on the training movies vs the label prior).

Methods: Text-only (paper D's Image-only on text) and MTL-reconstruct-uniform (eq. 3), alpha chosen
on validation mAP per label ratio from a small grid (training seed ``seeds[0]``, that ratio's label
removal), then every seed trained; Table 5 is the full-label ratio (more methods on request).
Claims: per-test-movie AP rows (method, seed, label_ratio, item = movie id, value), judged by
:mod:`clickvision.claims`; per-genre AP rows beside them (their mean is the tables' mAP).
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch

from ... import metrics as M
from ...data import movielens as ml_data
from ...losses import cf as losses
from ...models import collab
from .cf import CF_MODELS, CFSettings, gate_line, information_gate, item_cf_fit
from .core import CF_SCOPES, ImageRun, scored_at_ratio
from .core import label_paucity as paucity_loop
from .data import LabelledItems, gaussianize, movielens_items

TEXT_ONLY = "Text-only"  # paper D's Image-only, on the title text
MTL = "MTL-reconstruct uniform"
# Paper D's Table 5, MovieLens column (mAP; gain over Image-only in %, * = significant in the paper)
PAPER_MOVIELENS_TABLE5 = {"Image-only": (0.329, 0.0), "Sequential": (0.308, -6.5), "Contrastive-loss": (0.325, -1.3),
                          "MTL-reconstruct uniform": (0.336, 2.0), "MTL-reconstruct interaction": (0.329, 0.0),
                          "MTL-reconstruct loss": (0.338, 2.6)}
# Table 5's methods here (name, method, confidence scheme); Image-only is called Text-only
TABLE5_METHODS = ((TEXT_ONLY, "image_only", "uniform"), ("Sequential", "sequential", "uniform"),
                  ("Contrastive-loss", "contrastive", "uniform"), (MTL, "mtl", "uniform"),
                  ("MTL-reconstruct interaction", "mtl", "interaction"), ("MTL-reconstruct loss", "mtl", "loss"))


# ----------------------------------------------------------------------------- content: title text
def title_documents(titles, years, decade: bool = True) -> list[str]:
    """One document per movie: its title, then the year as a token (``year1995``) and, with
    ``decade``, the decade (``decade1990``); a missing year adds no token."""
    titles, years = list(titles), list(years)
    if len(titles) != len(years):
        raise ValueError(f"title_documents: titles and years must have equal length, got {len(titles)}, {len(years)}")
    docs = []
    for t, y in zip(titles, years):
        words = ["" if t is None or pd.isna(t) else str(t)]
        if y is not None and not pd.isna(y):
            words.append(f"year{int(y)}")
            if decade:
                words.append(f"decade{int(y) // 10 * 10}")
        docs.append(" ".join(w for w in words if w))
    return docs


def text_features(docs: list[str], train_rows: np.ndarray, svd_dim: int = 128, min_df: int = 2,
                  seed: int = 0) -> tuple[np.ndarray, dict]:
    """(dense features of every document, info): TF-IDF (scikit-learn ``TfidfVectorizer``, word
    tokens, ``min_df`` training documents per term, sublinear tf) fitted on ``docs[train_rows]``
    only, then ``TruncatedSVD`` to ``svd_dim`` columns fitted on the training rows only
    (``svd_dim=0``: the TF-IDF matrix itself, densified). Other documents are only transformed:
    a word seen in no training title adds nothing."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from threadpoolctl import threadpool_limits

    if not isinstance(svd_dim, (int, np.integer)) or svd_dim < 0:
        raise ValueError(f"svd_dim must be an integer >= 0, got {svd_dim!r}")
    if not isinstance(min_df, (int, np.integer)) or min_df < 1:
        raise ValueError(f"min_df must be an integer >= 1, got {min_df!r}")
    train_rows = np.asarray(train_rows)
    if len(train_rows) < 2:
        raise ValueError(f"train_rows must hold at least 2 documents, got {len(train_rows)}")
    vec = TfidfVectorizer(min_df=min_df, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    vec.fit([docs[i] for i in train_rows])
    tfidf = vec.transform(docs)
    info = {"vocabulary": len(vec.vocabulary_), "svd_dim": 0, "svd_explained": 1.0}
    if svd_dim == 0:
        return tfidf.toarray().astype(np.float32), info
    if svd_dim >= tfidf.shape[1]:
        raise ValueError(f"svd_dim must be below the vocabulary size {tfidf.shape[1]}, got {svd_dim}")
    with threadpool_limits(1):  # one BLAS thread: OpenBLAS's threads spin on these small matrices (10x the CPU)
        svd = TruncatedSVD(svd_dim, algorithm="randomized", n_iter=5, random_state=seed).fit(tfidf[train_rows])
        x = svd.transform(tfidf).astype(np.float32)
    info.update(svd_dim=svd_dim, svd_explained=float(svd.explained_variance_ratio_.sum()))
    return x, info


# ----------------------------------------------------------------------------- items, target, gate
def movielens_text_items(min_ratings: int = 5, seed: int = 0, svd_dim: int = 128, min_df: int = 2,
                         decade: bool = True) -> tuple[LabelledItems, pd.DataFrame, np.ndarray, dict]:
    """(items with title-text features ``x``, the real ratings, ratings per item movie, info).

    The movies of :func:`~.data.movielens_items` (a genre, split 70/15/15 with ``seed``) with at
    least ``min_ratings`` ratings in the extract (a selection on the count only; the split is drawn
    before it, so it stays a random 70/15/15 of the kept movies)."""
    if not isinstance(min_ratings, (int, np.integer)) or min_ratings < 1:
        raise ValueError(f"min_ratings must be an integer >= 1, got {min_ratings!r}")
    base, events = movielens_items(seed)
    counts = events.groupby("item").size().reindex(base.keys, fill_value=0).to_numpy()
    keep = counts >= min_ratings
    if keep.sum() < 10 or not all((base.split[keep] == s).sum() >= 2 for s in ("train", "val", "test")):
        raise ValueError(f"min_ratings={min_ratings} leaves too few movies ({int(keep.sum())})")
    meta = ml_data.load_movielens().items.set_index("item").loc[base.keys[keep]]
    docs = title_documents(meta["title"], meta["year"], decade)
    split = base.split[keep]
    x, info = text_features(docs, np.flatnonzero(split == "train"), svd_dim, min_df, seed)
    rule = f"{base.rule}; movies with >= {min_ratings} ratings ({int(keep.sum()):,} of {len(base.keys):,})"
    items = LabelledItems(base.keys[keep], split, base.y[keep], base.classes, x, rule)
    info.update(movies=int(keep.sum()), movies_with_genre=len(base.keys), min_ratings=min_ratings,
                extract_ratings=len(events), extract_users=int(events["user"].nunique()),
                documents=np.array(docs, dtype=object))
    return items, events, counts[keep], info


def movielens_run(min_ratings: int = 5, cf_model: str = "ease", cf_settings: CFSettings | None = None, seed: int = 0,
                  svd_dim: int = 128, min_df: int = 2, cf_scope: str = "all-but-test", cf2label_epochs: int = 20,
                  decade: bool = True, verbose: bool = False) -> ImageRun:
    """Items (title text as features), CF vectors from the real ratings, confidences and the gate.

    The CF model (``cf_model``, settings ``cf_settings``) is fit on the real ratings (each rating an
    interaction) of the non-test item movies (``cf_scope="all-but-test"``: training and validation
    movies) or of the training movies only (``"train"``); the test movies' ratings never reach it.
    The training movies' vectors are rank-normalised (:func:`~.data.gaussianize`) and gated
    (:func:`~.cf.information_gate`, out of fold, before the target is used; ``gate['scores']``
    keeps the out-of-fold scores for :func:`gate_by_count`). ``verbose``: print the gate line.
    Returns an :class:`~.core.ImageRun` (its items' ``x`` are the text features; ``info`` holds the
    counts, the text features' sizes and the CF fit log; ``info['ratings']`` the ratings per training
    movie in the whole extract)."""
    if cf_scope not in CF_SCOPES:
        raise ValueError(f"cf_scope must be one of {CF_SCOPES}, got {cf_scope!r}")
    if cf_model not in CF_MODELS:
        raise ValueError(f"cf_model must be one of {CF_MODELS}, got {cf_model!r}")
    items, events, counts, info = movielens_text_items(min_ratings, seed, svd_dim, min_df, decade)
    tr = items.rows("train")
    cf_keys = items.keys[tr] if cf_scope == "train" else items.keys_outside("test")
    tag = f"movielens-min{min_ratings}-{cf_scope}"
    q_all, n_all, log = item_cf_fit(events, cf_keys, cf_model, cf_settings, seed, cache_tag=tag)
    col = {k: i for i, k in enumerate(cf_keys)}
    pick = np.array([col[k] for k in items.keys[tr]])
    q, n = gaussianize(q_all[pick], np.flatnonzero(n_all[pick] > 0)), n_all[pick]
    gate = information_gate(q, items.y[tr], seed=seed, epochs=cf2label_epochs)
    pl = losses.positive_label_loss(torch.as_tensor(gate["scores"]), torch.as_tensor(items.y[tr])).numpy()
    info.update(cf_model=cf_model, cf_scope=cf_scope, cf_items=len(cf_keys), cf_events=int(n_all.sum()),
                cf_users=int(events.loc[events["item"].isin(set(cf_keys)), "user"].nunique()),
                test_movies=len(items.rows("test")), ratings=counts[tr],
                **{f"cf_{k}": v for k, v in log.items() if k != "model"})
    if verbose:
        print(gate_line(gate, f"{cf_model.upper()} CF vectors of the real ratings").replace("images", "movies"))
    return ImageRun(items, q, n, pl, gate["map"], gate=gate, info=info)


def gate_by_count(run: ImageRun, edges: tuple = (1, 2, 5, 10, 20)) -> pd.DataFrame:
    """The gate's out-of-fold CF2Label mAP within groups of training movies by their number of
    ratings (``[edges[i], edges[i+1])``, the last open; the first group starts at the fewest ratings
    a training movie has), against the label prior of the same movies: does the CF vector of a
    rarely rated movie carry its genres? Rows: ratings, movies, map, prior, ratio (a group whose
    movies lack some genre is scored over the genres it has)."""
    if "scores" not in run.gate:
        raise ValueError("gate_by_count: the run's gate has no out-of-fold scores (use movielens_run)")
    edges = tuple(edges)
    if len(edges) < 1 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError(f"edges must be increasing, got {edges}")
    y = run.items.y[run.items.rows("train")]
    n, scores = np.asarray(run.info["ratings"]), run.gate["scores"]
    low = int(n.min())
    edges = (low,) + tuple(e for e in edges if e > low)
    rows = []
    for lo, hi in zip(edges, edges[1:] + (np.inf,)):
        sel = (n >= lo) & (n < hi)
        if sel.sum() < 2:
            continue
        ys = y[sel]
        keep = ys.any(0)
        m = M.average_precision_macro(ys[:, keep], scores[sel][:, keep])
        prior = float(ys[:, keep].mean(0).mean())
        label = f"{lo}" if hi == lo + 1 else (f"{lo}+" if hi == np.inf else f"{lo}-{int(hi) - 1}")
        rows.append({"ratings": label, "movies": int(sel.sum()), "map": m, "prior": prior, "ratio": m / prior})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- Table 5 and Figs. 3-4
def label_paucity(run: ImageRun, ratios: tuple, alphas: tuple, seeds: tuple = (0,), unit: str = "items",
                  settings: collab.FitSettings | None = None, n_resamples: int = 50
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Figs. 3-4 on MovieLens: Text-only vs MTL-reconstruct-uniform at each label ratio (the loop is
    :func:`~.core.label_paucity`'s, with alpha chosen on validation, Text-only as the baseline's name,
    movie ids as items and per-genre rows).

    Per ratio, alpha is chosen on validation (:func:`~.core.choose_alpha`, training seed ``seeds[0]``);
    then both methods are trained with every seed, the labels removed per seed
    (:func:`~.core.mask_labels`, the same removal for both methods). Returns (summary, per_seed,
    sweep): per (ratio, method) paper D's protocol row (mean, ``lo_paper``/``hi_paper``, ``gain_%``
    vs Text-only; display only) with the chosen alpha; per (ratio, method, seed) validation and
    test mAP; the alpha sweeps. ``summary.attrs['items']``: tidy per-test-movie AP rows
    (method, seed, label_ratio, item = movie id, value; ``value`` is the AP, the claims engine's
    column name) for :mod:`clickvision.claims`; ``summary.attrs['genres']``: the same per genre
    (item = genre; their mean over the genres is the table's mAP)."""
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not isinstance(alphas, (list, tuple)) or not alphas or any(not a > 0 for a in alphas):
        raise ValueError(f"alphas must be a non-empty list of positive numbers, got {alphas}")
    summary, _ = paucity_loop(run, ratios, tuple(alphas), seeds, unit, settings, n_resamples, baseline=TEXT_ONLY,
                              per_class=True, item_keys=True)
    attrs = summary.attrs
    fits, sweep = attrs.pop("fits"), attrs.pop("alpha_sweep")
    summary.attrs = {"items": attrs["items"], "genres": attrs["classes"]}
    return summary, fits, sweep


def table5(run: ImageRun, alpha: float, seeds: tuple = (0,), methods: tuple = TABLE5_METHODS[::3],
           unit: str = "items", settings: collab.FitSettings | None = None, n_resamples: int = 50
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 5 on MovieLens (all training labels): each of ``methods`` ((name, method, scheme),
    :data:`TABLE5_METHODS`; default Text-only and MTL-reconstruct-uniform) trained with every seed at
    ``alpha``; the fits are those of :func:`label_paucity` at ratio 1 (same memo keys), so the two
    default methods cost nothing more. Returns (table with the paper's MovieLens mAP and gain beside
    ours, per_seed); ``table.attrs['items']`` / ``['genres']``: the per-test-movie / per-genre AP rows."""
    names = [m[0] for m in methods]
    if TEXT_ONLY not in names:
        raise ValueError(f"methods must include {TEXT_ONLY!r} (the baseline), got {names}")
    table, per_seed, items, genres = scored_at_ratio(run, methods, alpha, 1.0, seeds, unit, settings, n_resamples,
                                                     baseline=TEXT_ONLY, per_class=True, item_keys=True)
    paper_name = {TEXT_ONLY: "Image-only"}
    table["paper_mAP (MovieLens)"] = [PAPER_MOVIELENS_TABLE5[paper_name.get(m, m)][0] for m in table["method"]]
    table["paper_gain_% (MovieLens)"] = [PAPER_MOVIELENS_TABLE5[paper_name.get(m, m)][1] for m in table["method"]]
    table.attrs.update(items=items, genres=genres)
    return table.drop(columns="label_ratio"), per_seed


def gain_difference_rows(items: pd.DataFrame, low: float, high: float, arms: tuple = (MTL, TEXT_ONLY)
                         ) -> pd.DataFrame:
    """Tidy rows of MTL - Text-only per (seed, movie) at label ratios ``low`` and ``high`` as two arms
    (``gain at ratio <r>``): the claims engine's input for "the gain at ``low`` vs at ``high``"."""
    for r in (low, high):
        if not (items["label_ratio"] == r).any():
            raise ValueError(f"no AP rows at label ratio {r} (have {sorted(items['label_ratio'].unique())})")
    wide = items[items["label_ratio"].isin((low, high))].pivot_table(
        index=["label_ratio", "seed", "item"], columns="method", values="value")
    diff = (wide[arms[0]] - wide[arms[1]]).rename("value").reset_index()
    diff["method"] = "gain at ratio " + diff["label_ratio"].map("{:g}".format)
    return diff.drop(columns="label_ratio")[["method", "seed", "item", "value"]]


def image_version_gains(experiment: str = "D.04-label-paucity") -> pd.DataFrame:
    """The image version's recorded MTL-reconstruct-uniform gains over Image-only (% of mAP) per label
    ratio: the latest ``default`` run of D.04 in ``results/`` (Open Clip Art images, SIMULATED
    interactions). Columns label_ratio, gain_%; empty when D.04 has recorded none."""
    from ... import results

    rows = results.load(experiment)
    if rows.empty or "profile" not in rows.columns:
        return pd.DataFrame(columns=["label_ratio", "gain_%"])
    rows = rows[(rows["profile"] == "default") & rows["metric"].astype(str).str.startswith("gain_pct_ratio_")]
    if rows.empty:
        return pd.DataFrame(columns=["label_ratio", "gain_%"])
    rows = rows[rows["time"] == rows["time"].max()]
    return pd.DataFrame({"label_ratio": rows["metric"].str.removeprefix("gain_pct_ratio_").astype(float).to_numpy(),
                         "gain_%": rows["value"].astype(float).to_numpy()}).sort_values("label_ratio", ignore_index=True)


def weakest_ratio(contrasts: dict) -> float:
    """The label ratio that decides "MTL-reconstruct >= Text-only at every ratio", from judged
    contrasts (ratio -> :class:`clickvision.claims.Judgement` of MTL - Text-only): the ratio with the
    lowest upper bound when some interval lies wholly below 0 (the claim fails there), else the one
    with the lowest lower bound (the claim holds everywhere only if it holds there)."""
    if not contrasts:
        raise ValueError("contrasts must hold at least one judged ratio")
    below = {r: j for r, j in contrasts.items() if j.ci_high < 0}
    if below:
        return min(below, key=lambda r: below[r].ci_high)
    return min(contrasts, key=lambda r: contrasts[r].ci_low)


def min_ratings_sweep(values: tuple, alphas: tuple, seeds: tuple = (0,), unit: str = "items",
                      settings: collab.FitSettings | None = None, n_resamples: int = 50, **run_kwargs) -> pd.DataFrame:
    """How Table 5's comparison moves with the movie selection: per ``min_ratings`` in ``values``, a
    fresh :func:`movielens_run` (``run_kwargs``: its other arguments) and the full-label comparison of
    :func:`label_paucity` (alpha chosen on validation, every seed). Rows: min_ratings, movies,
    test_movies, gate_map, prior, alpha, text_only_map, mtl_map, gain_% (seed-averaged test mAP, paper
    D's protocol), ap_diff, ap_lo, ap_hi (MTL - Text-only per-test-movie AP with its 90% interval over
    seeds x movies, :func:`clickvision.claims.judge`)."""
    from ... import claims

    if not values or any(not isinstance(v, (int, np.integer)) or v < 1 for v in values):
        raise ValueError(f"values must be a non-empty list of integers >= 1 (min_ratings), got {values}")
    rows = []
    for k in values:
        run = movielens_run(int(k), **run_kwargs)
        summary, _, _ = label_paucity(run, (1.0,), alphas, seeds, unit, settings, n_resamples)
        j = claims.judge(claims.Claim("D", "measured", "", "direction", arms=(MTL, TEXT_ONLY)), summary.attrs["items"])
        m = summary.set_index("method")
        rows.append({"min_ratings": int(k), "movies": len(run.items.keys), "test_movies": len(run.items.rows("test")),
                     "gate_map": run.gate["map"], "prior": run.gate["prior"], "alpha": float(m.loc[MTL, "alpha"]),
                     "text_only_map": float(m.loc[TEXT_ONLY, "mean"]), "mtl_map": float(m.loc[MTL, "mean"]),
                     "gain_%": float(m.loc[MTL, "gain_%"]), "ap_diff": j.estimate, "ap_lo": j.ci_low, "ap_hi": j.ci_high})
    return pd.DataFrame(rows)
