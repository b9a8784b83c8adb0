"""COCO-Stuff 164k and COCO-Object from ``val2017.zip`` and ``stuffthingmaps_trainval2017.zip``.

The stuff-thing maps hold, per pixel, the COCO category id minus one (0 = person .. 181 = wood) and
255 for unlabeled pixels; 11 of the 182 ids were never used, so the values have gaps.

* COCO-Stuff 164k (MMSegmentation ``tools/dataset_converters/coco_stuff164k.py``): the 171 used ids
  are renumbered 0..170 in order (``*_labelTrainIds.png``); 255 stays 255.
* COCO-Object (SCLIP's / NACLIP's ``datasets/cvt_coco_object.py``, from GroupViT): the same
  renumbering plus one, for the things (ids 0..90 become 1..80), and 0 for everything else: every
  stuff class (ids above 90) and the unlabeled pixels (255) alike become background 0
  (``*_instanceTrainIds.png``). Unlabeled pixels are therefore *counted as background*, not ignored.

Both reference scripts leave a value that is not in their table unchanged (they only assign the
listed ids); the lookup tables below do the same, so a stray value passes through as it would there.
Both datasets are written into one folder, ``coco_stuff164k``, sharing the images.
"""
from __future__ import annotations

import numpy as np

from ...errors import OvssError
from .jobs import Downloads, Job, decode_png, matching, require_pairs

STUFF_ZIP = "stuffthingmaps_trainval2017.zip"
FOLDER = "coco_stuff164k"

# the 11 category ids (minus one) that COCO never used: 11 things (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)
UNUSED = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
USED = [i for i in range(182) if i not in UNUSED]  # 171 ids: 80 things (< 91), 91 stuff


def stuff_table() -> np.ndarray:
    """value -> COCO-Stuff train id (0..170, 255 stays); unlisted values unchanged."""
    table = np.arange(256, dtype=np.uint8)
    table[USED] = np.arange(len(USED), dtype=np.uint8)
    return table


def object_table() -> np.ndarray:
    """value -> COCO-Object id: things 1..80, stuff and unlabeled (255) 0; unlisted values unchanged."""
    table = np.arange(256, dtype=np.uint8)
    for train_id, value in enumerate(USED):
        table[value] = train_id + 1 if value <= 90 else 0
    table[255] = 0
    return table


SUFFIX = {"coco_stuff164k": "_labelTrainIds.png", "coco_object": "_instanceTrainIds.png"}
TABLES = {"coco_stuff164k": stuff_table, "coco_object": object_table}


def coco_jobs(downloads: Downloads, split: str, name: str) -> list[Job]:
    """The split's JPEGs (shared by both datasets) and the label maps of ``name``."""
    folder = f"{split}2017"
    images_zip = downloads.archive(f"{folder}.zip")
    maps_zip = downloads.archive(STUFF_ZIP)
    images = matching(images_zip, f"{folder}/", ".jpg")
    maps = matching(maps_zip, f"{folder}/", ".png")
    names = require_pairs(images, maps, maps_zip, folder)
    table = TABLES[name]()

    def copy(member: str):
        return lambda: images_zip.read(member)

    def label(member: str):
        def make() -> np.ndarray:
            where = f"{maps_zip.path.name}: {member}"
            ids = decode_png(maps_zip.read(member), where)
            if ids.dtype != np.uint8 or ids.ndim != 2:
                raise OvssError(f"{where} is not an 8-bit stuff-thing map; is it {STUFF_ZIP}?")
            return table[ids]

        return make

    jobs = []
    for n in names:
        jobs.append(Job(f"images/{folder}/{n}.jpg", copy(images[n]), (0, images_zip.members[images[n]].order)))
        jobs.append(Job(f"annotations/{folder}/{n}{SUFFIX[name]}", label(maps[n]), (1, maps_zip.members[maps[n]].order)))
    return jobs
