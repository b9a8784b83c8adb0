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
    """Save a PIL image atomically; the format follows the suffix of ``path``.

    PNGs carry a text chunk ``Software: ovss`` so that a later run can tell its own outputs from
    a user's files (``written_by_ovss``) and never write over the latter.
    """
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text(SOFTWARE_KEY, OVSS_MARK)
        return atomic_write(path, lambda tmp: image.save(tmp, format=fmt, pnginfo=info))
    return atomic_write(path, lambda tmp: image.save(tmp, format=fmt))


# ----------------------------------------------------------------------------- ownership of outputs

SOFTWARE_KEY = "Software"
OVSS_MARK = "ovss"
JSON_MARK_KEY = "written_by"  # JSON outputs that may sit beside user files carry {"written_by": "ovss"}


def written_by_ovss(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` is one ovss wrote (a marked PNG or JSON); False for anything else."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".png":
            with Image.open(path) as im:
                return getattr(im, "text", {}).get(SOFTWARE_KEY) == OVSS_MARK
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(data, dict) and data.get(JSON_MARK_KEY) == OVSS_MARK
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError):
        return False
    return False


def check_not_foreign(paths, hint: str) -> None:
    """Raise before any work if a path that would be written holds a file ovss did not write."""
    for path in paths:
        path = Path(path)
        if path.exists() and not (path.is_file() and written_by_ovss(path)):
            raise OvssError(f"refusing to write over {path}: ovss did not write it; {hint}")


def check_output_dir(path: str | os.PathLike) -> Path:
    """Make sure ``path`` is (or can become) a writable folder, before any heavy work starts.

    Names the real problem in one line: a file where the folder should be, a file above it, a
    read-only place, or a pseudo file system such as /proc. Creates nothing: a probe file is made
    and removed in the folder, or in its nearest existing parent, so a run stopped by a later
    mistake leaves no empty output folder behind.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OvssError(f"{path} is a file, not a folder")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OvssError(f"{path} lies under {parent}, which is a file, not a folder")
    resolved = path.resolve()
    if resolved.parts[:2] in (("/", "proc"), ("/", "sys")):
        raise OvssError(f"{path} is in the kernel's pseudo file system /{resolved.parts[1]}; pick a normal folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ovss-probe.", dir=parent)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise OvssError(f"cannot write into {parent} ({e.strerror or e.__class__.__name__}); pick a writable folder") from None
    return path


def finite_or_none(value: Any) -> Any:
    """NaN (a class never seen, a metric with nothing to average) as None, JSON's null; numbers as
    plain floats; anything else unchanged."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value


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


class RunLog:
    """Lines of a long run: to stderr (above any progress bar) and appended to a log file in the run
    folder, with a time stamp, so a resumed run's history stays in one place."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, line: str, echo: bool = True) -> None:
        import sys
        import time

        from tqdm import tqdm

        if echo:
            tqdm.write(line, file=sys.stderr)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
