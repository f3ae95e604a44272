"""clickvision.selection: keep the reference setting unless another beats it by more than z SE."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickvision.selection import nearest, select_near, select_robust


def _rows(per_setting: dict[float, list[list[float]]], metric: str = "val_correct_t") -> pd.DataFrame:
    """``per_setting[value][seed][item]`` -> tidy rows."""
    return pd.DataFrame([{"B": b, "seed": s, "item": f"i{i}", "metric": metric, "value": v}
                         for b, seeds in per_setting.items() for s, items in enumerate(seeds)
                         for i, v in enumerate(items)])


def test_hand_computed_difference_and_standard_error():
    ref = [[1, 0, 1, 0, 1, 0]]
    cand = [[1, 1, 1, 1, 1, 0]]  # per-item differences 0, 1, 0, 1, 0, 0: mean 1/3
    sel = select_robust(_rows({0.01: ref, 0.1: cand}), "B", 0.01, "val_correct_t")
    row = sel.table.loc[0.1]
    d = np.array([0, 1, 0, 1, 0, 0], dtype=float)
    assert row["mean_diff"] == pytest.approx(1 / 3)
    assert row["se"] == pytest.approx(np.sqrt(((d - d.mean()) ** 2).sum() / 5) / np.sqrt(6))  # sd (ddof 1) / sqrt n
    assert row["n_items"] == 6 and row["n_seeds"] == 1
    assert bool(row["beats"]) == bool(1 / 3 > row["se"])  # 0.333 > 0.211: chosen
    assert sel.value == 0.1 and isinstance(sel.value, float)
    assert "chosen over the reference" in sel.describe("B")


def test_small_noisy_gain_keeps_the_reference():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, size=(3, 200)).astype(float)
    noisy = base.copy()
    flip = rng.choice(200, size=20, replace=False)
    noisy[:, flip] = 1 - noisy[:, flip]  # 20 flips: about as many gains as losses
    noisy[:, flip[0]] = 1.0
    sel = select_robust(_rows({0.01: base.tolist(), 0.001: noisy.tolist()}), "B", 0.01, "val_correct_t")
    assert sel.value == 0.01  # the plain best-mean rule would follow any positive mean
    assert not sel.table.loc[0.001, "beats"]
    assert "kept (the reference)" in sel.describe("B")


def test_pairs_on_common_seeds_and_best_of_the_winners():
    ref = [[0] * 10, [0] * 10, [0] * 10]
    big = [[1] * 9 + [0]]  # one seed only: compared with the reference's seed 0
    small = [[1] * 5 + [0] * 5] * 3
    sel = select_robust(_rows({0.01: ref, 1.0: big, 0.1: small}), "B", 0.01, "val_correct_t")
    assert sel.table.loc[1.0, "n_seeds"] == 1 and sel.table.loc[0.1, "n_seeds"] == 3
    assert sel.table.loc[1.0, "mean_diff"] == pytest.approx(0.9)
    assert sel.value == 1.0 and sel.table["chosen"].sum() == 1


def test_other_metrics_ignored_and_errors_name_the_problem():
    rows = pd.concat([_rows({0.01: [[1, 0]], 0.1: [[1, 1]]}), _rows({0.01: [[0, 0]], 0.1: [[1, 1]]}, "val_correct_s")])
    sel = select_robust(rows, "B", 0.01, "val_correct_t", z=100)
    assert sel.value == 0.01
    with pytest.raises(ValueError, match="reference B = 0.5"):
        select_robust(rows, "B", 0.5, "val_correct_t")
    with pytest.raises(ValueError, match="no rows of metric 'nope'"):
        select_robust(rows, "B", 0.01, "nope")
    with pytest.raises(ValueError, match=r"lack column\(s\) \['item'\]"):
        select_robust(rows.drop(columns="item"), "B", 0.01, "val_correct_t")
    with pytest.raises(ValueError, match="z must be >= 0"):
        select_robust(rows, "B", 0.01, "val_correct_t", z=-1)


def test_nearest():
    assert nearest([0.1, 0.3], 0.16) == 0.1
    assert nearest([0.1, 0.5, 1.0], 0.9) == 1.0
    assert nearest([0.001, 0.01], 0.01) == 0.01
    with pytest.raises(ValueError, match="no candidate"):
        nearest([], 1.0)


def test_select_near_takes_the_grid_value_nearest_the_preferred_one():
    rows = _rows({0.1: [[1, 0, 1, 0]], 0.3: [[1, 1, 1, 1]]})
    sel = select_near(rows, "B", 0.16, "val_correct_t")
    assert sel.reference == 0.1 and sel.value == 0.3  # +0.5 +- 0.29: beats the reference
    with pytest.raises(ValueError, match="no rows of metric 'nope'"):
        select_near(rows, "B", 0.16, "nope")
