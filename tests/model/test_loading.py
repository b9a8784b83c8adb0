import pytest
import torch
from safetensors.torch import save_file

from ovss.errors import OvssError
from ovss.model import load_model
from ovss.model.loading import compact_state_dict, read_checkpoint


class TestLoadModel:
    def test_random_init_exposes_clip_and_tokenizer(self, tiny_random):
        m = tiny_random
        assert m.image_size == (112, 112) and m.patch_size == (8, 8)
        tokens = m.tokenizer(["a photo of a boat."])
        assert tokens.shape == (1, 32)
        assert m.clip.encode_text(tokens).shape == (1, 128)

    def test_unknown_model_is_one_line_error(self):
        with pytest.raises(OvssError, match="unknown model 'ViT-Q-99'") as e:
            load_model("ViT-Q-99", "none")
        assert "\n" not in str(e.value)

    def test_unknown_tag_lists_known_tags(self):
        with pytest.raises(OvssError, match="unknown pretrained tag 'nope'.*openai"):
            load_model("ViT-B-16", "nope")

    def test_embedded_tags_load_and_pick_the_shapesworld_protocol(self, tiny_random):
        from ovss.segment import default_preset
        from ovss.model import is_embedded

        levels = load_model(pretrained="shapesworld-levels")
        assert (levels.name, levels.pretrained) == ("ovss-tiny", "shapesworld-levels") and is_embedded(levels)
        assert default_preset(levels, "shapesworld") == "shapesworld" and default_preset(levels, "voc21") == "naclip"
        assert not is_embedded(tiny_random) and default_preset(tiny_random, "shapesworld") == "naclip"
        default = load_model()
        # two trainings of the same architecture: same shapes, other weights
        a, b = default.clip.state_dict(), levels.clip.state_dict()
        assert a.keys() == b.keys() and not torch.equal(a["visual.proj"], b["visual.proj"])

    def test_missing_checkpoint_file(self, tmp_path):
        with pytest.raises(OvssError, match="checkpoint not found"):
            load_model("ovss-tiny", str(tmp_path / "missing.safetensors"))

    @pytest.mark.parametrize("suffix", [".safetensors", ".bin", ".pt"])
    def test_local_checkpoint_roundtrip(self, tiny_random, tmp_path, suffix):
        path = tmp_path / f"w{suffix}"
        state = {k: v.clone() for k, v in tiny_random.clip.state_dict().items()}
        if suffix == ".safetensors":
            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        else:
            torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
        loaded = load_model("ovss-tiny", str(path))
        for k, v in loaded.clip.state_dict().items():
            assert torch.equal(v, state[k]), k

    def test_shape_mismatch_names_first_key(self, tiny_random, tmp_path):
        state = {k: v.clone().contiguous() for k, v in tiny_random.clip.state_dict().items()}
        state["visual.proj"] = torch.zeros(3, 3)
        path = tmp_path / "bad.safetensors"
        save_file(state, str(path))
        with pytest.raises(OvssError, match=r"'visual.proj' of shape \(3, 3\), the model expects \(128, 128\)"):
            load_model("ovss-tiny", str(path))

    def test_missing_key_is_named(self, tiny_random, tmp_path):
        state = {k: v.clone().contiguous() for k, v in tiny_random.clip.state_dict().items()}
        del state["ln_final.weight"]
        path = tmp_path / "bad.safetensors"
        save_file(state, str(path))
        with pytest.raises(OvssError, match="lacks 'ln_final.weight'"):
            load_model("ovss-tiny", str(path))

    def test_not_a_checkpoint(self, tmp_path):
        path = tmp_path / "junk.pt"
        path.write_bytes(b"not a checkpoint")
        with pytest.raises(OvssError, match="cannot read checkpoint"):
            load_model("ovss-tiny", str(path))

    def test_pickled_object_is_refused(self, tmp_path):
        # weights_only=True: a checkpoint holding an arbitrary Python object is not unpickled
        import argparse

        path = tmp_path / "evil.pt"
        torch.save({"x": argparse.Namespace(a=1)}, path)
        with pytest.raises(OvssError, match="cannot read checkpoint"):
            load_model("ovss-tiny", str(path))

    def test_openai_torchscript_archive_loads_with_quick_gelu(self, tiny_random, tmp_path):
        class Holder(torch.nn.Module):
            def __init__(self, state):
                super().__init__()
                for i, (k, v) in enumerate(state.items()):
                    self.register_buffer(f"b{i}", v)

        # a TorchScript archive whose state dict has the model's keys, like OpenAI's .pt files
        state = tiny_random.clip.state_dict()
        holder = torch.nn.Module()
        for k, v in state.items():
            parts = k.split(".")
            mod = holder
            for p in parts[:-1]:
                if not hasattr(mod, p):
                    mod.add_module(p, torch.nn.Module())
                mod = getattr(mod, p)
            mod.register_buffer(parts[-1], v.clone())
        path = tmp_path / "openai.pt"
        torch.jit.save(torch.jit.script(holder), str(path))
        state2, is_openai = read_checkpoint(path, return_kind=True)
        assert is_openai and set(state2) == set(state)
        loaded = load_model("ovss-tiny", str(path))
        act = loaded.clip.visual.transformer.resblocks[0].mlp.gelu
        assert act.__class__.__name__ == "QuickGELU"


