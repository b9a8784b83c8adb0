"""Evaluation: segmentation metrics (percentages, MMSegmentation conventions), IoU-single, the
evaluators and the one image loop (evaluator), and the benchmark: plan (scenarios), pipeline
(data), store (results, resume), distributed, runner (scenarios through the loop)."""

from .evaluator import DatasetEvaluator, EvaluatorsByKey, IoUSingleEvaluator, SemSegEvaluator, inference_on_dataset
from .metrics import ConfusionMatrix, IoUSingle

__all__ = ["ConfusionMatrix", "IoUSingle", "DatasetEvaluator", "SemSegEvaluator", "IoUSingleEvaluator", "EvaluatorsByKey",
           "inference_on_dataset"]
