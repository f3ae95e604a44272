"""Headless parameter sweeps over a notebook.

    python -m clickvision.sweep NOTEBOOK -p NAME V1 V2 ... [-p NAME2 ...] [--jobs N]
        [--executor threads|dask] [--scheduler tcp://HOST:PORT]

Runs papermill once per grid point. Executed copies go to ``<results>/runs/<notebook>/``
(``<results>`` is ``results/`` or ``CLICKVISION_RESULTS_DIR``), beside each point's log of the
result rows it recorded (``<point>.rows.jsonl``; every row a run records with
``clickvision.results.record`` goes to ``<results>/<experiment>.csv`` as usual). Values are
Python literals (``0.1``, ``True``, ``'smoke'``, ``[1,2]``); anything else is a string.

Resuming: a point is done when it once succeeded (its executed copy and its rows log exist)
and the results files still hold the rows its log lists. When they do not (the CSV was
deleted, or the results folder is another one), the rows are re-recorded from the log
without running the notebook again; a point with no successful run is run. So a sweep
resumes after a crash, Ctrl-C or kill, and a second run adds nothing.

A failing point does not stop the others; its notebook (``<point>.failed.ipynb``) is named
at the end, and removed once the point succeeds. The gathered table is read back from the
results files and printed at the end.

Two sweeps at once: each point is locked (``<point>.lock``) while it is checked and run.
A point another sweep holds is not run twice: it is put off to the end of this sweep, which
then waits for the lock, and runs the point only if the other sweep did not finish it.

Stopping: Ctrl-C, SIGTERM or SIGHUP kill the running papermill children (each in a process
group of its own, with its kernel), keep the points already done, print one line and exit
130 (143, 129); re-running the same command resumes. A SIGKILLed sweep takes its children
with it on Linux (see ``clickvision.nbrun``).

Executors: where a point's notebook runs (an :class:`Executor`). Everything else (the locks,
the state of each point, the rows logs, failure copies, re-recording, the gathered table)
stays in the sweep process, whichever executor runs the notebooks.

* ``threads`` (default, :class:`ThreadExecutor`): ``--jobs N`` papermill children of this process.
* ``dask`` (:class:`DaskExecutor`, needs ``pip install 'clickvision[distributed]'``): each point's
  papermill runs on a Dask worker through the same ``nbrun.run_notebook``; ``--scheduler
  tcp://HOST:PORT`` uses an existing cluster (as many points at once as it has worker threads,
  or ``--jobs`` if more), else a ``LocalCluster`` of ``--jobs`` single-thread worker processes.
  **A file system shared by this process and the workers is assumed, at the same paths**: the
  notebook, the runs folder (executed copies, rows logs) and the results folder, which a worker's
  notebook writes to. Workers need this package and its venv. A stop (Ctrl-C, SIGTERM) kills the
  papermill children on the workers (only this sweep's) and cancels the points not started.
  Slurm through ``submitit`` is documented in the README, not built in.
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures as cf
import fcntl
import hashlib
import itertools
import json
import os
import re
import signal
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from . import nbrun, paths, results
from .nbrun import RunInfo, notebook_parameters, run_notebook

RUN_LOG_ENV = "CLICKVISION_RUN_LOG"
RESULTS_ENV = "CLICKVISION_RESULTS_DIR"
LOCK_POLL_S = 0.5  # how often a sweep waiting for another sweep's point looks again


class SweepStopped(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C or a signal; ``message`` says what was done, ``signum`` why."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.message, self.signum = message, signum


class _Signalled(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def grid(spec: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(spec)
    return [dict(zip(names, combo)) for combo in itertools.product(*(spec[n] for n in names))]


def point_name(params: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in params.items()]
    name = "__".join(re.sub(r"[^A-Za-z0-9_.=-]+", "-", p) for p in parts) or "defaults"
    if len(name) > 120:
        name = name[:100] + "-" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def check_names(notebook: Path, spec: dict[str, list[Any]]) -> None:
    known = notebook_parameters(notebook)
    unknown = [n for n in spec if n not in known]
    if unknown:
        raise SystemExit(
            f"error: unknown parameter {', '.join(map(repr, unknown))} for {notebook}; "
            f"it accepts: {', '.join(sorted(known))}")


# --- the results files, as the sweep sees them ------------------------------------------------

def _read_results(path: Path) -> pd.DataFrame:
    """A results CSV (empty frame when missing); run ids stay strings (they may look numeric)."""
    if not path.exists():
        return pd.DataFrame()
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"run_id": str})


def _read_log(path: Path) -> list[dict[str, Any]]:
    """A point's logged rows; a run that recorded the same run and metric twice keeps the last."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    last = {(r["experiment"], str(r["run_id"]), str(r["metric"])): r for r in rows}
    return list(last.values())


