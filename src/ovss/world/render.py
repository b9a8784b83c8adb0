"""Pixels for ShapesWorld: stuff textures, object drawings and the three rendering styles.

Geometry (which pixel belongs to which class) is decided before any pixel colour, so a style only
changes how a scene looks, never its labels. Everything is vectorised numpy or PIL drawing, because
scenes are made on the fly inside training loops.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from .classes import COLORS, STUFF

F32 = np.float32


@lru_cache(maxsize=16)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates, cached: every texture needs them and they never change."""
    ys, xs = np.mgrid[0:h, 0:w].astype(F32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def _noise(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float) -> np.ndarray:
    """Smooth value noise in [0, 1] with features about ``cell_y`` x ``cell_x`` pixels big: a small
    random grid upsampled with bicubic interpolation (PIL does this in C, fast)."""
    gh = max(2, int(round(h / max(cell_y, 1.0))) + 1)
    gw = max(2, int(round(w / max(cell_x, 1.0))) + 1)
    g = rng.random((gh, gw), dtype=F32)
    out = np.asarray(Image.fromarray(g).resize((w, h), Image.BICUBIC), dtype=F32)
    return np.clip(out, 0.0, 1.0)


def _rgb(colour) -> np.ndarray:
    """A colour as a 3 x 1 x 1 array, to broadcast over a channel-first image."""
    return np.asarray(colour, dtype=F32).reshape(3, 1, 1)


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], t: np.ndarray) -> np.ndarray:
    """Blend two RGB colours by t (H x W) into a 3 x H x W float image.

    Images are channel-first while rendering: numpy is several times faster on contiguous planes
    than on a trailing axis of 3."""
    a_ = _rgb(a)
    return a_ + (_rgb(b) - a_) * t[None]


def _paint(img: np.ndarray, mask: np.ndarray, colour) -> None:
    """Set the pixels of ``mask`` in a 3 x H x W image to one colour."""
    np.copyto(img, _rgb(colour), where=mask[None])


def _unit(h: int, w: int) -> float:
    """Texture scale: textures are sized relative to a 224-pixel image, so a smaller rendering
    looks like a downscaled larger one (with a floor so bricks never shrink to single pixels)."""
    return max(min(h, w), 96) / 224.0


# ---------------------------------------------------------------- stuff textures (default style)
# Each texture gets the absolute coordinates ``ys``/``xs`` of the rows it must fill (a band of the
# image, so no work is spent on rows the stuff does not reach), the image height ``h``, the scale
# ``u`` and the stuff's mask over those rows.

