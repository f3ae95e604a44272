import json

import pytest

from clickvision import paths, results


@pytest.fixture()
def rdir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    return tmp_path


def test_record_appends_and_replaces_same_run(rdir):
    results.record("exp", {"acc": 0.5, "loss": 1.0}, {"lr": 0.1, "h": [1, 2]}, seed=0)
    results.record("exp", {"acc": 0.6, "loss": 0.9}, {"lr": 0.2, "h": [1, 2]}, seed=0)
    results.record("exp", {"acc": 0.7, "loss": 0.8}, {"lr": 0.1, "h": [1, 2]}, seed=0)  # re-run
    t = results.load("exp")
    assert len(t) == 4
    assert set(t.columns) >= {"experiment", "run_id", "lr", "h", "seed", "metric", "value", "time"}
    assert t.query("lr == 0.1 and metric == 'acc'")["value"].tolist() == [0.7]
    assert json.loads(t["h"].iloc[0]) == [1, 2]
    results.record("exp", {"acc": 0.1}, {"lr": 0.1, "h": [1, 2]}, seed=1)
    assert len(results.load("exp")) == 5


def test_record_rejects_bad_input(rdir):
    with pytest.raises(ValueError, match="clash"):
        results.record("exp", {"acc": 1.0}, {"metric": 1})
    with pytest.raises(TypeError, match="'acc'"):
        results.record("exp", {"acc": "high"})
    with pytest.raises(ValueError, match="plain file stem"):
        results.record("../x", {"acc": 1.0})


def test_run_log_for_sweeps(rdir, tmp_path, monkeypatch):
    log = tmp_path / "rows.jsonl"
    monkeypatch.setenv("CLICKVISION_RUN_LOG", str(log))
    results.record("exp", {"acc": 0.5}, {"lr": 0.1})
    assert json.loads(log.read_text())["value"] == 0.5


def test_seed_in_params_goes_to_seed_column(rdir):
    rows = results.record("exp", {"acc": 0.5}, {"lr": 0.1, "seed": 4})
    assert rows["seed"].tolist() == [4] and "seed" in rows.columns
    with pytest.raises(ValueError, match="disagrees"):
        results.record("exp", {"acc": 0.5}, {"lr": 0.1, "seed": 4}, seed=5)