def _by_experiment(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["experiment"], []).append(r)
    return out


def _missing_rows(rows: list[dict[str, Any]], cache: dict[str, set] | None = None) -> list[dict[str, Any]]:
    """The logged rows whose (run_id, metric) the results file of their experiment lacks."""
    cache = {} if cache is None else cache
    missing = []
    for exp, rs in _by_experiment(rows).items():
        if exp not in cache:
            table = _read_results(results.results_path(exp))
            cache[exp] = (set(zip(table["run_id"].astype(str), table["metric"].astype(str)))
                          if {"run_id", "metric"} <= set(table.columns) else set())
        missing += [r for r in rs if (str(r["run_id"]), str(r["metric"])) not in cache[exp]]
    return missing


def _rerecord(rows: list[dict[str, Any]], missing: list[dict[str, Any]]) -> int:
    """Write back the logged rows of every run with a missing row (replacing that run's rows,
    as ``results.record`` does); return the number of rows written."""
    runs = {(r["experiment"], str(r["run_id"])) for r in missing}
    n = 0
    for exp, rs in _by_experiment([r for r in rows if (r["experiment"], str(r["run_id"])) in runs]).items():
        new = pd.DataFrame(rs)
        new["run_id"] = new["run_id"].astype(str)
        path = results.results_path(exp)
        results.replace_rows(path, new, "run_id", new["run_id"], read=_read_results)
        n += len(new)
    return n


class _Point:
    """The files of one grid point in the runs folder."""

    def __init__(self, out_dir: Path, params: dict[str, Any]):
        self.params, self.name = params, point_name(params)
        stem = out_dir / self.name
        self.final = Path(f"{stem}.ipynb")             # executed copy of the last success
        self.log = Path(f"{stem}.rows.jsonl")          # rows that success recorded
        self.running = Path(f"{stem}.running.ipynb")   # papermill's output while it runs
        self.running_log = Path(f"{stem}.rows.running.jsonl")
        self.failed = Path(f"{stem}.failed.ipynb")
        self.lock = Path(f"{stem}.lock")               # io.file_lock's naming

    def state(self, cache: dict[str, set] | None = None) -> tuple[str, list, list]:
        """('done' | 'restore' | 'run', logged rows, missing rows)."""
        if not (self.final.exists() and self.log.exists()):
            return "run", [], []
        rows = _read_log(self.log)
        missing = _missing_rows(rows, cache)
        return ("restore" if missing else "done"), rows, missing

    def try_lock(self, wait: bool, cancel: threading.Event):
        """The point's lock (an open file) or None: held by another sweep and not waiting, or cancelled."""
        fh = open(self.lock, "a")
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh
            except BlockingIOError:
                if not wait or cancel.is_set():
                    fh.close()
                    return None
                cancel.wait(LOCK_POLL_S)


# --- stopping ---------------------------------------------------------------------------------

def _raise_signalled(signum, frame):
    raise _Signalled(signum)


