"""Paper A's cross-fitted source click predictions (#18 item 4): every source training row predicted by a
click predictor that did not train on it; validation / test rows and the target keep the full predictor's."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from clickvision.experiments.paper_a import claims as AC
from clickvision.experiments.paper_a import core as A
from clickvision.experiments.paper_a import train as T

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = T.HeadConfig(embedding="bifc", hidden=8, visual_hidden=4, epochs=2, recognizer_epochs=2, batch_size=16)
LOSS = T.ClickLossSpec(tau=0.0)


def _with_concepts(data, n_concepts):
    for d in (data.source, data.target):
        d.items = d.items.assign(concept=[f"c{i % n_concepts}" for i in range(len(d.items))])
    return data


def test_folds_cover_the_training_rows_once_and_keep_concepts_together(paper_a_synth):
    data = paper_a_synth(3, 20)
    s = data.source
    train = s.rows("train")
    fold = A.crossfit_folds(s, 5, seed=0)
    assert (fold[np.setdiff1d(np.arange(len(s.y)), train)] == -1).all()  # validation / test: no fold
    assert sorted(np.unique(fold[train])) == list(range(5))
    assert np.bincount(fold[train]).max() - np.bincount(fold[train]).min() <= 1  # KFold: balanced
    np.testing.assert_array_equal(fold, A.crossfit_folds(s, 5, seed=0))  # seeded
    assert not np.array_equal(fold, A.crossfit_folds(s, 5, seed=1))
    # with a concept column: every training image of a concept in one fold
    s = _with_concepts(paper_a_synth(3, 20), 12).source
    fold = A.crossfit_folds(s, 4, seed=0)
    train = s.rows("train")
    per_concept = pd.Series(fold[train]).groupby(s.items["concept"].to_numpy()[train]).nunique()
    assert (per_concept == 1).all() and sorted(np.unique(fold[train])) == list(range(4))
    with pytest.raises(ValueError, match="k must be an int >= 2"):
        A.crossfit_folds(s, 1)
    with pytest.raises(ValueError, match="cannot fill"):
        A.crossfit_folds(paper_a_synth(2, 4).source, 5)


class _ConstEmbedding(nn.Module):
    reads_map = False

    def __init__(self, value: float, k: int) -> None:
        super().__init__()
        self.value, self.k = value, k

    def forward(self, phi, omega=None):
        return torch.full((len(phi), self.k), self.value)


def test_every_training_row_comes_from_a_predictor_that_did_not_see_it(paper_a_synth, monkeypatch):
    """A fake trainer records the source training rows of each fit and returns a predictor whose
    output names the fit; the full predictor's predictions are a marker (-1)."""
    data = _with_concepts(paper_a_synth(3, 20), 12)
    seen, calls = {}, []

    def fake(d, cfg, loss, seed, kind=None, gd_steps=None):
        fit_id = float(len(calls))
        calls.append((cfg, loss, seed, kind))
        seen[fit_id] = set(d.source.rows("train"))
        assert (d.source.y == data.source.y).all() and d.target is data.target  # the same rows, relabelled only
        return SimpleNamespace(model=SimpleNamespace(embedding=_ConstEmbedding(fit_id, data.k), training=False,
                                                     eval=lambda: None, train=lambda mode=True: None))

    monkeypatch.setattr(A, "train_click_predictor", fake)
    full = np.full((len(data.source.y), data.k), -1.0, dtype=np.float32)
    v = A.crossfit_clicks(data, CFG, LOSS, 7, "bifc", k=3, full=full)
    assert calls == [(CFG, LOSS, 7, "bifc")] * 3  # the full predictor's config, loss, seed and kind
    train = data.source.rows("train")
    rest = np.setdiff1d(np.arange(len(data.source.y)), train)
    np.testing.assert_array_equal(v[rest], full[rest])  # validation / test keep the full predictor's
    used = v[train, 0]
    assert set(used) == set(seen)  # every fold predictor predicts some rows
    for row, fit_id in zip(train, used):
        assert row not in seen[fit_id]  # ... none of which it trained on
        assert (v[row] == fit_id).all()
    for fit_id, rows in seen.items():  # and it trained on every other fold's training rows
        assert rows == set(train[used != fit_id])
    assert (full == -1).all()  # the input is not modified


def test_a_recomputed_fold_and_the_full_predictor_rows(paper_a_synth):
    data = paper_a_synth(3, 20)
    full = T.predict_clicks(T.train_click_predictor(data, CFG, LOSS, 2, "bifc").model, data.source)
    v = A.crossfit_clicks(data, CFG, LOSS, 2, "bifc", k=3)  # trains the full predictor itself
    s = data.source
    rest = np.flatnonzero(s.split != "train")
    np.testing.assert_array_equal(v[rest], full[rest])
    fold = A.crossfit_folds(s, 3, seed=2)
    held = fold == 1
    split = np.where(held, "held out", s.split).astype(object)
    fit = T.train_click_predictor(replace(data, source=replace(s, split=split)), CFG, LOSS, 2, "bifc")
    np.testing.assert_array_equal(v[held], T.predict_clicks(fit.model, s)[held])
    assert not np.allclose(v[held], full[held])  # out of fold is not the in-sample prediction
    # each fold's fit is its own training under reuse_identical_fits (it reads other rows)
    with T.reuse_identical_fits():
        A.crossfit_clicks(data, CFG, LOSS, 2, "bifc", k=3)
        assert len(T._MEMO) == 4  # the full predictor and three fold predictors


