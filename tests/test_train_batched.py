"""K members trained as one batched model (clickvision.train.batched) = K models trained one by one."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clickvision import runtime
from clickvision.models.crossmodal_deep import StopRule
from clickvision.models.mlp import MLP
from clickvision.train import NonFiniteLossError
from clickvision.train.batched import MemberBatches, MemberStack, batch_stream, fit_members

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: immune to a busy machine's threads

D, C, N, B = 12, 4, 96, 16


def _build(dropout: float = 0.0, batch_norm: bool = False) -> nn.Module:
    return MLP(D, [20], C, dropout=dropout, batch_norm=batch_norm)


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(N, D, generator=g)
    return x, (x[:, :C] + 0.5 * torch.randn(N, C, generator=g)).argmax(1)


def _loss(model, batch) -> torch.Tensor:
    xb, yb = batch
    return F.cross_entropy(model(xb), yb)  # the single model's loss


def _loop_reference(seed: int, data, steps: int, lr: float, build=_build, optimizer: str = "adam",
                    **kw) -> tuple[nn.Module, list[float]]:
    """One model, plain PyTorch loop: the same init, batches and optimizer as member ``seed``."""
    runtime.seed_everything(seed)
    net = build()
    opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[optimizer](net.parameters(), lr=lr, **kw)
    stream, losses = batch_stream(*data, batch_size=B, seed=seed), []
    for _ in range(steps):
        xb, yb = next(stream)
        loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, losses


def _max_diff(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    return max(float((sa[n].float() - sb[n].float()).abs().max()) for n in sa)


def test_member_init_is_the_single_model_of_its_seed():
    stack = MemberStack.from_seeds(_build, [3, 7, 11])
    for k, s in enumerate([3, 7, 11]):
        runtime.seed_everything(s)
        ref = _build()
        assert _max_diff(stack.member(k), ref) == 0.0
    assert _max_diff(stack.member(0), stack.member(1)) > 0  # different seeds, different inits


# Adam without batch norm; SGD with it: the bias before a batch norm has a zero gradient up to
# rounding, which Adam's normalisation turns into steps of size lr in an arbitrary direction.
@pytest.mark.parametrize("batch_norm, optimizer, kw", [(False, "adam", {}), (True, "sgd", {"momentum": 0.9})])
def test_batched_equals_loop_of_single_models(batch_norm, optimizer, kw):
    seeds, steps, lr = [0, 1, 2], 40, 1e-2
    build = lambda: _build(batch_norm=batch_norm)
    data = [_data(s) for s in seeds]  # folds: each member its own rows
    stack = MemberStack.from_seeds(build, seeds)
    history, stops = fit_members(stack, _loss, MemberBatches(data, B, seeds), None,
                                 StopRule(max_steps=steps, min_steps=0), optimizer=optimizer, lr=lr, **kw)
    assert [s["stop_step"] for s in stops] == [steps] * 3 and all(s["capped"] for s in stops)
    for k, s in enumerate(seeds):
        ref, ref_losses = _loop_reference(s, data[k], steps, lr, build, optimizer, **kw)
        assert _max_diff(stack.member(k), ref) < 1e-5  # parameters and (batch norm) running statistics
        got = history.query("member == @k and metric == 'loss'").sort_values("step")["value"].tolist()
        assert got == pytest.approx(ref_losses, abs=1e-5)


def test_shared_and_per_member_forward_agree_with_each_member():
    stack = MemberStack.from_seeds(_build, [0, 1]).eval()
    x = torch.randn(5, D)
    shared, each = stack(x), stack(torch.stack([x, 2 * x]), per_member=True)
    for k in range(2):
        m = stack.member(k)
        torch.testing.assert_close(shared[k], m(x))
        torch.testing.assert_close(each[k], m(x * (k + 1)))
        torch.testing.assert_close(stack.call_member(k, x), m(x))


def test_member_independence():
    """Changing member 1's rows and labels leaves members 0 and 2 (and their losses) unchanged."""
    seeds = [0, 1, 2]

    def run(data):
        stack = MemberStack.from_seeds(_build, seeds)
        hist, _ = fit_members(stack, _loss, MemberBatches(data, B, seeds), None, StopRule(max_steps=30, min_steps=0),
                              lr=1e-2)
        return stack, hist.query("metric == 'loss'")

    data = [_data(s) for s in seeds]
    changed = list(data)
    changed[1] = (torch.randn(N, D), torch.randint(0, C, (N,)))
    (a, ha), (b, hb) = run(data), run(changed)
    for k in (0, 2):
        assert _max_diff(a.member(k), b.member(k)) == 0.0
        assert ha.query("member == @k")["value"].tolist() == hb.query("member == @k")["value"].tolist()
    assert _max_diff(a.member(1), b.member(1)) > 0  # the control: member 1 did change