def _install_stop_handlers() -> dict:
    """In the main thread: SIGTERM and SIGHUP stop the sweep like Ctrl-C (unless ignored, as
    under nohup). Returns the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    saved = {signal.SIGINT: signal.getsignal(signal.SIGINT)}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        saved[sig] = signal.getsignal(sig)
        if saved[sig] is not signal.SIG_IGN:
            signal.signal(sig, _raise_signalled)
    return saved


def _ignore_stop_signals(saved: dict) -> None:
    for sig in saved:  # a second Ctrl-C must not break off the cleanup
        signal.signal(sig, signal.SIG_IGN)


def _restore_handlers(saved: dict) -> None:
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


# --- executors: where a point's notebook runs -------------------------------------------------

class Executor:
    """Runs one grid point's notebook (papermill) and returns its ``RunInfo``; called from the
    sweep's thread pool, ``slots`` points at a time. ``stop(cancel)`` kills the runs of the sweep
    whose cancel event is ``cancel`` (set first: none of its runs starts after it); ``close()``
    frees what the executor holds. Locks, rows logs and failure copies stay with the sweep."""

    name = "executor"
    slots = 1

    def run(self, notebook: Path, output: Path, parameters: dict[str, Any], env: dict[str, str],
            timeout_s: int, cancel: threading.Event) -> RunInfo:
        raise NotImplementedError

    def stop(self, cancel: threading.Event) -> None:
        nbrun.kill_children(cancel)

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.name


class ThreadExecutor(Executor):
    """The default: ``jobs`` papermill children of this process at once."""

    name = "threads"

    def __init__(self, jobs: int = 1) -> None:
        self.slots = max(1, int(jobs))

    def run(self, notebook, output, parameters, env, timeout_s, cancel) -> RunInfo:
        return run_notebook(notebook, output, parameters, timeout_s=timeout_s, cancel=cancel, env=env)


# On a Dask worker: one cancel event per sweep, so a stop kills that sweep's runs only.
_WORKER_CANCELS: dict[str, threading.Event] = {}
_WORKER_LOCK = threading.Lock()


def _worker_cancel(sweep_id: str) -> threading.Event:
    with _WORKER_LOCK:
        return _WORKER_CANCELS.setdefault(sweep_id, threading.Event())


def _run_on_worker(sweep_id: str, notebook: str, output: str, parameters: dict[str, Any], env: dict[str, str],
                   timeout_s: int) -> RunInfo:
    """A point's papermill run on a Dask worker (the existing ``nbrun.run_notebook``)."""
    log = env.get(RUN_LOG_ENV)
    if log:  # a task re-run after its worker was lost starts a clean rows log
        Path(log).unlink(missing_ok=True)
    return nbrun.run_notebook(notebook, output, parameters, env=env, timeout_s=timeout_s,
                              cancel=_worker_cancel(sweep_id))


def _stop_on_worker(sweep_id: str) -> int:
    """Kill this sweep's papermill runs on a worker; later ones of it do not start."""
    return nbrun.kill_children(_worker_cancel(sweep_id))


