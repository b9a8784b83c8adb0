"""Pixels for ShapesWorld 2: Twemoji icons for things, procedural textures for stuff, four styles.

As in ShapesWorld, geometry (which pixel is which class) is fixed before any colour, so a style
changes only how a scene looks. The icons are one atlas PNG (``data/icons.png``, 96 px a cell,
Twemoji, CC-BY 4.0: ``data/ICONS-LICENSE.md``), read once.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .render import STUFF_TEXTURES, _edges, _grid, _lerp, _noise, _paint, _unit
from .sw2_classes import STUFF2

F32 = np.float32
DATA_DIR = Path(__file__).parent / "data"

# Named colours for captions ("a blue car"): the nearest of these to an icon's main colour.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40), "orange": (245, 135, 25), "yellow": (250, 215, 35), "green": (40, 150, 45),
    "blue": (40, 80, 215), "purple": (130, 55, 170), "pink": (245, 130, 185), "white": (245, 245, 245),
    "gray": (135, 135, 140), "black": (30, 30, 35), "brown": (125, 80, 40),
}
# Channel orders for recolourable things (the first keeps the icon's own colours).
PERMUTATIONS: tuple[tuple[int, int, int], ...] = ((0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1), (2, 0, 1), (1, 2, 0))


@lru_cache(maxsize=1)
def icons() -> dict[str, np.ndarray]:
    """Every thing's icon as a 96 x 96 x 4 uint8 RGBA array, by class name."""
    meta = json.loads((DATA_DIR / "icons.json").read_text(encoding="utf-8"))
    with Image.open(DATA_DIR / "icons.png") as im:
        atlas = np.asarray(im.convert("RGBA"))
    s, cols = meta["size"], meta["columns"]
    out = {}
    for i, name in enumerate(meta["names"]):
        y, x = divmod(i, cols)
        cell = atlas[y * s:(y + 1) * s, x * s:(x + 1) * s]
        cell.setflags(write=False)
        out[name] = cell
    return out


@lru_cache(maxsize=2048)
def color_name(name: str, perm: int) -> str | None:
    """The palette name of an icon's main colour under a channel permutation (None when the icon
    has no clearly saturated colour)."""
    rgba = icons()[name]
    rgb = rgba[..., :3][:, :, list(PERMUTATIONS[perm])].astype(F32)
    solid = rgba[..., 3] > 200
    sat = rgb.max(axis=-1) - rgb.min(axis=-1)
    keep = solid & (sat > 60)
    if keep.sum() < 0.2 * max(1, solid.sum()):
        return None
    mean = rgb[keep].mean(axis=0)
    names = list(PALETTE)
    d = [float(((np.asarray(PALETTE[n], dtype=F32) - mean) ** 2).sum()) for n in names]
    return names[int(np.argmin(d))]


