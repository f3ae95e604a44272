"""runtime.workers / parallel_map: same results and order as the serial loop; clear errors."""
import os

import numpy as np
import pytest
from clickvision import runtime


def _draw(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n) * os.getpid() ** 0  # the pid must not matter


def test_parallel_map_equals_the_serial_loop_in_order():
    jobs = [{"seed": s, "n": 3 + s} for s in range(5)]
    serial = [_draw(**j) for j in jobs]
    for n in (1, 2):
        out = runtime.parallel_map(_draw, jobs, n_workers=n)
        assert len(out) == 5 and all(np.array_equal(a, b) for a, b in zip(out, serial))
    assert runtime.parallel_map(_draw, [], n_workers=2) == []


def test_workers_from_argument_environment_or_cpus(monkeypatch):
    assert runtime.workers(3) == 3
    monkeypatch.setenv("CLICKVISION_WORKERS", "1")
    assert runtime.workers() == 1
    monkeypatch.delenv("CLICKVISION_WORKERS")
    assert runtime.workers() >= 1
    monkeypatch.setenv("CLICKVISION_WORKERS", "two")
    with pytest.raises(ValueError, match="CLICKVISION_WORKERS"):
        runtime.workers()
    with pytest.raises(ValueError, match="workers"):
        runtime.workers(0)
