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


def test_claims_on_the_verdict_engine():
    from clickvision.claims import judge

    scores = {"scorer": "click", "noise_before": 0.2, "noise_after": 0.05, "precision": 0.5, "recall": 0.8,
              "removed": 10, "n": 50, "noisy": 10}

    def rows(gaps):
        out = []
        for seed, g in enumerate(gaps):
            for arm, base in (("none", 0.5), ("random", 0.5), ("table2", 0.5 + g)):
                out += [{"arm": arm, "seed": seed, "metric": m, "value": base} for m in ("acc_s", "acc_t")]
        return pd.DataFrame(out)

    noisy = np.zeros(50, bool)
    noisy[:10] = True
    keep = np.ones(50, bool)
    keep[:8] = False  # 8 of the 10 removed are noisy: precision 0.8 against a noise rate of 0.2
    keep[40:42] = False

    def verdicts(r, k):
        return {c.claim_id: judge(c, d, n_resamples=400).verdict for c, d in AC.claims_table_ii(r, scores, k, noisy)}

    assert verdicts(rows([0.02, 0.03, 0.025]), keep) == {
        "TableII-removes-noise": "supported", "TableII-cleaning-improves-Acc-T": "supported",
        "TableII-cleaning-improves-Acc-S": "supported"}
    worse = np.ones(50, bool)
    worse[30:45] = False  # removes only clean images: precision 0 < 0.2
    got = verdicts(rows([0.05, -0.04, 0.0]), worse)
    assert got["TableII-removes-noise"] == "contradicted"
    assert got["TableII-cleaning-improves-Acc-T"] == "inconclusive"  # per-seed gaps of both signs
    (c, d), *_ = AC.claims_table_ii(rows([0.0]), scores)  # without the flags: untestable, with a reason
    assert c.kind == "untestable" and d is None