"""Training pairs from ShapesWorld 2, the augmentations, and resumable checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ovss.errors import OvssError
from ovss.tinyclip.recipe import TinyClipRecipe
from ovss.tinyclip.train import PairStream, augment, dense_loss, patch_targets, train_tiny_clip
from ovss.world.sw2_scene import classes_in_caption2
from ovss.world.worlds import get_world


def test_pairs_from_shapesworld2():
    stream = PairStream(TinyClipRecipe(world="shapesworld2", object_share=0.0, template_share=0.0), ("a photo of a {}.",))
    rng = np.random.default_rng(0)
    for _ in range(4):
        image, caption, boxes, region_captions, labels = stream.sample(rng)
        assert image.shape == (3, 112, 112) and image.dtype == torch.uint8
        assert classes_in_caption2(caption)  # a complete caption names what the window shows
        # the labels are the window's own: every labelled class of it is named by the caption
        world = get_world("shapesworld2")
        shown = {world.classes[k] for k in torch.unique(labels).tolist() if k != 255}
        assert labels.shape == (112, 112) and shown and shown <= set(classes_in_caption2(caption))
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


def test_single_thing_labels_mark_the_thing_only():
    stream = PairStream(TinyClipRecipe(world="shapesworld2", object_share=1.0), ("a photo of a {}.",))
    image, caption, _, _, labels = stream.sample(np.random.default_rng(3))
    world = get_world("shapesworld2")
    values = set(torch.unique(labels).tolist())
    assert 255 in values and len(values) == 2  # the thing, and its ground left unknown
    (k,) = values - {255}
    assert world.classes[k] in caption or any(s in caption for s in world.synonyms.get(world.classes[k], ()))


def test_patch_targets_are_class_shares_of_labelled_pixels():
    # one 2 x 4 image, patches of 2 x 2: [0 0 | 1 255], [0 1 | 255 255]
    labels = torch.tensor([[[0, 0, 1, 255], [0, 1, 255, 255]]], dtype=torch.uint8)
    targets, weights = patch_targets(labels, num_classes=3, patch=2)
    assert torch.allclose(targets, torch.tensor([[0.75, 0.25, 0.0], [0.0, 1.0, 0.0]]))
    assert torch.allclose(weights, torch.tensor([1.0, 0.25]))
    empty = torch.full((1, 2, 2), 255, dtype=torch.uint8)
    t, w = patch_targets(empty, num_classes=3, patch=2)
    assert t.sum() == 0 and w.item() == 0


def test_dense_loss_is_the_weighted_soft_cross_entropy():
    # two patches (B=1, 1 x 2 grid, E=2), two classes along the axes, scale 1
    maps = [torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])]
    txt = torch.eye(2)
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    weights = torch.tensor([1.0, 0.5])
    lse = float(np.log(np.e + 1))  # logits (1, 0) and (0, 1): log-sum-exp is log(e + 1) for both
    first, second = lse - 1.0, 0.5 * (lse - 0.0) + 0.5 * (lse - 1.0)
    expected = (1.0 * first + 0.5 * second) / 1.5
    got = dense_loss(maps, txt, targets, weights, torch.tensor(1.0))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # a patch with no labelled pixel does not count
    assert dense_loss(maps, txt, targets, torch.tensor([1.0, 0.0]), torch.tensor(1.0)).item() == pytest.approx(first)
