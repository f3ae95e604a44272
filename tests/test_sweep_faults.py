"""Sweep faults: what "done" means, stray children, two sweeps at once, stale failures, Ctrl-C.

Most tests replace papermill by an in-process fake that records the fixture notebook's row
(fast). The stop tests run a real sweep process whose papermill children are a slow fake
``papermill`` module (it starts a grandchild too, as papermill starts a kernel).
"""
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from clickvision import paths, results, sweep
from clickvision.nbrun import RunInfo

FIXTURE = paths.PROJ_ROOT / "tests" / "fixtures" / "notebooks" / "sweep_fixture.ipynb"
EXPERIMENT = "sweep-fixture"


@pytest.fixture()
def use_results(tmp_path, monkeypatch):
    """``use_results(name)`` points the results folder at tmp_path/name, as setting
    CLICKVISION_RESULTS_DIR before starting a new process would."""
    monkeypatch.delenv("CLICKVISION_RUN_LOG", raising=False)

    def use(name: str) -> Path:
        d = tmp_path / name
        monkeypatch.setenv("CLICKVISION_RESULTS_DIR", str(d))
        monkeypatch.setattr(paths, "RESULTS_DIR", d)
        return d
    use("results")
    return use


class FakeRunner:
    """Stands in for ``run_notebook``: records ``x_squared`` like the fixture notebook."""

    def __init__(self, fail=()):
        self.calls, self.fail, self.lock = [], set(fail), threading.Lock()

    @staticmethod
    def record(x, log: str | os.PathLike) -> None:
        rows = results.record(EXPERIMENT, {"x_squared": x * x}, params={"x": x})
        with open(log, "a") as fh:  # what record does when CLICKVISION_RUN_LOG is set
            for r in rows.to_dict("records"):
                fh.write(json.dumps(r, default=str) + "\n")

    def __call__(self, notebook, output, parameters=None, env=None, timeout_s=0, **kw):
        x = parameters["x"]
        with self.lock:
            self.calls.append(x)
        Path(output).write_text("{}")
        if x in self.fail:
            return RunInfo(str(notebook), str(output), 1, 0.0, 0.0, "asked to fail")
        self.record(x, env[sweep.RUN_LOG_ENV])
        return RunInfo(str(notebook), str(output), 0, 0.0, 0.0, "")


@pytest.fixture()
def fake(monkeypatch):
    runner = FakeRunner()
    monkeypatch.setattr(sweep, "run_notebook", runner)
    return runner


def csv_rows(results_dir: Path) -> pd.DataFrame:
    return pd.read_csv(results_dir / f"{EXPERIMENT}.csv", dtype={"run_id": str})


# --- fault 1: "done" is judged by the recorded rows, under the (redirected) results folder ---

def test_runs_folder_lives_under_redirected_results_dir(use_results, fake, tmp_path, monkeypatch):
    env = {**os.environ, "CLICKVISION_RESULTS_DIR": str(tmp_path / "elsewhere")}
    out = subprocess.run([sys.executable, "-c", "from clickvision import paths; print(paths.RUNS_DIR)"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out) == tmp_path / "elsewhere" / "runs"
    res = use_results("results")
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "not-under-results")  # where today's code looked
    sweep.run_sweep(FIXTURE, {"x": [1]})
    assert (res / "runs" / FIXTURE.stem / "x=1.ipynb").exists()


def test_redirected_results_dir_gets_its_rows_not_a_phantom_table(use_results, fake, tmp_path):
    runs = tmp_path / "runs"
    first = use_results("first")
    sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs)
    assert sorted(csv_rows(first)["value"]) == [1.0, 4.0]
    second = use_results("second")
    table, infos = sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs)
    assert infos == [] and fake.calls == [1, 2]  # rows re-recorded from the logs, nothing re-run
    assert sorted(csv_rows(second)["value"]) == [1.0, 4.0]
    assert sorted(table["value"]) == [1.0, 4.0]


def test_deleted_results_are_rerecorded_from_logs_else_rerun(use_results, fake, tmp_path, capsys):
    res, runs = use_results("results"), tmp_path / "runs"
    sweep.run_sweep(FIXTURE, {"x": [1, 2, 3]}, runs_dir=runs)
    before = csv_rows(res).sort_values("x").reset_index(drop=True)
    (res / f"{EXPERIMENT}.csv").unlink()
    table, infos = sweep.run_sweep(FIXTURE, {"x": [1, 2, 3]}, runs_dir=runs)
    assert infos == [] and fake.calls == [1, 2, 3]
    after = csv_rows(res).sort_values("x").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)
    assert "3 to re-record from their logs" in capsys.readouterr().out
    # no log for x=2 either: that point runs again, the others are restored
    (res / f"{EXPERIMENT}.csv").unlink()
    (runs / FIXTURE.stem / "x=2.rows.jsonl").unlink()
    table, infos = sweep.run_sweep(FIXTURE, {"x": [1, 2, 3]}, runs_dir=runs)
    assert fake.calls == [1, 2, 3, 2] and [i.ok for i in infos] == [True]
    assert sorted(csv_rows(res)["value"]) == [1.0, 4.0, 9.0] == sorted(table["value"])


def test_partial_rows_missing_are_rerecorded(use_results, fake, tmp_path):
    res, runs = use_results("results"), tmp_path / "runs"
    sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs)
    rows = csv_rows(res)
    rows[rows["x"] != 2].to_csv(res / f"{EXPERIMENT}.csv", index=False)  # x=2's row lost
    table, infos = sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs)
    assert infos == [] and sorted(csv_rows(res)["value"]) == [1.0, 4.0]


