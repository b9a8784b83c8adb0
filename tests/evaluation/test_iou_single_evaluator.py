"""IoUSingleEvaluator: IoU-single (the contrastive-concepts paper) through the one image loop, by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ovss.evaluation.evaluator import IoUSingleEvaluator, inference_on_dataset

T, F = True, False
# Classes 0 (background, never scored), 1 and 2; 255 is ignored.
#   a: gt [[0, 1], [2, 2]]
#      query 1 -> [[T, T], [F, F]]: gt {(0,1)}, pred {(0,0), (0,1)}: intersection 1, union 2
#      query 2 -> [[F, F], [T, F]]: gt {(1,0), (1,1)}, pred {(1,0)}: intersection 1, union 2
#   b: gt [[1, 1], [255, 2]]
#      query 1 -> [[F, T], [T, T]]: the ignored (1,0) does not count; gt {(0,0), (0,1)}, pred {(0,1), (1,1)}:
#                 intersection 1, union 3
#      query 2 -> nothing: gt {(1,1)}: intersection 0, union 1
# Class 1: 2 / 5 = 40 %; class 2: 1 / 3; mIoU_single (40 + 100/3) / 2; each class queried twice.
ITEMS = {
    "a": {"name": "a", "label": np.array([[0, 1], [2, 2]])},
    "b": {"name": "b", "label": np.array([[1, 1], [255, 2]])},
    "empty": {"name": "empty", "label": np.array([[0, 255]])},  # only background and ignored: no query
}
MASKS = {
    "a": {1: np.array([[T, T], [F, F]]), 2: torch.tensor([[F, F], [T, F]])},  # numpy or torch masks
    "b": {2: np.zeros((2, 2), bool), 1: np.array([[F, T], [T, T]])},  # any order of the classes
    "empty": {},
}


def predict(batch):
    return [MASKS[item["name"]] for item in batch]


def test_hand_computed_iou_single():
    ev = IoUSingleEvaluator(3, background_index=0)
    assert ev.classes_to_query(ITEMS["a"]) == [1, 2] and ev.classes_to_query(ITEMS["empty"]) == []
    done = inference_on_dataset([[ITEMS["a"]], [ITEMS["b"]]], predict, ev)
    m = ev.evaluate()
    assert done == 2 and m["images"] == 2 and m["queries"] == [0, 2, 2]
    assert math.isnan(m["IoU"][0])  # background: never scored
    assert m["IoU"][1:] == pytest.approx([40.0, 100 / 3])
    assert m["mIoU_single"] == pytest.approx((40.0 + 100 / 3) / 2)
    # an item with nothing to query answers {} and changes nothing
    inference_on_dataset([[ITEMS["empty"]]], predict, ev)
    np.testing.assert_equal(ev.evaluate(), m)


def test_an_output_with_other_classes_than_the_ground_truth_asks_is_refused_whole():
    ev = IoUSingleEvaluator(3, background_index=0)
    with pytest.raises(ValueError, match=r"masks for the classes \[1\], but its ground truth asks for \[1, 2\]"):
        ev.process([ITEMS["b"], ITEMS["a"]], [MASKS["b"], {1: MASKS["a"][1]}])
    with pytest.raises(ValueError, match=r"masks for the classes \[0, 1, 2\]"):  # background is not queried
        ev.process([ITEMS["a"]], [{0: MASKS["a"][1], **MASKS["a"]}])
    assert ev.evaluate()["queries"] == [0, 0, 0] and ev.evaluate()["images"] == 0  # b was not counted either


def test_state_dict_round_trip_resumes_to_the_uninterrupted_numbers():
    batches = [[ITEMS["a"]], [ITEMS["empty"], ITEMS["b"]]]
    whole = IoUSingleEvaluator(3, background_index=0)
    inference_on_dataset(batches, predict, whole)
    first = IoUSingleEvaluator(3, background_index=0)
    inference_on_dataset(batches[:1], predict, first)
    state = first.state_dict()
    assert {k: np.asarray(v).tolist() for k, v in state.items()} == {
        "intersection": [0, 1, 1], "union": [0, 2, 2], "queries": [0, 1, 1], "images": 1}
    inference_on_dataset(batches[:1], predict, first)  # later work does not reach a saved state
    resumed = IoUSingleEvaluator(3, background_index=0)
    resumed.load_state_dict(state)
    inference_on_dataset(batches[1:], predict, resumed)
    np.testing.assert_equal(resumed.evaluate(), whole.evaluate())
    np.testing.assert_equal(resumed.state_dict(), whole.state_dict())
    with pytest.raises(ValueError, match="does not fit 4 classes"):
        IoUSingleEvaluator(4).load_state_dict(state)
    with pytest.raises(ValueError, match="count of images"):
        IoUSingleEvaluator(3).load_state_dict({k: v for k, v in state.items() if k != "images"})


def test_reset_clears_every_count():
    ev = IoUSingleEvaluator(3, background_index=0)
    inference_on_dataset([[ITEMS["a"], ITEMS["b"]]], predict, ev)
    ev.reset()
    m = ev.evaluate()
    assert m["queries"] == [0, 0, 0] and m["images"] == 0 and math.isnan(m["mIoU_single"])
    inference_on_dataset([[ITEMS["a"], ITEMS["b"]]], predict, ev)  # and counts again from zero
    assert ev.evaluate()["mIoU_single"] == pytest.approx((40.0 + 100 / 3) / 2)


def test_ground_truth_under_another_key():
    ev = IoUSingleEvaluator(3, background_index=0, label_key="gt")
    inference_on_dataset([[{"name": n, "gt": ITEMS[n]["label"]} for n in "ab"]], predict, ev)
    assert ev.evaluate()["mIoU_single"] == pytest.approx((40.0 + 100 / 3) / 2)
