"""Paper A Fig. 13/14 samplers: nested class subsets, ceil(alpha n_k) fractions, k shots."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clickvision.data import samplers as S
from clickvision.data.splits import grouped_stratified_split, sample_fraction


def _frame(n_classes: int = 5, vendors=("google", "twitter"), seed: int = 1) -> pd.DataFrame:
    """A split frame like the emoji's: concepts of 9..30 per class, each drawn by every vendor."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_classes):
        for k in range(int(rng.integers(9, 31))):
            for v in vendors:
                rows.append({"key": f"{v}:{c}-{k}", "label": f"class{c}", "concept": f"c{c}-{k}", "domain": v})
    df = pd.DataFrame(rows)
    df["split"] = grouped_stratified_split(df.label, df.concept, seed=0)
    return df


def _per_class(df: pd.DataFrame, mask: np.ndarray, split: str = "train", unit: str = "concept") -> pd.Series:
    kept = df[mask & (df.split == split).to_numpy()]
    return kept.groupby("label")[unit].nunique()


def test_scaled_subset_sizes():
    assert S.scaled_subset_sizes(129) == [30, 60, 90, 120, 129]
    assert S.scaled_subset_sizes(40) == [9, 19, 28, 37, 40]  # 30/129*40 = 9.3, 18.6, 27.9, 37.2
    assert S.scaled_subset_sizes(3) == [1, 2, 3]  # 0.7 -> 1 (at least one), collisions kept once
    for bad in (0, -2, 2.5):
        with pytest.raises(ValueError, match="n_classes"):
            S.scaled_subset_sizes(bad)
    with pytest.raises(ValueError, match="paper_sizes"):
        S.scaled_subset_sizes(40, paper_sizes=(30, 200))


def test_category_subsets_nested_seeded_independent():
    classes = [f"k{i:02d}" for i in range(40)]
    sizes = S.scaled_subset_sizes(40)
    draws = S.category_subsets(classes, sizes, n_draws=4, seed=3)
    assert len(draws) == 4
    for d in draws:
        assert [len(d[s]) for s in sizes] == sizes
        for small, large in zip(sizes[:-1], sizes[1:]):
            assert set(d[small]) < set(d[large])  # nested, strictly
        assert set(d[40]) == set(classes)
    assert len({tuple(d[9]) for d in draws}) > 1  # independent draws differ
    assert draws == S.category_subsets(classes, sizes, n_draws=4, seed=3)  # seeded
    assert draws[:2] == S.category_subsets(classes, sizes, n_draws=2, seed=3)  # draw i independent of n_draws
    assert draws[0][9] != S.category_subsets(classes, sizes, n_draws=1, seed=4)[0][9]
    with pytest.raises(ValueError, match="sizes"):
        S.category_subsets(classes, [0, 9])


def test_class_mask():
    df = _frame()
    m = S.class_mask(df, ["class1", "class3"])
    assert set(df.label[m]) == {"class1", "class3"} and m.sum() == df.label.isin(["class1", "class3"]).sum()
    with pytest.raises(ValueError, match="class9"):
        S.class_mask(df, ["class1", "class9"])


@pytest.mark.parametrize("alpha", [1.0, 0.9, 0.55, 0.4, 0.05])
def test_fraction_keeps_ceil_alpha_per_class_in_train_only(alpha):
    df = _frame()
    m = S.fraction_mask(df, alpha, seed=2)
    n_train = df[df.split == "train"].groupby("label").concept.nunique()
    got = _per_class(df, m)
    assert (got == np.ceil(alpha * n_train - 1e-9).astype(int)).all()
    assert m[(df.split != "train").to_numpy()].all()  # val and test untouched
    # A concept's two drawings stay together.
    assert (df[m].groupby("concept").domain.nunique() == 2).all()


def test_fraction_nested_in_alpha_and_seeded():
    df = _frame()
    masks = [S.fraction_mask(df, a, seed=5) for a in S.PAPER_FIG14_ALPHAS]
    for big, small in zip(masks[:-1], masks[1:]):
        assert (small <= big).all()
    assert (S.fraction_mask(df, 0.4, seed=5) == masks[-1]).all()
    assert (S.fraction_mask(df, 0.4, seed=6) != masks[-1]).any()
    # A class's draw does not depend on which other classes the frame holds (Fig. 13 x Fig. 14).
    two = df.label.isin(["class1", "class3"]).to_numpy()
    assert (S.fraction_mask(df[two], 0.4, seed=5) == masks[-1][two]).all()
    # Same draw as the shared splits.sample_fraction on the training rows.
    train = df[df.split == "train"]
    ref = sample_fraction(train, 0.6, seed=5, group_col="concept")
    assert set(ref.key) == set(df.key[S.fraction_mask(df, 0.6, seed=5) & (df.split == "train").to_numpy()])


def test_fraction_on_one_vendor_rows_and_other_split():
    df = _frame()
    one = df[df.domain == "twitter"].reset_index(drop=True)
    m = S.fraction_mask(one, 0.5, seed=0, split="val", group_col=None)
    n_val = one[one.split == "val"].groupby("label").size()
    assert (_per_class(one, m, "val", "key") == np.ceil(0.5 * n_val).astype(int)).all()
    assert m[(one.split != "val").to_numpy()].all()


@pytest.mark.parametrize("alpha", [0, -0.1, 1.01, float("nan"), True, "0.5"])
def test_fraction_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        S.fraction_mask(_frame(), alpha)


def test_bad_frames_are_named():
    df = _frame()
    with pytest.raises(ValueError, match="'cls'"):
        S.fraction_mask(df, 0.5, label_col="cls")
    with pytest.raises(ValueError, match="split must be"):
        S.fraction_mask(df, 0.5, split="dev")
    with pytest.raises(ValueError, match="class4"):  # a required class absent from the split
        S.fraction_mask(df[df.label != "class4"], 0.5, classes=[f"class{i}" for i in range(5)])


def test_k_shot_exact_nested_and_agrees_with_fraction():
    df = _frame()
    masks = {k: S.k_shot_mask(df, k, seed=1) for k in S.K_SHOTS}
    for k, m in masks.items():
        assert (_per_class(df, m) == k).all()
        assert m[(df.split != "train").to_numpy()].all()
    assert (masks[1] <= masks[2]).all() and (masks[2] <= masks[5]).all()
    # Every class of the same size: the alpha that keeps 3 per class is the 3-shot draw.
    eq = pd.DataFrame([{"label": f"c{c}", "concept": f"c{c}-{i}", "split": "train"}
                       for c in range(4) for i in range(10)])
    assert (S.k_shot_mask(eq, 3, seed=8) == S.fraction_mask(eq, 0.3, seed=8)).all()
    assert (S.k_shot_mask(eq, 3, seed=8) != S.k_shot_mask(eq, 3, seed=9)).any()


def test_k_shot_too_few_is_an_error_unless_capped():
    df = pd.DataFrame({"label": ["a"] * 6 + ["b"] * 2, "split": ["train"] * 8})
    with pytest.raises(ValueError, match=r"b \(2\)"):
        S.k_shot_mask(df, 5)
    m = S.k_shot_mask(df, 5, allow_fewer=True)
    assert m[:6].sum() == 5 and m[6:].all()
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="k must"):
            S.k_shot_mask(df, bad)
    assert math.isclose(S.k_shot_mask(df, 1, split=None).sum(), 2)