# --- fault 3: a point another sweep holds is not run twice -----------------------------------

def test_point_held_by_another_sweep_is_not_run_twice(use_results, fake, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "LOCK_POLL_S", 0.05, raising=False)
    runs = tmp_path / "runs"
    out_dir = runs / FIXTURE.stem
    out_dir.mkdir(parents=True)
    other = open(out_dir / "x=2.lock", "a")  # the other sweep is running x=2
    fcntl.flock(other, fcntl.LOCK_EX)
    got = {}
    t = threading.Thread(target=lambda: got.update(out=sweep.run_sweep(FIXTURE, {"x": [1, 2, 3]}, runs_dir=runs)),
                         daemon=True)
    try:
        t.start()
        deadline = time.monotonic() + 30
        while sorted(fake.calls) != [1, 3] and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.05)
        time.sleep(0.2)
        assert 2 not in fake.calls
        # the other sweep finishes x=2 the way a sweep does, then lets go
        FakeRunner.record(2, out_dir / "x=2.rows.jsonl")
        (out_dir / "x=2.ipynb").write_text("{}")
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        other.close()
    t.join(30)
    assert not t.is_alive()
    table, infos = got["out"]
    assert sorted(fake.calls) == [1, 3] and len(infos) == 2
    assert sorted(table["value"]) == [1.0, 4.0, 9.0]


# --- fault 4: a stale failed copy goes once the point succeeds -------------------------------

def test_stale_failed_copy_removed_after_success(use_results, fake, tmp_path):
    runs = tmp_path / "runs"
    fake.fail = {2}
    _, infos = sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs)
    failed = runs / FIXTURE.stem / "x=2.failed.ipynb"
    assert [i.ok for i in infos] == [True, False] and failed.exists()
    fake.fail = set()
    table, infos = sweep.run_sweep(FIXTURE, {"x": [1, 2]}, runs_dir=runs)
    assert [i.ok for i in infos] == [True] and fake.calls == [1, 2, 2]
    assert not failed.exists() and (runs / FIXTURE.stem / "x=2.ipynb").exists()
    assert sorted(table["value"]) == [1.0, 4.0]


# --- faults 2 and 5: stopping a real sweep process --------------------------------------------

DRIVER = r'''
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
import papermill  # the real one, for the parameter check in this process
from clickvision import sweep
os.environ["PYTHONPATH"] = sys.argv[1]  # the children run the fake papermill
sys.exit(sweep.main([sys.argv[2], "-p", "x", "1"]))
'''

FAKE_PAPERMILL = r'''
import os, subprocess, sys, time
kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(os.environ["FAKE_PIDS"] + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()} {kid.pid}\n")
os.replace(os.environ["FAKE_PIDS"] + ".tmp", os.environ["FAKE_PIDS"])
time.sleep(120)
'''


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _wait_dead(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.fixture()
def sweep_process(tmp_path):
    """Start a sweep process on one point whose papermill child sleeps; yields
    (process, [child pid, grandchild pid]) once the child runs. Kills what is left at the end."""
    fake_dir = tmp_path / "fakepm"
    (fake_dir / "papermill").mkdir(parents=True)
    (fake_dir / "papermill" / "__init__.py").write_text("")
    (fake_dir / "papermill" / "__main__.py").write_text(FAKE_PAPERMILL)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    pid_file = tmp_path / "pids"
    env = {**os.environ, "CLICKVISION_RESULTS_DIR": str(tmp_path / "results"), "FAKE_PIDS": str(pid_file)}
    env.pop("CLICKVISION_RUN_LOG", None)
    proc = subprocess.Popen([sys.executable, str(driver), str(fake_dir), str(FIXTURE)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while not pid_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pid_file.exists(), f"the fake papermill never started: {proc.poll()} {proc.stderr.read() if proc.poll() is not None else ''}"
        pids = [int(p) for p in pid_file.read_text().split()]
        yield proc, pids
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in pids:  # only the processes this test started
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def _stop(proc, sig):
    """Send ``sig`` to the sweep and collect its (stdout, stderr); fail if it does not exit."""
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the sweep did not exit on {signal.Signals(sig).name}")


def test_sigterm_kills_the_child_and_its_group(sweep_process, tmp_path):
    proc, pids = sweep_process
    _, err = _stop(proc, signal.SIGTERM)
    assert _wait_dead(pids, 10) == [], "papermill child or its grandchild outlived the sweep"
    assert proc.returncode == 128 + signal.SIGTERM
    assert "re-run the same command to resume" in err and "Traceback" not in err
    runs = tmp_path / "results" / "runs" / FIXTURE.stem
    assert not list(runs.glob("*.failed.ipynb")) and not list(runs.glob("*.running.*"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_sigkill_of_the_sweep_takes_the_child_with_it(sweep_process):
    proc, pids = sweep_process
    proc.kill()
    proc.wait(timeout=30)
    # the direct child dies with its parent; papermill's kernel then exits on its own
    # (ipykernel polls its parent), which this fake grandchild does not do
    assert _wait_dead(pids[:1], 10) == [], "papermill child outlived a SIGKILLed sweep"


def test_ctrl_c_kills_children_prints_one_line_and_exits_130(sweep_process):
    proc, pids = sweep_process
    out, err = _stop(proc, signal.SIGINT)
    assert "Traceback" not in err, err
    assert proc.returncode == 130
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "re-run the same command to resume" in lines[0], err
    assert "0 of 1 points done" in lines[0]
    assert _wait_dead(pids, 10) == []
