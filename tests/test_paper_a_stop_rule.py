"""Paper A's one stop rule (HeadConfig.patience) for every model family, and the recorded validation curves."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clickvision.experiments.paper_a import core as A
from clickvision.experiments.paper_a import joint as J
from clickvision.experiments.paper_a import sota as S
from clickvision.experiments.paper_a import train as TR
from clickvision.experiments.paper_a.train import ClickLossSpec, HeadConfig, JointSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LOSS = ClickLossSpec(tau=0.1, bandwidth=0.01, threshold=0.16)


@pytest.fixture(scope="module")
def data():
    return A.load_data("smoke", with_map=False)


def test_patience_zero_keeps_fixed_epochs_and_no_monitor():
    cfg = HeadConfig(embedding="bifc")
    assert cfg.patience == 0
    tc = TR.train_config(cfg, 7, 0, "val_acc")
    assert tc.epochs == 7 and tc.monitor is None and tc.patience is None
    tc = TR.train_config(cfg.scaled(patience=3), 7, 0, "val_loss", "min")
    assert (tc.monitor, tc.mode, tc.patience, tc.restore_best) == ("val_loss", "min", 3, True)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_bad_patience_is_named(bad):
    with pytest.raises(ValueError, match="HeadConfig.patience"):
        HeadConfig(patience=bad)


def test_every_family_stops_on_its_own_validation_score_and_keeps_the_best(data):
    cfg = A.head_config("smoke", embedding="bifc", epochs=40, recognizer_epochs=40, patience=1, lr=0.05, visual_hidden=32)
    spec = JointSpec(lam=0.4, mu=1.0, click=LOSS, shared=False)
    with TR.record_histories() as fits:
        with TR.history_labels(method="joint", seed=0):
            joint = TR.train_joint(data, cfg, spec, seed=0)
        with TR.history_labels(method="TDL", seed=0):
            pred = TR.train_click_predictor(data, cfg, LOSS, seed=0)
            head = TR.train_recognizer(data.target, cfg, None, True, 0, len(data.classes), data.target_columns)
        with TR.history_labels(method="DAN", seed=0):
            dan = S.train_adapted(data, cfg, "DAN", 0)
    assert [(lab["method"], fam) for lab, fam, _ in fits] == [("joint", "joint"), ("TDL", "click predictor"),
                                                              ("TDL", "recognizer"), ("DAN", "DAN")]
    summary = J.stop_summary(fits)
    assert (summary["epochs_max"] < 40).all(), summary  # lr 0.05, patience 1: every family stops well before 40
    assert (summary["stopped_early"] == 1).all() and (summary["hit_cap"] == 0).all()
    # the weights kept are those of the best validation score (recomputed here, independently)
    t, va = data.target, data.target.rows("val")
    acc_head = TR.accuracy_in(t.y[va], TR.head_scores(head, t, None, va), data.target_columns)
    assert acc_head == pytest.approx(fits[2][2].attrs["best_value"])
    s_va = data.source.rows("val")
    acc_joint = np.mean([TR.accuracy_in(data.source.y[s_va], TR.joint_outputs(joint.model, data.source, s_va, 0)[0],
                                        data.source_columns),
                         TR.accuracy_in(t.y[va], TR.joint_outputs(joint.model, t, va, 1)[0], data.target_columns)])
    assert acc_joint == pytest.approx(fits[0][2].attrs["best_value"])
    vt = TR.domain_tensors(data.source, s_va, False, 0)
    pred.model.eval()
    with torch.no_grad():
        val_loss = float(LOSS(vt["v"], pred.model(vt["phi"])["click"], vt["valid"]).total)
    assert val_loss == pytest.approx(fits[1][2].attrs["best_value"], rel=1e-5)
    acc_dan = np.mean([TR.accuracy_in(d.y[r], S.adapted_logits(dan, d, r), c) for d, r, c in
                       ((data.source, s_va, data.source_columns), (t, va, data.target_columns))])
    assert acc_dan == pytest.approx(fits[3][2].attrs["best_value"])
    curves = J.recorded_curves(fits)
    assert set(curves["family"]) == {"joint", "click predictor", "recognizer", "DAN"}
    assert {"val_acc", "val_loss", "val_acc_s", "val_acc_t"} <= set(curves["metric"])


def test_without_a_recorder_or_patience_nothing_is_evaluated(data):
    cfg = A.head_config("smoke", embedding="bifc", epochs=2, recognizer_epochs=2)
    fit = TR.train_joint(data, cfg, JointSpec(lam=0.4, mu=1.0, click=LOSS, shared=False), seed=0)
    assert not (fit.history["split"] == "val").any()
    with TR.record_histories() as fits:
        TR.train_click_predictor(data, cfg, LOSS, seed=0)
    assert len(fits) == 1 and J.recorded_curves(fits).empty and J.stop_summary(fits).empty


def test_selection_sweeps_label_every_fit_and_the_figure_has_a_panel_per_family(data):
    """A.07 / A.08 select lambda and mu under the stop rule A.10-A.13 run with: every fit of their sweeps is
    labelled by model and setting, MTTDL's two fits (source network, target recogniser) once per seed."""
    import matplotlib

    matplotlib.use("Agg")
    cfg = A.head_config("smoke", embedding="bifc", epochs=3, recognizer_epochs=3, patience=1, visual_hidden=16)
    with TR.record_histories() as fits:
        rows = J.multidomain_sweep(data, cfg, [0.1, 1.0], [0], lam=0.4, click=LOSS)
    labels = [(lab["method"], fam) for lab, fam, _ in fits]
    assert labels == [("MTTDL", "joint"), ("MTTDL", "recognizer"), ("MTMDD-VM, mu=0.1", "joint"),
                      ("MTMDD-VM*, mu=0.1", "joint"), ("MTMDD-VM, mu=1", "joint"), ("MTMDD-VM*, mu=1", "joint")]
    assert set(rows["model"]) == {"MTTDL", "MTMDD-VM", "MTMDD-VM*"}
    stops = J.stop_summary(fits)
    assert len(stops) == len(labels) and (stops["epochs_max"] <= 3).all()
    fig = J.stop_curves_figure(fits, "seeds", {"MTTDL": "MTTDL (two stages)"})
    assert [ax.get_title() for ax in fig.axes] == ["joint", "recognizer"]
    assert "MTTDL (two stages)" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert fig.axes[0].get_ylabel() == "validation accuracy (%)"
    with TR.record_histories() as fits:
        J.multitask_table(data, cfg, [0.4], [0], click=LOSS)
    assert [lab["method"] for lab, _, _ in fits] == ["MDD-VM, lambda=1", "MTMDD-VM, lambda=0.4",
                                                     "MDD-VM*, lambda=1", "MTMDD-VM*, lambda=0.4"]
    assert J.stop_curves_figure([], "seeds") is None


