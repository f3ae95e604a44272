"""The one Trainer (clickvision.train): config checks, schedules, determinism, resume,
early stopping, gradient recorders, NaN handling, atomic checkpoints, data plumbing."""
import copy
import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from clickvision import runtime
from clickvision.train import (
    GradNormRecorder, NonFiniteLossError, TrainConfig, TrainConfigError, Trainer, cycle_zip,
    grad_norms_of_terms, lr_factor, predict,
)


def make_xy(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).long()


def make_net(seed=0, dropout=0.3, hidden=8):
    runtime.seed_everything(seed)
    return nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2))


def ce_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def loader(X, y, batch_size=6, shuffle=True):
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle)


def train_rows(history, name="loss"):
    rows = history[(history.split == "train") & (history.name == name)]
    return rows.value.to_numpy()


# ----- config -------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, field", [
    ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"epochs": None}, "epochs"), ({"epochs": True}, "epochs"), ({"epochs": 0}, "epochs"),
    ({"momentum": 0.9, "optimizer": "adam"}, "momentum"), ({"momentum": 1.0}, "momentum"),
    ({"schedule": "step"}, "step_size"), ({"schedule": "multistep"}, "milestones"),
    ({"milestones": (5, 3)}, "milestones"), ({"eval_every": 0}, "eval_every"),
    ({"eval_every": "batch"}, "eval_every"), ({"patience": 2}, "monitor"), ({"mode": "up"}, "mode"),
    ({"device": "gpu0"}, "device"), ({"checkpoint_every": 5}, "checkpoint_path"),
    ({"seed": -1}, "seed"), ({"grad_clip": -1.0}, "grad_clip"), ({"amp": "yes"}, "amp"),
    ({"accumulate": 0}, "accumulate"), ({"gamma": 0}, "gamma"),
    ({"epochs": None, "max_steps": 5, "schedule": "cosine", "schedule_unit": "epoch"}, "epochs"),
])
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(TrainConfigError, match=rf"TrainConfig\.{field} must be"):
        TrainConfig(**{"epochs": 1, **kwargs})


def test_config_accepts_a_valid_setting():
    cfg = TrainConfig(max_steps=10, schedule="multistep", milestones=[3, 6], monitor="acc",
                      mode="max", patience=2, device="cpu")
    assert cfg.milestones == (3, 6)


# ----- learning-rate schedules ----------------------------------------------------------
def lrs_of(cfg, data):
    model = nn.Linear(3, 2)
    return train_rows(Trainer(model, ce_loss, cfg).fit(data), "lr")


def test_step_schedule_hand_values():
    X, y = make_xy()
    cfg = TrainConfig(max_steps=12, lr=0.1, schedule="step", step_size=5, gamma=0.5)
    expected = [0.1] * 5 + [0.05] * 5 + [0.025] * 2
    np.testing.assert_allclose(lrs_of(cfg, loader(X, y)), expected, rtol=1e-12)


def test_epoch_unit_schedule_changes_lr_at_epoch_ends():
    X, y = make_xy()  # 24 rows / 6 = 4 steps per epoch
    cfg = TrainConfig(epochs=3, lr=0.1, schedule="step", step_size=1, schedule_unit="epoch")
    np.testing.assert_allclose(lrs_of(cfg, loader(X, y)), [0.1] * 4 + [0.01] * 4 + [0.001] * 4,
                               rtol=1e-12)


@pytest.mark.parametrize("schedule, make", [
    ("multistep", lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, [2, 7], gamma=0.3)),
    ("cosine", lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12)),
])
def test_schedules_match_torch_schedulers(schedule, make):
    X, y = make_xy()
    cfg = TrainConfig(epochs=3, lr=0.2, schedule=schedule, milestones=(2, 7), gamma=0.3)
    ours = lrs_of(cfg, loader(X, y))  # 12 steps: cosine's length comes from len(loader)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.2)
    sched, oracle = make(opt), []
    for _ in range(12):
        oracle.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(ours, oracle, rtol=1e-9, atol=1e-12)


