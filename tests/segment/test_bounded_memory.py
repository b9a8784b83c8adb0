"""Bounded memory: the banded and chunked paths give the plain path's labels; reductions are said.

The limits of ``ovss.segment.bounded`` are lowered so that small images take the paths a
24-megapixel photo takes; the plain path (limits as shipped) is the reference.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ovss.cli import main
from ovss.segment import Segmenter, bounded
from ovss.segment.bounded import bounded_size, upsample_rows

CLASSES = [["sky"], ["grass", "lawn"], ["water", "sea"], ["sand"], ["tree"], ["house", "building"]]


@pytest.fixture(scope="module")
def scene():
    from ovss.world import make_scene

    return np.asarray(make_scene(11, size=(72, 108)).image)


@pytest.fixture(scope="module")
def embedded():
    from ovss.model import load_model

    return load_model()


@pytest.mark.parametrize("src_size, size", [((37, 53), (301, 411)), ((20, 30), (20, 45)), ((40, 60), (17, 23))])
def test_upsample_rows_equals_interpolate(src_size, size):
    torch.manual_seed(0)
    src = torch.randn(4, *src_size)
    full = F.interpolate(src[None], size=size, mode="bilinear", align_corners=False)[0]
    bands = torch.cat([upsample_rows(src, size, a, min(a + 7, size[0])) for a in range(0, size[0], 7)], dim=1)
    assert bands.shape == full.shape
    assert torch.allclose(bands, full, rtol=0, atol=2e-6)  # float rounding only (one or two ulp)


def test_bounded_size_keeps_ratio_and_limit():
    assert bounded_size((4000, 6000), 2048 * 1024) == (1182, 1773)
    assert 1182 * 1773 <= 2048 * 1024
    assert bounded_size((1024, 2048), 2048 * 1024) == (1024, 2048)  # Cityscapes stays as it is


@pytest.mark.parametrize("preset, dataset", [("sclip", "voc21"), ("naclip", None), ("clearclip", None),
                                             ("mlmp", None), ("shapesworld", None)])
def test_banded_decode_gives_the_plain_labels(embedded, scene, monkeypatch, preset, dataset):
    seg = Segmenter(embedded, preset=preset, dataset=dataset)
    seg.set_image(scene)  # encoded once; both decodes below reuse the features
    plain = seg.predict(classes=CLASSES)
    assert plain.reduced is None
    monkeypatch.setattr(bounded, "MAX_DENSE_ELEMENTS", 1)  # every output takes the banded path
    monkeypatch.setattr(bounded, "BAND_ELEMENTS", 8 * 108 * 9)  # bands of 9 rows
    banded = seg.predict(classes=CLASSES)
    size = list(plain.labels.shape)
    assert banded.reduced["labels_size"] == size and "pamr_size" not in banded.reduced
    assert torch.equal(banded.labels, plain.labels)
    assert torch.allclose(banded.confidence, plain.confidence, rtol=0, atol=1e-5)
    # scores stay at the size the model worked at (PAMR's output size for naclip)
    worked_at = tuple(size) if seg.preset.pamr else seg._encoded.input_size
    assert tuple(banded.probs.shape[-2:]) == worked_at
    assert banded.shares() == plain.shares()


def test_chunked_windows_give_the_same_features_and_labels(embedded, scene, monkeypatch):
    seg = Segmenter(embedded, preset="shapesworld")
    plain = seg.predict(scene, CLASSES)
    plain_features = seg._encoded.features.clone()
    monkeypatch.setattr(bounded, "WINDOW_CHUNK_PIXELS", 2 * 112 * 112)  # two windows per encoder call
    chunked = seg.predict(scene, CLASSES)
    assert seg._encoded.features.shape == plain_features.shape
    assert torch.allclose(seg._encoded.features, plain_features, rtol=0, atol=1e-5)
    assert torch.equal(chunked.labels, plain.labels)


def test_pamr_and_input_at_a_bounded_size_keep_full_size_labels(embedded, scene, monkeypatch):
    plain_naclip = Segmenter(embedded, preset="naclip").predict(scene, CLASSES)
    plain_sw = Segmenter(embedded, preset="shapesworld").predict(scene, CLASSES)
    monkeypatch.setattr(bounded, "MAX_WORK_PIXELS", 36 * 54)  # a quarter of the pixels
    naclip = Segmenter(embedded, preset="naclip").predict(scene, CLASSES)
    assert naclip.reduced == {"labels_size": [72, 108], "pamr_size": [36, 54], "scores_size": [36, 54]}
    assert naclip.labels.shape == (72, 108)
    assert (naclip.labels == plain_naclip.labels).float().mean() > 0.85
    monkeypatch.setattr(bounded, "MAX_INPUT_PIXELS", 36 * 54)
    seg = Segmenter(embedded, preset="shapesworld")
    sw = seg.predict(scene, CLASSES)
    assert seg._encoded.input_size == (36, 54) and seg._encoded.bounded_from == (72, 108)
    assert sw.reduced["input_size"] == [36, 54] and sw.labels.shape == (72, 108)
    assert (sw.labels == plain_sw.labels).float().mean() > 0.6


def test_segment_says_what_ran_at_a_reduced_size(scene, tmp_path, monkeypatch, capsys):
    Image.fromarray(scene).save(tmp_path / "photo.png")
    monkeypatch.setattr(bounded, "MAX_WORK_PIXELS", 36 * 54)
    monkeypatch.setattr(bounded, "MAX_INPUT_PIXELS", 36 * 54)
    import ovss.viz

    monkeypatch.setattr(ovss.viz, "OVERLAY_MAX_PIXELS", 24 * 36)
    out = tmp_path / "out"
    rc = main(["segment", str(tmp_path / "photo.png"), "--classes", "sky, grass, water", "--preset", "naclip",
               "--pamr", "--out", str(out / "naclip")])
    rc += main(["segment", str(tmp_path / "photo.png"), "--classes", "sky, grass, water", "--preset", "shapesworld",
                "--out", str(out / "sw")])
    assert rc == 0
    err = capsys.readouterr().err
    # naclip resizes to a short side of 336 itself: only PAMR and the overlay are bounded
    assert ("is 108x72 pixels: PAMR ran at 54x36, the overlay is at 36x24, to bound memory; labels are at full size"
            in err)
    assert "is 108x72 pixels: the model saw it at 54x36, the overlay is at 36x24, to bound memory" in err
    meta = json.loads((out / "naclip/photo.json").read_text())
    assert meta["reduced"] == {"why": "bounded memory", "labels_size": [72, 108], "pamr_size": [36, 54],
                               "overlay_size": [24, 36]}
    meta = json.loads((out / "sw/photo.json").read_text())
    assert meta["reduced"] == {"why": "bounded memory", "labels_size": [72, 108], "input_size": [36, 54],
                               "overlay_size": [24, 36]}
    out = out / "naclip"
    assert np.asarray(Image.open(out / "photo.png")).shape == (72, 108)
    overlay = Image.open(out / "photo_overlay.png")
    assert overlay.height == max(24, overlay.height) and overlay.width > 36  # 36 px of photo plus the legend


def test_normal_images_record_no_reduction(scene, tmp_path, capsys):
    Image.fromarray(scene).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "photo.png"), "--classes", "sky, grass", "--out", str(out)]) == 0
    assert "note:" not in capsys.readouterr().err
    assert "reduced" not in json.loads((out / "photo.json").read_text())


def test_segment_with_the_mlmp_preset_labels_the_photo_at_its_size(scene, tmp_path):
    # mlmp scores at its 224 x 224 input size; a segmented photo still gets labels of its own size
    Image.fromarray(scene).save(tmp_path / "photo.png")
    assert main(["segment", str(tmp_path / "photo.png"), "--classes", "sky, grass", "--preset", "mlmp",
                 "--out", str(tmp_path / "out")]) == 0
    assert np.asarray(Image.open(tmp_path / "out/photo.png")).shape == (72, 108)
