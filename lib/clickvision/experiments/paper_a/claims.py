"""Paper A's claims (sections III-A to IV-B1) as :class:`clickvision.claims.Claim` objects.

Each ``claims_*`` function takes the tidy results of one notebook and returns ``(claim, data)``
pairs for :func:`judge_all` (a :class:`clickvision.claims.Ledger` judges, shows and records
them). ``data`` is tidy ``method, seed, item, value``: per test image 0/1 correctness
(metrics ``correct_s`` / ``correct_t``, 239 test images per domain at ``default``) wherever
the claim is about accuracy, and per image for Fig. 10's eq. (9) error and precision@|A|
(metrics ``item_position_error_bin`` / ``item_precision_at_a``), so the interval counts the
sampling of the test images as well as the seeds; per-seed aggregates (one row per method and
seed) only for metrics that do not decompose over images (RMSE, the gd-ratio), or where the rows
carry no per-image values (results recorded before them). Accuracy values are
fractions (0.01 = one point); a paper effect is given in the same unit and orientation.

Claims of "every X beats Y" or "X is best" are judged against the weakest X / strongest
rival by the observed means (the hardest single comparison); that choice is named in the
claim sentence.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from ...claims import Claim, Ledger
from .core import (
    CROSSFIT,
    PAPER_TABLE_III,
    PAPER_TABLE_IV,
    PAPER_TABLE_V,
    PAPER_TABLE_VI,
    summarize,
)

DOMAIN = {"s": "Acc-S", "t": "Acc-T"}


def _pairs(n: int) -> int:
    """How many pairs ``n`` settings form: the comparisons a "best minus worst" claim chose its pair from."""
    return max(1, n * (n - 1) // 2)


def A(claim_id: str, text: str, kind: str, **kw) -> Claim:
    """A paper-A :class:`Claim`."""
    return Claim(paper="A", claim_id=claim_id, claim=text, kind=kind, **kw)


def _filter(rows: pd.DataFrame, metric: str, where: Mapping[str, Any]) -> pd.DataFrame:
    sub = rows[rows["metric"] == metric]
    for k, v in where.items():
        vals = list(v) if isinstance(v, (list, tuple, set)) else [v]
        sub = sub[sub[k].isin(vals)]
    return sub


def scores(rows: pd.DataFrame, metric: str, arms: Mapping[str, Mapping[str, Any]],
           seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Tidy claim data ``method, seed, [item,] value``: one arm per ``arms[label] = {column: value}``.

    A list value averages the arm over those settings (per seed and item). Rows with an
    ``item`` give per-item scores; without, one row per seed. ``seeds``: keep only these.
    """
    out = []
    for label, where in arms.items():
        sub = _filter(rows, metric, where)
        if seeds is not None:
            sub = sub[sub["seed"].isin(list(seeds))]
        if sub.empty:
            raise ValueError(f"scores: no {metric!r} rows for arm {label!r} ({dict(where)})")
        per_item = "item" in sub.columns and sub["item"].notna().all()
        keys = ["seed", "item"] if per_item else ["seed"]
        g = sub.groupby(keys)["value"].mean().reset_index()
        out.append(g.assign(method=label))
    return pd.concat(out, ignore_index=True)[["method", "seed", *(["item"] if "item" in out[0] else []), "value"]]


