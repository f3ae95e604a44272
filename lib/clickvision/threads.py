"""CPU counts and per-process thread settings, without importing torch or NumPy.

Used before any numerical library loads (``conftest.py`` under pytest-xdist, the workbook's
parallel lanes), so it must stay free of those imports: a thread count set after torch or a
BLAS has initialised is ignored.
"""
from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CLICKVISION_WORKERS")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share(parts: int) -> int:
    """Threads each of ``parts`` concurrent processes gets so that together they do not oversubscribe."""
    return max(1, usable_cpus() // max(1, int(parts)))


def thread_env(n: int) -> dict[str, str]:
    """Environment that gives a child process (and its BLAS, torch and our worker pools) ``n`` threads."""
    return {var: str(int(n)) for var in THREAD_VARIABLES}
