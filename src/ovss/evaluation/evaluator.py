"""One image loop for every mIoU in ovss: evaluators that accumulate, and the loop that feeds them.

The protocol follows the idea of detectron2's ``DatasetEvaluator`` / ``inference_on_dataset``:
what is predicted and how it is scored are kept apart, so the benchmark runner, the class-count
curve, the world's quality checks, OVSNet, OpenDAS and the open-world IoU-single evaluation (the
contrastive-concepts paper) share one loop instead of six copies of "for every image: predict,
update a metric".

* An **item** is a dict describing one image (its ``"image"``, features, ``"label"`` ...); a
  **batch** is a list of items; ``predict(batch)`` returns one **output** per item (a label map,
  for ``EvaluatorsByKey`` a dict key -> label map, for ``IoUSingleEvaluator`` a dict class index ->
  binary mask).
* A ``DatasetEvaluator`` accumulates over ``process(inputs, outputs)`` calls and reports with
  ``evaluate()``. ``state_dict`` / ``load_state_dict`` capture the accumulated counts exactly, so
  a checkpoint resumes to the numbers of an uninterrupted pass.
* ``inference_on_dataset`` is the loop. It does not evaluate at the end: the runner must sum the
  counts over ranks once and write the matrix, and an interrupted run must not evaluate at all;
  callers call ``evaluator.evaluate()`` (or ``SemSegEvaluator.summed``) themselves.
"""
from __future__ import annotations

import abc
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from .metrics import ConfusionMatrix, IoUSingle

__all__ = ["DatasetEvaluator", "SemSegEvaluator", "EvaluatorsByKey", "IoUSingleEvaluator", "inference_on_dataset"]


class DatasetEvaluator(abc.ABC):
    """Accumulates scores over batches of (items, outputs); a subclass must define all five methods
    (an abstract base, so a half-written evaluator fails when it is created, not mid-run)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget everything processed so far."""

    @abc.abstractmethod
    def process(self, inputs: Sequence[dict], outputs: Sequence) -> None:
        """Add a batch: ``outputs[i]`` is the prediction for ``inputs[i]``."""

    @abc.abstractmethod
    def evaluate(self) -> dict:
        """The scores of everything processed so far (does not change the accumulated state)."""

    @abc.abstractmethod
    def state_dict(self) -> dict:
        """A copy of the accumulated state, enough for ``load_state_dict`` to continue exactly."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Replace the accumulated state by a ``state_dict``; ValueError if it does not fit."""


