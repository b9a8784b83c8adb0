"""Pictures a person would rather look at: palette PNGs, overlays with a legend, bar charts."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

UNLABELLED = 255
# overlays are pictures to look at: larger photos get an overlay of at most this many pixels
OVERLAY_MAX_PIXELS = 2048 * 2048


def palette(n: int = 256) -> np.ndarray:
    """n x 3 uint8 colours; the bit-interleaving palette of PASCAL VOC, distinct for small indices."""
    out = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out[i] = (r, g, b)
    # index 0 of VOC's palette is black; shift so every class gets a visible colour
    shifted = np.roll(out, -1, axis=0)
    shifted[UNLABELLED % n] = (0, 0, 0)
    return shifted


def label_png(labels: np.ndarray) -> Image.Image:
    """A palette ('P' mode) PNG whose pixel values are the class indices."""
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette(palette(256).flatten().tolist())
    return im


def overlay_size(height: int, width: int, max_pixels: int | None = None) -> tuple[int, int]:
    """The size ``overlay`` draws a ``height`` x ``width`` image at: unchanged up to ``max_pixels``
    (default ``OVERLAY_MAX_PIXELS``), else scaled down with its ratio kept."""
    limit = OVERLAY_MAX_PIXELS if max_pixels is None else max_pixels
    if height * width <= limit:
        return height, width
    scale = (limit / (height * width)) ** 0.5
    return max(1, int(height * scale)), max(1, int(width * scale))


def overlay(image: np.ndarray, labels: np.ndarray, names: list[str], shares: list[float] | None = None, alpha: float = 0.5,
            max_pixels: int | None = None) -> Image.Image:
    """The image blended with class colours, and a legend of the classes present on the right.

    Pixels labelled 255 (unlabelled, e.g. open-world mode) keep the plain image. Images above
    ``max_pixels`` are drawn at ``overlay_size`` (a 24-megapixel overlay is a 65 MB PNG nobody
    needs); the legend lists the classes present in the full-size labels.
    """
    colours = palette(256)
    size = overlay_size(*labels.shape[:2], max_pixels)
    present_labels = {i for i in [*range(len(names)), UNLABELLED] if (labels == i).any()}
    if size != tuple(labels.shape[:2]):
        image = np.asarray(Image.fromarray(image).resize(size[::-1], Image.BOX))
        labels = np.asarray(Image.fromarray(labels.astype(np.uint8)).resize(size[::-1], Image.NEAREST))
    tinted = image.astype(np.float32).copy()
    mask = labels != UNLABELLED
    tinted[mask] = (1 - alpha) * tinted[mask] + alpha * colours[labels[mask]].astype(np.float32)
    body = Image.fromarray(np.clip(tinted, 0, 255).astype(np.uint8))
    present = [i for i in range(len(names)) if i in present_labels]
    if UNLABELLED in present_labels:
        present.append(UNLABELLED)
    font = ImageFont.load_default()
    row = 16
    legend_w = 12 + max([_text_width(font, _legend_text(i, names, shares)) for i in present] + [60]) + 28
    h = max(body.height, row * len(present) + 12)
    canvas = Image.new("RGB", (body.width + legend_w, h), (255, 255, 255))
    canvas.paste(body, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, i in enumerate(present):
        y = 6 + k * row
        x = body.width + 8
        draw.rectangle([x, y, x + 12, y + 12], fill=tuple(int(c) for c in colours[i]), outline=(0, 0, 0))
        draw.text((x + 18, y), _legend_text(i, names, shares), fill=(0, 0, 0), font=font)
    return canvas


def _legend_text(i: int, names: list[str], shares: list[float] | None) -> str:
    if i == UNLABELLED:
        return "(unlabelled)"
    return f"{names[i]} {100 * shares[i]:.1f}%" if shares is not None else names[i]


def _text_width(font, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - left)
