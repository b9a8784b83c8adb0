"""``SegDataset``: one split of a registered benchmark as ``{"image", "label", "name"}`` items.

The registry (``specs``), the layout scan (``layout``) and the label readers (``labels``) live in
their own modules; their public names are re-exported here so older imports keep working.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch.utils.data

from ..errors import OvssError
from ..files import read_rgb
from .labels import read_label, reduce_labels, resize_label
from .layout import Item, LayoutReport, check_layout, class_names_for, scan_layout
from .specs import DATASETS, IGNORE_INDEX, DatasetSpec, get_spec, resolve_root

__all__ = [
    "DATASETS", "IGNORE_INDEX", "DatasetSpec", "Item", "LayoutReport", "SegDataset", "check_layout",
    "class_names_for", "get_spec", "read_label", "reduce_labels", "resize_label", "resolve_root", "scan_layout",
]


def _read_meta(base: Path) -> dict[str, Any]:
    path = base / "meta.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise OvssError(f"cannot read {path} as JSON ({e.__class__.__name__}); re-export the dataset") from None
    return meta if isinstance(meta, dict) else {}


class SegDataset(torch.utils.data.Dataset):
    """One split of a registered dataset: items are ``{"image", "label", "name"}`` dicts.

    ``image`` is H x W x 3 uint8 RGB, ``label`` is H x W with the dataset's label reduction applied
    and 255 = ignore, ``name`` is the image path relative to the image folder, without suffix.
    Items are sorted by name; ``limit`` keeps the first N, then ``shard=(rank, world_size)`` keeps
    every world_size-th item from ``rank``, so distributed ranks split the work without overlap.
    """

    def __init__(
        self,
        name: str,
        root: str | os.PathLike,
        split: str = "val",
        limit: int | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.spec = get_spec(name)
        rank, world = _check_shard(shard)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise OvssError(f"limit must be a positive number of images, got {limit!r}")
        report = scan_layout(self.spec.name, root, split)
        if report.problems:
            more = f" (and {len(report.problems) - 1} more; run `ovss data check`)" if len(report.problems) > 1 else ""
            raise OvssError(report.problems[0] + more)
        self.root = report.root
        self.split = split
        self.classes: list[list[str]] = class_names_for(self.spec, self.root)
        self.has_background, self.background_index = self._background()
        items = report.items[:limit] if limit is not None else report.items
        self.items: list[Item] = items[rank::world]

    def _background(self) -> tuple[bool, int | None]:
        if not self.spec.classes_in_root:
            return self.spec.has_background, self.spec.background_index
        # exported datasets say where their background is in meta.json; else a class named "background"
        meta = _read_meta(self.root)
        if "background_index" in meta:
            index = meta["background_index"]
            return index is not None, (int(index) if index is not None else None)
        for i, names in enumerate(self.classes):
            if names[0].lower() == "background":
                return True, i
        return False, None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def ignore_index(self) -> int:
        return IGNORE_INDEX

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        image = read_rgb(item.image)
        label = reduce_labels(read_label(item.label), self.spec.reduce_zero_label, self.spec.label_map)
        if label.shape != image.shape[:2]:
            raise OvssError(
                f"annotation {item.label} is {label.shape[1]}x{label.shape[0]} but image {item.image} is "
                f"{image.shape[1]}x{image.shape[0]}; re-prepare the dataset"
            )
        return {"image": image, "label": label, "name": item.name}

    def __repr__(self) -> str:
        return f"SegDataset({self.spec.name!r}, root={str(self.root)!r}, split={self.split!r}, items={len(self)})"


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    try:
        rank, world = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise OvssError(f"shard must be (rank, world_size), got {shard!r}") from None
    if world < 1 or not 0 <= rank < world:
        raise OvssError(f"shard must satisfy 0 <= rank < world_size, got rank {rank} of {world}")
    return rank, world
