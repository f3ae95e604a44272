"""Figures of paper B's notebooks: the Figure-1-like subgraph and ranked image strips."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...data.base import ImageSet


def plot_subgraph(edges: pd.DataFrame, images: ImageSet, ax=None):
    """Queries (left) joined to image thumbnails (right), edge width ~ log clicks, labelled by count."""
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    queries, keys = list(dict.fromkeys(edges["query"])), list(dict.fromkeys(edges["key"]))
    fig, ax = (plt.subplots(figsize=(7, 0.75 * max(len(queries), len(keys)) + 0.5)) if ax is None
               else (ax.figure, ax))
    yq = np.linspace(1, 0, len(queries)) if len(queries) > 1 else np.array([0.5])
    yi = np.linspace(1, 0, len(keys)) if len(keys) > 1 else np.array([0.5])
    row = pd.Index(images.items["key"])
    for q, k, c in edges[["query", "key", "clicks"]].itertuples(index=False):
        a, b = yq[queries.index(q)], yi[keys.index(k)]
        ax.plot([0.1, 0.85], [a, b], color="C0", lw=0.6 + 1.2 * np.log1p(c), alpha=0.6, zorder=1)
        ax.text(0.1 + 0.75 * 0.45, a + 0.45 * (b - a), str(c), fontsize=7, ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"}, zorder=3)
    for q, y in zip(queries, yq):
        ax.text(0.08, y, q, ha="right", va="center", fontsize=9,
                bbox={"boxstyle": "round", "fc": "#fde9c9", "ec": "C1"})
    for k, y in zip(keys, yi):
        img = images.load_image(int(row.get_loc(k))).resize((48, 48))
        ax.add_artist(AnnotationBbox(OffsetImage(np.asarray(img), zoom=0.6), (0.9, y), frameon=False))
    ax.set(xlim=(-0.45, 1.0), ylim=(-0.12, 1.12))
    ax.set_axis_off()
    return fig


def example_rankings(scored: pd.DataFrame, data, methods: list[str], queries: list[str],
                     top: int = 6, seed: int = 0):
    """Image strips: for each query (rows) and method, the ``top`` first candidates, titled by grade."""
    import matplotlib.pyplot as plt

    grade = {3: "E", 2: "G", 0: "B"}
    row = pd.Index(data.keys)
    fig, axes = plt.subplots(len(queries) * len(methods), top, figsize=(top * 0.95, len(queries) * len(methods) * 1.05),
                             squeeze=False)
    for a, q in enumerate(queries):
        cand = scored[scored["query"] == q]
        tie = np.random.default_rng(seed).permutation(len(cand))
        for b, m in enumerate(methods):
            ranked = cand.assign(_t=tie).sort_values([m, "_t"], ascending=[False, True]).head(top)
            for c, ax in enumerate(axes[a * len(methods) + b]):
                ax.set_axis_off()
                if c < len(ranked):
                    key, rel = ranked["key"].iloc[c], int(ranked["relevance"].iloc[c])
                    ax.imshow(data.images.load_image(int(row.get_loc(key))))
                    ax.set_title(grade[rel], fontsize=7, color={3: "green", 2: "olive", 0: "red"}[rel])
            first = axes[a * len(methods) + b][0]
            first.text(-0.15, 0.5, f"'{q}'\n{m}", transform=first.transAxes, ha="right", va="center", fontsize=7)
    fig.tight_layout()
    return fig
