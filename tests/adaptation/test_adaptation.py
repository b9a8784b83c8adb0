import json
import math

import numpy as np
import pytest
import torch

from ovss.adaptation import METHODS, MLMP, TENT, TPT, WATT, get_method
from ovss.adaptation.clipartt import distillation_loss, similarity_targets, topk_prompts
from ovss.adaptation.common import ParamSnapshot, average_weights, entropy, layernorm_parameters, prepare_batch
from ovss.adaptation.mlmp import fused_layers, layer_weights, level_tokens
from ovss.adaptation.tpt import random_resized_crops, select_confident
from ovss.text import get_templates
from ovss.errors import OvssError
from ovss.segment import Segmenter
from ovss.text import parse_classes

CLASSES = "cat, dog, sky, grass"
FAST = {  # few steps / views keep the suite fast; defaults are checked separately
    "tent": {}, "mlmp": {}, "clipartt": {"steps": 3}, "watt": {"rounds": 1, "templates": ["a {}.", "art of the {}."]}, "tpt": {"views": 8, "steps": 3},
}


@pytest.fixture(scope="module")
def seg(tiny_random):
    return Segmenter(tiny_random, preset="shapesworld")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)]


def _state(seg):
    return {k: v.detach().clone() for k, v in seg.model.clip.state_dict().items()}


def _run(method, seg, images, sizes=None, seed=0):
    torch.manual_seed(seed)
    return method(seg, images, CLASSES, sizes or [im.shape[:2] for im in images])


class TestDefaults:
    def test_seed_defaults(self):
        for name in ("tent", "tpt", "clipartt", "mlmp"):
            m = get_method(name)
            assert (m.steps, m.lr, m.optimizer, m.batch_size, m.episodic) == (10, 1e-3, "adam", 2, True)
        mlmp = get_method("mlmp")
        assert mlmp.alpha_cls == 1.0 and mlmp.layer_fraction == 0.75 and len(mlmp.templates) == 7
        watt = get_method("watt")
        assert (watt.steps, watt.rounds, len(watt.templates)) == (2, 5, 7)
        assert (get_method("tpt").views, get_method("tpt").select_ratio) == (64, 0.1)
        assert get_method("clipartt").k == 3
        assert set(METHODS) == {"none", "tent", "tpt", "watt", "clipartt", "mlmp"}

    def test_last_75_percent_of_layers(self):
        assert fused_layers(24, 0.75) == list(range(6, 24))  # MLMP's 18 of ViT-L/14
        assert fused_layers(12, 0.75) == list(range(3, 12))
        assert fused_layers(6, 0.75) == [1, 2, 3, 4, 5]
        assert fused_layers(6, 0.01) == [5]

    @pytest.mark.parametrize("name,kwargs,msg", [
        ("nope", {}, "unknown adaptation method 'nope'"),
        ("tent", {"steps": -1}, "steps must be"),
        ("tent", {"lr": 0}, "lr must be"),
        ("tent", {"optimizer": "lbfgs"}, "unknown optimizer"),
        ("tent", {"templates": "nope"}, "unknown template set"),
        ("mlmp", {"layer_fraction": 0}, "layer_fraction"),
        ("tpt", {"views": 0}, "views must be"),
        ("watt", {"rounds": 0}, "rounds must be"),
        ("tent", {"bogus": 1}, "unexpected keyword"),
    ])
    def test_user_mistakes_are_one_line_errors(self, name, kwargs, msg):
        with pytest.raises(OvssError, match=msg):
            get_method(name, **kwargs)


