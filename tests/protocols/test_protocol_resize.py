"""Resizing as the mmseg-based protocols do it: uint8 OpenCV bilinear, mmcv's keep-ratio rounding."""
import cv2
import numpy as np
import pytest
import torch

from ovss.errors import OvssError
from ovss.segment import Segmenter, get_preset
from ovss.segment.resize import resize_bilinear_uint8
from ovss.segment.sliding import resized_size


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("src,dst", [((37, 53), (19, 91)), ((101, 77), (224, 224)), ((15, 9), (7, 33))])
def test_equals_cv2_on_odd_sizes(src, dst):
    image = _image(*src)
    ours = resize_bilinear_uint8(image, dst)
    ref = cv2.resize(image, (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR)  # cv2 takes (w, h)
    assert ours.dtype == np.uint8 and ours.shape == (*dst, 3)
    assert np.array_equal(ours, ref)


def test_uint8_resize_differs_from_float_resize():
    # the reason for the rule: torch's float bilinear, rounded, is not OpenCV's fixed-point uint8 result
    image = _image(37, 53, seed=1)
    ours = resize_bilinear_uint8(image, (23, 31)).astype(np.int16)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    torch_px = torch.nn.functional.interpolate(x, size=(23, 31), mode="bilinear", align_corners=False)
    torch_px = torch_px[0].permute(1, 2, 0).round().numpy().astype(np.int16)
    assert np.abs(ours - torch_px).max() >= 1


def test_keep_ratio_rounding_is_mmcv_rescale_size():
    # mmcv rescale_size: s = min(long_cap / long, short / short_side); new = int(x * s + 0.5)
    # 333 x 500 to (2048, 336): s = 336/333 = 1.009009...; 500 * s = 504.50 -> 505, 333 * s = 336
    assert resized_size(333, 500, 336) == (336, 505)
    # 375 x 499: s = 336/375 = 0.896; 499 * 0.896 = 447.104 -> 447
    assert resized_size(375, 499, 336) == (336, 447)


def test_segmenter_feeds_the_cv2_pixels(tiny_random):
    seg = Segmenter(tiny_random, preset="naclip")
    image = _image(41, 57, seed=2)
    th, tw = resized_size(41, 57, 336)
    ref = cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    mean = np.array(tiny_random.mean, dtype=np.float32)
    std = np.array(tiny_random.std, dtype=np.float32)
    expected = torch.from_numpy((ref - mean) / std).permute(2, 0, 1)[None]
    got = seg.preprocess(image)
    assert got.shape == (1, 3, th, tw)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # a uint8 tensor (3 x H x W) takes the same path
    torch.testing.assert_close(seg.preprocess(torch.from_numpy(image).permute(2, 0, 1)), expected, rtol=0, atol=1e-6)


def test_torch_mode_keeps_the_float_resize(tiny_random):
    seg = Segmenter(tiny_random, preset="naclip", resize_mode="torch")
    image = _image(41, 57, seed=3)
    th, tw = resized_size(41, 57, 336)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    x = torch.nn.functional.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False) / 255.0
    mean = torch.tensor(tiny_random.mean).view(1, 3, 1, 1)
    std = torch.tensor(tiny_random.std).view(1, 3, 1, 1)
    torch.testing.assert_close(seg.preprocess(image), (x - mean) / std)
    assert seg.settings()["resize_mode"] == "torch"


def test_every_preset_resizes_with_opencv_and_bad_mode_is_one_line():
    for name in ("naclip", "sclip", "clearclip", "mlmp", "shapesworld"):
        assert get_preset(name).resize_mode == "opencv"
    with pytest.raises(OvssError, match="unknown resize_mode 'pil'; choose one of: opencv, torch"):
        get_preset("naclip").with_overrides(resize_mode="pil")
