"""Open-world segmentation and its metric, IoU-single (the contrastive-concepts paper).

To segment queries Q without knowing the other classes, segment Q plus contrastive concepts CC_Q in
the usual closed-world way, then relabel every pixel won by a concept as 255 "unlabelled".
IoU-single queries each class present in an image alone (|Q| = 1) and scores the query's mask.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..evaluation.evaluator import IoUSingleEvaluator, inference_on_dataset
from ..files import finite_or_none
from ..text import ClassList, parse_classes
from ..viz import UNLABELLED
from .similarity import ClipTextSimilarity, TextSimilarity
from .sources import BETA, ConceptSet, Source, contrastive_concepts, make_source


def open_world_classes(queries, concepts: Sequence[str] | ConceptSet) -> tuple[ClassList, int]:
    """The closed-world class list (queries first, then concepts) and the number of queries.

    Concepts that repeat a query or one of its synonyms are left out.
    """
    queries = parse_classes(queries)
    words = concepts.concepts if isinstance(concepts, ConceptSet) else list(concepts)
    taken = {q.lower() for q in queries.queries}
    extra: list[tuple[str, ...]] = []
    for word in words:
        w = word.strip()
        if w and w.lower() not in taken:
            taken.add(w.lower())
            extra.append((w,))
    return ClassList(queries.synonyms + tuple(extra)), len(queries)


def segment_open_world(
    segmenter,
    image: np.ndarray | torch.Tensor | None,
    queries,
    concepts: Sequence[str] | ConceptSet,
    output_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """H x W labels: query pixels hold the query's index, every other pixel 255 (unlabelled).

    ``queries`` as ``Segmenter.predict`` takes classes ("boat", ["boat", "car"], a ClassList);
    ``concepts`` the contrastive concepts (e.g. ``contrastive_concepts(...)``). ``image`` None
    reuses the image of the segmenter's last ``set_image``. Pixels below the preset's prob_thd
    become unlabelled too, never query 0.
    """
    return open_world_result(segmenter, image, queries, concepts, output_size)[0]


def open_world_result(segmenter, image, queries, concepts, output_size=None):
    """``segment_open_world``'s labels and the closed-world result over queries plus concepts behind
    them (its ``probs`` give each pixel's score, its ``classes`` the concept that won it)."""
    classes, n = open_world_classes(queries, concepts)
    result = segmenter.predict(image, classes, output_size=output_size)
    labels = result.labels.clone().long()
    labels[labels >= n] = UNLABELLED
    thd = segmenter.preset.prob_thd
    if thd > 0:
        labels[result.confidence < thd] = UNLABELLED
    return labels, result


class OpenWorldQuery:
    """Queries whose contrastive concepts are chosen once, then segmented on any number of images
    (``ovss segment --open-world`` and the page's open-world mode)."""

    def __init__(self, segmenter, classes: ClassList, source: Source, beta: float | None = BETA):
        exclude = [s for syn in classes.synonyms for s in syn]
        self.segmenter = segmenter
        self.classes = classes
        self.concepts = contrastive_concepts(classes.names, source, ClipTextSimilarity.from_segmenter(segmenter),
                                             beta, exclude=exclude)
        self.settings = source.describe()

    def segment(self, image):
        """(H x W uint8 labels with 255 unlabelled, {name: pixel share} with "(unlabelled)" last)."""
        return self.segment_with_result(image)[:2]

    def segment_with_result(self, image):
        """``segment``'s labels and shares, and the closed-world result behind them."""
        from ..segment import label_shares

        labels, result = open_world_result(self.segmenter, image, self.classes, self.concepts)
        shares = label_shares(labels, self.classes)
        shares["(unlabelled)"] = float((labels == UNLABELLED).double().mean())
        return labels.cpu().numpy().astype("uint8"), shares, result

    def describe(self) -> dict:
        return {"concepts": self.concepts.concepts, "notes": self.concepts.notes, **self.settings}


def evaluate_iou_single(
    segmenter,
    dataset_items: Iterable[dict[str, Any]],
    class_names: Sequence[str | Sequence[str]],
    source: str | Source = "cooc",
    *,
    background_index: int | None = None,
    ignore_index: int = 255,
    similarity: TextSimilarity | None = None,
    beta: float | None = BETA,
    progress: bool = False,
    **source_options,
) -> dict:
    """IoU-single of ``segmenter`` with contrastive concepts from ``source``.

    ``dataset_items`` yields ``{"image": H x W x 3 uint8, "label": H x W ints}`` (a ``SegDataset``
    does); ``class_names`` are the dataset's classes (synonym lists allowed). For every image, each
    class present in its label (except ``background_index``) is queried alone with its concepts,
    and its open-world mask is scored. ``source_options`` go to ``make_source`` (dictionary, gamma,
    delta, abstract, llm). Returns mIoU_single and per-class IoU in percent (None = never queried).

    The images go one at a time through ``inference_on_dataset`` (the one image loop) and are scored
    by ``IoUSingleEvaluator``; an image with no class to query is not encoded. Each class's concepts
    are chosen the first time it is queried and reused on every later image.
    """
    from tqdm import tqdm

    classes = [[c] if isinstance(c, str) else list(c) for c in class_names]
    src = make_source(source, class_names=classes, **source_options)
    sim = similarity if similarity is not None else ClipTextSimilarity.from_segmenter(segmenter)
    evaluator = IoUSingleEvaluator(len(classes), ignore_index=ignore_index, background_index=background_index)
    concept_sets: dict[int, ConceptSet] = {}

    def predict(batch):
        """One {class index: open-world mask of that class queried alone} per item."""
        outputs = []
        for item in batch:
            masks = {}
            todo = evaluator.classes_to_query(item)
            if todo:
                shape = np.asarray(item["label"]).shape
                segmenter.set_image(item["image"])
            for c in todo:
                if c not in concept_sets:
                    concept_sets[c] = contrastive_concepts(classes[c][0], src, sim, beta, exclude=classes[c])
                query = ClassList((tuple(classes[c]),))
                masks[c] = segment_open_world(segmenter, None, query, concept_sets[c], output_size=shape) == 0
            outputs.append(masks)
        return outputs

    total = len(dataset_items) if hasattr(dataset_items, "__len__") else None
    name = f"IoU-single ({src.name})"
    with tqdm(desc=name, unit="img", total=total, disable=not progress) as bar:
        inference_on_dataset(([item] for item in dataset_items), predict, evaluator, bar=bar, name=name)
    scores = evaluator.evaluate()
    names = [c[0] for c in classes]
    return {
        "metric": "iou-single",
        "source": src.name,
        "mIoU_single": finite_or_none(scores["mIoU_single"]),
        "IoU": {n: finite_or_none(v) for n, v in zip(names, scores["IoU"])},
        "queries": dict(zip(names, scores["queries"])),
        "images": scores["images"],
        "concepts": {names[c]: s.concepts for c, s in sorted(concept_sets.items())},
        "settings": {**src.describe(), "beta": beta, "background_index": background_index},
    }

