"""Small synthetic downloads in each official format, with label maps derived by hand.

Shared by the ``prepare`` tests and by the parity run against the reference converters
(docs/parity.md), which reads the same archives.
"""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def jpeg(h: int, w: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def png(array: np.ndarray, palette: bool = False) -> bytes:
    im = Image.fromarray(array.astype(np.uint8))
    if palette:  # VOC's SegmentationClass: mode P, indices with a colour table
        im = im.convert("P")
        im.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
        im.putdata(array.astype(np.uint8).ravel().tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# ---------------------------------------------------------------- Pascal VOC 2012

VOC_LABELS = {
    "2007_000001": np.array([[0, 1, 1], [0, 15, 255], [20, 20, 0]]),
    "2007_000002": np.array([[3, 3], [255, 0]]),
    "2007_000003": np.array([[5]]),  # train only
}


def voc2012_tar(folder: Path) -> Path:
    base = "VOCdevkit/VOC2012/"
    members = {
        base + "ImageSets/Segmentation/val.txt": b"2007_000002\n2007_000001\n",
        base + "ImageSets/Segmentation/train.txt": b"2007_000003\n",
    }
    for i, (name, label) in enumerate(VOC_LABELS.items()):
        members[base + f"JPEGImages/{name}.jpg"] = jpeg(*label.shape, seed=i)
        members[base + f"SegmentationClass/{name}.png"] = png(label, palette=True)
    members[base + "Annotations/2007_000001.xml"] = b"<annotation/>"
    return write_tar(folder / "VOCtrainval_11-May-2012.tar", members)


# ---------------------------------------------------------------- Pascal Context (PASCAL in Detail JSON)

# 4 x 3 image: segment 1 (category 2 = rank 1) covers column-major pixels 5..7; segment 2 (category
# 458 = rank 59, later, so on top) covers pixels 6..9 and 11, written as the compact string "641M"
# (runs 6, 4, 1, 1; the last stored as -3 relative to the run two before).
CONTEXT_EXPECTED = np.array([
    [0, 0, 59],
    [0, 1, 59],
    [0, 59, 0],
    [0, 59, 59],
])


def context_downloads(folder: Path, extra_category: int | None = None) -> tuple[Path, Path]:
    base = "VOCdevkit/VOC2010/JPEGImages/"
    images = [
        {"image_id": 2008000001, "file_name": "2008_000001.jpg", "height": 4, "width": 3, "phase": "val"},
        {"image_id": 2008000002, "file_name": "2008_000002.jpg", "height": 2, "width": 2, "phase": "val"},
        {"image_id": 2008000003, "file_name": "2008_000003.jpg", "height": 2, "width": 2, "phase": "train"},
    ]
    segments = [
        {"id": 1, "image_id": 2008000001, "category_id": 2, "segmentation": {"size": [4, 3], "counts": "534"}},
        {"id": 2, "image_id": 2008000003, "category_id": 9, "segmentation": {"size": [2, 2], "counts": [0, 4]}},
        {"id": 3, "image_id": 2008000001, "category_id": 458, "segmentation": {"size": [4, 3], "counts": "641M"}},
    ]
    if extra_category is not None:
        segments.append({"id": 4, "image_id": 2008000002, "category_id": extra_category,
                         "segmentation": {"size": [2, 2], "counts": [3, 1]}})
    detail = {"info": {}, "images": images, "annos_segmentation": segments, "annos_occlusion": [],
              "annos_boundary": [], "annos_joints": [], "parts": [], "categories": [
                  {"category_id": c, "name": f"c{c}", "supercategory": "object", "onlysemantic": 0, "parts": []}
                  for c in (2, 9, 458) + ((extra_category,) if extra_category is not None else ())]}
    json_path = folder / "trainval_merged.json"
    json_path.write_text(json.dumps(detail))
    members = {base + img["file_name"]: jpeg(img["height"], img["width"], seed=i) for i, img in enumerate(images)}
    members["VOCdevkit/VOC2010/ImageSets/Main/train.txt"] = b"2008_000003\n"
    return write_tar(folder / "VOCtrainval_03-May-2010.tar", members), json_path


# ---------------------------------------------------------------- COCO (images + stuff-thing maps)

# person (0), stop sign (12), toothbrush (89), banner (91, first stuff), wood (181), unlabeled (255),
# an id COCO never used (90, left unchanged by both reference scripts)
COCO_MAP = np.array([[0, 12, 89, 91], [181, 255, 90, 0]])
COCO_STUFF_EXPECTED = np.array([[0, 11, 79, 80], [170, 255, 90, 0]])
COCO_OBJECT_EXPECTED = np.array([[1, 12, 80, 0], [0, 0, 90, 1]])


def coco_downloads(folder: Path) -> tuple[Path, Path]:
    names = ["000000000139", "000000000285"]
    maps = {names[0]: COCO_MAP, names[1]: np.full((3, 2), 255)}
    images = write_zip(folder / "val2017.zip", {f"val2017/{n}.jpg": jpeg(*maps[n].shape, seed=i) for i, n in enumerate(names)})
    stuff = {f"val2017/{n}.png": png(maps[n]) for n in names}
    stuff["train2017/000000000009.png"] = png(np.zeros((2, 2)))
    return images, write_zip(folder / "stuffthingmaps_trainval2017.zip", stuff)


# ---------------------------------------------------------------- Cityscapes (polygons as the scripts draw them)

CITY_NAME = "frankfurt/frankfurt_000000_000294"
# 6 x 4: road fills rows 2..3; a car and a "cargroup" (read as car, 13) fill rows 0..1 of columns 1..2
# and 4..5; a deleted sky and a license plate (id -1) are not drawn; the rest stays unlabeled (255).
CITY_EXPECTED = np.array([
    [255, 13, 13, 255, 13, 13],
    [255, 13, 13, 255, 13, 13],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
])


def city_polygons() -> dict:
    return {"imgHeight": 4, "imgWidth": 6, "objects": [
        {"label": "road", "polygon": [[0, 2], [5, 2], [5, 3], [0, 3]]},
        {"label": "sky", "polygon": [[0, 0], [5, 0], [5, 3], [0, 3]], "deleted": 1},
        {"label": "car", "polygon": [[1, 0], [2, 0], [2, 1], [1, 1]]},
        {"label": "cargroup", "polygon": [[4, 0], [5, 0], [5, 1], [4, 1]]},
        {"label": "license plate", "polygon": [[0, 0], [5, 0], [5, 3], [0, 3]]},
    ]}


def cityscapes_downloads(folder: Path, polygons: dict | None = None) -> tuple[Path, Path]:
    image = png(np.zeros((4, 6, 3)))
    images = write_zip(folder / "leftImg8bit_trainvaltest.zip", {
        f"leftImg8bit/val/{CITY_NAME}_leftImg8bit.png": image,
        "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png": image,
        "README": b"x", "license.txt": b"x",
    })
    labels = write_zip(folder / "gtFine_trainvaltest.zip", {
        f"gtFine/val/{CITY_NAME}_gtFine_polygons.json": json.dumps(polygons or city_polygons()).encode(),
        f"gtFine/val/{CITY_NAME}_gtFine_labelIds.png": png(np.zeros((4, 6))),
        "gtFine/train/aachen/aachen_000000_000019_gtFine_polygons.json": json.dumps(city_polygons()).encode(),
    })
    return images, labels


# ---------------------------------------------------------------- ADE20K

ADE_LABEL = np.array([[0, 1, 150], [12, 12, 0]])


def ade_zip(folder: Path) -> Path:
    base = "ADEChallengeData2016/"
    return write_zip(folder / "ADEChallengeData2016.zip", {
        base + "images/validation/ADE_val_00000001.jpg": jpeg(2, 3, seed=0),
        base + "annotations/validation/ADE_val_00000001.png": png(ADE_LABEL),
        base + "images/training/ADE_train_00000001.jpg": jpeg(2, 3, seed=1),
        base + "annotations/training/ADE_train_00000001.png": png(ADE_LABEL),
        base + "objectInfo150.txt": b"Idx\n",
    })
