"""Seeding, determinism and device choice.

``seed_everything`` makes CPU runs bit-reproducible (same seed, same numbers);
``get_device`` picks CUDA when present, then CPU; ``autocast`` enables mixed precision on
CUDA only (on the CPU it is a no-op context, so results there stay exact).
"""
from __future__ import annotations

import contextlib
import os
import random
import sys

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch; return a NumPy Generator seeded the same way."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        _deterministic_algorithms()
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
    return np.random.default_rng(seed)


def _deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)``, without its first-call cost where
    nothing compiles: the public call imports ``torch._inductor`` (about 2 CPU-s per process, paid by
    every notebook kernel and worker process) only to set the compiler's flag. On a CPU-only process
    that has not imported the compiler, the kernels' flag alone is set (the same flag the public
    call sets); otherwise, the public call."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if torch.cuda.is_available() or "torch._inductor.config" in sys.modules or setter is None:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        setter(True, warn_only=True)


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA when available, else CPU. ``prefer`` ('cpu', 'cuda', 'cuda:1') forces a choice."""
    if prefer:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device={prefer!r} requested but CUDA is not available")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_amp(device: torch.device | str, requested: bool = True) -> bool:
    """Mixed precision only on CUDA."""
    return bool(requested) and torch.device(device).type == "cuda"


def autocast(device: torch.device | str, enabled: bool = True):
    """``torch.autocast`` on CUDA (bf16 when supported, else fp16); a null context elsewhere."""
    device = torch.device(device)
    if not use_amp(device, enabled):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16  # pragma: no cover
    return torch.autocast(device_type="cuda", dtype=dtype)  # pragma: no cover


def _ancestor_cmdlines(max_depth: int = 6) -> list[str]:
    """Command lines of this process's ancestors (Linux /proc; empty elsewhere)."""
    out, pid = [], os.getppid()
    for _ in range(max_depth):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                out.append(fh.read().replace(b"\0", b" ").decode(errors="replace"))
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
    return out


def is_headless() -> bool:
    """True when nobody watches: CI, papermill, pytest/nbval, or a non-terminal stderr.

    Progress bars are shown only when this is False (a person at JupyterLab or a terminal).
    ``CLICKVISION_HEADLESS=0`` forces bars on; any other value forces them off.
    """
    flag = os.environ.get("CLICKVISION_HEADLESS")
    if flag is not None:
        return flag != "0"
    if os.environ.get("CI"):
        return True
    if any(("papermill" in c or "pytest" in c) for c in _ancestor_cmdlines()):
        return True
    try:
        from IPython import get_ipython

        if get_ipython() is not None:  # a kernel with a front end (JupyterLab)
            return False
    except ImportError:  # pragma: no cover
        pass
    import sys

    return not sys.stderr.isatty()


def progress(iterable=None, **kwargs):
    """``tqdm.auto`` progress bar, silent when headless (see :func:`is_headless`)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", is_headless())
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)


def workers(requested: int | None = None) -> int:
    """How many processes :func:`parallel_map` uses: ``requested`` if given, else the environment
    variable ``CLICKVISION_WORKERS``, else the CPUs this process may run on."""
    if requested is None:
        env = os.environ.get("CLICKVISION_WORKERS", "").strip()
        if env:
            try:
                requested = int(env)
            except ValueError:
                raise ValueError(f"CLICKVISION_WORKERS must be a positive integer, got {env!r}") from None
        else:
            from .threads import usable_cpus

            requested = usable_cpus()
    if not isinstance(requested, (int, np.integer)) or requested < 1:
        raise ValueError(f"workers must be a positive integer, got {requested!r}")
    return int(requested)


def parallel_map(fn, jobs, n_workers: int | None = None, desc: str | None = None) -> list:
    """``[fn(**job) for job in jobs]``, the jobs spread over :func:`workers` processes (joblib's
    loky backend; large NumPy arrays travel as memory maps). For independent, seeded runs that
    each fix their own thread count and seed: the results are those of the serial loop, in
    order, whatever the number of workers. One worker (or one job) runs in this process.
    ``desc``: a progress bar over the jobs, counting finished ones (see :func:`progress`:
    shown in JupyterLab or a terminal, silent under papermill, pytest and CI)."""
    jobs = list(jobs)
    n = min(workers(n_workers), len(jobs))
    with progress(total=len(jobs), desc=desc or "runs") as bar:
        if n <= 1:
            out = []
            for job in jobs:
                out.append(fn(**job))
                bar.update(1)
            return out
        from joblib import Parallel, delayed

        out = []
        for result in Parallel(n_jobs=n, backend="loky", return_as="generator")(delayed(fn)(**job) for job in jobs):
            out.append(result)
            bar.update(1)
        return out
