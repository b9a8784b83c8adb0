"""ShapesWorld scenes: deterministic, self-consistent labels, style-independent geometry."""
import numpy as np
import pytest

from ovss.errors import OvssError
from ovss.world import (
    BASE_CLASSES, CLASS_INDEX, CLASSES, IGNORE_INDEX, NOVEL_CLASSES, OBJECTS, STUFF, STYLES,
    make_object_image, make_scene,
)
from ovss.world.classes import HOSTS, SYNONYMS

SEEDS = range(40)


@pytest.fixture(scope="module")
def scenes():
    return [make_scene(s, 96) for s in SEEDS]


def test_same_seed_same_scene():
    a, b = make_scene(123), make_scene(123)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert a.caption == b.caption and len(a.instances) == len(b.instances)
    assert all(np.array_equal(m1, m2) for (_, m1), (_, m2) in zip(a.instances, b.instances))


def test_different_seeds_differ():
    a, b = make_scene(1), make_scene(2)
    assert not np.array_equal(a.image, b.image)
    assert not np.array_equal(a.labels, b.labels)


def test_array_types_and_shapes():
    s = make_scene(5, size=(64, 96))
    assert s.image.shape == (64, 96, 3) and s.image.dtype == np.uint8
    assert s.labels.shape == (64, 96) and s.labels.dtype == np.uint8
    assert s.seed == 5 and s.style == "default"
    for c, m in s.instances:
        assert m.shape == (64, 96) and m.dtype == bool


def test_labels_agree_with_instances(scenes):
    for s in scenes:
        union = np.zeros(s.labels.shape, dtype=int)
        for c, m in s.instances:
            assert m.any()
            assert (s.labels[m] == c).all()
            union += m
        assert union.max() <= 1, "instance masks overlap"
        assert np.array_equal(union == 1, s.labels != IGNORE_INDEX)
        assert set(np.unique(s.labels)) <= set(range(len(CLASSES))) | {IGNORE_INDEX}


def test_scene_contents_are_plausible(scenes):
    for s in scenes:
        stuff = [c for c, _ in s.instances if CLASSES[c] in STUFF]
        objects = [c for c, _ in s.instances if CLASSES[c] in OBJECTS]
        assert 1 <= len(stuff) <= 3 and len(set(stuff)) == len(stuff)
        assert len(objects) <= 4
    assert sum(any(CLASSES[c] in OBJECTS for c, _ in s.instances) for s in scenes) > 0.9 * len(scenes)


def test_objects_have_reasonable_sizes(scenes):
    side = 96
    for s in scenes:
        for (c, m), a in zip(s.instances, s.attributes):
            if CLASSES[c] in OBJECTS:
                ys, xs = np.nonzero(m)
                assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 0.4 * side
                assert a["color"] and a["host"] in STUFF


def test_every_class_appears():
    seen = set()
    for s in range(300):
        seen |= {CLASSES[c] for c, _ in make_scene(s, 64).instances}
    assert seen == set(CLASSES)


@pytest.mark.parametrize("style", [s for s in STYLES if s != "default"])
def test_styles_change_pixels_not_labels(style):
    for seed in (0, 7, 21):
        a, b = make_scene(seed, 96), make_scene(seed, 96, style=style)
        assert np.array_equal(a.labels, b.labels)
        assert a.caption == b.caption
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 20
        assert b.style == style


def test_night_is_dark_and_sketch_is_pale():
    imgs = {st: np.stack([make_scene(s, 96, st).image for s in range(10)]) for st in STYLES}
    assert imgs["night"].mean() < 0.6 * imgs["default"].mean()
    assert imgs["night"][..., 2].mean() > imgs["night"][..., 0].mean()  # bluish
    sat = lambda x: (x.max(-1).astype(int) - x.min(-1)).mean()
    assert sat(imgs["sketch"]) < 0.3 * sat(imgs["default"])
    assert imgs["sketch"].mean() > imgs["default"].mean()


def test_unknown_style_is_a_user_error():
    with pytest.raises(OvssError, match="default, night, sketch"):
        make_scene(0, style="cartoon")


def test_base_novel_split_is_a_partition():
    assert set(BASE_CLASSES) | set(NOVEL_CLASSES) == set(CLASSES)
    assert not set(BASE_CLASSES) & set(NOVEL_CLASSES)
    for part in (BASE_CLASSES, NOVEL_CLASSES):
        assert set(part) & set(STUFF) and set(part) & set(OBJECTS)
    assert 0.2 < len(NOVEL_CLASSES) / len(CLASSES) < 0.45
    assert CLASSES == STUFF + OBJECTS and len(STUFF) >= 6 and len(OBJECTS) >= 12
    assert set(SYNONYMS) == set(CLASSES)


def test_designed_co_occurrence():
    with_boat = with_boat_and_water = with_car = with_car_and_road = 0
    for seed in range(300):
        names = {CLASSES[c] for c, _ in make_scene(seed, 64).instances}
        if "boat" in names:
            with_boat += 1
            with_boat_and_water += "water" in names
        if "car" in names:
            with_car += 1
            with_car_and_road += "road" in names
    assert with_boat >= 15 and with_car >= 15
    assert with_boat_and_water / with_boat >= 0.8
    assert with_car_and_road / with_car >= 0.75
    assert HOSTS["boat"]["water"] >= 0.8


@pytest.mark.parametrize("name", OBJECTS)
def test_object_image(name):
    img, mask = make_object_image(name, seed=3, size=112)
    assert img.shape == (112, 112, 3) and mask.shape == (112, 112) and mask.dtype == bool
    ys, xs = np.nonzero(mask)
    extent = max(np.ptp(ys), np.ptp(xs)) + 1
    assert 0.35 * 112 <= extent <= 0.85 * 112
    img2, mask2 = make_object_image(name, seed=3, size=112)
    assert np.array_equal(img, img2) and np.array_equal(mask, mask2)
    _, mask_night = make_object_image(name, seed=3, size=112, style="night")
    assert np.array_equal(mask, mask_night)


def test_object_image_unknown_class():
    with pytest.raises(OvssError, match="boat"):
        make_object_image("dragon", 0)


def test_small_sizes_and_timing():
    import time

    make_scene(0)
    t = time.perf_counter()
    for s in range(20):
        make_scene(s)
    # Generous bound (CI machines are busy); the design target is a few ms per scene.
    assert (time.perf_counter() - t) / 20 < 0.05
    assert make_scene(9, 32).labels.shape == (32, 32)
