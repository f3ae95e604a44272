"""Paper A's claims (sections III-A to IV-B1), checked on our runs: one dict per claim.

Each function takes the tidy results of one notebook and returns rows for
:func:`clickvision.results.record_claims` (``paper, claim_id, claim, evidence, held``).
Means are over seeds; the evidence shows the spread where there is more than one seed.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .paper_a import summarize


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


def spread_note(rows: pd.DataFrame) -> str:
    """``"mean +- sd over 3 seeds"`` for evidence strings."""
    n = rows["seed"].nunique() if "seed" in rows else 1
    return f"mean +- sd over {n} seeds" if n > 1 else "1 seed"


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
    """A paired gap in points over ``n`` seeds (or draws: ``unit``), noted when within one sd of zero."""
    if n > 1:
        note = " (within 1 sd of 0: not resolved)" if abs(mean) <= sd else ""
        return f"{scale * mean:+.1f} +- {scale * sd:.1f} over {n} {unit}s{note}"
    return f"{scale * mean:+.1f} (1 {unit})"


def resolved_positive(mean: float, sd: float, n: int) -> bool:
    """A paired per-seed gap that is positive and outside one sd of zero (with one seed: positive)."""
    return bool(mean > 0 and (n <= 1 or mean > sd))


def print_claims(claims: Sequence[dict], width: int = 110) -> None:
    """Each claim's verdict, sentence and full evidence (deterministic text for the notebooks)."""
    for c in claims:
        print(f"[{'held' if c['held'] else 'NOT held'}] {c['claim_id']}: {c['claim']}")
        print(textwrap.fill(c["evidence"], width, initial_indent="    ", subsequent_indent="    "))


def claim(claim_id: str, text: str, evidence: str, held: bool) -> dict:
    return dict(paper="A", claim_id=claim_id, claim=text, evidence=evidence, held=bool(held))


def claims_click_feature(ceiling: pd.DataFrame, correct: pd.DataFrame | None = None) -> list[dict]:
    """III-A: the click feature adds semantic information to the visual one (ground truth, source).

    ``correct``: per test image, 1/0 correctness of ``V`` and ``V + C (ground truth)``
    (:func:`~clickvision.experiments.paper_a_clicks.click_ceiling` with ``per_image=True``):
    adds the paired bootstrap 90 % interval of the gain over the test images.
    """
    acc = ceiling[ceiling["test images"] == "all"].set_index("features")["accuracy"]
    v, vc, c = acc["V"], acc["V + C (ground truth)"], acc["C (ground truth)"]
    ev = f"source test, logistic regression (deterministic fit): V {100 * v:.1f}, C {100 * c:.1f}, V + C {100 * vc:.1f}"
    held = vc > v
    if correct is not None:
        from ..stats import bootstrap_ci

        gain, lo, hi = bootstrap_ci(correct["V + C (ground truth)"] - correct["V"], n_resamples=2000, seed=0)
        ev += f"; gain {100 * gain:+.1f} points, 90 % paired bootstrap interval over {len(correct)} test images " \
              f"[{100 * lo:+.2f}, {100 * hi:+.2f}]; held only when the interval excludes 0"
        held = held and lo > 0
    return [claim("IIIA-click-complements-visual",
                  "The (ground-truth) click feature complements the visual feature: V + C beats V", ev, held)]


def claims_tdl(rows: pd.DataFrame) -> list[dict]:
    """III-B / Fig. 3: a click predictor learned on the source transfers worse to the target."""
    c = rows[rows["representation"] == "C"]
    summ = summarize(rows, ["representation"])
    s, t = _stat(summ, "representation", "C", "acc_s")[0], _stat(summ, "representation", "C", "acc_t")[0]
    per_seed = c.pivot_table(index="seed", columns="metric", values="value")
    d = per_seed["acc_s"] - per_seed["acc_t"]
    return [claim("IIIB-tdl-transfer-gap",
                  "TDL's predicted click feature recognises the target worse than the source (Acc-T < Acc-S)",
                  f"C[7] ({spread_note(c)}): Acc-S {pct(summ, 'representation', 'C', 'acc_s')}, "
                  f"Acc-T {pct(summ, 'representation', 'C', 'acc_t')}; Acc-S - Acc-T "
                  f"{gap_text(float(d.mean()), float(d.std()), len(d))} (paper 63.0 / 44.2: +18.8)", t < s)]