def test_crossfit_zero_is_todays_rows_and_crossfit_adds_labelled_rows(paper_a_synth):
    data = paper_a_synth(3, 20)
    with T.torch_threads(1):
        before, _ = A.tdl_run(data, CFG, LOSS, 0, "fc", ("C", "V+C"))
        zero, _ = A.tdl_run(data, CFG, LOSS, 0, "fc", ("C", "V+C"), crossfit=0)
        both, extras = A.tdl_run(data, CFG, LOSS, 0, "fc", ("C", "V+C"), keep=True, crossfit=3)
        net = T.train_click_predictor(data, CFG, LOSS, 0, "fc").model
        plain, _, _ = A.predictor_rows(data, CFG, net, LOSS, 0, ("C", "V+C"))
    assert zero == before == plain
    assert not any(r["representation"].endswith(A.CROSSFIT) for r in zero)
    cf = [r for r in both if r["representation"].endswith(A.CROSSFIT)]
    assert [r for r in both if not r["representation"].endswith(A.CROSSFIT)] == zero  # in-sample rows unchanged
    assert {r["representation"] for r in cf} == {"C (cross-fitted)", "V+C (cross-fitted)"}
    # the target's predictions are the full predictor's: its rows are the in-sample ones, relabelled
    for rep in ("C", "V+C"):
        t_in = [{k: v for k, v in r.items() if k != "representation"} for r in zero
                if r["representation"] == rep and r["metric"].endswith("_t")]
        t_cf = [{k: v for k, v in r.items() if k != "representation"} for r in cf
                if r["representation"] == rep + A.CROSSFIT and r["metric"].endswith("_t")]
        assert t_cf == t_in and len(t_in) > 2
    # the source's cross-fitted rows: a recognizer on the cross-fitted predictions
    v_cf = extras["v_source_crossfit"]
    np.testing.assert_array_equal(v_cf, A.crossfit_clicks(data, CFG, LOSS, 0, "fc", 3))
    with T.torch_threads(1):
        acc = T.recognition_accuracy(data.source, CFG, v_cf, False, 0, len(data.classes), data.source_columns)
    got = {r["metric"]: r["value"] for r in cf if r["representation"] == "C (cross-fitted)" and "item" not in r}
    assert got["acc_s"] == acc["test"] and got["val_acc_s"] == acc["val"]


def test_baseline_claim_and_contrasts_read_the_cross_fitted_rows(paper_a_synth):
    data = paper_a_synth(4, 20)
    cfg = CFG.scaled(epochs=10, recognizer_epochs=20, recognizer_batch_size=16)  # enough to tell the two apart
    rows0, _ = A.tdl_baseline(data, cfg, [0, 1])
    rows, _ = A.tdl_baseline(data, cfg, [0, 1], crossfit=3)
    reps = set(rows["representation"])
    assert {"C (cross-fitted)", "V+C (cross-fitted)"} <= reps and not any(A.CROSSFIT in r for r in
                                                                          rows0["representation"])
    pd.testing.assert_frame_equal(rows[~rows["representation"].str.endswith(A.CROSSFIT)].reset_index(drop=True),
                                  rows0, check_exact=True)
    (claim, d), = AC.claims_tdl(rows, "C (cross-fitted)")
    (claim0, d0), = AC.claims_tdl(rows)
    assert claim.claim_id == claim0.claim_id == "IIIB-tdl-transfer-gap" and "cross-fitted" in claim.claim
    assert "cross-fitted" not in claim0.claim
    acc = rows[rows["metric"] == "acc_s"].groupby(["representation", "seed"])["value"].first()
    assert sorted(d.loc[d["method"] == "Acc-S", "value"]) == sorted(acc["C (cross-fitted)"])
    assert sorted(d0.loc[d0["method"] == "Acc-S", "value"]) == sorted(acc["C"])
    pd.testing.assert_frame_equal(d[d["method"] == "Acc-T"], d0[d0["method"] == "Acc-T"])
    table = A.crossfit_contrasts(rows)
    assert list(table.index) == ["C", "V+C"]
    for rep in ("C", "V+C"):
        r = table.loc[rep]
        assert r["Acc-S in-sample (%)"] == pytest.approx(100 * acc[rep].mean())
        assert r["Acc-S cross-fitted (%)"] == pytest.approx(100 * acc[rep + A.CROSSFIT].mean())
        assert r["difference (points)"] == pytest.approx(r["Acc-S cross-fitted (%)"] - r["Acc-S in-sample (%)"])
        assert r["difference (points)"] != 0
        assert r["90% CI low"] <= r["difference (points)"] <= r["90% CI high"]
        assert r["seeds"] == 2 and r["test images"] == len(data.source.rows("test"))
