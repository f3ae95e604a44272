"""Paper A Fig. 14 (reduced training data) and the k-shot extension, on tiny data (notebook A.13)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clickvision.experiments.paper_a import reduced as R
from clickvision.experiments.paper_a.data import rebuild_source_vocabulary, with_label_sets
from clickvision.experiments.paper_a.train import HeadConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = HeadConfig(embedding="bifc", hidden=8, visual_hidden=4, epochs=1, recognizer_epochs=1, batch_size=16)


def _train_counts(d) -> pd.Series:
    tr = d.split == "train"
    return pd.Series(d.y[tr]).value_counts().sort_index()


@pytest.mark.parametrize("domain", ["source", "target"])
def test_fraction_keeps_ceil_alpha_n_k_in_one_domain_and_repeats_to_full_steps(paper_a_synth, domain):
    data = paper_a_synth(3, 28)  # 14 training images per class
    full = getattr(data, domain)
    n_k = _train_counts(full)
    sub = R.reduce_training(data, domain, seed=1, alpha=0.4, schedule="epochs")
    d = getattr(sub, domain)
    assert _train_counts(d).tolist() == [math.ceil(0.4 * n) for n in n_k]  # footnote 18
    assert sub.meta[f"n_train_{domain[0]}"] == sum(math.ceil(0.4 * n) for n in n_k)
    for split in ("val", "test"):  # evaluation data whole
        assert (d.split == split).sum() == (full.split == split).sum()
    other = "target" if domain == "source" else "source"
    assert getattr(sub, other) is getattr(data, other)
    # schedule "steps": the kept training rows repeated up to the full count, each at most once more
    st = getattr(R.reduce_training(data, domain, seed=1, alpha=0.4), domain)
    tr = st.items.loc[st.split == "train", "key"]
    assert len(tr) == (full.split == "train").sum()
    counts = tr.value_counts()
    assert set(counts.index) == set(d.items.loc[d.split == "train", "key"])
    assert counts.max() - counts.min() <= 1
    assert (st.split != "train").sum() == (full.split != "train").sum()


def test_draws_are_nested_in_alpha_and_k_and_differ_by_seed(paper_a_synth):
    data = paper_a_synth(3, 40)

    def keys(**kw):
        d = R.reduce_training(data, "target", schedule="epochs", **kw).target
        return set(d.items.loc[d.split == "train", "key"])

    assert keys(seed=0, alpha=0.4) <= keys(seed=0, alpha=0.7) <= keys(seed=0, alpha=1.0)
    assert keys(seed=0, k=1) <= keys(seed=0, k=2) <= keys(seed=0, k=5)
    assert keys(seed=0, alpha=0.4) != keys(seed=1, alpha=0.4)


def test_k_shot_keeps_k_per_class_or_all_a_class_has(paper_a_synth):
    data = paper_a_synth(3, 12)  # 6 training images per class
    sub = R.reduce_training(data, "target", seed=0, k=2, schedule="epochs")
    assert _train_counts(sub.target).tolist() == [2, 2, 2]
    sub = R.reduce_training(data, "target", seed=0, k=9, schedule="epochs")
    assert _train_counts(sub.target).tolist() == [6, 6, 6]


def test_rebuilt_vocabulary_is_the_top_k_words_of_the_kept_training_images(paper_a_synth):
    data = paper_a_synth(4, 20, k=12, noise_every=0)
    sub = R.reduce_training(data, "source", seed=0, alpha=0.5, schedule="epochs")
    # oracle: sum the word clicks of the kept training rows by hand, rank (clicks desc, word)
    keep = sub.source.items["key"].to_numpy()
    rows = np.flatnonzero(np.isin(data.source.items["key"].to_numpy(), keep))
    train = rows[data.source.split[rows] == "train"]
    totals = np.asarray(data.word_clicks.counts[train].sum(axis=0)).ravel()
    words = sorted((w for j, w in enumerate(data.word_clicks.vocabulary) if totals[j] > 0),
                   key=lambda w: (-totals[data.word_clicks.vocabulary.index(w)], w))
    assert sub.vocabulary == words[:data.k]
    assert sub.source.clicks.shape == (len(keep), len(sub.vocabulary))
    # the same as eq. (16)'s rebuild with every class on both sides
    ref = with_label_sets(data, data.classes, data.classes, full=data.word_clicks)
    assert R.reduce_training(data, "source", seed=0, alpha=1.0, schedule="epochs").vocabulary == ref.vocabulary
    # policy "full": the whole source's vocabulary, its features subset
    kept = R.reduce_training(data, "source", seed=0, alpha=0.5, vocabulary="full", schedule="epochs")
    assert kept.vocabulary == data.vocabulary
    np.testing.assert_array_equal(kept.source.clicks, data.source.clicks[rows])


def test_vocabulary_rebuild_drops_words_only_removed_images_clicked(paper_a_synth):
    data = paper_a_synth(3, 20, k=9, noise_every=0)  # class c clicks words 3c..3c+2
    keep_all_but_class2 = rebuild_source_vocabulary(data, np.flatnonzero(data.source.y != 2), full=data.word_clicks)
    # every word keeps background clicks (0.1 noise), so all nine survive, but class 2's words rank last
    assert set(keep_all_but_class2.vocabulary[-3:]) == {"w6", "w7", "w8"}


def test_bad_arguments_are_named(paper_a_synth):
    data = paper_a_synth(3, 20)
    with pytest.raises(ValueError, match="exactly one of alpha and k"):
        R.reduce_training(data, "target", 0)
    with pytest.raises(ValueError, match="domain"):
        R.reduce_training(data, "both", 0, alpha=0.5)
    with pytest.raises(ValueError, match="schedule"):
        R.reduce_training(data, "target", 0, alpha=0.5, schedule="iterations")
    with pytest.raises(ValueError, match="include 1"):
        R.reduced_data_runs(data, CFG, [0], [0.5])
    other = rebuild_source_vocabulary(data, np.arange(30), full=data.word_clicks).word_clicks  # 30 rows, not the 60
    with pytest.raises(ValueError, match="row-aligned"):
        rebuild_source_vocabulary(data, np.arange(3), full=other)


def test_reduced_data_runs_on_tiny_data(paper_a_synth):
    data = paper_a_synth(3, 28)
    rows, sizes = R.reduced_data_runs(data, CFG, [0, 1], [1.0, 0.5], ks=[1], methods=["VGGsrc", "MTMDD-VM"])
    assert set(rows["panel"]) == {"a", "b", "k"}
    acc = rows[rows["metric"] == "acc_t"]
    assert acc["value"].between(0, 1).all()
    # one alpha = 1 run shared by panels a and b
    full_a = acc[(acc["panel"] == "a") & (acc["x"] == 1.0)].set_index(["method", "seed"])["value"]
    full_b = acc[(acc["panel"] == "b") & (acc["x"] == 1.0)].set_index(["method", "seed"])["value"]
    pd.testing.assert_series_equal(full_a, full_b)
    assert len(acc) == 2 * 2 * (2 + 2 + 1)  # methods x seeds x points (a: 2, b: 2, k: 1)
    s = sizes.set_index(["panel", "x", "seed"])
    assert s.loc[("a", 0.5, 0), "n_train_s"] == 3 * 7 and s.loc[("a", 0.5, 0), "n_train_t"] == 3 * 14
    assert s.loc[("k", 1.0, 1), "n_train_t"] == 3 and s.loc[("full", 1.0, 0), "n_train_s"] == 3 * 14
    table = R.acc_t_table(rows, ["VGGsrc", "MTMDD-VM"])
    assert list(table.columns) == ["VGG (VGGsrc)", "OURS (MTMDD-VM)"] and len(table) == 5


def _fake_rows(acc: dict) -> pd.DataFrame:
    """acc[(panel, x, method)] = per-seed Acc-T list -> tidy rows."""
    return pd.DataFrame([{"panel": p, "x": x, "method": m, "seed": s, "metric": "acc_t", "value": v}
                         for (p, x, m), vals in acc.items() for s, v in enumerate(vals)])


def _verdicts(rows) -> dict:
    from clickvision.claims import judge

    return {c.claim_id: judge(c, d, n_resamples=400) for c, d in R.claims_fig14(rows)}


def test_claims_against_hand_computed_drops():
    acc = {}
    for p in ("a", "b"):
        acc[(p, 1.0, "VGGsrc")] = [0.70, 0.72, 0.71]
        acc[(p, 1.0, "TDL")] = [0.70, 0.70, 0.70]
        acc[(p, 1.0, "MTMDD-VM")] = [0.75, 0.76, 0.74]
        acc[(p, 0.4, "VGGsrc")] = [0.60, 0.61, 0.62]   # drops 10, 11, 9
        acc[(p, 0.4, "TDL")] = [0.62, 0.64, 0.60]      # drops 8, 6, 10
        acc[(p, 0.4, "MTMDD-VM")] = [0.72, 0.73, 0.71] if p == "a" else [0.75, 0.77, 0.73]  # a: 3,3,3; b: 0,-1,1
    acc[("k", 1.0, "VGGsrc")] = [0.30, 0.32, 0.31]
    acc[("k", 1.0, "TDL")] = [0.35, 0.20, 0.50]
    acc[("k", 1.0, "MTMDD-VM")] = [0.40, 0.41, 0.42]
    rows = _fake_rows(acc)
    np.testing.assert_allclose(R.drop_per_seed(rows, "a", "TDL", 1.0, 0.4).to_numpy(), [0.08, 0.06, 0.10])
    c = _verdicts(rows)
    assert c["Fig14a-less-source-lowers-AccT"].verdict == "supported"  # smallest drop (ours, 3 points) positive
    assert "OURS (MTMDD-VM)" in c["Fig14a-less-source-lowers-AccT"].claim.claim
    assert c["Fig14b-less-target-lowers-AccT"].verdict == "inconclusive"  # ours: drops 0, -1, +1
    assert c["Fig14a-ours-degrades-least"].verdict == "supported"
    # against TDL, the other with the smallest mean drop (8): TDL drop - ours = 5, 3, 7 in (a)
    assert c["Fig14a-ours-degrades-least"].estimate == pytest.approx(0.05)
    k = c["ext-kshot-ours-leads-at-k1"]  # ours - TDL = 5, 21, -8: the interval spans 0
    assert k.verdict == "inconclusive" and k.claim.arms == ("OURS", "TDL")


def test_ours_degrading_more_is_contradicted():
    acc = {("a", 1.0, m): [0.7, 0.7] for m in ("VGGsrc", "TDL", "MTMDD-VM")}
    acc.update({("a", 0.5, "VGGsrc"): [0.69, 0.68], ("a", 0.5, "TDL"): [0.69, 0.68],
                ("a", 0.5, "MTMDD-VM"): [0.6, 0.6]})
    acc.update({(p, x, m): v for (_, x, m), v in list(acc.items()) for p in ("b",)})
    c = _verdicts(_fake_rows(acc))
    assert c["Fig14a-less-source-lowers-AccT"].verdict == "supported"
    assert c["Fig14a-ours-degrades-least"].verdict == "contradicted"


def test_plot_has_one_panel_per_setting(paper_a_synth):
    import matplotlib

    matplotlib.use("Agg")
    rows = _fake_rows({("a", 1.0, "TDL"): [0.5, 0.6], ("a", 0.5, "TDL"): [0.4, 0.5], ("b", 1.0, "TDL"): [0.5, 0.6],
                       ("b", 0.5, "TDL"): [0.3, 0.4], ("k", 1.0, "TDL"): [0.2, 0.3], ("k", 2.0, "TDL"): [0.3, 0.3]})
    fig = R.plot_fig14(rows, ["TDL"])
    assert len(fig.axes) == 3
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(sorted(line.get_ydata()), [45.0, 55.0])


def test_drop_table_shows_the_paired_drops():
    acc = {(p, x, "TDL"): v for p in ("a", "b") for x, v in ((1.0, [0.7, 0.8]), (0.5, [0.6, 0.6]))}
    table = R.drop_table(_fake_rows(acc), ["TDL"], lo=0.5)
    assert table.loc["(a) source reduced", "TDL"] == "+15.0 +- 7.1"  # drops 10 and 20 points


def test_runs_on_several_targets_keep_them_apart_in_tables_and_pool_them_in_claims(paper_a_synth):
    import matplotlib

    from clickvision.experiments.paper_a import claims as AC

    matplotlib.use("Agg")
    one, two = paper_a_synth(3, 28), paper_a_synth(3, 28, seed=1)
    kw = dict(ks=[1], methods=["VGGsrc", "MTMDD-VM"])
    rows, sizes = R.reduced_data_runs_targets({"twitter": one, "fluent-hc": two}, CFG, [0, 1], [1.0, 0.5], **kw)
    assert R.targets_of(rows) == ["twitter", "fluent-hc"] and set(sizes["target"]) == {"twitter", "fluent-hc"}
    alone, alone_sizes = R.reduced_data_runs(two, CFG, [0, 1], [1.0, 0.5], **kw)
    mine = rows[rows["target"] == "fluent-hc"].reset_index(drop=True)
    np.testing.assert_allclose(mine["value"], alone["value"])  # each target's run is reduced_data_runs'
    pd.testing.assert_frame_equal(sizes[sizes["target"] == "fluent-hc"].drop(columns="target").reset_index(drop=True),
                                  alone_sizes)
    items = rows.loc[rows["metric"] == "correct_t", "item"]
    assert len(items) and items.str.startswith(("twitter/", "fluent-hc/")).all()
    # tables: one block per target, each that target's own numbers (not the mean over targets)
    table = R.acc_t_table(rows, ["VGGsrc", "MTMDD-VM"])
    assert table.index.names == ["target", "panel", "training data"] and len(table) == 2 * 5
    pd.testing.assert_frame_equal(table.loc["fluent-hc"], R.acc_t_table(alone, ["VGGsrc", "MTMDD-VM"]))
    drops = R.drop_table(rows, ["VGGsrc"], lo=0.5)
    pd.testing.assert_frame_equal(drops.loc["fluent-hc"], R.drop_table(alone, ["VGGsrc"], lo=0.5),
                                  check_names=False)
    fig = R.plot_fig14(rows, ["VGGsrc", "MTMDD-VM"])
    assert len(fig.axes) == 2 * 3 and "fluent-hc" in fig.axes[3].get_title()
    # claims: both targets' test images as distinct items, paired over seeds (the k-shot draws
    # change the training images per seed, not the test images)
    n_test = len(one.target.rows("test")) + len(two.target.rows("test"))
    for claim, data in R.claims_fig14(rows, others=["VGGsrc"]):
        assert "pooled over the targets twitter, fluent-hc" in claim.claim
        assert "item" in data.columns and data.groupby(["method", "seed"])["item"].nunique().eq(n_test).all()
    # a per-seed Acc-T pools as the mean over the targets
    per_seed = AC.acc_scores(rows.drop(columns="item")[rows["metric"] == "acc_t"], "t",
                             {"OURS": {"method": "MTMDD-VM", "panel": "k"}})
    want = rows[(rows["metric"] == "acc_t") & (rows["panel"] == "k") & (rows["method"] == "MTMDD-VM")]
    np.testing.assert_allclose(per_seed["value"], want.groupby("seed")["value"].mean())
    with pytest.raises(ValueError, match="at least one target"):
        R.reduced_data_runs_targets({}, CFG, [0], [1.0])


def test_one_target_needs_no_target_column():
    acc = {(p, x, "TDL"): v for p in ("a", "b") for x, v in ((1.0, [0.7, 0.8]), (0.5, [0.6, 0.6]))}
    rows = _fake_rows(acc)
    assert R.targets_of(rows) == [] and R.pooled_note(rows) == ""
    assert R.pooled_note(rows.assign(target="twitter")) == ""  # one target: nothing pooled
    both = pd.concat([rows.assign(target="twitter"), rows.assign(target="noto", value=rows["value"] - 0.1)])
    assert R.pooled_note(both) == "; pooled over the targets twitter, noto"
    table = R.drop_table(both, ["TDL"], lo=0.5)
    assert table.loc[("noto", "(a) source reduced"), "TDL"] == "+15.0 +- 7.1"
    assert list(R.acc_t_table(both, ["TDL"]).loc["noto"]["TDL"])[0] == "65.0 +- 7.1"


def _steps_per_epoch(history: pd.DataFrame) -> int:
    v = history[history["split"] == "val"].drop_duplicates("epoch")
    return int(v["step"].iloc[0] // v["epoch"].iloc[0])


@pytest.mark.filterwarnings("ignore:validation .* never got better:RuntimeWarning")  # tiny data, 3 epochs
def test_stop_rule_counts_the_schedules_epochs_and_labels_every_fit_by_setting(paper_a_synth):
    from clickvision.experiments.paper_a import joint as J
    from clickvision.experiments.paper_a import train as TR

    cfg = CFG.scaled(epochs=3, recognizer_epochs=3, recognizer_batch_size=8, patience=1)
    from dataclasses import replace

    one = paper_a_synth(3, 28)
    datasets = {"twitter": one, "fluent-hc": replace(one, target=paper_a_synth(3, 28, seed=1).target)}  # one source
    kw = dict(ks=[1], methods=["VGGsrc", "TDL", "MTMDD-VM"])
    per = {}
    for schedule in ("steps", "epochs"):
        with TR.record_histories() as fits:
            R.reduced_data_runs_targets(datasets, cfg, [0], [1.0, 0.5], schedule=schedule, **kw)
        per[schedule] = fits
        assert fits and all({"target", "panel", "x", "method", "seed"} <= set(lab) for lab, _, _ in fits)
        assert not J.stop_summary(fits).empty  # every recorded fit was checked on validation
        seen = {(lab["target"], lab["panel"], lab["method"], fam) for lab, fam, _ in fits}
        # the source-only fits are trained once (the alpha = 1 run and the reduced source, first target only):
        # the settings and the target that leave the source whole reuse them and record nothing
        src = [(t, p) for t, p, m, f in seen if m == "VGGimg / VGGsrc (source)" or f == "click predictor"]
        assert set(src) == {("twitter", "full"), ("twitter", "a")}
        assert ("fluent-hc", "b", "VGGsrc", "recognizer") in seen and ("fluent-hc", "full", "MTMDD-VM", "joint") in seen

    def target_fit(fits, panel, x):  # VGGsrc's target recognizer of one setting
        (h,) = [h for lab, fam, h in fits if (lab["target"], lab["panel"], lab["x"], lab["method"], fam)
                == ("twitter", panel, x, "VGGsrc", "recognizer")]
        return h

    full = _steps_per_epoch(target_fit(per["steps"], "full", 1.0))
    assert full == 6  # 42 training images in batches of 8
    # "steps": a reduced target's epoch is as many steps as one pass over all the data (the same grid of checks)
    assert _steps_per_epoch(target_fit(per["steps"], "b", 0.5)) == full
    assert _steps_per_epoch(target_fit(per["steps"], "k", 1.0)) == full
    # "epochs": one pass over the distinct reduced images (21 at alpha 0.5, 3 at k = 1)
    assert _steps_per_epoch(target_fit(per["epochs"], "b", 0.5)) == 3
    assert _steps_per_epoch(target_fit(per["epochs"], "k", 1.0)) == 1
    # patience 0: the fixed-epoch runs evaluate nothing, so nothing is stopped or summarised
    with TR.record_histories() as fits:
        R.reduced_data_runs(datasets["twitter"], cfg.scaled(patience=0), [0], [1.0, 0.5], ks=[1], methods=["VGGsrc"])
    assert fits and J.stop_summary(fits).empty
