"""The overlay legend draws French, German and other non-ASCII names with real glyphs (no boxes),
and says so when no installed font covers a script (CJK without a CJK font)."""
import json

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from ovss import viz
from ovss.segment.single import write_segmentation
from ovss.text import parse_classes

WORDS = ["bateau à voile", "école", "Straße", "Größe", "œuvre", "naïve"]


def test_dejavu_covers_french_and_german_letters():
    report = viz.legend_fonts(WORDS)
    assert report == {"font": "DejaVuSans.ttf"}
    for word in WORDS:
        font, text = viz.legend_line(word)
        assert text == word  # drawn as typed
        cmap = TTFont(font.path, lazy=True).getBestCmap()
        assert all(ord(c) in cmap for c in word if c != " ")  # every letter has a glyph: no tofu


def test_legend_draws_accents_unlike_the_bitmap_font():
    # "e" and "é" must look different in the legend; the old bitmap font drew "é" as a box
    labels = np.zeros((8, 8), np.uint8)
    image = np.full((8, 8, 3), 128, np.uint8)
    a = np.asarray(viz.overlay(image, labels, ["ecole"]))
    b = np.asarray(viz.overlay(image, labels, ["école"]))
    assert a.shape == b.shape and (a != b).any()
    font, _ = viz.legend_line("école")
    assert font.path.endswith("DejaVuSans.ttf")


def test_uncovered_script_is_named_and_drawn_as_code_points(monkeypatch, tmp_path):
    monkeypatch.setattr(viz, "FALLBACK_FONTS", ())
    monkeypatch.delenv("OVSS_LEGEND_FONT", raising=False)
    report = viz.legend_fonts(["猫", "chat"])
    assert report == {"font": "DejaVuSans.ttf", "uncovered": {"猫": "CJK"}}
    assert viz.legend_line("猫 noir")[1] == "[U+732B] noir"
    note = viz.legend_note(report)
    assert "猫: CJK" in note and "\n" not in note
    classes = parse_classes("猫, chat")
    labels = np.zeros((4, 4), np.uint8)
    files = write_segmentation(tmp_path, "x", np.zeros((4, 4, 3), np.uint8), labels, classes,
                               {"猫": 1.0, "chat": 0.0}, "x.png", {})
    assert json.loads(files.record.read_text())["legend"] == report
    assert files.note == note


def test_a_fallback_font_draws_what_dejavu_lacks(monkeypatch):
    # any installed font covering CJK is used for names DejaVu lacks; pretend DejaVu Serif is one
    # by asking for a letter both lack: not covered; and for one only the fallback has
    serif = str(viz.dejavu_path().with_name("DejaVuSerif.ttf"))
    sans = viz.font_codepoints(str(viz.dejavu_path()))
    only_serif = next(c for c in sorted(viz.font_codepoints(serif)) if c not in sans and c > 0x100)
    monkeypatch.setattr(viz, "FALLBACK_FONTS", (serif,))
    letter = chr(only_serif)
    font, text = viz.legend_line(f"a{letter}")
    assert font.path == serif and text == f"a{letter}"
    assert viz.legend_fonts([f"a{letter}", "b"]) == {"font": "DejaVuSans.ttf", "fallback": ["DejaVuSerif.ttf"]}
    assert viz.legend_note(viz.legend_fonts([f"a{letter}"])) is None
