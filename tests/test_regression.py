"""The machine-independent regression check: trained numbers within a seed-spread tolerance."""
import json

import pandas as pd
import pytest

from clickvision import paths, regression


def _rows(values, seeds=(0,), metric="acc", params=None, time="2099-01-01T00:00:00"):
    params = params or {"width": 8}
    out = []
    for s, v in zip(seeds, values):
        out.append({"experiment": "x", "run_id": f"r{s}", **params, "seed": s, "metric": metric,
                    "value": v, "time": time})
    return pd.DataFrame(out)


def test_seed_sd_from_per_seed_rows():
    ref = _rows([0.50, 0.52, 0.54], seeds=(0, 1, 2))
    sd = regression.seed_sd(ref)
    assert sd[("r0", "acc")] == pytest.approx(0.02)
    assert sd[("r2", "acc")] == pytest.approx(0.02)


def test_compare_within_and_outside_tolerance():
    ref = _rows([0.50, 0.52, 0.54], seeds=(0, 1, 2))  # seed sd 0.02 -> tolerance 0.06
    near = _rows([0.55, 0.52, 0.54], seeds=(0, 1, 2))
    far = _rows([0.57, 0.52, 0.54], seeds=(0, 1, 2))
    assert regression.compare(near, ref)["ok"].all()
    table = regression.compare(far, ref)
    assert list(table["ok"]) == [False, True, True]
    assert table["tolerance"].iloc[0] == pytest.approx(0.06)


def test_compare_given_sd_and_floor():
    ref, run = _rows([0.5]), _rows([0.525])
    assert not regression.compare(run, ref)["ok"].all()  # one seed, no sd, no floor: exact
    assert regression.compare(run, ref, sd=0.01)["ok"].all()  # 3 x 0.01 covers 0.025
    assert not regression.compare(run, ref, sd={"acc": 0.005})["ok"].all()
    assert regression.compare(run, ref, atol=0.05)["ok"].all()


def test_missing_metric_fails():
    ref = pd.concat([_rows([0.5]), _rows([0.7], metric="map")])
    run = _rows([0.5])
    table = regression.compare(run, ref, atol=1.0)
    assert table.set_index("metric").loc["map", "ok"] == False  # noqa: E712 - numpy bool


def _setup_dirs(tmp_path, monkeypatch, ref, run):
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    tmp_path.mkdir(parents=True, exist_ok=True)
    ref_dir.mkdir()
    run_dir.mkdir()
    ref.to_csv(ref_dir / "x.csv", index=False)
    run.to_csv(run_dir / "x.csv", index=False)
    monkeypatch.setattr(paths, "RESULTS_DIR", run_dir)
    monkeypatch.setenv("CLICKVISION_REFERENCE_DIR", str(ref_dir))


def test_check_raises_naming_metric(tmp_path, monkeypatch, capsys):
    _setup_dirs(tmp_path, monkeypatch, _rows([0.5]), _rows([0.6]))
    with pytest.raises(regression.RegressionError, match=r"acc \[r0\]: committed 0.5, this run 0.6"):
        regression.check("x", atol=0.05)
    out = capsys.readouterr().out
    assert "0.5" not in out and "0.6" not in out  # the printed line holds no measured number


def test_check_passes_within_tolerance(tmp_path, monkeypatch):
    _setup_dirs(tmp_path, monkeypatch, _rows([0.5]), _rows([0.52]))
    table = regression.check("x", atol=0.05)
    assert len(table) == 1 and table["ok"].all()


def test_check_ignores_rows_older_than_this_process(tmp_path, monkeypatch):
    # the scratch results start as a copy of the committed rows: those must not count as this run's
    _setup_dirs(tmp_path, monkeypatch, _rows([0.5]), _rows([0.5], time="2000-01-01T00:00:00"))
    with pytest.raises(regression.RegressionError, match="recorded no metrics"):
        regression.check("x", atol=0.05)