def claims_table_iii(rows: pd.DataFrame, grid: pd.DataFrame | None) -> list[dict]:
    """Table III and Fig. 9 (means over seeds; paired per-seed gaps in the evidence)."""
    c = rows[rows["representation"] == "C"]
    summ = summarize(c, ["embedding"])
    names = ["FC", "biFC", "CONV+FC", "CONV+biFC"]
    acc = {n: (_stat(summ, "embedding", n, "acc_s")[0], _stat(summ, "embedding", n, "acc_t")[0]) for n in names}
    ev = f"Acc-S / Acc-T ({spread_note(c)}): " + "; ".join(
        f"{n} {pct(summ, 'embedding', n, 'acc_s')} / {pct(summ, 'embedding', n, 'acc_t')}" for n in names)
    gaps_fc = "; Acc-T gap to FC: " + ", ".join(
        f"{n} {gap_text(*paired_gap(c, 'embedding', n, 'FC', 'acc_t'))}" for n in names[1:])
    rival = max(names[:-1], key=lambda n: acc[n][1])
    gap_best = (f"; CONV+biFC - {rival} (best other in Acc-T): Acc-T "
                f"{gap_text(*paired_gap(c, 'embedding', 'CONV+biFC', rival, 'acc_t'))}")
    out = [claim("III-nonlinear-beats-linear",
                 "Every nonlinear embedding (biFC, CONV+FC, CONV+biFC) beats the linear FC in Acc-S and Acc-T",
                 ev + gaps_fc, all(acc[n][0] > acc["FC"][0] and acc[n][1] > acc["FC"][1] for n in names[1:])),
           claim("III-conv-bifc-best", "CONV+biFC is the best embedding in both domains", ev + gap_best,
                 all(acc["CONV+biFC"][i] >= max(acc[n][i] for n in names) for i in (0, 1)))]
    if grid is not None and len(grid):
        g = grid[grid["representation"] == "C"]
        per_seed = g.groupby(["kernel_size", "seed", "metric"])["value"].mean().unstack("metric")
        by = per_seed.groupby(level="kernel_size").agg(["mean", "std"])
        lo, hi = by.index.min(), by.index.max()
        held = bool(by.loc[hi, ("acc_s", "mean")] > by.loc[lo, ("acc_s", "mean")]
                    and by.loc[hi, ("acc_t", "mean")] > by.loc[lo, ("acc_t", "mean")])
        n = g["seed"].nunique()

        def cell(size, metric):
            m, s = by.loc[size, (metric, "mean")], by.loc[size, (metric, "std")]
            return f"{100 * m:.1f}" + (f" +- {100 * s:.1f}" if n > 1 else "")

        gap = (per_seed.xs(hi, level="kernel_size")["acc_t"] - per_seed.xs(lo, level="kernel_size")["acc_t"])
        out.append(claim("Fig9-larger-kernels-help",
                         "A larger CONV kernel gives higher accuracy (mean over the numbers of kernels)",
                         f"{spread_note(g)}: kernel {lo}: Acc-S {cell(lo, 'acc_s')} / Acc-T {cell(lo, 'acc_t')}; "
                         f"kernel {hi}: {cell(hi, 'acc_s')} / {cell(hi, 'acc_t')}; Acc-T gap "
                         f"{gap_text(float(gap.mean()), float(gap.std()), len(gap))}", held))
    return out


