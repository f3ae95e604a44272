"""Paper A losses (eqs. 2, 9-15): hand-checked values, masking and float64 gradient checks."""
from __future__ import annotations

import math

import pytest
import torch

from clickvision.losses import click as L


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pair(n: int = 6, k: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(n, k, generator=g, dtype=torch.float64)
    v = v * (torch.rand(n, k, generator=g, dtype=torch.float64) > 0.5)  # sparse, non-negative truth
    v[:, 0] += 0.3  # no zero row
    v_hat = torch.randn(n, k, generator=g, dtype=torch.float64)
    return v, v_hat


def test_count_loss_hand_checked():
    v = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    v_hat = torch.tensor([[0.0, 2.0], [6.0, 8.0]])
    # row 0: N'(v) = (1,0), N'(v_hat) = (0,1): distance^2 = 2; row 1: same direction: 0
    assert L.count_loss(v, v_hat, reduction="none").tolist() == pytest.approx([2.0, 0.0])
    assert float(L.count_loss(v, v_hat)) == pytest.approx(1.0)


def test_masked_rows_are_dropped():
    v, v_hat = _pair()
    valid = torch.tensor([True, True, False, True, False, True])
    v_bad = v.clone()
    v_bad[~valid] = 0.0  # zero rows: 0/0 in eq. (1)
    masked = L.count_loss(v_bad, v_hat, valid)
    kept = L.count_loss(v[valid], v_hat[valid])
    assert float(masked) == pytest.approx(float(kept))
    per_row = L.count_loss(v_bad, v_hat, valid, reduction="none")
    assert per_row[~valid].abs().sum() == 0


def test_smooth_binarizer_anchor_points():
    b, t = 0.01, 0.16
    x = torch.tensor([0.0, b / 2, b], dtype=torch.float64)
    s = L.smooth_binarize(x, b, t)
    assert s.tolist() == pytest.approx([t, 0.5, 1 - t])  # S(0) = T, not 0
    assert L.binarizer_slope(b, t) == pytest.approx(2 / b * math.log((1 - t) / t))
    for bad in ({"bandwidth": 0.0}, {"bandwidth": -1}, {"threshold": 0.5}, {"threshold": 0.0}):
        with pytest.raises(ValueError):
            L.smooth_binarize(x, **{"bandwidth": b, "threshold": t, **bad})


def test_position_loss_code_variant_hand_checked():
    b, t = 1.0, 0.1
    v = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    v_hat = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    a = 2 / b * math.log(9)
    s = lambda x: 1 / (1 + math.exp(-a * (x - b / 2)))  # noqa: E731
    expected = ((s(0.0) - s(0.5)) ** 2 + (s(2.0) - s(0.5)) ** 2) / 2  # 1/sqrt(K) scaling, K = 2
    got = L.position_loss(v, v_hat, b, t, variant="code")
    assert float(got) == pytest.approx(expected)


def test_position_loss_batch_norm_only_on_prediction_path():
    v, v_hat = _pair()
    base = L.position_loss(v, v_hat, 0.01, 0.16)
    # a positive affine change of each prediction column is removed by the batch norm ...
    scaled = L.position_loss(v, 3.0 * v_hat + 0.7, 0.01, 0.16)
    assert float(scaled) == pytest.approx(float(base), rel=1e-6)
    # ... but the target is not normalised: its zeros stay at S(0) = T
    z = L.sigmoid_input(v_hat)
    assert z.mean(0).abs().max() < 1e-12 and (z.var(0, unbiased=False) - 1).abs().max() < 1e-4
    shifted = L.position_loss(v + 0.7, v_hat, 0.01, 0.16)
    assert float(shifted) != pytest.approx(float(base))


def test_indicator_and_set_error_eq9():
    v = torch.tensor([[0.0, 1.0, 2.0, 0.0]])
    v_hat = torch.tensor([[0.5, 1.0, 0.0, 0.0]])
    assert L.position_error(v, v_hat).tolist() == [2]  # positions 0 and 2 differ
    # eq. (10) with the exact indicator: N'((0,1,1,0)) vs N'((1,1,0,0))
    assert float(L.indicator_position_loss(v, v_hat)) == pytest.approx(1.0)


def test_binarize_prediction_is_where_the_sigmoid_crosses_one_half():
    # one word over 4 images: BN -> (-3, -1, 1, 3) / sqrt(5) = (-1.342, -0.447, 0.447, 1.342)
    v_hat = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    assert L.binarize_prediction(v_hat, 0.01).squeeze(1).tolist() == [False, False, True, True]
    # B/2 = 0.5 moves the cut between 0.447 and 1.342: only the last image
    assert L.binarize_prediction(v_hat, 1.0).squeeze(1).tolist() == [False, False, False, True]
    # the "code" variant reads v_hat itself (no batch norm): v_hat > B/2 = 1.5
    assert L.binarize_prediction(v_hat, 3.0, "code").squeeze(1).tolist() == [False, False, True, True]
    # the mask is exactly S(z) > 1/2 of eq. (11), for any T
    _, pred = _pair(8, 6, seed=3)
    for t in (0.05, 0.16, 0.4):
        s = L.smooth_binarize(L.sigmoid_input(pred), 0.01, t)
        assert torch.equal(L.binarize_prediction(pred, 0.01), s > 0.5)
    # eq. (9) on it: |A xor A_hat| by hand for the 4-image case, truth (0, 1, 1, 0) per image
    truth = torch.tensor([[0.0], [1.0], [1.0], [0.0]], dtype=torch.float64)
    mask = L.binarize_prediction(v_hat, 0.01).to(torch.float64)
    assert L.position_error(truth, mask).tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="variant"):
        L.binarize_prediction(v_hat, 0.01, "caffe")
    with pytest.raises(ValueError, match="bandwidth"):
        L.binarize_prediction(v_hat, 0.0)
    with pytest.raises(ValueError, match="at least 2 rows"):
        L.binarize_prediction(v_hat[:1], 0.01)


