"""Paper A's multitask and multidomain experiments (IV-B2 Table VII, IV-B3 Fig. 12).

Every model is :class:`~clickvision.models.mtmdd.MTMDDNet` trained by
:func:`~clickvision.experiments.paper_a.train.train_joint` on cached features:

* MTMDD-VM / MTMDD-VM* -- source and target together (eq. 15), unshared / shared classifier;
  lambda = 1 gives MDD-VM / MDD-VM* (prediction loss only on the source);
* MTTDL -- the source alone with eq. (14), then a target recognizer on the frozen predictor
  (the domains trained separately; mu plays no role, so it is one line in Fig. 12).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ... import metrics, runtime
from ...models.mtmdd import SOURCE, TARGET
from ...selection import Selection, select_near
from .core import item_rows, note_pooled, summarize
from .data import PaperAData, torch_threads
from .train import (ClickLossSpec, HeadConfig, JointSpec, accuracy_in, correct_in, history_labels, joint_outputs,
                    predict_clicks, recognition_accuracy, train_joint)

PAPER_TABLE_VII = pd.DataFrame(
    {("MTMDD-VM", 0.8): [77.0, 81.8, 73.1, 1.6], ("MTMDD-VM", 0.6): [77.2, 81.9, 73.1, 1.6],
     ("MTMDD-VM", 0.4): [77.1, 81.9, 73.3, 1.8], ("MTMDD-VM", 0.2): [76.7, 82.2, 72.3, 0.6],
     ("MTMDD-VM", 0.0): [77.0, 100.0, 71.9, 0.4], ("MDD-VM", 1.0): [0.1, 81.7, 71.5, np.nan],
     ("MTMDD-VM*", 0.8): [73.9, 82.0, 75.2, 11.7], ("MTMDD-VM*", 0.6): [75.5, 84.0, 75.2, 11.7],
     ("MTMDD-VM*", 0.4): [76.6, 87.0, 75.6, 12.1], ("MTMDD-VM*", 0.2): [76.4, 85.0, 74.4, 10.9],
     ("MTMDD-VM*", 0.0): [77.5, 101.0, 75.4, 11.9], ("MDD-VM*", 1.0): [40.1, 81.0, 63.5, np.nan]},
    index=["Acc-S (%)", "RMSE-S (1e-2)", "Acc-T (%)", "dAcc-T (%)"])


def model_name(shared: bool, lam: float) -> str:
    """MTMDD-VM / MTMDD-VM* (multitask), MDD-VM / MDD-VM* at lambda = 1."""
    base = "MDD-VM" if lam == 1 else "MTMDD-VM"
    return base + ("*" if shared else "")


def validation_curve(history: pd.DataFrame, **labels) -> pd.DataFrame:
    """A joint fit's validation curve from its history (:func:`~.train.train_joint`): tidy ``epoch, metric,
    value`` (``val_acc_s``, ``val_acc_t``) plus ``labels`` columns; the evaluation at the end of training
    repeats the last epoch's and is dropped."""
    v = history[history["split"] == "val"].drop_duplicates(["epoch", "name"], keep="first")
    return v.rename(columns={"name": "metric"})[["epoch", "metric", "value"]].assign(**labels).reset_index(drop=True)


def curve_plateau(curves: pd.DataFrame, last: int = 3, maximize: bool = True, per_fit_end: bool = False) -> pd.DataFrame:
    """Per ``method`` and ``metric`` of tidy validation curves (:func:`validation_curve` with ``method`` and
    ``seed`` columns): ``seeds``, ``epochs``, the epoch with the best mean (``best_epoch``, ``best_mean``: the
    highest, or with ``maximize=False`` the lowest, e.g. a loss), the mean at the last epoch (``last_mean``),
    and ``change_last`` = the mean at the last epoch minus the mean ``last`` epochs earlier with
    ``change_last_sd`` its sd over seeds: a curve still rising at its end (change well above its sd) was
    stopped before its plateau.

    ``per_fit_end``: for fits that ran different lengths (a stop rule ends each on its own), the mean curve's
    late epochs would average only the fits still running; instead ``best_epoch`` / ``best_mean`` are those
    of the mean over the epochs every fit ran, and ``last_mean`` / ``change_last`` the mean over the fits of
    each fit's own last epoch and its change over its own last ``last`` epochs (``epochs``: the longest fit).
    With equal lengths the numbers are the same either way."""
    out = []
    for (m, met), g in curves.groupby(["method", "metric"], sort=False):
        per = g.pivot_table(index="epoch", columns="seed", values="value").sort_index()
        if per_fit_end:
            common = per.dropna()
            mean = (common if len(common) else per).mean(axis=1)
            ends = [per[c].dropna() for c in per.columns]
            last_mean = float(np.mean([e.iloc[-1] for e in ends]))
            ch = pd.Series([e.iloc[-1] - e.iloc[-1 - min(last, len(e) - 1)] if len(e) > 1 else np.nan for e in ends])
        else:
            mean = per.mean(axis=1)
            last_mean = float(mean.iloc[-1])
            k = min(last, len(per) - 1)
            ch = per.iloc[-1] - per.iloc[-1 - k] if k > 0 else per.iloc[-1] * np.nan
        best = mean.idxmax() if maximize else mean.idxmin()
        out.append({"method": m, "metric": met, "seeds": per.shape[1], "epochs": int(per.index.max()),
                    "best_epoch": int(best), "best_mean": float(mean[best]), "last_mean": last_mean,
                    f"change_last_{last}": float(ch.mean()),
                    f"change_last_{last}_sd": float(ch.std(ddof=1)) if per.shape[1] > 1 else float("nan")})
    return pd.DataFrame(out)


