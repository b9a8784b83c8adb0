"""Write ShapesWorld scenes to disk in MMSegmentation's folder layout, resumably.

    out_dir/images/{split}/{name}.png       RGB image
    out_dir/annotations/{split}/{name}.png  uint8 label indices into CLASSES, 255 = ignore
    out_dir/{split}.txt                     one name per line, no suffix
    out_dir/captions.txt                    one caption per line, same order as {split}.txt
    out_dir/classes.txt                     "name[, synonym, ...]" per line, in CLASSES order
    out_dir/meta.json                       what was generated, to resume or refuse a mismatch

meta.json is written first and the list files last, so a folder with all list files is complete
and a killed run resumes by skipping the images already written (each file is written atomically).
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import OvssError
from ..files import save_image, write_json, write_text
from .classes import BASE_CLASSES, CLASSES, NOVEL_CLASSES, OBJECTS, STUFF, SYNONYMS
from .scene import _size, check_style, make_scene
from ..outputs import as_job

# Bump when scenes for the same seed would change, so old folders are not resumed into.
WORLD_VERSION = 1
# Seed offsets keep splits apart: with the same --seed, train/val/test never share a scene while
# each holds fewer than 300,000 images. Other split names get offsets between 1e9 and 2e9, one
# million apart. Every export seed stays below 1e10 (for --seed < 8000), so a training loop that
# draws its seeds from 1e10 up never sees an exported scene.
SPLIT_OFFSETS = {"train": 0, "val": 400_000, "test": 700_000}
# Meta fields that must match for an existing folder to be resumed.
_KEY_FIELDS = ("format", "world_version", "style", "seed", "split", "size", "classes")


def scene_seed(seed: int, split: str, i: int) -> int:
    """The ``make_scene`` seed of image ``i`` of a split; different seeds or splits do not overlap."""
    offset = SPLIT_OFFSETS.get(split)
    if offset is None:
        offset = 10**9 + 10**6 * (zlib.crc32(split.encode("utf-8")) % 1000)
    return int(seed) * 1_000_003 + offset + int(i)


def scene_name(seed: int) -> str:
    return f"sw_{seed:06d}"


def _ovss_version() -> str:
    try:
        from importlib.metadata import version
        return version("ovss")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


def read_meta(out_dir: str | Path) -> dict | None:
    """The meta.json of a ShapesWorld folder, or None when there is none."""
    path = Path(out_dir) / "meta.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise OvssError(f"{path} is unreadable; delete it or choose another output folder") from None


def _classes_text() -> str:
    return "".join(", ".join((c,) + SYNONYMS[c]) + "\n" for c in CLASSES)


def check_export_target(out_dir, n: int, split: str, what: str) -> Path:
    """The checks every ShapesWorld export makes before it writes: at least one item, a split name
    that is a plain word (it becomes a folder and a file name), and an output that is not a file."""
    if n < 1:
        raise OvssError(f"n must be at least 1 (got {n})", param="n")
    if not split or any(ch in split for ch in "/\\. "):
        raise OvssError(f"split name {split!r} must be a plain word such as val or train")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OvssError(f"{out} is a file; choose a folder for {what}")
    return out


@as_job("world make")
def write_dataset(out_dir: str | Path, n: int, style: str = "default", seed: int = 0,
                  split: str = "val", size: int | tuple[int, int] = 224,
                  progress: bool = True) -> Path:
    """Write ``n`` scenes to ``out_dir`` (see the module docstring) and return the folder.

    Rerunning with the same settings finishes an interrupted run and does nothing on a complete
    one; a folder made with other settings (style, seed, split, size) is refused, not mixed.
    """
    check_style(style)
    h, w = _size(size)
    out = check_export_target(out_dir, n, split, "the dataset")
    meta = {
        "format": "shapesworld",
        "world_version": WORLD_VERSION,
        "ovss_version": _ovss_version(),
        "style": style,
        "seed": int(seed),
        "split": split,
        "n": int(n),
        "size": [h, w],
        "classes": list(CLASSES),
        "stuff": list(STUFF),
        "objects": list(OBJECTS),
        "base_classes": list(BASE_CLASSES),
        "novel_classes": list(NOVEL_CLASSES),
    }
    img_dir, ann_dir = out / "images" / split, out / "annotations" / split
    old = read_meta(out)
    if old is None:
        if img_dir.exists() and any(img_dir.iterdir()):
            raise OvssError(f"{img_dir} already holds images that ShapesWorld did not write; "
                            "choose an empty output folder")
        foreign = [out / f for f in ("meta.json", "classes.txt", "captions.txt", f"{split}.txt") if (out / f).exists()]
        if foreign:
            raise OvssError(f"refusing to write over {foreign[0]}: ShapesWorld did not write it; choose an empty output folder")
    else:
        diff = [k for k in _KEY_FIELDS if old.get(k) != meta[k]]
        if diff:
            raise OvssError(f"{out} holds a ShapesWorld dataset made with other settings "
                            f"({', '.join(diff)} differ); choose another out_dir or delete it", param="out_dir")
        if old.get("n") == n and _complete(out, split, n):
            return out
    write_json(out / "meta.json", meta)

    names, captions = [], []
    for i in tqdm(range(n), desc=f"ShapesWorld {split}", unit="img", disable=not progress):
        s = scene_seed(seed, split, i)
        name = scene_name(s)
        scene = make_scene(s, (h, w), style)
        names.append(name)
        captions.append(scene.caption)
        img_path, ann_path = img_dir / f"{name}.png", ann_dir / f"{name}.png"
        if not img_path.exists():
            save_image(img_path, Image.fromarray(scene.image))
        if not ann_path.exists():
            save_image(ann_path, Image.fromarray(scene.labels))
    write_text(out / "classes.txt", _classes_text())
    write_text(out / "captions.txt", "".join(c + "\n" for c in captions))
    write_text(out / f"{split}.txt", "".join(n_ + "\n" for n_ in names))
    return out


def _complete(out: Path, split: str, n: int) -> bool:
    """True when the list files are there with ``n`` lines (they are written last)."""
    for name in (f"{split}.txt", "captions.txt", "classes.txt"):
        if not (out / name).exists():
            return False
    lines = (out / f"{split}.txt").read_text(encoding="utf-8").splitlines()
    return len(lines) == n and all((out / "images" / split / f"{x}.png").exists() for x in lines)


def read_labels(path: str | Path) -> np.ndarray:
    """Read an annotation PNG back as an H x W uint8 label map."""
    with Image.open(path) as im:
        return np.asarray(im, dtype=np.uint8).copy()
