"""Paper A's SGD arm (A.15): HeadConfig's optimizer, the TrainConfig it builds, the arm and its claims on tiny data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from clickvision.claims import Ledger
from clickvision.experiments.paper_a import claims as AC
from clickvision.experiments.paper_a import optim as O
from clickvision.experiments.paper_a import train as T
from clickvision.models.mtmdd import MTMDDNet
from clickvision.train import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = T.HeadConfig(embedding="bifc", hidden=8, visual_hidden=4, epochs=1, recognizer_epochs=1, batch_size=16,
                   recognizer_batch_size=16)


@pytest.mark.parametrize("bad", ["adamw", "SGD", "", None])
def test_optimizer_must_be_adam_or_sgd(bad):
    with pytest.raises(ValueError, match=r"HeadConfig\.optimizer must be one of \('adam', 'sgd'\)"):
        T.HeadConfig(optimizer=bad)


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_momentum_must_lie_in_0_1(bad):
    with pytest.raises(ValueError, match="HeadConfig.momentum"):
        T.HeadConfig(optimizer="sgd", momentum=bad)


def test_adam_builds_exactly_the_train_config_of_before():
    """The defaults change no existing number: the TrainConfig paper A's heads got before the SGD arm."""
    for cfg in (T.HeadConfig(), CFG, T.HeadConfig(lr=3e-4, weight_decay=0.0, device="cpu")):
        before = TrainConfig(epochs=7, optimizer="adam", lr=cfg.lr, weight_decay=cfg.weight_decay, seed=3,
                             device=cfg.device, progress=False)
        assert cfg.optimizer == "adam"
        assert T.train_config(cfg, 7, 3) == before
    assert O.optimizer_config(CFG, "adam") == CFG  # the arm's Adam is every head's Adam


def test_sgd_gets_the_authors_solver_and_a_step_moves_the_weights(paper_a_synth):
    cfg = O.optimizer_config(CFG, "sgd")
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay) == ("sgd", 0.001, 0.9, 5e-4)
    tc = T.train_config(cfg, 2, 0)
    assert (tc.optimizer, tc.lr, tc.momentum, tc.weight_decay) == ("sgd", 0.001, 0.9, 5e-4)
    data = paper_a_synth(3, 20)
    T.seeded(0)
    net = MTMDDNet(T.make_embedding(cfg, data), None)
    trainer = Trainer(net, lambda m, b: m(b["phi"], None)["click"].pow(2).mean(), tc)
    opt = trainer.optimizer
    assert isinstance(opt, torch.optim.SGD)
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 5e-4 and g["lr"] == 0.001 for g in opt.param_groups)
    before = [p.detach().clone() for p in net.parameters()]
    s = data.source
    trainer.fit(T.Batches({"phi": torch.from_numpy(s.phi)}, 16))
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        O.optimizer_config(CFG, "rmsprop")


