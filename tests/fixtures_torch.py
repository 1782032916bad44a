"""Fixtures for torch tests (training, export, the torch generator)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for the module: on 2 shared cores, spinning worker threads only
    thrash. torch is imported here, not at collection, so torch-free runs never load it."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
