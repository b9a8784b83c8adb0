"""Build an OpenBench-style dataset: images far from the training vocabulary (the OVSNet paper, section 3.2).

For every class of the source datasets, its maximum text similarity to the training vocabulary is
measured (``stats.max_similarity``). An image's similarity is the minimum over the classes present
in it; images at or above ``sigma1`` are dropped (everything in them is close to training). In a
kept image, classes above ``sigma2`` become "others", then a manual list renames, merges or drops
classes (the OVSNet paper's manual filtering of conflicts and duplicates). Sources' background classes
become "others" too. The result is written in the layout ``ovss bench --dataset shapesworld``
reads (images/{split}, annotations/{split}, {split}.txt, classes.txt with "others" first,
meta.json), so any dataset reader of ovss evaluates it.

Merge file, one rule per line (``#`` starts a comment)::

    double door -> door        # rename / merge into another (possibly new) class
    grass -> others            # send to "others"
    blurry thing -> ignore     # drop: its pixels are not scored (255)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..concepts.similarity import TextSimilarity
from ..data import IGNORE_INDEX, SegDataset, read_label, reduce_labels
from ..errors import OvssError
from ..files import one_result, read_rgb, save_image, write_json, write_text
from .stats import Classes, max_similarity
from ..outputs import as_job

OTHERS = "others"
IGNORE = "ignore"


def read_merge_file(path: str | os.PathLike) -> dict[str, str]:
    """``{class name (lower case): target}``; target is a class name, "others" or "ignore"."""
    path = Path(path)
    if not path.is_file():
        raise OvssError(f"merge file not found: {path} (write one 'old -> new' rule per line)")
    rules: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "->" not in line:
            raise OvssError(f"{path}:{lineno}: '{line}' is not a rule; write 'old -> new', 'old -> others' or 'old -> ignore'")
        old, new = (" ".join(s.split()) for s in line.split("->", 1))
        if not old or not new:
            raise OvssError(f"{path}:{lineno}: a rule needs a class on both sides of '->'")
        if old.lower() in rules:
            raise OvssError(f"{path}:{lineno}: '{old}' already has a rule; keep one per class")
        rules[old.lower()] = new
    return rules


@dataclass
class _Image:
    source: int
    index: int
    name: str
    classes: frozenset[str]  # lower-case display names present (background and ignore excluded)


def _source_names(ds: SegDataset) -> list[str | None]:
    """Lower-case display name per label index; None for the background class."""
    return [None if i == ds.background_index else c[0].lower() for i, c in enumerate(ds.classes)]


def _label(ds: SegDataset, index: int) -> np.ndarray:
    item = ds.items[index]
    return reduce_labels(read_label(item.label), ds.spec.reduce_zero_label, ds.spec.label_map)


def _scan(sources: Sequence[SegDataset], sims: dict[str, float], sigma1: float, progress: bool) -> list[_Image]:
    """The images whose least similar class is below ``sigma1``, with the classes they hold."""
    images: list[_Image] = []
    bar = tqdm(total=sum(len(ds) for ds in sources), desc="OpenBench scan", unit="img", disable=not progress)
    for s, ds in enumerate(sources):
        lookup = _source_names(ds)
        for i, item in enumerate(ds.items):
            present = np.unique(_label(ds, i))
            classes = frozenset(lookup[v] for v in present if v < len(lookup) and lookup[v] is not None)
            bar.update(1)
            if classes and min(sims[c] for c in classes) < sigma1:
                images.append(_Image(s, i, item.name, classes))
    bar.close()
    return images


def _relabel_table(ds: SegDataset, targets: dict[str, str], index: dict[str, int]) -> np.ndarray:
    """Source label value -> output index (background -> others, dropped or unknown -> 255)."""
    lookup = _source_names(ds)
    table = np.full(max(len(lookup), IGNORE_INDEX + 1), IGNORE_INDEX, dtype=np.int64)
    for v, n in enumerate(lookup):
        table[v] = index[OTHERS] if n is None else index.get(targets[n], IGNORE_INDEX)
    table[IGNORE_INDEX] = IGNORE_INDEX  # 255 means "not labelled" in every source
    return table


@as_job("openbench build")
def build_openbench(
    sources: Sequence[SegDataset],
    train_vocab: Classes,
    similarity: TextSimilarity,
    sigma1: float,
    sigma2: float,
    out: str | os.PathLike,
    merge: dict[str, str] | None = None,
    split: str = "val",
    others_names: bool = False,
    source_labels: Sequence[str] | None = None,
    progress: bool = True,
) -> dict:
    """Filter and relabel ``sources`` into ``out``; returns the summary also written to meta.json.

    ``others_names``: list the names merged into "others" as its synonyms in classes.txt (for text
    encoders that do not know the word "others", such as the tiny ShapesWorld CLIP).
    """
    if not sources:
        raise OvssError("sources is empty; give at least one source dataset", param="sources")
    merge = {k.lower(): v for k, v in (merge or {}).items()}
    labels = list(source_labels or [ds.spec.name for ds in sources])
    out = Path(out)

    # 1. every source class's similarity to the training vocabulary (display names, merged by name)
    display: dict[str, str] = {}
    for ds in sources:
        for i, c in enumerate(ds.classes):
            if i != ds.background_index:
                display.setdefault(c[0].lower(), c[0])
    unknown = [k for k in merge if k not in display]
    if unknown:
        raise OvssError(f"merge rule for '{unknown[0]}', which no source dataset has; fix the name or remove the rule")
    names = list(display)
    sims = dict(zip(names, max_similarity([[display[n]] for n in names], train_vocab, similarity).tolist()))

    # 2. which classes each image holds (labels only), and the images to keep
    images = _scan(sources, sims, sigma1, progress)
    if not images:
        lowest = min(sims.values())
        raise OvssError(f"no image has a class below sigma1={sigma1} (the least similar class has {lowest:.4f}); raise sigma1",
                        param="sigma1")

    # 3. the target of every class: itself, "others" (above sigma2), or what the merge list says
    def target(name: str) -> str:
        t = merge.get(name, OTHERS if sims[name] > sigma2 else display[name])
        if t.lower() in (OTHERS, IGNORE):
            return t.lower()
        return display.get(t.lower(), t)  # "Door" and "door" are one class

    targets = {n: target(n) for n in names}
    order = {n: i for i, n in enumerate(names)}
    used = sorted({c for im in images for c in im.classes}, key=order.__getitem__)
    out_classes = [OTHERS] + list(dict.fromkeys(t for c in used if (t := targets[c]) not in (OTHERS, IGNORE)))
    index = {c: i for i, c in enumerate(out_classes)}
    if len(out_classes) == 1:
        raise OvssError(f"every class of the kept images is above sigma2={sigma2} or merged away; raise sigma2", param="sigma2")
    merged_into_others = [display[c] for c in used if targets[c] == OTHERS]

    # 4. write images and relabelled annotations, then the list files (a folder with them is complete)
    img_dir, ann_dir = out / "images" / split, out / "annotations" / split
    wide = len(out_classes) >= IGNORE_INDEX
    pixels = np.zeros(len(out_classes), dtype=np.int64)
    image_count = np.zeros(len(out_classes), dtype=np.int64)
    written = []
    tables = [_relabel_table(ds, targets, index) for ds in sources]
    for im in tqdm(images, desc="OpenBench write", unit="img", disable=not progress):
        ds, table = sources[im.source], tables[im.source]
        label = _label(ds, im.index).astype(np.int64)
        label = np.where((label >= 0) & (label < len(table)), table[np.clip(label, 0, len(table) - 1)], IGNORE_INDEX)
        counts = np.bincount(label[label != IGNORE_INDEX].ravel(), minlength=len(out_classes))
        pixels += counts
        image_count += counts > 0
        name = f"{labels[im.source]}_{im.name.replace('/', '__')}"
        with one_result():  # an image without its annotation is never left (a full disk, a kill)
            save_image(img_dir / f"{name}.png", Image.fromarray(read_rgb(ds.items[im.index].image)))
            save_image(ann_dir / f"{name}.png", _label_image(label, wide))
        written.append(name)

    lines = []
    for c in out_classes:
        syn = [c] + (merged_into_others if c == OTHERS and others_names else [])
        lines.append(", ".join(syn))
    summary = {
        "format": "openbench",
        "split": split,
        "background_index": 0,
        "sigma1": sigma1,
        "sigma2": sigma2,
        "sources": [{"dataset": ds.spec.name, "root": str(ds.root), "split": ds.split, "label": lab, "images": len(ds)}
                    for ds, lab in zip(sources, labels)],
        "images": len(written),
        "classes": [
            {"name": c, "pixels": int(pixels[i]), "images": int(image_count[i]),
             "similarity": None if c == OTHERS else _class_similarity(c, targets, sims)}
            for i, c in enumerate(out_classes)
        ],
        "to_others": merged_into_others,
        "dropped": [display[c] for c in used if targets[c] == IGNORE],
        "source_similarity": {display[n]: sims[n] for n in names},
    }
    write_json(out / "meta.json", summary)
    write_text(out / "classes.txt", "".join(line + "\n" for line in lines))
    write_text(out / f"{split}.txt", "".join(n + "\n" for n in written))
    return summary


def _class_similarity(name: str, targets: dict[str, str], sims: dict[str, float]) -> float:
    """A merged class's similarity: the highest of the classes merged into it."""
    return max(sims[s] for s, t in targets.items() if t == name) if any(t == name for t in targets.values()) else float("nan")


def _label_image(label: np.ndarray, wide: bool) -> Image.Image:
    if wide:  # more than 254 classes: a 16-bit PNG, which ``read_label`` reads as int64
        return Image.fromarray(label.astype(np.uint16))
    return Image.fromarray(label.astype(np.uint8))
