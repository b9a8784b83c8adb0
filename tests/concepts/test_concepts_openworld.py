"""Open-world labels (255 elsewhere) and IoU-single against a hand computation."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ovss.concepts import (
    OracleSource, contrastive_concepts, evaluate_iou_single, open_world_classes, segment_open_world,
)
from ovss.segment import Segmenter


@pytest.fixture(scope="module")
def segmenter(tiny_random):
    return Segmenter(tiny_random, preset="shapesworld")


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def test_query_pixels_keep_their_index_and_all_others_are_unlabelled(segmenter, image):
    concepts = ["water", "sky", "background"]
    labels = segment_open_world(segmenter, image, ["boat", "car"], concepts)
    closed = segmenter.predict(image, ["boat", "car", *concepts]).labels
    assert labels.shape == (48, 64)
    assert set(labels.unique().tolist()) <= {0, 1, 255}
    assert torch.equal(labels == 0, closed == 0) and torch.equal(labels == 1, closed == 1)
    assert torch.equal(labels == 255, closed >= 2)
    # image None reuses the encoded image; output_size resizes
    again = segment_open_world(segmenter, None, ["boat", "car"], concepts)
    assert torch.equal(again, labels)
    assert segment_open_world(segmenter, None, "boat", concepts, output_size=(24, 32)).shape == (24, 32)


def test_concepts_repeating_a_query_or_synonym_are_left_out():
    classes, n = open_world_classes([["boat", "ship"]], ["Ship", "water", "water", "background"])
    assert n == 1 and classes.names == ["boat", "water", "background"]


def test_low_probability_pixels_become_unlabelled_not_query_zero(tiny_random, image):
    seg = Segmenter(tiny_random, preset="shapesworld", prob_thd=0.999)
    labels = segment_open_world(seg, image, "boat", ["water", "background"])
    assert (labels == 255).all()


class StubSegmenter:
    """Answers each single query with a fixed mask: 0 (the query) inside it, 1 (a concept) outside."""

    preset = SimpleNamespace(prob_thd=0.0)

    def __init__(self, masks):
        self.masks = masks
        self.seen = []

    def set_image(self, image):
        self.image = image

    def predict(self, image, classes, output_size=None):
        self.seen.append(classes.names)
        mask = self.masks[self.image["id"]][classes.names[0]]
        return SimpleNamespace(labels=torch.from_numpy(np.where(mask, 0, 1)), probs=None)


def test_iou_single_by_hand():
    B, O, W, X = 0, 1, 2, 255  # background, boat, water, ignore
    label_a = np.array([[B, B, O, O],
                        [W, W, O, O],
                        [W, W, W, W]])
    label_b = np.array([[B, B, B, B],
                        [B, W, W, X],
                        [W, W, W, X]])
    left = np.zeros((3, 4), bool)
    left[:, :2] = True
    top = np.zeros((3, 4), bool)
    top[0] = True
    masks = {
        "a": {"boat": top, "water": ~top},
        "b": {"water": left, "boat": top},  # boat is not in b, so never queried there
    }
    items = [{"image": {"id": "a"}, "label": label_a}, {"image": {"id": "b"}, "label": label_b}]
    seg = StubSegmenter(masks)
    out = evaluate_iou_single(seg, items, ["background", "boat", "water"], "oracle", background_index=0,
                              similarity=lambda a, b: np.zeros((len(a), len(b))))
    # boat, image a: predicted top row (4 px), truth 4 px; intersection 2, union 6
    # water, image a: predicted rows 1-2 (8 px), truth 6 px inside it: intersection 6, union 8
    # water, image b: predicted left half (6 px), truth 5 px (ignored pixels do not count):
    #   intersection {(1,1), (2,0), (2,1)} = 3; union 6 + 5 - 3 = 8
    assert out["IoU"]["boat"] == pytest.approx(100 * 2 / 6)
    assert out["IoU"]["water"] == pytest.approx(100 * (6 + 3) / (8 + 8))
    assert out["IoU"]["background"] is None  # never scored
    assert out["mIoU_single"] == pytest.approx((100 * 2 / 6 + 100 * 9 / 16) / 2)
    assert out["queries"] == {"background": 0, "boat": 1, "water": 2}
    assert out["images"] == 2
    # each class queried alone, contrasted with the dataset's other classes (oracle)
    assert seg.seen == [["boat", "background", "water"], ["water", "background", "boat"], ["water", "background", "boat"]]
    assert out["concepts"] == {"boat": ["background", "water"], "water": ["background", "boat"]}


def test_oracle_excludes_the_query_and_its_synonyms():
    source = OracleSource([["water", "sea"], "boat", "sky"])
    assert contrastive_concepts("sea", source).concepts == ["boat", "sky"]  # no "background" for the oracle


def test_iou_single_end_to_end_on_shapesworld(segmenter):
    from ovss.world import CLASSES, make_scene

    scenes = [make_scene(s, 64) for s in (1, 2)]
    items = [{"image": s.image, "label": s.labels} for s in scenes]
    out = evaluate_iou_single(segmenter, items, list(CLASSES), "background")
    assert out["source"] == "background" and out["images"] == 2
    present = {CLASSES[c] for s in scenes for c in np.unique(s.labels) if c != 255}
    assert {n for n, k in out["queries"].items() if k} == present
    assert 0.0 <= out["mIoU_single"] <= 100.0
    assert all(v == ["background"] for v in out["concepts"].values())


def test_iou_single_goes_through_the_one_image_loop(monkeypatch):
    from ovss.concepts import openworld

    calls = []
    real = openworld.inference_on_dataset

    def counting(*args, **kwargs):
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(openworld, "inference_on_dataset", counting)
    B, O, X = 0, 1, 255
    masks = {"a": {"boat": np.eye(2, dtype=bool)}, "c": {"boat": np.ones((2, 2), bool)}}
    items = ({"image": {"id": k}, "label": lab} for k, lab in
             [("a", np.array([[O, B], [O, O]])), ("b", np.full((2, 2), X)), ("c", np.array([[B, O], [X, B]]))])
    seg = StubSegmenter(masks)
    out = evaluate_iou_single(seg, items, ["background", "boat"], "oracle", background_index=0,
                              similarity=lambda a, b: np.zeros((len(a), len(b))))
    assert calls == [3]  # one call of the loop, all three images (b, with nothing to query, is not encoded)
    assert out["images"] == 2 and out["queries"] == {"background": 0, "boat": 2} and len(seg.seen) == 2
    # a: truth 3 px, predicted the diagonal (2 px, both boat): 2 / 3; c: truth 1 px, predicted 3 valid px: 1 / 3
    assert out["IoU"]["boat"] == pytest.approx(100 * 3 / 6)
