import pytest
import torch

# One thread: the tests' tensors are small, and two threads thrash when anything else runs.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_random():
    """The ovss-tiny architecture with seeded random weights (fast, no files needed)."""
    from ovss.model import load_model

    torch.manual_seed(0)
    return load_model("ovss-tiny", "none")


@pytest.fixture(scope="session")
def make_encoder():
    """``make_encoder(visual, head, **options)``: a DenseEncoder, with a small random second backbone (a
    2-block timm ViT, patch 8, native 112 px) for heads that need one (ProxyCLIP), so that every
    test parametrised over the head table runs every head."""
    import timm

    from ovss.dense import DenseEncoder, get_head
    from ovss.model.second import SecondBackbone, SecondBackboneSpec

    spec = SecondBackboneSpec("test-vit", "vit_tiny_patch16_224", 8, 64, 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vit = timm.create_model("vit_tiny_patch16_224", patch_size=8, img_size=112, embed_dim=64, depth=2,
                                num_heads=2, num_classes=0)
    second = SecondBackbone(spec, vit.eval().requires_grad_(False), "none")
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)

    def make(visual, head, **options):
        if get_head(head).second:
            return DenseEncoder(visual, head, second=second, input_mean=mean, input_std=std, **options)
        return DenseEncoder(visual, head, **options)

    make.second = second
    return make


@pytest.fixture(scope="session")
def tiny_clip():
    """``tiny_clip(name)``: ``tiny_towers.build_tiny_clip(name)``, built once per session."""
    cache = {}

    def make(name):
        if name not in cache:
            from tiny_towers import build_tiny_clip

            cache[name] = build_tiny_clip(name)
        return cache[name]

    return make
