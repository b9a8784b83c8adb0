"""ScanNet-style instance AP over 3D masks (the benchmark OpenMask3D and the OpenDAS paper report).

For each class and IoU threshold, ground-truth instances are matched greedily (in order) to the
predictions of that class overlapping them by more than the threshold; a second prediction on an
already matched instance is a false positive at the lower of the two scores; a prediction that
matches nothing is a false positive unless most of it (more than the threshold) lies on unlabelled
points or on instances too small to count. Precision/recall pairs are taken at every distinct score,
and AP is the sum of precisions times recall steps, as ScanNet's evaluation script computes it.
AP averages the thresholds 0.50:0.05:0.95; AP50 and AP25 are single thresholds. A class without
ground truth has no AP (NaN, left out of the means); one with ground truth but no prediction scores 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

OVERLAPS = tuple(float(t) for t in np.round(np.arange(0.5, 0.951, 0.05), 2)) + (0.25,)
MIN_REGION = 100  # points; ScanNet's smallest instance that counts


def precision_recall_ap(y_true: np.ndarray, y_score: np.ndarray, hard_false_negatives: int) -> float:
    """AP of matched (1) and false (0) detections with scores, plus instances never matched."""
    order = np.argsort(y_score, kind="stable")
    y_true, y_score = np.asarray(y_true, float)[order], np.asarray(y_score, float)[order]
    cumsum = np.cumsum(y_true)
    _, first = np.unique(y_score, return_index=True)
    total_true = cumsum[-1] if len(cumsum) else 0.0
    n = len(y_score)
    precision, recall = np.zeros(len(first) + 1), np.zeros(len(first) + 1)
    below = np.append(cumsum, 0.0)  # below[i - 1]: true detections scored under threshold i (0 for i = 0)
    for j, i in enumerate(first):
        tp = total_true - below[i - 1]
        fp = n - i - tp
        fn = below[i - 1] + hard_false_negatives
        precision[j] = tp / (tp + fp)
        recall[j] = tp / (tp + fn) if tp + fn > 0 else 0.0
    precision[-1], recall[-1] = 1.0, 0.0
    padded = np.concatenate([[recall[0]], recall, [0.0]])
    steps = (padded[:-2] - padded[2:]) / 2.0
    return float(np.dot(precision, steps))


@dataclass
class Matches:
    """Detections gathered over scenes, per (threshold, class): true/false flags, scores, misses."""

    num_classes: int
    overlaps: tuple[float, ...] = OVERLAPS
    flags: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    misses: dict = field(default_factory=dict)
    has_gt: set = field(default_factory=set)
    has_pred: set = field(default_factory=set)

    def add(self, key, flag: int, score: float) -> None:
        self.flags.setdefault(key, []).append(flag)
        self.scores.setdefault(key, []).append(score)


def match_scene(matches: Matches, gt_ids: np.ndarray, gt_class: dict[int, int], pred_masks: Sequence[np.ndarray],
                pred_class: Sequence[int], pred_score: Sequence[float], min_region: int = MIN_REGION) -> Matches:
    """Add one scene: per-point ground-truth ids (<= 0: unlabelled) with their classes, and predictions
    as point-index arrays with a class (-1: none) and a score each."""
    gt_ids = np.asarray(gt_ids).astype(np.int64).ravel()
    ids = sorted(int(i) for i in np.unique(gt_ids) if i > 0)
    size = {g: int((gt_ids == g).sum()) for g in ids}
    column = {g: k for k, g in enumerate(ids)}
    inter = np.zeros((len(pred_masks), len(ids)), dtype=np.int64)
    void = np.zeros(len(pred_masks), dtype=np.int64)
    pred_size = np.zeros(len(pred_masks), dtype=np.int64)
    for p, index in enumerate(pred_masks):
        index = np.unique(np.asarray(index, dtype=np.int64))
        pred_size[p] = len(index)
        hit = gt_ids[index]
        void[p] = int((hit <= 0).sum())
        for g, count in zip(*np.unique(hit[hit > 0], return_counts=True)):
            inter[p, column[int(g)]] = int(count)
    iou = inter / np.maximum(np.array([size[g] for g in ids])[None, :] + pred_size[:, None] - inter, 1)
    for c in range(matches.num_classes):
        gts = [k for k, g in enumerate(ids) if gt_class[g] == c]
        valid = [k for k in gts if size[ids[k]] >= min_region]
        small = [k for k in gts if size[ids[k]] < min_region]
        preds = [p for p in range(len(pred_masks)) if pred_class[p] == c]
        if valid:
            matches.has_gt.add(c)
        if preds:
            matches.has_pred.add(c)
        for oi, t in enumerate(matches.overlaps):
            key = (oi, c)
            used = set()
            for k in valid:
                best = None
                for p in preds:
                    if p in used or iou[p, k] <= t:
                        continue
                    if best is None:
                        best = pred_score[p]
                        used.add(p)
                    else:  # a second prediction of a matched instance: the lower score is false
                        matches.add(key, 0, min(best, pred_score[p]))
                        best = max(best, pred_score[p])
                if best is None:
                    matches.misses[key] = matches.misses.get(key, 0) + 1
                else:
                    matches.add(key, 1, best)
            for p in preds:
                if any(iou[p, k] > t for k in gts):
                    continue
                ignored = void[p] + sum(inter[p, k] for k in small)
                if ignored / max(pred_size[p], 1) <= t:
                    matches.add(key, 0, pred_score[p])
    return matches


def average_precisions(matches: Matches) -> np.ndarray:
    """classes x thresholds AP (NaN where a class has no ground truth)."""
    ap = np.full((matches.num_classes, len(matches.overlaps)), np.nan)
    for c in range(matches.num_classes):
        if c not in matches.has_gt:
            continue
        for oi in range(len(matches.overlaps)):
            key = (oi, c)
            if c not in matches.has_pred or not matches.flags.get(key):
                ap[c, oi] = 0.0
                continue
            ap[c, oi] = precision_recall_ap(np.array(matches.flags[key]), np.array(matches.scores[key]),
                                            matches.misses.get(key, 0))
    return ap


def _nanmean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def summarize_ap(matches: Matches, class_names: Sequence[str], base: Sequence[str] = ()) -> dict:
    """{"AP", "AP50", "AP25"} in percent over all classes with ground truth, per class, and the same
    over the base and the novel (not base) classes."""
    ap = average_precisions(matches)
    thresholds = list(matches.overlaps)
    i50, i25 = thresholds.index(0.5), thresholds.index(0.25)
    main = [i for i, t in enumerate(thresholds) if t >= 0.5]
    per_class = {name: {"AP": _nanmean(ap[c, main]) * 100, "AP50": ap[c, i50] * 100, "AP25": ap[c, i25] * 100}
                 for c, name in enumerate(class_names)}
    base_set = {b.lower() for b in base}

    def over(names):
        rows = [per_class[n] for n in names]
        return {k: _nanmean([r[k] for r in rows]) for k in ("AP", "AP50", "AP25")}

    out = over(class_names)
    out["classes_with_gt"] = int(sum(not math.isnan(ap[c, i50]) for c in range(len(class_names))))
    if base:
        out["base"] = over([n for n in class_names if n.lower() in base_set])
        out["novel"] = over([n for n in class_names if n.lower() not in base_set])
    out["per_class"] = per_class
    return out
