"""Pictures a person would rather look at: palette PNGs, overlays with a legend, bar charts."""
from __future__ import annotations

import functools
import importlib.util
import os
import unicodedata
from pathlib import Path

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
    row = 16
    texts = {i: legend_line(_legend_text(i, names, shares)) for i in present}
    legend_w = 12 + max([_text_width(font, text) for font, text in texts.values()] + [60]) + 28
    h = max(body.height, row * len(present) + 12)
    canvas = Image.new("RGB", (body.width + legend_w, h), (255, 255, 255))
    canvas.paste(body, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, i in enumerate(present):
        y = 6 + k * row
        x = body.width + 8
        draw.rectangle([x, y, x + 12, y + 12], fill=tuple(int(c) for c in colours[i]), outline=(0, 0, 0))
        font, text = texts[i]
        draw.text((x + 18, y - 1), text, fill=(0, 0, 0), font=font)
    return canvas


# Fonts for the legend. DejaVu Sans ships with matplotlib (a dependency) and covers Latin, Greek,
# Cyrillic and more; scripts it lacks (CJK above all) are looked for in the usual places of the
# common systems. ``OVSS_LEGEND_FONT`` names one more font file to try first for those.
LEGEND_FONT_SIZE = 12
FALLBACK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simsun.ttc",
    "C:/Windows/Fonts/malgun.ttf",
)


def dejavu_path() -> Path:
    """matplotlib's copy of DejaVu Sans, found without importing matplotlib."""
    spec = importlib.util.find_spec("matplotlib")
    return Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"


@functools.lru_cache(maxsize=None)
def font_codepoints(path: str) -> frozenset[int]:
    """Every code point ``path``'s character map covers (first face of a collection)."""
    from fontTools.ttLib import TTFont

    with TTFont(path, fontNumber=0, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def _fonts() -> list[str]:
    main = [str(dejavu_path())]
    extra = [os.environ["OVSS_LEGEND_FONT"]] if os.environ.get("OVSS_LEGEND_FONT") else []
    return main + [p for p in [*extra, *FALLBACK_FONTS] if os.path.isfile(p)]


def _covered(path: str, text: str) -> bool:
    cmap = font_codepoints(path)
    return all(ord(c) in cmap or c.isspace() for c in text)


@functools.lru_cache(maxsize=None)
def _truetype(path: str):
    return ImageFont.truetype(path, LEGEND_FONT_SIZE)


def legend_line(text: str) -> tuple[object, str]:
    """The font to draw ``text`` with and the text to draw: DejaVu Sans when it covers every letter,
    else the first installed font that does, else DejaVu Sans with each letter no font covers
    written as its code point (``[U+732B]``) rather than an empty box."""
    fonts = _fonts()
    for path in fonts:
        if _covered(path, text):
            return _truetype(path), text
    cmap = font_codepoints(fonts[0])
    shown = "".join(c if ord(c) in cmap or c.isspace() else f"[U+{ord(c):04X}]" for c in text)
    return _truetype(fonts[0]), shown


def legend_fonts(names: list[str]) -> dict:
    """Which fonts draw ``names`` in the legend and what none covers, for the JSON and the log.

    ``{"font": "DejaVuSans.ttf", "fallback": [...], "uncovered": {"猫": "CJK"}}``; the last two
    only when used.
    """
    fonts = _fonts()
    used, uncovered = set(), {}
    for name in names:
        font = next((p for p in fonts if _covered(p, name)), None)
        if font is None:
            cmap = font_codepoints(fonts[0])
            uncovered.update({c: script_of(c) for c in name if ord(c) not in cmap and not c.isspace()})
        elif font != fonts[0]:
            used.add(Path(font).name)
    report: dict = {"font": Path(fonts[0]).name}
    if used:
        report["fallback"] = sorted(used)
    if uncovered:
        report["uncovered"] = uncovered
    return report


def legend_note(report: dict) -> str | None:
    """One line when some letters of the legend have no font, None otherwise."""
    if "uncovered" not in report:
        return None
    letters = "".join(report["uncovered"])
    scripts = ", ".join(sorted(set(report["uncovered"].values())))
    return (f"the overlay legend has letters no installed font covers ({letters}: {scripts}); they are drawn "
            "as code points [U+XXXX]; install a font for them (e.g. Noto Sans CJK) or name its file in "
            "OVSS_LEGEND_FONT")


def script_of(char: str) -> str:
    """The script a letter belongs to, as Unicode names it (``CJK``, ``HANGUL``, ``ARABIC``)."""
    name = unicodedata.name(char, "")
    return name.split(" ")[0] if name else f"U+{ord(char):04X}"


def _legend_text(i: int, names: list[str], shares: list[float] | None) -> str:
    if i == UNLABELLED:
        return "(unlabelled)"
    return f"{names[i]} {100 * shares[i]:.1f}%" if shares is not None else names[i]


def _text_width(font, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - left)