def test_cosine_without_a_length_fails_clearly():
    X, y = make_xy()
    cfg = TrainConfig(epochs=2, schedule="cosine")
    with pytest.raises(ValueError, match="cosine"):
        Trainer(nn.Linear(3, 2), ce_loss, cfg).fit(lambda: iter(loader(X, y)))
    assert lr_factor(TrainConfig(max_steps=4, schedule="cosine"), 2, 4) == pytest.approx(0.5)


# ----- determinism and resume -----------------------------------------------------------
def test_same_seed_same_history_and_another_seed_differs():
    X, y = make_xy()

    def run(seed):
        model = make_net()
        cfg = TrainConfig(epochs=2, lr=0.1, momentum=0.9, seed=seed)
        h = Trainer(model, ce_loss, cfg).fit(loader(X, y), loader(X, y))
        return h, model.state_dict()

    (h1, w1), (h2, w2), (h3, _) = run(0), run(0), run(1)
    pd.testing.assert_frame_equal(h1, h2)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert not np.array_equal(train_rows(h1), train_rows(h3))  # shuffling and dropout use it


def noisy_loss(model, batch):
    """Uses all three random streams: torch (dropout, shuffling), NumPy and Python."""
    x, y = batch
    x = x + 0.01 * torch.from_numpy(np.random.randn(*x.shape)).float() + 0.01 * random.random()
    return F.cross_entropy(model(x), y)


def test_resume_mid_epoch_is_bit_identical(tmp_path):
    X, y = make_xy()  # 4 batches per epoch: step 5 is the 1st batch of epoch 2

    def cfg(steps, path):
        return TrainConfig(max_steps=steps, lr=0.1, momentum=0.9, schedule="step", step_size=3,
                           gamma=0.5, checkpoint_path=path)

    straight = make_net()
    h_straight = Trainer(straight, noisy_loss, cfg(10, tmp_path / "a.pt")).fit(loader(X, y))

    Trainer(make_net(), noisy_loss, cfg(5, tmp_path / "b.pt")).fit(loader(X, y))
    resumed = make_net(seed=123)  # another init: the checkpoint must overwrite it
    trainer = Trainer(resumed, noisy_loss, cfg(10, tmp_path / "b.pt")).resume(tmp_path / "b.pt")
    assert trainer.step == 5
    h_resumed = trainer.fit(loader(X, y))

    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    pd.testing.assert_frame_equal(h_straight, h_resumed)
    assert (trainer.step, trainer.epoch) == (10, 2)


def test_evaluation_does_not_change_the_training_trajectory():
    X, y = make_xy()
    Xv, yv = make_xy(10, seed=1)
    runs = []
    for val in (None, loader(Xv, yv, batch_size=3, shuffle=True)):
        model = make_net()
        h = Trainer(model, ce_loss, TrainConfig(epochs=2, eval_every=1)).fit(loader(X, y), val)
        runs.append((train_rows(h), model.state_dict(), h))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    assert (runs[1][2].split == "val").sum() == 8  # loss at each of 8 steps


# ----- validation and early stopping ----------------------------------------------------
def test_validation_metrics_match_full_set_oracles():
    X, y = make_xy()
    Xv, yv = make_xy(20, seed=2)  # batches of 7, 7, 6: means must be weighted by size
    model = make_net()
    acc = {"acc": lambda m, b: (m(b[0]).argmax(1) == b[1]).float()}
    trainer = Trainer(model, ce_loss, TrainConfig(epochs=1), metrics=acc)
    trainer.fit(loader(X, y))
    metrics = trainer.evaluate(loader(Xv, yv, batch_size=7, shuffle=False))
    assert model.training  # evaluate restores the mode it found
    model.eval()
    with torch.no_grad():
        logits = model(Xv)
    assert metrics["loss"] == pytest.approx(F.cross_entropy(logits, yv).item(), rel=1e-6)
    assert metrics["acc"] == pytest.approx(accuracy_score(yv.numpy(), logits.argmax(1).numpy()))


