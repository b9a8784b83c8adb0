"""Training pairs from ShapesWorld 2, the augmentations, and resumable checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ovss.errors import OvssError
from ovss.tinyclip.recipe import TinyClipRecipe
from ovss.tinyclip.train import PairStream, augment, train_tiny_clip
from ovss.world.sw2_scene import classes_in_caption2


def test_pairs_from_shapesworld2():
    stream = PairStream(TinyClipRecipe(world="shapesworld2", object_share=0.0, template_share=0.0), ("a photo of a {}.",))
    rng = np.random.default_rng(0)
    for _ in range(4):
        image, caption, boxes, region_captions = stream.sample(rng)
        assert image.shape == (3, 112, 112) and image.dtype == torch.uint8
        assert classes_in_caption2(caption)  # a complete caption names what the window shows
        for (y0, x0, y1, x1), text in zip(boxes.tolist(), region_captions):
            assert (y0 < 0) == (text == "")
            assert y0 < 0 or (0 <= y0 < y1 <= 14 and 0 <= x0 < x1 <= 14)


def test_augment_changes_pixels_only():
    rng = np.random.default_rng(1)
    image = (np.random.default_rng(2).random((32, 32, 3)) * 255).astype(np.uint8)
    changed = 0
    for _ in range(14):
        out = augment(image, rng)
        assert out.shape == image.shape and out.dtype == np.uint8
        changed += not np.array_equal(out, image)
    assert changed == 14


def test_a_checkpoint_of_another_recipe_is_refused(tmp_path):
    out = tmp_path / "w.safetensors"
    other = TinyClipRecipe(steps=7)
    torch.save({"config": json.dumps(other.__dict__), "step": 3}, out.with_suffix(".ckpt.pt"))
    with pytest.raises(OvssError, match="another recipe"):
        train_tiny_clip(out, TinyClipRecipe(steps=8), progress=False)
    assert not out.exists()


def test_unknown_world_is_refused():
    with pytest.raises(OvssError, match="unknown world"):
        PairStream(TinyClipRecipe(world="mars"), ("{}",))
