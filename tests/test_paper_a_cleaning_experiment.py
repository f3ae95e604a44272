"""Paper A, Table II experiment (A.09): scoring, arms, counts and claims on tiny synthetic data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickvision import cleaning
from clickvision.experiments.paper_a import cleaning as AC
from clickvision.experiments.paper_a.train import ClickLossSpec, HeadConfig, JointSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_CLASSES, PER_CLASS, K, C = 3, 20, 9, 6


@pytest.fixture()
def synthetic(paper_a_synth):
    """Clicks name the class (3 words per class); every 5th image gets the next class's clicks."""
    return lambda seed=0: paper_a_synth(N_CLASSES, PER_CLASS, K, C, seed)


def test_click_scorer_sees_click_noise_and_picks_c_by_log_loss(synthetic):
    data = synthetic()
    p, table = AC.own_label_scores(data, "click", cs=(0.1, 10.0), n_splits=4)
    noisy = data.source.noisy
    assert p[noisy].max() < p[~noisy].min()  # the clicks of another class give a low own-label probability
    assert table["chosen"].sum() == 1 and table.loc[table["chosen"], "log_loss"].iloc[0] == table["log_loss"].min()
    assert ((p >= 0) & (p <= 1)).all() and len(p) == len(noisy)
    with pytest.raises(ValueError, match="scorer"):
        AC.own_label_scores(data, "pixels")
    with pytest.raises(ValueError, match="cs"):
        AC.own_label_scores(data, "click", cs=(0.0,))
    with pytest.raises(ValueError, match="fewer than n_splits"):
        AC.own_label_scores(data, "click", n_splits=PER_CLASS + 1)


def test_visual_scorer_cannot_see_click_noise(synthetic):
    data = synthetic()
    p, table = AC.own_label_scores(data, "visual", cs=(1.0,), n_splits=4, visual_dims=3)
    noisy = data.source.noisy
    assert set(table["scorer"]) == {"visual"} and len(p) == len(noisy)
    assert not p[noisy].max() < p[~noisy].min()  # pixels carry the right label: noisy images are not singled out
    with pytest.raises(ValueError, match="visual_dims"):
        AC.own_label_scores(data, "visual", cs=(1.0,), n_splits=4, visual_dims=C + 1)


def test_keep_masks_per_arm(synthetic):
    data = synthetic()
    s = data.source
    keep = np.ones(len(s.y), bool)
    keep[::3] = False  # some images of every split "cleaned away"
    masks = AC.train_keep_masks(data, keep, AC.ARMS, seed=0)
    train = s.split == "train"
    for arm, m in masks.items():
        assert m[~train].all(), arm  # val and test are never touched
    assert masks["none"].all()
    assert np.array_equal(~masks["table2"], train & ~keep)
    assert np.array_equal(~masks["oracle"], train & s.noisy)
    assert (~masks["random"]).sum() == (~masks["table2"]).sum()
    assert np.array_equal(masks["random"], AC.train_keep_masks(data, keep, ["random"], seed=0)["random"])
    assert not np.array_equal(masks["random"], AC.train_keep_masks(data, keep, ["random"], seed=1)["random"])
    with pytest.raises(ValueError, match="arms"):
        AC.train_keep_masks(data, keep, ["bogus"], 0)


def test_cleaning_summary_counts_agree_with_scores(synthetic):
    data = synthetic()
    s = data.source
    p = np.where(s.noisy, 0.05, 0.9)
    p[1] = 0.1  # one clean image removed too
    res = cleaning.clean_by_clicks(p, np.arange(len(p), dtype=float), s.y, edge_scale=1.0)
    stages, scores = AC.cleaning_summary(res, s.noisy, "click")
    total = stages[stages["band"] == "total"].iloc[0]
    assert total["images"] == len(p) and total["noisy"] == s.noisy.sum()
    assert total["noisy_removed"] == scores["noisy_removed"] == s.noisy.sum()
    assert total["images"] - total["kept"] == scores["removed"] == s.noisy.sum() + 1
    assert scores["precision"] == pytest.approx(s.noisy.sum() / (s.noisy.sum() + 1)) and scores["recall"] == 1.0
    assert stages["noisy"].iloc[:-1].sum() == total["noisy"]


def test_cleaning_accuracy_runs_every_arm_on_tiny_data(synthetic):
    data = synthetic()
    keep = ~data.source.noisy
    cfg = HeadConfig(embedding="bifc", hidden=8, visual_hidden=4, epochs=1, recognizer_epochs=1, batch_size=16)
    spec = JointSpec(lam=0.4, mu=0.1, click=ClickLossSpec(tau=0.1), shared=False)
    rows = AC.cleaning_accuracy(data, keep, cfg, spec, [0], arms=("none", "table2", "random"))
    assert set(rows["arm"]) == {"none", "table2", "random"}
    m = rows.pivot_table(index="metric", columns="arm", values="value")
    n_train = int((data.source.split == "train").sum())
    assert m.loc["n_train_s", "none"] == n_train
    assert m.loc["n_train_s", "table2"] == m.loc["n_train_s", "random"] == n_train - (data.source.noisy &
                                                                                       (data.source.split == "train")).sum()
    assert m.loc["noise_train_s", "table2"] == 0 and m.loc["noise_train_s", "none"] > 0
    assert {"acc_s", "acc_t", "val_acc_t"} <= set(m.index)


