"""Captions name exactly the classes a scene shows."""
import numpy as np

from ovss.world import CLASSES, OBJECTS, STUFF, caption_for, classes_in_caption, make_scene
from ovss.world.classes import COLORS, PLURALS


def test_captions_name_exactly_what_is_in_the_scene():
    forms = set()
    for seed in range(200):
        s = make_scene(seed, 96)
        assert classes_in_caption(s.caption) == set(s.present), (seed, s.caption, s.present)
        shown = {CLASSES[c] for c, _ in s.instances}
        assert set(s.present) <= shown
        # Every visible object is named; stuff is named unless it covers a sliver of the image.
        assert {n for n in shown if n in OBJECTS} <= set(s.present)
        forms.add(s.caption.split()[0])
    assert len(forms) >= 5  # varied sentence forms


def test_captions_for_crops():
    s = make_scene(11, 160)
    rng = np.random.default_rng(0)
    for y0, x0 in [(0, 0), (80, 80), (40, 10)]:
        present = s.present_in(y0, x0, y0 + 80, x0 + 80)
        crop = s.labels[y0:y0 + 80, x0:x0 + 80]
        assert set(present) <= {CLASSES[c] for c in np.unique(crop) if c < len(CLASSES)}
        for _ in range(5):
            assert classes_in_caption(caption_for(present, rng)) == set(present)


def test_caption_for_any_combination():
    rng = np.random.default_rng(1)
    for _ in range(300):
        names = list(rng.choice(CLASSES, size=int(rng.integers(1, 6)), replace=False))
        present = {}
        for n in names:
            if n in OBJECTS:
                present[n] = {"count": int(rng.integers(1, 4)), "color": str(rng.choice(list(COLORS))),
                              "host": str(rng.choice(STUFF))}
            else:
                present[n] = {"area": 100}
        cap = caption_for(present, rng)
        assert classes_in_caption(cap) == set(names), cap
    assert caption_for({}, rng)


def test_colour_attribute_and_plurals():
    rng = np.random.default_rng(2)
    caps = [caption_for({"boat": {"count": 1, "color": "red", "host": "water"}, "water": {}}, rng) for _ in range(40)]
    assert any("red boat" in c for c in caps)
    caps = [caption_for({"bird": {"count": 2, "color": "blue", "host": "sky"}}, rng) for _ in range(20)]
    assert all(PLURALS["bird"] in c for c in caps)


def test_class_words_do_not_hide_in_each_other():
    words = set(CLASSES) | set(PLURALS.values())
    fillers = "a an the of on in under above over with and near there is photo picture image view front some two three four".split()
    for w in words:
        assert " " not in w
        assert all(w not in f for f in fillers if f != w)
        assert w not in COLORS