class DaskExecutor(Executor):
    """Points run on a Dask cluster: ``scheduler`` (``tcp://HOST:PORT``), an existing
    ``distributed.Client`` (``client``, left open), or else a ``LocalCluster`` of ``jobs``
    single-thread worker processes. Assumes a file system shared with the workers, at the same
    paths. ``slots``: the cluster's worker threads, or ``jobs`` if more (extra points queue)."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, jobs: int = 1, client: Any = None) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise SystemExit("error: --executor dask needs Dask distributed: "
                             "pip install 'clickvision[distributed]' (or: pip install dask distributed)") from exc
        self._cluster = None
        self._owned = client is None
        if client is not None:
            self.client = client
        elif scheduler:
            try:
                self.client = distributed.Client(scheduler, timeout="30s")
            except OSError as exc:
                raise SystemExit(f"error: --scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from exc
        else:
            self._cluster = distributed.LocalCluster(n_workers=max(1, int(jobs)), threads_per_worker=1,
                                                     processes=True, dashboard_address=":0")
            self.client = distributed.Client(self._cluster)
        self.slots = max(1, int(jobs), sum(self.client.nthreads().values()))
        self._live: dict = {}  # future -> the cancel event of the sweep it belongs to
        self._ids: dict[int, tuple[threading.Event, str]] = {}  # a sweep's cancel event -> its id on the workers
        self._lock = threading.Lock()

    def _sweep_id(self, cancel: threading.Event) -> str:
        """One id per sweep (per cancel event): a stop kills that sweep's runs on the workers only."""
        if id(cancel) not in self._ids:
            self._ids[id(cancel)] = (cancel, uuid.uuid4().hex)
        return self._ids[id(cancel)][1]

    def describe(self) -> str:
        where = "a LocalCluster" if self._cluster is not None else f"the scheduler {self.client.scheduler.address}"
        workers = len(self.client.nthreads())
        return f"dask, {where} of {workers} worker{'' if workers == 1 else 's'}, {self.slots} points at once"

    def run(self, notebook, output, parameters, env, timeout_s, cancel) -> RunInfo:
        with self._lock:
            if cancel.is_set():
                return RunInfo(str(notebook), str(output), -1, 0.0, 0.0, "not started: the run was cancelled")
            fut = self.client.submit(_run_on_worker, self._sweep_id(cancel), str(notebook), str(output), parameters,
                                     env, timeout_s, pure=False, key=f"sweep-{Path(output).stem}-{uuid.uuid4().hex}")
            self._live[fut] = cancel
        try:
            return fut.result()
        except Exception as exc:  # noqa: BLE001 - cancelled, or the worker was lost: the point failed (or stopped)
            reason = "cancelled" if cancel.is_set() else f"the Dask task failed: {type(exc).__name__}: {exc}"
            return RunInfo(str(notebook), str(output), -1, 0.0, 0.0, reason)
        finally:
            with self._lock:
                self._live.pop(fut, None)

    def stop(self, cancel: threading.Event) -> None:
        nbrun.kill_children(cancel)
        with self._lock:
            cancel.set()  # no point of this sweep is submitted from now on
            live = [f for f, c in self._live.items() if c is cancel]
            sweep_id = self._ids.pop(id(cancel), (None, None))[1]
        if not live:
            return
        try:  # first kill the papermill children on the workers (a cancelled task's thread runs on)
            self.client.run(_stop_on_worker, sweep_id)
            self.client.cancel(live)
        except Exception as exc:  # noqa: BLE001 - the cluster is gone: its workers took their children along
            print(f"  [stop] could not reach the Dask workers: {type(exc).__name__}: {exc}", file=sys.stderr)

    def close(self) -> None:
        if self._owned:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()


def make_executor(kind: str = "threads", jobs: int = 1, scheduler: str | None = None) -> Executor:
    """The executor of ``--executor kind`` (``threads`` or ``dask``; a ``scheduler`` means dask)."""
    if scheduler and kind == "threads":
        kind = "dask"
    if kind == "threads":
        return ThreadExecutor(jobs)
    if kind == "dask":
        return DaskExecutor(scheduler, jobs)
    raise SystemExit(f"error: unknown executor {kind!r}; choose threads or dask")


# --- the sweep --------------------------------------------------------------------------------