def claims_table_iv(rows: pd.DataFrame, t_rows: pd.DataFrame | None) -> list[dict]:
    """Table IV (B sweep at tau = T = 0.1) and "T has little impact"."""
    c = rows[rows["representation"].isin(["C", "click"])]
    summ = summarize(c, ["B"])
    bs = sorted(float(x) for x in c["B"].unique())

    def acc(b, m):
        return _stat(summ, "B", b, m)[0]

    flat = [b for b in bs if 0.01 <= b <= 1]
    spans = {m: 100 * (max(acc(b, m) for b in flat) - min(acc(b, m) for b in flat)) for m in ("acc_s", "acc_t")}
    per_b = "; ".join(f"B={b:g}: {pct(summ, 'B', b, 'acc_s')} / {pct(summ, 'B', b, 'acc_t')}" for b in flat)
    out = [claim("IV-flat-B-0.01-to-1", "Accuracy is flat for B in [0.01, 1] (range of the means <= 2 points in "
                 "both domains)", f"Acc-S / Acc-T (mean +- sd over seeds): {per_b}; range of the means: Acc-S "
                 f"{spans['acc_s']:.1f}, Acc-T {spans['acc_t']:.1f} points", max(spans.values()) <= 2.0)]
    if 1e-4 in bs and 0.01 in bs:
        lo_s, lo_t, ref_s, ref_t = acc(1e-4, "acc_s"), acc(1e-4, "acc_t"), acc(0.01, "acc_s"), acc(0.01, "acc_t")
        out.append(claim("IV-collapse-at-1e-4", "Accuracy collapses at B = 1e-4 (below half of B = 0.01's)",
                         f"B=1e-4 Acc-S {pct(summ, 'B', 1e-4, 'acc_s')} / Acc-T {pct(summ, 'B', 1e-4, 'acc_t')} vs "
                         f"B=0.01 {pct(summ, 'B', 0.01, 'acc_s')} / {pct(summ, 'B', 0.01, 'acc_t')} "
                         "(paper 0.7 / 1.5 vs 71.5 / 58.9)", lo_s < 0.5 * ref_s and lo_t < 0.5 * ref_t))
    ratios = [acc(b, "ratio") for b in bs]
    out.append(claim("IV-ratio-grows-with-B", "The share of sigmoid inputs in [0, B] (Ratio) grows with B",
                     "source test, mean over seeds: " + ", ".join(f"B={b:g}: {100 * r:.2f} %" for b, r in zip(bs, ratios)),
                     all(np.diff(ratios) >= 0)))
    if t_rows is not None and len(t_rows):
        tc = t_rows[t_rows["representation"] == "C"]
        ts = summarize(tc, ["T"])
        vals = {t: _stat(ts, "T", t, "acc_t")[0] for t in sorted(float(x) for x in tc["T"].unique())}
        span = 100 * (max(vals.values()) - min(vals.values()))
        out.append(claim("IV-T-little-impact", "T has little impact on accuracy (range of the mean Acc-T <= 2 points)",
                         "Acc-T: " + ", ".join(f"T={t:g}: {pct(ts, 'T', t, 'acc_t')}" for t in vals)
                         + f"; range {span:.1f} points", span <= 2.0))
    return out


def best_small_tau(rows: pd.DataFrame, metric: str = "val_acc_t") -> float:
    """The tau in (0, 0.15] with the best mean validation accuracy (seed 0 decides if only it ran)."""
    c = rows[rows["representation"] == "C"]
    first = c[c["seed"] == c["seed"].min()]
    small = first[(first["tau"] > 0) & (first["tau"] <= 0.15) & (first["metric"] == metric)]
    if small.empty:
        raise ValueError("no tau in (0, 0.15] among the rows")
    return float(small.groupby("tau")["value"].mean().idxmax())


