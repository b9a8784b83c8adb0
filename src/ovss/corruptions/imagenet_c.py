"""The 15 ImageNet-C corruptions, written with numpy, scipy and PIL only.

Parameter tables and algorithms follow the ImageNet-C reference (Hendrycks & Dietterich) as ported to
any image size by the ``imagecorruptions`` package (Michaelis et al.), which is what the MLMP
benchmark uses. Every function takes a uint8 HxWx3 image, a severity in 1..5 and a random generator,
and returns a uint8 image of the same shape. Floats are turned into uint8 by truncation, as the
reference's ``np.uint8(...)`` does, so that outputs agree pixel for pixel where the math agrees.

The functions only call ``rng.normal``, ``rng.uniform``, ``rng.poisson``, ``rng.random`` (and
``rng.integers`` for glass_blur and frost), so a legacy ``np.random.RandomState`` seeded like the
reference's global state reproduces the reference's random draws exactly; the tests use that.

Where this differs from the reference, on purpose:

* glass_blur: the reference visits pixels one by one in Python. Its "swap"
  ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` acts on numpy views, so it really copies the
  neighbour into ``x[h, w]`` and leaves the neighbour unchanged; a neighbour already visited in the
  same pass has its new value. We draw all offsets at once (same scan order, same ranges) and resolve
  those read-after-write chains by pointer doubling, which gives the same result as the loop for the
  same offsets (tested against a literal loop), in a few milliseconds instead of seconds.
* impulse_noise: each channel value is salted or peppered independently with probability
  ``amount`` (half salt, half pepper), as scikit-image's current ``random_noise(mode='s&p')`` does.
* frost: procedural textures (see ``ovss.corruptions.frost``) replace the reference photographs; the
  blend weights, rescaling and random crop are the reference's.
* elastic_transform: the size-independent variant of ``imagecorruptions`` (Gaussian-smoothed random
  displacement field), not ImageNet-C's 224-pixel-specific affine+elastic version.
* Images smaller than the reference's 32-pixel minimum still work (pixelate keeps at least 1 pixel).
"""

from __future__ import annotations

import math
from io import BytesIO

import numpy as np
from PIL import Image
from scipy import ndimage, signal

from .frost import NUM_TEXTURES, REFERENCE_DRAWN, frost_texture, reference_picture, reference_source

