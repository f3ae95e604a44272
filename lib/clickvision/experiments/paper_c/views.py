"""Paper C retrieval views: top-k lists both ways (Fig. 2), typed text queries, and the pure
plotting functions behind C.02's interactive cell (called once statically, then wrapped in
``ipywidgets`` when the explorers are on: ``cv.widgets.enabled``)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch

from ...models.chtn import CHTN
from .data import TOKEN_PATTERN, CrossModalData


def rank(query_repr: np.ndarray, gallery_repr: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` gallery rows per query by cosine similarity (ties by gallery order, as MAP)."""
    q = query_repr / np.maximum(np.linalg.norm(query_repr, axis=1, keepdims=True), 1e-12)
    g = gallery_repr / np.maximum(np.linalg.norm(gallery_repr, axis=1, keepdims=True), 1e-12)
    sim = q @ g.T
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(sim, top, axis=1)


def retrieval_table(data: CrossModalData, image_repr: np.ndarray, text_repr: np.ndarray, queries: list[int],
                    direction: str = "img2txt", k: int = 5) -> pd.DataFrame:
    """Fig. 2's examples as a table: for each test query (row number), its top-``k`` results
    with their label, text and whether they are relevant (same label)."""
    if direction not in ("img2txt", "txt2img"):
        raise ValueError(f"direction must be 'img2txt' or 'txt2img', got {direction!r}")
    q, g = (image_repr, text_repr) if direction == "img2txt" else (text_repr, image_repr)
    top, sim = rank(q[queries], g, k)
    items, rows, y = data.pairs.items, data.rows["test"], data.labels["test"]
    return pd.DataFrame([{"query": qi, "query label": data.classes[y[qi]], "rank": r + 1, "result row": int(j),
                          "result label": data.classes[y[j]], "relevant": bool(y[j] == y[qi]),
                          "similarity": float(sim[n, r]), "result text": str(items["text"].iloc[rows[j]])[:60]}
                         for n, qi in enumerate(queries) for r, j in enumerate(top[n])])


def text_query(model: CHTN, data: CrossModalData, query: str, image_repr: np.ndarray, k: int = 5) -> pd.DataFrame:
    """A typed text query -> the top-``k`` test images by cosine between the query's and the
    images' common representations. The query becomes a binary bag of words over the
    training vocabulary, tokenised like the training texts; words outside it are ignored
    (column ``known words``)."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    index = {w: i for i, w in enumerate(data.vocabulary)}
    bow = np.zeros((1, len(index)), np.float32)
    words = list(dict.fromkeys(w for w in re.findall(TOKEN_PATTERN, query.lower()) if w in index))
    bow[0, [index[w] for w in words]] = 1.0
    top, sim = rank(model.represent(torch.from_numpy(bow), "text").numpy(), image_repr, k)
    items, rows = data.pairs.items, data.rows["test"]
    return pd.DataFrame({"rank": np.arange(1, len(top[0]) + 1), "test row": top[0],
                         "label": [data.classes[data.labels["test"][j]] for j in top[0]],
                         "similarity": sim[0], "known words": " ".join(words) or "(none)",
                         "text": [str(items["text"].iloc[rows[j]])[:50] for j in top[0]]})


def plot_examples(data: CrossModalData, table: pd.DataFrame, direction: str, title: str = ""):
    """Fig. 2-style figure from :func:`retrieval_table`: one row per query, query then top-k."""
    import matplotlib.pyplot as plt

    queries = list(dict.fromkeys(table["query"]))
    k = int(table["rank"].max())
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(1.9 * (k + 1), 1.9 * len(queries)), squeeze=False)
    rows, items = data.rows["test"], data.pairs.items
    for i, q in enumerate(queries):
        part = table[table["query"] == q]
        cells = [(q, True, "query")] + [(int(j), bool(r), f"#{n}") for n, (j, r) in
                                        enumerate(zip(part["result row"], part["relevant"]), 1)]
        for c, (row, ok, tag) in enumerate(cells):
            ax = axes[i, c]
            ax.set_xticks([]), ax.set_yticks([])
            is_image = (c == 0) == (direction == "img2txt")
            if is_image:
                ax.imshow(data.pairs.load_image(int(rows[row])))
            else:
                ax.text(0.5, 0.5, _wrap(str(items["text"].iloc[rows[row]])), ha="center", va="center", fontsize=6,
                        transform=ax.transAxes)
            colour = "black" if c == 0 else ("green" if ok else "red")
            for s in ax.spines.values():
                s.set_edgecolor(colour), s.set_linewidth(2)
            label = data.classes[data.labels["test"][row]]
            ax.set_title(f"{tag}: {label}"[:24], fontsize=7, color=colour)
    fig.suptitle(title or f"{direction}: query (left) and top {k} (green = same label)")
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 22, lines: int = 6) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:lines])


def plot_text_query(data: CrossModalData, table: pd.DataFrame, query: str = ""):
    """The images of a :func:`text_query` result (rank, label and cosine above each): the
    static figure behind C.02's interactive "type a text query" cell."""
    from ... import plots

    if table.empty:
        raise ValueError("plot_text_query: the result table is empty")
    images = [data.pairs.load_image(int(data.rows["test"][j])) for j in table["test row"]]
    titles = [f"#{r} {lab[:9]} {s:.2f}" for r, lab, s in zip(table["rank"], table["label"], table["similarity"])]
    known = table["known words"].iloc[0]
    return plots.image_grid(images, titles, ncols=len(images), size=1.6,
                            title=f"text query {query!r} (known words: {known}) -> top {len(images)} test images")


