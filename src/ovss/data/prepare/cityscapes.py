"""Cityscapes (19 train ids) from ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip``.

MMSegmentation's ``tools/dataset_converters/cityscapes.py`` calls cityscapesScripts'
``json2labelImg(..., "trainIds")`` on every ``*_gtFine_polygons.json``; that function, as this one:

* starts an ``imgWidth`` x ``imgHeight`` grayscale image filled with the train id of ``unlabeled`` (255);
* draws the objects in file order with PIL's ``ImageDraw.polygon`` (filled, no outline), each in its
  label's train id, skipping objects marked ``deleted`` and labels whose id is negative
  (``license plate``); a label ending in ``group`` not in the table is read without the suffix
  (``cargroup`` -> ``car``); an unknown label stops it (here: one line).

The same PIL drawing call rasterises the polygons, so the pixels on polygon edges agree too.
"""
from __future__ import annotations

import json

import numpy as np
from PIL import Image, ImageDraw

from ...errors import OvssError
from .jobs import Downloads, Job, matching, require_pairs

IMAGES_ZIP = "leftImg8bit_trainvaltest.zip"
LABELS_ZIP = "gtFine_trainvaltest.zip"

# cityscapesScripts helpers/labels.py: name -> (id, trainId)
LABELS: dict[str, tuple[int, int]] = {
    "unlabeled": (0, 255), "ego vehicle": (1, 255), "rectification border": (2, 255), "out of roi": (3, 255),
    "static": (4, 255), "dynamic": (5, 255), "ground": (6, 255), "road": (7, 0), "sidewalk": (8, 1),
    "parking": (9, 255), "rail track": (10, 255), "building": (11, 2), "wall": (12, 3), "fence": (13, 4),
    "guard rail": (14, 255), "bridge": (15, 255), "tunnel": (16, 255), "pole": (17, 5), "polegroup": (18, 255),
    "traffic light": (19, 6), "traffic sign": (20, 7), "vegetation": (21, 8), "terrain": (22, 9), "sky": (23, 10),
    "person": (24, 11), "rider": (25, 12), "car": (26, 13), "truck": (27, 14), "bus": (28, 15),
    "caravan": (29, 255), "trailer": (30, 255), "train": (31, 16), "motorcycle": (32, 17), "bicycle": (33, 18),
    "license plate": (-1, -1),
}


def polygons_to_train_ids(data: bytes, where: str) -> np.ndarray:
    """The train-id label map of one ``*_gtFine_polygons.json``."""
    try:
        ann = json.loads(data)
        size = (int(ann["imgWidth"]), int(ann["imgHeight"]))
        objects = ann["objects"]
    except (ValueError, KeyError, TypeError) as e:
        raise OvssError(f"{where} is not a Cityscapes polygon file ({e.__class__.__name__}); download {LABELS_ZIP} again") from None
    image = Image.new("L", size, LABELS["unlabeled"][1])
    draw = ImageDraw.Draw(image)
    for obj in objects:
        if obj.get("deleted", 0):
            continue
        label = obj["label"]
        if label not in LABELS and label.endswith("group"):
            label = label[: -len("group")]
        if label not in LABELS:
            raise OvssError(f"{where} has label {obj['label']!r}, not a Cityscapes label; is it the official file?")
        label_id, train_id = LABELS[label]
        if label_id < 0:
            continue
        draw.polygon([(p[0], p[1]) for p in obj["polygon"]], fill=train_id)
    return np.array(image)


def cityscapes_jobs(downloads: Downloads, split: str) -> list[Job]:
    """The split's leftImg8bit PNGs, copied, and their train-id maps drawn from the polygons."""
    images_zip = downloads.archive(IMAGES_ZIP)
    labels_zip = downloads.archive(LABELS_ZIP)
    images = matching(images_zip, f"leftImg8bit/{split}/", "_leftImg8bit.png")
    polygons = matching(labels_zip, f"gtFine/{split}/", "_gtFine_polygons.json")
    names = require_pairs(images, polygons, labels_zip, split)

    def copy(member: str):
        return lambda: images_zip.read(member)

    def label(member: str):
        return lambda: polygons_to_train_ids(labels_zip.read(member), f"{labels_zip.path.name}: {member}")

    jobs = []
    for n in names:
        jobs.append(Job(f"leftImg8bit/{split}/{n}_leftImg8bit.png", copy(images[n]), (0, images_zip.members[images[n]].order)))
        jobs.append(Job(f"gtFine/{split}/{n}_gtFine_labelTrainIds.png", label(polygons[n]), (1, labels_zip.members[polygons[n]].order)))
    return jobs