Rng = np.random.Generator


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 255] and truncate, like the reference's ``np.uint8`` cast."""
    return np.clip(x, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- helpers


def _gaussian(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """skimage.filters.gaussian on the spatial axes of an HxW or HxWxC float image."""
    sigmas = (sigma, sigma) + (0,) * (x.ndim - 2)
    return ndimage.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)


def _zoom_axis(x: np.ndarray, axis: int, out_len: int) -> np.ndarray:
    """Linear resampling of one axis to ``out_len`` samples, end points aligned.

    This is scipy.ndimage.zoom(order=1, grid_mode=False) along one axis, done as one gather and one
    lerp so that the separable 2-D zoom costs a few array passes.
    """
    n = x.shape[axis]
    scale = (n - 1) / (out_len - 1) if out_len > 1 else 1.0
    coord = np.arange(out_len) * scale
    lo = np.clip(np.floor(coord).astype(np.intp), 0, n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = (coord - lo).astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = out_len
    frac = frac.reshape(shape)
    a = np.take(x, lo, axis=axis)
    b = np.take(x, hi, axis=axis)
    return a + (b - a) * frac


def _clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """Zoom into the centre: crop HxW/zoom and scale it back up (output may exceed HxW by a pixel)."""
    h, w = img.shape[:2]
    ch0 = int(np.ceil(h / float(zoom_factor)))
    ch1 = int(np.ceil(w / float(zoom_factor)))
    top0, top1 = (h - ch0) // 2, (w - ch1) // 2
    crop = img[top0 : top0 + ch0, top1 : top1 + ch1]
    out = _zoom_axis(crop, 0, int(round(ch0 * zoom_factor)))
    return _zoom_axis(out, 1, int(round(ch1 * zoom_factor)))


def _line_blur(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """imagecorruptions' motion blur: a one-sided Gaussian-weighted sum of shifted copies.

    Copy i is shifted by about i pixels against ``angle`` with edge replication; as in the
    reference, the sum stops (without renormalising) once a shift leaves the image.
    """
    width = 2 * radius + 1
    kernel = np.exp(-np.arange(width) ** 2 / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    kernel = kernel / kernel.sum()
    py, px = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
    hyp = math.hypot(py, px)
    h, w = x.shape[:2]
    pad = width
    pad_width = ((pad, pad), (pad, pad)) + ((0, 0),) * (x.ndim - 2)
    padded = np.pad(x, pad_width, mode="edge")
    out = np.zeros(x.shape, dtype=np.float64)
    tmp = np.empty(x.shape, dtype=np.float64)
    for i in range(width):
        dy = -math.ceil(((i * py) / hyp) - 0.5)
        dx = -math.ceil(((i * px) / hyp) - 0.5)
        if abs(dy) >= h or abs(dx) >= w:
            break
        # shifted[r, c] = x[clip(r - dy), clip(c - dx)]
        view = padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w]
        np.multiply(view, kernel[i], out=tmp)
        out += tmp
    return out


def _disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's anti-aliased disk: a binary disk, normalised, then a tiny Gaussian blur."""
    if radius <= 8:
        coords, ksize = np.arange(-8, 8 + 1), 3
    else:
        coords, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(coords, coords)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    # cv2.GaussianBlur(ksize, sigma) with its default reflect-101 border ('mirror' in scipy)
    taps = np.arange(ksize) - (ksize - 1) / 2
    g = np.exp(-(taps**2) / (2 * alias_blur**2))
    g = (g / g.sum()).astype(np.float32)
    disk = ndimage.correlate1d(disk, g, axis=0, mode="mirror")
    disk = ndimage.correlate1d(disk, g, axis=1, mode="mirror")
    return disk


def _plasma_fractal(rng: Rng, mapsize: int, wibbledecay: float) -> np.ndarray:
    """Diamond-square height map in [0, 1] (mapsize a power of two), draws in the reference order."""
    maparray = np.zeros((mapsize, mapsize), dtype=np.float64)
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        half = stepsize // 2
        # squares: centre of each square = mean of its corners + noise
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        acc = corners + np.roll(corners, shift=-1, axis=0)
        acc += np.roll(acc, shift=-1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(acc)
        # diamonds: edge midpoints = mean of the two centres and two corners around them + noise
        centres = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ltsum = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(ltsum)
        ttsum = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)
        stepsize //= 2
        wibble /= wibbledecay

    maparray -= maparray.min()
    return maparray / maparray.max()


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] to HSV in [0, 1] (hue as a fraction of a turn), the textbook formulas."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    delta = v - rgb.min(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(delta == 0, 0.0, delta / v)
        h = np.zeros_like(v)
        # the later assignments win where two channels tie for the maximum, as in scikit-image
        h = np.where(r == v, (g - b) / delta, h)
        h = np.where(g == v, 2.0 + (b - r) / delta, h)
        h = np.where(b == v, 4.0 + (r - g) / delta, h)
    h = (h / 6.0) % 1.0
    h[delta == 0] = 0.0
    return np.stack([h, s, v], axis=-1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Inverse of ``_rgb_to_hsv``."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    sector = hi.astype(np.int64) % 6
    r = np.choose(sector, (v, q, p, p, t, v))
    g = np.choose(sector, (t, v, v, q, p, p))
    b = np.choose(sector, (p, p, t, v, v, q))
    return np.stack([r, g, b], axis=-1)


def _glass_shuffle(x: np.ndarray, offsets: np.ndarray, max_delta: int) -> np.ndarray:
    """Apply the reference glass-blur pixel "swaps" (really copies) for pre-drawn offsets.

    ``offsets[i, a, b] = (dx, dy)`` is the draw for pass i at the a-th visited row and b-th visited
    column, rows and columns visited from ``H - d`` down to ``d + 1`` (the reference's scan order).
    The reference sets ``x[h, w] = x[h + dy, w + dx]`` in that order, so a pixel reads the new
    value of a neighbour visited earlier in the pass and the old value otherwise. Such reads form
    chains ending at an "old" read; pointer doubling follows every chain at once.
    """
    h, w = x.shape[:2]
    d = max_delta
    rows = np.arange(h - d, d, -1)
    cols = np.arange(w - d, d, -1)
    if rows.size == 0 or cols.size == 0:
        return x
    visited = np.zeros((h, w), dtype=bool)
    visited[d + 1 : h - d + 1, d + 1 : w - d + 1] = True
    hh, ww = np.meshgrid(rows, cols, indexing="ij")
    src_flat = (hh * w + ww).ravel()
    source = np.arange(h * w)  # output pixel -> pixel of the original image it shows
    for draw in offsets:
        dx, dy = draw[..., 0], draw[..., 1]
        th, tw = hh + dy, ww + dx
        tgt_flat = (th * w + tw).ravel()
        # neighbour visited earlier in this pass: larger row, or same row and larger column
        earlier = (visited[th, tw] & ((dy > 0) | ((dy == 0) & (dx > 0)))).ravel()
        nxt = np.arange(h * w)  # fixed points are pixels whose value is settled
        val = np.arange(h * w)  # for settled pixels: where their value comes from (old image)
        nxt[src_flat[earlier]] = tgt_flat[earlier]
        val[src_flat[~earlier]] = tgt_flat[~earlier]
        while True:
            jumped = nxt[nxt]
            if np.array_equal(jumped, nxt):
                break
            nxt = jumped
        step = val[nxt]  # new[p] = old[step[p]]
        source = source[step]
    return x.reshape(h * w, -1)[source].reshape(x.shape)


# ----------------------------------------------------------------------------- noise


def gaussian_noise(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    c = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    x = image / 255.0
    return _to_uint8(np.clip(x + rng.normal(0.0, c, x.shape), 0, 1) * 255)


def shot_noise(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    c = (60, 25, 12, 5, 3)[severity - 1]
    x = image / 255.0
    return _to_uint8(np.clip(rng.poisson(x * c) / float(c), 0, 1) * 255)


def impulse_noise(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    c = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    flipped = rng.random(image.shape) <= c
    salted = rng.random(image.shape) <= 0.5
    out = image.copy()
    out[flipped & salted] = 255
    out[flipped & ~salted] = 0
    return out


# ----------------------------------------------------------------------------- blur


def defocus_blur(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    radius, alias_blur = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[severity - 1]
    kernel = _disk_kernel(radius, alias_blur).astype(np.float64)
    k = kernel.shape[0] // 2
    x = image / 255.0
    # cv2.filter2D's default border is reflect-101 (numpy's 'reflect'); FFT keeps big disks cheap
    padded = np.pad(x, ((k, k), (k, k), (0, 0)), mode="reflect")
    out = signal.fftconvolve(padded, kernel[..., None], mode="valid", axes=(0, 1))
    return _to_uint8(np.clip(out, 0, 1) * 255)


def glass_blur(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    sigma, max_delta, iterations = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[
        severity - 1
    ]
    h, w = image.shape[:2]
    x = (_gaussian(image / 255.0, sigma) * 255).astype(np.uint8)
    n_rows, n_cols = max(h - 2 * max_delta, 0), max(w - 2 * max_delta, 0)  # rows H-d .. d+1
    offsets = rng.integers(-max_delta, max_delta, size=(iterations, n_rows, n_cols, 2))
    x = _glass_shuffle(x, offsets, max_delta)
    return _to_uint8(np.clip(_gaussian(x / 255.0, sigma), 0, 1) * 255)


def motion_blur(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[severity - 1]
    angle = rng.uniform(-45, 45)
    return _to_uint8(_line_blur(image, radius, sigma, angle))


def zoom_blur(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    factors = (
        np.arange(1, 1.11, 0.01),
        np.arange(1, 1.16, 0.01),
        np.arange(1, 1.21, 0.02),
        np.arange(1, 1.26, 0.02),
        np.arange(1, 1.31, 0.03),
    )[severity - 1]
    h, w = image.shape[:2]
    x = (image / 255.0).astype(np.float32)
    out = x.copy()  # the reference averages the image with all its zooms
    for z in factors:
        out += _clipped_zoom(x, z)[:h, :w]
    return _to_uint8(np.clip(out / (len(factors) + 1), 0, 1) * 255)


# ----------------------------------------------------------------------------- weather


def snow(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    loc, scale, zoom, threshold, radius, sigma, keep = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    )[severity - 1]
    h, w = image.shape[:2]
    x = image.astype(np.float32) / 255.0
    layer = rng.normal(loc, scale, (h, w))
    layer = _clipped_zoom(layer, zoom)  # kept at its zoomed size until after the blur, as upstream
    layer[layer < threshold] = 0
    layer = np.clip(layer, 0, 1)
    layer = _line_blur(layer, radius, sigma, rng.uniform(-135, -45))
    layer = (np.round(layer * 255).astype(np.uint8) / 255.0)[:h, :w, None]
    gray = (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114)[..., None]
    x = keep * x + (1 - keep) * np.maximum(x, gray * 1.5 + 0.5)
    return _to_uint8(np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255)


def frost(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    keep, amount = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[severity - 1]
    if reference_source() is not None:
        return _frost_pictures(image, keep, amount, rng)
    texture = frost_texture(int(rng.integers(NUM_TEXTURES)))
    th, tw = texture.shape[:2]
    h, w = image.shape[:2]
    # rescale the texture so that it covers the image with 10% to spare, then crop at random
    factor = 1.1 * max(1.0, h / th, w / tw)
    new_w, new_h = int(np.ceil(tw * factor)), int(np.ceil(th * factor))
    scaled = np.asarray(Image.fromarray(texture).resize((new_w, new_h), Image.Resampling.BICUBIC))
    top = int(rng.integers(0, max(new_h - h, 1)))
    left = int(rng.integers(0, max(new_w - w, 1)))
    crop = scaled[top : top + h, left : left + w]
    return _to_uint8(keep * image.astype(np.float64) + amount * crop)


def _frost_pictures(image: np.ndarray, keep: float, amount: float, rng: Rng) -> np.ndarray:
    """ImageNet-C's frost maths on its pictures: one of the first five, scaled (bicubic, OpenCV) so
    that it covers the image with 10 % to spare, cropped at random, blended, clipped."""
    import cv2

    picture = reference_picture(int(rng.integers(REFERENCE_DRAWN)))
    ph, pw = picture.shape[:2]
    h, w = image.shape[:2]
    factor = max(1.0, h / ph if ph < h else 1.0, w / pw if pw < w else 1.0) * 1.1
    new_w, new_h = int(np.ceil(pw * factor)), int(np.ceil(ph * factor))
    scaled = cv2.resize(picture, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
    top = int(rng.integers(0, max(new_h - h, 1)))
    left = int(rng.integers(0, max(new_w - w, 1)))
    crop = scaled[top : top + h, left : left + w]
    return _to_uint8(keep * image.astype(np.float64) + amount * crop)


def fog(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    strength, decay = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[severity - 1]
    h, w = image.shape[:2]
    map_size = 1 << (max(h, w, 3) - 1).bit_length()
    x = image / 255.0
    max_val = x.max()
    x = x + strength * _plasma_fractal(rng, map_size, decay)[:h, :w, None]
    return _to_uint8(np.clip(x * max_val / (max_val + strength), 0, 1) * 255)


# ----------------------------------------------------------------------------- digital


def brightness(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    c = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    hsv = _rgb_to_hsv(image / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return _to_uint8(np.clip(_hsv_to_rgb(hsv), 0, 1) * 255)


def contrast(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1]
    x = image / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return _to_uint8(np.clip((x - means) * c + means, 0, 1) * 255)


def elastic_transform(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    alpha = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)[severity - 1]
    h, w = image.shape[:2]
    x = image.astype(np.float32) / 255.0
    sigma = np.array([h, w]) * 0.01
    max_d = h * 0.005  # the reference scales both directions by the height
    fields = []
    for _ in range(2):  # dx first, then dy: the reference's draw order
        noise = rng.uniform(-max_d, max_d, size=(h, w))
        smooth = ndimage.gaussian_filter(noise, sigma, mode="reflect", truncate=3)
        fields.append((smooth * alpha).astype(np.float32))
    dx, dy = fields
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = np.stack([yy + dy.astype(np.float64), xx + dx.astype(np.float64)])
    out = np.empty_like(x)
    for ch in range(x.shape[2]):
        out[..., ch] = ndimage.map_coordinates(x[..., ch], coords, order=1, mode="reflect")
    return _to_uint8(np.clip(out, 0, 1) * 255)


def pixelate(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    c = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize(
        (max(int(w * c), 1), max(int(h * c), 1)), Image.Resampling.BOX
    )
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST)).copy()


def jpeg_compression(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    quality = (25, 18, 15, 10, 7)[severity - 1]
    buffer = BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB")).copy()


def original(image: np.ndarray, severity: int, rng: Rng) -> np.ndarray:
    """The clean image (the benchmark's reference scenario); severity is ignored."""
    return image.copy()
