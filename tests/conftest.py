"""Fixtures shared by the unit tests."""
import pytest
import torch


@pytest.fixture()
def one_torch_thread():
    """Tiny models: one intra-op thread is faster, and immune to a busy machine's thread thrashing.

    Use per module with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
