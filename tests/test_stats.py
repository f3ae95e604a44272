"""clickvision.stats: resampling, paired comparisons, intervals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from clickvision import stats as S
from clickvision.metrics import average_precision_macro


def test_bootstrap_indices_default_is_the_classic_bootstrap():
    idx = S.bootstrap_indices(100, seed=0)  # all rows, with replacement
    assert idx.shape == (1000, 100)
    assert all(len(np.unique(row)) < 100 for row in idx[:20])  # repeats in every resample
    sub = S.bootstrap_indices(100, 5, fraction=0.9, seed=0)  # a fraction alone still replaces
    assert sub.shape == (5, 90) and any(len(np.unique(row)) < 90 for row in sub)


def test_paper_d_subsamples_are_90_percent_without_replacement():
    idx = S.paper_d_subsamples(100, n_resamples=50, seed=3)
    assert np.array_equal(idx, S.bootstrap_indices(100, 50, 0.9, seed=3, replace=False))
    assert idx.shape == (50, 90) and idx.dtype.kind == "i"
    assert all(len(np.unique(row)) == 90 for row in idx)  # no row drawn twice
    assert idx.min() >= 0 and idx.max() < 100
    assert len({tuple(row) for row in idx}) > 1  # resamples differ


def test_bootstrap_indices_deterministic_by_seed():
    a = S.bootstrap_indices(200, 20, 0.9, seed=0)
    assert np.array_equal(a, S.bootstrap_indices(200, 20, 0.9, seed=0))
    assert not np.array_equal(a, S.bootstrap_indices(200, 20, 0.9, seed=1))


def test_bootstrap_indices_full_fraction_replaces():
    idx = S.bootstrap_indices(100, 10, fraction=1.0, seed=0)
    assert idx.shape == (10, 100)
    assert any(len(np.unique(row)) < 100 for row in idx)  # with replacement: repeats
    rep = S.bootstrap_indices(100, 10, fraction=0.5, seed=0, replace=True)
    assert rep.shape == (10, 50)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": 0}, "n must"), ({"n": 10, "fraction": 0.0}, "fraction"),
     ({"n": 10, "n_resamples": 0}, "n_resamples"),
     ({"n": 10, "fraction": 1.0, "replace": False}, "nothing is resampled")],
)
def test_bootstrap_indices_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S.bootstrap_indices(**kwargs)


def test_paper_d_range_is_about_a_third_of_the_bootstrap_interval():
    """Why the paper's protocol decides no claim: sd of a 90% subsample mean without replacement
    = sqrt(0.1 / 0.9) = 1/3 of the bootstrap mean's sd (finite-population correction)."""
    v = np.random.default_rng(0).standard_normal(500)
    sub = v[S.paper_d_subsamples(500, 4000, seed=1)].mean(1).std()
    boot = v[S.bootstrap_indices(500, 4000, seed=1)].mean(1).std()
    assert sub / boot == pytest.approx(1 / 3, rel=0.08)


def test_bootstrap_metric_uses_identical_resamples_for_every_method():
    y = np.arange(30)
    seen: dict[str, list[np.ndarray]] = {"a": [], "b": []}

    def record(y_sub, s_sub):
        seen[str(s_sub[0])[0]].append(y_sub.copy())  # method from its scores' first letter
        return float(y_sub.sum())

    idx = S.bootstrap_indices(30, 5, 0.9, seed=0)
    df = S.bootstrap_metric(record, y, {"a": np.full(30, "a"), "b": np.full(30, "b")}, idx)
    assert list(df.columns) == ["method", "resample", "value"] and len(df) == 10
    for r in range(5):
        assert np.array_equal(seen["a"][r], seen["b"][r])
        assert np.array_equal(seen["a"][r], y[idx[r]])
    wide = df.pivot(index="resample", columns="method", values="value")
    assert np.array_equal(wide["a"], wide["b"])


