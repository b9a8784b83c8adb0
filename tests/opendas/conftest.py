import pytest
import torch

from ovss.opendas import SegmentSet


@pytest.fixture(scope="session")
def tiny(tiny_random):
    """ovss-tiny with seeded random weights (the suite-wide fixture)."""
    return tiny_random


@pytest.fixture
def tiny_segments():
    """12 random 32 x 32 segments of 3 classes (ShapesWorld names); small images keep steps fast."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 32, 32, 3), generator=g, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3] * 3)
    return SegmentSet(images=images, labels=labels, image_index=torch.arange(12), area=torch.full((12,), 100),
                      class_names=["sky", "boat", "car", "kite"])
