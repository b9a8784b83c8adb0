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
_KEY_FIELDS = ("format", "world_version", "style", "seed", "split", "size", "classes", "world", "benchmark")
# ShapesWorld 2's scenes change with this number (ShapesWorld's with WORLD_VERSION).
WORLD2_VERSION = 1


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


def world2_meta(root: str | Path) -> dict:
    """The meta.json of a ShapesWorld 2 export ({} for any other folder): the method commands read
    its base split and its world for their defaults, instead of ShapesWorld's."""
    meta = read_meta(root) or {}
    return meta if meta.get("world") == "shapesworld2" else {}


def export_world(root: str | Path) -> str | None:
    """The world a ShapesWorld export or rooms folder was drawn from (None for any other folder):
    the commands given such data default to the embedded weights trained on that world."""
    from .rooms import FORMAT as ROOMS_FORMAT

    try:
        meta = read_meta(root)
    except OvssError:
        return None  # not ours to judge here; the dataset reader names the problem
    if not isinstance(meta, dict) or meta.get("format") not in ("shapesworld", ROOMS_FORMAT):
        return None
    return str(meta.get("world", "shapesworld"))


def export_base_classes(root: str | Path) -> list[str] | None:
    """The base classes a ShapesWorld 2 export names (None for other folders: ShapesWorld's own
    split applies)."""
    meta = world2_meta(root)
    return list(meta["base_classes"]) if meta else None


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
                  progress: bool = True, world: str = "shapesworld", benchmark: str | None = None) -> Path:
    """Write ``n`` scenes to ``out_dir`` (see the module docstring) and return the folder.

    Rerunning with the same settings finishes an interrupted run and does nothing on a complete
    one; a folder made with other settings (style, seed, split, size) is refused, not mixed.
    ``world="shapesworld2"`` writes ShapesWorld 2 scenes with the class list of ``benchmark``
    (default ``sw2-20``; pixels of other classes are 255, as VOC20 ignores its background).
    """
    if world == "shapesworld2":
        return _write_dataset2(out_dir, n, style, seed, split, size, progress, benchmark)
    if world != "shapesworld":
        raise OvssError(f"unknown world {world!r}; valid worlds: shapesworld, shapesworld2")
    if benchmark is not None:
        raise OvssError("benchmark applies to world='shapesworld2' only (ShapesWorld has one class list)")
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
    if _prepare(out, meta, split, n):
        return out
    names, captions = [], []
    for i in tqdm(range(n), desc=f"ShapesWorld {split}", unit="img", disable=not progress):
        s = scene_seed(seed, split, i)
        scene = make_scene(s, (h, w), style)
        names.append(scene_name(s))
        captions.append(scene.caption)
        _save(out, split, names[-1], scene.image, scene.labels)
    return _finish(out, split, names, captions, _classes_text())


def _write_dataset2(out_dir, n, style, seed, split, size, progress, benchmark) -> Path:
    from .sw2_classes import BENCHMARKS, CLASS_INDEX2, DEFAULT_BENCHMARK, SYNONYMS2, is_novel
    from .sw2_scene import check_style2, make_scene2

    benchmark = benchmark or DEFAULT_BENCHMARK
    if benchmark not in BENCHMARKS:
        raise OvssError(f"unknown benchmark {benchmark!r}; ShapesWorld 2 benchmarks: {', '.join(BENCHMARKS)}")
    check_style2(style)
    h, w = _size(size)
    out = check_export_target(out_dir, n, split, "the dataset")
    classes = BENCHMARKS[benchmark]
    lut = np.full(256, 255, dtype=np.uint8)
    for k, c in enumerate(classes):
        lut[CLASS_INDEX2[c]] = k
    meta = {
        "format": "shapesworld", "world": "shapesworld2", "world_version": WORLD2_VERSION,
        "benchmark": benchmark, "ovss_version": _ovss_version(), "style": style, "seed": int(seed),
        "split": split, "n": int(n), "size": [h, w], "classes": list(classes),
        "base_classes": [c for c in classes if not is_novel(c)],
        "novel_classes": [c for c in classes if is_novel(c)],
    }
    if _prepare(out, meta, split, n):
        return out
    names, captions = [], []
    for i in tqdm(range(n), desc=f"ShapesWorld 2 {split}", unit="img", disable=not progress):
        s = scene_seed(seed, split, i)
        scene = make_scene2(s, (h, w), style)
        names.append(f"sw2_{s:06d}")
        captions.append(scene.caption)
        _save(out, split, names[-1], scene.image, lut[scene.labels])
    text = "".join(", ".join((c,) + SYNONYMS2[c]) + "\n" for c in classes)
    return _finish(out, split, names, captions, text)


def _prepare(out: Path, meta: dict, split: str, n: int) -> bool:
    """Refuse a folder ovss did not write or one made with other settings; write meta.json.
    True when the folder is already complete (nothing to do)."""
    img_dir = out / "images" / split
    old = read_meta(out)
    if old is None:
        if img_dir.exists() and any(img_dir.iterdir()):
            raise OvssError(f"{img_dir} already holds images that ShapesWorld did not write; "
                            "choose an empty output folder")
        foreign = [out / f for f in ("meta.json", "classes.txt", "captions.txt", f"{split}.txt") if (out / f).exists()]
        if foreign:
            raise OvssError(f"refusing to write over {foreign[0]}: ShapesWorld did not write it; choose an empty output folder")
    else:
        diff = [k for k in _KEY_FIELDS if old.get(k) != meta.get(k)]
        if diff:
            raise OvssError(f"{out} holds a ShapesWorld dataset made with other settings "
                            f"({', '.join(diff)} differ); choose another out_dir or delete it", param="out_dir")
        if old.get("n") == n and _complete(out, split, n):
            return True
    write_json(out / "meta.json", meta)
    return False


def _save(out: Path, split: str, name: str, image: np.ndarray, labels: np.ndarray) -> None:
    img_path, ann_path = out / "images" / split / f"{name}.png", out / "annotations" / split / f"{name}.png"
    if not img_path.exists():
        save_image(img_path, Image.fromarray(image))
    if not ann_path.exists():
        save_image(ann_path, Image.fromarray(labels))


def _finish(out: Path, split: str, names: list[str], captions: list[str], classes_text: str) -> Path:
    """The list files, last: a folder that has them is complete."""
    write_text(out / "classes.txt", classes_text)
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