def run_sweep(notebook: str | Path, spec: dict[str, list[Any]], jobs: int = 1,
              runs_dir: Path | None = None, timeout_s: int = 3600,
              executor: Executor | str | None = None) -> tuple[pd.DataFrame, list[RunInfo]]:
    """Run every grid point not yet done; return (gathered rows, infos of the runs made).

    ``executor``: where the notebooks run (an :class:`Executor`, or ``"threads"`` / ``"dask"``
    for :func:`make_executor` with ``jobs``; default: ``jobs`` threads of this process). An
    executor passed in is left open; one made here is closed at the end.

    Raises ``SweepStopped`` (a ``KeyboardInterrupt``) on Ctrl-C, or SIGTERM / SIGHUP when
    called from the main thread, after killing the runs in progress.
    """
    notebook = Path(notebook).resolve()
    if not notebook.exists():
        raise SystemExit(f"error: notebook not found: {notebook}")
    check_names(notebook, spec)
    out_dir = (runs_dir or paths.RESULTS_DIR / "runs") / notebook.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    points = list({point_name(p): p for p in grid(spec)}.values())  # a value given twice runs once
    cache: dict[str, set] = {}
    first = {point_name(p): _Point(out_dir, p).state(cache)[0] for p in points}
    states = Counter(first.values())
    todo = [p for p in points if first[point_name(p)] != "done"]
    restore = f", {states['restore']} to re-record from their logs" if states["restore"] else ""
    print(f"{notebook.name}: {len(points)} points, {states['done']} already done{restore}, "
          f"{states['run']} to run", flush=True)
    owned = not isinstance(executor, Executor)
    if owned:
        executor = make_executor(executor or "threads", jobs) if todo else ThreadExecutor(jobs)
    if not isinstance(executor, ThreadExecutor):
        print(f"  executor: {executor.describe()}", flush=True)

    # Children see the results folder this process checks, whatever their environment says.
    child_env = {RESULTS_ENV: str(paths.RESULTS_DIR)}
    cancel = threading.Event()
    counts: Counter = Counter()
    count_lock = threading.Lock()

    def say(pt: _Point, what: str, text: str = "") -> None:
        with count_lock:
            counts[what] += 1
        print(f"  [{what}] {pt.name}{text}", flush=True)

    def one(p: dict[str, Any], wait: bool) -> tuple[str, RunInfo | None]:
        pt = _Point(out_dir, p)
        fh = pt.try_lock(wait, cancel)
        if fh is None:
            return ("stopped" if cancel.is_set() else "held"), None
        try:
            if cancel.is_set():
                return "stopped", None
            state, rows, missing = pt.state()  # again, under the lock: another sweep may have run it
            if state == "done":
                say(pt, "done", " (finished by another sweep)")
                return "done", None
            if state == "restore":
                n = _rerecord(rows, missing)
                say(pt, "restored", f": {n} row{'' if n == 1 else 's'} re-recorded from {pt.log.name}, not re-run")
                return "restored", None
            pt.running_log.unlink(missing_ok=True)
            info = executor.run(notebook, pt.running, p, {**child_env, RUN_LOG_ENV: str(pt.running_log)},
                                timeout_s, cancel)
            if not info.ok and cancel.is_set():  # killed by the stop: not a failure of the point
                pt.running.unlink(missing_ok=True)
                pt.running_log.unlink(missing_ok=True)
                say(pt, "stopped", " (killed; runs again next time)")
                return "stopped", None
            if info.ok:
                pt.running_log.touch()  # a point that records nothing still leaves a (empty) log
                os.replace(pt.running_log, pt.log)
                os.replace(pt.running, pt.final)
                pt.failed.unlink(missing_ok=True)  # an earlier failure is stale now
                info.output = str(pt.final)
            else:
                if pt.running.exists():
                    os.replace(pt.running, pt.failed)
                for stale in (pt.running_log, pt.log, pt.final):  # no earlier success stands for it
                    stale.unlink(missing_ok=True)
                info.output = str(pt.failed)
            say(pt, "ok" if info.ok else "FAILED", f" ({info.wall_s:.0f} s)")
            return "ran", info
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    saved = _install_stop_handlers()
    pool = cf.ThreadPoolExecutor(max_workers=executor.slots)
    try:
        first_pass = list(pool.map(lambda p: one(p, False), todo))
        held = [p for p, (what, _) in zip(todo, first_pass) if what == "held"]
        for p in held:
            print(f"  [waiting] {point_name(p)}: another sweep is running it", flush=True)
        waited = dict(zip(map(point_name, held), pool.map(lambda p: one(p, True), held)))
        outcomes = [waited.get(point_name(p), r) for p, r in zip(todo, first_pass)]
        infos = [info for _, info in outcomes if info is not None]  # in grid order
        return gather(out_dir, points), infos
    except KeyboardInterrupt as exc:
        _ignore_stop_signals(saved)
        executor.stop(cancel)
        pool.shutdown(wait=True, cancel_futures=True)
        signum = getattr(exc, "signum", signal.SIGINT)
        done = states["done"] + counts["ok"] + counts["restored"] + counts["done"]
        failed = f", {counts['FAILED']} failed" if counts["FAILED"] else ""
        killed = f", {counts['stopped']} killed mid-run" if counts["stopped"] else ""
        raise SweepStopped(
            f"sweep stopped by {signal.Signals(signum).name}: {done} of {len(points)} points done "
            f"({counts['ok']} run now{failed}{killed}); running children killed; "
            f"re-run the same command to resume", signum) from None
    finally:
        executor.stop(cancel)
        pool.shutdown(wait=True)
        if owned:
            executor.close()
        _restore_handlers(saved)


