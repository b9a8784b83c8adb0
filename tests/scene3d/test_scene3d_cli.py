"""The 3D commands end to end on two tiny rooms: make3d, data check, adapt train on 3D crops,
3d classify with and without the prompts, 3d eval; and one-line errors for bad input."""
import json

import numpy as np
import pytest

from ovss.cli import main
from ovss.scene3d.features import FeatureConfig
from ovss.scene3d.segments import load_scene_segments
from ovss.world import BASE_CLASSES, CLASSES

COMMON = ["--model", "ovss-tiny", "--pretrained", "none"]


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    root = tmp_path_factory.mktemp("sw3d") / "rooms"
    for split in ("train", "val"):
        assert main(["world", "make3d", "--world", "shapesworld", "--out", str(root), "--n", "1", "--split", split, "--objects", "3",
                     "--frames", "3", "--points", "2000", "--size", "60x80", "--no-progress"]) == 0
    return root


def test_scene_segments_are_the_crops_of_every_instance(rooms, tmp_path):
    segments = load_scene_segments(rooms, "train", 32, (120, 120, 120), FeatureConfig(top_k=2), cache_dir=False,
                                   progress=False)
    meta = json.loads(next((rooms / "train").iterdir()).joinpath("instances.json").read_text())
    assert segments.class_names == list(CLASSES)
    assert segments.images.shape[1:] == (32, 32, 3) and len(segments) % 3 == 0  # 3 levels per view
    assert len(segments) <= 3 * 2 * len(meta["instances"])  # at most top-k views per instance
    assert set(segments.labels.tolist()) <= {CLASSES.index(i["class"]) for i in meta["instances"]}
    cached = load_scene_segments(rooms, "train", 32, (120, 120, 120), FeatureConfig(top_k=2),
                                 cache_dir=tmp_path, progress=False)
    again = load_scene_segments(rooms, "train", 32, (120, 120, 120), FeatureConfig(top_k=2),
                                cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 1 and np.array_equal(cached.images.numpy(), again.images.numpy())
    assert np.array_equal(cached.images.numpy(), segments.images.numpy())


def test_train_classify_eval(rooms, tmp_path, capsys):
    assert main(["data", "check", str(rooms), "--dataset", "scene3d", "--split", "train"]) == 0
    assert "ok: 1 scene(s)" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["adapt", "train", "--method", "coop", "--dataset", "scene3d", "--data", str(rooms), "--split", "train",
                 "--eval-split", "val", "--out", str(run), "--epochs", "1", "--cache", "none", "--no-progress",
                 *COMMON]) == 0
    assert "| coop | 512 |" in capsys.readouterr().out
    info = json.loads((run / "prompts.json").read_text())
    assert info["base_classes"] == list(BASE_CLASSES) and info["data"]["dataset"] == "scene3d"

    scene = next((rooms / "val").iterdir())
    for name, extra in (("plain", []), ("coop", ["--prompts", str(run / "prompts.safetensors")])):
        assert main(["3d", "classify", str(scene), "--out", str(tmp_path / name), "--views", "1", "--no-progress",
                     *extra, *COMMON]) == 0
        assert "instances labelled" in capsys.readouterr().out
    result = json.loads((tmp_path / "coop" / "instances.json").read_text())
    assert result["prompts"]["method"] == "coop" and result["templates"] is None
    assert json.loads((tmp_path / "plain" / "instances.json").read_text())["templates"] == "single"
    assert main(["3d", "eval", str(tmp_path / "plain"), "--min-region", "1", "--out", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "| all |" in out and "| base |" in out and "| novel |" in out
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["base_classes"] == list(BASE_CLASSES) and scores["settings"]["features"]["top_k"] == 5


def _one_line_error(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_errors_are_one_line(rooms, tmp_path, capsys):
    scene = next((rooms / "val").iterdir())
    _one_line_error(capsys, ["3d", "classify", str(tmp_path), "--out", str(tmp_path / "o"), "--masks", "x.npy",
                             "--classes", "a, b"], "scene.ply is missing")
    np.save(tmp_path / "bad.npy", np.ones(7, dtype=np.int64))
    _one_line_error(capsys, ["3d", "classify", str(scene), "--out", str(tmp_path / "o"), "--masks",
                             str(tmp_path / "bad.npy"), *COMMON], "holds 7 instance ids but the scene has 2000 points")
    _one_line_error(capsys, ["3d", "classify", str(scene), "--out", str(tmp_path / "o"), "--top-k", "0", *COMMON],
                    "--top-k")
    _one_line_error(capsys, ["3d", "classify", str(scene), "--out", str(tmp_path / "o"), "--score", "max", *COMMON],
                    "unknown score 'max'")
    _one_line_error(capsys, ["3d", "eval", str(tmp_path)], "not found")
    _one_line_error(capsys, ["world", "make3d", "--out", str(tmp_path / "r"), "--n", "1", "--points", "10"],
                    "too few")


def test_a_rooms_world_picks_the_default_weights(rooms, tmp_path, capsys):
    """No --model/--pretrained: a ShapesWorld-3D room is classified with the weights trained on
    ShapesWorld, not the default shapesworld2 (which knows none of its 19 classes), and the result
    records the tag; a scene of no world gets the default."""
    from ovss.scene3d.classify import load_learner

    room = next((rooms / "val").iterdir())
    assert main(["3d", "classify", str(room), "--views", "0", "--no-progress", "--out", str(tmp_path / "p")]) == 0
    result = json.loads((tmp_path / "p" / "instances.json").read_text())
    assert result["model"] == {"name": "ovss-tiny", "pretrained": "shapesworld"}
    assert load_learner(world=None)[0].model.pretrained == "shapesworld2"
    assert load_learner(world="shapesworld2")[0].model.pretrained == "shapesworld2"
