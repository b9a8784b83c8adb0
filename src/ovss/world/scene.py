"""ShapesWorld scenes: a layout of stuff bands with objects on them, plus exact labels and a caption.

A scene is a pure function of its random seed (and size): the layout is drawn first from that number, then
rendered in the requested style, so styles never change labels.

Ignore rule: an object whose *visible* part (after occlusion and cropping by the frame) is smaller
than ``MIN_OBJECT_PIXELS`` is labelled 255 (ignore), left out of ``instances`` and of the caption;
such a sliver cannot be told apart and should not be scored either way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import OvssError
from .captions import caption_for
from .classes import (
    BACKDROP_GROUNDS, BACKDROPS, CLASS_INDEX, CLASSES, GROUND_NEIGHBOURS, HOSTS, IGNORE_INDEX,
    OBJECT_ANCHOR, OBJECT_ASPECT, OBJECT_COLORS, OBJECTS, STUFF, STYLES,
)
from .render import draw_object, render

MIN_OBJECT_PIXELS = 30          # smaller visible objects become ignore (255)
MIN_STUFF_FRACTION = 0.02       # stuff covering less of the image is labelled but not captioned
OBJECT_SIZE = (0.10, 0.35)      # long side of an object's box, as a fraction of the image side
MAX_OBJECTS = 4


@dataclass
class Scene:
    """One rendered scene.

    ``instances`` holds ``(class_index, mask)`` for the visible part of every object and for every
    stuff region; masks are disjoint and together cover every non-ignore pixel. ``attributes`` is
    parallel to ``instances`` ({"color", "host"} for objects, {} for stuff). ``present`` maps each
    class named by the caption to {"area", and for objects "count", "color", "host"}.
    """

    image: np.ndarray
    labels: np.ndarray
    instances: list[tuple[int, np.ndarray]]
    caption: str
    style: str
    seed: int
    attributes: list[dict] = field(default_factory=list)
    present: dict[str, dict] = field(default_factory=dict)

    def present_in(self, y0: int, x0: int, y1: int, x1: int) -> dict[str, dict]:
        """The classes a crop [y0:y1, x0:x1] shows, in the form ``caption_for`` takes."""
        return present_classes(self.instances, self.attributes, (y0, x0, y1, x1))


def check_style(style: str) -> str:
    if style not in STYLES:
        raise OvssError(f"unknown style {style!r}; valid styles: {', '.join(STYLES)}")
    return style


# ShapesWorld draws whole images in memory (a few float copies each): a side above this is a typo
# (--size 99999999 would ask for petabytes), refused before anything is allocated
MAX_SIDE = 8192


def _size(size: int | tuple[int, int], name: str = "size") -> tuple[int, int]:
    return check_image_size(size, name)


def check_image_size(size: int | tuple[int, int], name: str = "size") -> tuple[int, int]:
    """(h, w) of a ShapesWorld image size (a side or (h, w)), between 16 and ``MAX_SIDE`` a side."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    h, w = int(h), int(w)
    if h < 16 or w < 16:
        raise OvssError(f"image size {h}x{w} is too small; use at least 16x16", param=name)
    if max(h, w) > MAX_SIDE:
        raise OvssError(f"image size {h}x{w} is too large; ShapesWorld draws at most {MAX_SIDE} pixels a side",
                        param=name)
    return h, w


