"""Run one notebook with papermill in a child process and measure it.

Used by the workbook runner (every notebook, in order), the sweep runner (one run per
grid point) and the smoke test. A child process per run gives each run its own
environment (output folders, run log) and lets us read its wall time and peak memory
(``os.wait4`` reports the largest resident set of the child and its kernel).

A child never outlives its parent: it starts in a session (process group) of its own, so a
terminal's Ctrl-C reaches only the parent, which then kills the child's group and the kernel
the child started (``kill_children``; also at interpreter exit and when ``run_notebook`` is
left by an exception). On Linux the child also gets ``PR_SET_PDEATHSIG``, so it is killed
even when the parent is SIGKILLed; its kernel then exits on its own (ipykernel polls its
parent process).
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 3600


@dataclass
class RunInfo:
    notebook: str
    output: str
    returncode: int
    wall_s: float
    peak_mb: float
    log_tail: str
    cpu_s: float = float("nan")  # user + system CPU of papermill and its kernel

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """Parameter names and defaults of a notebook's ``parameters`` cell (papermill's view).

    Plain (``seed = 0``) and annotated (``seed: int = 0``) assignments both count: papermill
    reads the annotation as the parameter's type (``papermill --help-notebook`` prints it) and
    the value as its default. papermill skips a line it cannot parse (an annotation with
    ``|``: write ``"Union[bool, str]"``; a second ``=`` in the comment) without a word, so
    ``tests/test_params_annotations.py`` checks every notebook's cell is read whole.
    """
    import ast

    import papermill as pm

    out = {}
    for name, spec in pm.inspect_notebook(str(path)).items():
        try:  # papermill reports the default as source text ('"default"'): evaluate the literal
            out[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            out[name] = spec["default"]
    return out


# Live child runs: pid -> (Popen, the cancel event it was started under). A pid is removed
# under the lock before it is reaped, so kill_children never signals a recycled pid.
_LOCK = threading.Lock()
_LIVE: dict[int, tuple[subprocess.Popen, threading.Event | None]] = {}
_PR_SET_PDEATHSIG = 1


def _parent_death_hook():
    """A ``preexec_fn`` that has the child SIGKILLed when its parent dies (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:  # runs in the forked child: no imports, no locks
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    return hook


def _descendants(pid: int) -> list[int]:
    """Pids below ``pid`` in the process tree (from /proc; empty where there is none)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    kids: dict[int, list[int]] = {}
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as fh:
                stat = fh.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(e))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Kill ``pid``'s process group and the groups of its descendants (the kernel papermill
    starts runs in a session of its own); never this process's own group."""
    own = os.getpgrp()
    pids = [pid] + _descendants(pid)
    groups = set()
    for p in pids:
        try:
            g = os.getpgid(p)
        except ProcessLookupError:
            continue
        if g == own:  # not in a group of its own (should not happen): kill the process alone
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, sig)
        else:
            groups.add(g)
    for g in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(g, sig)


def kill_children(cancel: threading.Event | None = None) -> int:
    """Kill the live child runs (their groups and kernels); return how many.

    With ``cancel``: set it first, so no run starts under it any more, and kill only the
    runs started under it. Without: kill every live run of this process.
    """
    with _LOCK:
        if cancel is not None:
            cancel.set()
        procs = [p for p, c in _LIVE.values() if cancel is None or c is cancel]
        for p in procs:
            _kill_tree(p.pid)
    return len(procs)


atexit.register(kill_children)


def run_notebook(
    notebook: str | Path,
    output: str | Path,
    parameters: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    kernel: str = "python3",
    cancel: threading.Event | None = None,
) -> RunInfo:
    """Execute ``notebook`` into ``output`` with ``parameters`` (papermill, child process).

    Once ``cancel`` is set (see ``kill_children``) the run is not started (returncode -1).
    """
    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(output), "-k", kernel,
           "--cwd", str(notebook.parent), "--execution-timeout", str(timeout_s),
           "--no-progress-bar", "--no-log-output"]
    if parameters:
        cmd += ["-y", json.dumps(parameters)]
    child_env = {**os.environ, "CLICKVISION_HEADLESS": "1", "PYTHONHASHSEED": "0", **(env or {})}
    t0 = time.perf_counter()
    with _LOCK:
        if cancel is not None and cancel.is_set():
            return RunInfo(str(notebook), str(output), -1, 0.0, 0.0, "not started: the run was cancelled")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_parent_death_hook())
        _LIVE[proc.pid] = (proc, cancel)
    try:
        out = proc.stdout.read() if proc.stdout else b""
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        with _LOCK:
            _LIVE.pop(proc.pid, None)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.returncode is None:  # left by an exception (Ctrl-C, a signal): leave no child behind
            with _LOCK:
                if _LIVE.pop(proc.pid, None) is not None:
                    _kill_tree(proc.pid)
            with contextlib.suppress(Exception):
                proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    wall = time.perf_counter() - t0
    peak_mb = usage.ru_maxrss / 1024  # kB on Linux
    cpu = usage.ru_utime + usage.ru_stime  # load-independent: compare runs on a shared machine
    tail = "\n".join(out.decode(errors="replace").strip().splitlines()[-25:])
    return RunInfo(str(notebook), str(output), proc.returncode, wall, peak_mb, tail, cpu)
