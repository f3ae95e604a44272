"""Faults of the Trainer found by a user (clickvision.train): NaN/inf gradients from a finite
loss, checkpoints of non-finite weights, resuming into another model or optimizer, the
checkpoint's lr overriding the config's, and diverged runs ending at chance level silently."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from clickvision import runtime
from clickvision import train as T
from clickvision.train import NonFiniteLossError, TrainConfig, Trainer
from test_train import make_net, make_xy  # the same tiny data and net as the Trainer's own tests


def ce_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def loader(X, y, batch_size=6, shuffle=True):
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle)


def lr_rows(history):
    return history[(history.split == "train") & (history.name == "lr")].value.tolist()


def all_finite(state):
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


# ----- 1. non-finite gradients and weights ----------------------------------------------
def test_nan_gradient_from_a_finite_loss_is_not_applied_nor_checkpointed(tmp_path):
    """sqrt'(0) = inf, times 0: the last bias gets a NaN gradient while the loss stays finite.
    Before the fix the NaN step was applied and checkpointed (step 3), and the NaN loss of step
    4 then called that NaN checkpoint 'intact'."""
    X, y = make_xy()
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        loss = ce_loss(model, batch)
        if len(calls) == 3:
            loss = loss + torch.sqrt(model[3].bias.sum() * 0.0)  # value 0, gradient NaN
        return loss

    model, path = make_net(), tmp_path / "ck.pt"
    cfg = TrainConfig(epochs=1, checkpoint_path=path, checkpoint_every=1)
    trainer = Trainer(model, loss_fn, cfg)
    with pytest.raises(NonFiniteLossError, match=r"gradient of 3\.bias at step 3 \(epoch 1\)") \
            as err:
        trainer.fit(loader(X, y))
    assert isinstance(err.value, T.NonFiniteGradientError)
    assert f"last checkpoint (step 2) is intact: {path}" in str(err.value)
    assert trainer.step == 2
    saved = torch.load(path, weights_only=True)
    assert saved["step"] == 2 and all_finite(saved["model"])
    assert all(torch.equal(saved["model"][k], v) for k, v in model.state_dict().items())


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    """A finite loss and gradient whose update overflows float32 (lr * grad = 1e40 at step 2):
    the step-2 checkpoint must not be written, and the error names the step-1 file."""
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        scale = 1e-30 if len(calls) == 1 else 1e10  # step 1 moves the weights by about 1
        w = model.weight.sum() * scale
        return w - w.detach() + model(batch).mean().detach()  # value finite, gradient = scale

    runtime.seed_everything(0)
    model, path = nn.Linear(3, 1), tmp_path / "ck.pt"
    cfg = TrainConfig(max_steps=3, lr=1e30, checkpoint_path=path, checkpoint_every=1)
    with pytest.raises(NonFiniteLossError, match=r"checkpoint .*ck\.pt not written at step 2.*"
                                                 r"non-finite weight") as err:
        Trainer(model, loss_fn, cfg).fit([torch.ones(2, 3)])
    assert isinstance(err.value, T.NonFiniteWeightsError)
    assert f"last checkpoint (step 1) is intact: {path}" in str(err.value)
    saved = torch.load(path, weights_only=True)
    assert saved["step"] == 1 and all_finite(saved["model"])


def test_resume_refuses_a_checkpoint_of_non_finite_weights(tmp_path):
    path = tmp_path / "ck.pt"
    trainer = Trainer(make_net(), ce_loss, TrainConfig(max_steps=1, checkpoint_path=path))
    trainer.fit(loader(*make_xy()))
    state = torch.load(path, weights_only=True)
    state["model"]["0.bias"][0] = math.nan  # e.g. written by an older version
    torch.save(state, path)
    with pytest.raises(NonFiniteLossError, match=r"ck\.pt holds non-finite 0\.bias") as err:
        Trainer(make_net(), ce_loss, TrainConfig(max_steps=2)).resume(path)
    assert isinstance(err.value, T.NonFiniteWeightsError)


# ----- 2. checkpoints that do not match the model or optimizer ----------------------------
def checkpoint_of(tmp_path, model, **kwargs):
    path = tmp_path / "ck.pt"
    Trainer(model, ce_loss, TrainConfig(max_steps=2, checkpoint_path=path, **kwargs)).fit(
        loader(*make_xy()))
    return path


@pytest.mark.parametrize("other, what", [
    (lambda: make_net(hidden=16), r"0\.weight has shape \(8, 3\) in the checkpoint but \(16, 3\)"),
    (lambda: nn.Sequential(nn.Linear(3, 2)),
     r"unexpected model keys in the checkpoint: 3\.weight, 3\.bias"),
    (lambda: nn.Sequential(make_net(), nn.Linear(2, 2)), r"model keys missing from the checkpoint"),
])
def test_resume_into_another_architecture_names_the_file_and_the_mismatch(tmp_path, other, what):
    path = checkpoint_of(tmp_path, make_net())
    model = other()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, ce_loss, TrainConfig(max_steps=4))
    with pytest.raises(ValueError, match=rf"checkpoint {path}.*{what}") as err:
        trainer.resume(path)
    assert isinstance(err.value, T.CheckpointError)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded
    assert trainer.step == 0


def test_resume_into_another_optimizer_names_both(tmp_path):
    path = checkpoint_of(tmp_path, make_net(), momentum=0.9)
    with pytest.raises(ValueError, match=rf"{path}.*optimizer 'sgd' in the checkpoint but "
                                         r"'adam' in the config") as err:
        Trainer(make_net(), ce_loss, TrainConfig(max_steps=4, optimizer="adam")).resume(path)
    assert isinstance(err.value, T.CheckpointError)
    net = make_net()
    groups = [{"params": net[0].parameters()}, {"params": net[3].parameters()}]
    with pytest.raises(ValueError, match=rf"{path}.*param groups: 1 in the checkpoint but 2 here"):
        Trainer(net, ce_loss, TrainConfig(max_steps=4), params=groups).resume(path)


def test_resume_of_an_incomplete_checkpoint_names_the_missing_entries(tmp_path):
    path = checkpoint_of(tmp_path, make_net())
    state = torch.load(path, weights_only=True)
    del state["optimizer"]
    torch.save(state, path)
    with pytest.raises(ValueError, match=rf"{path} lacks the entries \['optimizer'\]") as err:
        Trainer(make_net(), ce_loss, TrainConfig(max_steps=4)).resume(path)
    assert isinstance(err.value, T.CheckpointError)


# ----- 3. the config's lr wins on resume ---------------------------------------------------
@pytest.mark.parametrize("schedule, expected", [
    ({}, [0.1, 0.1]),
    ({"schedule": "step", "step_size": 2, "gamma": 0.5}, [0.05, 0.05]),  # step 3, 4: x0.5
])
def test_resume_keeps_the_configs_lr_and_warns(tmp_path, schedule, expected):
    X, y = make_xy()
    path = tmp_path / "ck.pt"
    Trainer(make_net(), ce_loss, TrainConfig(max_steps=2, lr=0.5, checkpoint_path=path,
                                             **schedule)).fit(loader(X, y))
    trainer = Trainer(make_net(), ce_loss, TrainConfig(max_steps=4, lr=0.1, **schedule))
    with pytest.warns(UserWarning, match=r"lr=0\.5 in the checkpoint but 0\.1 in the config"):
        trainer.resume(path)
    assert trainer.optimizer.param_groups[0]["initial_lr"] == 0.1
    assert lr_rows(trainer.fit(loader(X, y)))[2:] == pytest.approx(expected, rel=1e-12)

    same = Trainer(make_net(), ce_loss, TrainConfig(max_steps=4, lr=0.5, **schedule))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same.resume(path)  # equal lrs: no warning


# ----- 4. diverged runs at chance level are flagged ---------------------------------------
def xor_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    return X, (X[:, 0] * X[:, 1] > 0).long()  # 55% class 1 in the validation set below


def xor_fit(lr, seed=0, **kwargs):
    runtime.seed_everything(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    acc = {"acc": lambda m, b: (m(b[0]).argmax(1) == b[1]).float()}
    cfg = TrainConfig(epochs=8, lr=lr, seed=seed, monitor="acc", mode="max", **kwargs)
    trainer = Trainer(model, ce_loss, cfg, metrics=acc)
    history = trainer.fit(loader(*xor_data(256, 0), batch_size=32),
                          loader(*xor_data(200, 1), batch_size=100))
    return trainer, history


@pytest.mark.parametrize("seed", [0, 1])
def test_diverging_run_at_chance_level_is_flagged(seed):
    """lr = 1e6 (clipped so the loss stays finite): validation accuracy wanders around the
    majority share 0.55 and never reaches 0.65; before the fix nothing said so."""
    with pytest.warns(RuntimeWarning, match=r"validation acc never got better than chance"):
        trainer, history = xor_fit(1e6, seed, grad_clip=1.0, chance=0.55, min_delta=0.1)
    assert history.attrs["flags"] == trainer.flags == ["at_chance"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer, history = xor_fit(0.03, seed, optimizer="adam", chance=0.55, min_delta=0.1)
    assert history.attrs["flags"] == [] and history.attrs["best_value"] > 0.9


def test_a_monitor_that_never_moves_is_flagged_without_a_chance_level():
    X, y = make_xy()
    cfg = TrainConfig(epochs=3, monitor="acc", mode="max")
    with pytest.warns(RuntimeWarning, match=r"never got better than its first evaluation 0\.5"):
        h = Trainer(make_net(), ce_loss, cfg).fit(loader(X, y), val_fn=lambda m: {"acc": 0.5})
    assert h.attrs["flags"] == ["stalled"]
    with pytest.warns(RuntimeWarning, match=r"acc was never finite in 3 evaluations"):
        h = Trainer(make_net(), ce_loss, cfg).fit(loader(X, y),
                                                  val_fn=lambda m: {"acc": math.nan})
    assert h.attrs["flags"] == ["not_finite"]
    with pytest.raises(T.TrainConfigError, match=r"TrainConfig\.monitor must be set when chance"):
        TrainConfig(epochs=1, chance=0.5)


@pytest.mark.filterwarnings("ignore:validation loss never got better:RuntimeWarning")
def test_min_steps_holds_off_early_stopping_and_history_says_how_the_run_ended():
    import torch
    from torch import nn

    from clickvision.train import Trainer, TrainConfig

    torch.manual_seed(0)
    x, y = torch.randn(64, 3), torch.randn(64, 1)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]

    def loss_fn(model, batch):
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    def run(min_steps):
        model = nn.Linear(3, 1)
        cfg = TrainConfig(max_steps=200, optimizer="sgd", lr=1e-9, eval_every=4, monitor="loss",
                          patience=1, min_delta=1.0, min_steps=min_steps, progress=False)
        t = Trainer(model, loss_fn, cfg)
        h = t.fit(batches, batches)
        return h.attrs

    early = run(0)  # lr ~ 0: never improves by min_delta, patience 1 stops at the 2nd evaluation
    assert early["stopped_early"] and not early["hit_cap"] and early["stopped_step"] == 8
    held = run(40)
    assert held["stopped_early"] and held["stopped_step"] == 40
    capped = run(10**6)
    assert capped["hit_cap"] and not capped["stopped_early"] and capped["stopped_step"] == 200
