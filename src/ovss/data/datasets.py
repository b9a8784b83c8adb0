"""Readers for the standard open-vocabulary segmentation benchmarks, in MMSegmentation's layout.

Training-free OVSS papers (SCLIP, NACLIP and their successors) evaluate on eight benchmarks
prepared with MMSegmentation's tools; reading the same files with the same label reduction is what
makes our numbers comparable to theirs. The layouts below were checked against:

* MMSegmentation ``docs/en/user_guides/2_dataset_prepare.md`` (folder tree, converter scripts),
* MMSegmentation ``mmseg/datasets/{voc,pascal_context,coco_stuff,cityscapes,ade}.py`` (suffixes,
  ``reduce_zero_label``) and ``BaseSegDataset.load_data_list`` (split file = one image name per
  line without suffix; otherwise every image under the folder, recursively, sorted),
* SCLIP / NACLIP ``configs/cfg_*.py`` (``data_prefix``, ``ann_file``) and ``custom_datasets.py``
  (``PascalVOC20Dataset``, ``PascalContext59/60Dataset``, ``COCOObjectDataset``), and their
  ``datasets/cvt_coco_object.py`` for COCO-Object's ``*_instanceTrainIds.png``.

Labels follow MMSegmentation's ``LoadAnnotations``: with ``reduce_zero_label`` the value 0 becomes
255 (ignore) and every other value k becomes k - 1 (255 stays 255); a ``label_map`` is applied after.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch.utils.data
from PIL import Image, UnidentifiedImageError

from ..errors import OvssError
from ..files import read_rgb
from .classnames import CLASSNAMES_DIR, read_class_file

IGNORE_INDEX = 255

MMSEG_PREPARE_DOC = "mmsegmentation docs/en/user_guides/2_dataset_prepare.md"


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files are, relative to its root, and how to turn its labels into indices.

    ``{split}`` in a path is replaced by ``split_dirs.get(split, split)``, so ``--split val``
    finds ``images/validation`` for ADE20K and ``images/val2017`` for COCO.
    """

    name: str
    title: str
    image_dir: str
    ann_dir: str
    image_suffix: str
    ann_suffix: str
    split_file: str | None  # one image name per line, relative to the root; None = every image in image_dir
    class_file: str  # a file in ovss/data/classnames/, or in the dataset root when classes_in_root
    num_classes: int  # 0 = as many as the dataset's own class file lists
    reduce_zero_label: bool
    has_background: bool
    background_index: int | None
    prepare: str  # one line: how to produce this layout
    label_map: Mapping[int, int] | None = None
    split_dirs: Mapping[str, str] = field(default_factory=dict)
    root_hints: tuple[str, ...] = ()  # where the root usually sits below a parent folder the user may pass
    classes_in_root: bool = False

    def path(self, template: str | None, split: str) -> str | None:
        if template is None:
            return None
        return template.format(split=self.split_dirs.get(split, split))


_VOC_PREPARE = (
    "download VOCtrainval_11-May-2012.tar (http://host.robots.ox.ac.uk/pascal/VOC/voc2012/) and extract it, "
    f"giving VOCdevkit/VOC2012/{{JPEGImages,SegmentationClass,ImageSets/Segmentation}} (see {MMSEG_PREPARE_DOC}, Pascal VOC)"
)
_CONTEXT_PREPARE = (
    "extract VOCtrainval_03-May-2010.tar, download trainval_merged.json, then in mmsegmentation run "
    "`python tools/dataset_converters/pascal_context.py data/VOCdevkit data/VOCdevkit/VOC2010/trainval_merged.json` "
    f"(needs the Detail API) to write SegmentationClassContext and ImageSets/SegmentationContext (see {MMSEG_PREPARE_DOC}, Pascal Context)"
)
_COCO_STUFF_PREPARE = (
    "unzip val2017.zip into images/ and stuffthingmaps_trainval2017.zip into annotations/, then in mmsegmentation run "
    "`python tools/dataset_converters/coco_stuff164k.py /path/to/coco_stuff164k` to write *_labelTrainIds.png "
    f"(see {MMSEG_PREPARE_DOC}, COCO Stuff 164k)"
)
_COCO_OBJECT_PREPARE = (
    "prepare coco_stuff164k first (images/val2017 + stuffthingmaps in annotations/val2017), then run SCLIP's or NACLIP's "
    "`python datasets/cvt_coco_object.py /path/to/coco_stuff164k -o /path/to/coco_object` to write *_instanceTrainIds.png"
)
_CITYSCAPES_PREPARE = (
    "download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip (cityscapes-dataset.com), then in mmsegmentation run "
    f"`python tools/dataset_converters/cityscapes.py data/cityscapes` to write *_gtFine_labelTrainIds.png (see {MMSEG_PREPARE_DOC}, Cityscapes)"
)
_ADE_PREPARE = (
    "download http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip and unzip it, "
    f"giving ADEChallengeData2016/{{images,annotations}}/validation (see {MMSEG_PREPARE_DOC}, ADE20K)"
)
_SHAPESWORLD_PREPARE = "export it with the `ovss world` command (see `ovss world --help`); it writes images/, annotations/, {split}.txt and classes.txt"

