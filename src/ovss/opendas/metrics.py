"""Segment classification scores of OpenDAS: accuracy, weighted F1, base F1 and novel F1.

Per-class F1 comes from the confusion of all predictions (a novel segment called by a base name
lowers that base class's precision). W-F1 averages per-class F1 weighted by each class's number of
segments, as scikit-learn's ``average="weighted"``; B-F1 and N-F1 do the same over the base and the
novel classes, so W-F1 is always the segment-weighted mix of B-F1 and N-F1 (OpenDAS's tables obey
this). Scores are percentages; a subset with no segments scores NaN.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def per_class_f1(pred: Sequence[int], target: Sequence[int], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(F1 per class in 0..1, number of segments per class); F1 is 0 where precision + recall is 0."""
    pred, target = np.asarray(pred, dtype=np.int64), np.asarray(target, dtype=np.int64)
    tp = np.bincount(target[pred == target], minlength=num_classes)[:num_classes].astype(np.float64)
    predicted = np.bincount(pred[(pred >= 0) & (pred < num_classes)], minlength=num_classes)[:num_classes]
    support = np.bincount(target, minlength=num_classes)[:num_classes]
    denom = predicted + support  # 2 TP + FP + FN
    f1 = np.divide(2 * tp, denom, out=np.zeros(num_classes), where=denom > 0)
    return f1, support


def weighted_f1(f1: np.ndarray, support: np.ndarray, classes: Sequence[int] | None = None) -> float:
    """Support-weighted mean of per-class F1 over ``classes`` (all by default), in percent."""
    ids = np.arange(len(f1)) if classes is None else np.asarray(list(classes), dtype=np.int64)
    w = support[ids].astype(np.float64)
    if w.sum() == 0:
        return math.nan
    return float((f1[ids] * w).sum() / w.sum() * 100)


def classification_scores(pred: Sequence[int], target: Sequence[int], num_classes: int,
                          base: Sequence[int]) -> dict:
    """{"Acc", "W-F1", "B-F1", "N-F1"} in percent, plus per-class F1 and counts; novel = not base."""
    pred, target = np.asarray(pred, dtype=np.int64), np.asarray(target, dtype=np.int64)
    if len(target) == 0:
        raise ValueError("no segments to score")
    base_ids = sorted(set(int(b) for b in base))
    novel_ids = [c for c in range(num_classes) if c not in base_ids]
    f1, support = per_class_f1(pred, target, num_classes)
    return {
        "Acc": float((pred == target).mean() * 100),
        "W-F1": weighted_f1(f1, support),
        "B-F1": weighted_f1(f1, support, base_ids),
        "N-F1": weighted_f1(f1, support, novel_ids),
        "segments": int(len(target)),
        "F1": (f1 * 100).tolist(),
        "support": support.tolist(),
    }


METRICS = ("Acc", "W-F1", "B-F1", "N-F1")


def format_params(n: int) -> str:
    """Parameter counts OpenDAS's way: 512, 7.7K, 233K, 18935K."""
    if n < 1000:
        return str(n)
    return f"{n / 1000:.1f}K" if n < 10_000 else f"{n / 1000:.0f}K"


def _cell(value: float, ref: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.1f}"
    if ref is not None and not math.isnan(ref):
        text += f" ({value - ref:+.1f})"
    return text


def format_table(rows: list[dict], datasets: list[str], metrics: Sequence[str] = METRICS) -> str:
    """OpenDAS's table as Markdown: one row per method, a column group per test set.

    ``rows``: {"method", "params", "scores": {dataset: {metric: value}}}; the first row is the
    reference (no adaptation), and every other row's N-F1 shows its difference to it.
    """
    groups = ["", ""] + [d if i == 0 else "" for d in datasets for i in range(len(metrics))]
    names = ["Method", "# Params"] + [m for _ in datasets for m in metrics]
    lines = ["| " + " | ".join(groups) + " |", "|" + "---|" + "---:|" * (len(names) - 1),
             "| " + " | ".join(names) + " |"]
    ref = rows[0]["scores"] if rows else {}
    for k, row in enumerate(rows):
        cells = [row["method"], format_params(row["params"])]
        for d in datasets:
            for m in metrics:
                value = row["scores"].get(d, {}).get(m, math.nan)
                base = ref.get(d, {}).get(m) if k > 0 and m == "N-F1" else None
                cells.append(_cell(value, base))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
