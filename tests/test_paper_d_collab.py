"""Paper D's label models and experiment helpers (clickvision.models.collab,
clickvision.experiments.paper_d): shapes, triplet positives, label masks, training plumbing."""
import numpy as np
import pandas as pd
import pytest
import torch

from clickvision.experiments.paper_d import core as D
from clickvision.models import collab


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_task(n=240, d=12, c=4, cf_dim=5, seed=0):
    """Features whose first ``c`` dimensions decide the labels; CF vectors that know the labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = x[:, :c] + 0.3 * rng.standard_normal((n, c)) > 0.8
    y[~y.any(1), 0] = True
    q = (y @ rng.standard_normal((c, cf_dim)) + 0.1 * rng.standard_normal((n, cf_dim))).astype(np.float32)
    return x, y, q


def test_image_model_heads_and_shapes():
    m = collab.CollaborativeImageClassifier(12, 4, cf_dim=5, hidden=8).eval()
    logits, q = m(torch.randn(3, 12))
    assert logits.shape == (3, 4) and q.shape == (3, 5)
    m0 = collab.CollaborativeImageClassifier(12, 4).eval()
    assert m0(torch.randn(3, 12))[1] is None
    c2l = collab.CF2Label(65, 19).eval()
    assert c2l.net[1].out_features == 42 and c2l(torch.randn(2, 65)).shape == (2, 19)  # linspace(65, 19, 3)


def test_a_trainable_backbone_can_be_plugged_in():
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.AdaptiveAvgPool2d(1))
    m = collab.CollaborativeImageClassifier(6, 4, cf_dim=5, hidden=8, backbone=backbone)
    logits, q = m(torch.randn(2, 3, 16, 16))
    (logits.sum() + q.sum()).backward()
    assert backbone[0].weight.grad is not None


def test_nearest_cf_neighbour_is_the_nearest_other_item_with_a_vector():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((30, 4))
    has = np.ones(30, bool)
    has[[3, 7]] = False
    nn_ = collab.nearest_cf_neighbour(q, has)
    for i in range(30):
        if not has[i]:
            assert nn_[i] == -1
            continue
        d = np.linalg.norm(q - q[i], axis=1)
        d[i] = np.inf
        d[~has] = np.inf
        assert nn_[i] == np.argmin(d) and nn_[i] != i


def test_mask_labels_by_items_and_entries_and_nested_ratios():
    y = np.ones((2000, 5), bool)
    m_items = D.mask_labels(y, 0.3, "items", seed=1)
    assert np.all(m_items.all(1) | ~m_items.any(1))  # whole rows kept or dropped
    assert abs(m_items[:, 0].mean() - 0.3) < 0.04
    m_entries = D.mask_labels(y, 0.3, "entries", seed=1)
    assert abs(m_entries.mean() - 0.3) < 0.02 and not np.all(m_entries.all(1) | ~m_entries.any(1))
    small, large = D.mask_labels(y, 0.1, "items", 2), D.mask_labels(y, 0.5, "items", 2)
    assert np.all(large[small])  # what is kept at 0.1 is kept at 0.5
    with pytest.raises(ValueError, match="ratio"):
        D.mask_labels(y, 0.0)


@pytest.mark.parametrize("method", collab.METHODS)
def test_every_method_trains_and_beats_chance_on_a_toy_task(method):
    x, y, q = toy_task()
    tr, va = slice(0, 160), slice(160, 240)
    settings = collab.FitSettings(epochs=10, lr=0.01, hidden=16, batch_size=32, cf_epochs=2, device="cpu")
    model, hist = collab.fit_image_model(method, x[tr], y[tr], x[va], y[va], q=q[tr],
                                         cf_weights=np.ones(160), alpha=1.0, seed=0, settings=settings)
    val = hist.query("split == 'val' and name == 'mAP'")["value"]
    assert hist.attrs["best_value"] == pytest.approx(val.max())
    assert val.max() > y[va].mean() + 0.2  # far above the label prior (chance mAP)
    if method == "sequential":
        assert set(hist["stage"]) == {"cf", "label"}


@pytest.mark.parametrize("method", ["image_only", "mtl"])
def test_masked_labels_have_no_influence_on_training(method):
    """Flipping every masked label (whole rows and single entries) leaves the model unchanged."""
    x, y, q = toy_task()
    rng = np.random.default_rng(1)
    mask = rng.random(y.shape) < 0.7
    mask[::4] = False
    flipped = np.where(mask, y, ~y)
    s = collab.FitSettings(epochs=3, hidden=8, batch_size=32, patience=None, device="cpu")
    kw = dict(q=q[:160], cf_weights=np.ones(160), seed=0, settings=s)
    a, _ = collab.fit_image_model(method, x[:160], y[:160], x[160:], y[160:], mask[:160], **kw)
    b, _ = collab.fit_image_model(method, x[:160], flipped[:160], x[160:], y[160:], mask[:160], **kw)
    np.testing.assert_array_equal(collab.predict_scores(a, x[160:]), collab.predict_scores(b, x[160:]))


def test_out_of_fold_scores_never_score_an_item_in_sample():
    """Random labels: a CF2Label scoring its own training items memorises them, out-of-fold
    scores cannot (they stay near the label prior)."""
    from clickvision.metrics import average_precision_macro

    rng = np.random.default_rng(0)
    q = rng.standard_normal((120, 40)).astype(np.float32)
    y = rng.random((120, 3)) < 0.3
    y[~y.any(1), 0] = True
    oof = collab.out_of_fold_scores(q, y, n_folds=4, seed=0, epochs=40)
    np.testing.assert_array_equal(oof, collab.out_of_fold_scores(q, y, n_folds=4, seed=0, epochs=40))
    model, _ = collab.fit_cf2label(q, y, epochs=40, seed=0, patience=None)
    in_sample = average_precision_macro(y, collab.predict_scores(model, q))
    assert average_precision_macro(y, oof) < in_sample - 0.2
    pl = collab.out_of_fold_positive_loss(q, y, n_folds=4, seed=0, epochs=3)
    assert pl.shape == (120,) and np.all(pl > 0)


def test_summaries_show_the_papers_range_and_gain_without_significance():
    rng = np.random.default_rng(0)
    y = rng.random((200, 4)) < 0.3
    y[~y.any(1), 0] = True
    good = y + 0.5 * rng.random(y.shape)
    noise = rng.random(y.shape)
    out = D.bootstrap_table(y, {"base": noise, "better": good}, "base", n_resamples=50)
    assert list(out.columns) == ["method", "mean", "lo_paper", "hi_paper", "n_resamples", "gain_%"]
    row = out.set_index("method").loc["better"]
    assert row["gain_%"] > 0 and row["lo_paper"] <= row["mean"] <= row["hi_paper"]


def test_per_image_ap_matches_sklearn_samples_average_and_item_rows_are_tidy():
    from sklearn.metrics import average_precision_score

    from clickvision.metrics import average_precision_macro

    rng = np.random.default_rng(1)
    y = rng.random((40, 6)) < 0.3
    y[~y.any(1), 2] = True
    s = np.round(rng.random(y.shape), 1)  # ties
    ap = D.per_image_ap(y, s)
    oracle = [average_precision_score(y[i], s[i]) for i in range(len(y))]
    np.testing.assert_allclose(ap, oracle, atol=1e-12)
    assert ap.mean() == pytest.approx(average_precision_score(y, s, average="samples"))
    rows = D.item_ap_rows(y, {"a": {0: s, 1: s[::-1].copy()}, "b": {0: y * 1.0, 1: y * 1.0}}, label_ratio=0.5)
    assert list(rows.columns) == ["method", "seed", "item", "value", "label_ratio"] and len(rows) == 4 * 40
    assert rows.query("method == 'b'")["value"].eq(1.0).all()
    by_class = D.item_ap_rows(y, {"a": {0: s}}, per="class")
    assert by_class["value"].mean() == pytest.approx(average_precision_macro(y, s))  # the macro mAP itself
    assert set(by_class["item"]) == set(np.flatnonzero(y.any(0)))
    y[0] = False
    with pytest.raises(ValueError, match="no positive label"):
        D.per_image_ap(y, s)
    with pytest.raises(ValueError, match="per must"):
        D.item_ap_rows(y, {"a": {0: s}}, per="query")


def test_multi_hot_standardize_and_subsample():
    np.testing.assert_array_equal(D.multi_hot([["b"], ["a", "c", "z"], []], ["a", "b", "c"]),
                                  [[0, 1, 0], [1, 0, 1], [0, 0, 0]])
    q = np.arange(12.0).reshape(4, 3)
    z = D.standardize(q, np.array([0, 1]))
    np.testing.assert_allclose(z[[0, 1]].mean(0), 0, atol=1e-12)
    ev = pd.DataFrame({"user": [1, 1, 2, 3, 3, 3], "item": list("abcdef")})
    sub = D.subsample_users(ev, 2, seed=0)
    assert sub["user"].nunique() == 2 and set(sub["user"]) < {1, 2, 3}
    assert len(D.subsample_users(ev, 10)) == len(ev)


def test_bootstrap_map_matches_sklearn_on_every_resample():
    """The table's mAP is scikit-learn's macro average precision (classes with a positive) on the
    same 90% subsamples (paper D's protocol), averaged: an independent oracle for the whole evaluation path."""
    from sklearn.metrics import average_precision_score

    from clickvision import stats

    rng = np.random.default_rng(3)
    y = rng.random((60, 5)) < 0.25
    y[:, 4] = False
    y[0, 4] = True  # a rare class, absent from some resamples
    scores = np.round(rng.random(y.shape), 1)  # ties
    out = D.bootstrap_table(y, {"m": scores}, n_resamples=20, seed=7).set_index("method")
    oracle = []
    for rows in stats.paper_d_subsamples(len(y), 20, seed=7):
        keep = y[rows].any(0)
        oracle.append(np.mean([average_precision_score(y[rows][:, c], scores[rows][:, c])
                               for c in np.flatnonzero(keep)]))
    assert out.loc["m", "mean"] == pytest.approx(np.mean(oracle), abs=1e-12)


def toy_run(n=300, seed=0):
    x, y, q = toy_task(n=n, seed=seed)
    split = np.array(["train", "train", "train", "val", "test"])[np.arange(n) % 5]
    items = D.LabelledItems(np.arange(n), split, y, list("abcd"), x)
    tr = items.rows("train")
    return D.ImageRun(items, q[tr], np.full(len(tr), 3.0))


def test_label_paucity_averages_seeds_and_keeps_per_image_scores():
    run = toy_run()
    s = collab.FitSettings(epochs=3, hidden=8, batch_size=32, patience=None, device="cpu")
    summary, per_seed = D.label_paucity(run, (0.2, 1.0), 1.0, seeds=(0, 1), settings=s, n_resamples=10)
    assert len(per_seed) == 4 and set(per_seed["seed"]) == {0, 1}
    assert set(summary["method"]) == {"Image-only", "MTL-reconstruct uniform"}
    np.testing.assert_allclose(per_seed["gain_%"], 100 * (per_seed["MTL-reconstruct uniform"] - per_seed["Image-only"])
                               / per_seed["Image-only"])
    assert len(run.fits) == 8  # 2 ratios x 2 seeds x 2 methods, memoised on the run
    items = summary.attrs["items"]  # per-image AP: ratio x method x seed x test image
    n_test = len(run.items.rows("test"))
    assert len(items) == 2 * 2 * 2 * n_test and items["value"].between(0, 1).all()
    one = items.query("label_ratio == 1.0 and method == 'Image-only' and seed == 0")["value"].to_numpy()
    mask = D.mask_labels(run.items.y[run.items.rows("train")], 1.0, "items", 0)
    memo = D.fit_and_score(run, "image_only", "uniform", 1.0, 0, mask, s)  # memoised: the same fit
    np.testing.assert_allclose(one, D.per_image_ap(run.items.y[run.items.rows("test")], memo["test_scores"]))
    # the claims engine takes these rows as they are: a paired design over seeds and images
    from clickvision import claims
    j = claims.judge(claims.Claim("D", "t", "t", "direction", arms=("MTL-reconstruct uniform", "Image-only")),
                     items[items["label_ratio"] == 0.2])
    assert j.n_seeds == 2 and j.n_items == n_test and j.level == "item"