class TestResetAndTrainable:
    def test_snapshot_restores_bit_for_bit(self, seg):
        params = layernorm_parameters(seg.encoder.visual)
        before = {n: p.detach().clone() for n, p in params.items()}
        snap = ParamSnapshot(params)
        with torch.no_grad():
            for p in params.values():
                p.add_(torch.randn_like(p) * 1e-3)
        assert not all(torch.equal(before[n], p) for n, p in params.items())
        snap.restore()
        assert all(torch.equal(before[n], p) for n, p in params.items())

    def test_vision_layernorms_are_the_trainable_set(self, seg):
        params = layernorm_parameters(seg.encoder.visual)
        n_blocks = len(seg.encoder.blocks)
        assert len(params) == 2 * (2 * n_blocks + 2)  # ln_pre, ln_1/ln_2 per block, ln_post
        assert sum(p.numel() for p in params.values()) == 3584

    @pytest.mark.parametrize("name", ["tent", "mlmp", "clipartt", "watt", "tpt"])
    def test_only_chosen_parameters_change_and_call_restores_model(self, name, seg, images):
        method = get_method(name, **FAST[name])
        before = _state(seg)
        flags = [p.requires_grad for p in seg.model.clip.parameters()]
        seen = {}
        predict = method.predict

        def spy(*args, **kwargs):  # the model as adapted, just before evaluation
            seen.update(_state(seg))
            if name == "tpt":
                seen["ctx"] = method.trainable(seg)["ctx"].detach().clone()
            return predict(*args, **kwargs)

        method.predict = spy
        _run(method, seg, images)
        changed = {k for k in before if not torch.equal(before[k], seen[k])}
        if name == "tpt":  # prompt tuning: the model is untouched, only the context learns
            assert changed == set()
            assert not torch.equal(seen["ctx"], method.trainable(seg)["ctx"])  # restored after the call
        else:
            ln = {f"visual.{n}" for n in layernorm_parameters(seg.encoder.visual)}
            assert changed and changed <= ln
        after = _state(seg)
        assert all(torch.equal(before[k], after[k]) for k in before)  # the shared model is as it was
        assert flags == [p.requires_grad for p in seg.model.clip.parameters()]
        assert all(p.grad is None for p in seg.model.clip.parameters())

    def test_episodic_result_does_not_depend_on_history(self, seg, images):
        a, b = [images[0]], [images[1]]
        fresh = _run(get_method("tent", steps=3), seg, b)
        method = get_method("tent", steps=3)
        _run(method, seg, a)
        _run(method, seg, a)
        again = _run(method, seg, b)
        assert torch.equal(fresh[0], again[0])

    def test_online_mode_carries_over_and_reset_forgets(self, seg, images):
        b = [images[1]]
        fresh = get_method("tent", steps=3, lr=0.05, episodic=False)
        first = _run(fresh, seg, b)
        first_losses = list(fresh.last_losses)
        _run(fresh, seg, b)
        assert fresh.last_losses[0] < first_losses[0]  # starts where the last batch left off
        fresh.reset()
        _run(fresh, seg, b)
        assert fresh.last_losses == first_losses


class TestEntropyFalls:
    @pytest.mark.parametrize("cls", [TENT, MLMP])
    def test_entropy_of_a_fixed_batch_falls(self, cls, seg, images):
        method = cls()
        _run(method, seg, images)
        losses = method.last_losses
        assert len(losses) == 10
        assert losses[-1] < 0.8 * losses[0]
        assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:]))

    def test_tent_adapted_model_is_more_confident(self, seg, images):
        batch = prepare_batch(seg, images)
        text = seg.class_embeddings(parse_classes(CLASSES))

        def ent():
            with torch.no_grad():
                return float(sum(entropy(100 * seg.patch_features(w) @ text.T).mean() for w in batch.groups))

        method = get_method("tent")
        before, seen = ent(), []

        def spy(*args, **kwargs):  # measured on the adapted model, before the call restores it
            seen.append(ent())
            return []

        method.predict = spy
        _run(method, seg, images)
        assert seen[0] < before
        assert ent() == before  # and restored afterwards


