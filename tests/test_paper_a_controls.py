"""Paper A measurements behind the claims (#18 item 4): A.03's "C alone" controls and click-quality ranking,
A.07's RMSE-S readings beside the floors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from clickvision.experiments.paper_a import core as A
from clickvision.experiments.paper_a import floors as F
from clickvision.experiments.paper_a import joint as J
from clickvision.experiments.paper_a import train as T
from test_paper_a_models import CFG, tiny_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shuffled_click_targets_permute_training_rows_only():
    d = tiny_data().source
    s = A.shuffled_click_targets(d, seed=0)
    train, rest = d.rows("train"), np.flatnonzero(d.split != "train")
    np.testing.assert_array_equal(s.clicks[rest], d.clicks[rest])  # val / test keep their true clicks
    # the training rows hold the same vectors, each still with its own non-zero flag, in another order
    key = lambda m: sorted(map(tuple, m))
    assert key(s.clicks[train]) == key(d.clicks[train])
    np.testing.assert_array_equal(s.valid, s.clicks.sum(1) > 0)
    assert (s.clicks[train] != d.clicks[train]).any(axis=1).mean() > 0.5
    assert d.clicks is not s.clicks and d.phi is s.phi  # the input is not modified; features are shared
    np.testing.assert_array_equal(A.shuffled_click_targets(d, 0).clicks, s.clicks)  # seeded
    with pytest.raises(ValueError, match="no click features"):
        A.shuffled_click_targets(tiny_data().target, 0)


def test_untrained_predictor_is_the_trained_ones_starting_point():
    data = tiny_data()
    net = A.untrained_predictor(data, CFG, seed=3, kind="bifc")
    T.seeded(3)
    again = T.make_embedding(CFG, data, "bifc")
    for a, b in zip(net.embedding.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    fit = T.train_click_predictor(data, CFG, T.ClickLossSpec(), 3, "bifc")
    assert not torch.equal(fit.model.embedding.fc2.weight, net.embedding.fc2.weight)  # training moved it


def test_click_controls_rows_on_tiny_data():
    data = tiny_data()
    rows = A.click_controls(data, CFG, "bifc", [0, 1])
    assert set(rows["predictor"]) == set(A.CONTROLS)
    gt = rows[rows["predictor"] == "ground truth"]
    assert set(gt["metric"]) == {"acc_s", "val_acc_s", "correct_s"}  # the target has no ground-truth clicks
    for name in ("untrained", "shuffled targets"):
        sub = rows[rows["predictor"] == name]
        assert {("click", "rmse_s_caffe"), ("click", "precision_at_a"), ("C", "acc_t"), ("C", "correct_s")} <= \
            set(zip(sub["representation"], sub["metric"]))
    # the untrained predictor's click metrics are those of its predictions against the TRUE clicks
    net = A.untrained_predictor(data, CFG, 1, "bifc")
    s = data.source
    te = s.rows("test")
    want = T.click_metrics(s.clicks[te], T.predict_clicks(net, s)[te], s.valid[te])
    got = rows[(rows["predictor"] == "untrained") & (rows["seed"] == 1) & (rows["representation"] == "click")]
    got = got.set_index("metric")["value"]
    for k, v in want.items():
        assert got[k] == pytest.approx(v)
    # the ground truth's recognizer is the one tdl_baseline trains (same seed, same inputs)
    acc = T.recognition_accuracy(s, CFG, s.clicks, False, 0, len(data.classes))
    assert gt[(gt["seed"] == 0) & (gt["metric"] == "acc_s")]["value"].item() == pytest.approx(acc["test"])


def _tidy(values: dict, n_items: int = 40, seeds=(0, 1, 2)) -> pd.DataFrame:
    """values[predictor] = {metric: value}; acc_* also give per-image correct_* rows."""
    out = []
    for name, metrics in values.items():
        for seed in seeds:
            for m, v in metrics.items():
                rep = "C" if m.startswith("acc") else "click"
                out.append({"predictor": name, "seed": seed, "metric": m, "representation": rep, "value": v})
                if m.startswith("acc"):
                    k = round(v * n_items)
                    out += [{"predictor": name, "seed": seed, "metric": f"correct_{m[-1]}", "item": f"{m[-1]}{i}",
                             "representation": "C", "value": float(i < k)} for i in range(n_items)]
    return pd.DataFrame(out)


def test_click_quality_ranking_ranks_each_column_its_own_way():
    rows = _tidy({"good clicks": {"acc_s": 0.5, "acc_t": 0.4, "rmse_s_caffe": 0.7, "rmse_s": 1.18, "precision_at_a": 0.4,
                                  "word_ap": 0.5},
                  "visual": {"acc_s": 0.8, "acc_t": 0.7, "rmse_s_caffe": 0.95, "rmse_s": 1.38, "precision_at_a": 0.1,
                             "word_ap": 0.2},
                  "ground truth": {"acc_s": 0.45}})
    t = A.click_quality_ranking(rows, "predictor", ["good clicks", "visual", "ground truth"])
    assert t.loc["visual", "Acc-S (%)"] == pytest.approx(80.0)
    assert t.loc["visual", "rank: Acc-S (%)"] == 1 and t.loc["ground truth", "rank: Acc-S (%)"] == 3
    assert t.loc["good clicks", "rank: RMSE-S reading 2 (Caffe)"] == 1  # lower is better
    assert t.loc["good clicks", "rank: precision@|A|"] == 1  # higher is better
    assert np.isnan(t.loc["ground truth", "word AP"]) and np.isnan(t.loc["ground truth", "rank: word AP"])
    assert np.isnan(t.loc["ground truth", "Acc-T (%)"])


def test_control_contrasts_intervals_and_missing_domain():
    rows = _tidy({"trained": {"acc_s": 0.6, "acc_t": 0.6}, "untrained": {"acc_s": 0.6, "acc_t": 0.6},
                  "ground truth": {"acc_s": 0.3}}, n_items=80)
    t = A.control_contrasts(rows, [("trained", "ground truth"), ("trained", "untrained")])
    # the ground truth has no target rows: its Acc-T contrast is left out
    assert list(zip(t["contrast"], t["domain"])) == [("trained - ground truth", "Acc-S"),
                                                     ("trained - untrained", "Acc-S"), ("trained - untrained", "Acc-T")]
    first = t.iloc[0]
    assert first["difference (points)"] == pytest.approx(30.0)
    assert first["90% CI low"] > 0 and first["sign"] == "a > b"
    # the same scores on every seed and image: no contrast (the engine's untestable), not "not resolved"
    assert np.isnan(t.iloc[1]["difference (points)"]) and t.iloc[1]["sign"] == "identical (no contrast)"


def test_table_vii_shows_both_readings_and_the_floors():
    rows = []
    for model, shared, lam, r1 in (("MTMDD-VM", False, 0.4, 1.30), ("MDD-VM", False, 1.0, 1.20)):
        for seed in (0, 1):
            r = r1 + 0.01 * seed
            rows += [{"model": model, "shared": shared, "lam": lam, "seed": seed, "metric": m, "value": v}
                     for m, v in (("rmse_s", r), ("rmse_s_caffe", r * r / 2), ("acc_s", 0.5), ("acc_t", 0.5))]
    rows = pd.DataFrame(rows)
    t = J.table_vii(rows)
    assert t.loc["RMSE-S reading 2 (1e-2) ours", ("MTMDD-VM", 0.4)] == pytest.approx(100 * (1.3 ** 2 + 1.31 ** 2) / 4)
    assert t.loc["RMSE-S reading 1 (1e-2) ours", ("MTMDD-VM", 0.4)] == pytest.approx(130.5)
    assert t.loc["RMSE-S reading 2 (1e-2) paper", ("MTMDD-VM", 0.4)] == pytest.approx(81.9)
    assert "RMSE-S reading 1 (1e-2) paper" not in t.index  # the paper's values are reading 2
    floors = pd.DataFrame([{"predictor": p, "setting": "-", "selected": True, "metric": m, "value": v}
                           for p, v in (("training mean", 0.9), ("ridge", 0.8))
                           for m, v in (("rmse_s_caffe", v), ("rmse_s", np.sqrt(2 * v)))])
    f = J.rmse_s_vs_floors(rows, floors)
    r2, r1 = F.READINGS["rmse_s_caffe"], F.READINGS["rmse_s"]
    assert f.loc["MDD-VM, lambda=1", r2] == pytest.approx((1.2 ** 2 + 1.21 ** 2) / 4)
    assert f.loc["MDD-VM, lambda=1", f"{r2}, worst seed"] == pytest.approx(1.21 ** 2 / 2)
    assert f.loc["MDD-VM, lambda=1", "paper (Table VII, reading 2)"] == pytest.approx(0.817)
    assert f.loc["floor: ridge", r2] == pytest.approx(0.8) and f.loc["floor: ridge", r1] == pytest.approx(np.sqrt(1.6))
    assert "floor: k-NN" not in f.index  # a floor not fitted is not shown
    # Table VII's column order (MTMDD-VM's lambdas, then MDD-VM), the floors last
    assert list(f.index) == ["MTMDD-VM, lambda=0.4", "MDD-VM, lambda=1", "floor: training mean", "floor: ridge"]