def test_per_member_early_stopping_restores_best_and_freezes():
    """Members 0 and 2 peak at the 2nd evaluation (step 20); their patience (2) runs out at step 40
    (min_steps=0) or, with min_steps=50, at step 50; member 1 keeps improving to the cap.
    Hand-checked stop records; a stopped member holds its step-20 weights from its stop on."""
    seeds, rule = [0, 1, 2], StopRule(max_steps=80, eval_every=10, patience=2, min_delta=0.01, min_steps=50)
    # member 0: best at 20, no gain above min_delta after (0.705 < 0.7 + 0.01); member 2: the same
    # curve but stopped only once min_steps=50 are done; member 1: rising every time
    curve0 = {10: 0.5, 20: 0.7, 30: 0.6, 40: 0.705, 50: 0.65, 60: 0.6, 70: 0.6, 80: 0.6}
    snapshots, frozen_checks = {}, []
    stack = MemberStack.from_seeds(_build, seeds)
    rule0 = StopRule(max_steps=80, eval_every=10, patience=2, min_delta=0.01, min_steps=0)
    step = {"n": 0}

    def val_fn(work):
        step["n"] += 10
        s = step["n"]
        for pos, m in enumerate(work.ids):
            snapshots[(m, s)] = work.member_state(pos)
        if 0 not in work.ids:  # member 0 has stopped: the result stack holds its step-20 weights, unchanged
            frozen_checks.append(all(torch.equal(stack.member_state(0)[n], snapshots[(0, 20)][n])
                                     for n in snapshots[(0, 20)]))
        return [curve0[s] if m != 1 else s / 100 for m in work.ids]

    history, stops = fit_members(stack, _loss, MemberBatches([_data(s) for s in seeds], B, seeds), val_fn, rule,
                                 lr=1e-2)
    assert stops[1] == {"member": 1, "stop_step": 80, "best_step": 80, "best_val": 0.8, "capped": True}
    # members 0 and 2: bad at 30, 40 (patience reached but step < min_steps), 50 -> stop at 50
    for k in (0, 2):
        assert stops[k] == {"member": k, "stop_step": 50, "best_step": 20, "best_val": 0.7, "capped": False}
        assert _max_diff(stack.member(k), _module(snapshots[(k, 20)])) == 0.0
    assert frozen_checks and all(frozen_checks)
    assert _max_diff(stack.member(1), _module(snapshots[(1, 80)])) == 0.0
    curves = history.query("metric == 'val'")
    assert curves.groupby("member")["step"].max().tolist() == [50, 80, 50]
    # dropping the stopped members (and their optimizer state) leaves member 1's trajectory as it was
    alone = MemberStack.from_seeds(_build, seeds)
    fit_members(alone, _loss, MemberBatches([_data(s) for s in seeds], B, seeds), None,
                StopRule(max_steps=80, min_steps=0), lr=1e-2)
    assert _max_diff(stack.member(1), alone.member(1)) < 1e-6

    step["n"] = 0
    snapshots.clear()
    frozen_checks.clear()
    stack = MemberStack.from_seeds(_build, seeds)
    _, stops = fit_members(stack, _loss, MemberBatches([_data(s) for s in seeds], B, seeds), val_fn, rule0, lr=1e-2)
    assert stops[0] == {"member": 0, "stop_step": 40, "best_step": 20, "best_val": 0.7, "capped": False}
    assert _max_diff(stack.member(0), _module(snapshots[(0, 20)])) == 0.0
    assert frozen_checks and all(frozen_checks)


def _module(state: dict) -> nn.Module:
    m = _build()
    m.load_state_dict(state)
    return m


def test_dropout_masks_differ_across_members():
    stack = MemberStack.from_seeds(lambda: _build(dropout=0.5), [0, 0, 0, 0])  # four identical members
    x = torch.ones(3, D)
    out = stack.train()(x)
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[2], out[3])
    out = stack.eval()(x)
    assert all(torch.equal(out[0], out[k]) for k in range(1, 4))  # no dropout in eval mode: same model


def test_errors_name_the_problem():
    stack = MemberStack.from_seeds(_build, [0, 1])
    with pytest.raises(ValueError, match=r"input 0 must have the 2 members"):
        stack(torch.randn(3, 5, D), per_member=True)
    with pytest.raises(ValueError, match=r"module 1 differs from module 0"):
        MemberStack([_build(), MLP(D, [21], C)])
    with pytest.raises(IndexError, match="member 5"):
        stack.member(5)
    with pytest.raises(ValueError, match=r"2 seeds for 3 members"):
        MemberBatches([_data(0)] * 3, B, [0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        MemberBatches([_data(0)], N + 1, [0])
    data = MemberBatches([_data(0), _data(1)], B, [0, 1])
    rule = StopRule(max_steps=5, eval_every=1, min_steps=0)
    with pytest.raises(ValueError, match=r"one scalar loss per member, got \(16,\)"):
        fit_members(stack, lambda m, b: F.cross_entropy(m(b[0]), b[1], reduction="none"), data, None, rule)

    x1, y1 = _data(1)
    nan_rows = MemberBatches([_data(0), (torch.full_like(x1, math.nan), y1)], B, [0, 1])  # member 1: NaN features
    with pytest.raises(NonFiniteLossError, match=r"member\(s\) \[1\] is not finite at step 1"):
        fit_members(stack, _loss, nan_rows, None, rule)
    with pytest.raises(ValueError, match=r"val_fn returned 3 values for 2 members"):
        fit_members(stack, _loss, data, lambda w: [0.0, 0.0, 0.0], rule)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fit_members(stack, _loss, data, None, rule, optimizer="lbfgs")
