"""Segmentation metrics: mIoU / mAcc / aAcc as MMSegmentation reports them, and IoU-single.

All reported values are **percentages in 0..100**, unrounded (MMSegmentation rounds to 2 decimals
only when it prints). Per-class values are NaN where the metric is 0/0, and the means skip NaNs.

``ConfusionMatrix`` reproduces MMSegmentation's ``IoUMetric`` (``intersect_and_union`` summed over
the dataset, then ``total_area_to_metrics``):

* pixels whose target is ``ignore_index`` are dropped;
* IoU = intersect / (area_pred + area_label - intersect), Acc = intersect / area_label,
  aAcc = sum(intersect) / sum(area_label), mIoU = nanmean(IoU), mAcc = nanmean(Acc);
* a class absent from both ground truth and prediction has IoU = Acc = NaN and does not count; a
  class predicted somewhere but absent from the ground truth has IoU 0 (its union is not empty)
  and Acc NaN, so false positives on absent classes do lower mIoU;
* a prediction outside [0, C) (e.g. 255 written for "unsure") is never correct: it counts in the
  area of its ground-truth class and in no class's predicted area, exactly as ``torch.histc``
  drops it in MMSegmentation. A target outside [0, C) other than ignore_index likewise counts in
  no class's label area, while its prediction still counts as predicted area (a false positive).
  Internally the matrix has one extra row and column, "out of range", to keep those counts.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency, but metrics need only numpy
    torch = None


def _as_int_array(x) -> np.ndarray:
    """numpy int64 view of a numpy array or (any device) torch tensor."""
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == bool or not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"expected an integer label map, got dtype {x.dtype}")
    return x.astype(np.int64, copy=False)


def _percent(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """100 * num / den with NaN where den is 0 (and no warning)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out * 100.0