def test_image_click_counts_sum_the_log(synthetic, tmp_path, monkeypatch):
    data = synthetic()
    log = tmp_path / "log.tsv"
    log.write_text("a b\tsource0\t3\nc\tsource0\t2\nd\tsource2\t7\n")
    monkeypatch.setattr(AC.click_build, "click_log_path", lambda name: log)
    counts = AC.image_click_counts(data)
    assert counts[0] == 5 and counts[2] == 7 and counts[1] == 0 and counts.sum() == 12


def _click_table(data):
    """The synthetic data's noise table: a noisy image's clicks are the next class's."""
    s = data.source
    click = np.where(s.noisy, (s.y + 1) % N_CLASSES, s.y)
    return pd.DataFrame({"key": s.items["key"], "click_label": [data.classes[c] for c in click]})


def test_label_noise_relabels_exactly_the_noisy_training_images(synthetic):
    data = synthetic()
    s = data.source
    got = AC.with_noise(data, "labels", _click_table(data))
    train = s.split == "train"
    changed = got.source.y != s.y
    assert np.array_equal(changed, s.noisy & train) and changed.sum() > 0  # exactly those, nothing else
    assert (got.source.y[changed] == (s.y[changed] + 1) % N_CLASSES).all()  # to the class of their clicks
    assert (s.noisy & ~train).any() and (got.source.y[s.noisy & ~train] == s.y[s.noisy & ~train]).all()
    assert got.source.items.loc[changed, "label"].tolist() == [str(c) for c in got.source.y[changed]]
    assert got.source.items["true_label"].tolist() == s.items["label"].tolist()
    for name in ("phi", "clicks", "split", "noisy"):
        assert np.array_equal(getattr(got.source, name), getattr(s, name)), name
    assert got.target is data.target and np.array_equal(s.y, synthetic().source.y)  # the input untouched
    assert AC.with_noise(data, "clicks") is data
    assert np.array_equal(AC.planted_training_noise(got), s.noisy & train)
    with pytest.raises(ValueError, match="noise must be one of"):
        AC.with_noise(data, "pixels")
    bad = _click_table(data)
    bad.loc[s.noisy & train, "click_label"] = bad.loc[s.noisy & train, "key"].map(dict(zip(s.items["key"],
                                                                                         s.items["label"])))
    with pytest.raises(ValueError, match="equals its own label"):
        AC.with_noise(data, "labels", bad)
    with pytest.raises(ValueError, match="no click_label"):
        AC.with_noise(data, "labels", _click_table(data).iloc[5:])


def test_visual_scorer_sees_label_noise(synthetic):
    data = AC.with_noise(synthetic(), "labels", _click_table(synthetic()))
    p, _ = AC.own_label_scores(data, "visual", cs=(1.0,), n_splits=4, visual_dims=3)
    q, _ = AC.own_label_scores(data, "click", cs=(1.0,), n_splits=4)
    flipped = AC.planted_training_noise(data)
    assert np.median(p[flipped]) < np.median(p[~flipped])  # pixels betray the given label
    assert np.median(q[flipped]) > 0.5  # the clicks agree with the given label: the click scorer is blind
    assert AC.SCORER_FOR_NOISE == {"clicks": "click", "labels": "visual"}


def test_thin_classes_and_removal_judged(synthetic):
    data = synthetic()
    s = data.source
    keep = np.ones(len(s.y), bool)
    keep[(s.y == 2) & (s.split == "train")] = False
    keep[np.flatnonzero((s.y == 1) & (s.split == "train"))[1:]] = False  # class 1 keeps one training image
    thin = AC.thin_classes(data, keep)
    assert thin["class"].tolist() == ["1", "2"] and thin["kept"].tolist() == [1, 0]
    assert thin["train_images"].tolist() == [int(((s.y == c) & (s.split == "train")).sum()) for c in (1, 2)]
    assert AC.thin_classes(data, np.ones(len(s.y), bool)).empty
    p = np.where(s.noisy, 0.01, 0.5) + np.linspace(0, 0.3, len(s.y)) * np.where(s.noisy, 0.1, 1)
    res = cleaning.clean_by_clicks(p, np.arange(len(p), dtype=float), s.y, edge_scale=1.0, rule="calibrated",
                                   keep_rate=0.5)  # distinct ratios p / t: noisy <= 0.2, clean >= 1.25
    jd = AC.removal_judged(res, p, data)
    train = s.split == "train"
    assert jd["n"] == train.sum() and np.array_equal(jd["noisy_mask"], s.noisy[train])
    assert jd["noisy"] == (s.noisy & train).sum() and np.array_equal(jd["keep_mask"], res.keep[train])
    assert jd["auroc"] == 1.0 and jd["recall"] == 1.0  # the noisy images score lowest and are all removed
    assert jd["keep_rate_all"] == pytest.approx(0.5) and jd["rule"] == "calibrated"
    assert jd["item"].tolist() == s.items["key"][train].tolist()
    stages, sc = AC.cleaning_summary(res, AC.planted_training_noise(data), "click", train)
    total = stages[stages["band"] == "total"].iloc[0]
    assert total["train"] == train.sum() and total["train_kept"] == (res.keep & train).sum()
    assert sc["n"] == train.sum() and sc["precision"] == pytest.approx(jd["precision"])


