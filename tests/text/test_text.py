import copy

import pytest
import torch
import torch.nn.functional as F

from ovss.errors import OvssError
from ovss.text import TextEncoder, get_templates, parse_classes


class TestParseClasses:
    def test_comma_string_gives_one_class_each(self):
        c = parse_classes(" cat, sofa ,person")
        assert c.names == ["cat", "sofa", "person"]
        assert c.query_to_class == [0, 1, 2]

    def test_list_items_may_be_synonym_lists(self):
        c = parse_classes([["person", "people"], "sofa"])
        assert c.queries == ["person", "people", "sofa"]
        assert c.query_to_class == [0, 0, 1]

    def test_file_with_synonyms(self, tmp_path):
        f = tmp_path / "cls.txt"
        f.write_text("background\nperson, people, man\nsofa, couch\n")
        c = parse_classes(classes_file=f)
        assert c.names == ["background", "person", "sofa"] and c.query_to_class == [0, 1, 1, 1, 2, 2]

    @pytest.mark.parametrize("bad,msg", [("", "empty"), (" , ,", "empty"), ("cat, dog, Cat", "appears twice")])
    def test_bad_lists_are_one_line_errors(self, bad, msg):
        with pytest.raises(OvssError, match=msg) as e:
            parse_classes(bad)
        assert "\n" not in str(e.value)

    def test_both_sources_is_an_error(self, tmp_path):
        with pytest.raises(OvssError, match="either"):
            parse_classes("cat", tmp_path / "x.txt")


class TestTemplates:
    def test_sets_have_published_sizes(self):
        assert len(get_templates("imagenet80")) == 80
        assert len(get_templates("seven")) == 7
        assert get_templates("single") == ("a photo of a {}.",)
        assert "itap of a {}." in get_templates("imagenet80")

    def test_custom_template_must_have_one_slot(self):
        with pytest.raises(OvssError, match="exactly once"):
            get_templates(["a photo"])

    def test_unknown_set(self):
        with pytest.raises(OvssError, match="unknown template set"):
            get_templates("nope")


class TestTextEncoder:
    def test_explicit_forward_equals_open_clip(self, tiny_random):
        te = TextEncoder(tiny_random)
        tokens = tiny_random.tokenizer(["a photo of a boat.", "sky"])
        with torch.no_grad():
            assert torch.allclose(te.encode_tokens(tokens), tiny_random.clip.encode_text(tokens), atol=1e-6)

    def test_class_embedding_is_normalised_template_mean(self, tiny_random):
        te = TextEncoder(tiny_random)
        classes = parse_classes([["boat", "ship"], "sky"])
        emb = te.encode_classes(classes, ["a {}.", "the {}"])
        with torch.no_grad():
            t = F.normalize(tiny_random.clip.encode_text(tiny_random.tokenizer(["a ship.", "the ship"])), dim=-1)
        expected = F.normalize(t.mean(0), dim=-1)
        assert emb.shape == (3, 128)
        assert torch.allclose(emb[1], expected, atol=1e-5)

    def test_cache_returns_same_tensor(self, tiny_random):
        te = TextEncoder(tiny_random)
        c = parse_classes("boat, sky")
        assert te.encode_classes(c, "single") is te.encode_classes(c, "single")

    def test_first_layer_prompt_replaces_placeholder_embeddings(self, tiny_random):
        te = TextEncoder(tiny_random)
        tokens = tiny_random.tokenizer(["X X boat."])
        ctx = torch.randn(2, 128, requires_grad=True)
        out = te.encode_tokens(tokens, prompts=[ctx])
        out.sum().backward()
        assert ctx.grad is not None and ctx.grad.abs().sum() > 0
        # equal to feeding those embeddings by hand
        t = tiny_random.clip
        with torch.no_grad():
            x = t.token_embedding(tokens)
            x[:, 1:3] = ctx
            x = x + t.positional_embedding
            x = t.transformer(x, attn_mask=t.attn_mask)
            x = t.ln_final(x)
            x = x[torch.arange(1), tokens.argmax(dim=-1)] @ t.text_projection
        assert torch.allclose(out.detach(), x, atol=1e-5)

    def test_unknown_words_are_those_with_a_blank_token_row(self, tiny_random):
        model = copy.deepcopy(tiny_random)
        assert TextEncoder(model).unknown_words(["boat", "red sofa"]) == []  # random rows: nothing blank
        sofa = model.tokenizer(["sofa"])[0, 1].item()  # the single token between start and end
        with torch.no_grad():
            model.clip.token_embedding.weight[sofa] = 0
        assert TextEncoder(model).unknown_words(["boat", "red sofa", "sofa", "a photo of a boat"]) == ["red sofa", "sofa"]
