"""How good a model is on ShapesWorld: zero-shot classification and dense mIoU on held-out scenes.

These numbers go into the model card; the tests check the shipped model against them.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..world.classes import CLASSES, OBJECTS, SYNONYMS
from ..world.export import scene_seed
from ..world.scene import make_object_image, make_scene

EVAL_SEED = 1  # `ovss world make --seed 1 --split val` writes the same scenes


def class_list(names=CLASSES):
    """ShapesWorld's classes with their synonyms, as a ClassList."""
    from ..text import parse_classes

    return parse_classes([[n, *SYNONYMS.get(n, ())] for n in names])


@torch.no_grad()
def zero_shot_accuracy(model, n_per_class: int = 20, seed: int = EVAL_SEED, style: str = "default",
                       templates: str = "seven", size: int | None = None) -> float:
    """Top-1 accuracy (%) of classifying single-object images over the object classes."""
    from ..text import TextEncoder, parse_classes

    size = size or model.image_size[0]
    text = TextEncoder(model)
    classes = parse_classes([[n] for n in OBJECTS])
    emb = text.encode_classes(classes, templates)
    correct = total = 0
    for k, name in enumerate(OBJECTS):
        images = [make_object_image(name, scene_seed(seed, "objects", k * 10_000 + i), size=size, style=style)[0] for i in range(n_per_class)]
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
        x = model.normalize(x).to(model.device)
        feats = F.normalize(model.clip.encode_image(x).float(), dim=-1)
        pred = (feats @ emb.T).argmax(dim=1)
        correct += int((pred == k).sum())
        total += n_per_class
    return 100.0 * correct / total


def validation_scenes(n: int, seed: int = EVAL_SEED, style: str = "default", size: int = 224):
    """The first ``n`` scenes of the validation split that ``ovss world make`` writes."""
    for i in range(n):
        yield make_scene(scene_seed(seed, "val", i), size=size, style=style)


def dense_miou(model, n: int = 50, head: str = "naclip", preset: str = "shapesworld", seed: int = EVAL_SEED,
               style: str = "default", corruption: str | None = None, severity: int = 5) -> dict:
    """mIoU etc. (%) of a dense head over ``n`` held-out validation scenes, all classes queried."""
    from ..evaluation.evaluator import SemSegEvaluator, inference_on_dataset
    from ..segment import Segmenter

    seg = Segmenter(model, head=head, preset=preset)
    classes = class_list()

    def batches():
        for i, scene in enumerate(validation_scenes(n, seed, style)):
            image = scene.image
            if corruption and corruption != "original":
                from ..corruptions import corrupt

                image = corrupt(image, corruption, severity, key=f"val/{i}")
            yield [{"image": image, "label": scene.labels}]

    def predict(batch: list[dict]) -> list:
        return [seg.predict(item["image"], classes).labels.cpu().numpy() for item in batch]

    evaluator = SemSegEvaluator(len(CLASSES))
    inference_on_dataset(batches(), predict, evaluator, name=f"head {head}")
    return evaluator.evaluate()


def quality_report(model, n: int = 50, heads=("clip", "maskclip", "sclip", "clearclip", "naclip"),
                   head: str = "naclip", corruptions=None, styles=("night", "sketch"), severity: int = 5,
                   progress: bool = True) -> dict:
    """Everything the model card states: zero-shot accuracy, dense mIoU per head on clean scenes,
    and mIoU of ``head`` under each corruption and each domain style."""
    from tqdm import tqdm

    from ..corruptions import CORRUPTION_NAMES

    corruptions = CORRUPTION_NAMES if corruptions is None else corruptions
    jobs = [("heads", h, {"head": h}) for h in heads]
    jobs += [("corruptions", c, {"head": head, "corruption": c, "severity": severity}) for c in corruptions]
    jobs += [("styles", s, {"head": head, "style": s}) for s in styles]
    report = {"zero_shot_accuracy": zero_shot_accuracy(model), "n_scenes": n, "severity": severity,
              "heads": {}, "corruptions": {}, "styles": {}}
    for group, name, kwargs in tqdm(jobs, desc="quality", disable=not progress):
        report[group][name] = round(dense_miou(model, n=n, **kwargs)["mIoU"], 2)
    return report


def report_markdown(report: dict) -> str:
    """The quality report as the Markdown tables of the model card."""
    lines = [f"Zero-shot classification of single-object images over the {len(OBJECTS)} object classes: "
             f"**{report['zero_shot_accuracy']:.1f} %**", "",
             f"Dense mIoU (%) on {report['n_scenes']} held-out validation scenes (224 x 224, all "
             f"{len(CLASSES)} classes queried, preset `shapesworld`):", "",
             "| head | mIoU |", "|---|---|"]
    lines += [f"| {h} | {v:.1f} |" for h, v in report["heads"].items()]
    if report["corruptions"] or report["styles"]:
        clean = report["heads"].get("naclip")
        lines += ["", f"`naclip` under shift (corruptions at severity {report['severity']}; domain styles):", "",
                  "| scenario | mIoU | change |", "|---|---|---|"]
        if clean is not None:
            lines.append(f"| clean | {clean:.1f} | |")
        for group in ("corruptions", "styles"):
            for name, v in report[group].items():
                change = f"{v - clean:+.1f}" if clean is not None else ""
                lines.append(f"| {name} | {v:.1f} | {change} |")
        if report["corruptions"]:
            mean = sum(report["corruptions"].values()) / len(report["corruptions"])
            lines.append(f"| corruption average | {mean:.1f} | {mean - clean:+.1f} |" if clean is not None else f"| corruption average | {mean:.1f} | |")
    return "\n".join(lines) + "\n"