def _nanmean(values: np.ndarray) -> float:
    """Mean over non-NaN values; NaN (no warning) when there are none."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def all_reduce_sum(array: np.ndarray) -> np.ndarray:
    """Sum an int64 array over all torch.distributed ranks; unchanged when not distributed."""
    if torch is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return array
    device = "cpu"
    if torch.distributed.get_backend() == "nccl":
        device = f"cuda:{torch.cuda.current_device()}"
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor.cpu().numpy().astype(np.int64)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


class ConfusionMatrix:
    """Pixel confusion matrix over a dataset; rows are ground truth, columns are predictions."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        # index num_classes is "out of range" (see the module docstring)
        self._full = np.zeros((self.num_classes + 1,) * 2, dtype=np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """The num_classes x num_classes counts (int64), without the out-of-range row/column."""
        return self._full[: self.num_classes, : self.num_classes]

    def reset(self) -> None:
        self._full[:] = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything ``compute`` needs (the counts with the out-of-range row and column), so a
        checkpoint restores the matrix exactly."""
        return {"counts": self._full.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        counts = np.asarray(state["counts"], dtype=np.int64)
        if counts.shape != self._full.shape:
            raise ValueError(f"a checkpoint of shape {counts.shape} does not fit {self.num_classes} classes")
        self._full[...] = counts

    # one pair at a time: process = update, evaluate = compute. The batch protocol the image loop
    # uses (process(inputs, outputs)) is ``evaluator.SemSegEvaluator``, which wraps this matrix.
    def process(self, pred, target) -> None:
        self.update(pred, target)

    def evaluate(self) -> dict:
        return self.compute()

    def update(self, pred, target) -> None:
        """Add one prediction / ground-truth pair (any matching shapes, numpy or torch ints)."""
        pred, target = _as_int_array(pred), _as_int_array(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
        keep = target != self.ignore_index
        t, p = target[keep], pred[keep]
        c = self.num_classes
        t = np.where((t >= 0) & (t < c), t, c)
        p = np.where((p >= 0) & (p < c), p, c)
        counts = np.bincount(t * (c + 1) + p, minlength=(c + 1) ** 2)
        self._full += counts.reshape(c + 1, c + 1)

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix's counts into this one (e.g. from another worker); returns self."""
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError("can only merge confusion matrices with the same classes and ignore_index")
        self._full += other._full
        return self

    def reduce_distributed(self) -> None:
        """Sum the counts over all torch.distributed ranks (no-op when not initialised).

        Call it exactly once, on every rank, before ``compute``: it adds in place.
        """
        self._full = all_reduce_sum(self._full)

    def areas(self) -> dict[str, np.ndarray]:
        """Per-class intersect, union, pred and label areas, as MMSegmentation accumulates them."""
        c = self.num_classes
        intersect = np.diag(self._full)[:c].copy()
        area_label = self._full[:c, :].sum(axis=1)  # includes out-of-range predictions
        area_pred = self._full[:, :c].sum(axis=0)  # includes out-of-range targets
        union = area_pred + area_label - intersect
        return {"intersect": intersect, "union": union, "pred": area_pred, "label": area_label}

    def compute(self) -> dict:
        """{'mIoU', 'mAcc', 'aAcc': float, 'IoU', 'Acc': per-class lists}, all in percent."""
        a = self.areas()
        iou = _percent(a["intersect"], a["union"])
        acc = _percent(a["intersect"], a["label"])
        a_acc = _percent(a["intersect"].sum(), a["label"].sum())
        return {
            "mIoU": _nanmean(iou),
            "mAcc": _nanmean(acc),
            "aAcc": float(a_acc),
            "IoU": iou.tolist(),
            "Acc": acc.tolist(),
        }

    def as_table(self, class_names: Sequence[str] | None = None) -> str:
        """Per-class IoU / Acc and the summary as a markdown table (n/a = class never seen)."""
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")
        m = self.compute()
        lines = ["| class | IoU (%) | Acc (%) |", "| --- | ---: | ---: |"]
        for name, iou, acc in zip(names, m["IoU"], m["Acc"]):
            lines.append(f"| {name} | {_fmt(iou)} | {_fmt(acc)} |")
        lines.append(f"| **mean** | **{_fmt(m['mIoU'])}** | **{_fmt(m['mAcc'])}** |")
        lines.append("")
        lines.append(f"aAcc {_fmt(m['aAcc'])} %, mIoU {_fmt(m['mIoU'])} %, mAcc {_fmt(m['mAcc'])} %")
        return "\n".join(lines)


class IoUSingle:
    """IoU-single: each ground-truth class of an image is queried alone and scored as a binary mask.

    Open-world segmentation (the contrastive-concepts paper, "test-time contrastive concepts") asks one concept at a time,
    so the usual multi-class argmax does not apply: for a query of class c the prediction is a
    c / not-c mask. For each class we sum intersections and unions over every image where it was
    queried and divide at the end (dataset-level accumulation, like mIoU), rather than averaging
    per-image IoUs, so small objects do not weigh as much as whole images. The mean is over the
    classes queried at least once; the background class, if any, is not scored.
    """

    def __init__(
        self, num_classes: int, ignore_index: int = 255, background_index: int | None = None
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.background_index = background_index
        self.intersection = np.zeros(self.num_classes, dtype=np.int64)
        self.union = np.zeros(self.num_classes, dtype=np.int64)
        self.queries = np.zeros(self.num_classes, dtype=np.int64)

    def reset(self) -> None:
        self.intersection[:] = 0
        self.union[:] = 0
        self.queries[:] = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the three per-class counts ``compute`` needs, so a checkpoint restores them exactly."""
        return {"intersection": self.intersection.copy(), "union": self.union.copy(), "queries": self.queries.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        counts = {k: np.asarray(state[k], dtype=np.int64) for k in ("intersection", "union", "queries")}
        for key, value in counts.items():
            if value.shape != (self.num_classes,):
                raise ValueError(f"a checkpoint's {key} of shape {value.shape} does not fit {self.num_classes} classes")
        for key, value in counts.items():
            getattr(self, key)[...] = value

    def classes_to_query(self, target) -> list[int]:
        """The scored classes present in a ground-truth map: the queries to make for this image."""
        present = np.unique(_as_int_array(target))
        return [
            int(c)
            for c in present
            if 0 <= c < self.num_classes and c != self.ignore_index and c != self.background_index
        ]

    def update(self, class_index: int, pred_mask, target) -> None:
        """Score the binary answer ``pred_mask`` (True = class_index) to one query on one image."""
        class_index = int(class_index)
        if not 0 <= class_index < self.num_classes:
            raise ValueError(f"class_index {class_index} outside 0..{self.num_classes - 1}")
        if class_index == self.background_index:
            return
        if torch is not None and isinstance(pred_mask, torch.Tensor):
            pred_mask = pred_mask.detach().cpu().numpy()
        pred_mask = np.asarray(pred_mask).astype(bool, copy=False)
        target = _as_int_array(target)
        if pred_mask.shape != target.shape:
            raise ValueError(f"mask shape {pred_mask.shape} != target shape {target.shape}")
        valid = target != self.ignore_index
        gt = (target == class_index) & valid
        pred = pred_mask & valid
        self.intersection[class_index] += int(np.count_nonzero(pred & gt))
        self.union[class_index] += int(np.count_nonzero(pred | gt))
        self.queries[class_index] += 1

    def merge(self, other: "IoUSingle") -> "IoUSingle":
        """Add another accumulator's counts into this one; returns self."""
        if other.num_classes != self.num_classes:
            raise ValueError("can only merge IoUSingle accumulators with the same classes")
        self.intersection += other.intersection
        self.union += other.union
        self.queries += other.queries
        return self

    def reduce_distributed(self) -> None:
        """Sum the counts over all torch.distributed ranks (no-op when not initialised); once."""
        stacked = all_reduce_sum(np.stack([self.intersection, self.union, self.queries]))
        self.intersection, self.union, self.queries = (row.copy() for row in stacked)

    def compute(self) -> dict:
        """{'mIoU_single': float, 'IoU': per-class list (NaN if never queried), 'queries': counts}."""
        iou = _percent(self.intersection, self.union)
        iou[self.queries == 0] = np.nan
        return {"mIoU_single": _nanmean(iou), "IoU": iou.tolist(), "queries": self.queries.tolist()}
