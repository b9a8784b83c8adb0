"""Adapt on one image and segment it: ``ovss segment --tta`` and the page's TTA toggle."""
from __future__ import annotations

import numpy as np
import torch

from ..images import as_rgb
from ..segment import label_shares
from ..text import ClassList
from .base import AdaptationMethod


def adapt_and_segment(method: AdaptationMethod, segmenter, image,
                      classes: ClassList) -> tuple[np.ndarray, dict[str, float]]:
    """(H x W uint8 labels, {name: pixel share}) after ``method`` adapted the model on ``image``.

    The generator is seeded first, so methods with random views give the same labels every run.
    The methods are episodic: the model is as it was before once this returns.
    """
    image = as_rgb(image)  # the input contract (numpy, torch, PIL; one message per rule)
    torch.manual_seed(0)
    labels = method(segmenter, [image], classes, [image.shape[:2]])[0]
    return labels.cpu().numpy().astype("uint8"), label_shares(labels, classes)
