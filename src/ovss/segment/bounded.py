"""Bounded memory for photos of any size: limits, and decoding in bands of rows.

A 24-megapixel photo decoded the plain way holds several class-score maps of Q x H x W floats at
once (and PAMR a few dozen image-sized maps): 20 GB. Above the limits below, ``Segmenter`` keeps
the class scores at the size the model worked at, upsamples them a band of rows at a time and
takes the argmax per band, so only the H x W labels are ever held at full size; PAMR runs at no
more than ``MAX_WORK_PIXELS``, and a preset that keeps the photo's size gives the
model at most ``MAX_INPUT_PIXELS``.
Below the limits (every benchmark image) nothing changes.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# scores held at once: above this many Q x H x W elements (256 MB of float32), decode in bands
MAX_DENSE_ELEMENTS = 1 << 26
# PAMR and the returned score maps work at no more pixels than this (Cityscapes' 1024 x 2048 fits)
MAX_WORK_PIXELS = 2048 * 1024
# a preset that keeps the photo's size (shapesworld) gives the model at most this many pixels
# (the published presets resize to a short side of 336 to 560 themselves)
MAX_INPUT_PIXELS = 2048 * 1024
# one band of the banded decode: at most this many Q x rows x W elements
BAND_ELEMENTS = 1 << 24
# windows encoded, and window scores upsampled, per step: at most this many pixels of windows
WINDOW_CHUNK_PIXELS = 64 * 224 * 224


def bounded_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """``size`` scaled down, ratio kept, to at most ``max_pixels``; unchanged when it fits."""
    h, w = int(size[0]), int(size[1])
    if h * w <= max_pixels:
        return h, w
    scale = math.sqrt(max_pixels / (h * w))
    return max(1, int(h * scale)), max(1, int(w * scale))


def shrink_image(image, size: tuple[int, int]):
    """An H x W x 3 uint8 or float32 array (or a C x H x W / 1 x C x H x W tensor) scaled down to ``size``,
    averaging the pixels each output pixel covers (no aliasing)."""
    if isinstance(image, np.ndarray) and image.dtype == np.float32:  # a float image (0..1): channel by channel
        return np.stack([np.asarray(Image.fromarray(image[..., c]).resize((size[1], size[0]), Image.BOX))
                         for c in range(image.shape[2])], axis=-1)
    if isinstance(image, np.ndarray):
        return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BOX))
    x = image.float()
    batched = x.dim() == 4
    x = F.interpolate(x if batched else x[None], size=size, mode="bilinear", align_corners=False, antialias=True)
    return x if batched else x[0]


def windows_per_chunk(window_pixels: int) -> int:
    return max(1, WINDOW_CHUNK_PIXELS // max(1, window_pixels))


def upsample_rows(src: torch.Tensor, size: tuple[int, int], start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of ``F.interpolate(src[None], size, mode="bilinear", align_corners=False)[0]``
    (up to float rounding), computed from the few source rows they need.

    ``src``: C x h x w. The horizontal pass is PyTorch's own; the vertical weights follow its rule
    (source row ``max((y + 0.5) * h / H - 0.5, 0)``, the last row repeated at the border).
    """
    _, h, w = src.shape
    height, width = int(size[0]), int(size[1])
    if (h, w) == (height, width):
        return src[:, start:stop]
    # PyTorch's rule in float32 with one rounding (as its fused multiply-add): the same source rows and weights
    scale = (torch.tensor(float(h), dtype=torch.float32) / float(height)).double()
    real = ((torch.arange(start, stop, dtype=torch.float64) + 0.5) * scale - 0.5).float().clamp(min=0)
    top = real.floor().long().clamp(max=h - 1)
    bottom = torch.where(top < h - 1, top + 1, top)
    weight = (real - top.float()).clamp(0, 1).to(src.dtype).to(src.device)
    first, last = int(top.min()), int(bottom.max())
    rows = src[:, first : last + 1]
    if w != width:
        rows = F.interpolate(rows[None], size=(rows.shape[1], width), mode="bilinear", align_corners=False)[0]
    top, bottom = (top - first).to(src.device), (bottom - first).to(src.device)
    return rows[:, top] * (1 - weight)[None, :, None] + rows[:, bottom] * weight[None, :, None]


def rows_per_band(channels: int, width: int) -> int:
    return max(1, BAND_ELEMENTS // max(1, channels * width))


def decode_in_bands(
    src: torch.Tensor,
    size: tuple[int, int],
    classify: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(best score, label) maps of ``size`` from C x h x w scores, one band of rows at a time.

    ``classify`` turns a C x rows x W band of upsampled scores into its (best, labels) rows.
    """
    height, width = int(size[0]), int(size[1])
    labels = torch.empty(height, width, dtype=torch.long, device=src.device)
    best = torch.empty(height, width, dtype=src.dtype, device=src.device)
    step = rows_per_band(src.shape[0], width)
    for start in range(0, height, step):
        stop = min(height, start + step)
        best[start:stop], labels[start:stop] = classify(upsample_rows(src, size, start, stop))
    return best, labels
