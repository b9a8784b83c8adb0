"""ShapesWorld 2 scenes: a context (kitchen, street, beach...) picks the stuff bands and the things
that co-occur; things stand on the ground (larger nearer the bottom), fly in the sky, hang on the
wall, float on or swim in the sea. Labels are exact; captions name the place, the things with
attributes (colour, size, count, side) and some stuff, in words beyond any benchmark's class list.

A scene is a pure function of its seed and size; the style changes pixels only. The ignore rule is
ShapesWorld's: a thing whose visible part is under ``MIN_OBJECT_PIXELS`` is labelled 255.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import OvssError
from .scene import MIN_OBJECT_PIXELS, MIN_STUFF_FRACTION, Scene, _pick, _size, paint_things
from .sw2_classes import (
    BENCHMARKS, CLASS_INDEX2, CLASSES2, CONTEXTS, RECOLOR, STUFF2, STYLES2, SYNONYMS2, THING_ZONE, THINGS,
)
from .sw2_render import PERMUTATIONS, color_name, icon_image, render2

MAX_THINGS = 6
# Real photo collections are not uniform over classes: people, cars, dogs... are everywhere. The
# VOC-like classes of the default benchmark are drawn this many times more often than the rest
# of a context's things, so that benchmark has its classes in most scenes, as VOC has.
COMMON = frozenset(BENCHMARKS["sw2-20"])
COMMON_WEIGHT = 4.0
THING_SIZE = (0.14, 0.42)  # long side of a thing's box, as a fraction of the image side
_ASPECT = 1.0  # the icons are square cells; the drawn shape inside keeps its own proportions
_INDOOR = {"wall", "tiles", "wallpaper"}


class Scene2(Scene):
    """A ShapesWorld 2 scene (``Scene``'s fields; ``attributes`` of things hold "color", "host",
    "size" and "side"; ``context`` is the place)."""

    context: str = ""

    def present_in(self, y0: int, x0: int, y1: int, x1: int) -> dict[str, dict]:
        return present_classes2(self.instances, self.attributes, (y0, x0, y1, x1))


def check_style2(style: str) -> str:
    if style not in STYLES2:
        raise OvssError(f"unknown style {style!r}; valid ShapesWorld 2 styles: {', '.join(STYLES2)}")
    return style


# ---------------------------------------------------------------- layout

def _bands(rng: np.random.Generator, ctx: dict) -> list[str]:
    bands = [str(rng.choice(ctx["top"]))]
    if ctx["far"] and rng.random() < 0.6:
        bands.append(str(rng.choice(ctx["far"])))
    grounds = list(ctx["ground"])
    first = str(rng.choice(grounds))
    bands.append(first)
    others = [g for g in grounds if g != first]
    if others and rng.random() < 0.45:
        bands.insert(len(bands) - int(rng.integers(0, 2)), str(rng.choice(others)))
    return bands


def _stuff_map(rng: np.random.Generator, bands: list[str], h: int, w: int) -> np.ndarray:
    """Horizontal bands with tilted, wavy boundaries (indices into STUFF2)."""
    n = len(bands)
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)[:, None]
    cuts = np.sort(rng.uniform(0.25, 0.8, size=n - 1))
    cuts[0] = min(cuts[0], 0.55)
    for k in range(1, n - 1):  # keep every band at least 12 % tall
        cuts[k] = max(cuts[k], cuts[k - 1] + 0.12)
    idx = np.zeros((h, w), dtype=np.uint8)
    for k, level in enumerate(cuts):
        amp = rng.uniform(0.0, 0.04) * h
        slope = rng.uniform(-0.1, 0.1) * h / w
        period = rng.uniform(0.4, 1.2) * w
        boundary = level * h + slope * (xs - w / 2) + amp * np.sin(2 * np.pi * xs / period + rng.uniform(0, 2 * np.pi))
        idx += (ys >= boundary[None, :]).astype(np.uint8)
    lut = np.asarray([STUFF2.index(b) for b in bands], dtype=np.uint8)
    return lut[idx]


def _zone_pixels(stuff: np.ndarray, zone: str, bands: list[str]) -> tuple[np.ndarray, str]:
    """Flat pixel indices where a thing of ``zone`` may be anchored, and the zone actually used."""
    want = {"sky": {"sky"}, "wall": _INDOOR, "water": {"sea"}, "under": {"sea"}}.get(zone)
    if want is None or not (want & set(bands)):
        want = {b for b in bands[1:] if b not in ("sky", "mountain", "forest", "building") and b not in _INDOOR}
        want = want or set(bands[-1:])
        zone = "ground"
    ids = [STUFF2.index(b) for b in want]
    return np.flatnonzero(np.isin(stuff, ids)), zone


def _place_things(rng: np.random.Generator, ctx: dict, stuff: np.ndarray, bands: list[str]) -> list[dict]:
    h, w = stuff.shape
    side = min(h, w)
    placed, boxes = [], []
    names = list(ctx["things"])
    weights = np.asarray([COMMON_WEIGHT if n in COMMON else 1.0 for n in names])
    zones: dict[str, tuple[np.ndarray, str]] = {}  # the anchor pixels of a zone, once a scene
    for _ in range(int(rng.integers(2, MAX_THINGS + 1))):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        if THING_ZONE[name] not in zones:
            zones[THING_ZONE[name]] = _zone_pixels(stuff, THING_ZONE[name], bands)
        where, zone = zones[THING_ZONE[name]]
        if where.size == 0:
            continue
        for _try in range(6):
            p = int(where[rng.integers(where.size)])
            py, px = divmod(p, w)
            depth = 0.55 + 0.9 * py / h if zone == "ground" else 1.0  # nearer the bottom is nearer
            s = int(round(rng.uniform(*THING_SIZE) * side * min(depth, 1.3)))
            s = max(12, s)
            y0 = py - int(0.9 * s) if zone in ("ground", "water") else py - s // 2
            x0 = px - s // 2
            y0 = int(np.clip(y0, -s // 5, h - s + s // 5))
            x0 = int(np.clip(x0, -s // 5, w - s + s // 5))
            box = (y0, x0, y0 + s, x0 + s)
            if all(_overlap(box, b) < 0.35 for b in boxes):
                boxes.append(box)
                perm = int(rng.integers(len(PERMUTATIONS))) if name in RECOLOR and rng.random() < 0.7 else 0
                flip = bool(rng.random() < 0.5)
                rgb, mask = icon_image(name, s, s, perm, flip)
                rgb *= np.float32(rng.uniform(0.88, 1.1))
                host = STUFF2[int(stuff[int(np.clip(py, 0, h - 1)), int(np.clip(px, 0, w - 1))])]
                placed.append(dict(name=name, y0=y0, x0=x0, rgb=rgb, mask=mask, color=color_name(name, perm),
                                   host=host, zone=zone))
                break
    # painter's order: sky and wall things behind, then by the bottom edge
    placed.sort(key=lambda o: (o["zone"] not in ("sky", "wall"), o["y0"] + o["mask"].shape[0]))
    return placed


def _overlap(a, b) -> float:
    ih = min(a[2], b[2]) - max(a[0], b[0])
    iw = min(a[3], b[3]) - max(a[1], b[1])
    if ih <= 0 or iw <= 0:
        return 0.0
    return ih * iw / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def _compose(stuff: np.ndarray, placed: list[dict]):
    """Labels (indices into CLASSES2), instances and attributes (colour, host, side) from geometry
    alone; stuff comes first in CLASSES2, so a STUFF2 index is its class index."""
    pieces = [(o["y0"], o["x0"], o["mask"], CLASS_INDEX2[o["name"]]) for o in placed]
    labels, instances, owners = paint_things(stuff, pieces, len(STUFF2))
    attributes = []
    for (_, mask), k in zip(instances, owners):
        if k is None:
            attributes.append({})
            continue
        xs = np.flatnonzero(mask.any(axis=0))
        centre = (xs[0] + xs[-1]) / 2 / stuff.shape[1]
        o = placed[k]
        attributes.append({"color": o["color"], "host": o["host"], "thing": True,
                           "side": "left" if centre < 0.33 else "right" if centre > 0.67 else "middle"})
    return labels, instances, attributes


def present_classes2(instances, attributes, box=None) -> dict[str, dict]:
    """The classes an image (or the crop ``box`` = (y0, x0, y1, x1)) shows clearly enough to name,
    with "area" and, for things, "count", "color", "host", "side" (None when instances differ)."""
    present: dict[str, dict] = {}
    for (c, mask), attr in zip(instances, attributes):
        if box is not None:
            y0, x0, y1, x1 = box
            mask = mask[max(y0, 0):y1, max(x0, 0):x1]
        area = int(np.count_nonzero(mask))
        name = CLASSES2[c]
        if not attr:
            if area >= MIN_STUFF_FRACTION * mask.size:
                present[name] = {"area": area, "fraction": area / mask.size}
        elif area >= MIN_OBJECT_PIXELS:
            e = present.setdefault(name, {"area": 0, "count": 0, "color": attr["color"], "host": attr["host"],
                                          "side": attr["side"]})
            e["area"] += area
            e["fraction"] = e["area"] / mask.size
            e["count"] += 1
            for key in ("color", "host", "side"):
                if e[key] != attr[key]:
                    e[key] = None
    return present


# ---------------------------------------------------------------- captions

_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}
_PREFIXES = ("", "a photo of ", "a picture of ", "an image of ", "a view of ", "a snapshot of ")
_PLACE_FORMS = ("in {a} {adj} {place}", "in the {place}", "at {a} {adj} {place}", "somewhere in the {place}")
_PLURAL_ONLY = {"grapes", "cherries", "scissors", "skis"}


def plural(name: str) -> str:
    if name in ("sheep", "fish", "deer", "shrimp", "skis", "grapes", "cherries", "scissors"):
        return name
    if name.endswith(("s", "sh", "ch", "x")) or name in ("tomato", "potato"):
        return name + "es"
    if name.endswith("y") and name[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def _article(words: str) -> str:
    return "an" if words[0] in "aeiou" else "a"


def _thing_phrase(name: str, info: dict, rng: np.random.Generator) -> str:
    word = name
    if SYNONYMS2.get(name) and rng.random() < 0.2:
        word = str(rng.choice(SYNONYMS2[name]))
    adj = []
    if info.get("color") and rng.random() < 0.5:
        adj.append(info["color"])
    frac = info.get("fraction", 0.0)
    if rng.random() < 0.3:
        adj.insert(0, "tiny" if frac < 0.01 else "small" if frac < 0.04 else "big" if frac > 0.12 else "")
    adj = [a for a in adj if a]
    count = int(info.get("count", 1))
    if count <= 1 and name in _PLURAL_ONLY:
        text = " ".join(["some"] + adj + [word])
    elif count <= 1:
        words = " ".join(adj + [word])
        text = f"{_article(words)} {words}"
    else:
        amount = _NUMBERS.get(count, "some") if rng.random() < 0.7 else "several"
        text = " ".join([amount] + adj + [plural(word)])
    if info.get("side") and info["side"] != "middle" and count <= 1 and rng.random() < 0.2:
        text += f" on the {info['side']}"
    return text


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption2(present: dict[str, dict], context: str | None, rng: np.random.Generator,
             complete: bool = False) -> str:
    """A sentence about a scene or crop: the things (a small one may be left out unless
    ``complete``), some of the stuff, and the place with an adjective. Class names (or synonyms)
    appear as words; place and adjective words are outside every class list, as in real captions."""
    things = [n for n in present if n in THING_ZONE]
    stuff = [n for n in present if n not in THING_ZONE]
    rng.shuffle(things)
    rng.shuffle(stuff)
    if not complete:
        things = [t for t in things if present[t].get("fraction", 1) > 0.01 or rng.random() < 0.5] or things[:1]
        stuff = [s for s in stuff if rng.random() < 0.6]
    place = front = ""
    if context and rng.random() < (0.8 if not complete else 0.5):
        ctx = CONTEXTS[context]
        adj, where = str(rng.choice(ctx["adjectives"])), str(rng.choice(ctx["words"]))
        place = str(rng.choice(_PLACE_FORMS)).format(a=_article(adj), adj=adj, place=where)
        front = f"{_article(adj)} {adj} {where}"
    stuff_words = [str(rng.choice(SYNONYMS2[s])) if SYNONYMS2[s] and rng.random() < 0.2 else s for s in stuff]
    parts = [_thing_phrase(t, present[t], rng) for t in things]
    prefix = str(rng.choice(_PREFIXES))
    if not parts and not stuff_words:
        return (prefix + place).strip() or "an empty picture"
    if parts and stuff_words:
        text = f"{_join(parts)} {str(rng.choice(('with', 'and', 'near')))} the {_join(stuff_words)}"
    else:
        text = _join(parts or ["the " + s if rng.random() < 0.5 else s for s in stuff_words])
    if place:
        text = f"{text} {place}" if rng.random() < 0.7 else f"{front} with {text}"
    return prefix + text + ("." if rng.random() < 0.5 else "")


_PHRASES = sorted([(n, n) for n in CLASSES2] + [(plural(n), n) for n in THINGS]
                  + [(s, n) for n, syns in SYNONYMS2.items() for s in syns]
                  + [(plural(s), n) for n in THINGS for s in SYNONYMS2[n]], key=lambda p: -len(p[0]))
_PHRASE_RE = re.compile(r"\b(" + "|".join(re.escape(p) for p, _ in _PHRASES) + r")\b")
_PHRASE_TO_CLASS = dict(_PHRASES[::-1])


def classes_in_caption2(caption: str) -> set[str]:
    """The classes a caption names (by name, plural or synonym; the longest phrase wins, so
    "palm tree" is not also "tree")."""
    return {_PHRASE_TO_CLASS[m] for m in _PHRASE_RE.findall(caption.lower())}


# ---------------------------------------------------------------- scenes

def make_scene2(seed: int, size: int | tuple[int, int] = 224, style: str = "default") -> Scene2:
    """ShapesWorld 2 scene number ``seed``; ``style`` changes only the pixels."""
    check_style2(style)
    h, w = _size(size)
    rng = np.random.default_rng([int(seed), 21])
    context = str(rng.choice(list(CONTEXTS)))
    ctx = CONTEXTS[context]
    bands = _bands(rng, ctx)
    stuff = _stuff_map(rng, bands, h, w)
    placed = _place_things(rng, ctx, stuff, bands)
    labels, instances, attributes = _compose(stuff, placed)
    present = present_classes2(instances, attributes)
    caption = caption2(present, context, np.random.default_rng([int(seed), 22]))
    image = render2(stuff, [(o["y0"], o["x0"], o["rgb"], o["mask"]) for o in placed], style, int(seed))
    scene = Scene2(image, labels, instances, caption, style, int(seed), attributes, present)
    scene.context = context
    return scene


def make_object_image2(class_name: str, seed: int, size: int | tuple[int, int] = 112,
                       style: str = "default") -> tuple[np.ndarray, np.ndarray, str | None]:
    """One large thing on a ground of one of its contexts (or a stuff patch), for zero-shot
    classification. Returns (image, mask of the thing, its colour name or None)."""
    check_style2(style)
    if class_name not in CLASS_INDEX2:
        raise OvssError(f"unknown ShapesWorld 2 class {class_name!r}")
    h, w = _size(size)
    rng = np.random.default_rng([int(seed), 23, CLASS_INDEX2[class_name]])
    if class_name in STUFF2:
        stuff = np.full((h, w), STUFF2.index(class_name), dtype=np.uint8)
        return render2(stuff, [], style, int(seed)), np.zeros((h, w), dtype=bool), None
    homes = [c for c in CONTEXTS.values() if class_name in c["things"]]
    ctx = homes[int(rng.integers(len(homes)))]
    zone = THING_ZONE[class_name]
    back = "sky" if zone == "sky" and "sky" in ctx["top"] else "sea" if zone in ("water", "under") else (
        str(rng.choice(ctx["top"])) if zone == "wall" else str(rng.choice(ctx["ground"])))
    stuff = np.full((h, w), STUFF2.index(back), dtype=np.uint8)
    s = int(rng.uniform(0.55, 0.9) * min(h, w))
    y0 = int((h - s) / 2 + rng.uniform(-0.25, 0.25) * (h - s))
    x0 = int((w - s) / 2 + rng.uniform(-0.25, 0.25) * (w - s))
    perm = int(rng.integers(len(PERMUTATIONS))) if class_name in RECOLOR and rng.random() < 0.7 else 0
    rgb, m = icon_image(class_name, s, s, perm, bool(rng.random() < 0.5))
    image = render2(stuff, [(y0, x0, rgb, m)], style, int(seed))
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y0 + s, x0:x0 + s] = m
    return image, mask, color_name(class_name, perm)
