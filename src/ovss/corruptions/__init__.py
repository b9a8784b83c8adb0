"""ImageNet-C corruptions applied on the fly, deterministically per image.

The MLMP benchmark evaluates every dataset clean (``original``) and under the 15 ImageNet-C
corruptions at severity 1..5. ``corrupt(image, name, severity, key)`` seeds its randomness from a
SHA-256 of (name, severity, key), so an image gets the same corruption in every run, process and
data-loader worker, without storing corrupted copies on disk.

The definitions follow ``imagecorruptions`` (the any-size port of ImageNet-C that MLMP uses); see
``ovss.corruptions.imagenet_c`` for the few deliberate differences. The notable one: **frost uses
ImageNet-C's frost pictures when a package that ships them is installed** (``pip install ovss[frost]``:
imagecorruptions-imaug; read from that package, not copied into ovss), else procedural frost textures
(``ovss.corruptions.frost``), comparable in kind but not bit-identical to published ImageNet-C/MLMP
frost results; ``frost.frost_source()`` says which runs, and bench results record it.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from ovss.errors import OvssError

from . import imagenet_c as _c

CorruptionFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

CORRUPTION_NAMES: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
ALL_SCENARIOS: tuple[str, ...] = ("original",) + CORRUPTION_NAMES
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# name -> fn(image uint8 HxWx3, severity 1..5, rng) -> uint8 HxWx3; "original" is the identity so
# that every scenario can be looked up the same way.
CORRUPTIONS: dict[str, CorruptionFn] = {name: getattr(_c, name) for name in ALL_SCENARIOS}


def _check(name: str, severity: int) -> None:
    if name not in CORRUPTIONS:
        raise OvssError(f"unknown corruption {name!r}; choose one of: {', '.join(ALL_SCENARIOS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise OvssError(f"corruption severity must be one of 1, 2, 3, 4, 5, got {severity!r}")


def corruption_rng(name: str, severity: int, key: str | int | bytes) -> np.random.Generator:
    """The generator for (name, severity, key): a SHA-256 seed, stable across runs and processes."""
    key_bytes = key if isinstance(key, bytes) else str(key).encode("utf-8")
    digest = hashlib.sha256(f"{name}\x00{int(severity)}\x00".encode("utf-8") + key_bytes).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def corrupt(
    image: np.ndarray, name: str, severity: int = 5, key: str | int | bytes | None = None
) -> np.ndarray:
    """Return ``image`` (uint8 HxWx3) under corruption ``name`` at ``severity``.

    ``key`` identifies the image (file name or dataset index) and fixes the random draws; when it is
    None the image's own bytes are hashed, so identical images still get identical corruptions.
    """
    _check(name, severity)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise OvssError(
            f"corrupt() needs a uint8 HxWx3 RGB image, got dtype {image.dtype} shape {image.shape}"
        )
    image = np.ascontiguousarray(image)
    if key is None:
        key = hashlib.sha256(repr(image.shape).encode() + image.tobytes()).digest()
    rng = corruption_rng(name, int(severity), key)
    out = CORRUPTIONS[name](image, int(severity), rng)
    assert out.shape == image.shape and out.dtype == np.uint8
    return out


__all__ = [
    "ALL_SCENARIOS",
    "CORRUPTIONS",
    "CORRUPTION_NAMES",
    "SEVERITIES",
    "corrupt",
    "corruption_rng",
]