class TestMLMP:
    def test_layer_weights_hand_case(self):
        # two levels, one image, one patch, two classes: level 0 uniform (entropy ln 2), level 1 certain (entropy 0)
        logits = torch.tensor([[[[0.0, 0.0]]], [[[1000.0, 0.0]]]])  # L x B x P x Q
        w = layer_weights(logits)
        assert torch.allclose(w[:, 0], torch.tensor([1 / 3, 2 / 3]), atol=1e-6)  # softmax(-ln 2, 0)

    def test_layer_weights_average_entropy_over_patches_per_image(self):
        p = torch.tensor([0.8, 0.2])
        h = float(-(p * p.log()).sum())
        lg = p.log()
        logits = torch.stack([
            torch.stack([lg, torch.zeros(2)])[None],  # level 0: patches with entropy h and ln 2
            torch.stack([torch.zeros(2), torch.zeros(2)])[None],  # level 1: both ln 2
        ])  # 2 x 1 x 2 x 2
        e0, e1 = (h + math.log(2)) / 2, math.log(2)
        expected = torch.softmax(torch.tensor([-e0, -e1]), 0)
        assert torch.allclose(layer_weights(logits)[:, 0], expected, atol=1e-6)

    def test_last_level_is_the_dense_head(self, seg, images):
        batch = prepare_batch(seg, images[:1])
        w = batch.groups[0]
        n = len(seg.encoder.blocks)
        with torch.no_grad():
            tokens, grid, glob = level_tokens(seg.encoder, w, [n - 2, n - 1], with_global=True)
            ref = seg.encoder(w, with_global=True)
            head = seg.encoder.project(tokens[n - 1][:, 1:]).reshape(ref.patch.shape)
        assert torch.allclose(head, ref.patch, atol=1e-6)
        assert torch.allclose(glob, ref.global_embedding, atol=1e-6)
        # an intermediate level is that block's attention output, not its residual stream
        with torch.no_grad():
            x, _ = seg.encoder.embed(w)
            for block in seg.encoder.blocks[: n - 2]:
                x = block(x)
            blk = seg.encoder.blocks[n - 2]
            attn = blk.attn(blk.ln_1(x), blk.ln_1(x), blk.ln_1(x), need_weights=False)[0]
        assert torch.allclose(tokens[n - 2], attn, atol=1e-6)

    def test_fused_features_follow_the_weights(self, seg, images):
        method = MLMP()
        w = prepare_batch(seg, images[:1]).groups[0]
        text = method.eval_text(seg, parse_classes(CLASSES))
        with torch.no_grad():
            feats, weights = method.fuse(seg, w, text)
        layers = method.layers(seg)
        assert weights.shape == (len(layers), 1)
        assert torch.allclose(weights.sum(0), torch.ones(1))
        assert feats.shape[-1] == 128 and torch.allclose(feats.norm(dim=-1), torch.ones(feats.shape[:-1]), atol=1e-5)


class TestTPT:
    def test_confidence_selection_picks_lowest_entropy_views(self):
        ent = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4, 1.0],
                            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]])
        assert select_confident(ent, 0.1).tolist() == [[1], [0]]
        assert sorted(select_confident(ent, 0.3)[0].tolist()) == [1, 3, 5]
        assert select_confident(ent[:, :4], 0.1).shape == (2, 1)  # at least one view

    def test_views(self):
        torch.manual_seed(0)
        w = torch.randn(2, 3, 16, 24)
        v = random_resized_crops(w, 5)
        assert v.shape == (2, 5, 3, 16, 24)
        assert torch.equal(v[:, 0], w)
        assert not torch.equal(v[:, 1], w)

    def test_context_starts_as_the_hand_prompt(self, seg):
        method = TPT()
        ctx = method.trainable(seg)["ctx"]
        assert ctx.shape == (4, 128)  # "a photo of a"

        classes = parse_classes(CLASSES)
        with torch.no_grad():
            learned = method.prompted_text(seg, classes, ctx)
        plain = seg.text.encode_texts([f"a photo of a {q}." for q in classes.queries])
        assert torch.allclose(learned, plain, atol=1e-5)


