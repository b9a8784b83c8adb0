"""ovss-tiny's training recipe: the contrastive loss, the region and level embeddings, a short run."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from ovss.model import load_model
from ovss.tinyclip.train import (
    TinyClipRecipe, _encode_with_regions, _pool_regions, _region_weights, contrastive_loss, train_tiny_clip,
)


class TestContrastiveLoss:
    def test_two_embeddings_of_one_caption_by_hand(self):
        img = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        txt = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        loss = contrastive_loss(img, txt, torch.tensor([0, 1, 0]), torch.tensor(2.0))
        # logits: rows (2, 0), (0, 2), (2, 0); every image's own caption scores 2
        i2t = math.log(math.exp(2) + 1) - 2
        # text->image: caption 0 owns images 0 and 2 (half each), caption 1 owns image 1
        lse_c0 = math.log(2 * math.exp(2) + 1)  # column 0 over images: 2, 0, 2
        lse_c1 = math.log(2 + math.exp(2))  # column 1: 0, 2, 0
        t2i = ((lse_c0 - 2) + (lse_c1 - 2)) / 2
        assert loss.item() == pytest.approx(0.5 * (i2t + t2i), rel=1e-6)

    def test_gradient_reaches_both_sides(self):
        img = torch.randn(4, 8, requires_grad=True)
        txt = torch.randn(3, 8, requires_grad=True)
        contrastive_loss(F.normalize(img, dim=-1), F.normalize(txt, dim=-1), torch.tensor([0, 1, 2, 2]), torch.tensor(10.0)).backward()
        assert img.grad.abs().sum() > 0 and txt.grad.abs().sum() > 0


class TestRegionEmbeddings:
    def test_levels_are_pooled_attention_outputs(self, tiny_random):
        torch.manual_seed(0)
        clip = tiny_random.clip
        x = torch.randn(2, 3, 112, 112)
        boxes = torch.tensor([[[0, 0, 3, 4], [-1, -1, -1, -1]], [[2, 5, 6, 9], [10, 10, 14, 14]]])
        captions = [["a boat", "sky"], ["", "a car"]]  # captions[r][b], as the DataLoader collates them
        with torch.no_grad():
            pooled, region, texts, level, level_texts, maps = _encode_with_regions(clip, x, boxes, captions,
                                                                                  levels=[2, 4])
            assert torch.allclose(pooled, clip.encode_image(x), atol=1e-5)  # open_clip's own embedding
            # 3 captioned boxes: final + value path each; 2 levels each
            assert region.shape == (6, 128) and texts == ["a boat", "sky", "a car"] * 2
            assert level.shape == (6, 128) and level_texts == texts
            # level 2, box (1, 0) by hand: block 2's attention output, ln_post, proj, mean over the box
            v = clip.visual
            t = v._embeds(x)
            for block in v.transformer.resblocks[:2]:
                t = block(t)
            b2 = v.transformer.resblocks[2]
            a = b2.ls_1(b2.attention(q_x=b2.ln_1(t)))
            dense = (v.ln_post(a[:, 1:]) @ v.proj).reshape(2, 14, 14, -1)
            assert torch.allclose(level[1], dense[1, 2:6, 5:9].mean(dim=(0, 1)), atol=1e-5)
            # the per-patch maps: the value path, then levels 2 and 4; level 2's is ``dense`` itself
            assert len(maps) == 3 and torch.allclose(maps[1], dense, atol=1e-5)

    def test_pooling_is_the_box_mean_with_its_gradient(self):
        # the one-matmul pooling equals a mean over each box's slice, values and gradients
        torch.manual_seed(0)
        patches = torch.randn(3, 5, 6, 4, requires_grad=True)
        boxes = torch.tensor([[[0, 0, 2, 3], [-1, -1, -1, -1]], [[1, 2, 5, 6], [4, 5, 5, 6]], [[-1, -1, -1, -1]] * 2])
        captions = [["a", "x", ""], ["", "b", ""]]
        weights, texts = _region_weights(boxes, captions, (5, 6))
        assert weights.shape == (3, 90) and texts == ["a", "x", "b"]
        pooled = _pool_regions(patches, weights)
        expected = torch.stack([patches[0, 0:2, 0:3].mean(dim=(0, 1)), patches[1, 1:5, 2:6].mean(dim=(0, 1)),
                                patches[1, 4, 5]])
        assert torch.allclose(pooled, expected, atol=1e-6)
        coef = torch.randn(3, 4)
        (grad,) = torch.autograd.grad((pooled * coef).sum(), patches)
        ref = torch.zeros_like(patches)
        ref[0, 0:2, 0:3] += coef[0] / 6
        ref[1, 1:5, 2:6] += coef[1] / 16
        ref[1, 4, 5] += coef[2]  # a 1 x 1 box inside the second: both gradients add up
        assert torch.allclose(grad, ref, atol=1e-6)
        assert _region_weights(boxes[2:], [[""], [""]], (5, 6))[0].shape == (0, 30)

    def test_no_levels(self, tiny_random):
        with torch.no_grad():
            out = _encode_with_regions(tiny_random.clip, torch.randn(1, 3, 112, 112),
                                       torch.tensor([[[0, 0, 2, 2]]]), [["sky"]])
        assert out[3].shape == (0, 128) and out[4] == []
        assert len(out[5]) == 1 and out[5][0].shape == (1, 14, 14, 128)  # the value path's map alone


class TestTraining:
    def test_short_run_writes_a_loadable_compact_checkpoint(self, tmp_path):
        cfg = TinyClipRecipe(steps=2, batch_size=6, warmup=1, workers=0, bf16=False, level_weight=0.5)
        summary = train_tiny_clip(tmp_path / "t.safetensors", cfg, progress=False)
        log = json.loads((tmp_path / "t.train.json").read_text())
        assert summary["config"]["level_weight"] == 0.5 and len(log["log"]) == 2
        assert all(math.isfinite(r["loss"]) for r in log["log"])
        model = load_model("ovss-tiny", str(tmp_path / "t.safetensors"))
        rows = model.clip.token_embedding.weight
        assert 0 < int((rows.abs().sum(dim=1) > 0).sum()) == summary["tokens_seen"]


def test_the_dense_term_adds_a_class_cross_entropy(tmp_path):
    """Same seed, same first batch: the first logged loss with --dense-weight 1 exceeds the one
    without by the per-patch soft cross-entropy over ShapesWorld's 19 classes, which for a random
    model (near-uniform logits: scale 14.3 times cosines of random 128-d vectors) is about ln 19 = 2.94."""
    first = {}
    for weight in (0.0, 1.0):
        cfg = TinyClipRecipe(steps=1, batch_size=4, warmup=1, workers=0, bf16=False, dense_weight=weight)
        train_tiny_clip(tmp_path / f"d{weight}.safetensors", cfg, progress=False)
        first[weight] = json.loads((tmp_path / f"d{weight}.train.json").read_text())["log"][0]["loss"]
    assert 2.4 < first[1.0] - first[0.0] < 3.5


def test_each_embedded_tags_recipe_is_the_one_its_log_records():
    """`ovss world train --recipe TAG` retrains an embedded file: its recipe equals the settings the
    shipped file's training log records (docs/ovss-tiny-TAG.train.json; older logs lack newer fields,
    whose defaults mean "off")."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from ovss.model.loading import EMBEDDED_WEIGHTS
    from ovss.tinyclip.recipe import RECIPES

    assert set(RECIPES) == set(EMBEDDED_WEIGHTS["ovss-tiny"])
    docs = Path(__file__).resolve().parents[2] / "docs"
    for tag, recipe in RECIPES.items():
        logged = json.loads((docs / f"ovss-tiny-{tag}.train.json").read_text())["config"]
        mine = asdict(recipe)
        assert {k: mine[k] for k in logged} == logged, tag


