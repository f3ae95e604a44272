"""CPU counts and per-process thread settings; the thread limits of torch and the BLAS.

Importing this module imports neither torch nor NumPy: it is used before any numerical library
loads (``conftest.py`` under pytest-xdist, the workbook's parallel lanes), where a thread count
set through the environment still counts. :func:`limited` and :func:`pin` change the counts of
a running process (torch's and, through ``threadpoolctl``, OpenBLAS's / MKL's) and import those
libraries only when called. Paper A's and C's experiment functions run inside ``limited(1)``; B.02 and
the paper D notebooks pin their ``threads`` parameter: each computes the same numbers alone on the
machine (``workbook run --jobs 1``) and beside other notebooks.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

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


# --- thread limits of torch and the BLAS (imported lazily: see the module docstring) --------------

_LIMITED = threading.local()


@contextlib.contextmanager
def limited(n: int = 1) -> Iterator[None]:
    """Run torch and the BLAS of NumPy / SciPy / scikit-learn on ``n`` threads inside the block,
    then restore both. The models here are small: extra threads buy little, their spin-waiting
    slows a shared machine, and with a fixed count the numbers stop depending on how many cores
    a run got (OpenBLAS's sums, like torch's, change with the thread count). Nested inside a block
    with the same ``n`` it changes nothing (setting the BLAS limits costs a few ms per entry)."""
    import torch
    from threadpoolctl import threadpool_limits

    n = _positive(n)
    depth = getattr(_LIMITED, "n", 0)
    if depth and getattr(_LIMITED, "threads", None) == n and torch.get_num_threads() == n:
        _LIMITED.n = depth + 1
        try:
            yield
        finally:
            _LIMITED.n = depth
        return
    before, outer = torch.get_num_threads(), getattr(_LIMITED, "threads", None)
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            _LIMITED.n, _LIMITED.threads = depth + 1, n
            try:
                yield
            finally:
                _LIMITED.n, _LIMITED.threads = depth, outer
    finally:
        torch.set_num_threads(before)


def pin(n: int) -> None:
    """From now on, torch and the BLAS of this process run on ``n`` threads (a notebook's
    ``threads`` parameter): a notebook then computes the same numbers alone on the machine
    (``workbook run --jobs 1``, where it would otherwise get every core) and beside others."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(_positive(n))
    threadpool_limits(limits=n)


def _positive(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    return n