def pull_to_five(model, batch):
    return ((model(batch) - 5.0) ** 2).mean()


@pytest.mark.parametrize("restore_best, final_w", [(True, 0.95), (False, 1.7195)])
def test_early_stopping_when_the_val_metric_worsens(restore_best, final_w):
    """w <- w - 0.05 * 2 (w - 5) from 0: 0.5, 0.95, 1.355, 1.7195; val (w - 1)^2 is best at
    step 2 and worsens after; patience 2 stops after step 4."""
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    cfg = TrainConfig(max_steps=100, lr=0.05, eval_every=1, monitor="dist", mode="min",
                      patience=2, restore_best=restore_best)
    dist = lambda m: {"dist": (m.weight.item() - 1.0) ** 2}  # noqa: E731
    h = Trainer(model, pull_to_five, cfg).fit([torch.ones(1, 1)], val_fn=dist)
    val = h[h.split == "val"]
    assert val.step.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(val.value, [0.25, 0.0025, 0.126025, 0.51768025], rtol=1e-5)
    assert h.attrs["best_step"] == 2
    assert model.weight.item() == pytest.approx(final_w, rel=1e-6)


def test_monitor_must_be_a_validation_metric():
    cfg = TrainConfig(max_steps=2, eval_every=1, monitor="acc")
    with pytest.raises(KeyError, match="monitor='acc'"):
        Trainer(nn.Linear(1, 1), pull_to_five, cfg).fit([torch.ones(1, 1)], val_fn=lambda m: {})


# ----- gradients ------------------------------------------------------------------------
def test_grad_norm_recorder_matches_manual_norms():
    runtime.seed_everything(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    manual_model = copy.deepcopy(model)
    X, y = make_xy(12)
    batches = [(X[i:i + 4], y[i:i + 4]) for i in range(0, 12, 4)]
    by_name, by_module = GradNormRecorder(["0", "2"]), GradNormRecorder({"first": model[0]}, 2)
    Trainer(model, ce_loss, TrainConfig(max_steps=3, lr=0.1),
            callbacks=[by_name, by_module]).fit(batches)

    opt, expected = torch.optim.SGD(manual_model.parameters(), lr=0.1), []
    for step, batch in enumerate(batches, 1):
        opt.zero_grad()
        ce_loss(manual_model, batch).backward()
        for name in ("0", "2"):
            layer = manual_model[int(name)]
            sq = layer.weight.grad.pow(2).sum() + layer.bias.grad.pow(2).sum()
            expected.append((step, name, math.sqrt(sq.item())))
        opt.step()
    got = by_name.to_frame()
    assert got[["step", "layer"]].values.tolist() == [[s, n] for s, n, _ in expected]
    np.testing.assert_allclose(got.grad_norm, [v for *_, v in expected], rtol=1e-5)
    first = by_module.to_frame()
    assert first.step.tolist() == [2]
    assert first.grad_norm.iloc[0] == pytest.approx(expected[2][2], rel=1e-5)
    with pytest.raises(KeyError, match="nope"):
        Trainer(copy.deepcopy(model), ce_loss, TrainConfig(max_steps=1),
                callbacks=[GradNormRecorder(["nope"])]).fit(batches)


class Dot(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 2.0, -1.0]))
        self.unused = nn.Parameter(torch.zeros(2))


def test_grad_norms_of_terms_hand_values_and_graph_kept():
    model, x = Dot(), torch.tensor([0.5, -1.0, 2.0])
    a, b = (model.w @ x) ** 2, model.w.sum()  # w.x = -3.5: grad a = -7 x, grad b = ones
    norms = grad_norms_of_terms(model, {"a": a, "b": b})
    assert norms["a"] == pytest.approx(7 * math.sqrt(5.25))
    assert norms["b"] == pytest.approx(math.sqrt(3))
    (a + b).backward()  # the graph survived
    torch.testing.assert_close(model.w.grad, -7 * x + 1)
    with pytest.raises(ValueError, match="'c'"):
        grad_norms_of_terms(model, {"c": torch.tensor(1.0)})


