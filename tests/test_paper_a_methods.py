"""Paper A's method registry (Table VIII, Fig. 13, Table IX, Fig. 14) and eq. (16) label sets, on tiny data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickvision.experiments.paper_a import methods as M
from clickvision.experiments.paper_a.data import with_label_sets
from clickvision.experiments.paper_a.train import HeadConfig, accuracy_in

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = HeadConfig(embedding="bifc", hidden=8, visual_hidden=4, epochs=1, recognizer_epochs=1, batch_size=16)


def test_every_method_gives_test_and_val_accuracy_on_both_domains(paper_a_synth):
    data = paper_a_synth(3, 20)
    rows = M.run_methods(M.METHODS, data, CFG, [0], family="x")
    assert set(rows["method"]) == set(M.METHODS) and set(rows["family"]) == {"x"}
    for method, g in rows.groupby("method"):
        assert {"acc_s", "acc_t", "val_acc_s", "val_acc_t"} <= set(g["metric"]), method
        acc = g[g["metric"].str.contains("acc_")]["value"]
        assert acc.between(0, 1).all(), method
    acc_s = rows[rows["metric"] == "acc_s"].set_index("method")["value"]
    assert acc_s["VGGimg"] == acc_s["VGGsrc"]  # one source recogniser, as in the paper


def test_vggsrc_starts_from_the_source_head(paper_a_synth, monkeypatch):
    data = paper_a_synth(3, 20)
    seen = []
    real = M.recognition_accuracy

    def spy(d, cfg, v_hat, use_visual, seed, n, columns=None, init=None, keep=False):
        seen.append((d.name, init is not None))
        return real(d, cfg, v_hat, use_visual, seed, n, columns, init, keep)

    monkeypatch.setattr(M, "recognition_accuracy", spy)
    M.vgg_rows(data, CFG, 0)
    assert seen == [("source", False), ("target", False), ("target", True)]


def test_unknown_method_is_named(paper_a_synth):
    with pytest.raises(ValueError, match="RACNN"):
        M.run_methods(["RACNN"], paper_a_synth(3, 20), CFG, [0])


def test_label_sets_reindex_restrict_and_rebuild_the_vocabulary(paper_a_synth):
    data = paper_a_synth(4, 20, noise_every=0)
    sub = with_label_sets(data, ["0", "1"], ["1", "2", "3"], k=4, full=data.word_clicks)
    assert sub.classes == ["1", "2", "3", "0"]  # target first, then source-only
    assert sub.source_columns.tolist() == [3, 0] and sub.target_columns.tolist() == [0, 1, 2]
    assert set(sub.source.y) == {3, 0} and set(sub.target.y) == {0, 1, 2}
    assert len(sub.source.y) == 40 and len(sub.target.y) == 60
    # the vocabulary comes from classes 0 and 1 only (their words w0-w5), re-ranked on them
    assert set(sub.vocabulary) <= {f"w{j}" for j in range(6)} and len(sub.vocabulary) == 4
    assert sub.source.clicks.shape == (40, 4)
    rows = M.run_methods(["VGGsrc", "MTMDD-VM", "MTMDD-VM*", "MTTDL", "TDL"], sub, CFG, [0])
    assert rows["value"].notna().all()
    with pytest.raises(ValueError, match=r"\['9'\]"):
        with_label_sets(data, ["0", "9"], ["1"], full=data.word_clicks)


def test_accuracy_in_takes_the_argmax_over_the_domain_columns():
    logits = np.array([[5.0, 1.0, 0.0], [0.0, 1.0, 9.0], [0.0, 2.0, 1.0]])
    y = np.array([1, 2, 1])
    assert accuracy_in(y, logits) == pytest.approx(2 / 3)
    assert accuracy_in(y, logits, np.array([1, 2])) == 1.0  # row 0: column 0 is not this domain's


def test_joint_methods_record_a_validation_curve_without_changing_the_fit(paper_a_synth):
    """Each joint method's fit records validation accuracy per epoch (A.10's convergence figure); asking for
    the curves leaves every result row as it was (evaluation restores the random streams)."""
    data = paper_a_synth(3, 20)
    cfg = CFG.scaled(epochs=3)
    methods = ["MTTDL", "MTMDD-VM", "MTMDD-VM*"]
    curves: list = []
    with_curves = M.run_methods(methods, data, cfg, [0, 1], curves=curves)
    without = M.run_methods(methods, data, cfg, [0, 1])
    pd.testing.assert_frame_equal(with_curves, without)
    c = pd.concat(curves, ignore_index=True)
    assert set(c["method"]) == set(methods) and set(c["seed"]) == {0, 1}
    for (method, seed), g in c.groupby(["method", "seed"]):
        want = {"val_acc_s"} if method == "MTTDL" else {"val_acc_s", "val_acc_t"}
        assert set(g["metric"]) == want | {"val_acc"}  # val_acc: their mean, what the stop rule watches
        w = g.pivot_table(index="epoch", columns="metric", values="value")
        np.testing.assert_allclose(w["val_acc"], w[sorted(want)].mean(axis=1))
        for _, m in g.groupby("metric"):
            assert list(m["epoch"]) == [1, 2, 3] and m["value"].between(0, 1).all()
    # the last epoch's curve value is the reported validation accuracy of the same network
    last = c[(c["method"] == "MTMDD-VM") & (c["seed"] == 0) & (c["metric"] == "val_acc_t") & (c["epoch"] == 3)]
    rep = without[(without["method"] == "MTMDD-VM") & (without["seed"] == 0) & (without["metric"] == "val_acc_t")]
    assert float(last["value"].iloc[0]) == pytest.approx(float(rep["value"].iloc[0]))


def test_curve_plateau_by_hand():
    from clickvision.experiments.paper_a.joint import curve_plateau

    c = pd.DataFrame({"method": "OURS", "metric": "val_acc_t", "seed": [0] * 5 + [1] * 5, "epoch": list(range(1, 6)) * 2,
                      "value": [0.1, 0.2, 0.3, 0.4, 0.5, 0.1, 0.2, 0.3, 0.35, 0.3]})
    r = curve_plateau(c).iloc[0]
    # means over the seeds .1 .2 .3 .375 .4: best at epoch 5; per seed, epoch 5 minus epoch 2: .3 and .1
    assert (r["seeds"], r["epochs"], r["best_epoch"]) == (2, 5, 5)
    assert r["best_mean"] == pytest.approx(0.4) and r["last_mean"] == pytest.approx(0.4)
    assert r["change_last_3"] == pytest.approx(0.2) and r["change_last_3_sd"] == pytest.approx(np.std([0.3, 0.1], ddof=1))
