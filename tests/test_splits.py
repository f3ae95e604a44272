"""Splits: grouped (no twin leaks), stratified, nested, deterministic."""
import math

import numpy as np
import pandas as pd
import pytest

from clickvision.data.splits import (_allocate, domain_assignment, grouped_stratified_split, nested_class_subsets,
                                     sample_fraction)


def _emoji_like(n_classes=6, vendors=("google", "twitter", "openmoji"), seed=3):
    """Rows (concept, vendor) with class sizes 4..40 concepts: a vendor-drawn emoji table."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_classes):
        for k in range(int(rng.integers(4, 41))):
            for v in vendors:
                rows.append({"label": f"class{c}", "concept": f"c{c}-{k}", "domain": v})
    return pd.DataFrame(rows)


def test_allocate_hand_checked():
    assert _allocate(10, (0.6, 0.2, 0.2)) == [6, 2, 2]
    assert _allocate(4, (0.6, 0.2, 0.2)) == [2, 1, 1]   # 2.4/0.8/0.8 -> remainders go to val, test
    assert _allocate(2, (0.6, 0.2, 0.2)) == [1, 1, 0]   # tie between val and test -> earlier split
    assert _allocate(7, (0.5, 0.25, 0.25)) == [3, 2, 2]  # floors 3/1/1; the 2 left go to the .75 remainders
    assert sum(_allocate(13, (0.7, 0.15, 0.15), np.random.default_rng(0))) == 13


def test_no_concept_in_two_splits():
    df = _emoji_like()
    split = grouped_stratified_split(df.label, df.concept, seed=0)
    per_concept = pd.Series(split).groupby(df.concept.to_numpy()).nunique()
    assert (per_concept == 1).all()
    assert set(split) == {"train", "val", "test"}


def test_stratified_within_one_concept_per_class():
    df = _emoji_like()
    fractions = (0.6, 0.2, 0.2)
    df["split"] = grouped_stratified_split(df.label, df.concept, fractions, seed=1)
    concepts = df.drop_duplicates("concept")
    for label, block in concepts.groupby("label"):
        n = len(block)
        for name, frac in zip(("train", "val", "test"), fractions):
            assert abs((block.split == name).sum() - frac * n) < 1, (label, name, n)


def test_deterministic_and_seed_sensitive():
    df = _emoji_like()
    a = grouped_stratified_split(df.label, df.concept, seed=7)
    b = grouped_stratified_split(df.label.tolist(), df.concept.tolist(), seed=7)
    c = grouped_stratified_split(df.label, df.concept, seed=8)
    assert (a == b).all()
    assert (a != c).any()


def test_split_of_a_class_does_not_depend_on_other_classes():
    df = _emoji_like()
    full = grouped_stratified_split(df.label, df.concept, seed=2)
    keep = df.label.isin(["class1", "class4"]).to_numpy()
    part = grouped_stratified_split(df.label[keep], df.concept[keep], seed=2)
    assert (full[keep] == part).all()


def test_row_order_does_not_matter():
    df = _emoji_like()
    split = pd.Series(grouped_stratified_split(df.label, df.concept, seed=4), index=df.index)
    shuffled = df.sample(frac=1.0, random_state=0)
    split2 = pd.Series(grouped_stratified_split(shuffled.label, shuffled.concept, seed=4), index=shuffled.index)
    assert split.equals(split2.sort_index())


def test_group_with_several_labels_moves_whole():
    labels = ["a", "a", "b", "b", "b", "a"]
    groups = ["g1", "g1", "g1", "g2", "g3", "g4"]   # g1 is mostly 'a'
    split = grouped_stratified_split(labels, groups, seed=0)
    assert len(set(split[:3])) == 1


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="fractions"):
        grouped_stratified_split(["a"], ["g"], (0.5, 0.5))
    with pytest.raises(ValueError, match="fractions"):
        grouped_stratified_split(["a"], ["g"], (0.6, 0.3, 0.3))
    with pytest.raises(ValueError, match="length"):
        grouped_stratified_split(["a", "b"], ["g"])
    with pytest.raises(ValueError, match="seed"):
        grouped_stratified_split(["a"], ["g"], seed=-1)


def test_domain_assignment():
    doms = ["google", "twitter", "openmoji", "google"]
    assert domain_assignment(doms).tolist() == ["source", "target", "", "source"]
    roles = domain_assignment(doms, source=("google", "openmoji"), target="twitter")
    assert roles.tolist() == ["source", "target", "source", "source"]
    with pytest.raises(ValueError, match="both"):
        domain_assignment(doms, source="google", target=["google"])
    with pytest.raises(ValueError, match="apple"):
        domain_assignment(doms, source="apple")


def test_nested_class_subsets():
    classes = [f"k{i}" for i in range(30)]
    draws = nested_class_subsets(classes, [20, 5, 10], n_draws=4, seed=0)
    assert len(draws) == 4
    for d in draws:
        assert sorted(d) == [5, 10, 20]
        assert all(len(d[s]) == s for s in d)
        assert set(d[5]) <= set(d[10]) <= set(d[20]) <= set(classes)
    assert len({tuple(d[5]) for d in draws}) > 1   # draws differ
    assert nested_class_subsets(classes, [5, 10], 2, seed=9) == nested_class_subsets(classes[::-1], [5, 10], 2, seed=9)
    with pytest.raises(ValueError, match="sizes"):
        nested_class_subsets(classes, [31])


def test_sample_fraction_counts_and_nesting():
    df = _emoji_like(vendors=("google",))
    n_k = df.label.value_counts()
    previous = None
    for alpha in (0.1, 0.3, 0.5, 1.0):
        kept = sample_fraction(df, alpha, seed=5)
        got = kept.label.value_counts()
        for label, n in n_k.items():
            assert got[label] == math.ceil(alpha * n - 1e-9)
        if previous is not None:
            assert set(previous.index) <= set(kept.index)
        previous = kept
    assert sample_fraction(df, 0.3, seed=5).index.equals(sample_fraction(df, 0.3, seed=5).index)
    assert list(sample_fraction(df, 1.0).index) == list(df.index)   # original order kept


def test_sample_fraction_by_group_keeps_twins_together():
    df = _emoji_like()
    kept = sample_fraction(df, 0.25, seed=0, group_col="concept")
    assert (kept.groupby("concept").size() == 3).all()
    per_class = df.groupby("label").concept.nunique()
    got = kept.groupby("label").concept.nunique()
    assert all(got[k] == math.ceil(0.25 * n) for k, n in per_class.items())
    with pytest.raises(ValueError, match="alpha"):
        sample_fraction(df, 0.0)
