"""Atomic file writing and safe image reading shared by every command.

Results are written to a temporary file in the target folder and renamed into place, so a
killed run never leaves a half-written JSON or PNG that a resumed run would trust.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import OvssError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, _write)


def write_text(path: str | os.PathLike, text: str) -> Path:
    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, _write)


def save_image(path: str | os.PathLike, image: Image.Image) -> Path:
    """Save a PIL image atomically; the format follows the suffix of ``path``."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    return atomic_write(path, lambda tmp: image.save(tmp, format=fmt))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read any image file as an H x W x 3 uint8 RGB array.

    Grayscale, palette, RGBA (composited on white) and 16-bit images are converted, so that every
    command accepts what a camera or a dataset hands it.
    """
    path = Path(path)
    if not path.exists():
        raise OvssError(f"image not found: {path} (check the path)")
    if path.is_dir():
        raise OvssError(f"{path} is a folder, not an image (pass the folder itself to read every image in it)")
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb_array(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise OvssError(f"cannot read {path} as an image ({e.__class__.__name__}); pass a PNG, JPEG or other image file") from None


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert any PIL image mode to H x W x 3 uint8."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))
