"""Open every image and annotation of a dataset the cheap way, so a broken file is found before a run.

A benchmark that dies on image 1,400 after half an hour wastes the half hour; ``check_files`` reads
only each file's header and structure (PIL ``open`` + ``verify``: chunk checksums for PNG, no pixel
decoding; a JPEG without its end marker is decoded in full), so it checks thousands of files in
seconds. It finds garbage or truncated headers, JPEGs cut short,
unreadable files and an annotation whose size differs from its (upright) image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from PIL import Image

from ..files import EXIF_ORIENTATION_TAG

# EXIF orientations that swap width and height (rotations by 90 or 270 degrees)
_TRANSPOSING = {5, 6, 7, 8}


def _header_size(path: Path, upright: bool) -> tuple[int, int]:
    """(width, height) from the header; ``upright`` applies an EXIF rotation as reading does."""
    with Image.open(path) as im:
        width, height = im.size
        fmt = im.format
        im.verify()  # must come first after open; the file is unusable afterwards
    if fmt == "JPEG":
        check_jpeg_end(path)
    orientation = None
    if upright:
        with Image.open(path) as im:
            try:
                orientation = im.getexif().get(EXIF_ORIENTATION_TAG)
            except (OSError, ValueError, SyntaxError):
                orientation = None
    return (height, width) if orientation in _TRANSPOSING else (width, height)


def check_jpeg_end(path: Path, tail: int = 4096) -> None:
    """A JPEG cut short (an interrupted download) has a good header and ``verify`` passes it (PIL
    checks nothing past the header for JPEG). A whole one ends with the end-of-image marker FF D9,
    which cannot occur inside the entropy-coded data (FF bytes there are stuffed with 00). Files
    without it in their last ``tail`` bytes are decoded in full, which raises where data is
    missing (a few cameras append bytes after the marker: those decode fine and pass)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - tail))
        if b"\xff\xd9" in f.read():
            return
    with Image.open(path) as im:
        im.load()  # OSError "image file is truncated (N bytes not processed)"


def _why(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{e.__class__.__name__}: {text}" if text else e.__class__.__name__


def check_files(items: Iterable, progress: bool = False) -> list[str]:
    """One line per broken item (``items`` have ``.image`` and ``.label`` paths); empty when all open."""
    items = list(items)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="check files", unit="img", disable=len(items) < 200)
    broken = []
    for item in items:
        sizes = {}
        for kind, path in (("image", item.image), ("annotation", item.label)):
            try:
                sizes[kind] = _header_size(Path(path), upright=kind == "image")
            except Exception as e:  # noqa: BLE001 - any failure to open is what this check reports
                broken.append(f"cannot read {kind} {path} ({_why(e)}); replace or re-download the file")
        if len(sizes) == 2 and sizes["image"] != sizes["annotation"]:
            (iw, ih), (lw, lh) = sizes["image"], sizes["annotation"]
            broken.append(f"annotation {item.label} is {lw}x{lh} but image {item.image} is {iw}x{ih}; re-prepare the dataset")
    return broken
