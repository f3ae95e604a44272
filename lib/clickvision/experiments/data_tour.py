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