def test_term_gradients_from_a_callback_give_the_gd_ratio():
    """Paper A Table V: gd-ratio = |grad(weighted position)| / |grad(weighted count)|."""
    model = nn.Linear(3, 4)
    start = copy.deepcopy(model)
    X, y = make_xy(8)
    target = torch.rand(8, 4, generator=torch.Generator().manual_seed(0))

    def two_terms(m, batch):
        pred = m(batch)
        count = 0.36 * ((pred - target) ** 2).mean()
        position = 0.04 * ((torch.sigmoid(pred) - (target > 0.5).float()) ** 2).mean()
        return count + position, {"count": count, "position": position}

    class GdRatio:
        def on_before_backward(self, trainer, step, loss, terms):
            if step == 1:
                self.norms = grad_norms_of_terms(trainer.model, terms)

    cb = GdRatio()
    Trainer(model, two_terms, TrainConfig(max_steps=2), callbacks=[cb]).fit([X])
    _, terms = two_terms(start, X)
    assert cb.norms == pytest.approx(grad_norms_of_terms(start, terms), rel=1e-6)
    assert 0 < cb.norms["position"] / cb.norms["count"] < math.inf


def test_gradient_accumulation_equals_one_big_batch():
    X, y = make_xy(24)
    small = [(X[i:i + 4], y[i:i + 4]) for i in range(0, 24, 4)]
    big = [(X[i:i + 8], y[i:i + 8]) for i in range(0, 24, 8)]
    runs = []
    for data, accumulate in ((small, 2), (big, 1)):
        model = make_net(dropout=0.0)
        h = Trainer(model, ce_loss, TrainConfig(epochs=1, lr=0.3, accumulate=accumulate)).fit(data)
        runs.append((h, model.state_dict()))
    assert len(train_rows(runs[0][0])) == 3
    np.testing.assert_allclose(train_rows(runs[0][0]), train_rows(runs[1][0]), rtol=1e-6)
    for k, v in runs[0][1].items():
        torch.testing.assert_close(v, runs[1][1][k], rtol=1e-5, atol=1e-6)


def test_grad_clip_bounds_the_sgd_update():
    model = nn.Linear(3, 1)
    before = torch.cat([p.detach().clone().reshape(-1) for p in model.parameters()])
    loss = lambda m, b: 100 * m(b).sum()  # noqa: E731 - gradient norm >> 0.5
    Trainer(model, loss, TrainConfig(max_steps=1, lr=0.1, grad_clip=0.5)).fit([torch.ones(2, 3)])
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.1 * 0.5, rel=1e-5)


# ----- non-finite losses and checkpoints ------------------------------------------------
def test_nan_term_raises_naming_step_epoch_term_and_keeps_checkpoint(tmp_path):
    X, y = make_xy()
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        loss = ce_loss(model, batch)
        position = loss * (math.nan if len(calls) == 3 else 0.1)
        return loss + position, {"position": position}

    model, path = make_net(), tmp_path / "ck.pt"
    cfg = TrainConfig(epochs=1, checkpoint_path=path, checkpoint_every=1)
    with pytest.raises(NonFiniteLossError, match=r"position=nan.*step 3 \(epoch 1\)") as err:
        Trainer(model, loss_fn, cfg).fit(loader(X, y))
    assert "last checkpoint (step 2) is intact" in str(err.value)
    saved = torch.load(path, weights_only=True)
    assert saved["step"] == 2
    assert all(torch.equal(saved["model"][k], v) for k, v in model.state_dict().items())


def test_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    X, y = make_xy()
    path = tmp_path / "ck.pt"
    Trainer(make_net(), ce_loss, TrainConfig(max_steps=2, checkpoint_path=path)).fit(loader(X, y))
    good = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    trainer = Trainer(make_net(), ce_loss, TrainConfig(max_steps=4, checkpoint_path=path))
    with pytest.raises(OSError, match="disk full"):
        trainer.resume(path).fit(loader(X, y))
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left
    monkeypatch.undo()
    assert Trainer(make_net(), ce_loss, TrainConfig(max_steps=4)).resume(path).step == 2


