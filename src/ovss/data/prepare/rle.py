"""COCO run-length encoded masks, decoded without pycocotools.

PASCAL in Detail's ``trainval_merged.json`` (Pascal Context) stores every segment as a COCO RLE:
``{"size": [h, w], "counts": ...}``. The runs alternate background and foreground, starting with
background, over the pixels in column-major order (down the first column, then the next). ``counts``
is either a list of run lengths or the compact string of the COCO mask API: each run is written in
groups of 5 bits, low bits first, as characters ``chr(48 + group)`` with bit 0x20 meaning "another
group follows"; the last group's bit 0x10 is the sign; from the third run on, the value stored is
the difference from the run two before. Decoding it here keeps the C-compiled pycocotools optional.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import OvssError


def string_counts(text: str | bytes) -> list[int]:
    """The run lengths of a COCO compact RLE string."""
    data = text.encode("ascii") if isinstance(text, str) else text
    counts: list[int] = []
    p = 0
    while p < len(data):
        value, shift, more = 0, 0, True
        while more:
            if p >= len(data):
                raise ValueError("RLE string ends inside a run")
            group = data[p] - 48
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            p += 1
            shift += 5
            if not more and group & 0x10:
                value |= -1 << shift  # negative: sign-extend
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def decode_rle(rle: Any) -> np.ndarray:
    """An H x W uint8 0/1 mask from a COCO RLE dict; a malformed one is a ValueError."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("not a COCO RLE (a dict with size and counts)")
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = [int(c) for c in counts] if isinstance(counts, list) else string_counts(counts)
    if any(r < 0 for r in runs) or sum(runs) != h * w:
        raise ValueError(f"RLE runs cover {sum(runs)} pixels, the mask has {h}x{w}")
    values = np.zeros(len(runs), np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, runs)
    return flat.reshape(w, h).T.copy()  # column-major, as the COCO mask API stores it


def decode_segment(rle: Any, where: str) -> np.ndarray:
    """``decode_rle`` with a malformed segment turned into one line naming ``where`` it is."""
    try:
        return decode_rle(rle)
    except (ValueError, TypeError) as e:
        raise OvssError(f"{where}: cannot decode the segment ({e}); is it the official file?") from None
