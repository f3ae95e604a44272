"""Paper A section III-A on the embedded emoji: click TF-IDF, Fig. 1 and the leakage check (notebook A.01).

From the SIMULATED click log to the vocabulary and eq. (1) (:mod:`clickvision.click.features`):
query-formation examples, the vocabulary and its click distribution, eq. (1) against the
authors'-code TF-IDF, Fig. 1's top words per image, and the ground-truth click feature as a
recognizer's input (docs/READING-NOTES.md leakage check) as the simulator's informativeness varies.
Each function returns a tidy DataFrame or Series.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ...click.features import ClickTfidf, QueryFormer, WordClickMatrix, click_tfidf, top_words, word_click_matrix
from .data import PaperAData, torch_threads


def query_formation_examples(queries: Sequence[str], former: QueryFormer) -> pd.DataFrame:
    """Each query beside its tokens and the words query formation keeps (Fig. 5's first step)."""
    return pd.DataFrame([{"query": q, "tokens": " ".join(former.tokens(q)), "words": " ".join(former.words(q))}
                         for q in queries])


def vocabulary_summary(wc: WordClickMatrix) -> pd.Series:
    """K', K, the share of word clicks the vocabulary covers, zero rows (III-A, Sec. IV-A2)."""
    s = wc.stats
    share = s["train_word_clicks_in_vocabulary"] / max(s["train_word_clicks"], 1.0)
    return pd.Series({"log rows (triads)": int(s["rows"]), "clicks": int(s["clicks"]),
                      "distinct words K' (all images)": int(s["distinct_words"]),
                      "words clicked on training images": int(s.get("train_words", 0)),
                      "vocabulary K": int(wc.k), "share of training word clicks in the vocabulary": round(share, 3),
                      "images": int(wc.n_images), "training images": int(wc.train.sum())}, dtype=object)


def vocabulary_distribution(wc: WordClickMatrix) -> pd.DataFrame:
    """Clicks of each vocabulary word on training images by rank, and the cumulative share."""
    clicks = wc.word_clicks
    return pd.DataFrame({"rank": np.arange(1, wc.k + 1), "word": wc.vocabulary, "clicks": clicks,
                         "cumulative_share": np.cumsum(clicks) / max(wc.stats["train_word_clicks"], 1.0)})


def tfidf_variant_agreement(wc: WordClickMatrix) -> pd.Series:
    """How eq. (1) and the authors'-code TF-IDF differ on the same word clicks."""
    a, b = click_tfidf(wc, variant="paper"), click_tfidf(wc, variant="code")
    rows = np.flatnonzero(a.valid)
    da, db = a.features[rows].toarray(), b.features[rows].toarray()
    cos = (da * db).sum(1) / np.linalg.norm(da, axis=1) / np.linalg.norm(db, axis=1)
    return pd.Series({"rows compared": len(rows), "mean cosine(paper, code)": float(cos.mean()),
                      "min cosine": float(cos.min()),
                      "same top word": float(np.mean(da.argmax(1) == db.argmax(1))),
                      "zero rows (masked)": a.n_zero_rows, "zero training rows": a.n_zero_train_rows})


def top_words_table(tfidf: ClickTfidf, vocabulary: Sequence[str], items: pd.DataFrame, rows: Iterable[int],
                    n: int = 5) -> pd.DataFrame:
    """Fig. 1: each image's name and its ``n`` highest click TF-IDF words."""
    out = []
    for i in rows:
        words = top_words(tfidf.features, vocabulary, int(i), n)
        out.append({"image": items["name"].iloc[i].lower() if "name" in items else items["key"].iloc[i],
                    "class": items["label"].iloc[i],
                    "top click words (TF-IDF)": ", ".join(f"{w} {v:.2f}" for w, v in words)})
    return pd.DataFrame(out)


def _logistic(x_train, y_train, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500, random_state=seed))
    return model.fit(x_train, y_train)


def _logistic_accuracy(x_train, y_train, x_eval, y_eval, seed: int) -> float:
    return float(_logistic(x_train, y_train, seed).score(x_eval, y_eval))


def click_ceiling(data: PaperAData, seed: int = 0,
                  per_image: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """The ground-truth click feature as a recognizer's input (docs/READING-NOTES.md leakage check).

    Logistic regression on the source training rows with V (pooled visual vector), C (the
    ground-truth click TF-IDF, simulated clicks) and V+C; accuracy on the source test rows,
    all / clean / label-noise images. Not available on the target: it has no clicks.
    ``per_image``: also return each test image's 1/0 correctness per feature set (one
    column each), for paired intervals.
    """
    with torch_threads(1):
        table, correct = _click_ceiling(data, seed)
    return (table, correct) if per_image else table


def _click_ceiling(data: PaperAData, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    s = data.source
    tr, te = s.rows("train"), s.rows("test")
    feats = {"V": s.phi, "C (ground truth)": s.clicks, "V + C (ground truth)": np.hstack([s.phi, s.clicks])}
    rows, correct_by = [], {}
    for name, x in feats.items():
        correct = _logistic(x[tr], s.y[tr], seed).predict(x[te]) == s.y[te]
        correct_by[name] = correct.astype(float)
        for subset, mask in (("all", np.ones(len(te), bool)), ("clean", ~s.noisy[te]), ("noisy", s.noisy[te])):
            if mask.any():
                rows.append({"features": name, "test images": subset, "accuracy": float(correct[mask].mean())})
    return pd.DataFrame(rows), pd.DataFrame(correct_by, index=te)


def informativeness_sweep(values: Sequence[float], seed: int = 0, former: QueryFormer | None = None,
                          k: int = 1000) -> pd.DataFrame:
    """Ground-truth-click ceiling as the SIMULATED log's ``informativeness`` varies.

    Each value simulates a new log over the same source images (same seed; 1.0 is the
    default log), rebuilds the vocabulary and eq. (1), and scores logistic regression on C.
    """
    from ...click import build as click_build

    images = click_build.source_images("emoji-google")
    frame = images.items
    keys = frame["key"].astype(str).tolist()
    train_keys = frame.loc[frame["split"] == "train", "key"].astype(str).tolist()
    y = frame["label"].astype("category").cat.codes.to_numpy()
    tr, te = np.flatnonzero(frame["split"] == "train"), np.flatnonzero(frame["split"] == "test")
    former = former or QueryFormer()
    with torch_threads(1):
        rows = _informativeness_rows(values, seed, former, k, images, keys, train_keys, y, tr, te)
    return pd.DataFrame(rows)


def _informativeness_rows(values, seed, former, k, images, keys, train_keys, y, tr, te) -> list[dict]:
    from ...click import build as click_build
    from ...click.simulator import ClickSimConfig, simulate_click_log

    rows = []
    for value in values:
        config = ClickSimConfig(informativeness=float(value))
        if config == ClickSimConfig() and seed == click_build.SEED:  # the built default log: same triads
            records = click_build.click_log_path("emoji-google")
        else:
            records = simulate_click_log(images, config, seed)
        wc = word_click_matrix(records, keys=keys, train_keys=train_keys, k=k, former=former)
        v = click_tfidf(wc).dense()
        rows.append({"informativeness": float(value), "log rows": wc.stats["rows"],
                     "C accuracy (source test)": _logistic_accuracy(v[tr], y[tr], v[te], y[te], seed)})
    return rows