_VOC_HINTS = ("VOC2012", "VOCdevkit/VOC2012")
_CONTEXT_HINTS = ("VOC2010", "VOCdevkit/VOC2010")
_COCO_SPLITS = {"train": "train2017", "val": "val2017"}

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="voc21", title="Pascal VOC 2012 (with background)",
            image_dir="JPEGImages", ann_dir="SegmentationClass", image_suffix=".jpg", ann_suffix=".png",
            split_file="ImageSets/Segmentation/{split}.txt", class_file="voc21.txt", num_classes=21,
            reduce_zero_label=False, has_background=True, background_index=0,
            prepare=_VOC_PREPARE, root_hints=_VOC_HINTS,
        ),
        DatasetSpec(
            name="voc20", title="Pascal VOC 2012 (without background)",
            image_dir="JPEGImages", ann_dir="SegmentationClass", image_suffix=".jpg", ann_suffix=".png",
            split_file="ImageSets/Segmentation/{split}.txt", class_file="voc20.txt", num_classes=20,
            reduce_zero_label=True, has_background=False, background_index=None,
            prepare=_VOC_PREPARE, root_hints=_VOC_HINTS,
        ),
        DatasetSpec(
            name="context60", title="Pascal Context 60 (with background)",
            image_dir="JPEGImages", ann_dir="SegmentationClassContext", image_suffix=".jpg", ann_suffix=".png",
            split_file="ImageSets/SegmentationContext/{split}.txt", class_file="context60.txt", num_classes=60,
            reduce_zero_label=False, has_background=True, background_index=0,
            prepare=_CONTEXT_PREPARE, root_hints=_CONTEXT_HINTS,
        ),
        DatasetSpec(
            name="context59", title="Pascal Context 59 (without background)",
            image_dir="JPEGImages", ann_dir="SegmentationClassContext", image_suffix=".jpg", ann_suffix=".png",
            split_file="ImageSets/SegmentationContext/{split}.txt", class_file="context59.txt", num_classes=59,
            reduce_zero_label=True, has_background=False, background_index=None,
            prepare=_CONTEXT_PREPARE, root_hints=_CONTEXT_HINTS,
        ),
        DatasetSpec(
            name="coco_object", title="COCO-Object (background + 80 things)",
            image_dir="images/{split}", ann_dir="annotations/{split}", image_suffix=".jpg", ann_suffix="_instanceTrainIds.png",
            split_file=None, class_file="coco_object.txt", num_classes=81,
            reduce_zero_label=False, has_background=True, background_index=0,
            prepare=_COCO_OBJECT_PREPARE, split_dirs=_COCO_SPLITS, root_hints=("coco_object", "coco_stuff164k"),
        ),
        DatasetSpec(
            name="coco_stuff164k", title="COCO-Stuff 164k (171 classes)",
            image_dir="images/{split}", ann_dir="annotations/{split}", image_suffix=".jpg", ann_suffix="_labelTrainIds.png",
            split_file=None, class_file="coco_stuff.txt", num_classes=171,
            reduce_zero_label=False, has_background=False, background_index=None,
            prepare=_COCO_STUFF_PREPARE, split_dirs=_COCO_SPLITS, root_hints=("coco_stuff164k",),
        ),
        DatasetSpec(
            name="cityscapes", title="Cityscapes (19 train ids)",
            image_dir="leftImg8bit/{split}", ann_dir="gtFine/{split}", image_suffix="_leftImg8bit.png",
            ann_suffix="_gtFine_labelTrainIds.png",
            split_file=None, class_file="city_scapes.txt", num_classes=19,
            reduce_zero_label=False, has_background=False, background_index=None,
            prepare=_CITYSCAPES_PREPARE, root_hints=("cityscapes",),
        ),
        DatasetSpec(
            name="ade20k", title="ADE20K (SceneParsing 150)",
            image_dir="images/{split}", ann_dir="annotations/{split}", image_suffix=".jpg", ann_suffix=".png",
            split_file=None, class_file="ade20k.txt", num_classes=150,
            reduce_zero_label=True, has_background=False, background_index=None,
            prepare=_ADE_PREPARE, split_dirs={"train": "training", "val": "validation"},
            root_hints=("ADEChallengeData2016", "ade/ADEChallengeData2016"),
        ),
        DatasetSpec(
            name="shapesworld", title="ShapesWorld (synthetic, ovss world export)",
            image_dir="images/{split}", ann_dir="annotations/{split}", image_suffix=".png", ann_suffix=".png",
            split_file="{split}.txt", class_file="classes.txt", num_classes=0,
            reduce_zero_label=False, has_background=False, background_index=None,
            prepare=_SHAPESWORLD_PREPARE, classes_in_root=True,
        ),
    )
}


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``; an unknown name is a one-line error listing the valid ones."""
    spec = DATASETS.get(str(name).strip().lower())
    if spec is None:
        raise OvssError(f"unknown dataset '{name}'; valid names: {', '.join(DATASETS)}")
    return spec


def resolve_root(spec: DatasetSpec, root: str | os.PathLike, split: str = "val") -> Path:
    """The dataset root: ``root`` itself, or the usual sub-folder of it (e.g. ``VOCdevkit/VOC2012``).

    Users often point at the folder that holds several datasets; accepting it saves a round trip.
    """
    root = Path(root).expanduser()
    image_dir = spec.path(spec.image_dir, split)
    for hint in ("",) + spec.root_hints:
        candidate = root / hint if hint else root
        if (candidate / image_dir).is_dir():
            return candidate
    return root


@dataclass
class Item:
    name: str  # image path relative to the image folder, without the image suffix
    image: Path
    label: Path


@dataclass
class LayoutReport:
    """What ``scan_layout`` found; ``problems`` is empty when the dataset is ready to evaluate."""

    dataset: str
    root: Path
    split: str
    images: int = 0
    annotations: int = 0
    classes: int = 0
    problems: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)  # images that have their annotation, sorted by name


def _listed_names(split_path: Path, spec: DatasetSpec, split: str) -> list[str]:
    """Image names from a split file: one per line, without suffix (a suffix or folder prefix is tolerated)."""
    prefix = spec.path(spec.image_dir, split).rstrip("/") + "/"
    names = []
    for line in split_path.read_text(encoding="utf-8-sig").splitlines():
        name = line.strip().replace("\\", "/")
        if not name:
            continue
        if name.startswith(prefix):
            name = name[len(prefix):]
        if name.endswith(spec.image_suffix):
            name = name[: -len(spec.image_suffix)]
        names.append(name)
    return sorted(set(names))


def _scanned_names(image_dir: Path, suffix: str) -> list[str]:
    """Every image under ``image_dir`` (recursively, as MMSegmentation does), by relative name without suffix."""
    names = []
    for path in image_dir.rglob("*" + suffix):
        if path.is_file():
            rel = path.relative_to(image_dir).as_posix()
            names.append(rel[: -len(suffix)])
    return sorted(names)


def _first(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (", ..." if len(names) > limit else "")


def scan_layout(name: str, root: str | os.PathLike, split: str = "val") -> LayoutReport:
    """Find a dataset's images and annotations, and describe what is missing in words a user can act on."""
    spec = get_spec(name)
    base = resolve_root(spec, root, split)
    report = LayoutReport(dataset=spec.name, root=base, split=split)
    problems = report.problems
    hint = f"how to prepare: {spec.prepare}"
    looked = ", ".join(str(Path(root) / h) for h in spec.root_hints)
    where = f" (also looked under {looked})" if spec.root_hints else ""

    if not Path(root).is_dir():
        problems.append(f"dataset root {root} does not exist or is not a folder; {hint}")
        return report

    image_dir = base / spec.path(spec.image_dir, split)
    ann_dir = base / spec.path(spec.ann_dir, split)
    split_path = base / spec.path(spec.split_file, split) if spec.split_file else None
    if not image_dir.is_dir():
        problems.append(f"missing image folder {image_dir}{where}; {hint}")
    if not ann_dir.is_dir():
        problems.append(f"missing annotation folder {ann_dir}; {hint}")
    if split_path is not None and not split_path.is_file():
        problems.append(f"missing split file {split_path}; {hint}")

    try:
        classes = class_names_for(spec, base)
        report.classes = len(classes)
        if spec.num_classes and len(classes) != spec.num_classes:
            problems.append(f"{spec.name} has {spec.num_classes} classes but its class file lists {len(classes)}")
    except OvssError as e:
        problems.append(f"{e}; {hint}" if spec.classes_in_root else str(e))

    if not image_dir.is_dir() or (split_path is not None and not split_path.is_file()):
        return report

    if split_path is not None:
        names = _listed_names(split_path, spec, split)
        missing_images = [n for n in names if not (image_dir / (n + spec.image_suffix)).is_file()]
        if missing_images:
            problems.append(
                f"{len(missing_images)} of {len(names)} images listed in {split_path.name} are missing from {image_dir} "
                f"(first: {_first([n + spec.image_suffix for n in missing_images])})"
            )
        missing = set(missing_images)
        names = [n for n in names if n not in missing]
    else:
        names = _scanned_names(image_dir, spec.image_suffix)
    report.images = len(names)
    if not names:
        problems.append(f"no *{spec.image_suffix} images found in {image_dir}; {hint}")
        return report

    missing_labels = []
    for n in names:
        label = ann_dir / (n + spec.ann_suffix)
        if label.is_file():
            report.items.append(Item(name=n, image=image_dir / (n + spec.image_suffix), label=label))
        else:
            missing_labels.append(n + spec.ann_suffix)
    report.annotations = len(report.items)
    if missing_labels and ann_dir.is_dir():
        problems.append(
            f"{len(missing_labels)} of {len(names)} images have no *{spec.ann_suffix} annotation in {ann_dir} "
            f"(first: {_first(missing_labels)}); {hint}"
        )
    return report


