"""Label maps: read a label-index PNG, resize it without blending classes, apply MMSegmentation's reduction.

Labels follow MMSegmentation's ``LoadAnnotations``: with ``reduce_zero_label`` the value 0 becomes
255 (ignore) and every other value k becomes k - 1 (255 stays 255); a ``label_map`` is applied after.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import OvssError
from .specs import IGNORE_INDEX


def read_label(path: str | os.PathLike) -> np.ndarray:
    """Read a label-index PNG as an H x W array (uint8, or int64 for 16-bit files).

    Palette PNGs (Pascal VOC) hold indices, so they are read as indices, never converted to colours.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.array(im)
    except FileNotFoundError:
        raise OvssError(f"annotation not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise OvssError(f"cannot read annotation {path} ({e.__class__.__name__}); it must be a label-index PNG") from None
    if arr.ndim == 3:
        # grayscale saved as RGB(A) is fine; real colours mean a colour-coded mask, not indices
        if arr.shape[2] >= 3 and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]
        elif arr.shape[2] == 2:  # LA
            arr = arr[..., 0]
        else:
            raise OvssError(
                f"annotation {path} is a colour image (mode {mode}), not label indices; "
                "convert it with the dataset's preparation script"
            )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    return arr.astype(np.int64)


def resize_label(label: np.ndarray, size: tuple[int, int], sampling: str = "floor") -> np.ndarray:
    """Nearest-neighbour resize of a label map (classes are never blended).

    ``sampling`` says which source pixel an output pixel takes: ``"floor"``, index floor(i * in / out),
    as OpenCV's INTER_NEAREST (which MMCV's imresize, used by the MLMP protocol, calls) picks it;
    ``"centre"``, the pixel under the output cell's centre, floor((i + 0.5) * in / out), which a
    downsampling to a coarse grid (OVSNet's mask targets) wants so that every cell is represented.
    """
    h, w = label.shape
    oh, ow = size
    if sampling not in ("floor", "centre"):
        raise ValueError(f"sampling must be 'floor' or 'centre', got {sampling!r}")
    if (h, w) == (oh, ow):
        return label
    if sampling == "floor":
        rows, cols = (np.arange(oh) * h) // oh, (np.arange(ow) * w) // ow
    else:
        rows = ((np.arange(oh) + 0.5) * h / oh).astype(np.int64)
        cols = ((np.arange(ow) + 0.5) * w / ow).astype(np.int64)
    return label[rows[:, None], cols[None, :]]


def reduce_labels(label: np.ndarray, reduce_zero_label: bool, label_map: Mapping[int, int] | None = None) -> np.ndarray:
    """Apply MMSegmentation's label reduction: 0 -> 255 and k -> k - 1 (255 stays 255), then ``label_map``."""
    out = label
    if reduce_zero_label:
        out = np.where((label == 0) | (label == IGNORE_INDEX), IGNORE_INDEX, label.astype(np.int64) - 1)
        out = out.astype(label.dtype)
    if label_map:
        mapped = out.copy()
        for old, new in label_map.items():
            mapped[out == old] = new
        out = mapped
    return out