def plot_image_query(data: CrossModalData, image_repr: np.ndarray, text_repr: np.ndarray, index: int = 0,
                     k: int = 5):
    """One test image and its top-``k`` test texts (green = same label): the static figure
    behind C.02's interactive "pick an image" cell."""
    n = len(data.labels["test"])
    if not 0 <= index < n:
        raise IndexError(f"index must be in [0, {n - 1}], got {index}")
    table = retrieval_table(data, image_repr, text_repr, [index], "img2txt", k)
    return plot_examples(data, table, "img2txt", f"test image {index} -> top {k} texts (green = same label)")



def plot_val_curves(curves: pd.DataFrame, stops: pd.DataFrame, title: str = ""):
    """The validation curve every compared network stopped on: one panel per (target, method),
    one line per seed (validation average MAP against training batches), a dot at the restored
    weights' step and a tick at the stop. ``curves``: ``target, method, seed, batches,
    val_map`` (:func:`~clickvision.experiments.paper_c.core.val_curves`); ``stops``: the trial's
    runs (``target, method, seed, best_step, stop_step, batches``)."""
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(zip(curves["target"], curves["method"])))
    if not panels:
        raise ValueError("plot_val_curves: no curves (no network in the trial, or no validation split)")
    targets = list(dict.fromkeys(t for t, _ in panels))
    ncol = max(sum(t == x for x, _ in panels) for t in targets)
    fig, axes = plt.subplots(len(targets), ncol, figsize=(2.6 * ncol, 2.3 * len(targets)), squeeze=False,
                             sharey="row")
    for ax in axes.ravel():
        ax.set_visible(False)
    col = {t: 0 for t in targets}
    for t, m in panels:
        ax = axes[targets.index(t), col[t]]
        col[t] += 1
        ax.set_visible(True)
        c = curves[(curves["target"] == t) & (curves["method"] == m)]
        for i, (seed, g) in enumerate(c.groupby("seed")):
            ax.plot(g["batches"], g["val_map"], color=f"C{i}", lw=1, label=f"seed {seed}")
            s = stops[(stops["target"] == t) & (stops["method"] == m) & (stops["seed"] == seed)]
            if len(s):
                per = float(s["batches"].iloc[0]) / max(float(s["stop_step"].iloc[0]), 1.0)
                best = g.loc[(g["batches"] - float(s["best_step"].iloc[0]) * per).abs().idxmin()]
                ax.plot(best["batches"], best["val_map"], "o", color=f"C{i}", ms=4)
                ax.axvline(float(s["batches"].iloc[0]), color=f"C{i}", ls=":", lw=0.8)
        ax.set_title(f"{t}: {m}", fontsize=9)
        ax.set_xlabel("training batches", fontsize=8)
    for row in axes:
        row[0].set_ylabel("validation MAP", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
