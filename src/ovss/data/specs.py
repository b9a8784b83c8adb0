"""The registry of benchmark datasets, in MMSegmentation's layout: folders, suffixes, label reduction.

Training-free OVSS papers (SCLIP, NACLIP and their successors) evaluate on eight benchmarks
prepared with MMSegmentation's tools; reading the same files with the same label reduction is what
makes our numbers comparable to theirs (`ovss data prepare`, in ``ovss.data.prepare``, writes this layout
from the official downloads without MMSegmentation). The layouts below were checked against:

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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import OvssError

IGNORE_INDEX = 255


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


def _prepare(name: str, downloads: str) -> str:
    """The one-line advice: ovss's own converter, and which official downloads it reads."""
    return f"download {downloads} into one folder DOWNLOADS, then run `ovss data prepare {name} --from DOWNLOADS --out ROOT`"


_VOC_FILES = "VOCtrainval_11-May-2012.tar (http://host.robots.ox.ac.uk/pascal/VOC/voc2012/)"
_CONTEXT_FILES = (
    "VOCtrainval_03-May-2010.tar (http://host.robots.ox.ac.uk/pascal/VOC/voc2010/) and trainval_merged.json "
    "(https://codalabuser.blob.core.windows.net/public/trainval_merged.json)"
)
_COCO_FILES = (
    "val2017.zip (http://images.cocodataset.org/zips/val2017.zip) and stuffthingmaps_trainval2017.zip "
    "(http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/stuffthingmaps_trainval2017.zip)"
)
_CITYSCAPES_FILES = "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip (https://www.cityscapes-dataset.com, free login)"
_ADE_FILES = "ADEChallengeData2016.zip (http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip)"
_VOC_PREPARE = {name: _prepare(name, _VOC_FILES) for name in ("voc21", "voc20")}
_CONTEXT_PREPARE = {name: _prepare(name, _CONTEXT_FILES) for name in ("context60", "context59")}
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
            prepare=_VOC_PREPARE["voc21"], root_hints=_VOC_HINTS,
        ),
        DatasetSpec(
            name="voc20", title="Pascal VOC 2012 (without background)",
            image_dir="JPEGImages", ann_dir="SegmentationClass", image_suffix=".jpg", ann_suffix=".png",
            split_file="ImageSets/Segmentation/{split}.txt", class_file="voc20.txt", num_classes=20,
            reduce_zero_label=True, has_background=False, background_index=None,
            prepare=_VOC_PREPARE["voc20"], root_hints=_VOC_HINTS,
        ),
        DatasetSpec(
            name="context60", title="Pascal Context 60 (with background)",
            image_dir="JPEGImages", ann_dir="SegmentationClassContext", image_suffix=".jpg", ann_suffix=".png",
            split_file="ImageSets/SegmentationContext/{split}.txt", class_file="context60.txt", num_classes=60,
            reduce_zero_label=False, has_background=True, background_index=0,
            prepare=_CONTEXT_PREPARE["context60"], root_hints=_CONTEXT_HINTS,
        ),
        DatasetSpec(
            name="context59", title="Pascal Context 59 (without background)",
            image_dir="JPEGImages", ann_dir="SegmentationClassContext", image_suffix=".jpg", ann_suffix=".png",
            split_file="ImageSets/SegmentationContext/{split}.txt", class_file="context59.txt", num_classes=59,
            reduce_zero_label=True, has_background=False, background_index=None,
            prepare=_CONTEXT_PREPARE["context59"], root_hints=_CONTEXT_HINTS,
        ),
        DatasetSpec(
            name="coco_object", title="COCO-Object (background + 80 things)",
            image_dir="images/{split}", ann_dir="annotations/{split}", image_suffix=".jpg", ann_suffix="_instanceTrainIds.png",
            split_file=None, class_file="coco_object.txt", num_classes=81,
            reduce_zero_label=False, has_background=True, background_index=0,
            prepare=_prepare("coco_object", _COCO_FILES), split_dirs=_COCO_SPLITS, root_hints=("coco_object", "coco_stuff164k"),
        ),
        DatasetSpec(
            name="coco_stuff164k", title="COCO-Stuff 164k (171 classes)",
            image_dir="images/{split}", ann_dir="annotations/{split}", image_suffix=".jpg", ann_suffix="_labelTrainIds.png",
            split_file=None, class_file="coco_stuff.txt", num_classes=171,
            reduce_zero_label=False, has_background=False, background_index=None,
            prepare=_prepare("coco_stuff164k", _COCO_FILES), split_dirs=_COCO_SPLITS, root_hints=("coco_stuff164k",),
        ),
        DatasetSpec(
            name="cityscapes", title="Cityscapes (19 train ids)",
            image_dir="leftImg8bit/{split}", ann_dir="gtFine/{split}", image_suffix="_leftImg8bit.png",
            ann_suffix="_gtFine_labelTrainIds.png",
            split_file=None, class_file="city_scapes.txt", num_classes=19,
            reduce_zero_label=False, has_background=False, background_index=None,
            prepare=_prepare("cityscapes", _CITYSCAPES_FILES), root_hints=("cityscapes",),
        ),
        DatasetSpec(
            name="ade20k", title="ADE20K (SceneParsing 150)",
            image_dir="images/{split}", ann_dir="annotations/{split}", image_suffix=".jpg", ann_suffix=".png",
            split_file=None, class_file="ade20k.txt", num_classes=150,
            reduce_zero_label=True, has_background=False, background_index=None,
            prepare=_prepare("ade20k", _ADE_FILES), split_dirs={"train": "training", "val": "validation"},
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