class SemSegEvaluator(DatasetEvaluator):
    """mIoU / mAcc / aAcc (``ConfusionMatrix``, MMSegmentation's conventions) of label maps.

    ``label_key``: the item key holding the ground truth (same shape as the output). With
    ``distributed`` True, ``evaluate`` and ``summed`` sum the counts over the torch.distributed
    ranks (``ConfusionMatrix.reduce_distributed``); they are then collective calls, to be made on
    every rank. The accumulated counts themselves stay this rank's own, so a checkpoint saved after
    an evaluation still holds only this rank's shard.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, label_key: str = "label",
                 distributed: bool = False) -> None:
        self.confusion = ConfusionMatrix(num_classes, ignore_index)
        self.label_key = label_key
        self.distributed = bool(distributed)

    def reset(self) -> None:
        self.confusion.reset()

    def process(self, inputs: Sequence[dict], outputs: Sequence) -> None:
        for item, labels in zip(inputs, outputs, strict=True):
            self.confusion.update(labels, item[self.label_key])

    def summed(self) -> ConfusionMatrix:
        """A copy of the matrix, summed over the ranks when ``distributed`` (collective then)."""
        total = ConfusionMatrix(self.confusion.num_classes, self.confusion.ignore_index)
        total.load_state_dict(self.confusion.state_dict())
        if self.distributed:
            total.reduce_distributed()
        return total

    def evaluate(self) -> dict:
        """``ConfusionMatrix.compute`` of ``summed()``: mIoU, mAcc, aAcc, per-class IoU and Acc."""
        return self.summed().compute()

    def state_dict(self) -> dict:
        return self.confusion.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.confusion.load_state_dict(state)


class EvaluatorsByKey(DatasetEvaluator):
    """Several evaluators over the same items, one per key; each output is a dict key -> prediction.

    Why: the class-count curve encodes an image once and predicts it with several class lists;
    each list's predictions must land in its own confusion matrix.
    """

    def __init__(self, evaluators: Mapping[Any, DatasetEvaluator]) -> None:
        self.evaluators = dict(evaluators)

    def reset(self) -> None:
        for ev in self.evaluators.values():
            ev.reset()

    def process(self, inputs: Sequence[dict], outputs: Sequence[Mapping]) -> None:
        for out in outputs:
            missing = [k for k in self.evaluators if k not in out]
            if missing:
                raise KeyError(f"an output has no prediction for key(s) {missing}; it has {list(out)}")
        for key, ev in self.evaluators.items():
            ev.process(inputs, [out[key] for out in outputs])

    def evaluate(self) -> dict:
        return {key: ev.evaluate() for key, ev in self.evaluators.items()}

    def state_dict(self) -> dict:
        return {key: ev.state_dict() for key, ev in self.evaluators.items()}

    def load_state_dict(self, state: dict) -> None:
        missing = [k for k in self.evaluators if k not in state]
        if missing:
            raise ValueError(f"a checkpoint without the key(s) {missing}")
        for key, ev in self.evaluators.items():
            ev.load_state_dict(state[key])


class IoUSingleEvaluator(DatasetEvaluator):
    """IoU-single (``IoUSingle``, the contrastive-concepts paper): each class of an image queried alone.

    Each output is a dict class index -> H x W binary mask (True = the pixels the query alone
    claimed), with exactly one mask per class of ``classes_to_query(item)``: the classes present in
    the item's ground truth (``label_key``), less ``ignore_index`` and ``background_index``. An item
    with nothing to query has the output ``{}``. Why a dict and not one label map: the queries of
    one image are separate open-world predictions whose masks may overlap. Why exactly those
    classes: a predict that skipped a class would raise its mean unnoticed, so ``process`` raises
    ValueError (before counting any of the batch) when an output's classes differ.

    ``evaluate`` gives ``IoUSingle.compute`` (mIoU_single, per-class IoU, queries) and ``images``,
    the number of items that had at least one query.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, background_index: int | None = None,
                 label_key: str = "label") -> None:
        self.metric = IoUSingle(num_classes, ignore_index=ignore_index, background_index=background_index)
        self.label_key = label_key
        self.images = 0

    def classes_to_query(self, item: dict) -> list[int]:
        """The class indices (ascending) an output for ``item`` must hold a mask for."""
        return self.metric.classes_to_query(item[self.label_key])

    def reset(self) -> None:
        self.metric.reset()
        self.images = 0

    def process(self, inputs: Sequence[dict], outputs: Sequence[Mapping]) -> None:
        pairs = list(zip(inputs, outputs, strict=True))
        for item, masks in pairs:
            wanted = self.classes_to_query(item)
            got = sorted(int(c) for c in masks)
            if got != wanted:
                raise ValueError(f"an output has masks for the classes {got}, but its ground truth asks for {wanted}")
        for item, masks in pairs:
            for c, mask in masks.items():
                self.metric.update(c, mask, item[self.label_key])
            self.images += bool(masks)

    def evaluate(self) -> dict:
        return {**self.metric.compute(), "images": self.images}

    def state_dict(self) -> dict:
        return {**self.metric.state_dict(), "images": self.images}

    def load_state_dict(self, state: dict) -> None:
        if "images" not in state:
            raise ValueError("an IoU-single checkpoint without its count of images")
        self.metric.load_state_dict(state)
        self.images = int(state["images"])


def inference_on_dataset(
    batches: Iterable[Sequence[dict]],
    predict: Callable[[Sequence[dict]], Sequence],
    evaluator: DatasetEvaluator,
    *,
    before_batch: Callable[[Sequence[dict]], None] | None = None,
    after_batch: Callable[[Sequence[dict], float], None] | None = None,
    bar=None,
    name: str = "predict",
) -> int:
    """Predict every batch and give (batch, outputs) to ``evaluator``; returns the images done.

    Per batch: ``before_batch(batch)``, then ``predict(batch)`` (timed), then a check that it
    returned one output per item (RuntimeError naming ``name`` otherwise: a method that drops or
    adds images would silently shift every score), then ``evaluator.process``, ``bar.update(len)``
    (a tqdm bar, if given) and ``after_batch(batch, model_seconds)`` with the seconds ``predict``
    took on that batch.

    Why hooks: what differs between callers stays with them. The benchmark runner seeds the random
    generators before each batch (so a resumed or distributed run draws the same numbers),
    checkpoints the counts every N images, and saves them when interrupted; those are the runner's
    policies, done in its hooks and its own ``try``, not in this loop. The loop keeps no state of
    its own; an exception inside ``evaluator.process`` may leave part of a batch counted, which is
    why the runner keeps the ``state_dict`` of its last whole batch (``after_batch``) and saves
    that one when interrupted.
    """
    done = 0
    for batch in batches:
        batch = list(batch)
        if before_batch is not None:
            before_batch(batch)
        t = time.perf_counter()
        outputs = predict(batch)
        seconds = time.perf_counter() - t
        if len(outputs) != len(batch):
            raise RuntimeError(f"{name} returned {len(outputs)} outputs for {len(batch)} images")
        evaluator.process(batch, outputs)
        done += len(batch)
        if bar is not None:
            bar.update(len(batch))
        if after_batch is not None:
            after_batch(batch, seconds)
    return done
