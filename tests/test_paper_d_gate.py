"""Paper D's auxiliary-target checks: EASE (against a hand-computed case and a per-column ridge
oracle), the information gate, the density calibration, the CF fit log, extra unlabelled rows
and the positive control's plumbing."""
import numpy as np
import pytest
import scipy.sparse as sp
from clickvision.experiments.paper_d import core as D
from clickvision.models import cf, collab

import paper_d_toys  # tests/paper_d_toys.py

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_ease_matches_a_hand_computed_case():
    # X = [[1, 1], [1, 0]], lambda 1: G + I = [[3, 1], [1, 2]], P = [[2, -1], [-1, 3]] / 5,
    # B_01 = -P_01 / P_11 = 1/3, B_10 = -P_10 / P_00 = 1/2 (= the one-variable ridge x0.x1 / (x_j.x_j + 1))
    m = cf.EASE(sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0]])), lam=1.0)
    np.testing.assert_allclose(m.weights.numpy(), [[0.0, 1 / 3], [1 / 2, 0.0]], atol=1e-6)
    np.testing.assert_allclose(m.score_users(sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0]])), np.array([1])),
                               [[0.0, 1 / 3]], atol=1e-6)


def test_ease_equals_a_ridge_regression_per_column():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 7)) < 0.3).astype(np.float64)
    lam = 2.5
    m = cf.EASE(sp.csr_matrix(x), lam)
    for j in range(x.shape[1]):
        others = np.delete(np.arange(x.shape[1]), j)
        a = x[:, others]
        ridge = np.linalg.solve(a.T @ a + lam * np.eye(len(others)), a.T @ x[:, j])  # independent oracle
        np.testing.assert_allclose(m.weights.numpy()[others, j], ridge, atol=1e-4)
        assert m.weights.numpy()[j, j] == 0.0
    q = m.item_vectors(k=3)
    assert q.shape == (7, 4)
    np.testing.assert_allclose(q[:, -1], np.log1p(x.sum(0)), rtol=1e-6)
    with pytest.raises(ValueError, match="lam"):
        cf.EASE(sp.csr_matrix(x), 0.0)


def test_fit_ease_chooses_lambda_on_validation_and_logs_it():
    rng = np.random.default_rng(1)
    taste = rng.integers(0, 3, 200)
    x = sp.csr_matrix(((rng.random((200, 30)) < 0.05) | ((np.arange(30) % 3)[None, :] == taste[:, None])
                       & (rng.random((200, 30)) < 0.5)).astype(np.float32))
    train, val = cf.split_heldout(x, 0.2, 0)
    model, table = cf.fit_ease(train, (1.0, 10.0, 1000.0), val=val, max_val_users=100)
    assert list(table["lam"]) == [1.0, 10.0, 1000.0]
    assert model.lam == table.loc[table["auc"].idxmax(), "lam"] == table.attrs["best_lam"]
    log = D.fit_log("ease", table)
    assert log["lam"] == model.lam and log["best_val_auc"] == pytest.approx(table["auc"].max())
    with pytest.raises(ValueError, match="model must be one of"):
        D.fit_cf("als", train, val, D.CFSettings())


def test_fit_log_reports_the_restored_epoch_and_the_kl():
    rng = np.random.default_rng(2)
    x = sp.csr_matrix((rng.random((120, 25)) < 0.15).astype(np.float32))
    train, val = cf.split_heldout(x, 0.2, 0)
    s = D.CFSettings(vae_epochs=4, vae_hidden=8, vae_latent=4, patience=6, min_delta=0.0, device="cpu")
    _, hist = D.fit_cf("vae", train, val, s, 0)
    log = D.fit_log("vae", hist)
    val_auc = hist[(hist["split"] == "val") & (hist["name"] == "auc")].groupby("epoch")["value"].last()
    assert log["best_epoch"] == int(val_auc.idxmax()) and log["stopped_epoch"] == int(hist["epoch"].max())
    assert log["best_val_auc"] == pytest.approx(val_auc.max())
    assert np.isfinite(log["kl_best_epoch"]) and log["kl_best_epoch"] >= 0


def test_information_gate_opens_on_an_informative_target_only():
    rng = np.random.default_rng(3)
    y = rng.random((400, 6)) < 0.15
    y[~y.any(1), 0] = True
    informative = y @ rng.standard_normal((6, 5)) + 0.3 * rng.standard_normal((400, 5))
    g = D.information_gate(informative, y, epochs=15, n_resamples=200)
    assert g["prior"] == pytest.approx(y.mean(0).mean())
    assert g["open"] and g["diff_lo"] > 0 and g["lo"] <= g["map"] <= g["hi"] and g["ratio"] > 1.5
    assert g["scores"].shape == y.shape
    from sklearn.metrics import (
        average_precision_score,  # oracle of the gate's mAP (macro over classes)
    )
    assert g["map"] == pytest.approx(average_precision_score(y, g["scores"], average="macro"), abs=1e-9)
    noise = D.information_gate(rng.standard_normal((400, 5)), y, epochs=15, n_resamples=200)
    assert noise["map"] < g["map"] and noise["diff_lo"] < 0.05
    assert "OPEN" in D.gate_line(g) and "prior" in D.gate_line(noise)
    with pytest.raises(ValueError, match="equal rows"):
        D.information_gate(informative[:10], y)


