"""One image in, the three files ``ovss segment`` writes out: label PNG, overlay PNG, JSON.

The command line and the interactive page (``ovss app``) both call ``write_segmentation``, so a
download from the page holds what the command writes for the same labels (the same pixels and
record; each names the job that wrote it, ``segment`` or ``app``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..files import JSON_MARK_KEY, OVSS_MARK, one_result, save_image, write_json
from ..text import ClassList
from ..viz import label_png, legend_fonts, legend_note, overlay


@dataclass(frozen=True)
class SegmentationFiles:
    labels: Path
    overlay: Path
    record: Path
    note: str | None = None  # one line for the log (e.g. legend letters no font covers)


def segmentation_record(image_name: str, image: np.ndarray, classes: ClassList, shares: dict[str, float],
                        stem: str, settings: dict, extra: dict[str, Any] | None = None) -> dict:
    """The JSON written next to the PNGs: what was asked, what came out, and every setting used."""
    return {
        JSON_MARK_KEY: OVSS_MARK,  # lets a later run tell its own outputs from a user's files
        "image": image_name, "size": list(image.shape[:2]),
        "classes": [list(s) for s in classes.synonyms],
        "pixel_share": shares,
        "outputs": {"labels": f"{stem}.png", "overlay": f"{stem}_overlay.png"},
        "settings": settings,
        **(extra or {}),
    }


def write_segmentation(out: str | os.PathLike, stem: str, image: np.ndarray, labels: np.ndarray, classes: ClassList,
                       shares: dict[str, float], image_name: str, settings: dict,
                       extra: dict[str, Any] | None = None) -> SegmentationFiles:
    """Write ``stem.png`` (class indices), ``stem_overlay.png`` (image, colours, legend) and ``stem.json``.

    ``labels`` is H x W uint8 (255 = unlabelled); ``shares`` maps class name to pixel share in class
    order (open-world runs add "(unlabelled)" last); ``extra`` adds keys such as "tta" or "open_world".
    """
    out = Path(out)
    legend = legend_fonts(classes.names)
    if set(legend) != {"font"}:  # a fallback font drew some names, or no font covers some letters
        extra = {**(extra or {}), "legend": legend}
    with one_result():  # a full disk or a kill between the files leaves none of them (no PNG without its JSON)
        labels_path = save_image(out / f"{stem}.png", label_png(labels))
        overlay_path = save_image(out / f"{stem}_overlay.png", overlay(image, labels, classes.names, list(shares.values())))
        record = write_json(out / f"{stem}.json", segmentation_record(image_name, image, classes, shares, stem, settings, extra))
    return SegmentationFiles(labels_path, overlay_path, record, legend_note(legend))
