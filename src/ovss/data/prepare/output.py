"""The folder a converter writes into, and its record of what ovss wrote there.

A conversion of 5,000 images may be killed half-way; run again, it must skip what is done and
never write over a file it did not write (a user's own copy, another tool's output). Copied JPEGs
carry no mark of their writer, so the folder keeps a log, ``.ovss-prepare.log``, one relative path
per line, appended *before* the file is written: every file ovss writes is then in the log, and,
as each file is written to a temporary name and renamed into place, a logged file that exists is
complete. A resumed run skips the logged files that exist and writes the rest; a file that exists
but is not in the log belongs to someone else, and the run stops before writing anything.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from ...errors import OvssError
from ...files import atomic_write, save_image

LOG_NAME = ".ovss-prepare.log"
VERIFIED = "#verified "


class OutputFolder:
    """One dataset folder (e.g. ``ROOT/VOCdevkit/VOC2012``) and the files ovss wrote into it."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.log_path = self.folder / LOG_NAME
        self.written: set[str] = set()
        self.verified: set[str] = set()  # archives whose checksum an earlier run checked (name:size:mtime)
        if self.log_path.is_file():
            for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith(VERIFIED):
                    self.verified.add(line[len(VERIFIED):])
                elif line and not line.startswith("#"):
                    self.written.add(line)

    def check_targets(self, rels: Iterable[str]) -> None:
        """Stop, before any work, if a file to be written exists and ovss did not write it."""
        foreign = [rel for rel in rels if rel not in self.written and (self.folder / rel).exists()]
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise OvssError(
                f"refusing to write over {self.folder / foreign[0]}{more}: ovss did not write it; "
                "choose another out folder, or move those files away", param="out"
            )

    def done(self, rel: str) -> bool:
        """Whether an earlier run wrote ``rel`` completely (logged, and there: files appear whole)."""
        return rel in self.written and (self.folder / rel).is_file()

    def _append(self, line: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def _claim(self, rel: str) -> Path:
        if rel not in self.written:
            self._append(rel)
            self.written.add(rel)
        return self.folder / rel

    def mark_verified(self, key: str | None) -> None:
        """Remember that an archive's checksum matched, so a resumed run need not hash it again."""
        if key and key not in self.verified:
            self._append(VERIFIED + key)
            self.verified.add(key)

    def write_bytes(self, rel: str, data: bytes) -> Path:
        """Write a file byte for byte (a JPEG, a split list), atomically."""
        path = self._claim(rel)

        def _write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        return atomic_write(path, _write)

    def write_label(self, rel: str, label: np.ndarray) -> Path:
        """Write an H x W uint8 label map as a grayscale PNG (mode L, as the reference converters save it)."""
        if label.dtype != np.uint8:
            raise ValueError(f"label maps are uint8, got {label.dtype}")
        return save_image(self._claim(rel), Image.fromarray(label))  # 2-D uint8: mode L
