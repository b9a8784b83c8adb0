import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_random():
    """The ovss-tiny architecture with seeded random weights (fast, no files needed)."""
    from ovss.model import load_model

    torch.manual_seed(0)
    return load_model("ovss-tiny", "none")
