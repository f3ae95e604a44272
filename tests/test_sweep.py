"""The sweep runner on a tiny fixture notebook (no torch, so each point takes seconds)."""
import pytest

from clickvision import paths, sweep

FIXTURE = paths.PROJ_ROOT / "tests" / "fixtures" / "notebooks" / "sweep_fixture.ipynb"


@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    # as if CLICKVISION_RESULTS_DIR were set before the process started (paths reads it once)
    monkeypatch.setenv("CLICKVISION_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    return tmp_path


def test_grid_and_names():
    g = sweep.grid({"a": [1, 2], "b": ["x"]})
    assert g == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert sweep.point_name({"lr": 0.1, "h": [1, 2]}) == "lr=0.1__h=-1-2-"
    assert sweep.parse_value("0.5") == 0.5 and sweep.parse_value("smoke") == "smoke"
    assert sweep.parse_value("[1, 2]") == [1, 2] and sweep.parse_value("True") is True


def test_sweep_three_points_resumable(dirs):
    import pandas as pd

    table, infos = sweep.run_sweep(FIXTURE, {"x": [1, 2, 3]}, jobs=2, runs_dir=dirs / "runs")
    assert [i.ok for i in infos] == [True] * 3
    assert sorted(table["value"]) == [1.0, 4.0, 9.0]
    rows = pd.read_csv(dirs / "results" / "sweep-fixture.csv")
    assert len(rows) == 3
    table2, infos2 = sweep.run_sweep(FIXTURE, {"x": [1, 2, 3]}, runs_dir=dirs / "runs")
    assert infos2 == [] and len(table2) == 3  # nothing re-run, table gathered again
    assert len(pd.read_csv(dirs / "results" / "sweep-fixture.csv")) == 3


def test_failing_point_is_named_and_others_run(dirs):
    table, infos = sweep.run_sweep(FIXTURE, {"x": [5], "fail": [False, True]}, runs_dir=dirs / "runs")
    bad = [i for i in infos if not i.ok]
    assert len(bad) == 1 and bad[0].output.endswith("x=5__fail=True.failed.ipynb")
    assert "asked to fail" in bad[0].log_tail
    assert table["value"].tolist() == [25.0]


def test_unknown_parameter_is_named(dirs, capsys):
    with pytest.raises(SystemExit, match="unknown parameter 'y'.*accepts: fail, profile, x"):
        sweep.run_sweep(FIXTURE, {"y": [1]}, runs_dir=dirs / "runs")


def test_notebook_parameters_are_python_values():
    from clickvision.nbrun import notebook_parameters

    assert notebook_parameters(FIXTURE) == {"profile": "smoke", "x": 1, "fail": False}
