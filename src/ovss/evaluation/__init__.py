"""Evaluation: segmentation metrics (percentages, MMSegmentation conventions) and IoU-single."""

from .metrics import ConfusionMatrix, IoUSingle

__all__ = ["ConfusionMatrix", "IoUSingle"]
