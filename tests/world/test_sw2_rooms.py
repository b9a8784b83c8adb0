"""ShapesWorld 2 rooms: built from one context's stuff and things, wall things hang on a wall, and
the 3D commands (adapt train, 3d classify, 3d eval) take the rooms' own benchmark classes and base
split instead of ShapesWorld's. (Determinism and styles: test_world_rooms, for both worlds.)"""
import json

import numpy as np
import pytest

from ovss.cli import main
from ovss.errors import OvssError
from ovss.world import BASE_CLASSES
from ovss.world.rooms import make_room, render_frame, write_rooms
from ovss.world.sw2_classes import BENCHMARKS, CONTEXTS, SYNONYMS2, THING_ZONE, is_novel
from ovss.world.sw2_rooms import make_room2, room_contexts

COMMON = ["--model", "ovss-tiny", "--pretrained", "none"]


def test_a_room_is_one_context_labelled_with_the_benchmark():
    sw59 = set(BENCHMARKS["sw2-59"])
    for seed in range(6):
        room = make_room2(seed, objects=5, frames=2)
        ctx = CONTEXTS[room.info["context"]]
        by_kind = {k: [i["class"] for i in room.instances if i["kind"] == k] for k in ("floor", "wall", "object")}
        assert 1 <= len(by_kind["floor"]) <= 2 and set(by_kind["floor"]) <= set(ctx["ground"])
        assert len(by_kind["wall"]) == 4 and set(by_kind["wall"]) <= set(ctx["top"]) | set(ctx["far"])
        assert len(by_kind["object"]) == 5 and set(by_kind["object"]) <= set(ctx["things"]) & sw59
        assert [i["id"] for i in room.instances] == list(range(1, len(room.instances) + 1))
    # jungle has one sw2-59 thing (tree), underwater two (fish, rock): only the second can hold a room
    assert "jungle" not in room_contexts("sw2-59") and "underwater" in room_contexts("sw2-59")


def test_shapesworld2_rooms_are_not_shapesworld_rooms():
    # the same seed gives another layout: the two worlds draw from separate random streams
    assert make_room(5, objects=4, frames=3).info["room"] != make_room2(5, objects=4, frames=3).info["room"]


def test_wall_things_hang_flat_5_cm_in_front_of_a_wall():
    hung = 0
    for seed in range(40):
        room = make_room2(seed, objects=6, frames=1)
        sx, sy, height = room.size
        for p in room.primitives:
            kind = room.instances[p.instance - 1]["kind"]
            if kind != "object" or THING_ZONE[p.class_name] != "wall":
                continue
            hung += 1
            corners = p.origin + np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) @ p.axes
            # every corner is 5 cm from one wall plane (x = 0, x = sx, y = 0 or y = sy), on the room's side
            gaps = np.stack([corners[:, 0], sx - corners[:, 0], corners[:, 1], sy - corners[:, 1]])
            assert np.allclose(gaps.min(axis=0), 0.05) and (gaps.min(axis=0) > 0).all()
            assert corners[:, 2].min() >= 0.1 - 1e-9 and corners[:, 2].max() <= height
    assert hung >= 5  # windows, doors, paintings and clocks come up often enough to check


def test_write_rooms_of_shapesworld2_names_classes_and_split(tmp_path):
    out = write_rooms(tmp_path / "r", 1, split="val", objects=2, frames=2, points=1500, progress=False,
                      world="shapesworld2")
    meta = json.loads((out / "meta.json").read_text())
    classes = list(BENCHMARKS["sw2-59"])
    assert meta["world"] == "shapesworld2" and meta["benchmark"] == "sw2-59" and meta["classes"] == classes
    assert meta["base_classes"] == [c for c in classes if not is_novel(c)] and "sky" in meta["novel_classes"]
    lines = (out / "classes.txt").read_text().splitlines()
    assert len(lines) == 59 and lines[0] == "person, man, woman, people"
    room = json.loads(next((out / "val").iterdir()).joinpath("instances.json").read_text())
    assert room["base_classes"] == meta["base_classes"] and room["context"] in CONTEXTS
    with pytest.raises(OvssError, match="world, benchmark differ"):  # ShapesWorld rooms into the same folder
        write_rooms(out, 1, split="val", objects=2, frames=2, points=1500, progress=False)
    with pytest.raises(OvssError, match="no stuff classes"):
        write_rooms(tmp_path / "x", 1, world="shapesworld2", benchmark="sw2-20", progress=False)
    with pytest.raises(OvssError, match="applies to world=.shapesworld2. only"):
        write_rooms(tmp_path / "y", 1, benchmark="sw2-59", progress=False)
    with pytest.raises(OvssError, match="valid ShapesWorld 2 styles"):
        write_rooms(tmp_path / "z", 1, world="shapesworld2", style="foggy", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_3d_commands_take_the_rooms_classes_and_split(tmp_path, capsys):
    root = tmp_path / "rooms"
    for split in ("train", "val"):
        assert main(["world", "make3d", "--out", str(root), "--n", "1", "--split", split, "--objects", "3",
                     "--frames", "3", "--points", "2000", "--size", "60x80", "--world", "shapesworld2",
                     "--no-progress"]) == 0
    base = json.loads((root / "meta.json").read_text())["base_classes"]
    assert base != list(BASE_CLASSES)
    run = tmp_path / "run"
    assert main(["adapt", "train", "--method", "opendas", "--dataset", "scene3d", "--data", str(root), "--split",
                 "train", "--eval-split", "val", "--out", str(run), "--epochs", "1", "--cache", "none",
                 "--no-progress", *COMMON]) == 0
    log = (run / "train.log").read_text()
    assert "negative queries from ShapesWorld 2's hierarchy" in log and f"{len(base)} base classes" in log
    info = json.loads((run / "prompts.json").read_text())
    assert info["base_classes"] == base
    scene = next((root / "val").iterdir())
    assert main(["3d", "classify", str(scene), "--out", str(tmp_path / "plain"), "--views", "1", "--no-progress",
                 *COMMON]) == 0
    result = json.loads((tmp_path / "plain" / "instances.json").read_text())
    # the benchmark's classes with ShapesWorld 2's synonyms (ShapesWorld's "house" has others)
    assert result["classes"] == [[c, *SYNONYMS2[c]] for c in BENCHMARKS["sw2-59"]]
    assert main(["3d", "eval", str(tmp_path / "plain"), "--min-region", "1", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["base_classes"] == base
