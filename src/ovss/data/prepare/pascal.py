"""Pascal VOC 2012 (voc21, voc20) and Pascal Context (context60, context59) from the official downloads.

VOC 2012's tar already holds the evaluation layout (palette PNGs of indices 0..20 and 255), so its
split's files are copied byte for byte. Pascal Context's labels are built as MMSegmentation's
``tools/dataset_converters/pascal_context.py`` builds them with the PASCAL in Detail API:

* the images are those of ``trainval_merged.json`` whose ``phase`` is the split;
* each image's class mask starts at 0, then every segment of the image, in the order of
  ``annos_segmentation``, paints its ``category_id`` over its pixels (a later segment wins);
* the 60 category ids kept (0 = background and the 59 classes) are numbered by their rank in
  ascending order, which gives the 0..59 label values of ``SegmentationClassContext``; an id outside
  the 60 stops the reference converter (an assertion), and stops this one with one line;
* the split list is the sorted image names, one per line.
"""
from __future__ import annotations

import json

import numpy as np

from ...errors import OvssError
from .jobs import Downloads, Job, matching, require_pairs
from .rle import decode_segment

VOC2012_TAR = "VOCtrainval_11-May-2012.tar"
VOC2010_TAR = "VOCtrainval_03-May-2010.tar"
CONTEXT_JSON = "trainval_merged.json"

# the category ids of PASCAL in Detail that Pascal Context keeps: 0 (background) and 59 classes
CONTEXT_IDS = np.array(sorted((
    0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33, 162, 420, 454, 295, 296,
    427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68, 326, 72, 458, 34, 207, 80, 355, 85, 347, 220, 349,
    360, 98, 187, 104, 105, 366, 189, 368, 113, 115,
)))


def voc_jobs(downloads: Downloads, split: str) -> list[Job]:
    """VOC 2012: the split list, its JPEGs and SegmentationClass PNGs, copied unchanged."""
    tar = downloads.archive(VOC2012_TAR)
    base = "VOCdevkit/VOC2012/"
    split_member = f"{base}ImageSets/Segmentation/{split}.txt"
    if split_member not in tar.members:
        raise OvssError(f"{tar.path} has no {split_member}; is it {VOC2012_TAR}, and is {split!r} a VOC split?", param="split")
    split_text = tar.read(split_member)
    names = sorted({line.strip() for line in split_text.decode("utf-8", "replace").splitlines() if line.strip()})
    wanted = set(names)
    images = {n: m for n, m in matching(tar, base + "JPEGImages/", ".jpg").items() if n in wanted}
    labels = matching(tar, base + "SegmentationClass/", ".png")
    absent = [n for n in names if n not in images]
    if absent:
        raise OvssError(f"{tar.path} lacks {len(absent)} of the {len(names)} images listed in {split}.txt (first: {absent[0]}); download it again")
    names = require_pairs(images, labels, tar, split)

    def copy(member: str):
        return lambda: tar.read(member)

    jobs = [Job(f"ImageSets/Segmentation/{split}.txt", lambda: split_text)]
    for n in names:
        jobs.append(Job(f"JPEGImages/{n}.jpg", copy(images[n]), (0, tar.members[images[n]].order)))
        jobs.append(Job(f"SegmentationClass/{n}.png", copy(labels[n]), (0, tar.members[labels[n]].order)))
    return jobs


def context_index(data: bytes, where: str) -> tuple[list[dict], dict[int, list[dict]]]:
    """(images, {image_id: its segments in file order}) of a PASCAL in Detail JSON."""
    try:
        detail = json.loads(data)
        images = detail["images"]
        segments = detail["annos_segmentation"]
        by_image: dict[int, list[dict]] = {int(img["image_id"]): [] for img in images}
        for seg in segments:
            by_image[int(seg["image_id"])].append(seg)
    except (ValueError, KeyError, TypeError) as e:
        why = f"no {e}" if isinstance(e, KeyError) else e.__class__.__name__
        raise OvssError(f"{where} is not the PASCAL in Detail annotation file ({why}); download {CONTEXT_JSON} again") from None
    return images, by_image


def context_label(image: dict, segments: list[dict], where: str) -> np.ndarray:
    """The 0..59 label map of one image, painted and numbered as the reference converter does."""
    h, w = int(image["height"]), int(image["width"])
    mask = np.zeros((h, w), np.int64)
    for seg in segments:
        m = decode_segment(seg["segmentation"], f"{where}, segment {seg.get('id')}")
        if m.shape != mask.shape:
            raise OvssError(f"{where}: segment {seg.get('id')} is {m.shape[1]}x{m.shape[0]}, the image {w}x{h}; is it the official file?")
        mask[m != 0] = int(seg["category_id"])
    values = np.unique(mask)
    unknown = values[~np.isin(values, CONTEXT_IDS)]
    if unknown.size:
        raise OvssError(f"{where} has category {int(unknown[0])}, not one of Pascal Context's 60; is it {CONTEXT_JSON}?")
    return np.searchsorted(CONTEXT_IDS, mask).astype(np.uint8)


def context_jobs(downloads: Downloads, split: str) -> list[Job]:
    """Pascal Context: the split's JPEGs from the VOC 2010 tar, labels from the Detail JSON, the split list."""
    json_path = downloads.path(CONTEXT_JSON)
    tar = downloads.archive(VOC2010_TAR)
    images, by_image = context_index(json_path.read_bytes(), str(json_path))
    chosen = sorted((img for img in images if img.get("phase") == split), key=lambda img: img["file_name"])
    if not chosen:
        raise OvssError(f"{json_path} has no images of phase {split!r} (Pascal Context has train and val)", param="split")
    base = "VOCdevkit/VOC2010/JPEGImages/"
    absent = [img["file_name"] for img in chosen if base + img["file_name"] not in tar.members]
    if absent:
        raise OvssError(f"{tar.path} lacks {len(absent)} of the {len(chosen)} {split} images (first: {absent[0]}); is it {VOC2010_TAR}?")

    def label(img: dict):
        return lambda: context_label(img, by_image[int(img["image_id"])], f"{json_path.name}, image {img['file_name']}")

    def copy(member: str):
        return lambda: tar.read(member)

    names = sorted(img["file_name"].rsplit(".", 1)[0] for img in chosen)
    split_text = "".join(n + "\n" for n in names).encode()
    jobs = [Job(f"ImageSets/SegmentationContext/{split}.txt", lambda: split_text)]
    for img in chosen:
        member = base + img["file_name"]
        jobs.append(Job(f"JPEGImages/{img['file_name']}", copy(member), (0, tar.members[member].order)))
        jobs.append(Job(f"SegmentationClassContext/{img['file_name'].replace('jpg', 'png')}", label(img)))
    return jobs