def _pick(rng: np.random.Generator, table: dict[str, float]) -> str:
    names = list(table)
    p = np.asarray([table[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


# ---------------------------------------------------------------- layout

def _layout(rng: np.random.Generator, host: str) -> list[str]:
    """Stuff bands from top to bottom, always including ``host``; 1 to 3 of them."""
    if host in BACKDROPS:
        top, grounds = host, []
        if rng.random() > 0.1:
            grounds.append(str(rng.choice(BACKDROP_GROUNDS[host])))
    else:
        r = rng.random()
        top = "sky" if r < 0.75 else "wall" if r < 0.85 and host in BACKDROP_GROUNDS["wall"] else None
        grounds = [host]
    if grounds and rng.random() < 0.35:
        allowed = [g for g in GROUND_NEIGHBOURS[grounds[0]]
                   if top is None or g in BACKDROP_GROUNDS[top]]
        if allowed:
            other = str(rng.choice(allowed))
            grounds.insert(int(rng.integers(0, 2)), other)
    return ([top] if top else []) + grounds


def _stuff_map(rng: np.random.Generator, bands: list[str], h: int, w: int) -> np.ndarray:
    """Label map of horizontal bands with tilted, wavy boundaries."""
    xs = np.arange(w, dtype=np.float32)
    n = len(bands)
    if n == 1:
        return np.full((h, w), CLASS_INDEX[bands[0]], dtype=np.uint8)
    # Boundary heights: the first one is the horizon, later ones below it with room to spare.
    if n == 2:
        levels = [rng.uniform(0.3, 0.62)]
    else:
        a = rng.uniform(0.25, 0.45)
        levels = [a, rng.uniform(a + 0.2, 0.85)]
    idx = np.zeros((h, w), dtype=np.uint8)
    ys = np.arange(h, dtype=np.float32)[:, None]
    for k, level in enumerate(levels):
        below = bands[k + 1]
        calm = bands[k] in ("wall",) or below in ("road", "water")
        amp = rng.uniform(0.0, 0.015 if calm else 0.06) * h
        slope = rng.uniform(-0.12, 0.12) * h / w
        period = rng.uniform(0.4, 1.2) * w
        boundary = (level * h + slope * (xs - w / 2)
                    + amp * np.sin(2 * np.pi * xs / period + rng.uniform(0, 2 * np.pi))
                    + 0.3 * amp * np.sin(2 * np.pi * xs / (0.23 * w) + rng.uniform(0, 2 * np.pi)))
        idx += (ys >= boundary[None, :]).astype(np.uint8)
    lut = np.asarray([CLASS_INDEX[b] for b in bands], dtype=np.uint8)
    return lut[idx]


# ---------------------------------------------------------------- objects

@dataclass
class _Placed:
    name: str
    color: str
    host: str
    y0: int
    x0: int
    part_map: np.ndarray
    lut: np.ndarray


def _object_box(rng: np.random.Generator, name: str, long_side: float) -> tuple[int, int]:
    aspect = OBJECT_ASPECT[name] * rng.uniform(0.9, 1.1)
    if aspect >= 1:
        bw, bh = long_side, long_side / aspect
    else:
        bw, bh = long_side * aspect, long_side
    return max(4, int(round(bh))), max(4, int(round(bw)))


def _make_object(rng: np.random.Generator, name: str, host: str, bh: int, bw: int,
                 y0: int, x0: int) -> _Placed:
    color = str(rng.choice(OBJECT_COLORS[name]))
    flip = bool(rng.random() < 0.5)
    part_map, lut = draw_object(name, bw, bh, color, rng, flip=flip)
    lut[1:] = np.clip(lut[1:] + rng.uniform(-12, 12, size=3).astype(np.float32), 0, 255)
    return _Placed(name, color, host, y0, x0, part_map, lut)


def _place(rng: np.random.Generator, name: str, host: str, stuff: np.ndarray,
           boxes: list[tuple[int, int, int, int]], h: int, w: int) -> _Placed | None:
    """Put ``name`` on a random pixel of its host stuff, avoiding heavy overlap with earlier boxes."""
    where = np.flatnonzero(stuff == CLASS_INDEX[host])
    if where.size == 0:
        return None
    side = min(h, w)
    bh, bw = _object_box(rng, name, rng.uniform(*OBJECT_SIZE) * side)
    for _ in range(6):
        p = int(where[rng.integers(where.size)])
        py, px = divmod(p, w)
        y0 = py - (int(0.9 * bh) if OBJECT_ANCHOR[name] == "base" else bh // 2)
        x0 = px - bw // 2
        # Keep most of the object in the frame; a little may be cut off, as in photos.
        y0 = int(np.clip(y0, -bh // 5, h - bh + bh // 5))
        x0 = int(np.clip(x0, -bw // 5, w - bw + bw // 5))
        box = (y0, x0, y0 + bh, x0 + bw)
        if all(_overlap(box, b) < 0.4 for b in boxes):
            boxes.append(box)
            return _make_object(rng, name, host, bh, bw, y0, x0)
    return None


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box's area."""
    ih = min(a[2], b[2]) - max(a[0], b[0])
    iw = min(a[3], b[3]) - max(a[1], b[1])
    if ih <= 0 or iw <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ih * iw / smaller


def _sample_objects(rng: np.random.Generator, anchor: str, host: str, stuff: np.ndarray,
                    bands: list[str]) -> list[_Placed]:
    h, w = stuff.shape
    boxes: list[tuple[int, int, int, int]] = []
    placed = []
    first = _place(rng, anchor, host, stuff, boxes, h, w)
    if first is not None:
        placed.append(first)
    areas = {b: float(np.count_nonzero(stuff == CLASS_INDEX[b])) for b in bands}
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1)) - 1):
        # Pick a stuff region by area, then an object that likes to be there.
        where = _pick(rng, areas)
        likes = {o: HOSTS[o].get(where, 0.0) for o in OBJECTS}
        likes = {o: p for o, p in likes.items() if p > 0}
        if not likes:
            continue
        obj = _pick(rng, likes)
        one = _place(rng, obj, where, stuff, boxes, h, w)
        if one is not None:
            placed.append(one)
    # Painter's order: things in the sky are behind; ground things nearer the bottom are in front.
    placed.sort(key=lambda o: (o.host not in BACKDROPS, o.y0 + o.part_map.shape[0]))
    return placed


# ---------------------------------------------------------------- labels and scenes

def paint_things(stuff: np.ndarray, pieces: list[tuple[int, int, np.ndarray, int]], num_stuff: int):
    """Labels and instances of a scene from geometry alone, for both worlds.

    ``stuff`` holds stuff class indices (stuff comes first in a world's class list); ``pieces`` are
    the things in painting order, each (y0, x0, visible mask, class index), and may stick out of
    the image. Returns (labels, instances, owners): a thing with fewer than ``MIN_OBJECT_PIXELS``
    visible pixels is labelled ``IGNORE_INDEX`` and is no instance; ``instances`` lists (class,
    mask) per visible stuff class, then per kept thing; ``owners`` gives each instance's index in
    ``pieces`` (None for stuff), so a world can attach its attributes.
    """
    h, w = stuff.shape
    labels = stuff.copy()
    owner = np.full((h, w), -1, dtype=np.int16)
    for k, (y0, x0, mask, c) in enumerate(pieces):
        ph, pw = mask.shape
        ya, xa, yb, xb = max(y0, 0), max(x0, 0), min(y0 + ph, h), min(x0 + pw, w)
        if ya >= yb or xa >= xb:
            continue
        m = mask[ya - y0:yb - y0, xa - x0:xb - x0]
        labels[ya:yb, xa:xb][m] = c
        owner[ya:yb, xa:xb][m] = k
    counts = np.bincount(owner.ravel().astype(np.int64) + 1, minlength=len(pieces) + 1)
    instances: list[tuple[int, np.ndarray]] = []
    owners: list[int | None] = []
    free = owner < 0
    for c in np.flatnonzero(np.bincount(stuff.ravel(), minlength=num_stuff)):
        mask = free & (stuff == c)
        if mask.any():
            instances.append((int(c), mask))
            owners.append(None)
    for k, (_, _, _, c) in enumerate(pieces):
        if counts[k + 1] == 0:
            continue
        mask = owner == k
        if counts[k + 1] < MIN_OBJECT_PIXELS:
            labels[mask] = IGNORE_INDEX
            continue
        instances.append((c, mask))
        owners.append(k)
    return labels, instances, owners


def _compose(stuff: np.ndarray, placed: list[_Placed]):
    """Labels, instances and attributes (colour, host) from geometry alone (no colours)."""
    pieces = [(o.y0, o.x0, o.part_map > 0, CLASS_INDEX[o.name]) for o in placed]
    labels, instances, owners = paint_things(stuff, pieces, len(STUFF))
    attributes = [{} if k is None else {"color": placed[k].color, "host": placed[k].host} for k in owners]
    return labels, instances, attributes


def present_classes(instances: list[tuple[int, np.ndarray]], attributes: list[dict],
                    box: tuple[int, int, int, int] | None = None) -> dict[str, dict]:
    """Which classes an image (or the crop ``box`` = (y0, x0, y1, x1)) shows clearly enough to name.

    Objects count when at least ``MIN_OBJECT_PIXELS`` of them are visible in the crop, stuff when it
    covers at least ``MIN_STUFF_FRACTION`` of the crop. An object's colour is kept only when all
    its visible instances share it.
    """
    present: dict[str, dict] = {}
    for (c, mask), attr in zip(instances, attributes):
        if box is not None:
            y0, x0, y1, x1 = box
            mask = mask[max(y0, 0):y1, max(x0, 0):x1]
        area = int(np.count_nonzero(mask))
        name = CLASSES[c]
        if name in STUFF:
            if area >= MIN_STUFF_FRACTION * mask.size:
                present[name] = {"area": area}
        elif area >= MIN_OBJECT_PIXELS:
            entry = present.setdefault(name, {"area": 0, "count": 0, "color": attr["color"],
                                              "host": attr["host"]})
            entry["area"] += area
            entry["count"] += 1
            if entry["color"] != attr["color"]:
                entry["color"] = None
            if entry["host"] != attr["host"]:
                entry["host"] = None
    return present


def make_scene(seed: int, size: int | tuple[int, int] = 224, style: str = "default") -> Scene:
    """Make scene number ``seed``; it depends on nothing but the arguments, and ``style`` changes
    only the pixels (labels, instances and caption stay the same)."""
    check_style(style)
    h, w = _size(size)
    rng = np.random.default_rng([int(seed), 1])
    anchor = str(rng.choice(OBJECTS))
    host = _pick(rng, HOSTS[anchor])
    bands = _layout(rng, host)
    stuff = _stuff_map(rng, bands, h, w)
    placed = _sample_objects(rng, anchor, host, stuff, bands)
    labels, instances, attributes = _compose(stuff, placed)
    present = present_classes(instances, attributes)
    caption = caption_for(present, np.random.default_rng([int(seed), 2]))
    image = render(stuff, [(o.y0, o.x0, o.part_map, o.lut) for o in placed], style, int(seed))
    return Scene(image, labels, instances, caption, style, int(seed), attributes, present)


def make_object_image(class_name: str, seed: int, size: int | tuple[int, int] = 112,
                      style: str = "default") -> tuple[np.ndarray, np.ndarray]:
    """One large object on one of its usual stuff backgrounds, for zero-shot classification.

    Returns ``(image, mask)`` where ``mask`` marks the object's pixels. Stuff class names give a
    plain texture patch (mask all False), so every class can be classified the same way.
    """
    check_style(style)
    if class_name not in CLASS_INDEX:
        raise OvssError(f"unknown class {class_name!r}; ShapesWorld classes: {', '.join(CLASSES)}")
    h, w = _size(size)
    rng = np.random.default_rng([int(seed), 3, CLASS_INDEX[class_name]])
    if class_name in STUFF:
        stuff = np.full((h, w), CLASS_INDEX[class_name], dtype=np.uint8)
        return render(stuff, [], style, int(seed)), np.zeros((h, w), dtype=bool)
    host = _pick(rng, HOSTS[class_name])
    stuff = np.full((h, w), CLASS_INDEX[host], dtype=np.uint8)
    bh, bw = _object_box(rng, class_name, rng.uniform(0.4, 0.8) * min(h, w))
    bh, bw = min(bh, h), min(bw, w)
    y0 = int((h - bh) / 2 + rng.uniform(-0.5, 0.5) * (h - bh) * 0.5)
    x0 = int((w - bw) / 2 + rng.uniform(-0.5, 0.5) * (w - bw) * 0.5)
    obj = _make_object(rng, class_name, host, bh, bw, y0, x0)
    image = render(stuff, [(y0, x0, obj.part_map, obj.lut)], style, int(seed))
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y0 + bh, x0:x0 + bw] = obj.part_map > 0
    return image, mask
