"""What every converter shares: open the downloads, plan the output files, write the missing ones.

A converter lists its output files as ``Job``s first (which member of which archive each comes
from), so that every check that can fail (a missing download, a wrong checksum, a member the split
needs but the archive lacks, a foreign file in the way) fails before the first file is written.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...errors import OvssError
from .archives import Archive, check_checksum, find_download
from .output import OutputFolder


@dataclass
class Job:
    """One output file: ``rel`` in the dataset folder, made by ``make()`` as bytes or a uint8 label map."""

    rel: str
    make: Callable[[], bytes | np.ndarray]
    order: tuple[int, int] = (0, 0)  # (archive, position in it): read each archive front to back


@dataclass
class PrepareResult:
    """What one ``prepare_dataset`` call did: where the dataset is, files written now and kept from before."""

    dataset: str
    folder: Path
    written: int
    skipped: int


class Downloads:
    """The official files a converter reads, opened once and checked against their published checksums."""

    def __init__(self, folder: Path, out: OutputFolder, where: str, checksum: bool, progress: bool) -> None:
        self.folder, self.out, self.where = folder, out, where
        self.checksum, self.progress = checksum, progress
        self.opened: list[Archive] = []

    def path(self, filename: str) -> Path:
        path = find_download(self.folder, filename, self.where)
        if self.checksum:
            self.out.mark_verified(check_checksum(path, self.progress, self.out.verified))
        return path

    def archive(self, filename: str) -> Archive:
        archive = Archive(self.path(filename))
        self.opened.append(archive)
        return archive

    def close(self) -> None:
        for archive in self.opened:
            archive.close()


def matching(archive: Archive, prefix: str, suffix: str) -> dict[str, str]:
    """Members ``prefix + NAME + suffix`` as {NAME: member}; NAME may hold folders (Cityscapes' cities).

    The prefix may also follow one wrapping folder (a repacked ``something/``), so an
    archive re-zipped around its official tree is read the same.
    """
    found = {}
    for m in archive.members:
        if not m.endswith(suffix):
            continue
        if m.startswith(prefix):
            at = 0
        else:
            wrap = m.find("/" + prefix)
            if wrap < 0 or "/" in m[:wrap]:
                continue
            at = wrap + 1
        name = m[at + len(prefix): len(m) - len(suffix)]
        if name:
            found.setdefault(name, m)
    return found


def require_pairs(images: dict[str, str], labels: dict[str, str], archive: Archive, what: str) -> list[str]:
    """The names with both an image and a label; one line if the split is empty or labels are missing."""
    if not images:
        raise OvssError(f"{archive.path} holds no {what} images; is it the official file?")
    missing = sorted(set(images) - set(labels))
    if missing:
        raise OvssError(
            f"{archive.path} has no annotation for {len(missing)} of {len(images)} {what} images "
            f"(first: {missing[0]}); is it the official file, and complete?"
        )
    return sorted(images)


def decode_png(data: bytes, where: str) -> np.ndarray:
    """A label PNG's index array (palette and grayscale alike, never converted to colours)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.array(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise OvssError(f"{where} is not a readable PNG ({e.__class__.__name__}); download the archive again") from None


def run_jobs(out: OutputFolder, jobs: list[Job], desc: str, progress: bool) -> tuple[int, int]:
    """Write every job whose file a previous run did not finish; (written, skipped)."""
    out.check_targets(job.rel for job in jobs)
    todo = sorted((job for job in jobs if not out.done(job.rel)), key=lambda job: job.order)
    from tqdm import tqdm

    for job in tqdm(todo, desc=desc, unit="file", disable=not progress):
        content = job.make()
        if isinstance(content, np.ndarray):
            out.write_label(job.rel, content)
        else:
            out.write_bytes(job.rel, content)
    return len(todo), len(jobs) - len(todo)
