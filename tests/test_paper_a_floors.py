"""Paper A's trivial click predictors (A.02's RMSE-S floors) and click_metrics' two RMSE-S readings."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clickvision import metrics as M
from clickvision.experiments.paper_a import floors as F
from clickvision.experiments.paper_a.data import DomainData
from clickvision.experiments.paper_a.train import click_metrics


def domain(phi: np.ndarray, clicks: np.ndarray, split: np.ndarray) -> DomainData:
    n = len(phi)
    items = pd.DataFrame({"key": [f"i{i}" for i in range(n)]})
    return DomainData("source", items, np.zeros(n, np.int64), np.asarray(split), phi.astype(np.float32), None,
                      clicks.astype(np.float32), clicks.sum(1) > 0)


def linear_domain(n: int = 300, c: int = 6, k: int = 12, seed: int = 0) -> DomainData:
    """Clicks an exact (non-negative) linear function of the features."""
    rng = np.random.default_rng(seed)
    phi = rng.random((n, c))
    clicks = phi @ rng.random((c, k))
    split = np.array(["train", "train", "train", "val", "test"] * (n // 5))
    return domain(phi, clicks, split)


def _selected(rows: pd.DataFrame, predictor: str, metric: str) -> float:
    r = rows[(rows["predictor"] == predictor) & rows["selected"] & (rows["metric"] == metric)]
    assert len(r) == 1
    return float(r["value"].iloc[0])


def test_click_metrics_reports_both_readings():
    rng = np.random.default_rng(3)
    v, v_hat = rng.random((20, 8)), rng.normal(size=(20, 8))
    v[0] = 0.0  # a zero truth: dropped from both readings
    got = click_metrics(v, v_hat, v.sum(1) > 0)
    assert got["rmse_s"] == pytest.approx(M.rmse_normalized(v[1:], v_hat[1:]))
    assert got["rmse_s_caffe"] == pytest.approx(got["rmse_s"] ** 2 / 2)
    with pytest.raises(ValueError, match="valid selects no row"):
        click_metrics(v, v_hat, np.zeros(20, bool))


def test_click_metrics_binarised_eq9_and_word_rankings_by_hand():
    """Eq. (9) on the set the position loss trains (BN(v_hat) > B/2), the raw count, precision@|A| and AP.

    Columns of v_hat over the 4 valid images: (6, 3, 6, 3) and (-1, 2, 2, -1) batch-normalise to about
    (1, -1, 1, -1) and (-1, 1, 1, -1); (2, 0, 0, 3) to (0.577, -0.962, -0.962, 1.347). A fifth image with a
    zero truth is dropped before the batch statistics (its huge prediction would move them)."""
    v = np.array([[1, 0, 0], [0, 2, 0], [1, 1, 0], [0, 0, 3], [0, 0, 0]], dtype=float)
    v_hat = np.array([[6, -1, 2], [3, 2, 0], [6, 2, 0], [3, -1, 3], [900, 900, 900]], dtype=float)
    got = click_metrics(v, v_hat, v.sum(1) > 0, bandwidth=0.01)
    # binarised A_hat: {0, 2}, {1}, {0, 1}, {2} against A: {0}, {1}, {0, 1}, {2} -> errors 1, 0, 0, 0
    assert got["position_error_bin"] == pytest.approx(0.25)
    assert got["pred_words_bin"] == pytest.approx(1.5) and got["true_words"] == pytest.approx(1.25)
    # raw A_hat = v_hat > 0: {0, 2}, {0, 1}, {0, 1}, {0, 2} -> errors 1, 1, 0, 1
    assert got["position_error"] == pytest.approx(0.75) and got["pred_words"] == pytest.approx(2.0)
    # precision@|A| on v_hat: 1, 0 (word 0 beats word 1), 1, 1/2 (words 0 and 2 tie for the one place)
    assert got["precision_at_a"] == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    # ranked by BN(v_hat) instead every image's clicked words come first
    assert got["precision_at_a_bn"] == pytest.approx(1.0)
    # AP on v_hat: 1, 1/2, 1, 1/2 (the tie at the top: precision 1/2 at the end of the tie group)
    assert got["word_ap"] == pytest.approx(0.75)
    # B/2 = 0.7 drops image 0's word 2 (z = 0.577) from A_hat: no binarised error left
    assert click_metrics(v, v_hat, v.sum(1) > 0, bandwidth=1.4)["position_error_bin"] == pytest.approx(0.0)


def test_training_mean_floor_by_hand():
    # training truths point along e1 and e2: the mean of N'(v) is (.5, .5), direction (1, 1)/sqrt(2);
    # a test truth along e1 then has cos = 1/sqrt(2): reading 2 = 1 - 1/sqrt(2), reading 1 = sqrt(2 - sqrt(2))
    # (two val and two test rows, all along e1: eq. (9)'s Ratio batch-normalises, so it needs two)
    phi = np.arange(6.0)[:, None]
    clicks = np.array([[5.0, 0.0], [0.0, 2.0], [1.0, 0.0], [4.0, 0.0], [3.0, 0.0], [0.5, 0.0]])
    split = np.array(["train", "train", "val", "val", "test", "test"])
    rows = F.click_floors(domain(phi, clicks, split), ks=(1, 2), alphas=(1.0,))
    assert _selected(rows, "training mean", "rmse_s_caffe") == pytest.approx(1 - 1 / math.sqrt(2))
    assert _selected(rows, "training mean", "rmse_s") == pytest.approx(math.sqrt(2 - math.sqrt(2)))
    assert _selected(rows, "training mean", "val_rmse_s_caffe") == pytest.approx(1 - 1 / math.sqrt(2))
    # fitting the raw vectors instead: mean (2.5, 1), cos with e1 = 2.5 / sqrt(7.25)
    raw = F.click_floors(domain(phi, clicks, split), ks=(1,), alphas=(1.0,),
                         normalize_target=False)
    assert _selected(raw, "training mean", "rmse_s_caffe") == pytest.approx(1 - 2.5 / math.sqrt(7.25))


def test_ridge_beats_the_mean_on_a_linear_target():
    d = linear_domain()
    rows = F.click_floors(d, ks=(1, 5), alphas=(1e-6, 1e-3, 1.0))
    for metric in ("rmse_s", "rmse_s_caffe"):
        assert _selected(rows, "ridge", metric) < 0.5 * _selected(rows, "training mean", metric)
    # on the raw vectors the linear map is exact: ridge with a tiny alpha recovers it
    raw = F.click_floors(d, ks=(1,), alphas=(1e-6, 1.0), normalize_target=False)
    assert _selected(raw, "ridge", "rmse_s") < 1e-3
    assert set(raw.loc[raw["selected"] & (raw["predictor"] == "ridge"), "setting"]) == {"alpha=1e-06"}


def test_grid_point_kept_is_the_lowest_validation_rmse():
    rows = F.click_floors(linear_domain(seed=1), ks=(1, 3, 10), alphas=(0.01, 10.0), knn_metrics=("euclidean",))
    val = rows[rows["metric"] == "val_rmse_s"]
    for predictor in F.FLOORS:
        sub = val[val["predictor"] == predictor]
        assert sub.loc[sub["selected"], "value"].item() == sub["value"].min()
    assert set(rows["predictor"]) == set(F.FLOORS)
    # only the kept grid point has test metrics
    test = rows[rows["metric"] == "rmse_s"]
    assert len(test) == 3 and test["selected"].all()


@pytest.mark.parametrize("kwargs, match", [
    ({"ks": ()}, "ks is empty"), ({"ks": (0,)}, "ks must"), ({"ks": (1000,)}, "ks must"), ({"ks": (2.5,)}, "ks must"),
    ({"alphas": ()}, "alphas is empty"), ({"alphas": (0.0,)}, "alphas must"), ({"alphas": (float("nan"),)}, "alphas"),
    ({"knn_metrics": ("manhattan",)}, "knn_metrics"), ({"knn_metrics": ()}, "knn_metrics"),
])
def test_bad_grids_raise_naming_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.click_floors(linear_domain(n=50), **{"ks": (1, 5), **kwargs})


def test_empty_rows_raise():
    d = linear_domain(n=50)
    d.clicks[d.split == "test"] = 0.0
    d.valid[:] = d.clicks.sum(1) > 0
    with pytest.raises(ValueError, match="no test row has a non-zero click truth"):
        F.click_floors(d)
    d = linear_domain(n=50)
    d.split[d.split == "val"] = "train"
    with pytest.raises(ValueError, match="no rows in split 'val'"):
        F.click_floors(d)
    d.clicks = None
    with pytest.raises(ValueError, match="no click features"):
        F.click_floors(d)


def test_rmse_s_table_layout():
    floors = F.click_floors(linear_domain(), ks=(1, 5), alphas=(1.0,))
    tdl = pd.DataFrame([{"representation": "click", "seed": s, "metric": m, "value": v}
                        for s in (0, 1) for m, v in (("rmse_s", 1.2 + s / 10), ("rmse_s_caffe", 0.72 + s / 10),
                                                     ("position_error", 500.0), ("ratio", 0.1))])
    t = F.rmse_s_table(tdl, floors)
    r1, r2 = F.READINGS.values()
    assert t.loc["TDL click predictor, mean of 2 seeds", r1] == pytest.approx(1.25)
    assert t.loc["TDL click predictor, seed 1", r2] == pytest.approx(0.82)
    assert t.loc["floor: ridge", r2] == pytest.approx(_selected(floors, "ridge", "rmse_s_caffe"))
    # the paper's Table VII, labelled as the paper's: 81.0 - 87.0 (x 1e-2) trained, 100.0 - 101.0 untrained
    assert t.loc["paper: trained click heads (lambda > 0)", "paper (Table VII)"] == "0.810 - 0.870"
    assert t.loc["paper: untrained click head (lambda = 0)", "paper (Table VII)"] == "1.000 - 1.010"
    assert np.isnan(t.loc["paper: untrained click head (lambda = 0)", r1])
    with pytest.raises(ValueError, match="no click rows"):
        F.rmse_s_table(tdl[tdl["metric"] == "ratio"], floors)
