"""SCDA descriptor selection on hand-made maps, and score fusion (SF) weight selection."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clickvision import fusion as FU
from clickvision.models import scda as SC


def _map() -> np.ndarray:
    """5x5, two channels. Above-mean positions: a diagonal chain of 3 (one component under
    8-connectivity, three singletons under 4) and a vertical pair in the last column."""
    m = np.zeros((2, 5, 5), dtype=np.float32)
    for (i, j), (a, b) in zip([(0, 0), (1, 1), (2, 2)], [(1, 2), (2, 1), (3, 0)]):
        m[:, i, j] = (a, b)  # aggregation 3 each
    m[:, 3, 4] = (3, 0)
    m[:, 4, 4] = (0, 3)
    return m  # aggregation mean 15 / 25 = 0.6


def test_mask_largest_component_and_connectivity():
    m = _map()
    diag = np.zeros((5, 5), bool)
    diag[[0, 1, 2], [0, 1, 2]] = True
    pair = np.zeros((5, 5), bool)
    pair[[3, 4], [4, 4]] = True
    assert (SC.scda_mask(m) == diag).all()
    assert (SC.scda_mask(m, connectivity=4) == pair).all()
    with pytest.raises(ValueError, match="connectivity"):
        SC.scda_mask(m, connectivity=6)
    # The threshold is the mean (19 / 9 = 2.1): the 2 next to the 10 is below it.
    one = np.array([[[10, 2, 1], [1, 1, 1], [1, 1, 1]]], dtype=np.float32)
    assert SC.scda_mask(one).tolist() == [[True, False, False], [False] * 3, [False] * 3]


def test_descriptor_hand_checked():
    m = _map()
    d8 = SC.scda_descriptor(m, normalize=False)
    assert d8.tolist() == pytest.approx([2.0, 1.0, 3.0, 2.0])  # avg over the diagonal, then max
    d4 = SC.scda_descriptor(m, connectivity=4, normalize=False)
    assert d4.tolist() == pytest.approx([1.5, 1.5, 3.0, 3.0])
    dn = SC.scda_descriptor(m)
    assert dn.tolist() == pytest.approx([2 / 5 ** 0.5, 1 / 5 ** 0.5, 3 / 13 ** 0.5, 2 / 13 ** 0.5])


def test_constant_map_selects_everything_and_batches():
    flat = np.ones((3, 2, 2), dtype=np.float32) * np.array([1.0, 2.0, 4.0], dtype=np.float32)[:, None, None]
    assert SC.scda_mask(flat).all()
    assert SC.scda_descriptor(flat, normalize=False).tolist() == [1, 2, 4, 1, 2, 4]
    batch = np.stack([_map(), _map()[:, ::-1].copy()])
    out = SC.scda_descriptors(torch.from_numpy(batch).half())  # float16 maps, as the cache stores them
    assert out.shape == (2, 4) and out.dtype == np.float32
    assert out[0] == pytest.approx(SC.scda_descriptor(_map()))
    with pytest.raises(ValueError, match="NaN"):
        SC.scda_descriptors(np.full((1, 2, 3, 3), np.nan))
    with pytest.raises(ValueError, match="4-D"):
        SC.scda_descriptors(_map())


def test_scda_svm_separates_two_kinds_of_map():
    rng = np.random.default_rng(0)
    maps = rng.uniform(0, 0.1, size=(20, 4, 6, 6)).astype(np.float32)
    y = np.repeat([0, 1], 10)
    maps[y == 0, 0, 1:3, 1:3] += 2.0  # class 0: a blob on channel 0; class 1: on channel 3
    maps[y == 1, 3, 2:5, 2:5] += 2.0
    x = SC.scda_descriptors(maps)
    svm = SC.scda_svm().fit(x[::2], y[::2])
    assert svm.C == 1.0 and (svm.predict(x[1::2]) == y[1::2]).all()


def _two_class(p1):
    p1 = np.asarray(p1, dtype=float)
    return np.stack([1 - p1, p1], axis=1)


def test_fuse_scores_hand_checked():
    pv, pc = _two_class([0.3, 0.9]), _two_class([0.8, 0.1])
    assert FU.fuse_scores(pv, pc, 0.2)[:, 1] == pytest.approx([0.8 * 0.3 + 0.2 * 0.8, 0.8 * 0.9 + 0.2 * 0.1])
    assert FU.fuse_scores(pv, pc, 0.0) == pytest.approx(pv)
    with pytest.raises(ValueError, match="click_weight"):
        FU.fuse_scores(pv, pc, 1.2)
    with pytest.raises(ValueError, match="logits"):
        FU.fuse_scores(pv - 0.5, pc, 0.2)
    with pytest.raises(ValueError, match="p_click has shape"):
        FU.fuse_scores(pv, pc[:1], 0.2)


def test_weight_chosen_on_validation():
    # Correct rows per weight (0.2, 0.4, 0.5, 0.6, 0.8): 1, 2, 2, 3, 2 -> 0.6 uniquely best.
    pv = _two_class([0.3, 0.2, 0.38])
    pc = _two_class([0.82, 0.6, 0.6])
    y = np.array([1, 0, 1])
    w, table = FU.select_click_weight(pv, pc, y)
    assert w == 0.6
    assert table.val_acc.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1.0, 2 / 3])
    # Without the third row 0.4, 0.5 and 0.6 tie: the earliest weight wins.
    assert FU.select_click_weight(pv[:2], pc[:2], y[:2])[0] == 0.4
    res = FU.score_fusion(pv, pc, y, pv[:2], pc[:2], y[:2])
    assert res.click_weight == 0.6 and res.test_acc == 1.0
    assert res.test_scores == pytest.approx(0.4 * pv[:2] + 0.6 * pc[:2])
    assert FU.score_fusion(pv, pc, y, pv, pc).test_acc is None
    assert FU.SF_CLICK_WEIGHTS == (0.2, 0.4, 0.5, 0.6, 0.8)
