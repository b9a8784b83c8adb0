"""How good a model is on ShapesWorld 2: zero-shot classification of single things and dense mIoU
of a benchmark's class list (sw2-20, sw2-59, sw2-150) on held-out validation scenes.

The scenes are those ``ovss world make --world shapesworld2 --seed 1 --split val`` writes; the
class lists and the ignore rule (pixels of classes outside the list are 255) are the export's.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..world.export import scene_seed
from ..world.sw2_classes import BENCHMARKS, CLASS_INDEX2, STUFF2, SYNONYMS2
from ..world.sw2_scene import make_object_image2, make_scene2

EVAL_SEED = 1
# Validation scenes of the quality report. Each scene holds at most six things out of 189 classes,
# so the benchmarks' classes are sparse: 50 scenes of seed 1 miss 5 of sw2-20's 20 classes, and a
# single false-positive pixel of an absent class scores IoU 0 (MMSegmentation's rule), so an mIoU
# over 50 scenes mostly counts which absent classes were hallucinated (45.4 there, 56.7 over 500
# with the first shapesworld2 weights). 500 scenes hold every sw2-20 class at least 7 times, as
# VOC's 1449 validation images hold each of its 20 classes.
EVAL_SCENES = 500


def class_list2(names):
    from ..text import parse_classes

    return parse_classes([[n, *SYNONYMS2.get(n, ())] for n in names])


def benchmark_labels(labels: np.ndarray, benchmark: str) -> np.ndarray:
    """World labels mapped to a benchmark's class indices (255 for classes outside it)."""
    lut = np.full(256, 255, dtype=np.uint8)
    for k, c in enumerate(BENCHMARKS[benchmark]):
        lut[CLASS_INDEX2[c]] = k
    return lut[labels]


@torch.no_grad()
def zero_shot_accuracy2(model, benchmark: str = "sw2-20", n_per_class: int = 10, seed: int = EVAL_SEED,
                        templates: str = "seven") -> float:
    """Top-1 accuracy (%) of classifying single-thing images over a benchmark's things."""
    from ..text import TextEncoder

    things = [c for c in BENCHMARKS[benchmark] if c not in STUFF2]
    from ..text import parse_classes

    # one name a class (no synonyms): one text embedding a class, in the order of ``things``
    emb = TextEncoder(model).encode_classes(parse_classes([[n] for n in things]), templates)
    size = model.image_size[0]
    correct = 0
    for k, name in enumerate(things):
        images = [make_object_image2(name, scene_seed(seed, "objects", k * 10_000 + i), size=size)[0]
                  for i in range(n_per_class)]
        x = model.normalize(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()).to(model.device)
        feats = F.normalize(model.clip.encode_image(x).float(), dim=-1)
        correct += int(((feats @ emb.T).argmax(dim=1) == k).sum())
    return 100.0 * correct / (len(things) * n_per_class)


def dense_miou2(model, n: int = EVAL_SCENES, benchmark: str = "sw2-20", head: str = "naclip", preset: str = "shapesworld",
                seed: int = EVAL_SEED, style: str = "default", corruption: str | None = None,
                severity: int = 5) -> dict:
    """mIoU etc. (%) of a dense head over the first ``n`` validation scenes, the benchmark's
    classes queried; ``scenes_with_class``: in how many scenes each class occurs (a class that
    never occurs has no IoU unless it is predicted, and then its IoU is 0)."""
    from ..evaluation.evaluator import SemSegEvaluator, inference_on_dataset
    from ..segment import Segmenter

    seg = Segmenter(model, head=head, preset=preset)
    names = BENCHMARKS[benchmark]
    classes = class_list2(names)
    present = np.zeros(len(names), dtype=np.int64)

    def batches():
        for i in range(n):
            scene = make_scene2(scene_seed(seed, "val", i), 224, style)
            image = scene.image
            if corruption and corruption != "original":
                from ..corruptions import corrupt

                image = corrupt(image, corruption, severity, key=f"val/{i}")
            label = benchmark_labels(scene.labels, benchmark)
            present[np.unique(label[label != 255])] += 1
            yield [{"image": image, "label": label}]

    def predict(batch):
        return [seg.predict(item["image"], classes).labels.cpu().numpy() for item in batch]

    evaluator = SemSegEvaluator(len(names))
    inference_on_dataset(batches(), predict, evaluator, name=f"head {head}")
    return {**evaluator.evaluate(), "scenes_with_class": present.tolist()}


def check_benchmarks2(benchmarks) -> tuple[str, ...]:
    """The benchmark names, checked (one line naming the valid ones)."""
    from ..errors import OvssError

    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise OvssError(f"unknown benchmark {unknown[0]!r}; ShapesWorld 2 benchmarks: {', '.join(BENCHMARKS)}")
    return tuple(benchmarks)


def quality_report2(model, n: int = EVAL_SCENES, benchmarks=("sw2-20",), head: str = "naclip") -> dict:
    """The model card's ShapesWorld 2 numbers: zero-shot accuracy over the sw2-20 things, and
    ``head``'s mIoU on the clean validation scenes (seed ``EVAL_SEED``) for each benchmark, with
    each class's IoU and the number of scenes it occurs in."""
    benchmarks = check_benchmarks2(benchmarks)
    report = {"world": "shapesworld2", "n_scenes": n, "scene_seed": EVAL_SEED, "head": head, "preset": "shapesworld",
              "zero_shot_accuracy": round(zero_shot_accuracy2(model), 2), "miou": {}, "per_class": {}}
    for b in benchmarks:
        r = dense_miou2(model, n=n, benchmark=b, head=head)
        report["miou"][b] = round(r["mIoU"], 2)
        report["per_class"][b] = {c: {"iou": None if iou != iou else round(iou, 2), "scenes": int(k)}
                                  for c, iou, k in zip(BENCHMARKS[b], r["IoU"], r["scenes_with_class"])}
    return report


def report_markdown2(report: dict) -> str:
    """The ShapesWorld 2 quality report as Markdown: the summary, then each benchmark's classes."""
    lines = [f"Zero-shot classification of single things over sw2-20's things: **{report['zero_shot_accuracy']:.1f} %**",
             "", f"`{report['head']}` mIoU (%) on {report['n_scenes']} clean validation scenes (seed "
             f"{report['scene_seed']}, 224 x 224, preset `{report['preset']}`; each benchmark's classes queried):", "",
             "| benchmark | mIoU | classes absent from every scene |", "|---|---|---|"]
    for b, v in report["miou"].items():
        absent = sum(1 for c in report["per_class"][b].values() if c["scenes"] == 0)
        lines.append(f"| {b} | {v:.1f} | {absent} of {len(report['per_class'][b])} |")
    for b, classes in report["per_class"].items():
        lines += ["", f"{b}:", "", "| class | IoU | scenes |", "|---|---|---|"]
        lines += [f"| {c} | {'n/a' if v['iou'] is None else format(v['iou'], '.1f')} | {v['scenes']} |"
                  for c, v in classes.items()]
    return "\n".join(lines) + "\n"
