"""clickvision.threads: torch's and the BLAS's thread counts inside ``limited`` and after ``pin``."""
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from clickvision import threads


def _blas() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_limited_sets_torch_and_blas_inside_and_restores_both():
    with threadpool_limits(limits=2):
        torch.set_num_threads(2)
        with threads.limited(1):
            assert torch.get_num_threads() == 1 and _blas() == {1}
            with threads.limited(1):  # nested, same count: nothing changes, nothing is restored early
                assert torch.get_num_threads() == 1 and _blas() == {1}
            assert torch.get_num_threads() == 1 and _blas() == {1}
        assert torch.get_num_threads() == 2 and _blas() == {2}


def test_limited_restores_after_an_error():
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="boom"), threads.limited(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_the_same_numbers_on_one_thread_whatever_the_machine_gave():
    """The reason for pinning: OpenBLAS's products depend on its thread count; inside ``limited(1)``
    they do not depend on the count outside."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 300))
    out = []
    for outside in (1, 2):
        with threadpool_limits(limits=outside), threads.limited(1):
            out.append(np.linalg.inv(a.T @ a + np.eye(300)))
    assert np.array_equal(out[0], out[1])


def test_pin_sets_both_for_the_rest_of_the_process():
    before = torch.get_num_threads()
    with threadpool_limits(limits=2):
        try:
            threads.pin(1)
            assert torch.get_num_threads() == 1 and _blas() == {1}
        finally:
            torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_count_is_named(bad):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        threads.pin(bad)
    with pytest.raises(ValueError, match="threads must be a positive integer"), threads.limited(bad):
        pass
