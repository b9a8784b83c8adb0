import pytest
import torch

from ovss.domain import SegmentSet


@pytest.fixture(scope="session")
def tiny():
    """ovss-tiny with seeded random weights, built on one thread (see ``one_thread``)."""
    from ovss.model import load_model

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        return load_model("ovss-tiny", "none")
    finally:
        torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def one_thread():
    """The models here are tiny: extra threads only add overhead, and spin badly on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny_segments():
    """12 random 32 x 32 segments of 3 classes (ShapesWorld names); small images keep steps fast."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 32, 32, 3), generator=g, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3] * 3)
    return SegmentSet(images=images, labels=labels, image_index=torch.arange(12), area=torch.full((12,), 100),
                      class_names=["sky", "boat", "car", "kite"])
