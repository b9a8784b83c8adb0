"""Segment data: every ground-truth segment of a dataset cut out as its own small image.

OpenDAS (OpenDAS, appendix D) adapts CLIP on segments, not pixels: a segment keeps its pixels,
everything else becomes CLIP's mean pixel (as OVSeg does), and the crop around it is padded to a
square (so shapes keep their aspect) and resized to the model's input. Cutting a split takes longer
than an epoch of prompt tuning, so it is done once and cached on disk.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..errors import OvssError
from ..files import save_safetensors

# Bump when the same inputs would give other segment images, so old caches are not trusted.
SEGMENTS_VERSION = 1
MIN_PIXELS = 16  # smaller segments are slivers that no one can name


def cache_root() -> Path:
    """``$OVSS_CACHE``, else ``$XDG_CACHE_HOME/ovss``, else ``~/.cache/ovss``."""
    if os.environ.get("OVSS_CACHE"):
        return Path(os.environ["OVSS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ovss"


def mean_pixel(mean: Sequence[float]) -> tuple[int, int, int]:
    """CLIP's normalisation mean (0..1) as the uint8 pixel that masked-out areas are filled with."""
    return tuple(int(round(float(m) * 255)) for m in mean)


def cut_segment(image: np.ndarray, mask: np.ndarray, fill: Sequence[int], size: int | None = None) -> np.ndarray:
    """``image`` kept under ``mask`` and ``fill`` elsewhere, cropped to the mask's box, centred on a
    square of ``fill`` and resized (bicubic) to ``size`` x ``size`` (no resize when ``size`` is None)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise ValueError("empty mask: there is no segment to cut")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    fill = np.asarray(fill, dtype=np.uint8)
    crop = np.where(mask[y0:y1, x0:x1, None], image[y0:y1, x0:x1], fill)
    h, w = crop.shape[:2]
    side = max(h, w)
    square = np.empty((side, side, 3), dtype=np.uint8)
    square[:] = fill
    top, left = (side - h) // 2, (side - w) // 2
    square[top:top + h, left:left + w] = crop
    if size is not None and side != size:
        square = np.asarray(Image.fromarray(square).resize((size, size), Image.BICUBIC))
    return square


def class_masks(label: np.ndarray, ignore_index: int = 255, min_pixels: int = MIN_PIXELS) -> list[tuple[int, np.ndarray]]:
    """(class, mask) of every class in a label map with at least ``min_pixels`` pixels, by class."""
    values, counts = np.unique(label, return_counts=True)
    return [(int(v), label == v) for v, c in zip(values, counts) if v != ignore_index and c >= min_pixels]


@dataclass
class SegmentSet:
    """Segment images (N x S x S x 3 uint8), their classes, and the image each was cut from."""

    images: torch.Tensor
    labels: torch.Tensor
    image_index: torch.Tensor
    area: torch.Tensor
    class_names: list[str]
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, keep: torch.Tensor) -> "SegmentSet":
        """The segments where ``keep`` (bool, or indices) holds, with the same classes."""
        return SegmentSet(self.images[keep], self.labels[keep], self.image_index[keep], self.area[keep],
                          list(self.class_names), dict(self.info))

    def batch(self, index: torch.Tensor, model) -> torch.Tensor:
        """The segments ``index`` as ``model``'s input (B x 3 x S x S, its own normalisation)."""
        return model.normalize(self.images[index].permute(0, 3, 1, 2).float())


def cut_dataset(dataset, size: int, fill: Sequence[int], min_pixels: int = MIN_PIXELS,
                progress: bool = True) -> SegmentSet:
    """Every class segment of every image of a ``SegDataset`` (one segment per class and image)."""
    images, labels, index, area = [], [], [], []
    for i in tqdm(range(len(dataset)), desc="cut segments", unit="img", disable=not progress):
        item = dataset[i]
        for c, mask in class_masks(item["label"], dataset.ignore_index, min_pixels):
            if c >= dataset.num_classes:
                raise OvssError(f"annotation of {item['name']} holds label {c} but the dataset has "
                                f"{dataset.num_classes} classes; check the class file or the label files")
            images.append(cut_segment(item["image"], mask, fill, size))
            labels.append(c)
            index.append(i)
            area.append(int(mask.sum()))
    if not images:
        raise OvssError(f"no segments of at least {min_pixels} pixels in {dataset!r}; check the annotations")
    return SegmentSet(
        images=torch.from_numpy(np.stack(images)), labels=torch.tensor(labels, dtype=torch.long),
        image_index=torch.tensor(index, dtype=torch.long), area=torch.tensor(area, dtype=torch.long),
        class_names=[names[0] for names in dataset.classes],
    )


def _cache_key(dataset, size: int, fill: Sequence[int], min_pixels: int) -> str:
    """Changes when the settings or any annotation file (name, size, time) changes."""
    files = []
    for item in dataset.items:
        st = item.label.stat()
        files.append([item.name, st.st_size, st.st_mtime_ns])
    text = json.dumps([SEGMENTS_VERSION, dataset.spec.name, str(Path(dataset.root).resolve()), dataset.split,
                       size, list(fill), min_pixels, dataset.classes, files])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def save_segments(path: str | Path, segments: SegmentSet) -> Path:
    """Write a segment set as one safetensors file (class names and info in its metadata), atomically."""

    tensors = {"images": segments.images.contiguous(), "labels": segments.labels.contiguous(),
               "image_index": segments.image_index.contiguous(), "area": segments.area.contiguous()}
    meta = {"class_names": json.dumps(segments.class_names), "info": json.dumps(segments.info)}
    return save_safetensors(path, tensors, metadata=meta)


def read_segments(path: str | Path) -> SegmentSet:
    """Read a file written by ``save_segments``."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in ("images", "labels", "image_index", "area")}
        return SegmentSet(**t, class_names=json.loads(meta["class_names"]), info=json.loads(meta.get("info", "{}")))
    except Exception as e:  # a truncated or foreign file: the caller cuts the segments again
        raise OvssError(f"cannot read segment cache {path} ({e.__class__.__name__}); delete it and rerun") from None


def load_segments(dataset: str, root: str | os.PathLike, split: str, size: int, fill: Sequence[int],
                  min_pixels: int = MIN_PIXELS, limit: int | None = None,
                  cache_dir: str | os.PathLike | bool | None = None, progress: bool = True) -> SegmentSet:
    """The segments of one dataset split, cut once and then read from the cache.

    ``cache_dir`` None uses ``cache_root()/segments``; False cuts every time without caching.
    """
    from ..data import SegDataset

    ds = SegDataset(dataset, root, split, limit=limit)
    info = {"dataset": ds.spec.name, "root": str(ds.root), "split": split, "images": len(ds), "size": size,
            "fill": list(fill), "min_pixels": min_pixels}
    if cache_dir is False:
        segments = cut_dataset(ds, size, fill, min_pixels, progress)
        segments.info = info
        return segments
    folder = Path(cache_dir) if cache_dir not in (None, True) else cache_root() / "segments"
    path = folder / f"{ds.spec.name}_{split}_{size}_{_cache_key(ds, size, fill, min_pixels)}.safetensors"
    if path.is_file():
        try:
            return read_segments(path)
        except OvssError:
            pass  # cut again and overwrite
    segments = cut_dataset(ds, size, fill, min_pixels, progress)
    segments.info = info
    save_segments(path, segments)
    return segments
