"""Resizing and sliding-window geometry (MMSegmentation's rules)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def resized_size(h: int, w: int, short: int | None, max_long: int = 2048, fixed: tuple[int, int] | None = None) -> tuple[int, int]:
    """Size after mmseg's keep-ratio resize to scale (max_long, short), or the fixed size."""
    if fixed is not None:
        return tuple(fixed)
    if short is None:
        return h, w
    scale = min(max_long / max(h, w), short / min(h, w))
    return int(h * scale + 0.5), int(w * scale + 0.5)


def window_boxes(h: int, w: int, crop: int | None, stride: int | None) -> list[tuple[int, int, int, int]]:
    """(y1, y2, x1, x2) of each window; the last window of a row or column is shifted to end at
    the border; an image smaller than the crop gives one window of the image's size."""
    if crop is None:
        return [(0, h, 0, w)]
    stride = stride or crop
    n_h = max(h - crop + stride - 1, 0) // stride + 1
    n_w = max(w - crop + stride - 1, 0) // stride + 1
    boxes = []
    for i in range(n_h):
        for j in range(n_w):
            y1, x1 = i * stride, j * stride
            y2, x2 = min(y1 + crop, h), min(x1 + crop, w)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            boxes.append((y1, y2, x1, x2))
    return boxes


def pad_to_multiple(x: torch.Tensor, multiple: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad (bottom, right) a B x C x H x W batch to a multiple of the patch size."""
    h, w = x.shape[-2:]
    ph = math.ceil(h / multiple[0]) * multiple[0] - h
    pw = math.ceil(w / multiple[1]) * multiple[1] - w
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (ph, pw)
