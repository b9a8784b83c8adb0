"""ShapesWorld 2: its vocabulary, hierarchy, contexts, captions, determinism, styles and export."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from ovss.errors import OvssError
from ovss.world.export import read_labels, write_dataset
from ovss.world.sw2_classes import (
    BENCHMARKS, CATEGORY, CLASSES2, CONTEXTS, DEFAULT_BENCHMARK, NOVEL_CLASSES2, STUFF2, SUPER, SYNONYMS2,
    THINGS, ancestors, is_novel,
)
from ovss.world.sw2_render import icons
from ovss.world.sw2_scene import caption2, classes_in_caption2, make_object_image2, make_scene2, plural

SEEDS = range(500, 540)


@pytest.fixture(scope="module")
def scenes():
    return [make_scene2(s, size=160) for s in SEEDS]


def test_vocabulary_sizes():
    # 18 stuff + 171 things; benchmarks as VOC20, Context59 and ADE150 over the same scenes
    assert (len(STUFF2), len(THINGS), len(CLASSES2)) == (18, 171, 189)
    assert {k: len(v) for k, v in BENCHMARKS.items()} == {"sw2-20": 20, "sw2-59": 59, "sw2-150": 150, "sw2-all": 189}
    assert DEFAULT_BENCHMARK == "sw2-20"
    assert all(c in THINGS for c in BENCHMARKS["sw2-20"])  # VOC-like: things only
    assert set(STUFF2) <= set(BENCHMARKS["sw2-59"]) and set(STUFF2) <= set(BENCHMARKS["sw2-150"])
    assert set(BENCHMARKS["sw2-20"]) <= set(BENCHMARKS["sw2-59"])


def test_every_thing_has_an_icon():
    table = icons()
    assert list(table) == list(THINGS)
    for name in ("dog", "car", "potted plant"):
        icon = table[name]
        assert icon.shape == (96, 96, 4) and icon.dtype == np.uint8
        assert 0.1 < (icon[..., 3] > 127).mean() < 0.95  # a drawn shape, not an empty or full cell


def test_hierarchy_and_synonyms():
    assert ancestors("dog") == ("mammal", "animal")
    assert ancestors("bus") == ("road vehicle", "vehicle")
    assert ancestors("person") == ("person",)
    assert ancestors("sea") == ("water body", "stuff")
    assert all(CATEGORY[c] in SUPER for c in CLASSES2)
    # a synonym names one class only, and never another class's name
    owners: dict[str, str] = {}
    for name, syns in SYNONYMS2.items():
        for s in syns:
            assert s not in CLASSES2, s
            assert owners.setdefault(s, name) == name, s
    assert "puppy" in SYNONYMS2["dog"] and "couch" in SYNONYMS2["sofa"]


def test_base_novel_split_is_a_fixed_third():
    # by a hash of the name: adding a class never moves another
    assert 0.2 < len(NOVEL_CLASSES2) / len(CLASSES2) < 0.45
    assert any(c in STUFF2 for c in NOVEL_CLASSES2) and any(c in THINGS for c in NOVEL_CLASSES2)
    assert all(is_novel(c) for c in NOVEL_CLASSES2)
    assert is_novel("dog") == (__import__("zlib").crc32(b"dog") % 3 == 0)


def test_scene_is_deterministic_and_styles_change_pixels_only():
    a, b = make_scene2(123, size=128), make_scene2(123, size=128)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels) and a.caption == b.caption
    others = [make_scene2(123, size=128, style=s) for s in ("night", "sketch", "painting")]
    for o in others:
        assert np.array_equal(o.labels, a.labels) and o.caption == a.caption
        assert not np.array_equal(o.image, a.image)
    assert not np.array_equal(make_scene2(124, size=128).labels, a.labels)
    with pytest.raises(OvssError):
        make_scene2(1, style="watercolour")


def test_things_come_from_the_scene_context(scenes):
    for scene in scenes:
        things = {CLASSES2[c] for (c, _), attr in zip(scene.instances, scene.attributes) if attr}
        assert things <= set(CONTEXTS[scene.context]["things"]), (scene.context, things)
    assert len({s.context for s in scenes}) >= 8  # 40 scenes visit most of the 14 contexts


def test_labels_and_instances_agree(scenes):
    for scene in scenes:
        cover = np.zeros(scene.labels.shape, dtype=int)
        for c, mask in scene.instances:
            assert np.all(scene.labels[mask] == c)
            cover += mask
        assert np.all(cover[scene.labels != 255] == 1)  # disjoint, and cover every labelled pixel


def test_captions_name_only_present_classes_and_more_words(scenes):
    words, class_words = set(), set()
    for name in CLASSES2:
        class_words |= set(name.split()) | set(plural(name).split())
        for s in SYNONYMS2[name]:
            class_words |= set(s.split()) | set(plural(s).split())
    for scene in scenes:
        assert classes_in_caption2(scene.caption) <= set(scene.present), scene.caption
        words |= set(re.findall(r"[a-z]+", scene.caption))
    place_words = {w for ctx in CONTEXTS.values() for p in ctx["words"] for w in p.split()}
    adjectives = {a for ctx in CONTEXTS.values() for a in ctx["adjectives"]}
    # the caption corpus speaks of places, their look and the things' colours: words beyond classes
    assert len(words & place_words) >= 5 and len(words & adjectives) >= 5
    assert len(words - class_words) >= 40
    # complete captions (the training targets) name every present class
    for scene in scenes[:10]:
        text = caption2(scene.present, scene.context, np.random.default_rng(0), complete=True)
        assert classes_in_caption2(text) == set(scene.present), text


def test_caption_phrases_longest_match():
    assert classes_in_caption2("a palm tree and two trees near the sea") == {"palm tree", "tree", "sea"}
    assert classes_in_caption2("a puppy on the rug in a cozy lounge") == {"dog", "carpet"}
    assert classes_in_caption2("some purple grapes in a kitchen") == {"grapes"}


def test_object_image():
    image, mask, color = make_object_image2("car", seed=3, size=112)
    assert image.shape == (112, 112, 3) and mask.shape == (112, 112)
    assert 0.1 < mask.mean() < 0.9
    image2, mask2, _ = make_object_image2("sky", seed=3, size=112)
    assert not mask2.any()
    with pytest.raises(OvssError):
        make_object_image2("unicorn", seed=3)


def test_export_benchmarks_share_scenes(tmp_path):
    small = write_dataset(tmp_path / "b20", 4, seed=2, world="shapesworld2", progress=False)
    full = write_dataset(tmp_path / "ball", 4, seed=2, world="shapesworld2", benchmark="sw2-all", progress=False)
    meta = json.loads((small / "meta.json").read_text())
    assert meta["world"] == "shapesworld2" and meta["benchmark"] == "sw2-20" and len(meta["classes"]) == 20
    lines = (small / "classes.txt").read_text().splitlines()
    assert len(lines) == 20 and lines[0] == "person, man, woman, people"
    names = (small / "val.txt").read_text().splitlines()
    assert names == (full / "val.txt").read_text().splitlines()
    for name in names:
        a = read_labels(small / "annotations" / "val" / f"{name}.png")
        b = read_labels(full / "annotations" / "val" / f"{name}.png")
        assert set(np.unique(a)) <= set(range(20)) | {255}
        # the same pixels, relabelled: a class of the small list keeps its pixels exactly
        for k, c in enumerate(BENCHMARKS["sw2-20"]):
            assert np.array_equal(a == k, b == CLASSES2.index(c))
        with Image.open(small / "images" / "val" / f"{name}.png") as im:
            assert im.size == (224, 224)
    # a folder made for another benchmark is refused, not mixed
    with pytest.raises(OvssError, match="benchmark"):
        write_dataset(small, 4, seed=2, world="shapesworld2", benchmark="sw2-59", progress=False)
    with pytest.raises(OvssError, match="unknown benchmark"):
        write_dataset(tmp_path / "x", 4, world="shapesworld2", benchmark="sw2-7", progress=False)
    with pytest.raises(OvssError, match="shapesworld2"):
        write_dataset(tmp_path / "y", 4, benchmark="sw2-20", progress=False)


def test_shapesworld_export_meta_is_unchanged(tmp_path):
    # old run folders resume: ShapesWorld's meta has no world / benchmark keys
    out = write_dataset(tmp_path / "sw", 2, seed=1, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert "world" not in meta and "benchmark" not in meta and meta["world_version"] == 1
    assert write_dataset(tmp_path / "sw", 2, seed=1, progress=False) == out
