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


def dense_miou2(model, n: int = 50, benchmark: str = "sw2-20", head: str = "naclip", preset: str = "shapesworld",
                seed: int = EVAL_SEED, style: str = "default", corruption: str | None = None,
                severity: int = 5) -> dict:
    """mIoU etc. (%) of a dense head over the first ``n`` validation scenes, the benchmark's
    classes queried."""
    from ..evaluation.evaluator import SemSegEvaluator, inference_on_dataset
    from ..segment import Segmenter

    seg = Segmenter(model, head=head, preset=preset)
    names = BENCHMARKS[benchmark]
    classes = class_list2(names)

    def batches():
        for i in range(n):
            scene = make_scene2(scene_seed(seed, "val", i), 224, style)
            image = scene.image
            if corruption and corruption != "original":
                from ..corruptions import corrupt

                image = corrupt(image, corruption, severity, key=f"val/{i}")
            yield [{"image": image, "label": benchmark_labels(scene.labels, benchmark)}]

    def predict(batch):
        return [seg.predict(item["image"], classes).labels.cpu().numpy() for item in batch]

    evaluator = SemSegEvaluator(len(names))
    inference_on_dataset(batches(), predict, evaluator, name=f"head {head}")
    return evaluator.evaluate()


def quality_report2(model, n: int = 50, benchmarks=("sw2-20",), head: str = "naclip") -> dict:
    """The model card's ShapesWorld 2 numbers: zero-shot accuracy over the sw2-20 things, and
    ``head``'s mIoU on the clean validation scenes for each benchmark."""
    from ..errors import OvssError

    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise OvssError(f"unknown benchmark {unknown[0]!r}; ShapesWorld 2 benchmarks: {', '.join(BENCHMARKS)}")
    report = {"world": "shapesworld2", "n_scenes": n, "head": head,
              "zero_shot_accuracy": round(zero_shot_accuracy2(model), 2), "miou": {}}
    for b in benchmarks:
        report["miou"][b] = round(dense_miou2(model, n=n, benchmark=b, head=head)["mIoU"], 2)
    return report
