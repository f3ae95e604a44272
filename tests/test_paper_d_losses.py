"""Paper D's losses and confidence weights (clickvision.losses.cf): hand-checked values,
label masking, float64 gradchecks."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clickvision.losses import cf as L


def rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)


def test_class_balance_weights_are_inverse_counts_with_mean_one():
    y = torch.tensor([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1]])
    w = L.class_balance_weights(y)  # counts 1, 2, 4 -> raw 1, .5, .25 (mean 7/12)
    np.testing.assert_allclose(w.numpy(), [12 / 7, 6 / 7, 3 / 7], rtol=1e-6)
    assert w.mean().item() == pytest.approx(1.0)
    # counted on the labels that remain after masking; a class with none left gets 0
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 0]], dtype=torch.bool)  # counts 0, 2, 3
    np.testing.assert_allclose(L.class_balance_weights(y, mask).numpy(), [0.0, 1.2, 0.8], rtol=1e-6)


def test_code_pos_weight_is_labelled_over_positive():
    y = torch.tensor([[1, 0], [0, 0], [1, 1], [0, 0]])
    np.testing.assert_allclose(L.code_pos_weight(y).numpy(), [2.0, 4.0])


def test_class_balanced_bce_hand_value_and_sign():
    logits = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([[1.0, 0.0]])
    w = torch.tensor([3.0, 1.0])
    expected = 3 * math.log(2) + math.log(1 + math.exp(2))  # -(3 log s(0)) - log(1 - s(2))
    assert L.class_balanced_bce(logits, y, pos_weight=w).item() == pytest.approx(expected)
    assert L.class_balanced_bce(logits, y).item() > 0


def test_label_masking_removes_masked_labels_and_their_gradient():
    logits = rand(4, 3)
    y = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 0], [1, 1, 0]], dtype=torch.bool)
    loss = L.class_balanced_bce(logits, y, mask)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.all(grad[~mask] == 0)
    assert torch.all(grad[mask] != 0)
    flipped = torch.where(mask, y, 1 - y)  # changing a masked label changes nothing
    assert L.class_balanced_bce(logits, flipped, mask).item() == pytest.approx(loss.item())
    # averaged over the rows with an observed label (3 here), summed over classes
    full = -(y * F.logsigmoid(logits) + (1 - y) * F.logsigmoid(-logits))
    assert loss.item() == pytest.approx((full * mask).sum().item() / 3)


def test_reconstruction_loss_hand_values():
    q = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    p = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    paper = L.reconstruction_loss(p, q, "paper")
    code = L.reconstruction_loss(p, q, "code")
    assert paper[0].item() == pytest.approx(1.0, abs=1e-5) and code[0].item() == 0.0
    assert paper[1].item() == pytest.approx(math.exp(1 + 1))  # mean |d| 1, sqrt(mean d^2) 1
    assert code[1].item() == pytest.approx(math.exp(1 + 1) - 1)
    with pytest.raises(ValueError, match="kind"):
        L.reconstruction_loss(p, q, "other")


def test_auxiliary_loss_weighting():
    per_item = torch.tensor([1.0, 2.0, 4.0])
    w = torch.tensor([1.0, 0.0, 3.0])
    assert L.auxiliary_loss(per_item, w).item() == pytest.approx((1 + 12) / 4)
    assert L.auxiliary_loss(per_item, w, normalize=False).item() == pytest.approx(13 / 3)
    assert L.auxiliary_loss(per_item).item() == pytest.approx(7 / 3)
    assert L.mtl_loss(torch.tensor(1.0), torch.tensor(2.0), 1.5).item() == pytest.approx(4.0)


def test_positive_label_loss_is_mean_over_positives():
    logits = torch.tensor([[0.0, 0.0, 5.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    out = L.positive_label_loss(logits, y)
    assert out[0].item() == pytest.approx(math.log(2))
    assert math.isnan(out[1].item())


def test_clip_and_rescale_maps_the_interquartile_range_onto_one_to_three():
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # 25th pct 2, 75th pct 4
    np.testing.assert_allclose(L.clip_and_rescale(w), [1, 1, 2, 3, 3])
    # percentiles from the training rows only
    np.testing.assert_allclose(L.clip_and_rescale(w, train=np.array([1, 1, 0, 0, 0], bool)), [1, 3, 3, 3, 3])
    np.testing.assert_allclose(L.clip_and_rescale(np.ones(4)), np.ones(4))


def test_confidence_weights_follow_their_definitions():
    n = np.array([0, 1, 4, 9, 16, 25, 36])
    np.testing.assert_array_equal(L.confidence_weights("uniform", n), [0, 1, 1, 1, 1, 1, 1])
    inter = L.confidence_weights("interaction", n)
    raw = np.sqrt(n[1:])  # 1..6 over the items with interactions: 25th pct 2.25, 75th 4.75
    lo, hi = np.percentile(raw, [25, 75])
    np.testing.assert_allclose(inter[1:], 1 + 2 * (np.clip(raw, lo, hi) - lo) / (hi - lo))
    assert inter[0] == 0 and np.all(np.diff(inter[1:]) >= 0)
    loss = np.array([9.0, 0.5, 1.0, 2.0, 4.0, 8.0, np.nan])
    lw = L.confidence_weights("loss", n, positive_loss=loss)
    inv = 1 / loss[1:6]  # item 6 has no positive label: lowest weight
    lo, hi = np.percentile(inv, [25, 75])
    np.testing.assert_allclose(lw[1:6], 1 + 2 * (np.clip(inv, lo, hi) - lo) / (hi - lo))
    assert lw[0] == 0 and lw[6] == 1.0 and np.all(np.diff(lw[1:6]) <= 0)  # higher loss, lower trust
    with pytest.raises(ValueError, match="positive_loss"):
        L.confidence_weights("loss", n)
    with pytest.raises(ValueError, match="scheme"):
        L.confidence_weights("linear", n)


def test_triplet_loss_hand_value():
    a, p, n = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
    assert L.triplet_loss(a, p, n, margin=0.5).item() == pytest.approx(5 - 1 + 0.5)
    assert L.triplet_loss(a, n, p, margin=0.5).item() == 0.0


@pytest.mark.parametrize("kind", ["paper", "code"])
def test_reconstruction_gradcheck(kind):
    assert torch.autograd.gradcheck(lambda p, q: L.reconstruction_loss(p, q, kind), (rand(3, 4), rand(3, 4, seed=1)))


def test_class_balanced_bce_gradcheck_with_mask_and_weights():
    y = torch.tensor([[1, 0, 1], [0, 1, 0]], dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=torch.bool)
    w = torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: L.class_balanced_bce(z, y, mask, w), (rand(2, 3),))


def test_auxiliary_triplet_positive_gradchecks():
    w = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: L.auxiliary_loss(x, w), (rand(3),))
    assert torch.autograd.gradcheck(lambda a, p, n: L.triplet_loss(a, p, n, 5.0),
                                    (rand(4, 3), rand(4, 3, seed=1), rand(4, 3, seed=2)))
    y = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: L.positive_label_loss(z, y), (rand(2, 3),))
