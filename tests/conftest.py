import pytest
import torch

# One thread: the tests' tensors are small, and two threads thrash when anything else runs.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_random():
    """The ovss-tiny architecture with seeded random weights (fast, no files needed)."""
    from ovss.model import load_model

    torch.manual_seed(0)
    return load_model("ovss-tiny", "none")
