"""Atomic file writing and safe image reading shared by every command.

Results are written to a temporary file in the target folder and renamed into place, so a
killed run never leaves a half-written JSON or PNG that a resumed run would trust.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import OvssError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; the user's umask decides
    finally:
        os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only for a moment)
    os.umask(mask)
    return mask


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


EXIF_ORIENTATION_TAG = 0x0112


@dataclass
class ReadImage:
    """An image as read for segmentation, and what reading it changed.

    ``exif_orientation`` is the file's EXIF orientation tag (1..8, None without one); 2..8 were
    applied (the pixels turned upright, as every photo viewer shows them) so labels match what the
    user sees.
    """

    rgb: np.ndarray
    exif_orientation: int | None = None

    @property
    def orientation_applied(self) -> bool:
        return self.exif_orientation is not None and self.exif_orientation != 1

    def describe(self) -> dict:
        """The JSON record: the tag and whether the pixels were turned."""
        return {"exif_orientation": self.exif_orientation, "exif_orientation_applied": self.orientation_applied}


def read_image(path: str | os.PathLike) -> ReadImage:
    """Read any image file upright as H x W x 3 uint8 RGB, with its EXIF orientation applied.

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
            orientation = _exif_orientation(im)
            if orientation is not None and orientation != 1:
                im = ImageOps.exif_transpose(im)
            return ReadImage(to_rgb_array(im), orientation)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise OvssError(f"cannot read {path} as an image ({e.__class__.__name__}); pass a PNG, JPEG or other image file") from None


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read any image file upright as an H x W x 3 uint8 RGB array (see ``read_image``)."""
    return read_image(path).rgb


def _exif_orientation(im: Image.Image) -> int | None:
    try:
        value = im.getexif().get(EXIF_ORIENTATION_TAG)
    except (OSError, ValueError, SyntaxError):  # a damaged EXIF block: the pixels are still good
        return None
    try:
        value = int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and 1 <= value <= 8 else None


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
