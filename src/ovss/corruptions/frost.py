"""Procedural frost textures, a stand-in for the ImageNet-C frost photographs.

ImageNet-C's ``frost`` blends the image with a random crop of one of a few photographs of frost on
glass. Those photographs are not ours to ship, so this module draws comparable textures: a soft
cloudy haze (multi-octave value noise) plus ice "feathers" (a wandering stem with side branches at
about +-60 degrees, as ice crystals grow on a pane) and short needles, slightly blurred and tinted
pale blue. Each texture is a pure function of its index (a fixed seed), so every run and every
process sees the same pixels; they are built once per process and cached.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

NUM_TEXTURES = 5
TEXTURE_SIZE = 512
_SEED_BASE = 20_190_000  # any fixed number: the textures only have to be the same everywhere
_TINT = np.array([0.86, 0.93, 1.0])  # frost photographs are white with a cold blue cast


def _value_noise(rng: np.random.Generator, size: int, octaves: int = 6) -> np.ndarray:
    """Smooth fractal noise in [0, 1]: coarse random grids upsampled bilinearly and summed."""
    total = np.zeros((size, size))
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        cells = 3 * 2**octave
        grid = rng.random((cells, cells)).astype(np.float32)
        layer = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        total += amplitude * np.asarray(layer, dtype=np.float64)
        weight += amplitude
        amplitude *= 0.55
    total /= weight
    total -= total.min()
    return total / max(total.max(), 1e-12)


def _draw_feather(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int) -> None:
    """One ice feather: a slowly turning stem whose side branches shrink towards its tip."""
    x, y = rng.uniform(-0.1, 1.1, size=2) * size
    heading = rng.uniform(0.0, 2.0 * math.pi)
    steps = int(rng.integers(12, 40))
    step_len = rng.uniform(4.0, 9.0)
    shade = int(rng.integers(150, 256))
    branch_len = rng.uniform(8.0, 30.0)
    for step in range(steps):
        heading += rng.normal(0.0, 0.12)
        nx, ny = x + step_len * math.cos(heading), y + step_len * math.sin(heading)
        draw.line([(x, y), (nx, ny)], fill=shade, width=2 if step < steps // 3 else 1)
        taper = 1.0 - step / steps
        for side in (-1.0, 1.0):
            if rng.random() < 0.8:
                angle = heading + side * (math.pi / 3.0 + rng.normal(0.0, 0.1))
                length = branch_len * taper * rng.uniform(0.5, 1.0)
                bx, by = x + length * math.cos(angle), y + length * math.sin(angle)
                draw.line([(x, y), (bx, by)], fill=int(shade * rng.uniform(0.6, 1.0)), width=1)
        x, y = nx, ny


@lru_cache(maxsize=NUM_TEXTURES)
def frost_texture(index: int) -> np.ndarray:
    """Frost texture ``index`` (0..NUM_TEXTURES-1) as uint8 RGB of TEXTURE_SIZE x TEXTURE_SIZE."""
    if not 0 <= index < NUM_TEXTURES:
        raise ValueError(f"frost texture index must be in 0..{NUM_TEXTURES - 1}, got {index}")
    rng = np.random.default_rng(_SEED_BASE + index)
    size = TEXTURE_SIZE
    haze = _value_noise(rng, size)

    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(70, 110))):
        _draw_feather(draw, rng, size)
    for _ in range(1500):  # loose needles between the feathers
        x, y = rng.uniform(0, size, size=2)
        angle = rng.uniform(0.0, math.pi)
        length = rng.uniform(2.0, 10.0)
        end = (x + length * math.cos(angle), y + length * math.sin(angle))
        draw.line([(x, y), end], fill=int(rng.integers(60, 200)), width=1)
    crystals = np.asarray(canvas.filter(ImageFilter.GaussianBlur(0.7)), dtype=np.float64) / 255.0

    # Crystals sit on a cloudy layer whose thickness also modulates them, as on a real pane.
    value = 0.2 + 0.5 * haze + 0.8 * crystals * (0.4 + 0.6 * haze)
    value = np.clip(value, 0.0, 1.0)
    rgb = value[..., None] * _TINT * 255.0
    return np.clip(rgb, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- the reference pictures

# ImageNet-C's frost photographs, in the order its code lists them; it draws from the first five.
REFERENCE_PICTURES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
REFERENCE_DRAWN = 5


@lru_cache(maxsize=1)
def reference_source() -> tuple[str, str] | None:
    """(distribution and version, folder) of the installed package that ships ImageNet-C's frost
    pictures (``pip install ovss[frost]`` installs imagecorruptions-imaug), or None: procedural."""
    import importlib.util
    from importlib import metadata
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "frost"
    if not all((folder / name).is_file() for name in REFERENCE_PICTURES[:REFERENCE_DRAWN]):
        return None
    for dist in ("imagecorruptions-imaug", "imagecorruptions"):
        try:
            return f"{dist}=={metadata.version(dist)}", str(folder)
        except metadata.PackageNotFoundError:
            continue
    return "imagecorruptions (version unknown)", str(folder)


def frost_source() -> str:
    """What frost uses in this process, as results record it."""
    ref = reference_source()
    return f"pictures from {ref[0]}" if ref else "procedural textures (install ovss[frost] for the reference pictures)"


@lru_cache(maxsize=REFERENCE_DRAWN)
def reference_picture(index: int) -> np.ndarray:
    """Reference frost picture ``index`` as uint8 RGB (read, never copied into ovss)."""
    import cv2

    ref = reference_source()
    if ref is None:
        raise ValueError("no package with the frost pictures is installed")
    bgr = cv2.imread(str(Path(ref[1]) / REFERENCE_PICTURES[index]))
    return np.ascontiguousarray(bgr[..., ::-1])

