"""Run one notebook with papermill in a child process and measure it.

Used by the workbook runner (every notebook, in order), the sweep runner (one run per
grid point) and the smoke test. A child process per run gives each run its own
environment (output folders, run log) and lets us read its wall time and peak memory
(``os.wait4`` reports the largest resident set of the child and its kernel).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
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
    """Parameter names and defaults of a notebook's ``parameters`` cell (papermill's view)."""
    import ast

    import papermill as pm

    out = {}
    for name, spec in pm.inspect_notebook(str(path)).items():
        try:  # papermill reports the default as source text ('"default"'): evaluate the literal
            out[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            out[name] = spec["default"]
    return out


def run_notebook(
    notebook: str | Path,
    output: str | Path,
    parameters: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    kernel: str = "python3",
) -> RunInfo:
    """Execute ``notebook`` into ``output`` with ``parameters`` (papermill, child process)."""
    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(output), "-k", kernel,
           "--cwd", str(notebook.parent), "--execution-timeout", str(timeout_s),
           "--no-progress-bar", "--no-log-output"]
    if parameters:
        cmd += ["-y", json.dumps(parameters)]
    child_env = {**os.environ, "CLICKVISION_HEADLESS": "1", "PYTHONHASHSEED": "0", **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env,
                            stdin=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    peak_mb = usage.ru_maxrss / 1024  # kB on Linux
    cpu = usage.ru_utime + usage.ru_stime  # load-independent: compare runs on a shared machine
    tail = "\n".join(out.decode(errors="replace").strip().splitlines()[-25:])
    return RunInfo(str(notebook), str(output), proc.returncode, wall, peak_mb, tail, cpu)