def check_layout(name: str, root: str | os.PathLike, split: str = "val") -> list[str]:
    """Problems that keep the dataset from being evaluated; an empty list means it is ready."""
    return scan_layout(name, root, split).problems


def class_names_for(spec: DatasetSpec, base: Path) -> list[list[str]]:
    if spec.classes_in_root:
        return read_class_file(base / spec.class_file)
    return read_class_file(CLASSNAMES_DIR / spec.class_file)


def _read_meta(base: Path) -> dict[str, Any]:
    path = base / "meta.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise OvssError(f"cannot read {path} as JSON ({e.__class__.__name__}); re-export the dataset") from None
    return meta if isinstance(meta, dict) else {}


def read_label(path: str | os.PathLike) -> np.ndarray:
    """Read a label-index PNG as an H x W array (uint8, or int64 for 16-bit files).

    Palette PNGs (Pascal VOC) hold indices, so they are read as indices, never converted to colours.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.array(im)
    except FileNotFoundError:
        raise OvssError(f"annotation not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise OvssError(f"cannot read annotation {path} ({e.__class__.__name__}); it must be a label-index PNG") from None
    if arr.ndim == 3:
        # grayscale saved as RGB(A) is fine; real colours mean a colour-coded mask, not indices
        if arr.shape[2] >= 3 and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]
        elif arr.shape[2] == 2:  # LA
            arr = arr[..., 0]
        else:
            raise OvssError(
                f"annotation {path} is a colour image (mode {mode}), not label indices; "
                "convert it with the dataset's preparation script"
            )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    return arr.astype(np.int64)


def resize_label(label: np.ndarray, size: tuple[int, int], sampling: str = "floor") -> np.ndarray:
    """Nearest-neighbour resize of a label map (classes are never blended).

    ``sampling`` says which source pixel an output pixel takes: ``"floor"``, index floor(i * in / out),
    as OpenCV's INTER_NEAREST (which MMCV's imresize, used by the MLMP protocol, calls) picks it;
    ``"centre"``, the pixel under the output cell's centre, floor((i + 0.5) * in / out), which a
    downsampling to a coarse grid (OVSNet's mask targets) wants so that every cell is represented.
    """
    h, w = label.shape
    oh, ow = size
    if sampling not in ("floor", "centre"):
        raise ValueError(f"sampling must be 'floor' or 'centre', got {sampling!r}")
    if (h, w) == (oh, ow):
        return label
    if sampling == "floor":
        rows, cols = (np.arange(oh) * h) // oh, (np.arange(ow) * w) // ow
    else:
        rows = ((np.arange(oh) + 0.5) * h / oh).astype(np.int64)
        cols = ((np.arange(ow) + 0.5) * w / ow).astype(np.int64)
    return label[rows[:, None], cols[None, :]]


def reduce_labels(label: np.ndarray, reduce_zero_label: bool, label_map: Mapping[int, int] | None = None) -> np.ndarray:
    """Apply MMSegmentation's label reduction: 0 -> 255 and k -> k - 1 (255 stays 255), then ``label_map``."""
    out = label
    if reduce_zero_label:
        out = np.where((label == 0) | (label == IGNORE_INDEX), IGNORE_INDEX, label.astype(np.int64) - 1)
        out = out.astype(label.dtype)
    if label_map:
        mapped = out.copy()
        for old, new in label_map.items():
            mapped[out == old] = new
        out = mapped
    return out


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
