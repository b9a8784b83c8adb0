"""Does a longer class list hurt? mIoU as irrelevant class names are added at inference (the OVSNet paper, Figure 5).

Each image is encoded once; for every count N the segmenter answers the dataset's classes plus the
first N names of one seeded shuffle of a pool of irrelevant names (so the list for N = 10 holds the
one for N = 5). A pixel given to an added name is wrong wherever it is, and mIoU is over the
dataset's own classes, so the curve measures exactly the confusion the extra names cause.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..data import CLASSNAMES_DIR, SegDataset, read_class_file
from ..errors import OvssError
from ..evaluation.evaluator import EvaluatorsByKey, SemSegEvaluator, inference_on_dataset
from ..text import ClassList

Classes = list[list[str]]


def default_pool() -> list[str]:
    """Display names of every class list ovss ships (ADE20K, COCO-Stuff, Pascal Context, ...)."""
    names: dict[str, str] = {}
    for path in sorted(CLASSNAMES_DIR.glob("*.txt")):
        for cls in read_class_file(path):
            names.setdefault(cls[0].lower(), cls[0])
    return list(names.values())


def irrelevant_names(classes: Classes, pool: Sequence[str], seed: int = 0, similarity=None,
                     max_similarity: float | None = None) -> list[str]:
    """``pool`` without the dataset's names (and synonyms), shuffled with ``seed``.

    With ``similarity`` and ``max_similarity``, names closer than that to any dataset class are
    dropped too, so near-synonyms ("couch" for "sofa") do not count as irrelevant.
    """
    taken = {n.lower() for c in classes for n in c}
    names = [n for n in dict.fromkeys(p.strip() for p in pool) if n and n.lower() not in taken]
    if similarity is not None and max_similarity is not None and names:
        sims = np.asarray(similarity(names, [c[0] for c in classes])).max(axis=1)
        names = [n for n, s in zip(names, sims) if s <= max_similarity]
    random.Random(seed).shuffle(names)
    return names


def class_count_curve(
    segmenter,
    dataset: SegDataset,
    extra_counts: Sequence[int],
    extras: Sequence[str],
    progress: bool = True,
) -> dict:
    """mIoU of ``segmenter`` on ``dataset`` with N extra class names, for each N in ``extra_counts``."""
    counts = sorted(set(int(n) for n in extra_counts))
    if not counts or counts[0] < 0:
        raise OvssError("extra_counts must list counts of 0 or more, e.g. 0,5,10,20", param="extra_counts")
    if counts[-1] > len(extras):
        raise OvssError(f"asked for {counts[-1]} extra classes but only {len(extras)} irrelevant names are left; "
                        "give a larger pool or smaller counts", param="pool")
    from ..data import resize_label
    from ..evaluation.runner import output_size

    base = [list(c) for c in dataset.classes]
    lists = {n: ClassList(tuple(tuple(c) for c in base + [[x] for x in extras[:n]])) for n in counts}
    evaluator = EvaluatorsByKey({n: SemSegEvaluator(dataset.num_classes, dataset.ignore_index) for n in counts})

    def items():
        for item in dataset:
            size = output_size(segmenter.preset, *item["image"].shape[:2])
            yield [{"image": item["image"], "size": size, "label": resize_label(item["label"], size)}]

    def predict(batch: list[dict]) -> list[dict]:
        """Each image encoded once, then answered with every count's list; an extra name's index is never correct."""
        out = []
        for item in batch:
            segmenter.set_image(item["image"])
            out.append({n: segmenter.predict(classes=lists[n], output_size=item["size"]).labels.cpu().numpy()
                        for n in counts})
        return out

    with tqdm(desc="class count", unit="img", disable=not progress, total=len(dataset)) as bar:
        inference_on_dataset(items(), predict, evaluator, bar=bar, name="class count")
    scores = evaluator.evaluate()
    rows = []
    for n in counts:
        m = scores[n]
        rows.append({"extra_classes": n, "classes": len(lists[n]), "mIoU": m["mIoU"], "mAcc": m["mAcc"], "aAcc": m["aAcc"]})
    return {"dataset": dataset.spec.name, "root": str(dataset.root), "images": len(dataset),
            "extras": list(extras[: counts[-1]]), "rows": rows}


def curve_table(result: dict) -> str:
    lines = ["| Extra classes | Classes | mIoU | mAcc |", "| ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        lines.append(f"| {r['extra_classes']} | {r['classes']} | {r['mIoU']:.2f} | {r['mAcc']:.2f} |")
    return "\n".join(lines) + "\n"


def plot_curve(result: dict, path: str | os.PathLike) -> Path:
    """The OVSNet paper's Figure 5: mIoU against the number of irrelevant classes given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import atomic_write

    xs = [r["extra_classes"] for r in result["rows"]]
    ys = [r["mIoU"] for r in result["rows"]]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(xs, ys, marker="o")
    ax.set_xlabel("irrelevant classes added at inference")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{result['dataset']} ({result['images']} images)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return Path(path)


def run_class_count(model, dataset: SegDataset, counts: Sequence[int], out: str | os.PathLike, *,
                    pool: str | os.PathLike | None = None, seed: int = 0, max_similarity: float | None = None,
                    head: str | None = None, preset: str | None = None, progress: bool = True) -> str:
    """The whole analysis for one dataset: curve, table, plot; writes OUT/classcount.{json,md,png}
    and returns the table. ``pool``: a class file of irrelevant names (default: ``default_pool``)."""
    from ..concepts import ClipTextSimilarity
    from ..files import write_json, write_text
    from ..segment import Segmenter, default_preset

    counts = [int(c) for c in counts]
    if not counts or min(counts) < 0:
        raise OvssError(f"the counts of added names must be 0 or more, got {counts}")
    names = [c[0] for c in read_class_file(pool)] if pool else default_pool()
    name = dataset.spec.name
    seg = Segmenter(model, head=head, preset=preset or default_preset(model, name), dataset=name)
    similarity = ClipTextSimilarity.from_segmenter(seg) if max_similarity is not None else None
    extras = irrelevant_names(dataset.classes, names, seed, similarity, max_similarity)
    result = class_count_curve(seg, dataset, counts, extras, progress=progress)
    result["settings"] = {"seed": seed, "pool": str(pool) if pool else "shipped class lists",
                          "max_similarity": max_similarity, "segmenter": seg.settings()}
    table = curve_table(result)
    out = Path(out)
    write_json(out / "classcount.json", result)
    write_text(out / "classcount.md", table)
    plot_curve(result, out / "classcount.png")
    return table
