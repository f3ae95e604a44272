"""Paper A, section IV-D2 / Fig. 14: recognition with reduced training data (notebook A.13).

The paper keeps ``ceil(alpha * n_k)`` training images of each class k (footnote 18) in
**one** domain at a time, the other whole (docs/READING-NOTES.md), alpha in {1, 0.9, ..., 0.4}:
Fig. 14(a) reduces the source, Fig. 14(b) the target; Acc-T of VGG, TDL and OURS
(MTMDD-VM). Here "VGG" is the registry's ``VGGsrc`` (a source recogniser fine-tuned on the
target: the paper's VGG learns from the source); ``VGGimg`` (never sees the source) may
ride along as a reference. An extension that is **not in the paper**: a true k-shot target
(k training images per class, source whole).

Several target domains (issue #18 item 2): :func:`reduced_data_runs_targets` runs the grid on
each (rows with a ``target`` column, ``item`` keys prefixed ``<vendor>/``); the tables and the
figure then show each target apart, and :func:`claims_fig14` pools them (every target's test
images as distinct items, a per-seed value as the mean over the targets).

Choices (each a parameter):

* **draws** -- :func:`clickvision.data.samplers.fraction_mask` / ``k_shot_mask`` on the
  training split (val and test stay whole), seeded by the training seed, so each seed is a
  new draw and, within a seed, the draws are nested in alpha and in k (paired comparisons).
* **vocabulary** -- ``"rebuild"`` (default): eq. (1) on the reduced source's training
  images, the K words with most clicks on them and their idf (docs/READING-NOTES.md: vocabulary,
  rho_j and n from the training split only), re-ranked from the full word click matrix
  (:func:`~clickvision.click.features.reselect_vocabulary`, no re-read of the SIMULATED log);
  ``"full"``: the vocabulary and features of the whole source.
* **schedule** -- ``"steps"`` (default): the reduced domain's training rows are repeated
  (seeded, each at most once more than any other) up to the full domain's count, so every
  model makes as many optimisation steps as at alpha = 1 (the paper trains a fixed number of
  iterations); ``"epochs"``: the registry's epochs, i.e. fewer steps per epoch on less data for
  the per-domain models but not for the joint one (it cycles the smaller domain), which
  would favour MTMDD-VM for a reason that is not the method.

The stop rule (``cfg.patience`` > 0, :func:`~.train.train_config`) counts epochs as each schedule
makes them, and every model is checked on its domain's whole validation split (never reduced):

* ``"steps"`` -- an epoch is a pass over the repeated training rows, i.e. as many optimisation
  steps as one pass over all the data, at every alpha and k: validation is checked after the same
  number of steps in every setting (on a reduced domain after about ``1 / alpha`` passes over its
  distinct images), and ``patience`` and the epoch cap mean the same number of steps as at
  alpha = 1;
* ``"epochs"`` -- a per-domain model's epoch is one pass over the distinct reduced rows (checked
  after every pass; patience and cap count passes, so fewer steps on less data); the joint
  network's epoch stays the larger domain's batches.

Every fit is trained inside :func:`~.train.history_labels` ``panel`` (``"full"`` for the alpha = 1
run, a / b / k), ``x`` and, in :func:`reduced_data_runs_targets`, ``target``, so the histories
:func:`~.train.record_histories` collects can be split by setting; a fit that
:func:`~.train.reuse_identical_fits` serves from an earlier setting or target is not trained again
and so not recorded (each distinct fit is counted once, under the setting that trained it).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ... import runtime
from ...click.features import WordClickMatrix
from ...data.samplers import fraction_mask, k_shot_mask
from .claims import gap_stats
from .core import pooled_note, targets_of
from .data import DomainData, PaperAData, full_word_clicks, rebuild_source_vocabulary
from .methods import MethodSettings, run_methods
from .train import HeadConfig, history_labels, reuse_identical_fits

FIG14_METHODS = ("VGGsrc", "TDL", "MTMDD-VM")
PAPER_ALPHAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
PANELS = {"a": "(a) source reduced, target full", "b": "(b) target reduced, source full",
          "k": "k-shot target, source full (NOT in the paper)"}
SHORT_PANELS = {"a": "(a) source reduced", "b": "(b) target reduced", "k": "k-shot target (ext.)"}
LABELS = {"VGGsrc": "VGG (VGGsrc)", "VGGimg": "VGGimg (ref.)", "TDL": "TDL", "MTMDD-VM": "OURS (MTMDD-VM)"}
VOCABULARIES = ("rebuild", "full")
SCHEDULES = ("steps", "epochs")
#: Table VIII's Acc-T (%) with all training data (Clickture-Dog -> dog): the only Fig. 14 anchor in numbers.
PAPER_ACC_T_FULL = {"VGGimg": 70.7, "VGGsrc": 72.2, "TDL": 72.2, "MTMDD-VM": 74.7}


def _repeat_train(d: DomainData, n_target: int, seed: int) -> DomainData:
    """``d`` with its training rows repeated (seeded order, np.resize) up to ``n_target`` rows."""
    train = d.rows("train")
    if len(train) >= n_target:
        return d
    order = np.random.default_rng(seed).permutation(train)
    rows = np.concatenate([np.resize(order, n_target), np.flatnonzero(d.split != "train")])
    return d.subset(rows)


def reduce_training(data: PaperAData, domain: str, seed: int, alpha: float | None = None, k: int | None = None,
                    vocabulary: str = "rebuild", schedule: str = "steps",
                    full: WordClickMatrix | None = None) -> PaperAData:
    """``data`` with one domain's training split cut to ``ceil(alpha * n_k)`` (or ``k``) images per class.

    Paper A footnote 18 (``alpha``) or k-shot (``k``, a class with fewer keeps all it has);
    val and test stay whole, the other domain untouched. ``vocabulary`` / ``schedule``: see
    the module docstring. ``full``: :func:`~.data.full_word_clicks` (default: looked up here).
    """
    if domain not in ("source", "target"):
        raise ValueError(f"domain must be 'source' or 'target', got {domain!r}")
    if (alpha is None) == (k is None):
        raise ValueError("reduce_training: give exactly one of alpha and k")
    if vocabulary not in VOCABULARIES or schedule not in SCHEDULES:
        raise ValueError(f"vocabulary must be one of {VOCABULARIES} and schedule one of {SCHEDULES}, "
                         f"got {vocabulary!r}, {schedule!r}")
    d = getattr(data, domain)
    mask = (fraction_mask(d.items, alpha, seed, split="train") if alpha is not None
            else k_shot_mask(d.items, k, seed, split="train", allow_fewer=True))
    rows = np.flatnonzero(mask)
    if domain == "source" and vocabulary == "rebuild":
        out = rebuild_source_vocabulary(data, rows, full=full)
        out = replace(out, meta={**out.meta, **out.word_clicks.stats})
    else:
        out = replace(data, **{domain: d.subset(rows)})
    if schedule == "steps":
        n_full = int((d.split == "train").sum())
        out = replace(out, **{domain: _repeat_train(getattr(out, domain), n_full, seed)})
    distinct = int(mask[d.split == "train"].sum())
    return replace(out, meta={**out.meta, "reduced": domain, "alpha": alpha, "k_shot": k,
                              f"n_train_{domain[0]}": distinct, "schedule": schedule, "vocabulary_policy": vocabulary})


def settings_grid(alphas: Sequence[float], ks: Sequence[int]) -> list[tuple[str, str | None, float]]:
    """``(panel, reduced domain, x)`` of every run: alpha = 1 once (it is both panels' full point)."""
    out: list[tuple[str, str | None, float]] = [("full", None, 1.0)]
    out += [("a", "source", float(a)) for a in alphas if float(a) != 1.0]
    out += [("b", "target", float(a)) for a in alphas if float(a) != 1.0]
    out += [("k", "target", float(k)) for k in ks]
    return out


def reduced_data_runs(data: PaperAData, cfg: HeadConfig, seeds: Sequence[int], alphas: Sequence[float],
                      ks: Sequence[int] = (), methods: Sequence[str] = FIG14_METHODS,
                      settings: MethodSettings = MethodSettings(), vocabulary: str = "rebuild",
                      schedule: str = "steps") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 14 (a), (b) and the k-shot extension: every method x seed x setting.

    Returns tidy rows ``method, seed, metric, value, panel, x`` (``panel`` a / b / k; ``x``
    alpha or k; the alpha = 1 run appears in panels a and b) and one row per seed x setting
    with the distinct training images per domain and the vocabulary size ``K``.
    """
    bad = [a for a in alphas if not 0 < float(a) <= 1]
    if bad or 1.0 not in [float(a) for a in alphas]:
        raise ValueError(f"alphas must lie in (0, 1] and include 1 (the full point), got {list(alphas)}")
    if any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    full = full_word_clicks(data) if vocabulary == "rebuild" else None
    rows, sizes = [], []
    n_s, n_t = int((data.source.split == "train").sum()), int((data.target.split == "train").sum())
    # the domain a setting leaves whole trains (per seed) exactly as at alpha = 1: its source-only models
    # (VGG's source recogniser, TDL's click predictor and source recogniser in panels b and k, VGGimg's
    # target recogniser in panel a) are reused, not trained again (same inputs, same results)
    with reuse_identical_fits():
        for panel, domain, x in runtime.progress(list(settings_grid(alphas, ks)), desc="Fig. 14: settings"):
            for seed in seeds:
                if domain is None:
                    sub = data
                elif panel == "k":
                    sub = reduce_training(data, domain, seed, k=int(x), vocabulary=vocabulary, schedule=schedule)
                else:
                    sub = reduce_training(data, domain, seed, alpha=x, vocabulary=vocabulary, schedule=schedule,
                                          full=full)
                with history_labels(panel=panel, x=x):
                    frame = run_methods(methods, sub, cfg, [seed], settings)
                for p in (("a", "b") if panel == "full" else (panel,)):
                    rows.append(frame.assign(panel=p, x=x))
                sizes.append({"panel": panel, "x": x, "seed": seed, "n_train_s": sub.meta.get("n_train_s", n_s),
                              "n_train_t": sub.meta.get("n_train_t", n_t), "K": sub.k})
    return pd.concat(rows, ignore_index=True), pd.DataFrame(sizes)


def reduced_data_runs_targets(datasets: Mapping[str, PaperAData], cfg: HeadConfig, seeds: Sequence[int],
                              alphas: Sequence[float], ks: Sequence[int] = (), methods: Sequence[str] = FIG14_METHODS,
                              settings: MethodSettings = MethodSettings(), vocabulary: str = "rebuild",
                              schedule: str = "steps") -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`reduced_data_runs` on each target domain, ``datasets[vendor]`` (the same source).

    Both frames get a ``target`` column (the vendor); the rows' ``item`` keys are prefixed
    ``<vendor>/`` (:func:`~.core.over_targets`), so the claims pool the targets' test images as
    distinct items and a per-seed value as the mean over the targets. One
    :func:`~.train.reuse_identical_fits` block spans the targets: a fit whose inputs another target's
    run already trained (the source-only models, where the source is the same) is copied, not
    trained again (the same results).
    """
    from .core import over_targets

    if not datasets:
        raise ValueError("reduced_data_runs_targets: need at least one target domain")
    sizes = {}

    def one(vendor: str) -> pd.DataFrame:
        with history_labels(target=vendor):
            rows, sizes[vendor] = reduced_data_runs(datasets[vendor], cfg, seeds, alphas, ks, methods, settings,
                                                    vocabulary, schedule)
        return rows

    with reuse_identical_fits():
        rows = over_targets({v: v for v in datasets}, one)
    return rows, pd.concat([s.assign(target=v) for v, s in sizes.items()], ignore_index=True)


def acc_t_table(rows: pd.DataFrame, methods: Sequence[str], metric: str = "acc_t") -> pd.DataFrame:
    """``metric`` (%) as ``mean +- sd`` over seeds: one row per panel and x, one column per method.

    Rows with a ``target`` column: one block per target (index level ``target`` first), never a
    mean over targets."""
    targets = targets_of(rows)
    by = ["target"] if targets else []
    sub = rows[rows["metric"] == metric]
    g = sub.groupby([*by, "panel", "x", "method"])["value"].agg(["mean", "std", "count"]).reset_index()
    g["cell"] = [f"{100 * m:.1f} +- {100 * s:.1f}" if n > 1 else f"{100 * m:.1f}"
                 for m, s, n in zip(g["mean"], g["std"], g["count"])]
    table = g.pivot(index=[*by, "panel", "x"], columns="method", values="cell")
    table = table[[m for m in methods if m in table.columns]].rename(columns=LABELS)

    def key(idx):
        *t, p, x = idx
        return (*(targets.index(v) for v in t), "abk".index(p), -x if p != "k" else x)

    order = sorted(table.index, key=key)
    table = table.loc[order]
    table.index = pd.MultiIndex.from_tuples(
        [(*t, SHORT_PANELS[p], f"{'k' if p == 'k' else 'alpha'} {x:g}") for *t, p, x in order],
        names=[*by, "panel", "training data"])
    table.columns.name = None
    return table


def drop_per_seed(rows: pd.DataFrame, panel: str, method: str, hi: float, lo: float,
                  metric: str = "acc_t", target: str | None = None) -> pd.Series:
    """Per seed, ``metric`` at ``x = hi`` minus at ``x = lo`` (a positive drop: less data, lower accuracy).

    ``target``: that target's rows only; rows of several targets without it pool them (per seed, the
    mean over the targets)."""
    sub = rows[(rows["panel"] == panel) & (rows["method"] == method) & (rows["metric"] == metric)]
    if target is not None:
        sub = sub[sub["target"] == target]
    piv = sub.pivot_table(index="seed", columns="x", values="value", aggfunc="mean")
    if hi not in piv or lo not in piv:
        return pd.Series(dtype=float)
    return (piv[hi] - piv[lo]).dropna()


def drop_table(rows: pd.DataFrame, methods: Sequence[str], lo: float, hi: float = 1.0) -> pd.DataFrame:
    """Per panel (a, b) and method: the paired per-seed Acc-T drop from ``hi`` to ``lo``, ``mean +- sd`` points.

    Rows with a ``target`` column: one row per target and panel (index ``target, panel``)."""
    targets = targets_of(rows)
    out = {}
    for t in targets or [None]:
        for panel in ("a", "b"):
            cells = {}
            for m in methods:
                mean, sd, n = gap_stats(drop_per_seed(rows, panel, m, hi, lo, target=t))
                cells[LABELS.get(m, m)] = f"{100 * mean:+.1f} +- {100 * sd:.1f}" if n > 1 else f"{100 * mean:+.1f}"
            out[(t, SHORT_PANELS[panel]) if targets else SHORT_PANELS[panel]] = cells
    table = pd.DataFrame(out).T
    if targets:
        table.index.names = ["target", "panel"]
    return table


def claims_fig14(rows: pd.DataFrame, ours: str = "MTMDD-VM", others: Sequence[str] = ("VGGsrc", "TDL"),
                 k_lead: float = 1.0) -> list:
    """IV-D2 / Fig. 14 as ``(Claim, data)`` pairs, Acc-T per target test image over the seeds (each
    seed its own draw): less data lowers Acc-T (judged on the method with the smallest mean drop),
    ours degrades least (against the other with the smallest mean drop); the k-shot lead.

    Rows of several targets (:func:`reduced_data_runs_targets`) are pooled: every target's test
    images as distinct items (a per-seed value, where the rows have no per-image scores: the mean
    over the targets); the methods the claims are judged on are chosen on the pooled means, and
    the texts say "pooled over the targets ..."."""
    from .claims import A, acc_scores, drop_scores

    out = []
    pooled = pooled_note(rows)
    names = {"a": "source", "b": "target"}
    for panel in ("a", "b"):
        xs = sorted(rows.loc[rows["panel"] == panel, "x"].unique())
        if not xs:
            continue
        lo, hi = float(xs[0]), 1.0
        where = {m: ({"panel": panel, "method": m, "x": hi}, {"panel": panel, "method": m, "x": lo})
                 for m in (*others, ours)}
        drops = drop_scores(rows, where)
        mean = drops.groupby("method")["value"].mean()
        m = str(mean.idxmin())
        arms = {f"{LABELS.get(m, m)} alpha=1": where[m][0], f"{LABELS.get(m, m)} alpha={lo:g}": where[m][1]}
        out.append((A(f"Fig14{panel}-less-{names[panel]}-lowers-AccT",
                      f"Acc-T decreases when the {names[panel]} training data are reduced (alpha = 1 above alpha = "
                      f"{lo:g}) for every method: judged on the smallest mean drop, here {LABELS.get(m, m)}{pooled}",
                      "direction", arms=tuple(arms), comparisons=len(mean)), acc_scores(rows, "t", arms)))
        o = str(mean.drop(ours).idxmin())
        d = drops[drops["method"].isin([o, ours])].replace({"method": {o: f"{LABELS.get(o, o)} drop",
                                                                       ours: "OURS drop"}})
        out.append((A(f"Fig14{panel}-ours-degrades-least",
                      f"With less {names[panel]} data (alpha 1 -> {lo:g}), OURS (MTMDD-VM) loses less Acc-T than "
                      + " and ".join(LABELS.get(x, x) for x in others)
                      + f": judged against the other with the smallest mean drop, here {LABELS.get(o, o)}{pooled}",
                      "direction", arms=(f"{LABELS.get(o, o)} drop", "OURS drop"), comparisons=len(mean) - 1), d))
    at = rows[(rows["panel"] == "k") & (rows["x"] == float(k_lead))]
    if len(at):
        acc_t = at[at["metric"] == "acc_t"]  # the mean over seeds of the per-seed mean over the targets
        acc = acc_t.groupby(["method", "seed"])["value"].mean().groupby("method").mean()
        rival = str(acc.drop(ours).idxmax())
        arms = {"OURS": {"method": ours}, LABELS.get(rival, rival): {"method": rival}}
        out.append((A(f"ext-kshot-ours-leads-at-k{int(k_lead)}",
                      f"(Extension, not in the paper) with k = {int(k_lead)} target training image(s) per class, "
                      f"OURS (MTMDD-VM) has the highest Acc-T: judged against the best other by mean, here "
                      f"{LABELS.get(rival, rival)}{pooled}", "direction", arms=tuple(arms), comparisons=len(acc) - 1),
                    acc_scores(at, "t", arms)))
    return out


def plot_fig14(rows: pd.DataFrame, methods: Sequence[str], metric: str = "acc_t"):
    """Fig. 14-like panels: ``metric`` (%) vs alpha (a, b) and vs k (k-shot), mean +- sd over seeds.

    Rows with a ``target`` column: one row of panels per target (titled with it), never a mean over targets."""
    import matplotlib.pyplot as plt

    targets = targets_of(rows)
    panels = [p for p in ("a", "b", "k") if (rows["panel"] == p).any()]
    n_rows = max(1, len(targets))
    fig, axes = plt.subplots(n_rows, len(panels), figsize=(4.3 * len(panels), 3.7 * n_rows), sharey=True,
                             squeeze=False)
    sub = rows[rows["metric"] == metric]
    by = ["target"] if targets else []
    all_stats = sub.groupby([*by, "panel", "method", "x"])["value"].agg(["mean", "std"]).reset_index()
    for r, t in enumerate(targets or [None]):
        stats = all_stats if t is None else all_stats[all_stats["target"] == t]
        for ax, panel in zip(axes[r], panels):
            for i, m in enumerate(methods):
                s = stats[(stats["panel"] == panel) & (stats["method"] == m)].sort_values("x")
                if not len(s):
                    continue
                ls = ":" if m == "VGGimg" else "-"
                line = ax.errorbar(s["x"], 100 * s["mean"], yerr=100 * s["std"].fillna(0), marker="os^dv"[i % 5],
                                   ls=ls, capsize=3, label=LABELS.get(m, m))
                if panel == "k":
                    full = stats[(stats["panel"] == "a") & (stats["method"] == m) & (stats["x"] == 1.0)]
                    if len(full):
                        ax.axhline(100 * full["mean"].iloc[0], color=line[0].get_color(), lw=0.8, ls="--")
            if panel == "k":
                from matplotlib.ticker import NullFormatter

                ax.set(xlabel="k target training images per class (dashed: all)", xscale="log")
                ks = sorted(stats.loc[stats["panel"] == "k", "x"].unique())
                ax.set_xticks(ks, [f"{k:g}" for k in ks])
                ax.xaxis.set_minor_formatter(NullFormatter())
            else:
                ax.set(xlabel="alpha (share of training images per class)")
                ax.invert_xaxis()
            ax.set_title(PANELS[panel] if t is None else f"target {t}\n{PANELS[panel]}", fontsize=10)
        axes[r][0].set_ylabel("Acc-T (%), test" if metric == "acc_t" else metric)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig
