"""What a benchmark run is made of: its scenario names (corruptions, seeds, severity), the
datasets it opens, the methods it runs, the classes each scenario queries, and where each
scenario's result lives. Values a user gives are checked here, before any model loads."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..adaptation import AdaptationMethod, get_method
from ..corruptions import ALL_SCENARIOS, CORRUPTION_NAMES, SEVERITIES
from ..data import DATASETS, SegDataset, protocol_class_file, read_class_file
from ..errors import OvssError
from ..segment import Preset

PARTIAL_DIR = ".partial"


def parse_corruptions(text: str | Sequence[str]) -> list[str]:
    """``all`` | ``original`` | ``name,name`` -> scenario names, ``original`` always first."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise OvssError("corruptions is empty; pass all, original, or names such as gaussian_noise,fog", param="corruptions")
    chosen: list[str] = ["original"]
    for name in names:
        if name == "all":
            chosen += list(CORRUPTION_NAMES)
        elif name in ALL_SCENARIOS:
            chosen.append(name)
        else:
            raise OvssError(f"unknown corruption '{name}'; choose all, original, or from: {', '.join(CORRUPTION_NAMES)}")
    return list(dict.fromkeys(chosen))


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """``0,1,2`` -> [0, 1, 2] (duplicates dropped)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        seeds = [int(str(s).strip()) for s in items if str(s).strip()]
    except ValueError:
        raise OvssError(f"seeds must be comma-separated integers such as 0,1,2, got '{text}'", param="seeds") from None
    if not seeds or any(s < 0 for s in seeds):
        raise OvssError(f"seeds must be non-negative integers such as 0,1,2, got '{text}'", param="seeds")
    return list(dict.fromkeys(seeds))


def check_severity(severity: int) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise OvssError(f"severity must be one of {', '.join(map(str, SEVERITIES))}, got {severity!r}", param="severity")
    return int(severity)


def open_dataset(name: str, root: str | os.PathLike, split: str = "val", limit: int | None = None) -> SegDataset:
    """``SegDataset`` with a layout problem turned into one line that names ``ovss data check``."""
    if name not in DATASETS:
        raise OvssError(f"unknown dataset '{name}'; valid names: {', '.join(DATASETS)}")
    try:
        ds = SegDataset(name, root, split, limit=limit)
    except OvssError as e:
        raise OvssError(f"{e} (diagnose with `ovss data check {root} --dataset {name} --split {split}`)") from None
    if len(ds) == 0:
        raise OvssError(f"{name} at {root} has no images in split {split}; check it with `ovss data check {root} --dataset {name}`")
    return ds


@dataclass
class Scenario:
    dataset: str
    method: str
    corruption: str
    seed: int
    path: Path  # result JSON
    other_path: Path  # the same scenario under the other seed naming (single vs several seeds)
    partial: Path  # partial checkpoint path without its .npz / .json suffix
    settings: dict = field(default_factory=dict)
    start: int = 0  # images of this rank already done (from a checkpoint)
    resume: dict | None = None


def result_path(out: Path, dataset: str, method: str, corruption: str, seed: int, per_seed: bool) -> Path:
    stem = f"{corruption}.seed{seed}" if per_seed else corruption
    return Path(out) / dataset / method / f"{stem}.json"


def check_method(m: str | AdaptationMethod) -> AdaptationMethod:
    method = get_method(m) if isinstance(m, str) else m
    if not isinstance(method.batch_size, int) or method.batch_size < 1:
        raise OvssError(f"method {method.name}: batch_size must be a positive integer, got {method.batch_size!r}")
    return method


def protocol_classes(ds: SegDataset, preset: Preset) -> tuple[list[list[str]], str]:
    """The class list a scenario queries and where it comes from: the preset's protocol list for
    the dataset (``Preset.class_set``, e.g. MLMP's own files) if it has one, else the dataset's."""
    path = protocol_class_file(ds.spec.name, preset.class_set)
    if path is None:
        return ds.classes, "dataset"
    classes = read_class_file(path)
    if len(classes) != len(ds.classes):
        raise OvssError(f"{path} lists {len(classes)} classes but {ds.spec.name} has {len(ds.classes)}; "
                        "the protocol's list must follow the dataset's label order")
    return classes, f"{preset.class_set}/{path.name}"