def test_curves_score_every_family_each_epoch_and_train_the_same_weights(data):
    """HeadConfig.curves: a fixed-epoch run (patience 0) is scored on validation at every epoch's end, so its
    convergence can be read (joint.curve_plateau), and trains exactly the weights it trains without."""
    base = A.head_config("smoke", embedding="bifc", epochs=3, recognizer_epochs=3, visual_hidden=16)
    nets = {}
    for curves in (False, True):
        cfg = base.scaled(curves=curves)
        with TR.reuse_identical_fits(), TR.record_histories() as fits, TR.history_labels(method="TDL", seed=0):
            pred = TR.train_click_predictor(data, cfg, LOSS, seed=0).model
            head = TR.train_recognizer(data.target, cfg, None, True, 0, len(data.classes), data.target_columns)
            vse = S.train_vse(data, cfg, 0)
        nets[curves] = (pred, head, vse, fits)
    for a, b in zip(nets[False][:3], nets[True][:3]):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), name
    assert all((h["split"] != "val").all() for _, _, h in nets[False][3])
    curves = J.recorded_curves(nets[True][3])
    watched = curves[curves["metric"] == curves["monitor"]]
    assert watched.groupby("family")["metric"].first().to_dict() == {"click predictor": "val_loss",
                                                                     "recognizer": "val_acc", "VSE++": "val_rsum"}
    assert (watched.groupby("family")["epoch"].max() == 3).all()  # every epoch, no stop
    plateau = J.curve_plateau(watched.assign(method=watched["family"]), last=2)
    assert set(plateau["method"]) == {"click predictor", "recognizer", "VSE++"} and (plateau["epochs"] == 3).all()
    assert not any(h.attrs.get("stopped_early") for _, _, h in nets[True][3])
    summary = J.curve_summary(nets[True][3]).set_index("family")
    assert summary.loc["recognizer", "method"] == "TDL, target" and summary.loc["click predictor", "method"] == "TDL"


def test_click_epochs_caps_the_click_predictor_alone(data):
    """HeadConfig.click_epochs: the click predictors' own cap (here their fixed epochs); 0 means ``epochs``; a bad
    value is named."""
    cfg = A.head_config("smoke", embedding="bifc", epochs=1, recognizer_epochs=1, curves=True, visual_hidden=8)
    with TR.record_histories() as fits:
        TR.train_click_predictor(data, cfg.scaled(click_epochs=3), LOSS, seed=0)
        TR.train_click_predictor(data, cfg, LOSS, seed=0)
    assert [int(h["epoch"].max()) for _, _, h in fits] == [3, 1]
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="HeadConfig.click_epochs"):
            HeadConfig(click_epochs=bad)


