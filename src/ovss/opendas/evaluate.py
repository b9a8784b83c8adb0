"""Segment classification with (or without) learned prompts, scored with OpenDAS's metrics."""
from __future__ import annotations

from typing import Sequence

import torch
from tqdm import tqdm

from ..errors import OvssError
from .metrics import classification_scores
from .prompts import PromptLearner
from .segments import SegmentSet


@torch.no_grad()
def encode_segments(learner: PromptLearner, segments: SegmentSet, batch_size: int = 64,
                    progress: bool = False, desc: str = "encode segments") -> torch.Tensor:
    """Normalised image embeddings (N x E) of every segment, with the learner's visual prompts."""
    m = learner.model
    out = []
    for i in tqdm(range(0, len(segments), batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
        index = torch.arange(i, min(i + batch_size, len(segments)))
        out.append(learner.encode_images(segments.batch(index, m).to(m.device)).cpu())
    return torch.cat(out)


@torch.no_grad()
def predict_segments(learner: PromptLearner, segments: SegmentSet, names: Sequence[str] | None = None,
                     batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """The class (index into ``names``, the segments' classes by default) each segment looks most like."""
    names = list(names or segments.class_names)
    text = learner.encode_names(names).cpu()
    return (encode_segments(learner, segments, batch_size, progress) @ text.T).argmax(dim=1)


def base_indices(class_names: Sequence[str], base: Sequence[str]) -> list[int]:
    """Indices of ``base`` in ``class_names``; a base class the dataset lacks is a user error."""
    lower = [c.lower() for c in class_names]
    missing = [b for b in base if b.lower() not in lower]
    if missing:
        raise OvssError(f"base class '{missing[0]}' is not a class of the dataset ({', '.join(class_names)}); "
                        "fix the base-classes file")
    return [lower.index(b.lower()) for b in base]


def evaluate_segments(learner: PromptLearner, segments: SegmentSet, base: Sequence[str],
                      batch_size: int = 64, progress: bool = False) -> dict:
    """Acc, W-F1, B-F1 and N-F1 (percent) of classifying every segment among all the dataset's classes."""
    pred = predict_segments(learner, segments, batch_size=batch_size, progress=progress)
    n = len(segments.class_names)
    return classification_scores(pred.numpy(), segments.labels.numpy(), n, base_indices(segments.class_names, base))
