"""clickvision.models.dropout: nn.Dropout's semantics with a mask from torch.rand (the same on every CPU)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from clickvision.models.dropout import Dropout, dropout


def test_eval_mode_and_p_zero_pass_the_input_unchanged():
    x = torch.randn(4, 5)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    layer = Dropout(0.3).eval()
    assert torch.equal(layer(x), x)


def test_mask_is_uniform_threshold_of_torch_rand_for_the_seed():
    # the construction, written out: keep where u >= p (u ~ U[0, 1) from torch.rand), scale 1 / (1 - p)
    x = torch.randn(64, 33)
    torch.manual_seed(7)
    out = Dropout(0.25).train()(x)
    torch.manual_seed(7)
    u = torch.rand(64, 33)
    expected = torch.where(u >= 0.25, x / 0.75, torch.zeros_like(x))
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=0)


def test_never_calls_the_cpu_vendor_dependent_bernoulli_kernel(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("Bernoulli kernel called: its CPU stream differs between Intel (MKL) and AMD")
    monkeypatch.setattr(torch, "bernoulli", refuse)
    monkeypatch.setattr(torch.Tensor, "bernoulli_", refuse)
    monkeypatch.setattr(torch, "dropout", refuse)
    monkeypatch.setattr(torch.nn.functional, "dropout", refuse)
    Dropout(0.5).train()(torch.randn(8, 8, requires_grad=True)).sum().backward()


def test_keep_rate_and_expectation_match_nn_dropout():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    for p in (0.1, 0.5, 0.8):
        out = Dropout(p).train()(x)
        kept = (out != 0).float().mean().item()
        assert abs(kept - (1 - p)) < 0.005, (p, kept)  # binomial sd <= 0.0012
        assert abs(out.mean().item() - 1.0) < 0.02, p  # inverted dropout keeps the mean
        assert torch.all((out == 0) | torch.isclose(out, torch.tensor(1 / (1 - p))))
        ref = nn.Dropout(p).train()(x)
        assert abs((ref != 0).float().mean().item() - kept) < 0.01


def test_gradient_is_the_scaled_mask():
    x = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)

    def seeded(t):  # the same mask on every call, so gradcheck sees one function
        torch.manual_seed(3)
        return dropout(t, 0.4)

    assert torch.autograd.gradcheck(seeded, (x,))
    out = seeded(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out.detach() != 0).double() / 0.6)


def test_vmap_members_draw_their_own_masks():
    x = torch.ones(3, 50)  # three members, the same rows
    out = torch.func.vmap(lambda t: dropout(t, 0.5), randomness="different")(x)
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[1], out[2])


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "0.5", True, None])
def test_bad_p_is_named(p):
    with pytest.raises(ValueError, match="dropout: p must be a number in \\[0, 1\\)"):
        Dropout(p)
    with pytest.raises(ValueError, match="p must be"):
        dropout(torch.ones(2), p)


def test_the_workbook_models_use_it():
    import clickvision.experiments.paper_a.sota as sota
    from clickvision.models import chtn, collab, crossmodal_deep, mlp, mtmdd
    for module in (chtn, collab, crossmodal_deep, mlp, mtmdd, sota):
        assert module.Dropout is Dropout, module.__name__
    mods = list(mlp.MLP(4, [8], 2, dropout=0.5).modules())
    assert any(isinstance(m, Dropout) for m in mods) and not any(isinstance(m, nn.Dropout) for m in mods)
