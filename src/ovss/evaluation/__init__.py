"""Evaluation: segmentation metrics (percentages, MMSegmentation conventions), IoU-single, and the
benchmark: plan (scenarios), pipeline (data), store (results, resume), distributed, runner (the loop)."""

from .metrics import ConfusionMatrix, IoUSingle

__all__ = ["ConfusionMatrix", "IoUSingle"]
