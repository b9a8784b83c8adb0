"""Mask features and classification: crops come from the right frames and boxes, embeddings are
averaged per mask, classes score their best synonym; a whole room runs through classify + eval."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovss.errors import OvssError
from ovss.scene3d.classify import classify_features, classify_scene
from ovss.scene3d.features import FeatureConfig, crop_plan, mask_features, square_crop
from ovss.scene3d.outputs import check_out_dir, evaluate_results, write_outputs
from ovss.scene3d.projection import compute_visibility
from ovss.scene3d.scene import masks_from_ids, read_scene
from ovss.text import parse_classes
from ovss.world.layout3d import write_frame

from .test_scene3d_projection import IDS, cube_scene

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class ColourLearner:
    """Stands in for a PromptLearner: an image's embedding is its normalised mean colour."""

    text_depth = 0

    def __init__(self):
        self.model = SimpleNamespace(image_size=(16, 16), mean=MEAN, std=STD, device="cpu", name="stub", pretrained="none")
        self.seen = 0

    def encode_images(self, x):
        self.seen += x.shape[0]
        rgb = x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
        return F.normalize(rgb.mean(dim=(2, 3)), dim=-1)


def coloured_cube(tmp_path):
    root = cube_scene(tmp_path / "cube")
    for i, (pose, colour) in enumerate(zip(("f", "a", "b"), ((200, 0, 0), (0, 200, 0), (0, 0, 200)))):
        pose_m = np.loadtxt(root / "pose" / f"{i}.txt")
        write_frame(root, i, np.full((20, 20, 3), colour, np.uint8), np.full((20, 20), 2.5), pose_m)
    return root


def test_square_crop_pads_with_the_fill():
    image = np.zeros((10, 20, 3), np.uint8)
    image[2:4, 5:15] = 255
    crop = square_crop(image, (5, 2, 15, 4), (9, 9, 9), None)
    assert crop.shape == (10, 10, 3)
    assert (crop[4:6] == 255).all() and (crop[:4] == 9).all() and (crop[6:] == 9).all()


def test_features_average_the_crops_of_the_top_views(tmp_path):
    scene = read_scene(coloured_cube(tmp_path))
    masks, _ = masks_from_ids(IDS)
    vis = compute_visibility(scene, masks)
    cfg = FeatureConfig(top_k=5, levels=3, batch_size=4)
    plan = crop_plan(vis, masks, cfg)
    assert plan == {0: [(0, (6, 6, 15, 15))], 2: [(1, (6, 6, 15, 15))]}
    learner = ColourLearner()
    features, info = mask_features(scene, masks, learner, cfg, vis)
    assert learner.seen == 6  # 2 masks x 1 view x 3 levels
    assert features[0].tolist() == pytest.approx([1, 0, 0], abs=0.02)  # front face: the red frame
    assert features[1].tolist() == pytest.approx([0, 0, 1], abs=0.02)  # back face: the blue frame
    assert features[2].tolist() == [0, 0, 0]  # the sides: no frame sees them
    assert [i["views"] for i in info] == [[0], [2], []] and [i["crops"] for i in info] == [3, 3, 0]


def test_classes_score_their_best_synonym():
    features = torch.tensor([[1.0, 0, 0], [0, 0, 1]])
    text = torch.tensor([[1.0, 0, 0], [0.6, 0.8, 0], [0, 0.8, 0.6], [0, 0, 1]])  # class 0: q0, q1; class 1: q2, q3
    probs = classify_features(features, text, [0, 0, 1, 1], 2, scale=10.0)
    # mask 0: best of class 0 is 1.0, of class 1 is 0.0 -> softmax(10, 0)
    assert probs[0].tolist() == pytest.approx([1 / (1 + np.exp(-10)), 1 - 1 / (1 + np.exp(-10))], abs=1e-6)
    assert probs[1].argmax() == 1


def test_classify_write_and_evaluate_a_room(tmp_path, tiny_random):
    from ovss.opendas import PromptLearner
    from ovss.world.rooms import write_rooms

    out = write_rooms(tmp_path / "rooms", 1, objects=3, frames=3, points=3000, frame_size=(60, 80), progress=False)
    room = next((out / "val").iterdir())
    classes = parse_classes("sky, grass, water, sand, wall, road, snow, boat, star, sun, cloud, tree, house, car, "
                            "fish, bird, flower, ball, kite")
    learner = PromptLearner.unprompted(tiny_random)
    result, scene, masks, vis = classify_scene(room, room / "instance_ids.npy", classes, learner,
                                               FeatureConfig(batch_size=8))
    assert len(result["instances"]) == masks.shape[1] == len(scene.meta["instances"])
    seen = [i for i in result["instances"] if i["crops"]]
    assert seen and all(i["label"] in classes.names and 0 < i["score"] <= 1 for i in seen)
    assert all(i["crops"] == 3 * len(i["views"]) and len(i["views"]) <= 5 for i in result["instances"])
    assert result["features"]["top_k"] == 5 and result["features"]["refine"] == "box"
    folder = write_outputs(tmp_path / "pred", result, scene, masks, vis, views=2)
    assert (folder / "labelled.ply").is_file() and 1 <= len(list((folder / "views").iterdir())) <= 2
    scores = evaluate_results([folder], base=["sky", "wall", "road", "boat", "car"], min_region=1)
    assert 0 <= scores["AP"] <= 100 and scores["segments"]["segments"] == len(seen)
    # with every label replaced by the truth, AP is 100
    data = json.loads((folder / "instances.json").read_text())
    truth = {i["id"]: i["class"] for i in scene.meta["instances"]}
    for inst in data["instances"]:
        inst["label"], inst["class_index"], inst["score"] = truth[inst["id"]], classes.names.index(truth[inst["id"]]), 1.0
    (folder / "instances.json").write_text(json.dumps(data))
    perfect = evaluate_results([folder], min_region=1)
    assert perfect["AP"] == pytest.approx(100.0) and perfect["segments"]["Acc"] == pytest.approx(100.0)


def test_out_dir_of_someone_else_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "instances.json").write_text("{}")
    with pytest.raises(OvssError, match="not written by"):
        check_out_dir(tmp_path / "x")
    assert check_out_dir(tmp_path / "new") == tmp_path / "new"