def claims_table_v(rows: pd.DataFrame, chosen_tau: float) -> list[dict]:
    """Table V (tau sweep, gd-ratio) and Fig. 10 (eq. 9 errors with and without the position loss)."""
    c = rows[rows["representation"].isin(["C", "click"])]
    summ = summarize(c, ["tau"])
    taus = sorted(float(x) for x in c["tau"].unique())

    def m(t, metric):
        return _stat(summ, "tau", t, metric)[0]

    best_small = best_small_tau(rows)
    cr = c[c["representation"] == "C"]
    out = [claim("V-small-tau-beats-count", "A small tau (0 < tau <= 0.15, chosen on validation) beats the count "
                 "loss alone (tau = 0) in Acc-S and Acc-T",
                 f"tau=0: {pct(summ, 'tau', 0.0, 'acc_s')} / {pct(summ, 'tau', 0.0, 'acc_t')}; small tau="
                 f"{best_small:g}: {pct(summ, 'tau', best_small, 'acc_s')} / {pct(summ, 'tau', best_small, 'acc_t')}"
                 f"; paired gap Acc-S {gap_text(*paired_gap(cr, 'tau', best_small, 0.0, 'acc_s'))}, Acc-T "
                 f"{gap_text(*paired_gap(cr, 'tau', best_small, 0.0, 'acc_t'))}; held only when both gaps are "
                 "positive and resolved (mean > 1 sd)",
                 resolved_positive(*paired_gap(cr, 'tau', best_small, 0.0, 'acc_s'))
                 and resolved_positive(*paired_gap(cr, 'tau', best_small, 0.0, 'acc_t')))]
    if 1.0 in taus:
        out.append(claim("V-position-alone-far-worse", "The position loss alone (tau = 1) is far worse "
                         "(at least 10 points below tau = 0 in both domains)",
                         f"tau=1: {pct(summ, 'tau', 1.0, 'acc_s')} / {pct(summ, 'tau', 1.0, 'acc_t')} vs tau=0 "
                         f"{pct(summ, 'tau', 0.0, 'acc_s')} / {pct(summ, 'tau', 0.0, 'acc_t')} (paper 11.8 / 7.9 vs "
                         "70.3 / 57.3)", m(1.0, "acc_s") < m(0.0, "acc_s") - 0.10 and m(1.0, "acc_t") < m(0.0, "acc_t") - 0.10))
    if 0.1 in taus:
        g, sd = _stat(summ, "tau", 0.1, "gd_ratio")
        n = _n(summ, "tau", 0.1, "gd_ratio")
        others = ", ".join(f"tau={t:g}: {m(t, 'gd_ratio'):.2f}" for t in taus if 0 < t < 1)
        out.append(claim("V-gd-ratio-one-at-0.1", "At tau = 0.1 the gd-ratio (weighted position / count gradient "
                         "norm) is about 1 (within [0.5, 2])",
                         f"gd-ratio at tau=0.1: {g:.2f}" + (f" +- {sd:.2f} over {n} seeds" if n > 1 else " (1 seed)")
                         + f"; means: {others} (paper 0.31, 0.99, 2.21, 3.63, 19.84 at 0.05-0.4)", 0.5 <= g <= 2.0))
    if chosen_tau in taus and chosen_tau != 0.0:
        with_pos, without = m(chosen_tau, "position_error"), m(0.0, "position_error")
        ck = c[c["representation"] == "click"]
        gm, gs, gn = paired_gap(ck, "tau", chosen_tau, 0.0, "position_error")
        sd_pos, sd0 = _stat(summ, "tau", chosen_tau, "position_error")[1], _stat(summ, "tau", 0.0, "position_error")[1]
        out.append(claim("Fig10-position-loss-closer", "The position loss brings the predicted nonzero positions "
                         "closer to the truth (smaller eq. 9 error, source test)",
                         f"mean |A xor A_hat| (A_hat = words with v_hat > 0) with tau={chosen_tau:g}: "
                         f"{with_pos:.1f} +- {sd_pos:.1f} vs tau=0: {without:.1f} +- {sd0:.1f} (of K words); paired "
                         f"gap {gap_text(gm, gs, gn, scale=1.0)}", with_pos < without))
    return out


def claims_table_vi(rows: pd.DataFrame) -> list[dict]:
    """Table VI (means over seeds; paired per-seed gaps of the key comparisons in the evidence)."""
    r = rows[rows["representation"] != "click"]
    summ = summarize(r, ["features"])

    def m(f, metric):
        return _stat(summ, "features", f, metric)[0]

    def gaps(pairs):
        return "; paired gaps Acc-S / Acc-T: " + ", ".join(
            f"{a} - {b} {gap_text(*paired_gap(r, 'features', a, b, 'acc_s'))} / "
            f"{gap_text(*paired_gap(r, 'features', a, b, 'acc_t'))}" for a, b in pairs)

    both = ("acc_s", "acc_t")
    ev = f"Acc-S / Acc-T ({spread_note(r)}): " + "; ".join(
        f"{f} {pct(summ, 'features', f, 'acc_s')} / {pct(summ, 'features', f, 'acc_t')}"
        for f in ["V", "C[7]", "C_E", "C", "V+C[7]", "V+C_E", "V+C"])
    return [claim("VI-combined-beats-single", "V + C beats both V and C alone, in both domains",
                  ev + gaps([("V+C", "V"), ("V+C", "C")]),
                  all(m("V+C", x) > max(m("V", x), m("C", x)) for x in both)),
            claim("VI-C-beats-CE-beats-C7", "C > C_E > C[7] (each improvement of the click predictor helps), "
                  "both domains", ev + gaps([("C", "C_E"), ("C_E", "C[7]")]),
                  all(m("C", x) > m("C_E", x) > m("C[7]", x) for x in both)),
            claim("VI-order-holds-with-V", "With the visual feature too: V+C > V+C_E > V+C[7], both domains",
                  ev + gaps([("V+C", "V+C_E"), ("V+C_E", "V+C[7]")]),
                  all(m("V+C", x) > m("V+C_E", x) > m("V+C[7]", x) for x in both))]


def selected_row(summary: pd.DataFrame, column: str, chosen) -> str:
    """A sentence naming the validation-selected value and its test accuracies."""
    return (f"selected on validation: {column} = {chosen:g}; test Acc-S {pct(summary, column, chosen, 'acc_s')}, "
            f"Acc-T {pct(summary, column, chosen, 'acc_t')}")


def seeds_note(seeds: Sequence[int]) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"
