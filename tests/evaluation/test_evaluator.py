"""The one image loop and its evaluators: hand-computed scores, the output-count check, checkpoints
(state_dict), one matrix per key, reset, and that every mIoU site of ovss goes through the loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ovss.evaluation import evaluator as loop
from ovss.evaluation.evaluator import EvaluatorsByKey, SemSegEvaluator, inference_on_dataset

# Three items of a 3-class problem; PRED is what the fake model answers for each.
#   a: gt [[0, 0], [1, 1]]      pred [[0, 1], [1, 1]]
#   b: gt [[2, 2], [255, 0]]    pred [[2, 0], [1, 0]]   (the 255 pixel is not scored)
#   c: gt [[1]]                 pred [[7]]              (out of range: never correct, no class's prediction)
# Confusion (rows gt, columns pred): gt 0 -> pred 0 twice, pred 1 once; gt 1 -> pred 1 twice, once
# out of range; gt 2 -> pred 2 once, pred 0 once. Intersections 2, 2, 1; label areas 3, 3, 2;
# predicted areas 3, 3, 1; unions 4, 4, 2: IoU 50 % for every class, so mIoU 50 %.
# Acc 2/3, 2/3, 1/2: mAcc 100 * 11/18 %; aAcc 5 of 8 labelled pixels = 62.5 %.
ITEMS = {
    "a": {"name": "a", "label": np.array([[0, 0], [1, 1]])},
    "b": {"name": "b", "label": np.array([[2, 2], [255, 0]])},
    "c": {"name": "c", "label": np.array([[1]])},
}
PRED = {"a": np.array([[0, 1], [1, 1]]), "b": np.array([[2, 0], [1, 0]]), "c": np.array([[7]])}
BATCHES = [[ITEMS["a"], ITEMS["b"]], [ITEMS["c"]]]


def predict(batch):
    return [PRED[item["name"]] for item in batch]


class Bar:
    def __init__(self):
        self.updates = []

    def update(self, n):
        self.updates.append(n)


def test_loop_gives_the_hand_computed_scores_and_calls_the_hooks():
    ev = SemSegEvaluator(3)
    seen, after, bar = [], [], Bar()
    done = inference_on_dataset(BATCHES, predict, ev, bar=bar, before_batch=lambda b: seen.append([i["name"] for i in b]),
                                after_batch=lambda b, s: after.append(([i["name"] for i in b], s >= 0.0)))
    m = ev.evaluate()
    assert done == 3 and seen == [["a", "b"], ["c"]] and after == [(["a", "b"], True), (["c"], True)]
    assert bar.updates == [2, 1]
    assert m["IoU"] == pytest.approx([50.0, 50.0, 50.0]) and m["mIoU"] == pytest.approx(50.0)
    assert m["Acc"] == pytest.approx([200 / 3, 200 / 3, 50.0]) and m["mAcc"] == pytest.approx(1100 / 18)
    assert m["aAcc"] == pytest.approx(62.5)
    assert ev.summed().matrix.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]  # the out-of-range pixel is kept aside
    assert ev.evaluate() == m  # evaluating does not change what was accumulated


def test_ground_truth_under_another_key():
    ev = SemSegEvaluator(3, label_key="gt")
    batches = [[{"name": n, "gt": ITEMS[n]["label"]} for n in "abc"]]
    inference_on_dataset(batches, predict, ev)
    assert ev.evaluate()["mIoU"] == pytest.approx(50.0)


@pytest.mark.parametrize("wrong", [lambda b: predict(b)[:-1], lambda b: predict(b) + [PRED["a"]]])
def test_wrong_number_of_outputs_raises_before_scoring(wrong):
    ev = SemSegEvaluator(3)
    with pytest.raises(RuntimeError, match=r"^method x returned (1|3) outputs for 2 images$"):
        inference_on_dataset(BATCHES, wrong, ev, name="method x")
    assert ev.summed().matrix.sum() == 0  # the bad batch was not counted


def test_state_dict_round_trip_resumes_to_the_uninterrupted_numbers():
    whole = SemSegEvaluator(3)
    inference_on_dataset(BATCHES, predict, whole)
    first = SemSegEvaluator(3)
    inference_on_dataset(BATCHES[:1], predict, first)
    state = first.state_dict()
    inference_on_dataset(BATCHES[:1], predict, first)  # later work does not reach a saved state
    resumed = SemSegEvaluator(3)
    resumed.load_state_dict(state)
    inference_on_dataset(BATCHES[1:], predict, resumed)
    np.testing.assert_equal(resumed.evaluate(), whole.evaluate())
    assert resumed.summed().matrix.tolist() == whole.summed().matrix.tolist()
    with pytest.raises(ValueError):
        SemSegEvaluator(4).load_state_dict(state)


def test_evaluators_by_key_keep_separate_counts():
    # key "same": the model's answers above; key "all0": every pixel called class 0
    def predict_both(batch):
        return [{"same": p, "all0": np.zeros_like(p)} for p in predict(batch)]

    ev = EvaluatorsByKey({"same": SemSegEvaluator(3), "all0": SemSegEvaluator(3)})
    inference_on_dataset(BATCHES, predict_both, ev)
    scores = ev.evaluate()
    assert scores["same"]["mIoU"] == pytest.approx(50.0)
    # all 0: class 0 intersect 3, union 8 (every labelled pixel predicted 0); classes 1 and 2 never right
    assert scores["all0"]["IoU"] == pytest.approx([37.5, 0.0, 0.0]) and scores["all0"]["aAcc"] == pytest.approx(37.5)

    copy = EvaluatorsByKey({"same": SemSegEvaluator(3), "all0": SemSegEvaluator(3)})
    copy.load_state_dict(ev.state_dict())
    np.testing.assert_equal(copy.evaluate(), scores)
    with pytest.raises(ValueError):
        copy.load_state_dict({"same": ev.state_dict()["same"]})
    with pytest.raises(KeyError, match="no prediction for key"):
        ev.process([ITEMS["c"]], [{"same": PRED["c"]}])


def test_reset_clears_every_count():
    ev = SemSegEvaluator(3)
    by_key = EvaluatorsByKey({1: SemSegEvaluator(3), 2: SemSegEvaluator(3)})
    inference_on_dataset(BATCHES, predict, ev)
    inference_on_dataset(BATCHES, lambda b: [{1: p, 2: p} for p in predict(b)], by_key)
    ev.reset()
    by_key.reset()
    assert ev.summed().matrix.sum() == 0 and math.isnan(ev.evaluate()["mIoU"])
    assert all(math.isnan(s["mIoU"]) for s in by_key.evaluate().values())
    inference_on_dataset(BATCHES, predict, ev)  # and counts again from zero
    assert ev.evaluate()["mIoU"] == pytest.approx(50.0)


# ----------------------------------------------------------------------------- every site uses the loop


@pytest.fixture
def loop_calls(monkeypatch):
    """Counts the loop's calls and the images each one did, wherever a site took the name from."""
    from ovss.evaluation import runner
    from ovss.openbench import classcount
    from ovss.opendas import proposals
    from ovss.ovsnet import train
    from ovss.tinyclip import quality

    calls = []
    real = loop.inference_on_dataset

    def counting(*args, **kwargs):
        calls.append(real(*args, **kwargs))
        return calls[-1]

    for module in (loop, runner, classcount, proposals, train, quality):
        if hasattr(module, "inference_on_dataset"):
            monkeypatch.setattr(module, "inference_on_dataset", counting)
    return calls


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    from ovss.world import write_dataset

    return write_dataset(tmp_path_factory.mktemp("sw") / "sw", n=2, seed=1, split="val", size=48, progress=False)