class TestWATTAndCLIPArTT:
    def test_weight_average_hand_case(self):
        per_template = [{"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0])},
                        {"w": torch.tensor([3.0, 6.0]), "b": torch.tensor([1.0])},
                        {"w": torch.tensor([2.0, 1.0]), "b": torch.tensor([2.0])}]
        avg = average_weights(per_template)
        assert torch.equal(avg["w"], torch.tensor([2.0, 3.0])) and torch.equal(avg["b"], torch.tensor([1.0]))

    def test_watt_final_weights_are_the_mean_over_templates(self, seg, images):
        method = WATT(rounds=1, templates=["a {}.", "itap of a {}.", "art of the {}."])
        reached, captured = [], {}
        step = method.step
        count = {"n": 0}

        def spy(optimizer, loss):
            out = step(optimizer, loss)
            count["n"] += 1
            if count["n"] % method.steps == 0:  # the end of a template
                reached.append({n: p.detach().clone() for n, p in method.trainable(seg).items()})
            return out

        method.step = spy
        def capture(*args, **kwargs):
            captured.update({n: p.detach().clone() for n, p in method.trainable(seg).items()})
            return []

        method.predict = capture
        _run(method, seg, images[:1])
        assert len(reached) == 3
        mean = average_weights(reached)
        assert all(torch.allclose(captured[n], mean[n], atol=1e-7) for n in mean)

    def test_clipartt_pseudo_label_prompts(self):
        logits = torch.tensor([[0.1, 0.9, 0.5, 0.0], [0.7, 0.2, 0.3, 0.8]])
        queries = ["cat", "dog", "sky", "grass"]
        assert topk_prompts(logits, queries, 3) == ["a photo of a dog or sky or cat", "a photo of a grass or cat or sky"]
        assert topk_prompts(logits, queries, 9)[0].count(" or ") == 3  # k capped at the number of queries

    def test_clipartt_soft_targets_hand_case(self):
        image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # both patches got the same pseudo-label
        # (I I^T + T T^T) / 2 = [[1, .5], [.5, 1]]; with tau = 0.5 the rows are softmax([2, 1]) and softmax([1, 2])
        t = similarity_targets(image, text, tau=0.5)
        a = math.e / (math.e + 1)
        assert torch.allclose(t, torch.tensor([[a, 1 - a], [1 - a, a]]), atol=1e-6)
        loss = distillation_loss(image, text, scale=1.0, tau=0.5)
        logp = torch.log_softmax(torch.tensor([[1.0, 1.0], [0.0, 0.0]]), -1)
        assert torch.isclose(loss, -(t * logp).sum(1).mean())


class TestOutputsAndCost:
    @pytest.mark.parametrize("name", ["none", "tent", "mlmp", "clipartt", "watt", "tpt"])
    def test_label_maps_of_the_requested_sizes(self, name, seg, images):
        method = get_method(name, **FAST.get(name, {}))
        labels = _run(method, seg, images, sizes=[(48, 48), (30, 40)])
        assert [tuple(l.shape) for l in labels] == [(48, 48), (30, 40)]
        assert all(int(l.max()) < 4 and l.dtype == torch.int64 for l in labels)
        cost = method.cost()
        assert cost["images"] == 2 and cost["eval_seconds_per_image"] > 0 and cost["peak_memory_mb"] > 0
        assert cost["learnable_params"] == {"none": 0, "tpt": 512}.get(name, 3584)
        assert (cost["adapt_seconds_per_image"] > 0) == (name != "none")
        json.dumps(method.hparams())

    def test_same_seed_same_labels(self, seg, images):
        a = _run(get_method("tpt", **FAST["tpt"]), seg, images, seed=3)
        b = _run(get_method("tpt", **FAST["tpt"]), seg, images, seed=3)
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_segment_cli_with_tta(tmp_path, capsys):
    from PIL import Image

    from ovss.cli import main

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "a.png"), "--classes", "boat, sky", "--model", "ovss-tiny",
            "--pretrained", "none", "--preset", "shapesworld", "--out", str(out)]
    assert main(args + ["--tta", "mlmp"]) == 0
    meta = json.loads((out / "a.json").read_text())
    assert meta["tta"]["method"] == "mlmp" and meta["tta"]["alpha_cls"] == 1.0
    assert np.asarray(Image.open(out / "a.png")).shape == (40, 56)
    assert abs(sum(meta["pixel_share"].values()) - 1) < 1e-9
    capsys.readouterr()
    assert main(args + ["--tta", "nope"]) != 0
    assert "unknown adaptation method 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["tent", "mlmp"])
def test_segment_tta_under_the_mlmp_preset_runs_bench_settings(tmp_path, method):
    # issue 22: ovss segment --tta built the methods with ovss's defaults (logit scale 100) under
    # --preset mlmp, where ovss bench runs the protocol's (the checkpoint's scale, MLMP's templates)
    from PIL import Image

    from ovss.cli import main

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "a.png"), "--classes", "boat, sky", "--model", "ovss-tiny",
                 "--pretrained", "none", "--preset", "mlmp", "--tta", method, "--out", str(out)]) == 0
    recorded = json.loads((out / "a.json").read_text())["tta"]
    bench = get_method(method, protocol="mlmp")  # what ovss bench --preset mlmp builds
    assert recorded == json.loads(json.dumps({"method": method, **bench.hparams()}))
    assert recorded["protocol"] == "mlmp" and recorded["logit_scale"] == "checkpoint"
    assert recorded["templates"] == list(get_templates({"tent": "mlmp_reference", "mlmp": "seven"}[method]))
