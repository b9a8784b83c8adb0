"""What a segmentation produces and holds: results, encoded images, and the label arithmetic.

Split from ``predictor`` (the ``Segmenter``); these are plain data and tensor functions that the
segmenter, the page and test-time adaptation share.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..text import ClassList


@dataclass
class SegmentationResult:
    """logits: C x H x W class scores (scaled cosine similarity, max over synonyms);
    probs: C x H x W (softmax over all queries, or a sigmoid per query for SigLIP models, see
    ``ovss.segment.scoring``; max over synonyms); labels: H x W class indices.

    For very large outputs (see ``ovss.segment.bounded``) logits and probs are at a smaller size
    and ``reduced`` says which; labels and ``confidence`` (H x W best class probability, before
    ``prob_thd``) are always at the output size.
    """

    logits: torch.Tensor
    probs: torch.Tensor
    labels: torch.Tensor
    classes: ClassList
    confidence: torch.Tensor | None = None
    reduced: dict | None = None

    def shares(self) -> dict[str, float]:
        return label_shares(self.labels, self.classes)


def stitch_patch_features(enc, patch_size: tuple[int, int]) -> torch.Tensor:
    """The windows' patch features of an encoded image as one gh x gw x E grid over the resized
    image, overlapping windows averaged patch by patch, then normalised (``Segmenter`` averages
    logits per pixel instead; OVSNet's decoder reads features on the patch grid)."""
    ph, pw = patch_size
    gh, gw = math.ceil(enc.input_size[0] / ph), math.ceil(enc.input_size[1] / pw)
    feats = enc.features
    total = feats.new_zeros(gh, gw, feats.shape[-1])
    count = feats.new_zeros(gh, gw, 1)
    for (y1, y2, x1, x2), f in zip(enc.boxes, feats):
        r, c = round(y1 / ph), round(x1 / pw)
        nh, nw = min(math.ceil((y2 - y1) / ph), gh - r), min(math.ceil((x2 - x1) / pw), gw - c)
        total[r:r + nh, c:c + nw] += f[:nh, :nw]
        count[r:r + nh, c:c + nw] += 1
    return F.normalize(total / count.clamp_min(1), dim=-1)


def label_shares(labels: torch.Tensor, classes: ClassList) -> dict[str, float]:
    """Share of the pixels given to each class (pixels outside the class indices, such as 255
    "unlabelled", count in the total but in no class)."""
    counts = torch.bincount(labels.flatten().long().cpu(), minlength=len(classes)).double()
    return {n: float(c) for n, c in zip(classes.names, counts[: len(classes)] / counts.sum())}


@dataclass
class EncodedImage:
    size: tuple[int, int]  # original H, W
    input_size: tuple[int, int]  # resized H, W
    image: torch.Tensor  # 1 x 3 x h x w normalised, resized
    boxes: list[tuple[int, int, int, int]]
    features: torch.Tensor  # B x h x w x E, normalised patch features of each window
    padded: tuple[int, int]  # padded window size
    bounded_from: tuple[int, int] | None = None  # the preset's input size, when memory bounds made it smaller
    last_block: tuple | None = None  # ResCLIP's SFR: (tokens entering the last block, RCS mix or None) per window


def max_by_class(values: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Max over the synonym rows of each class: Q x H x W -> C x H x W."""
    if values.shape[0] == n:
        return values
    return torch.stack([values[index == c].amax(dim=0) for c in range(n)])


def max_over_classes(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(max, argmax) over dim 0 of C x H x W, first index on ties.

    A loop over the classes of whole-image comparisons: reducing over the outer dimension of a
    large tensor is several times slower on CPU, and this runs on every image at full size.
    """
    best = probs[0].clone()
    labels = torch.zeros(probs.shape[1:], dtype=torch.long, device=probs.device)
    for c in range(1, probs.shape[0]):
        better = probs[c] > best
        best = torch.where(better, probs[c], best)
        labels.masked_fill_(better, c)
    return best, labels


def drop_small_classes(labels: torch.Tensor, probs: torch.Tensor, area_thd: float) -> torch.Tensor:
    """SCLIP's area threshold: a foreground class (index >= 1) whose predicted area is at most
    ``area_thd`` of all foreground pixels loses its pixels to the next best class."""
    counts = torch.bincount(labels.flatten(), minlength=probs.shape[0]).float()
    foreground = counts[1:].sum()
    small = (counts <= area_thd * foreground) & (counts > 0)
    small[0] = False
    if not small.any():
        return labels
    masked = probs.clone()
    masked[small] = 0.0
    return masked.argmax(dim=0)
