"""Atomic file writing and safe image reading shared by every command.

Results are written to a temporary file in the target folder and renamed into place, so a
killed run never leaves a half-written JSON or PNG that a resumed run would trust. While a job
runs (``ovss.outputs.OutputRun``) every PNG, JSON and safetensors file written here names the job
that wrote it (its kind, e.g. "segment", and its run id), so that a later job can tell its own
files from another job's, another run's and a user's, and refuse the ones it must not replace.
A full disk is one line (``OvssError``), never a half-written file.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import OvssError
from .outputs import (  # noqa: F401  (the ownership rules live in outputs; these names stay importable here)
    JOB_KEY, JSON_MARK_KEY, OVSS_MARK, PNG_JOB_KEY, PNG_RUN_KEY, SOFTWARE_KEY, check_not_foreign, check_output_dir, claim,
    current_job, written_by_ovss,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``.

    While a job runs, a file of another job (or, for a job that does not resume, of another run)
    at ``path`` is refused (``claim``). A full disk raises ``OvssError`` in one line and leaves
    nothing half-written; the file is recorded in the open ``one_result`` group, if any.
    """
    path = Path(path)
    claim(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _disk_error(e, path) from None
    mode = 0o666 & ~current_umask()  # mkstemp makes 0600; the user's umask decides
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)  # some writers (safetensors) replace the file with a 0600 one of their own
        os.replace(tmp, path)
    except OSError as e:
        raise _disk_error(e, path) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    group = _GROUP.get()
    if group is not None:
        group.append(path)
    return path


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _disk_error(e: OSError, path: Path) -> Exception:
    """A full disk or quota as one line; any other OSError unchanged (a bug keeps its traceback)."""
    if e.errno in DISK_FULL:
        return OvssError(f"no space left to write {path} ({e.strerror}); nothing half-written was kept: "
                         "free some space or choose an output folder on another disk, then rerun")
    return e


@contextmanager
def one_result():
    """Files that only make sense together (a label PNG and its JSON): when writing one of them
    fails (a full disk, a kill by Ctrl-C), the ones already written in the group are removed."""
    token = _GROUP.set([])
    try:
        yield
    except BaseException:
        for written in _GROUP.get():
            try:
                written.unlink()
            except OSError:
                pass
        raise
    finally:
        _GROUP.reset(token)


_GROUP: ContextVar[list | None] = ContextVar("ovss_result_group", default=None)


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
    """Write ``data`` as indented JSON, atomically; while a job runs, a dict also names the job
    (``"written_by": "ovss"`` and ``"ovss_job": {"kind": ..., "run": ...}``)."""
    job = current_job()
    if job is not None and isinstance(data, dict):
        data = {**data, JSON_MARK_KEY: OVSS_MARK, JOB_KEY: {"kind": job.kind, "run": job.run}}
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
    a user's files (``written_by_ovss``) and never write over the latter; while a job runs, also
    ``ovss-job`` (its kind) and ``ovss-run`` (its run id).
    """
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text(SOFTWARE_KEY, OVSS_MARK)
        job = current_job()
        if job is not None:
            info.add_text(PNG_JOB_KEY, job.kind)
            info.add_text(PNG_RUN_KEY, job.run)
        return atomic_write(path, lambda tmp: image.save(tmp, format=fmt, pnginfo=info))
    return atomic_write(path, lambda tmp: image.save(tmp, format=fmt))


def save_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Write tensors as safetensors, atomically, with the user's umask; while a job runs the
    metadata names it (``ovss_job``, ``ovss_run``)."""
    from safetensors.torch import save_file

    meta = dict(metadata or {})
    job = current_job()
    if job is not None:
        meta.update({JSON_MARK_KEY: OVSS_MARK, JOB_KEY: job.kind, "ovss_run": job.run})
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta or None))


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
