"""``prepare_dataset``: from the files the official sites distribute to the layout ovss evaluates.

The benchmarks' own converters (MMSegmentation's, which need mmcv/mmengine and, for Pascal Context,
the PASCAL in Detail API built from GitHub; SCLIP's COCO-Object script) are what ovss removed from
inference; this package reproduces their label maps with Pillow and NumPy only, reading the
downloads in place (no extraction), one split at a time, resumable after a kill, and never writing
over a file it did not write. docs/parity.md shows the label maps equal to the reference
converters', file by file, on the same synthetic archives.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ...errors import OvssError
from ...files import check_output_dir
from ..specs import get_spec
from .jobs import Downloads, Job, PrepareResult, run_jobs
from .output import LOG_NAME, OutputFolder

__all__ = ["PREPARERS", "LOG_NAME", "PrepareResult", "Preparer", "prepare_dataset"]


class Preparer:
    """How one dataset is made: the folder below ROOT it goes to, and the function that lists its files."""

    def __init__(self, folder: str, jobs: Callable[[Downloads, str], list[Job]], splits: tuple[str, ...]) -> None:
        self.folder, self.jobs, self.splits = folder, jobs, splits


def _registry() -> dict[str, Preparer]:
    from .ade import ade_jobs
    from .cityscapes import cityscapes_jobs
    from .coco import FOLDER as COCO_FOLDER
    from .coco import coco_jobs
    from .pascal import context_jobs, voc_jobs

    return {
        "voc21": Preparer("VOCdevkit/VOC2012", voc_jobs, ("val", "train", "trainval")),
        "voc20": Preparer("VOCdevkit/VOC2012", voc_jobs, ("val", "train", "trainval")),
        "context60": Preparer("VOCdevkit/VOC2010", context_jobs, ("val", "train")),
        "context59": Preparer("VOCdevkit/VOC2010", context_jobs, ("val", "train")),
        "coco_object": Preparer(COCO_FOLDER, lambda d, s: coco_jobs(d, s, "coco_object"), ("val", "train")),
        "coco_stuff164k": Preparer(COCO_FOLDER, lambda d, s: coco_jobs(d, s, "coco_stuff164k"), ("val", "train")),
        "cityscapes": Preparer("cityscapes", cityscapes_jobs, ("val", "train")),
        "ade20k": Preparer("ADEChallengeData2016", ade_jobs, ("val", "train")),
    }


PREPARERS: dict[str, Preparer] = _registry()


def prepare_dataset(
    name: str,
    downloads: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "val",
    checksum: bool = True,
    progress: bool = False,
) -> PrepareResult:
    """Write dataset ``name``'s ``split`` under ``out`` (the data root) from the official files in ``downloads``.

    ``out`` is the folder that holds the datasets (``out/VOCdevkit/VOC2012``, ``out/coco_stuff164k``,
    ...), so one root serves every benchmark and ``ovss data check out --dataset name`` finds it.
    ``checksum`` compares each download with its published md5/sha1 where one is known (the hash of
    a large file takes a while; a resumed run remembers it). Every problem is one ``OvssError`` line,
    raised before the first file is written when the archives' structure already shows it.
    """
    spec = get_spec(name)
    preparer = PREPARERS.get(spec.name)
    if preparer is None:
        raise OvssError(f"{spec.name} is not prepared from downloads; {spec.prepare}")
    if split not in preparer.splits:
        raise OvssError(f"split must be one of {', '.join(preparer.splits)} for {spec.name}, got {split!r}", param="split")
    source = Path(downloads).expanduser()
    if not source.is_dir():
        raise OvssError(f"downloads folder {source} does not exist or is not a folder", param="downloads")
    root = check_output_dir(out)
    folder = OutputFolder(root / preparer.folder)
    where = f"how to get it: {spec.prepare}"
    files = Downloads(source, folder, where, checksum=checksum, progress=progress)
    try:
        jobs = preparer.jobs(files, split)
        written, skipped = run_jobs(folder, jobs, f"prepare {spec.name} {split}", progress)
    finally:
        files.close()
    return PrepareResult(dataset=spec.name, folder=folder.folder, written=written, skipped=skipped)
