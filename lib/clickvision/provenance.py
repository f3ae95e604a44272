"""Where a result came from: the git commit, the main package versions and the device.

Every row of ``results/*.csv`` and ``results/claims.csv`` carries these three columns (the
profile is a notebook parameter, so it is in the rows already), and
:func:`is_committed_run` decides whether a run may replace the committed ``default``
verdicts: only a run at profile ``default`` whose parameters equal the notebook's own
parameters cell may; a smoke run, a sweep point or a JupyterLab run with other parameters
writes its verdicts beside them (``results/runs/claims/``), never over them.
"""
from __future__ import annotations

import functools
import platform
import re
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from . import paths

COLUMNS = ("commit", "versions", "device")
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "pandas")


@functools.lru_cache(maxsize=1)
def commit() -> str:
    """Short hash of the checkout's HEAD, ``+dirty`` when the library differs from it ("unknown" outside git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(paths.PROJ_ROOT), *args], capture_output=True, text=True,
                              timeout=20, check=True).stdout.strip()
    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "lib")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def versions() -> str:
    """``torch 2.14.1; numpy 2.3.1; ...`` for :data:`PACKAGES` (absent ones skipped)."""
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "; ".join(out)


@functools.lru_cache(maxsize=1)
def device() -> str:
    """The compute device: the CUDA device's name, else the CPU model, its kernel set and cores."""
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    model = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        kernels = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # pragma: no cover - old torch
        kernels = "?"
    return f"cpu: {model} ({kernels}, {os.cpu_count()} cores)"



def kernels_of(device_string: str) -> str | None:
    """The CPU kernel set named in a :func:`device` string ('cpu: MODEL (AVX512, 2 cores)' ->
    'AVX512'); None for a GPU or a string :func:`device` did not write."""
    m = re.fullmatch(r"cpu: .*\(([^,()]+), \d+ cores\)", str(device_string).strip())
    return m.group(1) if m else None

def stamp() -> dict[str, str]:
    """The provenance columns of one row."""
    return {"commit": commit(), "versions": versions(), "device": device()}


def notebook_file(notebook: str) -> Path | None:
    """The workbook notebook named ``notebook`` (file stem), or None."""
    found = sorted(paths.NOTEBOOKS_DIR.rglob(f"{notebook}.ipynb"))
    return found[0] if found else None


def is_committed_run(notebook: str, params: Mapping[str, Any] | None) -> bool:
    """True when ``params`` are the committed run's: profile ``default`` and every parameter
    equal to the notebook file's parameters cell."""
    if not params or params.get("profile") != "default":
        return False
    nb = notebook_file(notebook)
    if nb is None:
        return False
    from .nbrun import notebook_parameters
    from .params import is_committed

    return is_committed(params, notebook_parameters(nb))