def test_the_benchmark_runner_goes_through_the_loop(loop_calls, small_world, tiny_random, tmp_path):
    from ovss.evaluation.runner import run_benchmark

    run_benchmark(tiny_random, [("shapesworld", small_world)], tmp_path / "run", corruptions="fog", preset="shapesworld",
                  workers=0, progress=False)
    assert loop_calls == [2, 2]  # original and fog, two images each


def test_class_count_goes_through_the_loop(loop_calls, small_world, tiny_random):
    from ovss.data import SegDataset
    from ovss.openbench.classcount import class_count_curve
    from ovss.segment import Segmenter

    seg = Segmenter(tiny_random, preset="shapesworld", dataset="shapesworld")
    result = class_count_curve(seg, SegDataset("shapesworld", small_world, "val"), [0, 2], ["zz top", "yy"], progress=False)
    assert loop_calls == [2] and [r["classes"] for r in result["rows"]] == [19, 21]


def test_world_quality_goes_through_the_loop(loop_calls, tiny_random):
    from ovss.tinyclip.quality import dense_miou

    dense_miou(tiny_random, n=1, head="clip")
    assert loop_calls == [1]


def test_ovsnet_evaluation_goes_through_the_loop(loop_calls):
    from ovss.ovsnet import OVSNet, OVSNetConfig, evaluate
    from ovss.ovsnet.train import EncodedSet
    from ovss.text import ClassList

    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(3, 6, 6, 16), dim=-1).half()
    data = EncodedSet(feats, [np.zeros((12, 12), np.uint8)] * 3, 0.0)
    model = OVSNet(16, OVSNetConfig(queries=4, hidden=32)).eval()
    text = torch.nn.functional.normalize(torch.randn(2, 16), dim=-1)
    evaluate(model, data, ClassList((("a",), ("b",))), text, torch.tensor([True, False]), 50.0, batch_size=2)
    assert loop_calls == [3]


def test_opendas_proposals_go_through_the_loop(loop_calls, small_world, tiny_random):
    from ovss.data import SegDataset
    from ovss.opendas import PromptLearner, segments_miou

    segments_miou(PromptLearner.unprompted(tiny_random), SegDataset("shapesworld", small_world, "val"), "gt", progress=False)
    assert loop_calls == [2]


def test_a_half_written_evaluator_fails_when_created():
    """DatasetEvaluator is abstract: a subclass missing one of the five methods cannot be created."""
    import pytest

    from ovss.evaluation.evaluator import DatasetEvaluator

    class NoCheckpoint(DatasetEvaluator):
        def reset(self): ...
        def process(self, inputs, outputs): ...
        def evaluate(self): return {}

    with pytest.raises(TypeError, match="state_dict"):
        NoCheckpoint()