def test_bootstrap_metric_with_map_and_errors():
    rng = np.random.default_rng(0)
    y = (rng.random((80, 4)) < 0.3).astype(int)
    good, bad = y + rng.normal(0, 0.3, y.shape), rng.random(y.shape)
    idx = S.bootstrap_indices(80, 10, 0.9, seed=0)
    df = S.bootstrap_metric(average_precision_macro, y, {"good": good, "bad": bad}, idx)
    first = df[(df["method"] == "good") & (df["resample"] == 0)]["value"].item()
    assert first == pytest.approx(average_precision_macro(y[idx[0]], good[idx[0]]))
    summary = S.summarize_bootstrap(df).set_index("method")
    assert summary.loc["good", "mean"] > summary.loc["bad", "mean"]
    assert (summary["lo"] <= summary["mean"]).all() and (summary["mean"] <= summary["hi"]).all()
    with pytest.raises(ValueError, match="scores_by_method\\['bad'\\] has 79 rows"):
        S.bootstrap_metric(average_precision_macro, y, {"bad": bad[:79]}, idx)
    with pytest.raises(ValueError, match="indices must lie"):
        S.bootstrap_metric(average_precision_macro, y, {"good": good}, idx + 80)
    with pytest.raises(ValueError, match="scores_by_method is empty"):
        S.bootstrap_metric(average_precision_macro, y, {}, idx)


def test_summarize_bootstrap_hand_values():
    df = pd.DataFrame({"method": ["m"] * 5, "resample": range(5), "value": [1.0, 2, 3, 4, 5]})
    row = S.summarize_bootstrap(df, ci=0.5).iloc[0]
    assert (row["mean"], row["lo"], row["hi"], row["n_resamples"]) == (3.0, 2.0, 4.0, 5)
    with pytest.raises(ValueError, match="ci must"):
        S.summarize_bootstrap(df, ci=90)


def _two_methods(diff: np.ndarray) -> pd.DataFrame:
    base = np.linspace(0.4, 0.6, len(diff))
    return pd.DataFrame({
        "method": ["a"] * len(diff) + ["b"] * len(diff),
        "resample": list(range(len(diff))) * 2,
        "value": np.concatenate([base + diff, base]),
    })


def test_paired_bootstrap_test_constant_gap():
    res = S.paired_bootstrap_test(_two_methods(np.full(50, 0.1)), "a", "b")
    assert res["mean_diff"] == pytest.approx(0.1)
    assert res["lo"] == pytest.approx(0.1) and res["hi"] == pytest.approx(0.1)
    assert res["p_value"] == pytest.approx(2 / 51)  # the floor for 50 resamples
    assert np.isnan(res["t_p_value"])  # zero-variance differences: t undefined


def test_paired_bootstrap_test_pairs_by_resample_id():
    rng = np.random.default_rng(0)
    df = _two_methods(rng.normal(0.0, 0.05, 50))
    res = S.paired_bootstrap_test(df, "a", "b")
    shuffled = S.paired_bootstrap_test(df.sample(frac=1.0, random_state=1), "a", "b")
    assert res == pytest.approx(shuffled)
    wide = df.pivot(index="resample", columns="method", values="value")
    assert res["t_p_value"] == pytest.approx(ttest_rel(wide["a"], wide["b"]).pvalue)
    assert res["lo"] < 0 < res["hi"] and res["p_value"] > 0.1
    with pytest.raises(ValueError, match="method 'c'"):
        S.paired_bootstrap_test(df, "a", "c")
    with pytest.raises(ValueError, match="same resamples"):
        S.paired_bootstrap_test(df[~((df["method"] == "b") & (df["resample"] == 3))], "a", "b")


def test_bootstrap_ci():
    assert S.bootstrap_ci([2.0] * 10) == (2.0, 2.0, 2.0)
    values = np.random.default_rng(0).normal(1.0, 1.0, 400)
    mean, lo, hi = S.bootstrap_ci(values, n_resamples=2000, ci=0.9, seed=0)
    assert mean == pytest.approx(values.mean()) and lo < mean < hi
    # normal theory: half width 1.645 sd / sqrt(n)
    assert (hi - lo) / 2 == pytest.approx(1.645 * values.std() / 20, rel=0.15)
    assert S.bootstrap_ci(values, seed=5) == S.bootstrap_ci(values, seed=5)
    with pytest.raises(ValueError, match="values must be a non-empty"):
        S.bootstrap_ci([])
    with pytest.raises(ValueError, match="NaN"):
        S.bootstrap_ci([1.0, np.nan])


def test_paired_query_test():
    rng = np.random.default_rng(0)
    b = rng.random(100)
    a = b + 0.05 + rng.normal(0, 0.02, 100)
    res = S.paired_query_test(a, b)
    assert res["mean_diff"] == pytest.approx(np.mean(a - b))
    assert res["t_p_value"] == pytest.approx(ttest_rel(a, b).pvalue) and res["t_p_value"] < 1e-10
    assert res["lo"] > 0 and res["p_value"] == pytest.approx(2 / 1001)
    with pytest.raises(ValueError, match="values_a and values_b"):
        S.paired_query_test(a, b[:50])