def _sky(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    t = np.clip(ys / (0.7 * h), 0.0, 1.0) + 0.12 * (_noise(rng, hh, ww, 75 * u, 60 * u) - 0.5)
    return _lerp((55, 110, 205), (175, 210, 245), np.clip(t, 0.0, 1.0))


def _grass(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    blades = _noise(rng, hh, ww, 7 * u, 1.6 * u)
    patches = _noise(rng, hh, ww, 55 * u, 45 * u)
    return _lerp((25, 90, 25), (120, 185, 60), 0.6 * blades + 0.4 * patches)


def _water(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    phase = rng.uniform(0, 2 * np.pi)
    warp = 1.6 * np.sin(xs[:1] * (2 * np.pi / (45 * u)) + phase) + 3.0 * _noise(rng, hh, ww, 75 * u, 75 * u)
    v = 0.5 + 0.5 * np.sin(ys * (2 * np.pi / (9 * u)) + warp)
    img = _lerp((15, 60, 130), (40, 120, 185), v)
    img += (v ** 8)[None] * _rgb((120, 110, 70))
    return img


def _sand(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    grain = rng.random((hh, ww), dtype=F32)
    ripple = np.sin((0.5 * xs + ys) * (2 * np.pi / (13 * u)) + 4.0 * _noise(rng, hh, ww, 75 * u, 75 * u))
    t = 0.55 + 0.22 * ripple + 0.35 * (grain - 0.5)
    img = _lerp((190, 155, 95), (240, 215, 160), np.clip(t, 0.0, 1.0))
    img[:, grain > 0.94] *= 0.75
    return img


def _bricks(ys, xs, u):
    """Brick row, column, and mortar mask (shared by the textured and the sketched wall)."""
    bh, bw, m = 11 * u, 24 * u, max(1.0, 1.6 * u)
    row = np.floor(ys / bh)
    xo = xs + (row % 2) * (bw / 2)
    mortar = ((ys % bh) < m) | ((xo % bw) < m)
    return row, np.floor(xo / bw), mortar


def _wall(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    row, col, mortar = _bricks(ys, xs, u)
    table = rng.random((64, 64), dtype=F32)
    shade = table[(row % 64).astype(np.intp), (col % 64).astype(np.intp)]
    grain = rng.random((hh, ww), dtype=F32)
    img = _lerp((140, 55, 40), (195, 95, 65), 0.8 * shade + 0.2 * grain)
    _paint(img, mortar, (205, 200, 190))
    return img


def _road(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    grain = rng.random((hh, ww), dtype=F32)
    img = _lerp((55, 55, 60), (110, 110, 115), 0.6 * grain + 0.4 * _noise(rng, hh, ww, 40 * u, 40 * u))
    # A dashed lane line along the middle of the road band, column by column.
    rows = mask.sum(axis=0)
    centre = (mask * ys).sum(axis=0) / np.maximum(rows, 1)
    half = max(1.0, 1.4 * u)
    dash = (np.abs(ys - centre[None, :]) < half) & ((xs % (30 * u)) < 16 * u) & (rows[None, :] > 8 * u)
    _paint(img, dash, (240, 225, 120))
    return img


def _snow(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    drifts = _noise(rng, hh, ww, 75 * u, 45 * u)
    fine = _noise(rng, hh, ww, 6 * u, 6 * u)
    img = _lerp((190, 205, 230), (250, 252, 255), np.clip(1.3 * drifts + 0.2 * fine - 0.2, 0.0, 1.0))
    sparkle = rng.random((hh, ww), dtype=F32) > 0.985
    _paint(img, sparkle, (160, 185, 225))
    return img


STUFF_TEXTURES: dict[str, Callable] = {
    "sky": _sky, "grass": _grass, "water": _water, "sand": _sand,
    "wall": _wall, "road": _road, "snow": _snow,
}
assert set(STUFF_TEXTURES) == set(STUFF)


# ---------------------------------------------------------------- stuff hatching (sketch style)

def _hatch(name: str, rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, u: float) -> np.ndarray:
    """Pencil marks (True = dark) that tell the stuff classes apart without colour or texture."""
    shape = ys.shape
    if name == "sky":
        return np.zeros(shape, dtype=bool)
    if name == "water":
        wave = ys + 2.5 * u * np.sin(xs * (2 * np.pi / (20 * u)))
        return (wave % (8 * u)) < max(1.0, 0.8 * u)
    if name == "grass":
        ticks = (xs % (5 * u) < 1) & ((ys + 7 * (np.floor(xs / (5 * u)) % 3)) % (9 * u) < 4 * u)
        return ticks & (rng.random(shape, dtype=F32) < 0.8)
    if name == "sand":
        return rng.random(shape, dtype=F32) < 0.09
    if name == "wall":
        return _bricks(ys, xs, u)[2]
    if name == "road":
        return ((xs + ys) % (7 * u)) < 1
    if name == "snow":
        return rng.random(shape, dtype=F32) < 0.012
    raise KeyError(name)


# ---------------------------------------------------------------- object drawings

def _shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * f, 0, 255)) for c in rgb)


def _boat(d, w, h, main, rng):
    d.polygon([(0, 0.62 * h), (w, 0.62 * h), (0.8 * w, 0.97 * h), (0.2 * w, 0.97 * h)], fill=1)
    d.rectangle([0.47 * w, 0.04 * h, 0.53 * w, 0.64 * h], fill=3)
    d.polygon([(0.55 * w, 0.06 * h), (0.55 * w, 0.58 * h), (0.92 * w, 0.58 * h)], fill=2)
    d.polygon([(0.45 * w, 0.18 * h), (0.45 * w, 0.58 * h), (0.18 * w, 0.58 * h)], fill=2)
    sail = (250, 245, 225) if main != "white" else (225, 60, 50)
    return [COLORS[main], sail, (110, 70, 35)]


def _star(d, w, h, main, rng):
    a0 = -np.pi / 2 + rng.uniform(-0.25, 0.25)
    pts = []
    for k in range(10):
        r = 0.5 if k % 2 == 0 else 0.2
        a = a0 + k * np.pi / 5
        pts.append(((0.5 + r * np.cos(a)) * w, (0.54 + r * np.sin(a)) * h))
    d.polygon(pts, fill=1)
    return [COLORS[main]]


def _sun(d, w, h, main, rng):
    n = int(rng.integers(8, 13))
    a0 = rng.uniform(0, 2 * np.pi)
    for k in range(n):
        a = a0 + 2 * np.pi * k / n
        da = np.pi / n * 0.45
        tip = (0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a))
        l = (0.5 + 0.3 * np.cos(a - da), 0.5 + 0.3 * np.sin(a - da))
        r = (0.5 + 0.3 * np.cos(a + da), 0.5 + 0.3 * np.sin(a + da))
        d.polygon([(tip[0] * w, tip[1] * h), (l[0] * w, l[1] * h), (r[0] * w, r[1] * h)], fill=2)
    d.ellipse([0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h], fill=1)
    return [COLORS[main], _shade(COLORS[main], 0.85)]


def _cloud(d, w, h, main, rng):
    j = lambda: rng.uniform(-0.05, 0.05)
    d.rounded_rectangle([0.05 * w, 0.5 * h, 0.95 * w, 0.95 * h], radius=0.22 * h, fill=1)
    d.ellipse([(0.05 + j()) * w, (0.3 + j()) * h, (0.45 + j()) * w, 0.95 * h], fill=1)
    d.ellipse([(0.28 + j()) * w, (0.02 + j()) * h, (0.72 + j()) * w, 0.9 * h], fill=1)
    d.ellipse([(0.55 + j()) * w, (0.22 + j()) * h, (0.95 + j()) * w, 0.95 * h], fill=1)
    return [COLORS[main]]


def _tree(d, w, h, main, rng):
    d.rectangle([0.41 * w, 0.5 * h, 0.59 * w, h], fill=2)
    d.ellipse([0.02 * w, 0.12 * h, 0.6 * w, 0.66 * h], fill=1)
    d.ellipse([0.4 * w, 0.12 * h, 0.98 * w, 0.66 * h], fill=1)
    d.ellipse([0.18 * w, 0.0, 0.82 * w, 0.52 * h], fill=1)
    return [COLORS[main], (105, 65, 30)]


def _house(d, w, h, main, rng):
    d.rectangle([0.12 * w, 0.45 * h, 0.88 * w, h], fill=1)
    d.polygon([(0.0, 0.48 * h), (0.5 * w, 0.04 * h), (w, 0.48 * h)], fill=2)
    d.rectangle([0.42 * w, 0.66 * h, 0.58 * w, h], fill=3)
    d.rectangle([0.2 * w, 0.57 * h, 0.34 * w, 0.71 * h], fill=4)
    d.rectangle([0.66 * w, 0.57 * h, 0.8 * w, 0.71 * h], fill=4)
    roof = (85, 85, 95) if main in ("red", "brown") else (150, 50, 40)
    return [COLORS[main], roof, (80, 50, 25), (170, 215, 240)]


def _car(d, w, h, main, rng):
    d.polygon([(0.2 * w, 0.42 * h), (0.32 * w, 0.06 * h), (0.7 * w, 0.06 * h), (0.84 * w, 0.42 * h)], fill=1)
    d.rounded_rectangle([0.0, 0.38 * h, w, 0.8 * h], radius=0.12 * h, fill=1)
    d.polygon([(0.28 * w, 0.38 * h), (0.36 * w, 0.14 * h), (0.49 * w, 0.14 * h), (0.49 * w, 0.38 * h)], fill=2)
    d.polygon([(0.53 * w, 0.38 * h), (0.53 * w, 0.14 * h), (0.67 * w, 0.14 * h), (0.77 * w, 0.38 * h)], fill=2)
    d.ellipse([0.12 * w, 0.56 * h, 0.34 * w, h], fill=3)
    d.ellipse([0.66 * w, 0.56 * h, 0.88 * w, h], fill=3)
    return [COLORS[main], (170, 215, 240), (25, 25, 25)]


def _fish(d, w, h, main, rng):
    d.polygon([(0.66 * w, 0.5 * h), (w, 0.08 * h), (0.92 * w, 0.5 * h), (w, 0.92 * h)], fill=1)
    d.polygon([(0.3 * w, 0.2 * h), (0.42 * w, 0.0), (0.55 * w, 0.22 * h)], fill=2)
    d.ellipse([0.0, 0.15 * h, 0.74 * w, 0.85 * h], fill=1)
    d.ellipse([0.12 * w, 0.33 * h, 0.2 * w, 0.47 * h], fill=3)
    return [COLORS[main], _shade(COLORS[main], 0.7), (15, 15, 15)]


def _bird(d, w, h, main, rng):
    top = [(0.0, 0.1), (0.22, 0.18), (0.42, 0.42), (0.5, 0.5), (0.58, 0.42), (0.78, 0.18), (1.0, 0.1)]
    bottom = [(1.0, 0.26), (0.78, 0.38), (0.6, 0.7), (0.5, 0.78), (0.4, 0.7), (0.22, 0.38), (0.0, 0.26)]
    d.polygon([(x * w, y * h) for x, y in top + bottom], fill=1)
    d.ellipse([0.42 * w, 0.45 * h, 0.58 * w, h], fill=1)
    d.polygon([(0.46 * w, 0.5 * h), (0.5 * w, 0.3 * h), (0.54 * w, 0.5 * h)], fill=2)
    return [COLORS[main], (245, 150, 30)]


def _flower(d, w, h, main, rng):
    r = 0.5 * w
    cx, cy = 0.5 * w, r
    lw = max(1, int(round(0.1 * w)))
    d.line([(cx, cy), (cx, h)], fill=3, width=lw)
    d.ellipse([cx, 0.7 * h, cx + 0.45 * w, 0.8 * h], fill=3)
    a0 = rng.uniform(0, np.pi)
    for k in range(6):
        a = a0 + k * np.pi / 3
        px, py = cx + 0.55 * r * np.cos(a), cy + 0.55 * r * np.sin(a)
        d.ellipse([px - 0.45 * r, py - 0.45 * r, px + 0.45 * r, py + 0.45 * r], fill=1)
    d.ellipse([cx - 0.35 * r, cy - 0.35 * r, cx + 0.35 * r, cy + 0.35 * r], fill=2)
    centre = (120, 70, 20) if main == "yellow" else (250, 210, 40)
    return [COLORS[main], centre, (40, 140, 40)]


def _ball(d, w, h, main, rng):
    box = [0.02 * w, 0.02 * h, 0.98 * w, 0.98 * h]
    a0 = rng.uniform(0, 60)
    for k in range(6):
        d.pieslice(box, a0 + 60 * k, a0 + 60 * (k + 1), fill=1 + k % 2)
    d.ellipse([0.4 * w, 0.4 * h, 0.6 * w, 0.6 * h], fill=2)
    second = (245, 245, 245) if main != "white" else (215, 40, 40)
    return [COLORS[main], second]


def _kite(d, w, h, main, rng):
    lw = max(1, int(round(0.05 * w)))
    tail = [(0.5 * w, 0.7 * h), (0.35 * w, 0.8 * h), (0.6 * w, 0.9 * h), (0.45 * w, h)]
    d.line(tail, fill=3, width=lw)
    for (x, y) in tail[1:3]:
        d.polygon([(x - 0.12 * w, y - 0.03 * h), (x + 0.12 * w, y + 0.03 * h),
                   (x + 0.12 * w, y - 0.03 * h), (x - 0.12 * w, y + 0.03 * h)], fill=3)
    d.polygon([(0.5 * w, 0.0), (w, 0.28 * h), (0.5 * w, 0.72 * h), (0.0, 0.28 * h)], fill=1)
    d.polygon([(0.5 * w, 0.0), (w, 0.28 * h), (0.5 * w, 0.28 * h)], fill=2)
    d.polygon([(0.5 * w, 0.72 * h), (0.0, 0.28 * h), (0.5 * w, 0.28 * h)], fill=2)
    return [COLORS[main], _shade(COLORS[main], 0.7), (60, 60, 60)]


OBJECT_DRAWERS: dict[str, Callable] = {
    "boat": _boat, "star": _star, "sun": _sun, "cloud": _cloud, "tree": _tree, "house": _house,
    "car": _car, "fish": _fish, "bird": _bird, "flower": _flower, "ball": _ball, "kite": _kite,
}


def draw_object(name: str, w: int, h: int, color: str, rng: np.random.Generator,
                flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Draw one object into an h x w part map (0 = empty, k = part k) and return it with the
    (k+1) x 3 colour table of its parts; the part map is the object's exact shape."""
    canvas = Image.new("L", (w, h), 0)
    # Draw in a box one pixel smaller so that shapes touching the border stay inside it.
    parts = OBJECT_DRAWERS[name](ImageDraw.Draw(canvas), w - 1, h - 1, color, rng)
    part_map = np.asarray(canvas, dtype=np.uint8)
    if flip:
        part_map = part_map[:, ::-1]
    lut = np.asarray([(0, 0, 0)] + list(parts), dtype=F32)
    return np.ascontiguousarray(part_map), lut


# ---------------------------------------------------------------- composition

def _edges(seg: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour (or left / upper one) has a different id."""
    e = np.zeros(seg.shape, dtype=bool)
    dx = seg[:, 1:] != seg[:, :-1]
    dy = seg[1:, :] != seg[:-1, :]
    e[:, 1:] |= dx
    e[:, :-1] |= dx
    e[1:, :] |= dy
    e[:-1, :] |= dy
    return e


def render(stuff_labels: np.ndarray, objects: list, style: str, seed: int) -> np.ndarray:
    """Colour a scene whose geometry is fixed, returning H x W x 3 uint8.

    ``stuff_labels`` holds the class index of the stuff under every pixel; ``objects`` lists
    ``(y0, x0, part_map, lut)`` in painting order. Texture noise comes from ``seed`` only, so the
    same scene always renders to the same pixels.
    """
    h, w = stuff_labels.shape
    rng = np.random.default_rng([seed, 7])
    ys_full, xs_full = _grid(h, w)
    u = _unit(h, w)
    sketch = style == "sketch"
    img = np.empty((3, h, w), dtype=F32)
    if sketch:
        img.fill(250.0)
    for c in np.flatnonzero(np.bincount(stuff_labels.ravel(), minlength=len(STUFF))):
        mask = stuff_labels == c
        # Stuff comes in horizontal bands: texture only the rows this one reaches.
        rows = np.flatnonzero(mask.any(axis=1))
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        m, ys, xs = mask[r0:r1], ys_full[r0:r1], xs_full[r0:r1]
        if sketch:
            img[:, r0:r1][:, _hatch(STUFF[c], rng, ys, xs, u) & m] = 165.0
        else:
            tex = STUFF_TEXTURES[STUFF[c]](rng, ys, xs, h, u, m)
            np.copyto(img[:, r0:r1], tex, where=m[None])

    seg = np.zeros((h, w), dtype=np.int32)  # 0 = stuff, otherwise a unique object-part id
    for k, (y0, x0, part_map, lut) in enumerate(objects):
        ph, pw = part_map.shape
        ya, xa, yb, xb = max(y0, 0), max(x0, 0), min(y0 + ph, h), min(x0 + pw, w)
        if ya >= yb or xa >= xb:
            continue
        pm = part_map[ya - y0:yb - y0, xa - x0:xb - x0]
        m = pm > 0
        colours = np.ascontiguousarray(lut.T)[:, pm]
        if sketch:
            colours = 245.0 + 0.18 * (colours - 245.0)
        else:
            # A gentle top-to-bottom shading so objects are not flat stickers.
            colours *= np.linspace(1.08, 0.86, ph, dtype=F32)[ya - y0:yb - y0][None, :, None]
        np.copyto(img[:, ya:yb, xa:xb], colours, where=m[None])
        seg[ya:yb, xa:xb][m] = (k + 1) * 16 + pm[m]

    outline = _edges(seg) & (seg > 0)
    if sketch:
        lines = outline | (_edges(stuff_labels) & (seg == 0))
        if min(h, w) >= 160:  # thicker pencil on large images, so lines survive downscaling
            lines[1:, :] |= lines[:-1, :].copy()
            lines[:, 1:] |= lines[:, :-1].copy()
        img[:, lines] = 35.0
    else:
        img[:, outline] *= 0.45

    if style == "night":
        img = img * _rgb((0.30, 0.34, 0.52)) + _rgb((6, 9, 24))
        mean = img.mean(axis=(1, 2), keepdims=True)
        img = mean + 0.75 * (img - mean)
        img += 14.0 * (rng.random((1, h, w), dtype=F32) - 0.5)  # sensor grain, std ~4 (uniform is cheaper)
    np.clip(img, 0, 255, out=img)
    return np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0))
