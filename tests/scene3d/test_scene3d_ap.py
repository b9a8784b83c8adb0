"""ScanNet-style AP against cases worked out by hand.

The precision-recall rule (ScanNet's): sort detections by score; at each distinct score s, tp =
true detections scored >= s, fp = the others scored >= s, fn = true ones below s plus instances
never matched; a final point (precision 1, recall 0) is appended; AP = sum of precision_j times
(recall_{j-1} - recall_{j+1}) / 2, with recall_{-1} = recall_0.
"""
import math

import numpy as np
import pytest

from ovss.scene3d.metrics import Matches, average_precisions, match_scene, precision_recall_ap, summarize_ap

CLASSES = ["a", "b", "c"]


def test_pr_rule_by_hand():
    # one true at 0.9, one false at 0.7, one instance missed:
    # s=0.7: tp 1, fp 1, fn 1 -> p 1/2, r 1/2; s=0.9: tp 1, fp 0, fn 1 -> p 1, r 1/2; then (1, 0)
    # steps: (r0 - r1)/2 = 0, (r0 - r2)/2 = 1/4, (r1 - 0)/2 = 1/4 -> AP = 0 + 1/4 + 1/4
    assert precision_recall_ap(np.array([1, 0]), np.array([0.9, 0.7]), 1) == pytest.approx(0.5)
    # the false one ranked first: s=0.9: p 1/2, r 1/2; s=0.95: tp 0, fp 1 -> p 0, r 0; then (1, 0)
    # steps: 1/4, 1/4, 0 -> AP = 1/2 * 1/4 + 0 + 0
    assert precision_recall_ap(np.array([1, 0]), np.array([0.9, 0.95]), 1) == pytest.approx(0.125)
    assert precision_recall_ap(np.array([1, 1]), np.array([0.5, 0.8]), 0) == pytest.approx(1.0)
    assert precision_recall_ap(np.array([0]), np.array([0.5]), 1) == pytest.approx(0.0)


def scene(sizes):
    """Per-point ids: instance 1 has sizes[0] points, then 2, ...; the masks as index arrays."""
    ids = np.concatenate([np.full(n, i + 1) for i, n in enumerate(sizes)])
    masks = [np.flatnonzero(ids == i + 1) for i in range(len(sizes))]
    return ids, masks


def test_wrong_label_and_missed_class():
    ids, masks = scene([120, 120, 120])
    gt_class = {1: 0, 2: 0, 3: 2}  # a, a, c
    # instance 1 right (a, 0.9); instance 2 called b (0.8); instance 3 called a (0.7)
    m = match_scene(Matches(3), ids, gt_class, masks, [0, 1, 0], [0.9, 0.8, 0.7])
    ap = average_precisions(m)
    assert ap[0].tolist() == pytest.approx([0.5] * 11)  # a: TP 0.9, FP 0.7, one miss
    assert np.isnan(ap[1]).all()  # b: no ground truth
    assert ap[2].tolist() == [0.0] * 11  # c: ground truth, no prediction
    s = summarize_ap(m, CLASSES, base=["a", "b"])
    assert s["AP"] == pytest.approx(25.0) and s["AP50"] == pytest.approx(25.0) and s["AP25"] == pytest.approx(25.0)
    assert s["base"]["AP"] == pytest.approx(50.0) and s["novel"]["AP"] == pytest.approx(0.0)
    assert math.isnan(s["per_class"]["b"]["AP"]) and s["classes_with_gt"] == 2


def test_partial_overlap_counts_below_its_iou_only():
    # the prediction covers instance 1 (100 points) and 50 unlabelled points: IoU 2/3
    ids = np.concatenate([np.full(100, 1), np.zeros(50, int)])
    m = match_scene(Matches(1), ids, {1: 0}, [np.arange(150)], [0], [0.6])
    ap = average_precisions(m)[0]
    assert ap.tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1]  # 0.50..0.65 and 0.25 match, 0.70.. do not
    s = summarize_ap(m, ["a"])
    assert s["AP"] == pytest.approx(40.0) and s["AP50"] == 100 and s["AP25"] == 100


def test_duplicates_unlabelled_predictions_and_small_instances():
    ids, masks = scene([150, 30])  # instance 2 is below the 100-point minimum
    # two predictions on instance 1 (a): 0.9 true, 0.6 false -> p 1/2 r 1, then p 1 r 1 -> AP 1
    m = match_scene(Matches(1), ids, {1: 0, 2: 0}, [masks[0], masks[0]], [0, 0], [0.9, 0.6])
    assert average_precisions(m)[0].tolist() == pytest.approx([1.0] * 11)
    # a prediction on the small instance alone is neither true nor false
    m = match_scene(Matches(1), ids, {1: 0, 2: 0}, [masks[0], masks[1]], [0, 0], [0.9, 0.95])
    assert average_precisions(m)[0].tolist() == pytest.approx([1.0] * 11)
    # a prediction with no label (-1) counts for no class: instance 1 is missed
    m = match_scene(Matches(1), ids, {1: 0, 2: 0}, [masks[0]], [-1], [0.9])
    assert average_precisions(m)[0].tolist() == [0.0] * 11


def test_scenes_pool_their_detections():
    ids, masks = scene([120])
    m = Matches(1)
    match_scene(m, ids, {1: 0}, masks, [0], [0.9])  # scene 1: found
    match_scene(m, ids, {1: 0}, masks, [-1], [0.2])  # scene 2: missed
    # one TP at 0.9, one miss: p 1, r 1/2 -> AP 1/2
    assert average_precisions(m)[0, 0] == pytest.approx(0.5)