def test_cli_train_starts_from_the_recipe_and_flags_change_single_settings(tmp_path, monkeypatch, capsys):
    from ovss.cli import main
    from ovss.tinyclip import train as train_module

    seen = []
    monkeypatch.setattr(train_module, "train_tiny_clip",
                        lambda out, recipe, progress: seen.append(recipe) or {"model": "ovss-tiny", "seconds": 0})
    out = str(tmp_path / "t.safetensors")
    assert main(["world", "train", "--out", out, "--steps", "3"]) == 0  # the default: shapesworld2's recipe
    assert (seen[-1].world, seen[-1].dense_weight, seen[-1].batch_size, seen[-1].steps) == ("shapesworld2", 3.0, 64, 3)
    assert main(["world", "train", "--out", out, "--recipe", "shapesworld-levels", "--world", "shapesworld"]) == 0
    assert (seen[-1].world, seen[-1].level_weight, seen[-1].steps, seen[-1].dense_weight) == ("shapesworld", 0.5, 600, 0.0)
    assert main(["world", "train", "--out", out, "--world", "mars"]) == 2
    assert "unknown world 'mars'" in capsys.readouterr().err and len(seen) == 2
    assert main(["world", "train", "--out", out, "--recipe", "shapesworld3"]) == 2
    err = capsys.readouterr().err
    assert err == "ovss: error: unknown recipe 'shapesworld3'; choose one of: shapesworld, shapesworld-levels, shapesworld2\n"