def test_bad_curves_flag_is_named():
    with pytest.raises(ValueError, match="HeadConfig.curves"):
        HeadConfig(curves=1)


def test_curve_summary_reads_each_familys_own_direction():
    """curve_summary: a loss curve still falling and an accuracy curve still rising are both 'still improving';
    flat ones are not; the best epoch of a loss is its lowest."""
    import pandas as pd

    def hist(name, values):
        return pd.DataFrame({"step": range(1, len(values) + 1), "epoch": range(1, len(values) + 1), "split": "val",
                             "name": name, "value": values})

    fits = [({"method": "m", "seed": s}, "click predictor", hist("val_loss", [1.0, 0.8, 0.6, 0.5 - 0.01 * s]))
            for s in range(2)]
    fits += [({"method": "m", "seed": s}, "recognizer", hist("val_acc", [0.2, 0.5, 0.5, 0.5])) for s in range(2)]
    fits += [({"method": None, "seed": 0}, "recognizer", hist("val_acc", [0.1, 0.2, 0.3, 0.4]))]
    t = J.curve_summary(fits, last=2).set_index(["family", "method"])
    assert t.loc[("click predictor", "m"), "still_improving"] and t.loc[("click predictor", "m"), "best_epoch"] == 4
    assert t.loc[("click predictor", "m"), "change_last_2"] == pytest.approx(-0.305)  # epoch 4 minus epoch 2
    assert not t.loc[("recognizer", "m"), "still_improving"] and t.loc[("recognizer", "m"), "best_epoch"] == 2
    assert t.loc[("recognizer", "(unlabelled)"), "still_improving"]  # one fit: any gain counts
    assert not t["past_best"].any()  # none is kept worse than its best mean's epoch
    assert J.curve_summary([]).empty


def test_curve_summary_flags_fixed_epoch_fits_kept_past_their_best():
    """past_best: fixed-epoch fits whose kept (last) epoch is worse than the best mean's epoch by more than the
    sd over fits; a stop rule's fits (History attrs 'monitor': their best epoch restored) never are; a decline
    within the fits' noise is not flagged."""
    import pandas as pd

    def hist(name, values, monitor=None):
        h = pd.DataFrame({"step": range(1, len(values) + 1), "epoch": range(1, len(values) + 1), "split": "val",
                          "name": name, "value": values})
        if monitor:
            h.attrs["monitor"] = monitor
        return h

    over = [0.2, 0.6, 0.5, 0.4]
    fits = [({"method": "fixed", "seed": s}, "recognizer", hist("val_acc", [v + 0.01 * s for v in over])) for s in range(3)]
    fits += [({"method": "stopped", "seed": s}, "recognizer", hist("val_acc", over, "val_acc")) for s in range(3)]
    fits += [({"method": "noisy", "seed": s}, "recognizer", hist("val_acc", [0.2, 0.6, 0.6, 0.6 + d]))
             for s, d in enumerate([-0.2, 0.15, 0.02])]  # mean decline 0.01, sd 0.18
    fits += [({"method": "fixed", "seed": s}, "click predictor", hist("val_loss", [1.0, 0.5, 0.7 + 0.01 * s]))
             for s in range(2)]  # a loss: worse is higher
    t = J.curve_summary(fits).set_index(["family", "method"])
    assert t.loc[("recognizer", "fixed"), "past_best"] and t.loc[("recognizer", "fixed"), "best_epoch"] == 2
    assert not t.loc[("recognizer", "stopped"), "past_best"]
    assert not t.loc[("recognizer", "noisy"), "past_best"]
    assert t.loc[("click predictor", "fixed"), "past_best"]


def test_curve_label_composes_method_setting_and_domain():
    import pandas as pd

    f = pd.DataFrame({"method": ["TDL", None, None, "V", "C[7]"], "setting": [None, "B=0.01", "B=0.01", None, None],
                      "domain": ["target", "source", None, None, "source"], "features": [None, "C", None, None, "V+C"]})
    assert J.curve_label(f).tolist() == ["TDL, target", "C, B=0.01, source", "B=0.01", "V", "C[7], V+C, source"]
    assert J.curve_label(f, domain=False).tolist() == ["TDL", "C, B=0.01", "B=0.01", "V", "C[7], V+C"]
    assert J.curve_label(pd.DataFrame({"method": [None]})).tolist() == ["(unlabelled)"]


