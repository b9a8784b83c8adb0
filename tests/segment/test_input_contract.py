"""One input contract for images from Python and for numeric options: every accepted form gives the
labels of the uint8 H x W x 3 array, every refused one is one OvssError naming its rule."""
import numpy as np
import pytest
import torch
from PIL import Image

from ovss.cli import main
from ovss.errors import OvssError
from ovss.images import as_rgb
from ovss.segment import Segmenter, get_preset

CLASSES = "red, green, blue"


@pytest.fixture(scope="module")
def seg(tiny_random_module):
    return Segmenter(tiny_random_module, preset="naclip", pamr=False)


@pytest.fixture(scope="module")
def tiny_random_module():
    from ovss.model import load_model

    torch.manual_seed(0)
    return load_model("ovss-tiny", pretrained="none")


def _image():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8)


def test_accepted_forms_agree_with_the_uint8_array(seg):
    image = _image()
    want = seg.predict(image, CLASSES).labels
    forms = {
        "torch HWC uint8": torch.from_numpy(image),
        "torch CHW uint8": torch.from_numpy(image).permute(2, 0, 1),
        "torch 1xCHW uint8": torch.from_numpy(image).permute(2, 0, 1)[None],
        "numpy CHW uint8": np.ascontiguousarray(image.transpose(2, 0, 1)),
        "numpy int64 0..255": image.astype(np.int64),
        "PIL RGB": Image.fromarray(image),
        "PIL RGBA": Image.fromarray(image).convert("RGBA"),
    }
    for what, form in forms.items():
        assert torch.equal(seg.predict(form, CLASSES).labels, want), what
    # float in [0, 1]: the same pixels as floats; resized with torch's bilinear, so compare the input itself
    f = image.astype(np.float32) / 255
    np.testing.assert_allclose(as_rgb(f) * 255, image, atol=1e-4)
    np.testing.assert_array_equal(as_rgb(torch.from_numpy(f).permute(2, 0, 1)), f)
    assert seg.predict(f, CLASSES).labels.shape == (40, 52)
    exact = get_preset("naclip").with_overrides(resize_mode="torch")  # both through the float path: equal
    s2 = Segmenter(seg.model, preset=exact, pamr=False)
    assert torch.equal(s2.predict(f, CLASSES).labels, s2.predict(image, CLASSES).labels)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8, 3), bool), "image is a bool array (a mask?); pass pixel values: uint8 0..255 or float 0..1"),
    (np.full((8, 8, 3), np.nan, np.float32), "image has NaN or infinite values; pass finite pixel values"),
    (np.full((8, 8, 3), 200.0), "image is a float image with values 200..200; ovss reads float images as 0..1: "
                                "divide 0..255 floats by 255, or pass uint8"),
    (np.full((8, 8, 3), -0.5), "image is a float image with values -0.5..-0.5"),
    (np.full((8, 8, 3), 300), "image has dtype int64 with values 300..300; pass uint8 0..255 (or float 0..1)"),
    ([np.zeros((8, 8, 3), np.uint8)], "image must be one image (numpy array, torch tensor or PIL image), got a list of 1"),
    ("photo.png", "image must be a numpy array, torch tensor or PIL image, got str; read files with ovss.files.read_rgb"),
    (np.zeros((8, 8), np.uint8), "image has shape (8, 8); expected one RGB image, H x W x 3 or 3 x H x W; "
                                 "a grey image: repeat it into 3 channels"),
    (np.zeros((8, 8, 4), np.uint8), "image has shape (8, 8, 4); expected 3 colour channels (RGB), H x W x 3 or "
                                    "3 x H x W; drop the alpha channel"),
    (np.zeros((0, 8, 3), np.uint8), "image is empty (shape (0, 8, 3))"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "image has shape (2, 3, 8, 8); expected one RGB image"),
    (torch.full((8, 8, 3), float("nan")), "image has NaN or infinite values"),
    (torch.ones(8, 8, 3, dtype=torch.bool), "image is a bool array"),
])
def test_refused_forms_are_one_line_each(seg, bad, message):
    with pytest.raises(OvssError) as e:
        seg.predict(bad, CLASSES)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert e.value.param == "image"


def test_encode_images_takes_a_list_and_checks_each(seg):
    image = _image()
    with pytest.raises(OvssError, match="images must be a list of images, got ndarray"):
        seg.encode_images(image)
    with pytest.raises(OvssError, match="image is a bool array"):
        seg.encode_images([image, image > 0])
    enc = seg.encode_images([torch.from_numpy(image)])[0]
    assert torch.equal(seg.predict(classes=CLASSES, encoded=enc).labels, seg.predict(image, CLASSES).labels)


@pytest.mark.parametrize("key, value, message", [
    ("prob_thd", 2.0, "prob_thd must be between 0 and 1, got 2.0"),
    ("prob_thd", -0.1, "prob_thd must be between 0 and 1, got -0.1"),
    ("area_thd", 1.5, "area_thd must be between 0 and 1, got 1.5"),
    ("logit_scale", 0.0, "logit_scale must be above 0, got 0.0"),
    ("logit_scale", float("nan"), "logit_scale must be a finite number, got nan"),
    ("crop", 0, "crop must be a whole number of pixels, 1 or more, got 0"),
    ("resize_short", 33.5, "resize_short must be a whole number of pixels, 1 or more, got 33.5"),
    ("rcs_weights", (2.0,), "rcs_weights must be two numbers (tau, lambda), got (2.0,)"),
    ("resize_to", (0, 10), "resize_to must be two whole numbers (height, width), got (0, 10)"),
])
def test_numeric_options_are_checked(tiny_random_module, key, value, message):
    with pytest.raises(OvssError) as e:
        Segmenter(tiny_random_module, preset="naclip", **{key: value})
    assert str(e.value) == message and e.value.param == key


def test_cli_prob_thd_out_of_range_names_the_flag(tmp_path, capsys):
    Image.fromarray(_image()).save(tmp_path / "a.png")
    rc = main(["segment", str(tmp_path / "a.png"), "--classes", "a, b", "--model", "ovss-tiny", "--pretrained", "none",
               "--prob-thd", "2", "--out", str(tmp_path / "out")])
    assert rc == 2
    assert capsys.readouterr().err.strip() == "ovss: error: --prob-thd must be between 0 and 1, got 2.0"
    assert not (tmp_path / "out").exists()
