"""The sweep runner dispatching grid points to a Dask cluster (a LocalCluster of 2 worker processes).

Real papermill runs of the fixture notebook on the workers (papermill in the sweep's own process
is replaced by a stub that fails the test, so a point that ran did run on a worker). The
guarantees of the thread executor hold: every point recorded once, a second run adds nothing, a
deleted results CSV is re-recorded from the rows logs without running, a failing point is named
(its failure copy kept) while the others finish.
"""
from __future__ import annotations

import os

import pandas as pd
import pytest
from clickvision import paths, sweep

distributed = pytest.importorskip("distributed")

FIXTURE = paths.PROJ_ROOT / "tests" / "fixtures" / "notebooks" / "sweep_fixture.ipynb"


@pytest.fixture(scope="module")
def executor():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        ex = sweep.DaskExecutor(client=client)
        assert ex.slots == 2
        yield ex
        ex.close()  # a client passed in stays open: the fixture closes it


@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    # as if CLICKVISION_RESULTS_DIR were set before the process started (paths reads it once)
    monkeypatch.setenv("CLICKVISION_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")

    def local_run(*a, **kw):
        raise AssertionError("a point ran in the sweep's own process, not on a Dask worker")
    monkeypatch.setattr(sweep, "run_notebook", local_run)
    return tmp_path


def test_points_recorded_once_resumable_and_rerecorded(executor, dirs, capsys):
    csv = dirs / "results" / "sweep-fixture.csv"
    runs = dirs / "runs"
    table, infos = sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs, executor=executor)
    assert [i.ok for i in infos] == [True] * 2, [i.log_tail for i in infos]
    assert sorted(table["value"]) == [1.0, 4.0]
    first = pd.read_csv(csv, dtype={"run_id": str})
    assert len(first) == 2 and first["run_id"].is_unique  # each point once
    assert "executor: dask" in capsys.readouterr().out
    for p in (1, 2):
        assert (runs / FIXTURE.stem / f"x={p}.ipynb").exists() and (runs / FIXTURE.stem / f"x={p}.rows.jsonl").exists()
    # a second run adds nothing and runs nothing
    table2, infos2 = sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs, executor=executor)
    assert infos2 == [] and len(table2) == 2
    pd.testing.assert_frame_equal(pd.read_csv(csv, dtype={"run_id": str}), first)
    # the results CSV deleted: re-recorded from the rows logs, nothing re-run
    csv.unlink()
    table3, infos3 = sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs, executor=executor)
    assert infos3 == []
    assert "2 to re-record from their logs" in capsys.readouterr().out
    after = pd.read_csv(csv, dtype={"run_id": str}).sort_values("x").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, first.sort_values("x").reset_index(drop=True))
    assert sorted(table3["value"]) == [1.0, 4.0]


def test_failing_point_is_named_and_others_finish(executor, dirs):
    runs = dirs / "runs"
    table, infos = sweep.run_sweep(FIXTURE, {"x": [5], "fail": [False, True]}, runs_dir=runs, executor=executor)
    bad = [i for i in infos if not i.ok]
    failed = runs / FIXTURE.stem / "x=5__fail=True.failed.ipynb"
    assert len(bad) == 1 and bad[0].output == str(failed) and failed.exists()
    assert "asked to fail" in bad[0].log_tail
    assert table["value"].tolist() == [25.0]
    assert len(pd.read_csv(dirs / "results" / "sweep-fixture.csv")) == 1


def test_command_line_dask_executor(dirs, capsys):
    """``--executor dask --jobs 2``: a LocalCluster of 2 workers for this sweep; a failing point
    makes the exit status 1 and is named on stderr."""
    code = sweep.main([str(FIXTURE), "-p", "x", "7", "-p", "fail", "True", "--executor", "dask", "--jobs", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "executor: dask, a LocalCluster of 2 workers" in out
    assert "FAILED: " in err and "x=7__fail=True.failed.ipynb" in err and "asked to fail" in err
    with pytest.raises(SystemExit):
        sweep.main([str(FIXTURE), "-p", "x", "1", "--executor", "threads", "--scheduler", "tcp://127.0.0.1:1"])


def _sleepy_notebook(path) -> None:
    """A notebook whose one parameter is ``x`` and whose next cell sleeps for ten minutes."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import time\ntime.sleep(600)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.skipif(bool(os.environ.get("PYTEST_XDIST_WORKER")),
                    reason="sends SIGINT to the test process, which a pytest-xdist worker does not receive as "
                           "Ctrl-C (make test runs xdist); runs under `make unit` / plain pytest")
def test_ctrl_c_kills_the_notebooks_on_the_workers(executor, dirs):
    """Ctrl-C during a point running on a worker: the sweep stops at once, the worker's papermill
    child is killed, no failure copy is left and the point runs again next time."""
    import os
    import signal
    import threading
    import time

    notebook = dirs / "sleepy.ipynb"
    _sleepy_notebook(notebook)
    runs = dirs / "runs"
    running = runs / "sleepy" / "x=1.running.ipynb"

    sent: list[float] = []
    returned = threading.Event()  # never signal this process once the sweep is over

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 240  # papermill writes its output notebook as it starts
        while not running.exists() and time.monotonic() < deadline and not returned.is_set():
            time.sleep(0.1)
        if running.exists() and not returned.wait(1.0):
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)  # what a terminal's Ctrl-C does

    timer = threading.Thread(target=interrupt_when_running, daemon=True)
    timer.start()
    try:
        with pytest.raises(sweep.SweepStopped, match="0 of 1 points done.*re-run the same command"):
            sweep.run_sweep(notebook, {"x": [1]}, runs_dir=runs, executor=executor)
    finally:
        returned.set()
        timer.join(5)
    assert sent and time.monotonic() - sent[0] < 60, "the sweep waited for the sleeping cell instead of killing it"
    def live() -> dict:
        return executor.client.run(lambda: len(__import__("clickvision.nbrun").nbrun._LIVE))

    deadline = time.monotonic() + 30  # the worker reaps its killed child asynchronously (slower under load)
    while any(live().values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert live() == {w: 0 for w in executor.client.nthreads()}, "a papermill child is still running on a worker"
    assert not list((runs / "sleepy").glob("*.failed.ipynb")) and not list((runs / "sleepy").glob("*.running.*"))
    assert sweep._Point(runs / "sleepy", {"x": 1}).state()[0] == "run"
