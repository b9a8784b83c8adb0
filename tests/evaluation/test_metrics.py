"""Segmentation metrics against hand-computed cases (MMSegmentation's IoUMetric conventions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ovss.evaluation import ConfusionMatrix, IoUSingle

IGN = 255

# Image 1: 3 real classes (+ class 3, absent everywhere), one ignored pixel.
T1 = np.array([[0, 0, 1], [1, IGN, 0]])
P1 = np.array([[0, 1, 1], [2, 0, 0]])
# Image 2: an out-of-range prediction (255) on a class-1 pixel, a prediction on an ignored pixel.
T2 = np.array([[2, 2, 0], [IGN, 1, 1]])
P2 = np.array([[2, 0, 0], [1, 1, 255]])


def approx_list(values, expected):
    assert len(values) == len(expected)
    for v, e in zip(values, expected):
        if math.isnan(e):
            assert math.isnan(v)
        else:
            assert v == pytest.approx(e)


def test_single_image_by_hand():
    cm = ConfusionMatrix(4)
    cm.update(P1, T1)
    # valid (gt, pred) pairs: (0,0) (0,1) (1,1) (1,2) (0,0)
    assert cm.matrix.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert cm.matrix.dtype == np.int64
    m = cm.compute()
    # intersect [2,1,0,0], label [3,2,0,0], pred [2,2,1,0], union [3,3,1,0]
    approx_list(m["IoU"], [200 / 3, 100 / 3, 0.0, math.nan])  # class 2: predicted, no gt -> 0
    approx_list(m["Acc"], [200 / 3, 50.0, math.nan, math.nan])  # class 2: no gt -> NaN
    assert m["mIoU"] == pytest.approx((200 / 3 + 100 / 3 + 0) / 3)
    assert m["mAcc"] == pytest.approx((200 / 3 + 50) / 2)
    assert m["aAcc"] == pytest.approx(60.0)


def test_two_images_by_hand_with_out_of_range_prediction():
    cm = ConfusionMatrix(4)
    cm.update(P1, T1)
    cm.update(P2, T2)
    # image 2 adds (2,2) (2,0) (0,0) (1,1) (1,out); the ignored pixel's prediction is dropped
    assert cm.matrix.tolist() == [[3, 1, 0, 0], [0, 2, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    a = cm.areas()
    assert a["label"].tolist() == [4, 4, 2, 0]  # class 1 keeps its out-of-range-predicted pixel
    assert a["pred"].tolist() == [4, 3, 2, 0]  # ... which no class gets as predicted area
    m = cm.compute()
    approx_list(m["IoU"], [60.0, 40.0, 100 / 3, math.nan])
    approx_list(m["Acc"], [75.0, 50.0, 50.0, math.nan])
    assert m["aAcc"] == pytest.approx(60.0)
    assert m["mIoU"] == pytest.approx((60 + 40 + 100 / 3) / 3)
    assert m["mAcc"] == pytest.approx((75 + 50 + 50) / 3)


def test_out_of_range_predictions_are_never_correct():
    cm = ConfusionMatrix(3)
    cm.update(np.array([[-1, 7, 3]]), np.array([[0, 0, 2]]))
    a = cm.areas()
    assert a["intersect"].tolist() == [0, 0, 0]
    assert a["label"].tolist() == [2, 0, 1] and a["pred"].tolist() == [0, 0, 0]
    m = cm.compute()
    approx_list(m["IoU"], [0.0, math.nan, 0.0])
    assert m["aAcc"] == 0.0


def test_out_of_range_target_counts_its_prediction_as_false_positive():
    cm = ConfusionMatrix(3)  # target 9 is neither a class nor ignore_index: like torch.histc in mmseg
    cm.update(np.array([[1, 1]]), np.array([[9, 1]]))
    a = cm.areas()
    assert a["label"].tolist() == [0, 1, 0] and a["pred"].tolist() == [0, 2, 0]
    approx_list(cm.compute()["IoU"], [math.nan, 50.0, math.nan])


def test_merge_equals_one_big_update():
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 6, size=(4, 7, 9))
    targets = rng.integers(0, 5, size=(4, 7, 9))
    targets[rng.random(targets.shape) < 0.1] = IGN
    big = ConfusionMatrix(5)
    big.update(preds.reshape(-1, 9), targets.reshape(-1, 9))
    parts = [ConfusionMatrix(5) for _ in range(4)]
    for cm, p, t in zip(parts, preds, targets):
        cm.update(p, t)
    merged = parts[0]
    for cm in parts[1:]:
        merged.merge(cm)
    assert np.array_equal(merged.matrix, big.matrix)
    assert np.array_equal(merged._full, big._full)
    np.testing.assert_equal(merged.compute(), big.compute())
    with pytest.raises(ValueError):
        merged.merge(ConfusionMatrix(4))


def test_torch_and_numpy_inputs_agree():
    a, b = ConfusionMatrix(4), ConfusionMatrix(4)
    a.update(P2, T2)
    b.update(torch.from_numpy(P2), torch.from_numpy(T2).to(torch.uint8))
    assert np.array_equal(a._full, b._full)
    with pytest.raises(TypeError):
        a.update(P2.astype(np.float32), T2)
    with pytest.raises(ValueError):
        a.update(P2[:1], T2)


def test_empty_and_reduce_distributed_noop(tmp_path):
    cm = ConfusionMatrix(2)
    m = cm.compute()
    assert math.isnan(m["mIoU"]) and math.isnan(m["aAcc"]) and math.isnan(m["IoU"][0])
    cm.update(P1.clip(0, 1), T1.clip(0, 1))
    before = cm._full.copy()
    cm.reduce_distributed()  # not initialised: nothing happens
    assert np.array_equal(cm._full, before)
    # a one-process gloo group exercises the all-reduce path
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        cm.reduce_distributed()
        single = IoUSingle(3)
        single.update(1, T1 == 1, T1)
        single.reduce_distributed()
    finally:
        torch.distributed.destroy_process_group()
    assert np.array_equal(cm._full, before)
    assert single.compute()["IoU"][1] == pytest.approx(100.0)


def test_as_table_is_markdown():
    cm = ConfusionMatrix(4)
    cm.update(P1, T1)
    text = cm.as_table(["sky", "road", "car", "cat"])
    lines = text.splitlines()
    assert lines[0].startswith("| class |") and "| sky | 66.67 | 66.67 |" in lines
    assert "| car | 0.00 | n/a |" in lines and "| cat | n/a | n/a |" in lines
    assert "aAcc 60.00 %" in text
    with pytest.raises(ValueError):
        cm.as_table(["too", "few"])


def test_iou_single_by_hand():
    metric = IoUSingle(3, background_index=0)
    t1 = np.array([[0, 1, 1], [2, IGN, 1]])
    assert metric.classes_to_query(t1) == [1, 2]  # background not queried
    # class 1 alone: gt {(0,1),(0,2),(1,2)}; pred {(0,1),(1,0),(1,2)} (the ignored pixel dropped)
    metric.update(1, np.array([[False, True, False], [True, True, True]]), t1)
    metric.update(2, np.array([[False, False, False], [True, False, False]]), t1)
    metric.update(0, np.ones((2, 3), bool), t1)  # background: not scored
    t2 = np.full((2, 3), 1)
    metric.update(1, torch.zeros(2, 3, dtype=torch.bool), torch.from_numpy(t2))  # missed entirely
    assert metric.intersection.tolist() == [0, 2, 1] and metric.union.tolist() == [0, 10, 1]
    m = metric.compute()
    # dataset-level per class: class 1 = 2 / (4 + 6) = 20 %, not the per-image mean (50 + 0) / 2
    approx_list(m["IoU"], [math.nan, 20.0, 100.0])
    assert m["mIoU_single"] == pytest.approx(60.0)
    assert m["queries"] == [0, 2, 1]


def test_iou_single_merge_and_errors():
    a, b, both = IoUSingle(3), IoUSingle(3), IoUSingle(3)
    t = np.array([[0, 1, 2]])
    a.update(1, np.array([[1, 1, 0]]), t)
    b.update(2, np.array([[0, 0, 1]]), t)
    both.update(1, np.array([[1, 1, 0]]), t)
    both.update(2, np.array([[0, 0, 1]]), t)
    np.testing.assert_equal(a.merge(b).compute(), both.compute())  # NaN-aware
    with pytest.raises(ValueError):
        a.update(3, np.zeros((1, 3), bool), t)
    with pytest.raises(ValueError):
        a.update(1, np.zeros((2, 3), bool), t)


def test_state_dict_restores_the_matrix_exactly():
    a = ConfusionMatrix(3)
    a.process(np.array([[0, 1, 7], [2, 2, 1]]), np.array([[0, 1, 1], [255, 2, 9]]))
    b = ConfusionMatrix(3)
    b.load_state_dict(a.state_dict())
    assert np.allclose(b.evaluate()["IoU"], a.evaluate()["IoU"], equal_nan=True)
    assert np.array_equal(b.matrix, a.matrix) and b.matrix.sum() == 3  # the out-of-range pixels are kept aside
    with pytest.raises(ValueError):
        ConfusionMatrix(4).load_state_dict(a.state_dict())