def test_stop_rule_config_per_profile_and_fixed_epochs_fallback():
    """stop_rule_config: the profile's patience and cap (click predictors twice it); patience 0 keeps the profile's
    fixed epochs with curves; explicit epochs replace either; bad values are named; training_note says which."""
    cfg = A.stop_rule_config("default")
    assert (cfg.patience, cfg.epochs, cfg.recognizer_epochs, cfg.click_epochs, cfg.curves) == (3, 30, 30, 60, False)
    assert cfg.hidden == A.PROFILES["default"].hidden
    assert "stops after 3 epoch(s)" in A.training_note(cfg) and "click predictors 60" in A.training_note(cfg)
    fixed = A.stop_rule_config("default", patience=0)
    assert (fixed.patience, fixed.epochs, fixed.recognizer_epochs, fixed.click_epochs, fixed.curves) == (0, 15, 20, 0, True)
    assert A.training_note(fixed).startswith("fixed epochs: click predictors 15")
    assert A.stop_rule_config("default", patience=0, epochs=7).recognizer_epochs == 7
    small = A.stop_rule_config("smoke", epochs=5, sizes="default", embedding="bifc")
    assert (small.patience, small.epochs, small.click_epochs, small.hidden, small.embedding) == (1, 5, 10, 256, "bifc")
    for bad in ({"patience": -2}, {"epochs": -1}, {"patience": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            A.stop_rule_config("default", **bad)
    with pytest.raises(ValueError, match="profile"):
        A.stop_rule_config("huge")


def test_select_confirmed_reruns_a_one_seed_winner_on_every_seed():
    """A value that beats the reference on one seed is run on the others and judged again: here it wins on seed
    0 only, so after confirmation the reference is kept; a value that wins on every seed is kept."""
    import pandas as pd

    items = range(40)

    def rows(value, seeds, good):
        return pd.DataFrame([{"representation": "C", "metric": "val_correct_t", "B": value, "seed": s, "item": i,
                              "value": float(good(s, i))} for s in seeds for i in items])

    ref = rows(0.01, [0, 1, 2], lambda s, i: i % 2)
    lucky = rows(1e-4, [0], lambda s, i: i % 2 or i < 20)  # 10 more items right on seed 0
    calls = []

    def run_more(value, seeds):
        calls.append((value, seeds))
        return rows(value, seeds, lambda s, i: i % 2 and i > 20)  # worse than the reference on the others

    sel, out = A.select_confirmed(pd.concat([ref, lucky]), "B", 0.01, [0, 1, 2], run_more)
    assert calls == [(1e-4, [1, 2])] and sel.value == 0.01 and len(out) == 3 * 40 * 2
    steady = rows(1e-4, [0, 1, 2], lambda s, i: i % 2 or i < 20)
    sel, _ = A.select_confirmed(pd.concat([ref, steady]), "B", 0.01, [0, 1, 2], run_more)
    assert sel.value == 1e-4 and len(calls) == 1


def test_select_confirmed_runs_a_one_seed_reference_too():
    """The paired difference is judged on the seeds both ran: a reference run on one seed is run on the others."""
    import pandas as pd

    def rows(value, seeds):
        return pd.DataFrame([{"representation": "C", "metric": "val_correct_t", "lr": value, "seed": s, "item": i,
                              "value": float(i % 2 or (value == 0.1 and i < 20))} for s in seeds for i in range(40)])

    calls = []

    def run_more(value, seeds):
        calls.append((value, seeds))
        return rows(value, seeds)

    sel, out = A.select_confirmed(pd.concat([rows(0.001, [0]), rows(0.1, [0])]), "lr", 0.001, [0, 1], run_more)
    assert sorted(calls) == [(0.001, [1]), (0.1, [1])] and sel.value == 0.1
    assert set(out.loc[out["lr"] == 0.001, "seed"]) == {0, 1}


def test_curve_summary_of_stopped_fits_reads_each_fits_own_end():
    """Fits of different lengths (a stop rule): the best epoch over the epochs both ran, each fit's own last
    epoch and its own change over its last epochs -- not the longest fit's alone."""
    import pandas as pd

    def hist(values):
        h = pd.DataFrame({"step": range(1, len(values) + 1), "epoch": range(1, len(values) + 1), "split": "val",
                          "name": "val_acc", "value": values})
        h.attrs["monitor"] = "val_acc"
        return h

    fits = [({"method": "m", "seed": 0}, "recognizer", hist([0.2, 0.5, 0.6, 0.55, 0.55, 0.55])),
            ({"method": "m", "seed": 1}, "recognizer", hist([0.2, 0.4, 0.5, 0.6, 0.7, 0.69, 0.69, 0.69, 0.9]))]
    t = J.curve_summary(fits, last=3).iloc[0]
    assert t["epochs"] == 9 and t["best_epoch"] == 5  # mean over epochs 1-6 peaks at 5 (0.625)
    assert t["last_mean"] == pytest.approx((0.55 + 0.9) / 2)
    assert t["change_last_3"] == pytest.approx(((0.55 - 0.6) + (0.9 - 0.69)) / 2)  # epochs 6-3 and 9-6
    assert not t["past_best"]  # a stop rule keeps its best epoch