def gather(out_dir: Path, points: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows the done points recorded, read back from the results files."""
    tables: dict[str, pd.DataFrame] = {}
    frames = []
    for p in points:
        pt = _Point(out_dir, p)
        if not (pt.final.exists() and pt.log.exists()):
            continue
        for exp, rs in _by_experiment(_read_log(pt.log)).items():
            if exp not in tables:
                tables[exp] = _read_results(results.results_path(exp))
            table = tables[exp]
            if "run_id" not in table.columns:
                continue
            cols = list(dict.fromkeys(k for r in rs for k in r))
            ids = {str(r["run_id"]) for r in rs}
            frames.append(table[table["run_id"].astype(str).isin(ids)].reindex(columns=cols))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clickvision.sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook")
    ap.add_argument("-p", "--param", nargs="+", action="append", metavar=("NAME", "VALUE"),
                    default=[], help="a parameter and its values (repeatable)")
    ap.add_argument("--jobs", "-j", type=int, default=1, help="grid points run at once")
    ap.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    ap.add_argument("--executor", choices=["threads", "dask"], default=None,
                    help="where points run: threads of this process (default) or a Dask cluster")
    ap.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                    help="an existing Dask scheduler (implies --executor dask; default a LocalCluster "
                         "of --jobs workers); needs a file system shared with the workers")
    args = ap.parse_args(argv)
    if args.scheduler and args.executor == "threads":
        ap.error("--scheduler needs --executor dask")
    spec: dict[str, list[Any]] = {}
    for item in args.param:
        if len(item) < 2:
            ap.error(f"-p {item[0]}: give at least one value")
        spec[item[0]] = [parse_value(v) for v in item[1:]]
    executor = None
    try:
        if args.executor == "dask" or args.scheduler:
            executor = make_executor("dask", args.jobs, args.scheduler)
        table, infos = run_sweep(args.notebook, spec, jobs=args.jobs, timeout_s=args.timeout, executor=executor)
    except SweepStopped as stop:
        print(stop.message, file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        nbrun.kill_children()
        print("sweep interrupted before it ran any point; nothing new was recorded; "
              "re-run the same command to resume", file=sys.stderr)
        return 130
    finally:
        if executor is not None:
            executor.close()
    failed = [i for i in infos if not i.ok]
    if len(table):
        cols = [c for c in table.columns if c not in ("experiment", "run_id", "time")]
        with pd.option_context("display.width", 160, "display.max_rows", 200):
            print(table[cols].to_string(index=False))
    for i in failed:
        print(f"\nFAILED: {i.output}\n{i.log_tail}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