def test_combined_and_multitask_weights():
    v, v_hat = _pair()
    logits = torch.randn(6, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    c = L.count_loss(v, v_hat)
    p = L.position_loss(v, v_hat)
    out = L.combined_click_loss(v, v_hat, tau=0.25)
    assert float(out.total) == pytest.approx(0.75 * float(c) + 0.25 * float(p))
    assert set(L.combined_click_loss(v, v_hat, tau=0.0).terms) == {"count"}  # eq. (2)
    assert set(L.combined_click_loss(v, v_hat, tau=1.0).terms) == {"position"}
    ce = torch.nn.functional.cross_entropy(logits, y)
    mt = L.multitask_loss(logits, y, v, v_hat, lam=0.4, tau=0.0)  # eq. (14)
    assert float(mt.total) == pytest.approx(0.6 * float(ce) + 0.4 * float(c))
    assert set(L.multitask_loss(logits, y, v, v_hat, lam=1.0).terms) == {"count", "position"}
    assert set(L.multitask_loss(logits, y, v, v_hat, lam=0.0).terms) == {"softmax"}
    with pytest.raises(ValueError, match="tau"):
        L.combined_click_loss(v, v_hat, tau=1.5)
    with pytest.raises(ValueError, match="lam"):
        L.multitask_loss(logits, y, v, v_hat, lam=-0.1)


def test_multidomain_target_contributes_no_click_loss():
    v, v_hat = _pair()
    v_hat.requires_grad_(True)
    logits_s, y_s = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    logits_t = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y_t = torch.tensor([2, 1, 0, 2])
    out = L.multidomain_loss(logits_s, y_s, v, v_hat, logits_t, y_t, lam=0.4, mu=0.5, tau=0.1)
    src_only = L.multitask_loss(logits_s, y_s, v, v_hat, lam=0.4, tau=0.1)
    ce_t = torch.nn.functional.cross_entropy(logits_t, y_t)
    assert out.total.item() == pytest.approx(src_only.total.item() + 0.5 * ce_t.item())
    assert set(out.terms) == {"softmax", "count", "position", "target"}
    # the target rows enter only through their softmax term
    click = out.terms["count"] + out.terms["position"]
    assert click.requires_grad
    assert torch.autograd.grad(click, logits_t, retain_graph=True, allow_unused=True)[0] is None
    assert torch.autograd.grad(out.terms["target"], logits_t)[0].abs().sum() > 0
    with pytest.raises(ValueError, match="mu"):
        L.multidomain_loss(logits_s, y_s, v, v_hat, logits_t, y_t, mu=-1.0)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        L.count_loss(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="valid mask"):
        L.count_loss(torch.ones(3, 4), torch.ones(3, 4), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least 2 rows"):
        L.position_loss(torch.ones(1, 4), torch.ones(1, 4))


# --- float64 gradient checks ---------------------------------------------------------------

def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.clone().requires_grad_(True)


def test_gradcheck_count_loss():
    v, v_hat = _pair()
    valid = torch.tensor([True, True, False, True, True, True])
    assert torch.autograd.gradcheck(lambda a, b: L.count_loss(a, b, valid), (_leaf(v), _leaf(v_hat)))


@pytest.mark.parametrize("variant", ["paper", "code"])
def test_gradcheck_position_loss(variant):
    v, v_hat = _pair()
    # a wide bandwidth keeps the sigmoid away from saturation, so finite differences are meaningful
    fn = lambda a, b: L.position_loss(a, b, bandwidth=2.0, threshold=0.2, variant=variant)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (_leaf(v), _leaf(v_hat)))


def test_gradcheck_smooth_binarize():
    x = torch.linspace(-1, 2, 7, dtype=torch.float64).reshape(1, -1)
    assert torch.autograd.gradcheck(lambda a: L.smooth_binarize(a, 1.0, 0.1), (_leaf(x),))


def test_gradcheck_combined_multitask_multidomain():
    v, v_hat = _pair(n=4, k=4)
    logits_s = torch.randn(4, 3, dtype=torch.float64)
    logits_t = torch.randn(3, 3, dtype=torch.float64)
    y_s, y_t = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 1, 0])
    kw = dict(bandwidth=2.0, threshold=0.2)
    assert torch.autograd.gradcheck(lambda b: L.combined_click_loss(v, b, tau=0.3, **kw).total, (_leaf(v_hat),))
    assert torch.autograd.gradcheck(lambda o, b: L.multitask_loss(o, y_s, v, b, lam=0.4, tau=0.3, **kw).total,
                                    (_leaf(logits_s), _leaf(v_hat)))
    assert torch.autograd.gradcheck(
        lambda o, b, t: L.multidomain_loss(o, y_s, v, b, t, y_t, lam=0.4, mu=0.7, tau=0.3, **kw).total,
        (_leaf(logits_s), _leaf(v_hat), _leaf(logits_t)))