def test_density_calibration_matches_paper_d_table2():
    toys = D.paper_density("Toys")
    assert toys["events_per_user"] == pytest.approx(167_597 / 19_412)
    assert toys["events_per_item"] == pytest.approx(167_597 / 11_924)
    cfg = D.simulation_config(0.5, "Toys", n_items=5000)
    # the simulator draws per_item / density users with density * n_items events each on average
    assert cfg.interactions_per_item / cfg.density / 5000 * toys["events_per_user"] == pytest.approx(
        toys["events_per_item"])
    assert cfg.density * 5000 == pytest.approx(toys["events_per_user"])
    assert D.simulation_config(0.3).label_alignment == 0.3
    with pytest.raises(ValueError, match="dataset must be one of"):
        D.paper_density("Books")
    with pytest.raises(ValueError, match="n_items"):
        D.simulation_config(0.5, "Toys")


def toy_items(n=300, n_extra=60, seed=0):
    items, rng = paper_d_toys.toy_items(n, n_extra, seed, dim=12, key_prefix="")
    return items, rng


def test_unlabelled_rows_take_part_without_labels_and_test_items_stay_out():
    items, rng = toy_items()
    outside = set(items.keys_outside("test"))
    assert not outside & set(items.keys[items.rows("test")]) and "u1" not in outside and "u0" in outside
    tr, extra = items.rows("train"), items.unlabelled_rows("train")
    n_rows = len(tr) + len(extra)
    q = rng.standard_normal((n_rows, 5))
    run = D.ImageRun(items, q, np.full(n_rows, 3.0), x_extra=items.unlabelled_x[extra])
    s = collab.FitSettings(epochs=2, hidden=8, batch_size=64, patience=None, device="cpu")
    out = D.fit_and_score(run, "mtl", "uniform", 1.0, 0, settings=s)
    assert out["test_scores"].shape == (len(items.rows("test")), 4)
    with pytest.raises(ValueError, match="target must be"):
        D.target_run(run, q[:10])


def test_positive_control_gates_every_target_and_shares_image_only():
    items, rng = toy_items()
    tr, extra = items.rows("train"), items.unlabelled_rows("train")
    factors = np.vstack([items.y[tr].astype(float) @ rng.standard_normal((4, 6)),
                         rng.standard_normal((len(extra), 6))])
    n_rows = len(factors)
    run = D.ImageRun(items, rng.standard_normal((n_rows, 5)), np.full(n_rows, 3.0), x_extra=items.unlabelled_x[extra],
                     gate=D.information_gate(rng.standard_normal((len(tr), 5)), items.y[tr], epochs=5,
                                             n_resamples=50),
                     factors=factors)
    s = collab.FitSettings(epochs=2, hidden=8, batch_size=64, patience=None, device="cpu")
    summary, rows = D.positive_control(run, (2.0,), alphas=(0.5, 1.0), seeds=(0, 1), settings=s, cf2label_epochs=5)
    assert list(summary["target"]) == ["CF vectors", "true factors", "true factors + noise sd 2"]
    assert summary.loc[1, "gate_mAP"] > summary.loc[2, "gate_mAP"]  # noise removes information
    assert summary.loc[1, "gate_open"] and summary["alpha"].isin([0.5, 1.0]).all()
    assert set(rows["method"]) == {"Image-only", *summary["target"]} and set(rows["seed"]) == {0, 1}
    assert rows.groupby("method").size().nunique() == 1
    run.factors = None
    with pytest.raises(ValueError, match="no simulator factors"):
        D.positive_control(run)


def test_gaussianize_keeps_each_columns_order_and_bounds_heavy_tails():
    rng = np.random.default_rng(4)
    q = rng.standard_t(1.5, size=(500, 3))  # heavy tails
    q[0, 0] = 1e4
    g = D.gaussianize(q, np.arange(400))
    for c in range(3):  # a monotone map of each column, fitted on the first 400 rows
        order = np.argsort(q[:400, c])
        assert np.all(np.diff(g[:400, c][order]) >= 0)
    assert np.abs(g).max() < 6 and abs(g[:400].mean()) < 0.05 and abs(g[:400].std() - 1) < 0.1
    with pytest.raises(ValueError, match="at least 2 rows"):
        D.gaussianize(q, np.arange(1))
