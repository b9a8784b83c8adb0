"""Image resizing as the mmseg-based protocols do it: uint8 in, OpenCV bilinear, uint8 out.

NACLIP, SCLIP, ClearCLIP and MLMP load images as uint8 and resize them with mmcv's
``imresize``/``imrescale`` (cv2 backend, ``INTER_LINEAR``) before normalising. OpenCV's uint8
bilinear uses fixed-point weights and rounds to uint8, so resizing normalised floats with torch
gives other pixels (and other labels: 98.6 % agreement on random ViT-B/16 weights in MLMP's
pipeline). The keep-ratio target size (mmcv's ``rescale_size``) is ``sliding.resized_size``.
"""
from __future__ import annotations

import numpy as np

from ..errors import OvssError

RESIZE_MODES = ("opencv", "torch")


def _cv2():
    try:
        import cv2
    except ImportError:  # pragma: no cover - a dependency of ovss
        raise OvssError("OpenCV is missing: pip install opencv-python-headless "
                        "(or set the preset's resize_mode to 'torch')") from None
    return cv2


def resize_bilinear_uint8(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (uint8 H x W x C) resized to ``size`` = (h, w) exactly as
    ``mmcv.imresize(image, (w, h), interpolation='bilinear', backend='cv2')``."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise OvssError(f"OpenCV resizing takes uint8 images, got {image.dtype}; read files with ovss.files.read_rgb")
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise OvssError(f"cannot resize an image to {h} x {w}; sizes must be at least 1 pixel")
    if image.shape[:2] == (h, w):
        return image
    cv2 = _cv2()
    return cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=cv2.INTER_LINEAR)