# what train_config's stop rule watches: classifiers' accuracy, VSE++'s retrieval R-sum, click predictors' loss;
# a history names its own (``attrs["monitor"]``), these are the fallback for one that does not
MONITORED = ("val_acc", "val_rsum", "val_loss")
MONITOR_LABELS = {"val_acc": ("validation accuracy (%)", 100.0), "val_rsum": ("validation R-sum (R@1, 5, 10 both ways)", 1.0),
                  "val_loss": ("validation loss", 1.0)}


def monitored(history: pd.DataFrame) -> str | None:
    """The validation score a fit's stop rule watched: its History's ``monitor`` attribute (:class:`~clickvision.train.loop.Trainer`),
    else the first of :data:`MONITORED` it has validation rows of; None when it was not scored on validation."""
    names = set(history.loc[history["split"] == "val", "name"]) if "split" in history else set()
    own = history.attrs.get("monitor")
    if own in names:
        return own
    return next((m for m in MONITORED if m in names), None)


def recorded_curves(records: list) -> pd.DataFrame:
    """The validation curves of the fits :func:`~.train.record_histories` collected, tidy: ``method, seed,
    family, fit`` (the fit's number among that method, seed and family's), ``epoch, metric, value`` (every
    validation score, e.g. a joint network's ``val_acc_s`` / ``val_acc_t`` beside its ``val_acc``) and
    ``monitor``, the score its stop rule watched (:func:`monitored`), ``domain`` (a recogniser's, from its
    :func:`~.train.history_labels`), ``setting`` (a sweep's, e.g. ``"B=0.01"`` from :func:`~.core.loss_sweep`)
    and ``features`` (a recogniser's input, e.g. ``"V+C"``, from :func:`~.core.predictor_rows`), None where not
    labelled, and ``restored``: a stop rule kept the fit's best epoch (else its last epoch is the one kept). Fits that
    were not evaluated (no stop rule, no curve asked for) have none. The evaluation at the end of training
    (the restored best epoch's) is dropped."""
    frames, count = [], {}
    for labels, family, history in records:
        key = (labels.get("method"), labels.get("seed"), family)
        count[key] = count.get(key, -1) + 1
        v = history[history["split"] == "val"] if "split" in history else history.iloc[:0]
        if v.empty:
            continue
        curve = validation_curve(history)
        frames.append(curve.assign(method=key[0], seed=key[1], family=family, fit=count[key],
                                   monitor=monitored(history), domain=labels.get("domain"),
                                   setting=labels.get("setting"), features=labels.get("features"),
                                   restored=bool(history.attrs.get("monitor"))))
    cols = ["method", "seed", "family", "fit", "epoch", "metric", "value", "monitor", "domain", "setting",
            "features", "restored"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def stop_summary(records: list) -> pd.DataFrame:
    """Per ``method`` and model ``family`` of the fits :func:`~.train.record_histories` collected: ``fits``,
    mean epochs run and their max, the mean epoch of the best validation score (the one kept), how many fits
    the stop rule ended before the cap (``stopped_early``) and how many ran to it (``hit_cap``: still
    improving within ``patience`` at the cap, so possibly before their plateau)."""
    rows = {}
    for labels, family, history in records:
        watched = monitored(history)
        if watched is None:
            continue
        v = history[(history["split"] == "val") & (history["name"] == watched)]
        v = v.drop_duplicates(["epoch", "name"], keep="first")
        best = history.attrs.get("best_step")
        best_epoch = (int(v.loc[v["step"] == best, "epoch"].iloc[0]) if best is not None and (v["step"] == best).any()
                      else int(v["epoch"].max()))
        r = rows.setdefault((labels.get("method"), family), {"fits": 0, "epochs": [], "best": [], "early": 0, "cap": 0})
        r["fits"] += 1
        r["epochs"].append(int(v["epoch"].max()))
        r["best"].append(best_epoch)
        early = bool(history.attrs.get("stopped_early"))  # patience ran out (possibly at the cap's epoch)
        r["early"] += early
        r["cap"] += bool(history.attrs.get("hit_cap")) and not early
    return pd.DataFrame([{"method": m, "family": f, "fits": r["fits"], "epochs_mean": float(np.mean(r["epochs"])),
                          "epochs_max": max(r["epochs"]), "best_epoch_mean": float(np.mean(r["best"])),
                          "stopped_early": r["early"], "hit_cap": r["cap"]} for (m, f), r in rows.items()])


def curve_label(curves: pd.DataFrame, domain: bool = True) -> pd.Series:
    """The name of each row's curve in :func:`recorded_curves`' frame: its method, then a recogniser's input
    ``features``, a sweep's ``setting`` and (``domain``) a recogniser's domain, comma-separated
    ("TDL, V+C, B=0.01, target"); "(unlabelled)" when none is known."""
    parts = [curves[c] for c in ("method", "features", "setting", *(("domain",) if domain else ())) if c in curves]
    label = pd.Series("", index=curves.index, dtype=object)
    for part in parts:
        has = part.notna()
        label[has] = label[has].where(label[has] == "", label[has] + ", ") + part[has].astype(str)
    return label.where(label != "", "(unlabelled)")


def curve_summary(records: list, last: int = 3) -> pd.DataFrame:
    """Per model ``family`` and ``method`` of the fits :func:`~.train.record_histories` collected (scored on
    validation each epoch: ``HeadConfig.curves`` or a stop rule), the monitored validation score's curve
    (:func:`monitored`) summarised by :func:`curve_plateau` over the ``fits`` (seeds, folds; the method
    carries a sweep's setting and a recogniser's domain, so each is a curve of its own): its ``epochs`` (the
    longest fit), the epoch of the best mean over the epochs every fit ran, the mean of each fit's own last
    epoch and of its change over its own last ``last`` epochs with that change's sd (``per_fit_end``);
    ``still_improving``: the change is in the score's good direction (up for an accuracy or R-sum, down for
    a loss) by more than its sd over the fits (by more than 0 for one fit), i.e. a fixed-epoch run that
    ended before its plateau, or a stopped one that ran into its cap while still improving (a fit the stop
    rule ended has not improved over its last ``patience`` epochs); ``past_best``: fixed-epoch fits (no stop
    rule restored their best epoch) whose last epoch, the one kept, is worse than the epoch of the best mean
    by more than the sd over the fits of
    that difference (by more than 0 for one fit), i.e. a run kept past its best (overfitted or unstable at
    its end). A stop rule's fits are never ``past_best``: they keep their own best epoch. Empty without curves."""
    cur = recorded_curves(records)
    cur = cur[cur["metric"] == cur["monitor"]]
    out = []
    for family, g in cur.groupby("family", sort=False):
        seeds = g["seed"].astype(str) + "/" + g["fit"].astype(str)  # a method's fits: its seeds (and repeats)
        loss = g["metric"].iloc[0] == "val_loss"
        p = curve_plateau(g.assign(seed=seeds, method=curve_label(g)), last=last, maximize=not loss, per_fit_end=True)
        p = p.rename(columns={"seeds": "fits"})
        sign = -1.0 if loss else 1.0
        change, sd = p[f"change_last_{last}"], p[f"change_last_{last}_sd"]
        p["still_improving"] = sign * change > sd.fillna(0.0)
        labels = curve_label(g)
        p["past_best"] = [_kept_past_best(g[labels == m], best, sign) for m, best in zip(p["method"], p["best_epoch"])]
        out.append(p.assign(family=family))
    cols = ["family", "method", "metric", "fits", "epochs", "best_epoch", "best_mean", "last_mean",
            f"change_last_{last}", f"change_last_{last}_sd", "still_improving", "past_best"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def convergence_note(summary: pd.DataFrame) -> str:
    """Two lines for a notebook from :func:`curve_summary`: the curves still improving at their last epoch and
    those kept past their best (fixed epochs), each ``family (method)``, or "none"."""
    def named(flag: str) -> str:
        rows = summary[summary[flag].astype(bool)] if flag in summary else summary.iloc[:0]
        return ", ".join(f"{r.family} ({r.method})" for r in rows.itertuples()) or "none"

    return (f"still improving at the last epoch: {named('still_improving')}\n"
            f"kept past their best (fixed epochs, the last epoch kept and worse than the best mean's by more than "
            f"its sd over the fits): {named('past_best')}")


def _kept_past_best(curve: pd.DataFrame, best_epoch: int, sign: float) -> bool:
    """Whether one method's fits (rows of :func:`recorded_curves`), trained for fixed epochs, are kept worse
    than at ``best_epoch`` (the best mean): per fit its last epoch's score minus its score at ``best_epoch``, in
    the score's good direction (``sign``), below minus its sd over the fits (below 0 for one fit)."""
    if curve["restored"].any():  # a stop rule restored each fit's own best epoch
        return False
    per = curve.pivot_table(index="epoch", columns=["seed", "fit"], values="value").sort_index()
    if best_epoch not in per.index or best_epoch == per.index.max():
        return False
    diff = sign * (per.iloc[-1] - per.loc[best_epoch])
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    return bool(diff.mean() < -(sd if np.isfinite(sd) else 0.0))


def stop_curves_figure(records: list, averaged_over: str, names: Mapping[str, str] | None = None):
    """One panel per model family of the fits :func:`~.train.record_histories` collected: the validation
    score each family's stop rule watches (:func:`monitored`: accuracy in %, VSE++'s R-sum, a click predictor's loss)
    per epoch, one line per method (and sweep setting, :func:`curve_label`), the mean over its fits (``averaged_over`` names them in
    the title, e.g. "seeds and targets"); ``names`` maps a method to its display name. ``None`` when no
    fit was scored on validation (no stop rule)."""
    import matplotlib.pyplot as plt

    fam = recorded_curves(records)
    fam = fam[fam["metric"] == fam["monitor"]]
    if fam.empty:
        return None
    names = names or {}
    families = list(dict.fromkeys(fam["family"]))
    fig, axes = plt.subplots(1, len(families), figsize=(3.3 * len(families), 3.2), squeeze=False)
    for ax, f in zip(axes[0], families):
        g = fam[fam["family"] == f]
        ylabel, scale = MONITOR_LABELS.get(g["metric"].iloc[0], (g["metric"].iloc[0], 1.0))
        for i, (m, gm) in enumerate(g.groupby(curve_label(g, domain=False), sort=False)):
            st = gm.groupby("epoch")["value"].mean()
            ax.plot(st.index, scale * st, marker="o", ms=2, color=f"C{i}", label=names.get(m, m))
        ax.set(title=f, xlabel="epoch", ylabel=ylabel)
        ax.legend(fontsize=6)
    ruled = any(h.attrs.get("monitor") for _, _, h in records)  # a stop rule watched it, or fixed epochs scored
    fig.suptitle(f"the monitored validation score per epoch (mean over {averaged_over}); "
                 + ("each fit stops on its own" if ruled else "fixed epochs, no stop rule"), fontsize=9)
    fig.tight_layout()
    return fig


def joint_run(data: PaperAData, cfg: HeadConfig, spec: JointSpec, seed: int, val_items: bool = False,
              curves: list | None = None) -> list[dict]:
    """Train one joint model; Acc-S, RMSE-S (source rows with a non-zero truth; ``rmse_s`` reading 1 and
    ``rmse_s_caffe`` reading 2, see :func:`~.train.click_metrics`) and Acc-T, val and test,
    and per test image ``correct_s`` / ``correct_t`` (with ``item``).

    MTTDL (``spec.two_domain=False``): Acc-T from a target recognizer (visual layer +
    classifier, trained on the target) on the frozen source-trained click predictor.

    ``val_items`` (opt-in): Acc-T's correctness per validation image too (``val_correct_t`` with ``item``),
    what :func:`clickvision.selection.select_robust` selects lambda and mu on. ``curves`` (opt-in): a list
    the fit's validation curve is appended to (:func:`validation_curve`, with a ``seed`` column).
    """
    fit = train_joint(data, cfg, spec, seed, curve=curves is not None)
    if curves is not None:
        curves.append(validation_curve(fit.history, seed=seed))
    net, s, t = fit.model, data.source, data.target
    out = []
    for split in ("test", "val"):
        p = "" if split == "test" else "val_"
        rows = s.rows(split)
        logits, v_hat = joint_outputs(net, s, rows, SOURCE)
        ok = s.valid[rows]
        vals = {p + "acc_s": accuracy_in(s.y[rows], logits, data.source_columns),
                p + "rmse_s": metrics.rmse_normalized(s.clicks[rows][ok], v_hat[ok]),
                p + "rmse_s_caffe": metrics.euclidean_loss_normalized(s.clicks[rows][ok], v_hat[ok])}
        if split == "test":
            out += item_rows(correct_in(s.y[rows], logits, data.source_columns), s, "s", seed=seed)
        if spec.two_domain:
            trow = t.rows(split)
            t_logits = joint_outputs(net, t, trow, TARGET)[0]
            vals[p + "acc_t"] = accuracy_in(t.y[trow], t_logits, data.target_columns)
            if split == "test" or val_items:
                out += item_rows(correct_in(t.y[trow], t_logits, data.target_columns), t, "t", split, seed=seed)
        out += [{"metric": k, "value": float(v), "seed": seed} for k, v in vals.items()]
    if not spec.two_domain:
        acc = recognition_accuracy(t, cfg, predict_clicks(net, t), True, seed, len(data.classes),
                                   data.target_columns)
        out += [{"metric": "acc_t", "value": acc["test"], "seed": seed},
                {"metric": "val_acc_t", "value": acc["val"], "seed": seed}]
        out += item_rows(acc["test_correct"], t, "t", seed=seed)
        if val_items:
            out += item_rows(acc["val_correct"], t, "t", "val", seed=seed)
    return out


def multitask_table(data: PaperAData, cfg: HeadConfig, lambdas: Sequence[float], seeds: Sequence[int],
                    mu: float = 1.0, click: ClickLossSpec | None = None, val_items: bool = False) -> pd.DataFrame:
    """Table VII: lambda sweep (and lambda = 1) for unshared and shared classifiers, mu fixed.

    Adds ``dacc_t`` = Acc-T minus the same seed's lambda = 1 Acc-T (the paper's dAcc-T). ``val_items``:
    per validation image Acc-T rows too (:func:`joint_run`; :func:`select_lambda` reads them).
    """
    click = click or ClickLossSpec(tau=0.1)
    grid = sorted({float(x) for x in lambdas} | {1.0}, reverse=True)
    rows = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="Table VII: seeds"):
            for shared in (False, True):
                for lam in grid:
                    spec = JointSpec(lam=lam, mu=mu, click=click, shared=shared)
                    with history_labels(method=f"{model_name(shared, lam)}, lambda={lam:g}", seed=seed):
                        fit = joint_run(data, cfg, spec, seed, val_items)
                    rows += [{**r, "shared": shared, "lam": lam, "model": model_name(shared, lam)} for r in fit]
    df = pd.DataFrame(rows)
    base = df[(df["lam"] == 1.0) & (df["metric"] == "acc_t")].set_index(["seed", "shared"])["value"]
    acc_t = df[df["metric"] == "acc_t"].copy()
    acc_t["value"] = acc_t["value"].to_numpy() - base.loc[list(zip(acc_t["seed"], acc_t["shared"]))].to_numpy()
    acc_t["metric"] = "dacc_t"
    return pd.concat([df, acc_t[acc_t["lam"] != 1.0]], ignore_index=True)


def table_vii(rows: pd.DataFrame) -> pd.DataFrame:
    """Table VII laid out as the paper (columns model x lambda), ours (mean, sd) beside the paper.

    RMSE-S under both readings (:func:`~.train.click_metrics`): reading 2 (Caffe's EuclideanLoss, the unit
    of the paper's printed values and of the claims) beside the paper's row, reading 1 below it."""
    summ = summarize(rows, ["model", "lam"])
    cols = list(PAPER_TABLE_VII.columns)
    out = {}
    for metric, label, paper_row in (("acc_s", "Acc-S (%)", "Acc-S (%)"),
                                     ("rmse_s_caffe", "RMSE-S reading 2 (1e-2)", "RMSE-S (1e-2)"),
                                     ("rmse_s", "RMSE-S reading 1 (1e-2)", None),
                                     ("acc_t", "Acc-T (%)", "Acc-T (%)"), ("dacc_t", "dAcc-T (%)", "dAcc-T (%)")):
        sub = summ[summ["metric"] == metric].set_index(["model", "lam"])
        out[f"{label} ours"] = [100 * sub["mean"].get(c, np.nan) for c in cols]
        out[f"{label} ours sd"] = [100 * sub["std"].get(c, np.nan) for c in cols]
        if paper_row is not None:
            out[f"{label} paper"] = list(PAPER_TABLE_VII.loc[paper_row])
    return pd.DataFrame(out, index=pd.MultiIndex.from_tuples(cols, names=["model", "lambda"])).T


def rmse_s_vs_floors(rows: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """Table VII's RMSE-S (source test images with a non-zero truth) beside the trivial predictors'.

    One row per (model, lambda) of ``rows`` (:func:`multitask_table`, in Table VII's column order): both
    readings, mean and the worst (largest) seed, and the paper's Table VII value (reading 2, x 1e-2 ->
    units); then the floors' selected grid points (:func:`~.floors.click_floors`: training mean, k-NN, ridge on the
    frozen pooled feature, chosen on validation) on the same test images. Lower is better."""
    from .floors import FLOORS, READINGS

    r2, r1 = "rmse_s_caffe", "rmse_s"
    sub = rows[rows["metric"].isin([r1, r2])]
    g = sub.groupby(["model", "lam", "metric"])["value"]
    mean, worst = g.mean().unstack("metric"), g.max().unstack("metric")
    table_order = {c: i for i, c in enumerate(PAPER_TABLE_VII.columns)}  # the paper's column order, then the rest
    body = []
    for model, lam in sorted(mean.index, key=lambda c: (table_order.get((c[0], float(c[1])), len(table_order)), c)):
        paper = PAPER_TABLE_VII.loc["RMSE-S (1e-2)"].get((model, float(lam)), np.nan) / 100
        body.append({"predictor": f"{model}, lambda={lam:g}", READINGS[r2]: mean.loc[(model, lam), r2],
                     f"{READINGS[r2]}, worst seed": worst.loc[(model, lam), r2], READINGS[r1]: mean.loc[(model, lam), r1],
                     "setting": "trained (eq. 15)", "paper (Table VII, reading 2)": paper})
    sel = floors[floors["selected"] & floors["metric"].isin([r1, r2])]
    for name in FLOORS:
        f = sel[sel["predictor"] == name]
        if len(f):
            v = f.set_index("metric")["value"]
            body.append({"predictor": f"floor: {name}", READINGS[r2]: v.get(r2, np.nan),
                         f"{READINGS[r2]}, worst seed": v.get(r2, np.nan), READINGS[r1]: v.get(r1, np.nan),
                         "setting": f"{f['setting'].iloc[0]} (validation)", "paper (Table VII, reading 2)": np.nan})
    return pd.DataFrame(body).set_index("predictor")


def multidomain_sweep(data: PaperAData, cfg: HeadConfig, mus: Sequence[float], seeds: Sequence[int],
                      lam: float = 0.4, click: ClickLossSpec | None = None,
                      mttdl_tau: float = 0.0, val_items: bool = False) -> pd.DataFrame:
    """Fig. 12: MTTDL vs MTMDD-VM vs MTMDD-VM* as the target softmax weight mu varies.

    MTTDL is trained once per seed (eq. 14 with ``mttdl_tau``; mu does not enter it). ``val_items``: per
    validation image Acc-T rows too (:func:`joint_run`; :func:`select_mu` reads them).
    """
    click = click or ClickLossSpec(tau=0.1)
    rows = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="Fig. 12: seeds"):
            spec = JointSpec(lam=lam, mu=1.0, click=ClickLossSpec(tau=mttdl_tau, bandwidth=click.bandwidth,
                                                                  threshold=click.threshold, variant=click.variant),
                             shared=True, two_domain=False)
            with history_labels(method="MTTDL", seed=seed):
                mttdl = joint_run(data, cfg, spec, seed, val_items)
            for mu in mus:
                rows += [{**r, "model": "MTTDL", "mu": float(mu)} for r in mttdl]
                for shared in (False, True):
                    spec = JointSpec(lam=lam, mu=float(mu), click=click, shared=shared)
                    with history_labels(method=f"{model_name(shared, lam)}, mu={mu:g}", seed=seed):
                        fit = joint_run(data, cfg, spec, seed, val_items)
                    rows += [{**r, "model": model_name(shared, lam), "mu": float(mu)} for r in fit]
    return pd.DataFrame(rows)


# --- claims ----------------------------------------------------------------------------------

def _dacc_items(rows: pd.DataFrame, shared: bool, lams: Sequence[float]) -> pd.DataFrame:
    """Per (seed, test image): Acc-T correctness averaged over ``lams`` minus that at lambda = 1 (dAcc-T)."""
    from .claims import scores

    d = scores(rows, "correct_t", {"mt": {"shared": shared, "lam": list(lams)}, "one": {"shared": shared, "lam": 1.0}})
    w = d.pivot_table(index=["seed", "item"], columns="method", values="value")
    return (w["mt"] - w["one"]).rename("value").reset_index().assign(method=model_name(shared, 0.4))


def paper_vii(row: str, shared: bool, lams: Sequence[float], scale: float = 100.0) -> float:
    """Table VII's ``row`` for the multitask model (``shared``) averaged over the paper's columns among ``lams``
    (lambda = 1: the MDD-VM column), over ``scale`` (percent / 1e-2 to the estimates' unit); NaN if none printed."""
    cols = [(model_name(shared, float(x)), float(x)) for x in lams]
    cols = [c for c in cols if c in PAPER_TABLE_VII.columns]
    return float(PAPER_TABLE_VII.loc[row, cols].mean()) / scale if cols else float("nan")


def select_lambda(rows: pd.DataFrame, reference: float = 0.4, metric: str = "val_correct_t",
                  z: float = 1.0) -> dict[bool, Selection]:
    """The multitask weight of MTMDD-VM (``False``) and MTMDD-VM* (``True``) chosen on validation, among
    0 < lambda < 1 only, by :func:`clickvision.selection.select_robust`: the paper's lambda (``reference``,
    or the grid value nearest it) is kept unless another beats it on per-image validation Acc-T
    (``val_correct_t`` rows, :func:`multitask_table` with ``val_items``) by more than ``z`` standard errors.
    lambda = 1 is MDD-VM (no softmax) and lambda = 0 switches the click loss off (a recognition-only
    network), so neither is a setting of the multitask method; selecting 0 would turn every later "click
    loss helps" comparison into one with no contrast (it did on another CPU, where A.07's validation means
    at lambda 0 and 0.8 swapped under the plain best-mean rule)."""
    out = {}
    for shared in (False, True):
        sub = rows[(rows["metric"] == metric) & (rows["shared"] == shared) & (rows["lam"] > 0) & (rows["lam"] < 1)]
        if sub.empty:
            raise ValueError(f"select_lambda: no {metric!r} rows with 0 < lambda < 1 for shared={shared}; the grid "
                             f"needs at least one multitask lambda (lambdas in the run: {sorted(rows['lam'].unique())}); "
                             "per-image validation rows come from multitask_table(..., val_items=True)")
        out[shared] = select_near(sub, "lam", reference, metric, z=z)
    return out


def select_mu(rows: pd.DataFrame, references: Mapping[str, float], metric: str = "val_correct_t",
              z: float = 1.0) -> dict[str, Selection]:
    """The target softmax weight mu per two-domain model (``model`` column: MTMDD-VM, MTMDD-VM*) chosen on
    validation by :func:`clickvision.selection.select_robust`: the paper's mu for that model
    (``references``, or the grid value nearest it) is kept unless another beats it on per-image validation
    Acc-T (``val_correct_t``, :func:`multidomain_sweep` with ``val_items``) by more than ``z`` SE."""
    out = {}
    for model, ref in references.items():
        sub = rows[(rows["metric"] == metric) & (rows["model"] == model)]
        if sub.empty:
            raise ValueError(f"select_mu: no {metric!r} rows for model {model!r} (models: "
                             f"{sorted(rows['model'].unique())}); run multidomain_sweep(..., val_items=True)")
        out[model] = select_near(sub, "mu", ref, metric, z=z)
    return out


def claims_table_vii(rows: pd.DataFrame, chance: float, margin: float = 0.02) -> list:
    """Table VII's claims as ``(Claim, data)`` pairs: per test image over the seeds (RMSE-S per seed, reading 2:
    ``rmse_s_caffe``, the reading the paper's values are in, :func:`~.train.click_metrics`).

    ``paper_effect``: the same contrast on Table VII's printed values (:data:`PAPER_TABLE_VII`) at the
    lambdas this run has. Rows of several targets (:func:`~.core.over_targets`) are pooled: each target's
    test images as distinct items, a source image averaged over the targets' runs, RMSE-S the per-seed mean."""
    from .claims import A, DOMAIN, ranked, scores

    lams = sorted(float(x) for x in rows["lam"].unique() if 0 < x < 1)
    out = []
    for shared in (False, True):
        name = model_name(shared, 0.4)
        for dom, label in DOMAIN.items():
            arms = {f"{name} (lambda < 1)": {"shared": shared, "lam": lams},
                    f"{model_name(shared, 1.0)} (lambda = 1)": {"shared": shared, "lam": 1.0}}
            out.append((A(f"VII-multitask-beats-lambda1-{name}-{label}",
                          f"Multitask training (0 < lambda < 1, averaged over lambda {lams}) gives a higher {label} "
                          f"than the prediction loss alone (lambda = 1), {name}", "direction", arms=tuple(arms),
                          paper_effect=paper_vii(f"{label} (%)", shared, lams) - paper_vii(f"{label} (%)", shared, [1.0])),
                        scores(rows, f"correct_{dom}", arms)))
    for shared in (False, True):  # RMSE-S reading 2 (Caffe's EuclideanLoss), the unit of the paper's printed values
        best_lam = ranked(rows, "lam", lams, "rmse_s_caffe", shared=shared)[-1]  # lowest mean RMSE among lambda < 1
        arms = {f"{model_name(shared, 1.0)}": {"shared": shared, "lam": 1.0},
                f"{model_name(shared, 0.4)} lambda={best_lam:g}": {"shared": shared, "lam": best_lam}}
        paper = (paper_vii("RMSE-S (1e-2)", shared, [1.0]), paper_vii("RMSE-S (1e-2)", shared, [best_lam]))
        out.append((A(f"VII-lambda1-lowest-rmse-{model_name(shared, 0.4)}",
                      f"lambda = 1 (prediction loss only) predicts clicks best: lower RMSE-S (reading 2, Caffe's "
                      f"EuclideanLoss) than the best multitask lambda by mean (here {best_lam:g}), "
                      f"{model_name(shared, 0.4)} (per seed; paper {paper[0]:.3f} vs {paper[1]:.3f})", "direction",
                      arms=tuple(arms), alternative="less", paper_effect=paper[1] - paper[0], comparisons=len(lams)),
                    scores(rows, "rmse_s_caffe", arms)))
    low = lams + [0.0] if 0.0 in set(rows["lam"]) else lams
    d = pd.concat([_dacc_items(rows, True, low), _dacc_items(rows, False, low)], ignore_index=True)
    out.append((A("VII-shared-gains-more", "The multitask gain over lambda = 1 (dAcc-T, mean over lambda < 1) is "
                  "larger with the shared classifier (MTMDD-VM*) than with the unshared one (MTMDD-VM) (paper about "
                  "11.7 vs 1.2 points)", "direction", arms=("MTMDD-VM*", "MTMDD-VM"),
                  paper_effect=paper_vii("dAcc-T (%)", True, low) - paper_vii("dAcc-T (%)", False, low)), d))
    out.append((A("VII-mddvm-source-chance", "MDD-VM (unshared, lambda = 1) has near-chance Acc-S: its source "
                  "classifier gets no gradient (paper 0.1 %)", "structural",
                  reason=f"at lambda = 1 the source softmax has weight 1 - lambda = 0 in eq. (15) and the unshared "
                         f"source classifier is used by no other term, so it keeps its random initial weights and its "
                         f"Acc-S is chance ({100 * chance:.1f} %) by construction (Table VII prints ours)"), None))
    if len(lams) < 2:  # one lambda in (0, 1): nothing to compare (the smoke profile)
        return note_pooled(out, rows)
    hi, lo = (lambda o: (o[0], o[-1]))(ranked(rows, "lam", lams, "correct_t", shared=False))
    arms = {f"lambda={hi:g}": {"shared": False, "lam": hi}, f"lambda={lo:g}": {"shared": False, "lam": lo}}
    out.append((A("VII-lambda-little-impact", f"lambda in (0, 1) has little impact on MTMDD-VM's Acc-T: the best and "
                  f"worst lambda by mean (here {hi:g}, {lo:g}) differ by less than {100 * margin:g} points",
                  "equivalence", arms=tuple(arms), margin=margin, comparisons=len(lams) * (len(lams) - 1) // 2,
                  paper_effect=paper_vii("Acc-T (%)", False, [hi]) - paper_vii("Acc-T (%)", False, [lo])),
                scores(rows, "correct_t", arms)))
    return note_pooled(out, rows)


def claims_fig12(rows: pd.DataFrame) -> list:
    """Fig. 12's claims as ``(Claim, data)`` pairs, per target test image over the seeds; rows of several
    targets (:func:`~.core.over_targets`) pooled, each target's test images as distinct items."""
    from .claims import A, ranked, scores

    mus = sorted(float(x) for x in rows["mu"].unique())
    names = [n for n in rows["model"].unique() if n != "MTTDL"]
    out = []
    for n in names:
        worst = ranked(rows, "mu", mus, "correct_t", model=n)[-1]
        arms = {f"{n} mu={worst:g}": {"model": n, "mu": worst}, "MTTDL": {"model": "MTTDL", "mu": mus[0]}}
        out.append((A(f"Fig12-two-domain-beats-mttdl-{n}", f"Training one network on both domains ({n}) beats MTTDL in "
                      f"Acc-T at every mu: judged at its worst mu by mean, here {worst:g}", "direction",
                      arms=tuple(arms), comparisons=len(mus)), scores(rows, "correct_t", arms)))
    if len(mus) > 1:
        for n in names:
            arms = {f"{n} mu={m:g}": {"model": n, "mu": m} for m in mus}
            out.append((A(f"Fig12-smaller-mu-better-{n}", f"A smaller target weight mu gives a higher Acc-T ({n}; "
                          f"fitted change from mu = {mus[0]:g} to {mus[-1]:g} negative)", "trend", arms=tuple(arms),
                          settings=tuple(mus), alternative="less"), scores(rows, "correct_t", arms)))
    if {"MTMDD-VM", "MTMDD-VM*"} <= set(names):
        arms = {"MTMDD-VM*": {"model": "MTMDD-VM*", "mu": mus}, "MTMDD-VM": {"model": "MTMDD-VM", "mu": mus}}
        out.append((A("Fig12-shared-slightly-better", "MTMDD-VM* (shared classifier) is better than MTMDD-VM in Acc-T "
                      "(averaged over mu)", "direction", arms=tuple(arms)), scores(rows, "correct_t", arms)))
    return note_pooled(out, rows)
