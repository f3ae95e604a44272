"""Paper C losses: squared MMD (eq. 1-2) against a direct NumPy computation, and the
cross-modal pair loss (eq. 5-6)."""
import numpy as np
import pytest
import torch

from clickvision.losses.crossmodal import pair_loss, pair_loss_layers, pair_sq_distance
from clickvision.losses.mmd import gaussian_kernel_bandwidths, mmd2, mmd2_layers


def mmd2_numpy(x, y, kernel_num=5, kernel_mul=2.0, bandwidth=None):
    """Squared MMD by explicit loops over pairs (independent of the torch code)."""
    z = np.vstack([x, y])
    n = len(z)
    d = np.array([[np.sum((z[i] - z[j]) ** 2) for j in range(n)] for i in range(n)])
    base = bandwidth if bandwidth is not None else d.sum() / (n * n - n)
    bws = [base * kernel_mul ** (u - kernel_num // 2) for u in range(kernel_num)]

    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / s) for s in bws)

    kxx = np.mean([k(a, b) for a in x for b in x])
    kyy = np.mean([k(a, b) for a in y for b in y])
    kxy = np.mean([k(a, b) for a in x for b in y])
    return kxx + kyy - 2 * kxy


@pytest.mark.parametrize("kernel_num", [1, 5])
def test_mmd_matches_numpy(kernel_num):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 4)), rng.normal(0.7, 1.3, size=(5, 4))
    got = mmd2(torch.tensor(x), torch.tensor(y), kernel_num=kernel_num, kernel_mul=2.0).item()
    assert got == pytest.approx(mmd2_numpy(x, y, kernel_num), rel=1e-10)
    assert got > 0.05  # shifted, rescaled samples are far apart


def test_mmd_fixed_bandwidth_matches_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    got = mmd2(torch.tensor(x), torch.tensor(y), kernel_num=3, kernel_mul=1.5, bandwidth=2.0).item()
    assert got == pytest.approx(mmd2_numpy(x, y, 3, 1.5, bandwidth=2.0), rel=1e-10)


def test_mmd_zero_for_identical_samples_and_grows_with_shift():
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert mmd2(x, x.clone()).item() == 0.0
    values = [mmd2(x, x + s).item() for s in (0.1, 0.5, 2.0)]
    assert values == sorted(values) and values[0] > 0


def test_mmd_bandwidths_centre_on_mean_distance():
    d = torch.tensor([[0.0, 4.0], [4.0, 0.0]])
    assert [float(b) for b in gaussian_kernel_bandwidths(d, 5, 2.0)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert [float(b) for b in gaussian_kernel_bandwidths(d, 1, 2.0)] == [4.0]


def test_mmd_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = (torch.randn(4, 3, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: mmd2(a, b, kernel_num=5, detach_bandwidth=False), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: mmd2(a, b, kernel_num=1, bandwidth=3.0), (x, y))


def test_mmd_detached_bandwidth_is_a_constant_for_the_gradient():
    """The default (the authors' Caffe layer): same value, and the gradient of the kernel
    family with its bandwidth frozen at the data's value; differentiating through the
    bandwidth gives a different gradient."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = (torch.randn(5, 3, generator=g, dtype=torch.float64) + 0.8).requires_grad_()
    z = torch.cat([x, y]).detach().numpy()
    s = float(((z[:, None] - z[None]) ** 2).sum() / (len(z) ** 2 - len(z)))  # mean squared distance
    grads = {}
    for key, kw in (("detached", {}), ("fixed", {"bandwidth": s}), ("through", {"detach_bandwidth": False})):
        value = mmd2(x, y, kernel_num=3, **kw)
        grads[key] = torch.autograd.grad(value, (x, y))
        grads[key + " value"] = value.item()
    assert grads["detached value"] == pytest.approx(grads["fixed value"], rel=1e-12)
    assert grads["detached value"] == pytest.approx(grads["through value"], rel=1e-12)
    for a, b in zip(grads["detached"], grads["fixed"]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(grads["detached"][0], grads["through"][0], rtol=1e-6)


def test_mmd_layers_sum_and_bad_input():
    g = torch.Generator().manual_seed(4)
    a, b, c, d = (torch.randn(6, 2, generator=g, dtype=torch.float64) for _ in range(4))
    assert mmd2_layers([(a, b), (c, d)]).item() == pytest.approx(mmd2(a, b).item() + mmd2(c, d).item())
    with pytest.raises(ValueError, match="features"):
        mmd2(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="kernel_num"):
        mmd2(a, b, kernel_num=0)
    with pytest.raises(ValueError, match="2-D"):
        mmd2(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="bandwidth"):
        mmd2(a, b, bandwidth=-1.0)


def test_pair_loss_zero_for_identical_and_hand_value():
    a = torch.randn(4, 3, generator=torch.Generator().manual_seed(5))
    assert pair_loss(a, a.clone()).item() == 0.0
    i = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    t = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    assert pair_sq_distance(i, t).tolist() == [25.0, 1.0]
    assert pair_loss(i, t).item() == 13.0 and pair_loss(i, t, "sum").item() == 26.0
    assert pair_loss_layers([(i, t), (i, i)], "sum").item() == 26.0


def test_pair_loss_gradcheck_and_bad_input():
    g = torch.Generator().manual_seed(6)
    i = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pair_loss_layers([(a, b), (a * 2, b)]), (i, t))
    with pytest.raises(ValueError, match="same shape"):
        pair_loss(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="reduction"):
        pair_loss(torch.zeros(3, 2), torch.zeros(3, 2), reduction="max")