class TestCompactCheckpoint:
    def test_unused_rows_are_zero_and_used_rows_kept(self, tiny_random, tmp_path):
        ids = torch.tensor([49406, 49407, 320, 1125])
        state = compact_state_dict(tiny_random.clip, ids)
        assert state["ovss.token_embedding.rows"].shape == (4, 128)
        path = tmp_path / "c.safetensors"
        save_file(state, str(path))
        loaded = load_model("ovss-tiny", str(path))
        emb = loaded.clip.token_embedding.weight
        orig = tiny_random.clip.token_embedding.weight
        assert torch.equal(emb[ids], orig[ids])
        others = torch.ones(emb.shape[0], dtype=torch.bool)
        others[ids] = False
        assert emb[others].abs().sum() == 0


class TestOpenAIActivation:
    """OpenAI trained its CLIPs with QuickGELU; a plain name (ViT-B-16) builds GELU. A checkpoint
    that shows it is OpenAI's gets QuickGELU whatever the name, and the JSON says which ran."""

    def _state(self, tiny_random):
        return {k: v.clone().contiguous() for k, v in tiny_random.clip.state_dict().items()}

    def test_openai_key_layout_gets_quick_gelu(self, tiny_random, tmp_path):
        state = self._state(tiny_random)
        state.update(input_resolution=torch.tensor(112), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
        path = tmp_path / "weights.pt"
        torch.save(state, path)
        model = load_model("ovss-tiny", str(path))
        assert model.describe()["activation"] == "quick_gelu"
        assert "OpenAI's layout" in model.describe()["activation_from"]
        act = model.clip.visual.transformer.resblocks[0].mlp.gelu
        assert act.__class__.__name__ == "QuickGELU"

    def test_openai_in_the_path_gets_quick_gelu(self, tiny_random, tmp_path):
        path = tmp_path / "vit_base_patch16_clip_224.openai" / "open_clip_pytorch_model.bin"
        path.parent.mkdir()
        torch.save(self._state(tiny_random), path)
        model = load_model("ovss-tiny", str(path))
        assert model.describe()["activation"] == "quick_gelu"
        assert model.describe()["activation_from"] == "OpenAI weights (its path names openai)"

    def test_other_weights_keep_the_names_activation_and_record_it(self, tiny_random, tmp_path):
        path = tmp_path / "finetuned.pt"
        torch.save(self._state(tiny_random), path)
        model = load_model("ovss-tiny", str(path))
        assert model.describe()["activation"] == "gelu" and "activation_from" not in model.describe()
        assert tiny_random.describe()["activation"] == "gelu"
        # the activation changes the numbers: the two load the same tensors, give other features
        openai = tmp_path / "openai-ViT.pt"
        torch.save(self._state(tiny_random), openai)
        quick = load_model("ovss-tiny", str(openai))
        x = torch.rand(1, 3, 112, 112)
        with torch.no_grad():
            assert not torch.allclose(model.clip.encode_image(x), quick.clip.encode_image(x))

    def test_pretrained_tag_of_openai_builds_quick_gelu(self, monkeypatch):
        import open_clip

        from ovss.model import loading

        seen = {}

        def fake_create(name, pretrained=None, force_quick_gelu=False, **_):
            seen.update(name=name, pretrained=pretrained, quick=force_quick_gelu)
            raise OSError("offline")  # stop before any download

        monkeypatch.setattr(open_clip, "create_model", fake_create)
        monkeypatch.setattr(loading, "check_pretrained_reachable", lambda *a, **k: None, raising=False)
        with pytest.raises(OvssError):
            load_model("ViT-B-16", "openai")
        assert seen == {"name": "ViT-B-16", "pretrained": "openai", "quick": True}


def test_offline_pretrained_tag_is_one_line_at_once(monkeypatch):
    # issue 22: offline, --pretrained openai took 59 s and 46 lines of retries before its line
    import socket

    import huggingface_hub
    import open_clip

    tried = []

    def no_network(address, timeout=None):
        tried.append(address)
        raise OSError(101, "Network is unreachable")

    def never(*a, **k):
        raise AssertionError("open_clip must not be asked to download")

    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setattr(open_clip, "create_model", never)
    with pytest.raises(OvssError) as e:
        load_model("ViT-B-16", "openai")
    assert str(e.value) == ("cannot fetch weights ViT-B-16/openai (huggingface.co is unreachable: Network is "
                            "unreachable; they are not in the local cache); download the checkpoint elsewhere and "
                            "pass pretrained=PATH")
    assert e.value.param == "pretrained" and tried == [("huggingface.co", 443)]
