"""ShapesWorld's vocabulary, written as data so every other module (and a reader) sees one truth.

Class names are single lowercase words and none is a substring of another or of a caption filler
word, so a caption can be checked by splitting it into words.
"""
from __future__ import annotations

# Stuff fills regions of the image; objects are drawn on top of it.
STUFF: tuple[str, ...] = ("sky", "grass", "water", "sand", "wall", "road", "snow")
OBJECTS: tuple[str, ...] = (
    "boat", "star", "sun", "cloud", "tree", "house", "car", "fish", "bird", "flower", "ball", "kite",
)
CLASSES: tuple[str, ...] = STUFF + OBJECTS
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
IGNORE_INDEX = 255

# Open-vocabulary split: a model is trained on base classes and tested on novel ones too.
# About a third is novel, mixing stuff and objects.
NOVEL_CLASSES: tuple[str, ...] = ("sand", "snow", "house", "fish", "flower", "kite")
BASE_CLASSES: tuple[str, ...] = tuple(c for c in CLASSES if c not in NOVEL_CLASSES)

# Extra names for classes.txt ("name, synonym, ..."); captions use only the main name.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "sky": (),
    "grass": ("lawn",),
    "water": ("sea", "lake"),
    "sand": ("beach",),
    "wall": ("brick wall",),
    "road": ("street",),
    "snow": (),
    "boat": ("ship", "sailboat"),
    "star": (),
    "sun": (),
    "cloud": (),
    "tree": (),
    "house": ("home", "building"),
    "car": ("automobile",),
    "fish": (),
    "bird": (),
    "flower": ("blossom",),
    "ball": ("beach ball",),
    "kite": (),
}

PLURALS: dict[str, str] = {
    name: ("fish" if name == "fish" else name + "es" if name.endswith("s") else name + "s")
    for name in OBJECTS
}

# Colour attributes used in captions, and the RGB each one is drawn with.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (245, 135, 25),
    "yellow": (250, 215, 35),
    "green": (40, 150, 45),
    "blue": (40, 80, 215),
    "purple": (130, 55, 170),
    "pink": (245, 130, 185),
    "white": (245, 245, 245),
    "gray": (135, 135, 140),
    "black": (30, 30, 35),
    "brown": (125, 80, 40),
}

OBJECT_COLORS: dict[str, tuple[str, ...]] = {
    "boat": ("red", "white", "blue", "yellow", "orange"),
    "star": ("yellow", "white", "orange", "pink"),
    "sun": ("yellow", "orange", "red"),
    "cloud": ("white", "gray"),
    "tree": ("green", "orange", "yellow"),
    "house": ("red", "white", "blue", "yellow", "brown"),
    "car": ("red", "blue", "yellow", "green", "white", "black", "gray"),
    "fish": ("orange", "yellow", "red", "purple", "pink", "gray"),
    "bird": ("black", "white", "blue", "red", "brown"),
    "flower": ("red", "pink", "purple", "yellow", "white", "blue"),
    "ball": ("red", "blue", "yellow", "green", "orange", "purple"),
    "kite": ("red", "blue", "green", "purple", "yellow", "orange"),
}

# Designed co-occurrence: P(the stuff an object stands on | object). Captions and images then
# co-occur the way real photos do (boats on water, cars on roads), with a few surprises.
HOSTS: dict[str, dict[str, float]] = {
    "boat": {"water": 0.9, "sand": 0.1},
    "star": {"sky": 0.95, "wall": 0.05},
    "sun": {"sky": 1.0},
    "cloud": {"sky": 1.0},
    "tree": {"grass": 0.8, "snow": 0.15, "sand": 0.05},
    "house": {"grass": 0.6, "snow": 0.2, "road": 0.2},
    "car": {"road": 0.85, "grass": 0.05, "sand": 0.05, "snow": 0.05},
    "fish": {"water": 0.95, "sand": 0.05},
    "bird": {"sky": 0.75, "grass": 0.1, "water": 0.1, "sand": 0.05},
    "flower": {"grass": 0.85, "wall": 0.1, "sand": 0.05},
    "ball": {"sand": 0.45, "grass": 0.35, "road": 0.1, "wall": 0.05, "snow": 0.05},
    "kite": {"sky": 0.9, "sand": 0.1},
}

# Scene layout: an optional backdrop on top, then one or two grounds, as horizontal bands.
BACKDROPS: tuple[str, ...] = ("sky", "wall")
GROUNDS: tuple[str, ...] = ("grass", "water", "sand", "road", "snow")
# Which grounds sit below each backdrop, and which grounds border each other.
BACKDROP_GROUNDS: dict[str, tuple[str, ...]] = {
    "sky": GROUNDS,
    "wall": ("road", "grass", "sand"),
}
GROUND_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "grass": ("road", "water", "snow", "sand"),
    "water": ("sand", "grass"),
    "sand": ("water", "road", "grass"),
    "road": ("grass", "snow", "sand"),
    "snow": ("road", "grass"),
}

# Width / height of each object's box, and whether its box stands on the anchor point ("base")
# or is centred on it ("center", for things that float or fly).
OBJECT_ASPECT: dict[str, float] = {
    "boat": 1.3, "star": 1.0, "sun": 1.0, "cloud": 1.7, "tree": 0.75, "house": 1.0,
    "car": 1.9, "fish": 1.7, "bird": 2.0, "flower": 0.6, "ball": 1.0, "kite": 0.7,
}
OBJECT_ANCHOR: dict[str, str] = {
    "boat": "base", "star": "center", "sun": "center", "cloud": "center", "tree": "base",
    "house": "base", "car": "base", "fish": "center", "bird": "center", "flower": "base",
    "ball": "base", "kite": "center",
}

# How captions relate an object to the stuff it is on.
PREPOSITIONS: dict[str, str] = {
    "sky": "in", "grass": "on", "water": "on", "sand": "on", "wall": "in front of",
    "road": "on", "snow": "in",
}

STYLES: tuple[str, ...] = ("default", "night", "sketch")


def _check() -> None:
    """Fail at import time if the tables above disagree with each other."""
    assert len(set(CLASSES)) == len(CLASSES) and len(CLASSES) < 255
    assert set(BASE_CLASSES) | set(NOVEL_CLASSES) == set(CLASSES)
    assert not set(BASE_CLASSES) & set(NOVEL_CLASSES)
    for a in CLASSES:
        for b in CLASSES:
            assert a == b or a not in b, (a, b)
    for table in (SYNONYMS,):
        assert set(table) == set(CLASSES)
    for table in (OBJECT_COLORS, HOSTS, OBJECT_ASPECT, OBJECT_ANCHOR):
        assert set(table) == set(OBJECTS)
    for obj, hosts in HOSTS.items():
        assert set(hosts) <= set(STUFF) and abs(sum(hosts.values()) - 1.0) < 1e-6, obj
    for colors in OBJECT_COLORS.values():
        assert set(colors) <= set(COLORS)
    assert set(BACKDROPS) | set(GROUNDS) == set(STUFF)


_check()