def test_claims_on_the_verdict_engine():
    from clickvision.claims import judge

    def rows(gaps, noise="clicks"):
        out = []
        for seed, g in enumerate(gaps):
            for arm, base in (("none", 0.5), ("random", 0.5), ("table2", 0.5 + g)):
                out += [{"arm": arm, "seed": seed, "metric": m, "value": base, "noise": noise}
                        for m in ("acc_s", "acc_t")]
        return pd.DataFrame(out)

    n = 200
    noisy = np.zeros(n, bool)
    noisy[:40] = True
    good = np.where(noisy, 0.9, 0.1) + np.linspace(0, 0.5, n)  # noise scored high
    keep = np.ones(n, bool)
    keep[:30] = False  # 30 of 40 noisy removed ...
    keep[100:110] = False  # ... and 10 clean: precision 0.75 vs 0.2, recall 0.75 vs 0.2

    def judged(keep, score):
        return {**cleaning.removal_scores(keep, noisy, score), "keep_mask": keep, "noisy_mask": noisy, "score": score,
                "scorer": "click", "rule": "calibrated", "keep_rate_all": keep.mean(),
                "item": np.array([f"k{i}" for i in range(n)])}

    def verdicts(r, jd):
        return {c.claim_id: judge(c, d, n_resamples=400).verdict for c, d in AC.claims_table_ii(r, jd)}

    got = verdicts(pd.concat([rows([0.02, 0.03, 0.025]), rows([0.0, 0.01, -0.01], "labels")]),
                   {"clicks": judged(keep, good), "labels": judged(keep, good)})
    assert got == {"TableII-removes-noise": "supported", "TableII-removal-recall": "supported",
                   "TableII-scorer-AUROC": "supported", "TableII-cleaning-improves-Acc-T": "supported",
                   "TableII-cleaning-improves-Acc-S": "supported", "TableII-cleaning-beats-random-Acc-T": "supported",
                   "TableII-cleaning-beats-random-Acc-S": "supported", "TableII-removes-noise-labels": "supported",
                   "TableII-removal-recall-labels": "supported", "TableII-scorer-AUROC-labels": "supported",
                   "TableII-cleaning-improves-Acc-T-labels": "inconclusive",
                   "TableII-cleaning-improves-Acc-S-labels": "inconclusive",
                   "TableII-cleaning-beats-random-Acc-T-labels": "inconclusive",
                   "TableII-cleaning-beats-random-Acc-S-labels": "inconclusive"}
    worse = np.ones(n, bool)
    worse[100:160] = False  # removes only clean images, and the score ranks the noise lowest
    got = verdicts(rows([0.05, -0.04, 0.0]), {"clicks": judged(worse, -good)})
    assert got["TableII-removes-noise"] == got["TableII-removal-recall"] == "contradicted"
    assert got["TableII-scorer-AUROC"] == "contradicted"
    assert got["TableII-cleaning-improves-Acc-T"] == "inconclusive"  # per-seed gaps of both signs
    pairs = AC.claims_table_ii(None, {"labels": None})  # without the flags: untestable, with a reason
    assert [c.claim_id for c, _ in pairs] == ["TableII-removes-noise-labels", "TableII-removal-recall-labels",
                                              "TableII-scorer-AUROC-labels"]
    assert all(c.kind == "untestable" and d is None for c, d in pairs)
    (c, d), *_ = AC.claims_table_ii(None, {"clicks": judged(keep, good)})
    assert set(d["method"]) == {"cleaning, precision", "random removal, precision"}
    assert d.groupby("method")["value"].mean().to_dict() == pytest.approx({"cleaning, precision": 0.75,
                                                                          "random removal, precision": 0.2})
    assert "keep 10.0 %" not in c.claim and "scaled to keep 80.0 %" in c.claim
    with pytest.raises(ValueError, match="noise must be one of"):
        AC.claims_table_ii(None, {"pixels": None})