def icon_image(name: str, w: int, h: int, perm: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """The icon resized to h x w: (RGB float32 3 x h x w, mask bool h x w, alpha > 50 %)."""
    rgba = icons()[name]
    im = Image.fromarray(rgba).resize((max(1, w), max(1, h)), Image.BILINEAR)
    arr = np.asarray(im)
    if flip:
        arr = arr[:, ::-1]
    rgb = arr[..., :3][:, :, list(PERMUTATIONS[perm])].astype(F32).transpose(2, 0, 1)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(arr[..., 3] > 127)


# ---------------------------------------------------------------- stuff textures
# Same signature as ShapesWorld's (rng, ys, xs, h, u, mask) -> 3 x hh x ww float image.

def _two_tone(a, b, fine, coarse):
    def tex(rng, ys, xs, h, u, mask):
        hh, ww = ys.shape
        t = 0.6 * _noise(rng, hh, ww, fine * u, fine * u) + 0.4 * _noise(rng, hh, ww, coarse * u, coarse * u)
        return _lerp(a, b, t)
    return tex


def _mountain(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    ridge = _noise(rng, hh, ww, 30 * u, 12 * u)
    img = _lerp((95, 90, 105), (170, 165, 175), 0.7 * ridge + 0.3 * _noise(rng, hh, ww, 4 * u, 4 * u))
    top = ys - ys[:1]
    img[:, top < 8 * u] = img[:, top < 8 * u] * 0.3 + 0.7 * 245  # snowy ridge line
    return img


def _forest(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    crowns = _noise(rng, hh, ww, 9 * u, 7 * u)
    return _lerp((15, 55, 25), (60, 120, 45), crowns ** 1.5)


def _building(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    img = _lerp((150, 140, 130), (190, 180, 170), _noise(rng, hh, ww, 60 * u, 30 * u))
    win = ((ys % (18 * u)) > 6 * u) & ((xs % (16 * u)) > 7 * u)
    _paint(img, win, (80, 110, 150))
    return img


def _tiles(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    s = 14 * u
    img = _lerp((225, 230, 235), (250, 250, 250), rng.random((hh, ww), dtype=F32) * 0.5)
    _paint(img, ((ys % s) < max(1, u)) | ((xs % s) < max(1, u)), (150, 160, 170))
    return img


def _wallpaper(rng, ys, xs, h, u, mask):
    base = rng.uniform(0.0, 1.0)
    a = (int(200 + 40 * base), int(180 + 30 * (1 - base)), 150)
    stripes = 0.5 + 0.5 * np.sin(xs * (2 * np.pi / (12 * u)))
    return _lerp(a, (250, 240, 220), 0.6 * stripes)


def _floor(rng, ys, xs, h, u, mask):
    s = 20 * u
    check = ((np.floor(ys / s) + np.floor(xs / s)) % 2).astype(F32)
    return _lerp((70, 70, 80), (220, 215, 205), check)


def _parquet(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    plank = np.floor(ys / (9 * u))
    table = rng.random(256, dtype=F32)
    shade = table[(plank % 256).astype(np.intp)]
    grain = _noise(rng, hh, ww, 2 * u, 25 * u)
    img = _lerp((120, 70, 30), (190, 130, 70), 0.6 * shade + 0.4 * grain)
    _paint(img, (ys % (9 * u)) < max(1, 0.8 * u), (70, 40, 20))
    return img


def _carpet(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    fibre = rng.random((hh, ww), dtype=F32)
    pattern = 0.5 + 0.5 * np.sin(xs * (2 * np.pi / (30 * u))) * np.sin(ys * (2 * np.pi / (30 * u)))
    return _lerp((110, 25, 40), (175, 60, 70), 0.5 * fibre + 0.5 * pattern)


def _sidewalk(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    img = _lerp((165, 160, 155), (205, 200, 195), rng.random((hh, ww), dtype=F32))
    _paint(img, ((ys % (16 * u)) < max(1, u)) | (((xs + 8 * u * (np.floor(ys / (16 * u)) % 2)) % (24 * u)) < max(1, u)),
           (110, 105, 100))
    return img


def _field(rng, ys, xs, h, u, mask):
    hh, ww = ys.shape
    rows = 0.5 + 0.5 * np.sin((xs + 0.3 * ys) * (2 * np.pi / (7 * u)))
    return _lerp((170, 130, 40), (235, 205, 95), 0.6 * rows + 0.4 * _noise(rng, hh, ww, 40 * u, 40 * u))


STUFF_TEXTURES2 = {
    "sky": STUFF_TEXTURES["sky"], "grass": STUFF_TEXTURES["grass"], "sea": STUFF_TEXTURES["water"],
    "sand": STUFF_TEXTURES["sand"], "wall": STUFF_TEXTURES["wall"], "road": STUFF_TEXTURES["road"],
    "snow": STUFF_TEXTURES["snow"], "mountain": _mountain, "forest": _forest, "building": _building,
    "tiles": _tiles, "wallpaper": _wallpaper, "floor": _floor, "parquet": _parquet, "carpet": _carpet,
    "sidewalk": _sidewalk, "field": _field, "dirt": _two_tone((90, 60, 35), (150, 110, 70), 5, 40),
}
assert set(STUFF_TEXTURES2) == set(STUFF2)


# ---------------------------------------------------------------- composition and styles

def render2(stuff_labels: np.ndarray, things: list, style: str, seed: int) -> np.ndarray:
    """Colour a scene: ``stuff_labels`` holds indices into STUFF2, ``things`` lists
    ``(y0, x0, rgb 3 x h x w, mask h x w)`` in painting order. Returns H x W x 3 uint8."""
    h, w = stuff_labels.shape
    rng = np.random.default_rng([seed, 7])
    ys_full, xs_full = _grid(h, w)
    u = _unit(h, w)
    img = np.empty((3, h, w), dtype=F32)
    for c in np.flatnonzero(np.bincount(stuff_labels.ravel(), minlength=len(STUFF2))):
        mask = stuff_labels == c
        rows = np.flatnonzero(mask.any(axis=1))
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        m = mask[r0:r1]
        tex = STUFF_TEXTURES2[STUFF2[c]](rng, ys_full[r0:r1], xs_full[r0:r1], h, u, m)
        tex *= rng.uniform(0.85, 1.12, size=(3, 1, 1)).astype(F32)  # lighting varies scene to scene
        np.copyto(img[:, r0:r1], tex, where=m[None])
    seg = np.zeros((h, w), dtype=np.int32)
    for k, (y0, x0, rgb, m) in enumerate(things):
        ph, pw = m.shape
        ya, xa, yb, xb = max(y0, 0), max(x0, 0), min(y0 + ph, h), min(x0 + pw, w)
        if ya >= yb or xa >= xb:
            continue
        mm = m[ya - y0:yb - y0, xa - x0:xb - x0]
        np.copyto(img[:, ya:yb, xa:xb], rgb[:, ya - y0:yb - y0, xa - x0:xb - x0], where=mm[None])
        seg[ya:yb, xa:xb][mm] = k + 1
    return stylise(img, seg, stuff_labels, style, rng)


def stylise(img: np.ndarray, seg: np.ndarray, stuff_labels: np.ndarray, style: str,
            rng: np.random.Generator) -> np.ndarray:
    """The domain styles: pixels only. night: dark, bluish, low contrast, grain; sketch: pencil
    lines from edges on paper; painting: smoothed, posterised, saturated colours."""
    h, w = seg.shape
    if style == "night":
        img = img * np.asarray((0.30, 0.34, 0.52), dtype=F32).reshape(3, 1, 1) + np.asarray((6, 9, 24), dtype=F32).reshape(3, 1, 1)
        mean = img.mean(axis=(1, 2), keepdims=True)
        img = mean + 0.75 * (img - mean)
        img += 14.0 * (rng.random((1, h, w), dtype=F32) - 0.5)
    elif style == "sketch":
        lum = img.mean(axis=0)
        gy, gx = np.zeros_like(lum), np.zeros_like(lum)
        gy[1:-1] = lum[2:] - lum[:-2]
        gx[:, 1:-1] = lum[:, 2:] - lum[:, :-2]
        grad = np.sqrt(gx ** 2 + gy ** 2)
        paper = 250.0 - np.clip(grad * 1.2, 0, 160) - 25.0 * (lum < 90)
        lines = (_edges(seg) & (seg > 0)) | _edges(stuff_labels.astype(np.int32))
        paper[lines] = 35.0
        img = np.broadcast_to(paper, (3, h, w)).copy()
    elif style == "painting":
        im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8).transpose(1, 2, 0))
        from PIL import ImageFilter
        im = im.filter(ImageFilter.ModeFilter(5)).filter(ImageFilter.SMOOTH_MORE)
        arr = np.asarray(im, dtype=F32).transpose(2, 0, 1)
        arr = np.round(arr / 48.0) * 48.0
        mean = arr.mean(axis=0, keepdims=True)
        img = mean + 1.4 * (arr - mean)
    np.clip(img, 0, 255, out=img)
    return np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0))
