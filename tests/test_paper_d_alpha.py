"""Paper D's task weight alpha: chosen on validation by the paper-reference rule, carried from D.03 to D.04-D.07."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from clickvision import results
from clickvision.experiments.paper_d import core as D

import paper_d_toys  # tests/paper_d_toys.py


def scripted_run(val_scores: dict, seed=0):
    """A run whose MTL fits are scripted: alpha -> validation score matrix (test scores unused)."""
    items, _ = paper_d_toys.toy_items(200, 0, seed, dim=8, key_prefix="")
    run = D.ImageRun(items, np.zeros((len(items.rows("train")), 3)), np.ones(len(items.rows("train"))))
    n_val = len(items.rows("val"))
    for a, s in val_scores.items():
        key = ("mtl", "uniform", a, 0, None, repr(None))
        run.fits[key] = {"val_mAP": float(a), "val_scores": s(n_val, items.y[items.rows("val")]),
                         "test_scores": None}
    return run, items.y[items.rows("val")]


def noise(k):
    return lambda n, y: np.random.default_rng(k).random(y.shape)


def test_reference_is_kept_unless_clearly_beaten_and_matches_an_independent_computation():
    # 0.5: the labels themselves plus a little noise (clearly better); 1.0, 1.5, 2.0: noise
    good = lambda n, y: y + 0.1 * np.random.default_rng(9).random(y.shape)  # noqa: E731
    run, y_va = scripted_run({0.5: good, 1.0: noise(1), 1.5: noise(2), 2.0: noise(3)})
    sel = D.alpha_selection(run, (0.5, 1.0, 1.5, 2.0))
    assert sel.reference == 1.5 and sel.value == 0.5
    keep = y_va.sum(1) > 0
    ap = {a: np.array([average_precision_score(t, s) for t, s in zip(y_va[keep], run.fits[
        ("mtl", "uniform", a, 0, None, repr(None))]["val_scores"][keep])]) for a in (0.5, 1.0, 1.5, 2.0)}
    for a in (0.5, 1.0, 2.0):
        d = ap[a] - ap[1.5]
        assert sel.table.loc[a, "mean_diff"] == pytest.approx(d.mean())
        assert sel.table.loc[a, "se"] == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)))
        assert sel.table.loc[a, "n_items"] == keep.sum()
    assert list(sel.table["val_mAP"]) == [0.5, 1.0, 1.5, 2.0]  # each alpha's own (scripted) validation mAP
    # a noise candidate cannot displace the reference: nothing beats it by a standard error
    run2, _ = scripted_run({1.0: noise(1), 2.0: noise(5)})
    sel2 = D.alpha_selection(run2, (1.0, 2.0))
    assert sel2.reference == 1.0  # the grid's nearest to 1.5; a tie goes to the first
    t = D.selection_table(sel2)
    assert list(t.columns) == ["alpha", "val_mAP", "mean_diff", "se", "n_items", "reference", "chosen"]
    assert t["chosen"].sum() == 1 and t.loc[t["alpha"] == 1.0, "reference"].item()
    with pytest.raises(ValueError, match="alphas"):
        D.alpha_selection(run, ())


def test_choose_alpha_rows_follow_the_selection():
    good = lambda n, y: y + 0.1 * np.random.default_rng(9).random(y.shape)  # noqa: E731
    run, _ = scripted_run({})
    mask = D.mask_labels(run.items.y[run.items.rows("train")], 0.5, "items", 0)
    mkey = hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()
    y_va = run.items.y[run.items.rows("val")]
    for a, s in ((0.5, noise(1)), (2.0, good)):
        run.fits[("mtl", "uniform", a, 0, mkey, repr(None))] = {"val_mAP": 0.0, "val_scores": s(0, y_va),
                                                                 "test_scores": None}
    alpha, rows = D.choose_alpha(run, 0.5, (0.5, 2.0))
    assert alpha == 2.0 and rows["label_ratio"].eq(0.5).all()
    assert rows.loc[rows["chosen"], "alpha"].item() == 2.0 and rows.loc[rows["reference"], "alpha"].item() == 2.0


def write_d03(path, rows):
    pd.DataFrame(rows).to_csv(path / "D.03-mtl-reconstruct.csv", index=False)


def test_selected_alpha_reads_d03s_latest_run_and_falls_back_to_the_paper(tmp_path):
    value, source = D.selected_alpha("default", results_dir=tmp_path)
    assert value == D.PAPER_ALPHA and "FALLBACK" in source
    base = {"experiment": "D.03-mtl-reconstruct", "profile": "default", "seed": 0}
    write_d03(tmp_path, [{**base, "run_id": "old", "metric": "alpha", "value": 2.0, "time": "2026-01-01T00:00:00"},
                         {**base, "run_id": "new", "metric": "alpha", "value": 1.0, "time": "2026-02-01T00:00:00"},
                         {**base, "run_id": "new", "metric": "gate_map", "value": 0.1, "time": "2026-02-01T00:00:00"}])
    value, source = D.selected_alpha("default", results_dir=tmp_path)
    assert value == 1.0 and "run new" in source and "validation, D.03" in source
    value, source = D.selected_alpha("smoke", results_dir=tmp_path)  # no smoke run: the default one, said so
    assert value == 1.0 and "no smoke-profile run" in source
    assert D.alpha_parameter(0.25, results_dir=tmp_path) == (
        0.25, "parameter alpha = 0.25 (overrides D.03's validation selection)")
    assert D.alpha_parameter(-1, results_dir=tmp_path)[0] == 1.0
    for bad in (0, -2, True, "1"):
        with pytest.raises(ValueError, match="parameter 'alpha'"):
            D.alpha_parameter(bad, results_dir=tmp_path)


@pytest.mark.parametrize("value", ["nan", "x"])
def test_a_malformed_alpha_row_names_the_file_and_metric(tmp_path, value):
    write_d03(tmp_path, [{"experiment": "D.03-mtl-reconstruct", "profile": "default", "seed": 0, "run_id": "r",
                          "metric": "alpha", "value": value, "time": "2026-01-01T00:00:00"}])
    with pytest.raises(ValueError, match=r"selected_alpha: .*D\.03-mtl-reconstruct\.csv.*'alpha'"):
        D.selected_alpha(results_dir=tmp_path)


def test_latest_run_names_a_file_without_run_columns(tmp_path):
    pd.DataFrame({"metric": ["alpha"], "value": [1.0]}).to_csv(tmp_path / "X.csv", index=False)
    with pytest.raises(ValueError, match=r"who: .*X\.csv lacks column\(s\) \['run_id', 'time'\]"):
        results.latest_run("X", "default", tmp_path, who="who")
    assert results.latest_run("missing", "default", tmp_path)[0].empty