def test_the_arm_runs_both_optimisers_and_its_claims_are_judged(paper_a_synth):
    data = paper_a_synth(3, 20)
    arm = O.sgd_arm(data, CFG, CFG, [0, 1], sgd_lrs=(0.001, 0.1))
    assert arm.lrs["adam"] == 1e-3 and arm.lrs["sgd"] in (0.001, 0.1)
    assert set(arm.lr_rows["lr"]) == {0.001, 0.1} and set(arm.lr_rows["optimizer"]) == {"sgd"}
    for rows, col, vals in ((arm.b_rows, "B", {1e-4, 0.01}), (arm.mu_rows, "mu", {0.1, 1.0})):
        assert set(rows["optimizer"]) == {"adam", "sgd"} and set(rows[col]) == vals
        assert set(rows["seed"]) == {0, 1}
        items = rows[rows["metric"] == "correct_t"]
        assert len(items) and items["item"].notna().all()  # per test image, for the engine
    assert set(arm.mu_rows["model"]) == {"MTMDD-VM"}
    # the B sweep's Adam rows are A.04's loss_sweep with the same config; SGD's lr run equals the sweep's
    chosen = arm.lr_rows[arm.lr_rows["lr"] == arm.lrs["sgd"]]
    assert set(chosen["seed"]) == {0, 1}  # the chosen lr was confirmed on every seed before it was kept
    lr_run = chosen[chosen["seed"] == 0].drop(columns=["lr", "optimizer"])
    assert lr_run["metric"].str.startswith("val_correct_").any()  # the per-image rows the lr is selected on
    lr_run = lr_run[~lr_run["metric"].str.startswith("val_correct_")]
    sweep = arm.b_rows[(arm.b_rows["optimizer"] == "sgd") & (arm.b_rows["B"] == 0.01) & (arm.b_rows["seed"] == 0)]
    pd.testing.assert_frame_equal(lr_run.reset_index(drop=True),
                                  sweep.drop(columns=["lr", "optimizer"])[lr_run.columns].reset_index(drop=True))
    pairs = AC.claims_sgd_arm(arm.b_rows, arm.mu_rows)
    ids = [c.claim_id for c, _ in pairs]
    assert len(ids) == len(set(ids)) == 7 and "A15-mu-effect-sgd-vs-adam" in ids
    led = AC.judge_all(Ledger("test", {}), pairs)
    assert {j.verdict for j in led.judgements} <= {"supported", "contradicted", "inconclusive", "untestable"}
    # an optimiser that did not train: its claims and the extension are untestable with the reason
    pairs = AC.claims_sgd_arm(arm.b_rows, arm.mu_rows, untrained={"sgd": "chance at every lr"})
    kinds = {c.claim_id: (c.kind, c.reason) for c, _ in pairs}
    sgd_ids = [i for i in ids if i.startswith("A15-B-collapse-sgd-") or i == "A15-mu-smaller-better-sgd"]
    assert len(sgd_ids) == 3 and all(kinds[i] == ("untestable", "chance at every lr") for i in sgd_ids)
    assert kinds["A15-mu-effect-sgd-vs-adam"][0] == "untestable"
    adam_ids = [i for i in ids if i.startswith(("A15-B-collapse-adam-", "A15-mu-smaller-better-adam"))]
    assert len(adam_ids) == 3 and all(kinds[i][0] == "direction" for i in adam_ids)


def test_mu_sweep_rows_are_multidomain_sweeps(paper_a_synth):
    """The arm's MTMDD-VM rows equal joint.multidomain_sweep's MTMDD-VM rows (each run seeds itself)."""
    from clickvision.experiments.paper_a.joint import multidomain_sweep

    data = paper_a_synth(3, 20)
    ours = O.mu_sweep(data, CFG, [0.1, 1.0], [0], click=O.paper_click())
    theirs = multidomain_sweep(data, CFG, [0.1, 1.0], [0], click=O.paper_click())
    theirs = theirs[theirs["model"] == "MTMDD-VM"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs[ours.columns], check_exact=True)


def test_mu_effect_difference_of_differences_by_hand():
    rows = pd.DataFrame({"metric": "correct_t", "model": "MTMDD-VM", "seed": 0, "item": ["a", "b"] * 4,
                         "mu": [0.1, 0.1, 1.0, 1.0] * 2, "optimizer": ["sgd"] * 4 + ["adam"] * 4,
                         "value": [1, 1, 0, 1, 1, 0, 1, 0]})
    d = AC._mu_effect(rows[rows["optimizer"] == "sgd"], 0.1, 1.0, "MTMDD-VM")
    assert np.array_equal(d["value"].to_numpy(), [1.0, 0.0])
    d = AC._mu_effect(rows[rows["optimizer"] == "adam"], 0.1, 1.0, "MTMDD-VM")
    assert np.array_equal(d["value"].to_numpy(), [0.0, 0.0])
