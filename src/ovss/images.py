"""The one input contract for images handed over from Python.

``Segmenter.predict``, ``set_image``, ``encode_images`` and ``preprocess`` (and through them every
function that takes an image from Python) call ``as_rgb`` first, so an image is either understood
the same way everywhere or refused with one line naming the rule it breaks:

- numpy arrays and torch tensors, H x W x 3 or 3 x H x W (a leading batch axis of 1 is dropped;
  a 3 x H x 3 array is read as H x W x 3 for numpy and 3 x H x W for torch, each library's habit);
- uint8 as it is; other integer types when every value is in 0..255;
- float in [0, 1] (the torchvision convention), kept as float (the segmenter scales it to 0..255 and
  resizes it with torch's bilinear, not OpenCV's uint8 resize). A float image with values above 1 is refused rather
  than guessed at: 0..255 floats divided by 255 and 0..1 floats taken as 0..255 both look plausible
  and are both wrong one time in two;
- PIL images of any mode, converted to RGB;
- refused: bool, NaN or infinite values, negative values, other channel counts (grey, RGBA),
  empty images, lists and tuples (one image per call; ``encode_images`` takes a list), other types.
"""
from __future__ import annotations

import numpy as np

from .errors import OvssError


def as_rgb(image, name: str = "image") -> np.ndarray:
    """``image`` as an H x W x 3 numpy array: uint8, or float32 in 0..1 for float inputs.

    ``name`` is the keyword the caller took it as (messages name it). What it returns passes again
    unchanged (uint8 H x W x 3 arrays are returned as they are, no copy).
    """
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size:
        return image
    if isinstance(image, (list, tuple)):
        raise OvssError(f"{name} must be one image (numpy array, torch tensor or PIL image), got a {type(image).__name__} "
                        f"of {len(image)}; pass images one at a time, or the list to encode_images", param=name)
    channels_first = False
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(image, torch.Tensor):
        if image.is_complex():
            raise OvssError(f"{name} is a complex tensor; pass real pixel values", param=name)
        image = image.detach().cpu()
        image = image.float().numpy() if image.dtype in (torch.bfloat16, torch.float16) else image.numpy()
        channels_first = True
    elif _is_pil(image):
        return np.asarray(image.convert("RGB"))
    elif not isinstance(image, np.ndarray):
        raise OvssError(f"{name} must be a numpy array, torch tensor or PIL image, got {type(image).__name__}; "
                        "read files with ovss.files.read_rgb", param=name)
    return _array(image, name, channels_first)


def _is_pil(image) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(image, Image.Image)


def _array(image: np.ndarray, name: str, channels_first: bool) -> np.ndarray:
    if image.dtype == np.bool_:
        raise OvssError(f"{name} is a bool array (a mask?); pass pixel values: uint8 0..255 or float 0..1", param=name)
    if image.dtype.kind not in "uif":
        raise OvssError(f"{name} has dtype {image.dtype}; pass pixel values: uint8 0..255 or float 0..1", param=name)
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3:
        raise OvssError(f"{name} has shape {tuple(image.shape)}; expected one RGB image, H x W x 3 or 3 x H x W"
                        + ("; a grey image: repeat it into 3 channels" if image.ndim == 2 else ""), param=name)
    first, last = image.shape[0] == 3, image.shape[2] == 3
    if last and (not channels_first or not first):
        hwc = image
    elif first:
        hwc = np.moveaxis(image, 0, -1)
    else:
        raise OvssError(f"{name} has shape {tuple(image.shape)}; expected 3 colour channels (RGB), H x W x 3 or 3 x H x W"
                        + ("; drop the alpha channel" if 4 in (image.shape[0], image.shape[2]) else ""), param=name)
    if hwc.shape[0] == 0 or hwc.shape[1] == 0:
        raise OvssError(f"{name} is empty (shape {tuple(image.shape)})", param=name)
    if hwc.dtype.kind == "f":
        if not np.isfinite(hwc).all():
            raise OvssError(f"{name} has NaN or infinite values; pass finite pixel values", param=name)
        low, high = float(hwc.min()), float(hwc.max())
        if low < 0 or high > 1:
            raise OvssError(f"{name} is a float image with values {low:g}..{high:g}; ovss reads float images as 0..1: "
                            "divide 0..255 floats by 255, or pass uint8", param=name)
        return np.ascontiguousarray(hwc, dtype=np.float32)
    if hwc.dtype != np.uint8:
        low, high = int(hwc.min()), int(hwc.max())
        if low < 0 or high > 255:
            raise OvssError(f"{name} has dtype {hwc.dtype} with values {low}..{high}; pass uint8 0..255 "
                            "(or float 0..1)", param=name)
        hwc = hwc.astype(np.uint8)
    return np.ascontiguousarray(hwc)


def frame_count(path) -> int:
    """How many frames (animation frames, TIFF pages) an image file holds; 1 for plain pictures
    and for files PIL cannot open (reading them says what is wrong). Reading takes the first."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1) or 1)
    except Exception:  # noqa: BLE001 - the reader reports unreadable files
        return 1


def frames_record(path) -> tuple[dict, str | None]:
    """The JSON keys and the log line for a file of several frames (only the first is segmented,
    as every reader does; the record says so instead of dropping the rest silently)."""
    n = frame_count(path)
    if n <= 1:
        return {}, None
    return ({"frames": {"in_file": n, "segmented": "first"}},
            f"{path} holds {n} frames (an animation or a multi-page file); only the first is segmented")
