"""The data tour (notebook 00.02): what each embedded data set holds, as tidy tables.

Counts come from the built files (and the manifest), never from literals; Clickture's
published figures are labelled as such (:data:`clickvision.click.simulator.CLICKTURE_LITE`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..click import build as click_build
from ..click.log import iter_click_log
from ..click.simulator import CLICKTURE_LITE, click_log_stats
from ..data import manifest


def manifest_table() -> pd.DataFrame:
    """One row per built data set: source, licence, simulated?, committed?, artifacts."""
    rows = []
    for name, e in sorted(manifest.load_manifest().items()):
        rows.append({"data set": name, "simulated": bool(e.get("simulated")),
                     "source": e.get("source", ""), "licence": e.get("licence", ""),
                     "committed": bool(e.get("committed")), "artifacts": len(e.get("artifacts", {}))})
    return pd.DataFrame(rows)


def verify_manifest() -> pd.DataFrame:
    """Each data set: are all its recorded artifacts present with the recorded sha256?"""
    return pd.DataFrame([{"data set": n, "artifacts match manifest": manifest.is_built(n)}
                         for n in sorted(manifest.load_manifest())])


def class_sizes(items: pd.DataFrame, by: str = "label", unit: str = "key") -> pd.DataFrame:
    """Images (or ``unit``s, e.g. concepts) per class, largest first."""
    sizes = items.groupby(by)[unit].nunique().sort_values(ascending=False)
    return sizes.rename("count").reset_index()


def split_table(items: pd.DataFrame, columns: str = "domain") -> pd.DataFrame:
    """Images per split and ``columns`` (e.g. vendor)."""
    return pd.crosstab(items["split"], items[columns], margins=True, margins_name="all")


def click_log_frame(name: str) -> pd.DataFrame:
    """A built SIMULATED click log as a DataFrame (query, key, clicks)."""
    recs = list(iter_click_log(click_build.click_log_path(name)))
    return pd.DataFrame(recs, columns=["query", "key", "clicks"])


def click_log_comparison(names: tuple[str, ...] = ("emoji-google", "openclipart")) -> pd.DataFrame:
    """Our SIMULATED logs' statistics beside Clickture-Lite's published figures."""
    figures = ["triads", "queries", "images", "triads_per_image", "triads_per_query"]
    table = {"Clickture-Lite (published)": {f: CLICKTURE_LITE[f] for f in figures}}
    for name in names:
        stats = click_log_stats(click_log_frame(name))
        table[f"{name} (simulated)"] = {f: stats[f] for f in figures}
    return pd.DataFrame(table)


def query_popularity(log: pd.DataFrame) -> pd.DataFrame:
    """Total clicks per query by popularity rank (rank 1 = most clicked)."""
    per_query = log.groupby("query")["clicks"].sum().sort_values(ascending=False)
    return pd.DataFrame({"rank": np.arange(1, len(per_query) + 1), "clicks": per_query.to_numpy()})


def per_image(log: pd.DataFrame) -> pd.DataFrame:
    """Clicks and distinct queries per clicked image."""
    g = log.groupby("key")
    return pd.DataFrame({"clicks": g["clicks"].sum(), "queries": g["query"].nunique()}).reset_index()


def dev_grades(name: str) -> pd.DataFrame:
    """Judgements of a SIMULATED dev set: pairs per grade and queries."""
    dev = click_build.load_dev_set(name)
    t = dev.groupby("judgment").size().rename("pairs").reset_index()
    t["share"] = t["pairs"] / t["pairs"].sum()
    t.attrs["queries"] = dev["query"].nunique()
    return t


def interactions_summary(events: pd.DataFrame) -> dict[str, float]:
    """Users, items, events, density and per-item / per-user counts of an interaction table."""
    n_u, n_i = events["user"].nunique(), events["item"].nunique()
    per_item, per_user = events.groupby("item").size(), events.groupby("user").size()
    return {"events": len(events), "users": n_u, "items": n_i, "density": len(events) / (n_u * n_i),
            "events per item (median)": float(per_item.median()),
            "events per user (median)": float(per_user.median()),
            "events per item (max)": int(per_item.max())}


def genre_counts(items: pd.DataFrame, column: str = "genres") -> pd.DataFrame:
    """Items per genre of a '|'-joined multi-label column."""
    s = items[column].fillna("").str.split("|").explode()
    return s[s != ""].value_counts().rename_axis("genre").rename("items").reset_index()


# ----------------------------------------------------------------------------- emoji vendors
GAP_C_GRID = (0.01, 0.1, 1.0)  # inverse l2 strength of the probe, chosen per train vendor on its own val split


def vendor_report() -> pd.DataFrame:
    """Every emoji vendor: package, licence, style, how it was joined, concepts and join rate (from the manifest)."""
    from ..data import emoji

    return emoji.vendor_report()


def committable_vendors(draw_share_alike: bool = False) -> list[str]:
    """Vendors whose drawings may enter a committed figure (all but share-alike ones unless asked)."""
    from ..data import emoji

    return [v for v in emoji.ALL_VENDORS if draw_share_alike or v not in emoji.SHARE_ALIKE]


def common_concepts(items: pd.DataFrame, vendors: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` concepts (seeded choice, in base sort order) that every one of ``vendors`` draws."""
    per = items[items["domain"].isin(vendors)].groupby("concept")["domain"].nunique()
    shared = sorted(per[per == len(vendors)].index)
    if len(shared) < n:
        raise ValueError(f"only {len(shared)} concepts are drawn by all of {vendors}; asked for {n}")
    pick = set(np.random.default_rng(seed).choice(shared, size=n, replace=False))
    order = items.drop_duplicates("concept").set_index("concept")["sort_order"].astype(int)
    return sorted(pick, key=lambda c: order[c])


