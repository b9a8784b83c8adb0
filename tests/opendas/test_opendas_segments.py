import numpy as np
import pytest
import torch

from ovss.opendas import class_masks, cut_segment, load_segments, mean_pixel
from ovss.opendas import segments as segments_module


def test_clip_mean_pixel():
    assert mean_pixel((0.48145466, 0.4578275, 0.40821073)) == (123, 117, 104)


def test_cut_segment_hand_case():
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    mask = np.zeros((5, 6), dtype=bool)
    mask[1, 2:5] = True  # a 2 x 3 L-shape: row 1 cols 2..4, row 2 col 2
    mask[2, 2] = True
    fill = (123, 117, 104)
    out = cut_segment(image, mask, fill)  # box rows 1..2, cols 2..4 -> 2 x 3, padded to 3 x 3
    assert out.shape == (3, 3, 3)
    # the 2-row crop sits on row 0..1 of the square ((3 - 2) // 2 = 0 rows above), the last row is fill
    assert (out[2] == fill).all()
    np.testing.assert_array_equal(out[0], image[1, 2:5])
    np.testing.assert_array_equal(out[1, 0], image[2, 2])
    assert (out[1, 1:] == fill).all()  # masked out inside the box


def test_cut_segment_resizes_to_model_input():
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:15, 10:30] = True
    assert cut_segment(image, mask, (1, 2, 3), size=16).shape == (16, 16, 3)
    with pytest.raises(ValueError):
        cut_segment(image, np.zeros_like(mask), (1, 2, 3))


def test_class_masks_skip_ignore_and_slivers():
    label = np.array([[0, 0, 1], [0, 255, 255], [2, 2, 2]], dtype=np.uint8)
    masks = class_masks(label, 255, min_pixels=2)
    assert [c for c, _ in masks] == [0, 2]
    assert masks[0][1].sum() == 3


def test_segments_are_cut_once_then_read_from_cache(tmp_path, monkeypatch):
    from ovss.world import write_dataset

    root = write_dataset(tmp_path / "sw", n=2, size=48, split="val", progress=False)
    first = load_segments("shapesworld", root, "val", 32, (123, 117, 104), cache_dir=tmp_path / "cache", progress=False)
    assert len(first) > 0 and first.images.shape[1:] == (32, 32, 3) and first.images.dtype == torch.uint8
    assert first.class_names[0] == "sky" and first.image_index.max() <= 1

    def boom(*args, **kwargs):
        raise AssertionError("segments were cut again instead of read from the cache")

    monkeypatch.setattr(segments_module, "cut_dataset", boom)
    second = load_segments("shapesworld", root, "val", 32, (123, 117, 104), cache_dir=tmp_path / "cache", progress=False)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.class_names == first.class_names