def test_resume_rejects_missing_and_foreign_files(tmp_path):
    trainer = Trainer(make_net(), ce_loss, TrainConfig(max_steps=1))
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        trainer.resume(tmp_path / "nothing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a clickvision checkpoint"):
        trainer.resume(tmp_path / "other.pt")


# ----- data plumbing --------------------------------------------------------------------
class Unsized:
    """A re-iterable without len()."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def test_cycle_zip_cycles_the_shorter_loader():
    assert list(cycle_zip([1, 2, 3], "ab")) == [(1, "a"), (2, "b"), (3, "a")]
    named = cycle_zip(source=[1, 2], target=[10, 20, 30, 40, 50])
    assert len(named) == 5 and list(named)[-1] == {"source": 1, "target": 50}
    assert list(named) == list(named)  # re-iterable

    # without len(): stops once every loader has made a full pass
    assert list(cycle_zip(Unsized([1, 2]), Unsized("abc"))) == [(1, "a"), (2, "b"), (1, "c")]
    with pytest.raises(ValueError, match="yields no batches"):
        list(cycle_zip(Unsized([1, 2]), Unsized([])))
    with pytest.raises(ValueError, match="not both"):
        cycle_zip([1], b=[2])


def test_two_domain_training_from_a_dict_of_loaders():
    X, y = make_xy()
    Xt, yt = make_xy(12, seed=3)

    def two_domains(model, batch):
        return ce_loss(model, batch["source"]) + 0.9 * ce_loss(model, batch["target"])

    data = {"source": loader(X, y), "target": loader(Xt, yt)}  # 4 and 2 batches per epoch
    h = Trainer(make_net(), two_domains, TrainConfig(epochs=2)).fit(data)
    assert h[h.name == "loss"].groupby("epoch").size().tolist() == [4, 4]


def test_unsized_loaders_in_a_dict_train_by_epochs():
    X, y = make_xy()
    data = {"a": Unsized([(X[:6], y[:6])] * 3), "b": Unsized([(X[6:], y[6:])] * 2)}
    two = lambda m, b: ce_loss(m, b["a"]) + ce_loss(m, b["b"])  # noqa: E731
    h = Trainer(make_net(), two, TrainConfig(epochs=2)).fit(data)
    assert h.step.max() == 6


def test_callable_data_source_is_called_once_per_epoch():
    X, y = make_xy()
    calls = []

    def epoch_batches():
        calls.append(1)
        return iter(loader(X, y))

    h = Trainer(make_net(), ce_loss, TrainConfig(epochs=3)).fit(epoch_batches)
    assert len(calls) == 3 and h.step.max() == 12


def test_bad_data_and_losses_fail_clearly():
    X, y = make_xy()
    trainer = Trainer(make_net(), ce_loss, TrainConfig(epochs=1))
    with pytest.raises(TypeError, match="one-shot iterator"):
        trainer.fit(iter(loader(X, y)))
    with pytest.raises(ValueError, match="no batches"):
        trainer.fit([])
    vector_loss = lambda m, b: F.cross_entropy(m(b[0]), b[1], reduction="none")  # noqa: E731
    with pytest.raises(TypeError, match="scalar Tensor"):
        Trainer(make_net(), vector_loss, TrainConfig(epochs=1)).fit(loader(X, y))


def test_predict_matches_the_model_in_eval_mode():
    X, y = make_xy(20)
    model = make_net()
    out = predict(model, loader(X, y, batch_size=7, shuffle=False))
    assert model.training and not out.requires_grad
    model.eval()
    torch.testing.assert_close(out, model(X).detach())
    both = predict(model, [X[:5], X[5:]], forward=lambda m, b: (m(b), m(b).argmax(1)))
    assert both[1].tolist() == model(X).argmax(1).tolist()
