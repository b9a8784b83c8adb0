import pytest
import torch

from ovss.opendas import PROMPT_METHODS, PromptLearner, get_prompt_method, load_prompts, save_prompts
from ovss.errors import OvssError

# ovss-tiny: vision width 128, 6 layers; text width 128, 3 layers
V_W, V_L, T_W, T_L = 128, 6, 128, 3


@pytest.mark.parametrize("name, visual, text", [
    ("opendas", [(8, V_W)] * V_L, [(4, T_W)] * T_L),
    ("coop", [], [(4, T_W)]),
    ("vpt", [(8, V_W)] * V_L, []),
])
def test_prompt_shapes_and_parameter_counts(tiny, name, visual, text):
    m = PROMPT_METHODS[name]
    learner = PromptLearner(tiny, m.visual_k, m.visual_depth, m.text_k, m.text_depth)
    assert [tuple(p.shape) for p in learner.visual] == visual
    assert [tuple(p.shape) for p in learner.text] == text
    by_hand = {"opendas": 8 * V_L * V_W + 4 * T_L * T_W, "coop": 4 * 1 * T_W, "vpt": 8 * V_L * V_W}[name]
    assert learner.num_parameters() == by_hand == sum(p.numel() for p in learner.parameters())
    # the learner's parameters are the prompts only, never the CLIP's
    assert len(list(learner.parameters())) == len(visual) + len(text)


def test_prompt_depth_and_errors(tiny):
    learner = PromptLearner(tiny, visual_k=8, visual_depth=2, text_k=4, text_depth=2)
    assert learner.num_parameters() == 8 * 2 * V_W + 4 * 2 * T_W
    with pytest.raises(OvssError, match="between 1 and 6"):
        PromptLearner(tiny, visual_k=8, visual_depth=7)
    assert get_prompt_method("CoOp").name == "coop"
    with pytest.raises(OvssError, match="unknown adaptation method 'maple'"):
        get_prompt_method("maple")


def test_text_prompts_start_at_clip_photo_of_a(tiny):
    learner = PromptLearner(tiny)  # first layer from "a photo of a", deeper ones its hidden states
    plain = PromptLearner.unprompted(tiny)
    with torch.no_grad():
        torch.testing.assert_close(learner.encode_names(["boat", "sky"]), plain.encode_names(["boat", "sky"]))
        emb = tiny.clip.token_embedding(tiny.tokenizer(["a photo of a"]))[0, 1:5]
    torch.testing.assert_close(learner.text[0].detach(), emb)


def test_visual_prompts_change_the_image_embedding(tiny):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a = PromptLearner(tiny, 8, None, 0, 0).encode_images(x)
        b = PromptLearner.unprompted(tiny).encode_images(x)
    assert a.shape == (2, 128) and not torch.allclose(a, b)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(2))


def test_save_and_load_round_trip(tiny, tmp_path):
    learner = PromptLearner(tiny, seed=3)
    path = save_prompts(tmp_path / "prompts.safetensors", learner, {"method": "opendas", "base_classes": ["sky"]})
    side = (tmp_path / "prompts.json").read_text()
    assert '"method": "opendas"' in side and '"k": 8' in side and '"depth": 6' in side and '"ovss-tiny"' in side
    loaded = load_prompts(path, tiny)
    for a, b in zip(learner.parameters(), loaded.parameters()):
        assert torch.equal(a, b)


def test_load_errors_are_one_line(tiny, tmp_path):
    with pytest.raises(OvssError, match="prompts file not found"):
        load_prompts(tmp_path / "missing.safetensors", tiny)
    path = save_prompts(tmp_path / "p.safetensors", PromptLearner(tiny, 0, 0, 4, 1))
    (tmp_path / "p.json").write_text((tmp_path / "p.json").read_text().replace('"ovss-tiny"', '"ViT-B-16"'))
    with pytest.raises(OvssError, match="learned on ViT-B-16, not ovss-tiny; load it with model='ViT-B-16'"):
        load_prompts(path, tiny)