def acc_scores(rows: pd.DataFrame, dom: str, arms: Mapping[str, Mapping[str, Any]],
               seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Accuracy scores in domain ``dom`` ("s" / "t"): per test image (``correct_<dom>``) when every
    arm has them on the same images and every seed on the same images, else per-seed
    ``acc_<dom>`` (methods scored as a whole, or test sets drawn per seed)."""
    try:
        d = scores(rows, f"correct_{dom}", arms, seeds)
    except ValueError:
        d = None
    if d is not None and "item" in d.columns:
        cells = [set(zip(g["seed"], g["item"])) for _, g in d.groupby("method")]
        per_seed = [frozenset(g["item"]) for _, g in d.groupby("seed")]
        if len(cells) == len(arms) and all(c == cells[0] for c in cells) and len(set(per_seed)) == 1:
            return d
    return scores(rows, f"acc_{dom}", arms, seeds)


def drop_scores(rows: pd.DataFrame, arms: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]],
                dom: str = "t") -> pd.DataFrame:
    """Per arm ``label: (where_hi, where_lo)``: accuracy at ``where_hi`` minus at ``where_lo``, per
    (seed[, item]) (:func:`acc_scores`), e.g. the drop of one method from all data to less."""
    flat = {f"{k}|{side}": w for k, (hi, lo) in arms.items() for side, w in (("hi", hi), ("lo", lo))}
    d = acc_scores(rows, dom, flat)
    keys = ["seed", "item"] if "item" in d.columns else ["seed"]
    w = d.pivot_table(index=keys, columns="method", values="value")
    out = [(w[f"{k}|hi"] - w[f"{k}|lo"]).rename("value").reset_index().assign(method=k) for k in arms]
    return pd.concat(out, ignore_index=True)


def constant_arm(data: pd.DataFrame, label: str, value: float) -> pd.DataFrame:
    """``data`` plus an arm ``label`` holding ``value`` on every (seed, item) of ``data``'s first arm."""
    first = data[data["method"] == data["method"].iloc[0]]
    return pd.concat([data, first.assign(method=label, value=float(value))], ignore_index=True)


def shifted(data: pd.DataFrame, arm: str, label: str, by: float, scale: float = 1.0) -> pd.DataFrame:
    """``data`` with ``arm`` replaced by ``label`` = ``scale`` x value + ``by`` (a threshold made an arm)."""
    d = data.copy()
    m = d["method"] == arm
    d.loc[m, "value"] = scale * d.loc[m, "value"] + by
    d.loc[m, "method"] = label
    return d


def ranked(rows: pd.DataFrame, column: str, values: Iterable, metric: str, **where) -> list:
    """``values`` sorted by their mean ``metric`` (highest first) over the matching rows."""
    sub = _filter(rows, metric, where)
    means = sub.groupby(column)["value"].mean()
    return sorted(values, key=lambda v: -float(means.get(v, np.nan)))


def common_seeds(rows: pd.DataFrame, column: str, values: Iterable, metric: str) -> list[int]:
    """Seeds on which every one of ``values`` of ``column`` was run."""
    sets = [set(rows[(rows[column] == v) & (rows["metric"] == metric)]["seed"]) for v in values]
    return sorted(set.intersection(*sets)) if sets else []


def judge_all(ledger: Ledger, pairs: Iterable[tuple[Claim, pd.DataFrame | None]]) -> Ledger:
    """Judge every ``(claim, data)`` pair in ``ledger``; return it.

    A claim on per-seed aggregates (no ``item``) from a single seed has nothing to resample:
    it is recorded ``untestable`` with that reason (the smoke profile runs one seed).
    """
    from dataclasses import replace

    for c, d in pairs:
        if d is not None and "item" not in d.columns and d["seed"].nunique() < 2:
            c = replace(c, kind="untestable", reason="one seed of a per-seed metric: no interval to judge on "
                        "(the committed profile runs several seeds)")
            d = None
        ledger.judge(c, d)
    return ledger


# --- tables' text helpers (means over seeds) ------------------------------------------------------

def _stat(summary: pd.DataFrame, column: str, value, metric: str) -> tuple[float, float]:
    sub = summary[(summary[column] == value) & (summary["metric"] == metric)]
    if not len(sub):
        return float("nan"), float("nan")
    return float(sub["mean"].iloc[0]), float(sub["std"].iloc[0])


def _n(summary: pd.DataFrame, column: str, value, metric: str) -> int:
    sub = summary[(summary[column] == value) & (summary["metric"] == metric)]
    return int(sub["seeds"].iloc[0]) if len(sub) and "seeds" in sub else 0


def pct(summary: pd.DataFrame, column: str, value, metric: str) -> str:
    """``"57.3 +- 1.2"`` (percent, mean +- sd over seeds) or ``"57.3 (1 seed)"``."""
    m, s = _stat(summary, column, value, metric)
    if _n(summary, column, value, metric) > 1:
        return f"{100 * m:.1f} +- {100 * s:.1f}"
    return f"{100 * m:.1f} (1 seed)"


def gap_stats(d: pd.Series) -> tuple[float, float, int]:
    """(mean, sd, n) of paired per-seed differences ``d`` (NaN dropped; sd is NaN for one value)."""
    d = d.dropna()
    return float(d.mean()), float(d.std()) if len(d) > 1 else float("nan"), int(len(d))


def paired_gap(rows: pd.DataFrame, column: str, a, b, metric: str) -> tuple[float, float, int]:
    """Per-seed ``metric(a) - metric(b)`` (same seed): (mean, sd, seeds) over the seeds both ran."""
    sub = rows[(rows["metric"] == metric) & rows[column].isin([a, b])]
    piv = sub.pivot_table(index="seed", columns=column, values="value", aggfunc="mean")
    if a not in piv or b not in piv:
        return float("nan"), float("nan"), 0
    return gap_stats(piv[a] - piv[b])


def gap_text(mean: float, sd: float, n: int, scale: float = 100.0, unit: str = "seed") -> str:
    """A paired gap in points over ``n`` seeds (or draws: ``unit``), mean +- sd."""
    if n > 1:
        return f"{scale * mean:+.1f} +- {scale * sd:.1f} over {n} {unit}s"
    return f"{scale * mean:+.1f} (1 {unit})"


def seed_sd(rows: pd.DataFrame, by: Sequence[str], metrics: Sequence[str] = ("acc_s", "acc_t")) -> float:
    """The largest sd over seeds of ``metrics`` among the groups ``by`` (the regression tolerance's spread)."""
    summ = summarize(rows[rows["metric"].isin(list(metrics))], list(by))
    return float(np.nanmax(summ["std"].to_numpy(float))) if len(summ) else 0.0


def paper_diff(table: pd.DataFrame, row: str, a, b) -> float:
    """The paper's ``table[row][a] - table[row][b]`` in fractions (the tables are in percent); NaN when the
    paper printed no such column (our grid has a value the paper's has not)."""
    try:
        return (float(table.loc[row, a]) - float(table.loc[row, b])) / 100
    except KeyError:
        return float("nan")


def paper_weakest_link(table: pd.DataFrame, row: str, names: Sequence) -> float:
    """The paper's smallest adjacent difference of an ordering ``names`` (its weakest link), in fractions."""
    return min(paper_diff(table, row, a, b) for a, b in pairwise(names))


def claims_click_feature(correct: pd.DataFrame) -> list[tuple[Claim, pd.DataFrame]]:
    """III-A: the click feature adds semantic information to the visual one (ground truth, source).

    ``correct``: per source test image, 1/0 correctness of ``V`` and ``V + C (ground truth)``
    (:func:`~clickvision.experiments.paper_a.clicks.click_ceiling` with ``per_image=True``);
    one deterministic fit, so the interval is over the test images only.
    """
    data = pd.concat([pd.DataFrame({"method": m, "seed": 0, "item": np.arange(len(correct)),
                                    "value": correct[m].to_numpy(float)}) for m in ("V + C (ground truth)", "V")],
                     ignore_index=True)
    return [(A("IIIA-click-complements-visual", "The (ground-truth) click feature complements the visual feature: "
               "V + C beats V (source test, accuracy as a fraction)", "direction", arms=("V + C (ground truth)", "V")),
             data)]


def claims_tdl(rows: pd.DataFrame, representation: str = "C") -> list[tuple[Claim, pd.DataFrame]]:
    """III-B / Fig. 3: a click predictor learned on the source transfers worse to the target.

    Acc-S and Acc-T are measured on different test images (the two domains), so the
    comparison is not paired by image: per-seed aggregates. ``representation``: whose rows
    (default "C"; "C (cross-fitted)", :data:`~.core.CROSSFIT`: Acc-S from the source recognizer
    trained on out-of-fold click predictions, like for like with the target's, which are all
    out of sample; the claim text says which).
    """
    c = rows[rows["representation"] == representation]
    data = pd.concat([c[c["metric"] == m][["seed", "value"]].assign(method=DOMAIN[m[-1]])
                      for m in ("acc_s", "acc_t")], ignore_index=True)
    how = ("; Acc-S's recognizer trained on cross-fitted (out-of-fold) predictions of the source training "
           "images" if representation.endswith(CROSSFIT) else "")
    return [(A("IIIB-tdl-transfer-gap", "TDL's predicted click feature recognises the target worse than the source "
               f"(Acc-T < Acc-S; fractions; paper 63.0 vs 44.2 %{how})", "direction", arms=("Acc-S", "Acc-T"),
               paper_effect=(PAPER_TABLE_VI.loc["Acc-S (%)", "C[7]"] - PAPER_TABLE_VI.loc["Acc-T (%)", "C[7]"]) / 100),
             data)]


def claims_table_iii(rows: pd.DataFrame, grid: pd.DataFrame | None) -> list[tuple[Claim, pd.DataFrame]]:
    """Table III and Fig. 9, per test image (``correct_s`` / ``correct_t``) over the seeds."""
    c = rows[rows["representation"] == "C"]
    names = ["FC", "biFC", "CONV+FC", "CONV+biFC"]
    out = []
    for dom, label in DOMAIN.items():
        metric = f"correct_{dom}"
        weakest = ranked(c, "embedding", names[1:], metric)[-1]
        out.append((A(f"III-nonlinear-beats-linear-{label}",
                      f"Every nonlinear embedding (biFC, CONV+FC, CONV+biFC) beats the linear FC in {label}: judged on "
                      f"the weakest of them by mean, here {weakest}", "direction", arms=(weakest, "FC"),
                      comparisons=len(names) - 1,
                      paper_effect=paper_diff(PAPER_TABLE_III, f"{label} (%)", weakest, "FC")),
                    scores(c, metric, {weakest: {"embedding": weakest}, "FC": {"embedding": "FC"}})))
    for dom, label in DOMAIN.items():
        metric = f"correct_{dom}"
        rival = ranked(c, "embedding", names[:-1], metric)[0]
        out.append((A(f"III-conv-bifc-best-{label}",
                      f"CONV+biFC is the best embedding in {label}: judged against the strongest other by mean, "
                      f"here {rival}", "direction", arms=("CONV+biFC", rival), comparisons=len(names) - 1,
                      paper_effect=paper_diff(PAPER_TABLE_III, f"{label} (%)", "CONV+biFC", rival)),
                    scores(c, metric, {"CONV+biFC": {"embedding": "CONV+biFC"}, rival: {"embedding": rival}})))
    if grid is not None and len(grid):
        g = grid[grid["representation"] == "C"]
        sizes = sorted(int(x) for x in g["kernel_size"].unique())
        if len(sizes) > 1:
            for dom, label in DOMAIN.items():
                arms = {f"kernel {k}": {"kernel_size": k} for k in sizes}  # mean over the numbers of kernels
                out.append((A(f"Fig9-larger-kernels-help-{label}",
                              f"A larger CONV kernel gives a higher {label} (mean over the numbers of kernels; fitted "
                              f"change from kernel {sizes[0]} to {sizes[-1]}, fractions)", "trend",
                              arms=tuple(arms), settings=tuple(float(k) for k in sizes)),
                            scores(g, f"correct_{dom}", arms)))
    return out


def claims_table_iii_matched(rows: pd.DataFrame, budget: str = "FC's") -> list[tuple[Claim, pd.DataFrame]]:
    """Table III's four embedding claims judged on a capacity-matched run (:func:`~.core.matched_ablation`):
    ids with a ``-matched`` suffix, kind, arms rule and orientation as :func:`claims_table_iii`'s (the weakest /
    strongest arm re-chosen by mean on these rows); ``budget`` names the matched parameter count in the text."""
    return [(replace(c, claim_id=f"{c.claim_id}-matched",
                     claim=f"At matched capacity (every embedding's parameter count set closest to {budget}): "
                           f"{c.claim}"), d)
            for c, d in claims_table_iii(rows, None)]


def _key(x: float):
    """A setting as the paper tables' column label (ints where whole: Table V's 0 and 1)."""
    return int(x) if x == int(x) else x


def claims_table_iv(rows: pd.DataFrame, t_rows: pd.DataFrame | None,
                    margin: float = 0.02) -> list[tuple[Claim, pd.DataFrame | None]]:
    """Table IV (B sweep at tau = T = 0.1) and "T has little impact" (equivalence, ``margin``)."""
    c = rows[rows["representation"] == "C"]
    bs = sorted(float(x) for x in c["B"].unique())
    flat = [b for b in bs if 0.01 <= b <= 1]
    out: list = []
    for dom, label in DOMAIN.items():
        metric = f"correct_{dom}"
        seeds = common_seeds(c, "B", flat, metric)
        order = ranked(c[c["seed"].isin(seeds)], "B", flat, metric)
        hi, lo = order[0], order[-1]
        out.append((A(f"IV-flat-B-0.01-to-1-{label}",
                      f"{label} is flat for B in [0.01, 1]: the best and worst B by mean (here {hi:g}, {lo:g}) differ "
                      f"by less than {100 * margin:g} points", "equivalence", arms=(f"B={hi:g}", f"B={lo:g}"),
                      comparisons=_pairs(len(flat)),
                      margin=margin, paper_effect=paper_diff(PAPER_TABLE_IV, f"{label} (%)", _key(hi), _key(lo))),
                    scores(c, metric, {f"B={hi:g}": {"B": hi}, f"B={lo:g}": {"B": lo}}, seeds)))
    if 1e-4 in bs and 0.01 in bs:
        for dom, label in DOMAIN.items():
            metric = f"correct_{dom}"
            seeds = common_seeds(c, "B", [1e-4, 0.01], metric)
            d = scores(c, metric, {"B=1e-4": {"B": 1e-4}, "B=0.01": {"B": 0.01}}, seeds)
            paper = (PAPER_TABLE_IV.loc[f"{label} (%)", 0.0001], PAPER_TABLE_IV.loc[f"{label} (%)", 0.01])
            out.append((A(f"IV-collapse-at-1e-4-{label}",
                          f"{label} collapses at B = 1e-4: below half of B = 0.01's (half of B = 0.01's minus "
                          f"B = 1e-4's > 0; paper {paper[0]} vs {paper[1]} %)", "direction",
                          arms=("half of B=0.01", "B=1e-4"), paper_effect=(paper[1] / 2 - paper[0]) / 100),
                        shifted(d, "B=0.01", "half of B=0.01", 0.0, 0.5)))
    out.append((A("IV-ratio-grows-with-B", "The share of sigmoid inputs in [0, B] (Ratio) grows with B", "structural",
                  reason="the predicted click feature is batch-normalised, so its spread is about the same in every "
                         "run and a wider interval [0, B] holds a larger share of it: Ratio grows with B by "
                         "construction (Table IV prints the values)"), None))
    if t_rows is not None and len(t_rows):
        tc = t_rows[t_rows["representation"] == "C"]
        ts = sorted(float(x) for x in tc["T"].unique())
        seeds = common_seeds(tc, "T", ts, "correct_t")
        order = ranked(tc[tc["seed"].isin(seeds)], "T", ts, "correct_t")
        hi, lo = order[0], order[-1]
        out.append((A("IV-T-little-impact", f"T has little impact on Acc-T: the best and worst T by mean (here {hi:g}, "
                      f"{lo:g}) differ by less than {100 * margin:g} points", "equivalence",
                      arms=(f"T={hi:g}", f"T={lo:g}"), margin=margin, comparisons=_pairs(len(ts))),
                    scores(tc, "correct_t", {f"T={hi:g}": {"T": hi}, f"T={lo:g}": {"T": lo}}, seeds)))
    return out


def best_small_tau(rows: pd.DataFrame, metric: str = "val_acc_t") -> float:
    """The tau in (0, 0.15] with the best mean validation accuracy (seed 0 decides if only it ran)."""
    c = rows[rows["representation"] == "C"]
    first = c[c["seed"] == c["seed"].min()]
    small = first[(first["tau"] > 0) & (first["tau"] <= 0.15) & (first["metric"] == metric)]
    if small.empty:
        raise ValueError("no tau in (0, 0.15] among the rows")
    return float(small.groupby("tau")["value"].mean().idxmax())


def click_scores(rows: pd.DataFrame, metric: str, arms: Mapping[str, Mapping[str, Any]], column: str,
                 values: Sequence) -> pd.DataFrame:
    """A click metric's claim data: per source test image (the ``item_<metric>`` rows,
    :func:`~.core.click_item_rows`) on the seeds where every arm has them, else (rows without them:
    results recorded before) the per-seed aggregates ``metric`` on the seeds every arm ran."""
    item = f"item_{metric}"
    sub = rows[rows["metric"] == item]
    if "item" in rows.columns and len(sub) and sub["item"].notna().all():
        seeds = common_seeds(rows, column, values, item)
        if seeds:
            return scores(rows, item, arms, seeds)
    return scores(rows, metric, arms, common_seeds(rows, column, values, metric))


def claims_table_v(rows: pd.DataFrame, chosen_tau: float) -> list[tuple[Claim, pd.DataFrame]]:
    """Table V (tau sweep, gd-ratio) and Fig. 10 (with and without the position loss: eq. 9's error on the
    binarised prediction the position loss trains, ``position_error_bin``, and precision@|A|): Table V per
    test image, the gd-ratio per seed, Fig. 10 per source test image where the rows carry
    ``item_position_error_bin`` / ``item_precision_at_a`` (else per seed, :func:`click_scores`)."""
    taus = sorted(float(x) for x in rows["tau"].unique())
    cr = rows[rows["representation"] == "C"]
    ck = rows[rows["representation"] == "click"]
    best_small = best_small_tau(rows)
    out: list = []
    for dom, label in DOMAIN.items():
        metric = f"correct_{dom}"
        seeds = common_seeds(cr, "tau", [best_small, 0.0], metric)
        out.append((A(f"V-small-tau-beats-count-{label}",
                      f"A small tau (0 < tau <= 0.15, chosen on validation: {best_small:g}) beats the count loss alone "
                      f"(tau = 0) in {label}", "direction", arms=(f"tau={best_small:g}", "tau=0"),
                      paper_effect=paper_diff(PAPER_TABLE_V, f"{label} (%)", _key(best_small), 0)),
                    scores(cr, metric, {f"tau={best_small:g}": {"tau": best_small}, "tau=0": {"tau": 0.0}}, seeds)))
    if 1.0 in taus:
        for dom, label in DOMAIN.items():
            metric = f"correct_{dom}"
            seeds = common_seeds(cr, "tau", [1.0, 0.0], metric)
            d = scores(cr, metric, {"tau=0": {"tau": 0.0}, "tau=1": {"tau": 1.0}}, seeds)
            paper = (PAPER_TABLE_V.loc[f"{label} (%)", 1], PAPER_TABLE_V.loc[f"{label} (%)", 0])
            out.append((A(f"V-position-alone-far-worse-{label}",
                          f"The position loss alone (tau = 1) is far worse: at least 10 points below tau = 0 in {label} "
                          f"(tau = 0 minus 0.10, minus tau = 1, > 0; paper {paper[1]} vs {paper[0]} %)", "direction",
                          arms=("tau=0 - 0.10", "tau=1"), paper_effect=(paper[1] - paper[0]) / 100 - 0.10),
                        shifted(d, "tau=0", "tau=0 - 0.10", -0.10)))
    if 0.1 in taus:
        g = ck[(ck["metric"] == "gd_ratio") & (ck["tau"] == 0.1)][["seed", "value"]]
        d = pd.concat([g.assign(method="log2 gd-ratio", value=np.log2(g["value"].to_numpy(float))),
                       g.assign(method="log2 1", value=0.0)], ignore_index=True)
        out.append((A("V-gd-ratio-one-at-0.1", "At tau = 0.1 the gd-ratio (weighted position / count gradient norm) "
                      "is about 1: within a factor 2 (log2 gd-ratio within +/-1; paper 0.99)", "equivalence",
                      arms=("log2 gd-ratio", "log2 1"), margin=1.0,
                      paper_effect=float(np.log2(PAPER_TABLE_V.loc["gd-ratio", 0.1]))), d))
    if chosen_tau in taus and chosen_tau != 0.0:
        arms = {f"tau={chosen_tau:g}": {"tau": chosen_tau}, "tau=0": {"tau": 0.0}}
        out.append((A("Fig10-position-loss-closer", f"The position loss (tau = {chosen_tau:g}) brings the predicted "
                      "nonzero positions closer to the truth: smaller eq. 9 error than tau = 0, A_hat the set the "
                      "position loss trains (BN(v_hat) > B/2; words, source test)",
                      "direction", arms=tuple(arms), alternative="less"),
                    click_scores(ck, "position_error_bin", arms, "tau", [chosen_tau, 0.0])))
        out.append((A("Fig10-position-loss-precision", f"The position loss (tau = {chosen_tau:g}) ranks the clicked "
                      "words higher: larger precision@|A| than tau = 0 (of each image's |A| top-predicted words, the "
                      "share it was clicked under; source test)", "direction", arms=tuple(arms)),
                    click_scores(ck, "precision_at_a", arms, "tau", [chosen_tau, 0.0])))
    return out


def claims_table_vi(rows: pd.DataFrame) -> list[tuple[Claim, pd.DataFrame]]:
    """Table VI, per test image over the seeds; orderings judged pair by pair."""
    r = rows[rows["representation"] != "click"]
    out = []
    for dom, label in DOMAIN.items():
        metric = f"correct_{dom}"
        rival = ranked(r, "features", ["V", "C"], metric)[0]
        out.append((A(f"VI-combined-beats-single-{label}", f"V + C beats both V and C alone in {label}: judged against "
                      f"the stronger of them by mean, here {rival}", "direction", arms=("V+C", rival), comparisons=2,
                      paper_effect=paper_diff(PAPER_TABLE_VI, f"{label} (%)", "V+C", rival)),
                    scores(r, metric, {"V+C": {"features": "V+C"}, rival: {"features": rival}})))
    for cid, names, text in (("VI-C-beats-CE-beats-C7", ("C", "C_E", "C[7]"),
                              "C > C_E > C[7] (each improvement of the click predictor helps)"),
                             ("VI-order-holds-with-V", ("V+C", "V+C_E", "V+C[7]"),
                              "With the visual feature too: V+C > V+C_E > V+C[7]")):
        for dom, label in DOMAIN.items():
            out.append((A(f"{cid}-{label}", f"{text}, {label}", "ordering", arms=names,
                          paper_effect=paper_weakest_link(PAPER_TABLE_VI, f"{label} (%)", names)),
                        scores(r, f"correct_{dom}", {n: {"features": n} for n in names})))
    return out


def selected_row(summary: pd.DataFrame, column: str, chosen) -> str:
    """A sentence naming the validation-selected value and its test accuracies."""
    return (f"selected on validation: {column} = {chosen:g}; test Acc-S {pct(summary, column, chosen, 'acc_s')}, "
            f"Acc-T {pct(summary, column, chosen, 'acc_t')}")


def seeds_note(seeds: Sequence[int]) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


# --- A.15: the SGD arm (Table IV's collapse at B = 1e-4 and Fig. 12's mu, per optimiser) ---------

OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD"}


def _mu_effect(rows: pd.DataFrame, lo: float, hi: float, model: str) -> pd.DataFrame:
    """Per (seed, target test image): correctness at mu = ``lo`` minus at mu = ``hi`` (``model``)."""
    d = scores(rows, "correct_t", {"lo": {"model": model, "mu": lo}, "hi": {"model": model, "mu": hi}})
    w = d.pivot_table(index=["seed", "item"], columns="method", values="value")
    return (w["lo"] - w["hi"]).rename("value").reset_index()


def claims_sgd_arm(b_rows: pd.DataFrame, mu_rows: pd.DataFrame, untrained: Mapping[str, str] | None = None,
                   low_b: float = 1e-4, high_b: float = 0.01, mus: tuple[float, float] = (0.1, 1.0),
                   model: str = "MTMDD-VM") -> list[tuple[Claim, pd.DataFrame | None]]:
    """A.15's claims as ``(Claim, data)`` pairs, judged per optimiser (column ``optimizer`` of the rows of
    :func:`~.optim.sgd_arm`), per test image over the seeds; oriented so that positive is the claimed
    direction.

    * ``A15-B-collapse-<opt>-<Acc-S|Acc-T>``: B = ``high_b`` beats B = ``low_b`` (Table IV: the collapse
      at 1e-4 points this way; ``paper_effect`` the paper's B = 0.01 minus B = 1e-4);
    * ``A15-mu-smaller-better-<opt>``: Acc-T of ``model`` at mu = ``mus[0]`` beats mu = ``mus[1]`` (Fig. 12;
      no printed values, so no paper effect);
    * ``A15-mu-effect-sgd-vs-adam`` (an extension, not in the paper): the mu effect (mu = ``mus[0]`` minus
      ``mus[1]``, per seed and test image) is larger under SGD than under Adam, a difference of the two
      differences on the same seeds' numbers and the same images.

    ``untrained``: optimiser -> the reason it did not train (chance accuracy at every lr tried); its claims,
    and the extension, are recorded ``untestable`` with that reason.
    """
    untrained = dict(untrained or {})
    lo_mu, hi_mu = (float(m) for m in mus)
    out: list = []
    for opt, name in OPTIMIZER_NAMES.items():
        b = b_rows[(b_rows["optimizer"] == opt) & (b_rows["representation"] == "C")]
        for dom, label in DOMAIN.items():
            cid = f"A15-B-collapse-{opt}-{label}"
            text = (f"B = {low_b:g} is worse than B = {high_b:g} in {label} under {name} (TDL, predicted click "
                    f"alone; the direction of Table IV's collapse, paper {PAPER_TABLE_IV.loc[f'{label} (%)', 0.0001]}"
                    f" vs {PAPER_TABLE_IV.loc[f'{label} (%)', 0.01]} % under the authors' SGD)")
            if opt in untrained:
                out.append((A(cid, text, "untestable", reason=untrained[opt]), None))
                continue
            arms = {f"B={high_b:g}": {"B": high_b}, f"B={low_b:g}": {"B": low_b}}
            seeds = common_seeds(b, "B", [low_b, high_b], f"correct_{dom}")
            out.append((A(cid, text, "direction", arms=tuple(arms),
                          paper_effect=paper_diff(PAPER_TABLE_IV, f"{label} (%)", _key(high_b), _key(low_b))),
                        scores(b, f"correct_{dom}", arms, seeds)))
    for opt, name in OPTIMIZER_NAMES.items():
        m = mu_rows[mu_rows["optimizer"] == opt]
        cid = f"A15-mu-smaller-better-{opt}"
        text = (f"A smaller target weight mu gives a higher Acc-T for {model} (unshared classifier) under {name}: "
                f"mu = {lo_mu:g} beats mu = {hi_mu:g} (Fig. 12; the paper ran SGD)")
        if opt in untrained:
            out.append((A(cid, text, "untestable", reason=untrained[opt]), None))
            continue
        arms = {f"{model} mu={lo_mu:g}": {"model": model, "mu": lo_mu},
                f"{model} mu={hi_mu:g}": {"model": model, "mu": hi_mu}}
        out.append((A(cid, text, "direction", arms=tuple(arms)), scores(m, "correct_t", arms)))
    text = (f"Extension, not in the paper: the optimiser changes the mu effect - {model}'s Acc-T gain from "
            f"mu = {hi_mu:g} to mu = {lo_mu:g} is larger under SGD than under Adam (difference of the two "
            f"differences, per seed and target test image)")
    if untrained:
        out.append((A("A15-mu-effect-sgd-vs-adam", text, "untestable",
                      reason="; ".join(f"{OPTIMIZER_NAMES[k]}: {v}" for k, v in untrained.items())), None))
        return out
    d = pd.concat([_mu_effect(mu_rows[mu_rows["optimizer"] == opt], lo_mu, hi_mu, model).assign(
        method=f"{OPTIMIZER_NAMES[opt]} mu effect") for opt in ("sgd", "adam")], ignore_index=True)
    out.append((A("A15-mu-effect-sgd-vs-adam", text, "direction", arms=("SGD mu effect", "Adam mu effect")), d))
    return out
