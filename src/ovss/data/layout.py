"""Find a dataset's images and annotations on disk and say, in words a user can act on, what is missing.

Image lists follow MMSegmentation's ``BaseSegDataset.load_data_list``: a split file holds one image
name per line without suffix; without one, every image under the image folder, recursively, sorted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OvssError
from .classnames import CLASSNAMES_DIR, read_class_file
from .specs import DatasetSpec, get_spec, resolve_root


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

