"""Training segments from 3D scenes: the crops OpenMask3D would encode, labelled with their instance's class.

The OpenDAS paper adapts CLIP for 3D on the crops of the ground-truth instance masks of training
scenes, the very images the 3D pipeline classifies. Each ground-truth instance of each scene gives
its top-k views x 3 levels of crops, each one segment of the instance's class (the scene is the
segment's "image"), so ``ovss adapt train`` and ``ovss adapt eval`` run unchanged on them. Cut once
and cached like 2D segments.

A dataset root holds ``SPLIT.txt`` (one scene folder name per line) and ``SPLIT/<scene>/`` folders,
each a scene with ``instance_ids.npy`` and ``instances.json`` (the layout ``ovss world make3d`` writes);
a root without ``SPLIT.txt`` uses every scene folder of ``SPLIT/``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..opendas import SegmentSet
from ..opendas.segments import cache_root, read_segments, save_segments
from ..errors import OvssError
from .features import FeatureConfig, crop_plan, iter_crops
from .projection import compute_visibility
from .scene import layout_problems, read_masks, read_meta3d, read_scene

SEGMENTS3D_VERSION = 1
FORMAT = "shapesworld3d"


def is_scene_dataset(root: str | os.PathLike) -> bool:
    """True for a folder that ``ovss world make3d`` wrote (its meta.json says so)."""
    meta = Path(root) / "meta.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def split_scenes(root: str | os.PathLike, split: str) -> list[Path]:
    """The scene folders of a split, in the order of ``SPLIT.txt`` (or sorted)."""
    root = Path(root)
    listing = root / f"{split}.txt"
    if listing.is_file():
        names = [n.strip() for n in listing.read_text(encoding="utf-8").splitlines() if n.strip()]
        scenes = [root / split / n for n in names]
    elif (root / split).is_dir():
        scenes = sorted(p for p in (root / split).iterdir() if p.is_dir())
    else:
        raise OvssError(f"{root} has no {split}.txt and no {split}/ folder; make scenes with "
                        f"`ovss world make3d --out {root} --split {split}`")
    if not scenes:
        raise OvssError(f"split {split!r} of {root} lists no scenes")
    return scenes


def dataset_problems(root: str | os.PathLike, split: str) -> tuple[int, list[str]]:
    """(scenes found, problems) of a scene dataset root, or of one scene folder."""
    root = Path(root)
    if (root / "scene.ply").exists() or (root / "pose").is_dir():
        return 1, layout_problems(root)
    try:
        scenes = split_scenes(root, split)
    except OvssError as e:
        return 0, [str(e)]
    problems = []
    for scene in scenes:
        problems += layout_problems(scene)
        if not (scene / "instance_ids.npy").is_file():
            problems.append(f"{scene}/instance_ids.npy is missing: the ground-truth instance of every point")
        elif not read_meta3d(scene).get("instances"):
            problems.append(f"{scene}/instances.json is missing or lists no instances: the class of every instance")
    return len(scenes), problems


def dataset_classes(root: str | os.PathLike) -> list[list[str]]:
    """The class list (with synonyms) of a scene dataset: ROOT/classes.txt."""
    from ..data import read_class_file

    path = Path(root) / "classes.txt"
    if not path.is_file():
        raise OvssError(f"{path} is missing; a scene dataset lists its classes there, one per line")
    return read_class_file(path)


def cut_scenes(scenes: Sequence[Path], class_names: Sequence[str], size: int, fill, cfg: FeatureConfig,
               progress: bool = True) -> SegmentSet:
    """The crops of every ground-truth instance of every scene, labelled with its class."""
    index_of = {n.lower(): i for i, n in enumerate(class_names)}
    images, labels, owner, area = [], [], [], []
    for s, folder in enumerate(tqdm(scenes, desc="cut 3D crops", unit="scene", disable=not progress)):
        scene = read_scene(folder)
        masks, ids = read_masks(folder / "instance_ids.npy", len(scene.points))
        classes = {int(i["id"]): str(i["class"]) for i in scene.meta.get("instances", [])}
        unknown = [classes.get(i) for i in ids if classes.get(i, "").lower() not in index_of]
        if unknown:
            raise OvssError(f"instance class {unknown[0]!r} of {folder} is not in the dataset's classes.txt")
        vis = compute_visibility(scene, masks, cfg.vis_threshold)
        plan = crop_plan(vis, masks, cfg)
        for m, f, level, crop in iter_crops(scene, plan, cfg, fill, size):
            images.append(crop)
            labels.append(index_of[classes[ids[m]].lower()])
            owner.append(s)
            area.append(int(vis.counts[f, m]))
    if not images:
        raise OvssError("no frame of the scenes sees any instance; check the poses and depth frames")
    return SegmentSet(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long),
                      torch.tensor(owner, dtype=torch.long), torch.tensor(area, dtype=torch.long), list(class_names))


def _cache_key(root: Path, split: str, scenes: Sequence[Path], size: int, fill, cfg: FeatureConfig, classes) -> str:
    files = []
    for scene in scenes:
        st = (scene / "instance_ids.npy").stat()
        files.append([scene.name, st.st_size, st.st_mtime_ns])
    text = json.dumps([SEGMENTS3D_VERSION, str(root.resolve()), split, size, list(fill), cfg.describe(), classes, files])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def load_scene_segments(root: str | os.PathLike, split: str, size: int, fill, cfg: FeatureConfig | None = None,
                        limit: int | None = None, cache_dir: str | os.PathLike | bool | None = None,
                        progress: bool = True) -> SegmentSet:
    """The crops of a scene dataset split as segments, cut once and then read from the cache
    (``cache_dir`` None: ``cache_root()/segments``; False: no cache). ``limit`` keeps the first scenes."""
    cfg = (cfg or FeatureConfig()).check()
    root = Path(root)
    scenes = split_scenes(root, split)[:limit]
    class_names = [names[0] for names in dataset_classes(root)]
    info = {"dataset": "scene3d", "root": str(root), "split": split, "scenes": len(scenes), "size": size,
            "fill": list(fill), "features": cfg.describe()}
    if cache_dir is False:
        segments = cut_scenes(scenes, class_names, size, fill, cfg, progress)
        segments.info = info
        return segments
    folder = Path(cache_dir) if cache_dir not in (None, True) else cache_root() / "segments"
    path = folder / f"scene3d_{split}_{size}_{_cache_key(root, split, scenes, size, fill, cfg, class_names)}.safetensors"
    if path.is_file():
        try:
            return read_segments(path)
        except OvssError:
            pass
    segments = cut_scenes(scenes, class_names, size, fill, cfg, progress)
    segments.info = info
    save_segments(path, segments)
    return segments
