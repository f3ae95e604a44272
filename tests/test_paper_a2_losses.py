"""Paper A eq. (16) (unseen categories) and the DANN / DAN terms: masking, values, gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clickvision.losses import click as C
from clickvision.losses import domain as D
from clickvision.losses import mmd as M
from clickvision.losses import unseen as U


pytestmark = pytest.mark.usefixtures("one_torch_thread")


SPACES = U.LabelSpaces(source=("cat", "dog", "owl"), target=("dog", "fox", "cat", "eel"))


def test_label_spaces():
    assert SPACES.union == ("dog", "fox", "cat", "eel", "owl")
    assert SPACES.target_only == ("fox", "eel") and SPACES.source_only == ("owl",)
    assert SPACES.source_columns.tolist() == [2, 0, 4]
    assert SPACES.target_columns.tolist() == [0, 1, 2, 3]
    assert SPACES.encode(["owl", "cat"], "source").tolist() == [2, 0]
    assert SPACES.encode(["owl", "cat"], "union").tolist() == [4, 2]
    with pytest.raises(ValueError, match="fox"):
        SPACES.encode(["fox"], "source")  # a target-only class has no source index
    with pytest.raises(ValueError, match="duplicate"):
        U.LabelSpaces(("a", "a"), ("b",))
    assert U.LabelSpaces.from_labels(["b", "a", "b"], ["c"]).source == ("a", "b")


def _batch(n_s=5, n_t=4, k=6, n_cls=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(n_s, k, generator=g, dtype=dtype) * (torch.rand(n_s, k, generator=g, dtype=dtype) > 0.4)
    v[:, 0] += 0.2
    v_hat = torch.randn(n_s, k, generator=g, dtype=dtype, requires_grad=True)
    s_logits = torch.randn(n_s, n_cls, generator=g, dtype=dtype, requires_grad=True)
    t_logits = torch.randn(n_t, n_cls, generator=g, dtype=dtype, requires_grad=True)
    s_y = torch.as_tensor(SPACES.encode(["cat", "dog", "owl", "cat", "owl"][:n_s], "union"))
    t_y = torch.as_tensor(SPACES.encode(["fox", "eel", "dog", "cat"][:n_t], "union"))
    return v, v_hat, s_logits, s_y, t_logits, t_y


def test_shared_head_target_only_classes_get_no_source_logit_or_gradient():
    v, v_hat, s_logits, s_y, t_logits, t_y = _batch()
    out = U.unseen_category_loss(s_logits, s_y, v, v_hat, t_logits, t_y, SPACES.source_columns,
                                 SPACES.target_columns, lam=0.4, mu=0.9)
    out.total.backward()
    g_s = s_logits.grad
    for c in SPACES.target_only:  # fox, eel: absent from the source
        assert torch.all(g_s[:, SPACES.union.index(c)] == 0)
    assert torch.all(g_s[:, SPACES.source_columns].abs().sum(0) > 0)
    assert torch.all(t_logits.grad[:, SPACES.union.index("owl")] == 0)  # source-only: no target gradient
    # Moving a target-only logit leaves the source softmax unchanged (it is not in it).
    bumped = s_logits.detach().clone()
    bumped[:, SPACES.union.index("fox")] += 50.0
    again = U.unseen_category_loss(bumped, s_y, v, v_hat.detach(), None, None, SPACES.source_columns)
    before = U.unseen_category_loss(s_logits.detach(), s_y, v, v_hat.detach(), None, None, SPACES.source_columns)
    assert float(again.terms["softmax"]) == pytest.approx(float(before.terms["softmax"]), abs=1e-12)


def test_shared_head_weight_rows_of_unseen_classes_get_no_source_gradient():
    torch.manual_seed(0)
    head = torch.nn.Linear(3, len(SPACES.union)).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    v, v_hat, _, s_y, _, _ = _batch()
    out = U.unseen_category_loss(head(x), s_y, v, v_hat, None, None, SPACES.source_columns, lam=0.3)
    out.total.backward()
    for c in SPACES.target_only:
        i = SPACES.union.index(c)
        assert torch.all(head.weight.grad[i] == 0) and head.bias.grad[i] == 0


def test_matches_hand_written_eq16():
    v, v_hat, s_logits, s_y, t_logits, t_y = _batch()
    lam, mu = 0.4, 0.7
    out = U.unseen_category_loss(s_logits, s_y, v, v_hat, t_logits, t_y, SPACES.source_columns,
                                 SPACES.target_columns, lam=lam, mu=mu, tau=0.1)
    sc, tc = SPACES.source_columns, SPACES.target_columns
    s_logits, t_logits, v_hat = s_logits.detach(), t_logits.detach(), v_hat.detach()
    ls = -torch.log_softmax(s_logits[:, sc], 1)[torch.arange(5), [sc.tolist().index(int(y)) for y in s_y]].mean()
    lt = -torch.log_softmax(t_logits[:, tc], 1)[torch.arange(4), t_y].mean()
    click = C.combined_click_loss(v, v_hat, tau=0.1).total
    assert float(out.total.detach()) == pytest.approx(float(lam * click + (1 - lam) * ls + mu * lt), rel=1e-12)
    assert out.terms["target"].item() == pytest.approx(mu * float(lt), rel=1e-12)


def test_unshared_heads_are_plain_cross_entropy():
    g = torch.Generator().manual_seed(1)
    s_logits, t_logits = torch.randn(4, 3, generator=g), torch.randn(4, 4, generator=g)
    s_y, t_y = torch.tensor([0, 1, 2, 0]), torch.tensor([3, 2, 1, 0])
    v, v_hat = torch.rand(4, 6, generator=g) + 0.1, torch.randn(4, 6, generator=g)
    out = U.unseen_category_loss(s_logits, s_y, v, v_hat, t_logits, t_y, lam=0.0, mu=1.0)
    want = F.cross_entropy(s_logits, s_y) + F.cross_entropy(t_logits, t_y)
    assert float(out.total) == pytest.approx(float(want), rel=1e-6)


def test_label_outside_its_domain_is_an_error():
    v, v_hat, s_logits, _, t_logits, t_y = _batch()
    fox = torch.tensor([SPACES.union.index("fox")] * 5)
    with pytest.raises(ValueError, match="source.*not among"):
        U.unseen_category_loss(s_logits, fox, v, v_hat, None, None, SPACES.source_columns)
    with pytest.raises(ValueError, match="columns"):
        U.restrict_logits(s_logits, fox, [0, 9])
    with pytest.raises(ValueError, match="target_y"):
        U.unseen_category_loss(s_logits, fox, v, v_hat, t_logits, None)


def test_eq16_gradcheck():
    v, v_hat, s_logits, s_y, t_logits, t_y = _batch(n_s=4, n_t=3, k=5)
    sc, tc = SPACES.source_columns, SPACES.target_columns

    def f(sl, tl, vh):
        return U.unseen_category_loss(sl, s_y, v, vh, tl, t_y, sc, tc, lam=0.4, mu=0.9, tau=0.3, bandwidth=0.5,
                                      threshold=0.2).total

    assert torch.autograd.gradcheck(f, (s_logits, t_logits, v_hat), fast_mode=True)


# ------------------------------------------------------------------ DANN, DAN
def test_gradient_reversal_is_exactly_minus_lambda():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4, generator=g, dtype=torch.float64)
    for lambd in (0.0, 0.3, 1.0, 2.5):
        y = D.grad_reverse(x, lambd)
        assert torch.equal(y, x)  # identity forward
        (gx,) = torch.autograd.grad((y * w).sum(), x)
        (gi,) = torch.autograd.grad((x * w).sum(), x)  # the identity's gradient
        assert torch.equal(gx, -lambd * gi)
    with pytest.raises(ValueError, match="lambd"):
        D.grad_reverse(x, -1.0)


def test_dann_lambda_schedule():
    assert D.dann_lambda(0.0) == 0.0
    assert D.dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert D.dann_lambda(0.5, gamma=2.0) == pytest.approx(2 / (1 + math.exp(-1)) - 1)
    with pytest.raises(ValueError, match="progress"):
        D.dann_lambda(1.5)


def test_domain_adversarial_loss_matches_bce_and_gradcheck():
    zs = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    zt = torch.tensor([[0.5], [-0.1]], dtype=torch.float64, requires_grad=True)
    got = D.domain_adversarial_loss(zs, zt)
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    want = -(sum(math.log(1 - sig(z)) for z in (0.3, -1.2, 2.0)) + sum(math.log(sig(z)) for z in (0.5, -0.1))) / 5
    assert got.item() == pytest.approx(want, rel=1e-12)
    assert torch.autograd.gradcheck(D.domain_adversarial_loss, (zs, zt))
    with pytest.raises(ValueError, match="target"):
        D.domain_adversarial_loss(zs, torch.zeros(2, 3))


def test_domain_adversary_reverses_the_gradient_into_features():
    torch.manual_seed(0)
    adv = D.DomainAdversary(4, hidden=(8,), lambd=0.5).double()
    fs = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    ft = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    adv(fs, ft).backward()
    gs_rev = fs.grad.clone()
    fs.grad = None
    adv.zero_grad()
    D.domain_adversarial_loss(adv.classifier(fs), adv.classifier(ft)).backward()
    assert torch.allclose(gs_rev, -0.5 * fs.grad, rtol=0, atol=1e-15)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in adv.parameters())


def test_dan_mmd_wraps_shared_mmd():
    g = torch.Generator().manual_seed(2)
    pairs = [(torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
              + 1.0) for _ in range(2)]
    want = sum(float(M.mmd2(s, t)) for s, t in pairs)
    assert float(D.dan_mmd_loss(pairs)) == pytest.approx(want, rel=1e-12)
    same = torch.randn(4, 3, generator=g, dtype=torch.float64)
    assert float(D.dan_mmd_loss([(same, same.clone())])) == pytest.approx(0.0, abs=1e-12)
    x = pairs[0][0].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: D.dan_mmd_loss([(a, pairs[0][1])], detach_bandwidth=False), (x,))
    assert np.isfinite(float(D.dan_mmd_loss(pairs, kernel_num=1)))
