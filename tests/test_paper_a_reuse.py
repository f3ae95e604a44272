"""Paper A's reuse of identical trainings (``reuse_identical_fits``): the same numbers as training again."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from clickvision.experiments.paper_a import reduced as R
from clickvision.experiments.paper_a import train as T
from clickvision.experiments.paper_a.methods import run_methods
from clickvision.train.loop import _nonfinite

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = T.HeadConfig(embedding="bifc", hidden=8, visual_hidden=4, epochs=1, recognizer_epochs=1, batch_size=16)


def _same_module(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_reused_training_equals_a_fresh_one_and_leaves_the_same_random_state(paper_a_synth):
    data = paper_a_synth(3, 20)
    d, n = data.source, len(data.classes)
    fresh = T.train_recognizer(d, CFG, None, True, 3, n)
    after_fresh = torch.rand(3)
    with T.reuse_identical_fits():
        first = T.train_recognizer(d, CFG, None, True, 3, n)
        again = T.train_recognizer(d.subset(np.arange(len(d.y))), CFG, None, True, 3, n)  # equal content, new object
        after_again = torch.rand(3)
        assert again is not first and _same_module(again, first) and _same_module(again, fresh)
        assert torch.equal(after_again, after_fresh)
        other = T.train_recognizer(d, CFG, None, True, 4, n)  # another seed: trained, not reused
        assert not _same_module(other, first)
        fit = T.train_click_predictor(data, CFG, T.ClickLossSpec(tau=0.1), 2)
        fit2 = T.train_click_predictor(data, CFG, T.ClickLossSpec(tau=0.1), 2)
        assert _same_module(fit.model, fit2.model)
        pd.testing.assert_frame_equal(fit.history, fit2.history, check_exact=True)
    assert T._MEMO is None  # dropped with the block


def test_reduced_data_runs_equal_without_reuse(paper_a_synth, monkeypatch):
    data = paper_a_synth(3, 20)
    args = (data, CFG, [0], [1.0, 0.5], [1], ("VGGsrc", "TDL", "VGGimg"))
    rows, sizes = R.reduced_data_runs(*args)
    monkeypatch.setattr(R, "reuse_identical_fits", lambda: __import__("contextlib").nullcontext())
    rows0, sizes0 = R.reduced_data_runs(*args)
    pd.testing.assert_frame_equal(rows, rows0, check_exact=True)
    pd.testing.assert_frame_equal(sizes, sizes0, check_exact=True)


def test_multi_tensor_adam_trains_like_the_default(paper_a_synth):
    data = paper_a_synth(3, 20)
    rows = run_methods(["VGGsrc", "TDL"], data, CFG, [0])
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(T, "multi_tensor_steps", lambda trainer: trainer)  # the Trainer's default: for-loop Adam
    try:
        rows0 = run_methods(["VGGsrc", "TDL"], data, CFG, [0])
    finally:
        monkeypatch.undo()
    pd.testing.assert_frame_equal(rows, rows0, check_exact=True)


def test_nonfinite_fast_path_names_the_same_tensors():
    big = torch.full((4,), 3e38)  # finite, but its sum overflows: the exact check decides
    assert _nonfinite([("a", torch.ones(3)), ("big", big)]) == []
    bad = torch.ones(5)
    bad[2] = float("nan")
    inf = torch.ones(2)
    inf[0] = float("inf")
    assert _nonfinite([("a", torch.ones(3)), ("bad", bad), ("inf", inf), ("big", big)]) == ["bad", "inf"]


def test_with_a_stop_rule_other_validation_rows_are_another_fit(paper_a_synth):
    from dataclasses import replace as dc_replace

    data = paper_a_synth(3, 20)
    d = data.source
    cfg = CFG.scaled(patience=1, epochs=2, recognizer_epochs=2)
    n = int(d.y.max()) + 1
    va = d.rows("val")
    other = dc_replace(d, phi=d.phi.copy())
    other.phi[va] += 1.0  # the same training rows, other validation inputs
    with T.record_histories() as fits, T.reuse_identical_fits():
        T.train_recognizer(d, cfg, None, True, 0, n)
        T.train_recognizer(other, cfg, None, True, 0, n)  # trained: its stop rule reads other rows
        T.train_recognizer(d, cfg, None, True, 0, n)  # the first one again: a copy
        T.train_click_predictor(data, cfg, T.ClickLossSpec(tau=0.0), 0)
        moved = dc_replace(data, source=other)
        T.train_click_predictor(moved, cfg, T.ClickLossSpec(tau=0.0), 0)
    assert [family for _, family, _ in fits] == ["recognizer", "recognizer", "click predictor", "click predictor"]
    with T.record_histories() as fixed, T.reuse_identical_fits():  # no stop rule: validation rows do not matter
        T.train_recognizer(d, CFG, None, True, 0, n)
        T.train_recognizer(other, CFG, None, True, 0, n)
    assert len(fixed) == 1
