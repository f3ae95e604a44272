"""Paper A IV-D1 unseen categories: out-of-class (Fig. 13) and cross-object (Table IX, Fig. 15), on tiny data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickvision.experiments.paper_a import unseen as U
from clickvision.experiments.paper_a.methods import run_methods
from clickvision.experiments.paper_a.train import HeadConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = HeadConfig(embedding="bifc", hidden=8, visual_hidden=4, epochs=1, recognizer_epochs=1, batch_size=16)
CLASSES = [f"c{i:02d}" for i in range(40)]


def test_design_keeps_a_target_draw_and_nested_source_subsets_of_it():
    target, draws = U.out_of_class_design(CLASSES, 30, n_draws=3, seed=0)
    assert len(target) == 30 and set(target) <= set(CLASSES) and target == sorted(target)
    assert len(draws) == 3
    for d in draws:
        assert sorted(d) == [7, 14, 21, 28, 30]  # the paper's 30/60/90/120/129 of 129, times 30
        assert d[30] == target
        sizes = sorted(d)
        for a, b in zip(sizes, sizes[1:]):
            assert set(d[a]) < set(d[b]) and len(d[a]) == a
    assert draws[0][7] != draws[1][7]  # independent draws
    assert U.out_of_class_design(CLASSES, 30, n_draws=3, seed=0) == (target, draws)  # seeded
    assert U.out_of_class_design(CLASSES, 30, n_draws=5, seed=0)[1][:3] == draws  # more draws append
    with pytest.raises(ValueError, match="n_target"):
        U.out_of_class_design(CLASSES, 41)


def test_out_of_class_runs_every_point_and_leaves_the_shared_fc_out_of_the_all_point(paper_a_synth):
    data = paper_a_synth(4, 20)
    target, draws = U.out_of_class_design(data.classes, 3, n_draws=2, seed=0)
    assert sorted(draws[0]) == [1, 2, 3]
    rows = U.out_of_class(data, CFG, target, draws, seed=5, full=data.word_clicks)
    assert set(rows["point"]) == {"shared", "all"}
    assert sorted(rows.loc[rows["point"] == "shared", "n_source"].unique()) == [1, 2, 3]
    assert set(rows.loc[rows["point"] == "all", "n_source"]) == {4}
    assert "MTMDD-VM*" not in set(rows.loc[rows["point"] == "all", "method"])
    assert set(rows.loc[rows["point"] == "shared", "method"]) == set(U.FIG13_METHODS)
    assert rows.groupby("draw")["seed"].unique().map(list).to_dict() == {0: [5], 1: [6]}  # draw d: seed + d
    acc = rows[rows["metric"].str.startswith("acc_")]["value"]
    assert acc.between(0, 1).all()
    table = U.fig13_table(rows)
    assert list(table.columns) == ["1", "2", "3", "4 (all)"] and list(table.index) == list(U.FIG13_METHODS)
    assert table.loc["MTMDD-VM*", "4 (all)"] == ""
    s = U.fig13_summary(rows)
    one = rows[(rows["method"] == "TDL") & (rows["n_source"] == 2) & (rows["metric"] == "acc_t")]["value"]
    got = s[(s["method"] == "TDL") & (s["n_source"] == 2)]
    assert got["mean"].iloc[0] == pytest.approx(100 * one.mean())
    assert got["std"].iloc[0] == pytest.approx(100 * one.std())


def _fig13_rows(acc: dict) -> pd.DataFrame:
    """acc[(method, point, n)] = per-draw Acc-T list (draw d = seed d)."""
    rows = []
    for (method, point, n), values in acc.items():
        for d, v in enumerate(values):
            rows.append({"method": method, "seed": d, "metric": "acc_t", "value": v, "draw": d, "n_source": n,
                         "point": point})
    return pd.DataFrame(rows)


def _judged(pairs) -> dict:
    from clickvision.claims import judge

    return {c.claim_id: judge(c, d, n_resamples=400) for c, d in pairs}


def test_fig13_claims_against_hand_computed_gaps():
    base = {"VGGimg": 0.50, "VGGsrc": 0.55, "TDL": 0.56, "MTMDD-VM": 0.60, "MTMDD-VM*": 0.62}
    jitter = np.array([0.0, 0.01, -0.01])
    acc = {}
    for m, b in base.items():
        for n, cut in ((2, 0.10), (4, 0.05), (5, 0.0)):
            # MTMDD-VM* falls twice as fast; VGGimg is flat (never sees the source)
            drop = 0.0 if m == "VGGimg" else (2 * cut if m == "MTMDD-VM*" else cut)
            acc[(m, "shared", n)] = list(b - drop + jitter)
        if m != "MTMDD-VM*":
            acc[(m, "all", 8)] = list(b - 0.05 + jitter)
    claims = _judged(U.claims_fig13(_fig13_rows(acc)))
    assert "Fig13-fewer-source-classes-lower-VGGimg" not in claims  # its target recogniser never sees the source
    assert claims["Fig13-fewer-source-classes-lower-MTMDD-VM"].verdict == "supported"
    assert claims["Fig13-fewer-source-classes-lower-MTMDD-VM"].estimate == pytest.approx(0.10)
    # at 2 source classes MTMDD-VM (0.50) ties VGGimg (0.50): the gap is exactly 0, not supported
    assert claims["Fig13-ours-leads-every-size-2"].verdict != "supported"
    assert claims["Fig13-ours-leads-every-size-5"].verdict == "supported"
    assert claims["Fig13-shared-FC-degrades-faster"].verdict == "supported"
    assert claims["Fig13-shared-FC-degrades-faster"].estimate == pytest.approx(0.10)
    assert claims["Fig13-all-classes-slightly-worse-TDL"].verdict == "supported"
    assert claims["Fig13-all-classes-slightly-worse-TDL"].estimate == pytest.approx(0.05)


def _with_groups(data):
    group = {"0": "animals", "1": "animals", "2": "food", "3": "food"}
    for d in (data.source, data.target):
        d.items["group"] = d.items["label"].map(group)
        d.items["path"] = [f"/nonexistent/{k}.png" for k in d.items["key"]]
    return data


def test_object_families_and_disjoint_label_sets(paper_a_synth):
    data = _with_groups(paper_a_synth(4, 20, noise_every=0))
    assert U.family_classes(data, "food") == ["2", "3"]
    with pytest.raises(ValueError, match="plants"):
        U.family_classes(data, "plants")
    cross = U.object_data(data, "food", "animals", full=data.word_clicks)
    assert cross.classes == ["0", "1", "2", "3"]  # target family first, then the source's
    assert cross.target_columns.tolist() == [0, 1] and cross.source_columns.tolist() == [2, 3]
    assert set(cross.source.items["group"]) == {"food"} and set(cross.target.items["group"]) == {"animals"}
    # the vocabulary is re-ranked on the food images: their words (classes 2, 3 click w6-w11) come first
    assert set(cross.vocabulary[:6]) == {f"w{j}" for j in range(6, 12)}
    assert U.scenarios(["a", "b"]) == [("a", "a", "Single"), ("a", "b", "Cross"), ("b", "b", "Single"),
                                       ("b", "a", "Cross")]
    with pytest.raises(ValueError, match="two different"):
        U.scenarios(["a", "a"])


def test_cross_object_rows_table_and_predictions_agree(paper_a_synth):
    data = _with_groups(paper_a_synth(4, 20))
    rows = U.cross_object(data, CFG, ["animals", "food"], seeds=[0, 1], full=data.word_clicks)
    assert set(zip(rows["target"], rows["source"], rows["scenario"])) == set(U.scenarios(["animals", "food"]))
    assert set(rows["method"]) == set(U.TABLE_IX_METHODS)
    t = U.table_ix(rows)
    assert list(t.index) == ["animals", "food"] and t.shape[1] == 12
    one = rows[(rows["target"] == "food") & (rows["scenario"] == "Cross") & (rows["method"] == "TDL")
               & (rows["metric"] == "acc_t")]["value"]
    assert t.loc["food", ("TDL", "Cross", "mean")] == pytest.approx(100 * one.mean())
    pred = U.cross_object_predictions(data, CFG, ["animals", "food"], seed=0, full=data.word_clicks)
    assert len(pred) == sum((d.items["split"] == "test").sum() for d in [data.target])
    for target, g in pred.groupby("target"):
        fam = U.family_classes(data, target)
        assert set(g["Single"]) | set(g["Cross"]) <= set(fam) and set(g["label"]) <= set(fam)
        for scenario in ("Single", "Cross"):  # the predictions are the run's: same accuracy as run_methods
            acc = rows[(rows["target"] == target) & (rows["scenario"] == scenario) & (rows["method"] == "MTMDD-VM")
                       & (rows["metric"] == "acc_t") & (rows["seed"] == 0)]["value"].iloc[0]
            assert (g[scenario] == g["label"]).mean() == pytest.approx(acc)


def _ix_rows(acc: dict) -> pd.DataFrame:
    rows = []
    for (target, method, scenario), values in acc.items():
        for seed, v in enumerate(values):
            rows.append({"method": method, "seed": seed, "metric": "acc_t", "value": v, "target": target,
                         "scenario": scenario})
    return pd.DataFrame(rows)


def test_table_ix_claims_against_hand_computed_gaps():
    acc = {}
    for target in ("A", "B"):
        for m, b in (("VGGsrc", 0.60), ("TDL", 0.58), ("MTMDD-VM", 0.66)):
            acc[(target, m, "Single")] = [b, b + 0.01, b - 0.01]
            acc[(target, m, "Cross")] = [b - 0.01, b, b - 0.02]  # 1 point lower on every seed
    claims = _judged(U.claims_table_ix(_ix_rows(acc)))
    close = claims["TableIX-cross-close-to-single"]
    assert close.verdict == "supported" and close.claim.kind == "equivalence" and close.claim.margin == pytest.approx(0.031)
    assert close.estimate == pytest.approx(-0.01)
    beats = claims["TableIX-ours-beats-baselines"]
    assert beats.verdict == "supported" and beats.claim.arms[1].startswith("VGGsrc")
    tagged = U.claims_table_ix(_ix_rows(acc), tag="extension")
    assert [c.claim_id for c, _ in tagged] == ["TableIX-cross-close-to-single-extension",
                                                "TableIX-ours-beats-baselines-extension"]
    assert tagged[0][0].claim.endswith("(extension: A vs B)")
    acc[("B", "TDL", "Cross")] = [0.50, 0.50, 0.50]  # 8 points below single: not close
    assert _judged(U.claims_table_ix(_ix_rows(acc)))["TableIX-cross-close-to-single"].verdict == "contradicted"
    acc[("A", "VGGsrc", "Single")] = [0.70, 0.60, 0.65]  # ours - VGGsrc = -4, +6, +1: not resolved
    assert _judged(U.claims_table_ix(_ix_rows(acc)))["TableIX-ours-beats-baselines"].verdict == "inconclusive"


def test_fig15_picks_cross_wrong_single_right(tmp_path):
    from PIL import Image

    paths = []
    for i in range(4):
        p = tmp_path / f"{i}.png"
        Image.new("RGBA", (8, 8), (i * 60, 0, 0, 255)).save(p)
        paths.append(str(p))
    pred = pd.DataFrame({"target": ["A", "A", "B", "B"], "key": list("wxyz"), "path": paths,
                         "label": ["a", "a", "b", "c"], "Single": ["a", "b", "b", "c"], "Cross": ["b", "b", "c", "c"]})
    assert U.fig15_cases(pred)["key"].tolist() == ["w", "y"]
    fig = U.plot_fig15(pred, per_target=3)
    assert fig is not None and len(fig.axes) == 6
    assert U.plot_fig15(pred.assign(Cross=pred["label"])) is None


def test_run_methods_labels_pass_through(paper_a_synth):
    # the registry call the notebooks rely on: labels become columns
    rows = run_methods(["VGGsrc"], paper_a_synth(3, 20), CFG, [0], target="t", scenario="Single")
    assert set(rows["target"]) == {"t"} and set(rows["scenario"]) == {"Single"}


# --- several target domains (issue #18 item 2): per-target tables, pooled claims --------------------

def _fig13_item_rows(acc: dict, n_items: int = 4) -> pd.DataFrame:
    """acc[(method, point, n)] = per-draw Acc-T; per-image rows (the first round(acc * n_items) right) too."""
    rows = _fig13_rows(acc).to_dict("records")
    for (method, point, n), values in acc.items():
        for d, v in enumerate(values):
            right = round(v * n_items)
            rows += [{"method": method, "seed": d, "metric": "correct_t", "value": float(i < right), "item": f"k{i}",
                      "draw": d, "n_source": n, "point": point} for i in range(n_items)]
    return pd.DataFrame(rows)


def test_fig13_tables_keep_targets_apart_and_claims_pool_them():
    from clickvision.experiments.paper_a.core import over_targets

    def acc(level):
        out = {}
        for m, b in {"VGGimg": 0.5, "VGGsrc": 0.5, "TDL": 0.5, "MTMDD-VM": 0.75, "MTMDD-VM*": 0.75}.items():
            for n in (2, 5):
                out[(m, "shared", n)] = [level * b] * 2
            if m != "MTMDD-VM*":
                out[(m, "all", 8)] = [level * b] * 2
        return out

    parts = {"x": _fig13_item_rows(acc(1.0)), "y": _fig13_item_rows(acc(0.0))}
    rows = over_targets(parts, lambda r: r)
    s = U.fig13_summary(rows)
    assert set(s["target"]) == {"x", "y"} and (s["draws"] == 2).all()  # never averaged over the targets
    got = s.set_index(["target", "method", "point", "n_source"])["mean"]
    assert got[("x", "MTMDD-VM", "shared", 5)] == pytest.approx(75.0) and got[("y", "MTMDD-VM", "shared", 5)] == 0
    t = U.fig13_table(rows)
    assert t.index.names == ["target", "method"] and t.loc[("x", "MTMDD-VM"), "5"] == "75.0 +- 0.0"
    assert t.loc[("y", "MTMDD-VM*"), "8 (all)"] == ""
    with pytest.raises(ValueError, match="one target"):
        U.plot_fig13(rows, None)
    pairs = {c.claim_id: (c, d) for c, d in U.claims_fig13(rows)}
    c, d = pairs["Fig13-ours-leads-every-size-5"]
    assert c.claim.endswith("; pooled over the targets x, y")
    ours = d[d["method"] == "MTMDD-VM"]
    assert set(ours["item"]) == {f"{v}/k{i}" for v in "xy" for i in range(4)}  # the targets' images, distinct
    assert ours["value"].mean() == pytest.approx(0.375)  # x: 3 of 4 right, y: none
    single = {c.claim_id: c.claim for c, _ in U.claims_fig13(parts["x"])}  # one target: the text as before
    assert not any("pooled" in text for text in single.values())


def test_table_ix_keeps_targets_apart_and_claims_pool_them():
    acc = {}
    for target in ("A", "B"):
        for m, b in (("VGGsrc", 0.60), ("TDL", 0.58), ("MTMDD-VM", 0.66)):
            acc[(target, m, "Single")] = [b, b + 0.01, b - 0.01]
            acc[(target, m, "Cross")] = [b - 0.01, b, b - 0.02]
    one = _ix_rows(acc)
    two = dict(acc)
    two[("A", "VGGsrc", "Cross")] = [0.40, 0.40, 0.40]  # on vendor w only: 20 points below single
    rows = U.families_over_targets({"v": one, "w": _ix_rows(two)}, lambda r: r)
    assert {"family", "target"} <= set(rows.columns) and set(rows["target"]) == {"v", "w"}
    t = U.table_ix(rows)
    assert t.index.names == ["target", "family"]
    assert t.loc[("v", "A"), ("VGGsrc", "Cross", "mean")] == pytest.approx(59.0)
    assert t.loc[("w", "A"), ("VGGsrc", "Cross", "mean")] == pytest.approx(40.0)
    assert list(U.table_ix_with_paper(rows).index[-2:]) == [("paper", "Dog"), ("paper", "Bird")]
    gaps = U.cross_single_gaps(rows).set_index(["target", "family", "method"])
    assert gaps.loc[("w", "A", "VGGsrc"), "Cross - Single"] == pytest.approx(-20.0)
    assert gaps.loc[("v", "A", "VGGsrc"), "Cross - Single"] == pytest.approx(-1.0)
    claims = {c.claim_id: (c, d) for c, d in U.claims_table_ix(rows)}
    c, d = claims["TableIX-cross-close-to-single"]
    assert "VGGsrc on A" in c.claim and c.claim.endswith("(pooled over the targets v, w)")
    assert c.comparisons == 6  # 2 families x 3 methods, not x 2 targets
    pooled = d.groupby("method")["value"].mean()  # per-seed rows: the mean over the targets
    assert pooled["A VGGsrc Cross"] == pytest.approx((0.59 + 0.40) / 2)
    assert not any("pooled" in c.claim for c, _ in U.claims_table_ix(one))  # one target: the texts as before
    tagged = U.claims_table_ix(rows, tag="extension")[0][0].claim
    assert tagged.endswith("(extension: A vs B; pooled over the targets v, w)")


def test_families_need_both_domains_and_fig13_draws_from_classes_every_target_has(paper_a_synth):
    data = _with_groups(paper_a_synth(4, 20, noise_every=0))
    assert U.common_target_classes([data]) == data.classes  # every class: the single-target draw unchanged
    lacking = _with_groups(paper_a_synth(4, 20, noise_every=0))
    keep = np.flatnonzero(lacking.target.y != 3)  # this target has no images of class "3"
    lacking = type(lacking)(lacking.source, lacking.target.subset(keep), lacking.classes, lacking.vocabulary,
                            lacking.word_clicks, lacking.tfidf, lacking.meta)
    assert U.common_target_classes([data, lacking]) == ["0", "1", "2"]
    assert U.family_classes(lacking, "food") == ["2"]  # the subgroup only the source has is left out
    assert U.family_classes(data, "food") == ["2", "3"]
    with pytest.raises(ValueError, match="already"):
        U.families_over_targets({"v": pd.DataFrame({"family": ["a"], "target": ["b"]})}, lambda r: r)


# --- one stop rule (issue #18: A.11 and A.12 train every model to convergence on validation) ----------

def _monitored_checks(fits, cap: int) -> None:
    """Every recorded fit was scored on its monitored validation score, stayed within ``cap`` epochs, and kept
    its best epoch (the loss's minimum for a click predictor, the accuracy's maximum otherwise)."""
    from clickvision.experiments.paper_a import joint as J

    assert fits
    for labels, family, history in fits:
        v = history[(history["split"] == "val") & history["name"].isin(J.MONITORED)]
        assert len(v), (labels, family)
        assert v["epoch"].max() <= cap
        best = v["value"].min() if family == "click predictor" else v["value"].max()
        assert history.attrs["best_value"] == pytest.approx(best)


@pytest.mark.filterwarnings("ignore:validation val_.* never got better:RuntimeWarning")  # tiny heads, tiny data
def test_unseen_runs_honour_the_stop_rule_and_fig15_repeats_the_table_fit(paper_a_synth):
    from clickvision.experiments.paper_a import joint as J
    from clickvision.experiments.paper_a import train as TR

    data = _with_groups(paper_a_synth(4, 20))
    cfg = CFG.scaled(epochs=8, recognizer_epochs=8, patience=1)
    target, draws = U.out_of_class_design(data.classes, 3, n_draws=1, seed=0)
    with TR.record_histories() as fits, TR.reuse_identical_fits():  # A.11's cell: every family, every point
        U.out_of_class(data, cfg, target, draws, seed=0, full=data.word_clicks)
    _monitored_checks(fits, 8)
    summary = J.stop_summary(fits)
    assert set(summary["family"]) == {"click predictor", "recognizer", "joint"}
    assert set(summary["method"]) == {"VGGimg / VGGsrc (source)", "VGGimg", "VGGsrc", "TDL", "MTMDD-VM", "MTMDD-VM*"}
    assert summary["fits"].sum() == len(fits)
    assert (summary["stopped_early"] + summary["hit_cap"] == summary["fits"]).all()

    pair = ["animals", "food"]
    with TR.record_histories() as fits:  # A.12's cell
        rows = U.cross_object(data, cfg, pair, seeds=[0], full=data.word_clicks)
    _monitored_checks(fits, 8)
    assert {"VGGsrc", "TDL", "MTMDD-VM"} <= set(J.stop_summary(fits)["method"])
    # Fig. 15 trains MTMDD-VM again at the first seed: under the stop rule it is still the table's fit
    pred = U.cross_object_predictions(data, cfg, pair, seed=0, full=data.word_clicks)
    for target, g in pred.groupby("target"):
        for scenario in ("Single", "Cross"):
            acc = rows[(rows["target"] == target) & (rows["scenario"] == scenario) & (rows["method"] == "MTMDD-VM")
                       & (rows["metric"] == "acc_t")]["value"].iloc[0]
            assert (g[scenario] == g["label"]).mean() == pytest.approx(acc)

    with TR.record_histories() as fits:  # patience 0: the fixed epochs, nothing scored on validation
        U.cross_object(data, CFG, pair, seeds=[0], full=data.word_clicks)
    assert fits and J.stop_summary(fits).empty