def test_a_run_with_other_parameters_is_not_compared(tmp_path, monkeypatch):
    _setup_dirs(tmp_path, monkeypatch, _rows([0.5]), _rows([0.9], seeds=(5,)))  # a smoke run / sweep point
    assert regression.check("x", atol=0.05) is None


def test_seed_sd_with_empty_parameter_cells():
    ref = _rows([0.50, 0.52, 0.54], seeds=(0, 1, 2), params={"width": 8, "root": float("nan")})
    assert regression.seed_sd(ref)[("r1", "acc")] == pytest.approx(0.02)


def test_check_compares_the_runs_repeated_and_every_metric_of_them(tmp_path, monkeypatch):
    ref = pd.concat([_rows([0.5]), _rows([0.7], metric="map"), _rows([0.9], seeds=(7,))])  # r7: a sweep point
    _setup_dirs(tmp_path, monkeypatch, ref, _rows([0.5]))
    with pytest.raises(regression.RegressionError, match=r"map \[r0\]: committed 0.7, this run nan"):
        regression.check("x", atol=0.05)


def test_no_reference_no_comparison(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLICKVISION_REFERENCE_DIR", raising=False)
    assert regression.check("x", atol=0.05) is None
    assert "Regression check of x" in capsys.readouterr().out
    monkeypatch.setenv("CLICKVISION_REFERENCE_DIR", str(paths.RESULTS_DIR))  # itself: nothing to compare
    assert regression.check("x", atol=0.05, quiet=True) is None


def test_bad_tolerance_named():
    with pytest.raises(ValueError, match="atol"):
        regression.check("x", atol=-1)


def test_set_ignore_tags(tmp_path):
    nb = {"cells": [{"id": "a", "cell_type": "code", "metadata": {}, "source": "", "outputs": []},
                    {"id": "b", "cell_type": "code", "metadata": {"tags": ["x"]}, "source": "", "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "n.ipynb"
    p.write_text(json.dumps(nb))
    assert regression.set_ignore_tags(p, ["b"]) == 1
    assert regression.tagged_cells(p) == [1]
    assert regression.set_ignore_tags(p, ["b"]) == 0
    with pytest.raises(KeyError, match="zz"):
        regression.set_ignore_tags(p, ["zz"])


def test_a_run_whose_validation_selection_differs_is_not_compared(tmp_path, monkeypatch, capsys):
    """On another CPU a setting chosen on validation can flip; the metrics trained with it are then
    not comparable: that run is left out (named in attrs), the others still compared, nothing printed."""
    def rows(acc_a, drop_a, acc_b, drop_b):
        return pd.concat([_rows([acc_a], seeds=(0,)), _rows([drop_a], seeds=(0,), metric="dropout"),
                          _rows([acc_b], seeds=(1,)), _rows([drop_b], seeds=(1,), metric="dropout")])

    _setup_dirs(tmp_path, monkeypatch, rows(0.50, 0.5, 0.60, 0.2), rows(0.58, 0.2, 0.61, 0.2))
    with pytest.raises(regression.RegressionError, match=r"acc \[r0\]"):
        regression.check("x", sd=0.0, atol=0.05, metrics=["acc"])  # without the selections: r0 is far off
    capsys.readouterr()
    table = regression.check("x", sd=0.0, atol=0.05, metrics=["acc"], selections=["dropout"])
    assert table.attrs["not_compared"] == ["r0"] and list(table["run_id"]) == ["r1"] and table["ok"].all()
    assert "r0" not in capsys.readouterr().out
    # every compared run's selection differs: nothing compared, no error
    _setup_dirs(tmp_path / "all", monkeypatch, rows(0.50, 0.5, 0.60, 0.5), rows(0.58, 0.2, 0.70, 0.2))
    empty = regression.check("x", sd=0.0, atol=0.05, metrics=["acc"], selections=["dropout"])
    assert empty.empty and empty.attrs["not_compared"] == ["r0", "r1"]