def vendor_features(vendors: tuple[str, ...] | list[str] | None = None, image_size: int = 128,
                    ) -> tuple[pd.DataFrame, np.ndarray]:
    """Items (default class set) and cached pooled backbone features of every vendor, row-aligned.

    The base vendors' rows and features come from the default emoji set and its cache entry
    (``cv.data.load_emoji()``, unchanged); each Iconify vendor from its own subset
    (``load_emoji(vendors=[v])``, cache subset ``emoji[<v>]``), which ``make features`` builds.
    """
    from ..data import emoji
    from ..features import extract_features

    vendors = list(vendors or emoji.ALL_VENDORS)
    base = emoji.load_emoji()
    parts: list[tuple[pd.DataFrame, np.ndarray]] = []
    if any(v in emoji.VENDORS for v in vendors):
        xb = extract_features(base, image_size=image_size, kind="pooled")
    for v in vendors:
        if v in emoji.VENDORS:
            mask = (base.items["domain"] == v).to_numpy()
            parts.append((base.items[mask], xb[mask]))
        else:
            one = emoji.load_emoji(vendors=[v])
            parts.append((one.items, extract_features(one, image_size=image_size, kind="pooled")))
    items = pd.concat([p for p, _ in parts], ignore_index=True)
    return items, np.concatenate([x for _, x in parts]).astype(np.float32, copy=False)


def _fit_probe(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray,
               c_grid: tuple[float, ...]):
    """Standardised multinomial logistic regression; C chosen on the validation rows (ties: smaller C)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best = None
    for c in c_grid:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(x_tr, y_tr)
        score = float((model.predict(x_va) == y_va).mean())
        if best is None or score > best[0]:
            best = (score, c, model)
    return best[2], best[1], best[0]


def vendor_gap_table(items: pd.DataFrame, features: np.ndarray, vendors: list[str] | None = None,
                     c_grid: tuple[float, ...] = GAP_C_GRID, n_resamples: int = 2000, ci: float = 0.9,
                     seed: int = 0) -> pd.DataFrame:
    """Linear-probe accuracy for every ordered (train vendor, test vendor) pair, with intervals.

    For each train vendor a probe (:func:`_fit_probe`; label = subgroup) is fitted on its
    *train* split, C chosen on its own *val* split (no test-vendor label is used), then
    scored on the *test* split of every vendor: concepts are split alike for every vendor,
    so no concept is on both sides. One row per pair: ``accuracy`` over the test vendor's
    test concepts with a percentile bootstrap interval over those concepts
    (:func:`clickvision.stats.bootstrap_ci`, level ``ci``); ``in_domain`` = the train
    vendor's accuracy on its own test concepts; ``gap`` = in-domain minus cross accuracy
    (paper A's Acc-S minus Acc-T for a source-trained model), computed on the test concepts
    *both* vendors draw (``n_paired``), with a paired bootstrap interval over them.
    """
    from threadpoolctl import threadpool_limits

    from .. import stats

    vendors = list(vendors or items["domain"].drop_duplicates())
    y = items["label"].to_numpy()
    dom, split, concept = (items[c].to_numpy() for c in ("domain", "split", "concept"))
    correct: dict[tuple[str, str], pd.Series] = {}
    chosen: dict[str, tuple[float, float]] = {}
    for a in vendors:
        tr, va = (dom == a) & (split == "train"), (dom == a) & (split == "val")
        with threadpool_limits(1):  # one BLAS thread: 24 CPU-s for 10 vendors instead of ~200 s on 2 busy cores
            model, c, val_acc = _fit_probe(features[tr], y[tr], features[va], y[va], c_grid)
        chosen[a] = (c, val_acc)
        for b in vendors:
            te = (dom == b) & (split == "test")
            correct[a, b] = pd.Series((model.predict(features[te]) == y[te]).astype(float), index=concept[te])
    rows = []
    for k, a in enumerate(vendors):
        own = correct[a, a]
        for j, b in enumerate(vendors):
            cross = correct[a, b]
            acc, lo, hi = stats.bootstrap_ci(cross.to_numpy(), n_resamples, ci, seed=seed + 31 * k + j)
            both = own.index.intersection(cross.index)
            diff = own[both].to_numpy() - cross[both].to_numpy()
            gap, glo, ghi = stats.bootstrap_ci(diff, n_resamples, ci, seed=seed + 31 * k + j)
            rows.append({"train": a, "test": b, "accuracy": acc, "lo": lo, "hi": hi, "n_test": len(cross),
                         "in_domain": float(own.mean()), "gap": gap, "gap_lo": glo, "gap_hi": ghi,
                         "n_paired": len(both), "C": chosen[a][0], "val_accuracy": chosen[a][1]})
    return pd.DataFrame(rows)


def gap_heatmap(table: pd.DataFrame, vendors: list[str] | None = None):
    """Two heat maps, train vendor (rows) x test vendor (columns): accuracy and gap."""
    import matplotlib.pyplot as plt

    vendors = vendors or list(table["train"].drop_duplicates())
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, value, cmap, title in ((axes[0], "accuracy", "viridis", "probe accuracy (test concepts)"),
                                   (axes[1], "gap", "magma_r", "gap = in-domain - cross accuracy")):
        m = table.pivot(index="train", columns="test", values=value).loc[vendors, vendors]
        im = ax.imshow(m.to_numpy(), cmap=cmap)
        ax.set_xticks(range(len(vendors)), vendors, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(vendors)), vendors, fontsize=8)
        for (i, j), v in np.ndenumerate(m.to_numpy()):
            ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=6.5,
                    color="white" if (v < m.to_numpy().mean()) == (value == "accuracy") else "black")
        ax.set(xlabel="test vendor", ylabel="train vendor", title=title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig
