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


# One model per tower family, at tiny sizes (width 32, 3 blocks, 64 px): the architectures
# open_clip builds for these names, with timm's and open_clip's size settings overridden.
TINY_FAMILIES = {"ViT-B-16": "openclip", "ViT-B-16-SigLIP2": "timm-vit", "EVA02-B-16": "eva", "PE-Core-B-16": "eva"}


def build_tiny_clip(name: str, width: int = 32, depth: int = 3, heads: int = 4, image: int = 64, seed: int = 0):
    """open_clip's ``name`` with a tiny vision tower (``depth`` blocks of ``width``) and a one-block
    text tower, seeded random weights, eval mode. timm towers get the sizes through
    ``timm.create_model`` (open_clip's TimmModel passes no size settings of its own)."""
    from unittest import mock

    import timm

    from ovss.model.loading import open_clip_with_ovss_configs

    open_clip = open_clip_with_ovss_configs()
    cfg = open_clip.get_model_config(name)
    vision = dict(cfg["vision_cfg"], image_size=image)
    if "timm_model_name" not in vision:
        vision.update(width=width, layers=depth, head_width=width // heads)
    text = dict(cfg["text_cfg"], width=width, heads=2, layers=1)
    real = timm.create_model

    def small(model_name, **kw):
        return real(model_name, **{**kw, "depth": depth, "embed_dim": width, "num_heads": heads, "img_size": image})

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with mock.patch.object(timm, "create_model", small):
            clip = open_clip.create_model(name, pretrained=None, embed_dim=width, vision_cfg=vision, text_cfg=text)
    return clip.eval()


@pytest.fixture(scope="session")
def tiny_clip():
    """``tiny_clip(name)``: ``build_tiny_clip(name)``, built once per session."""
    cache = {}

    def make(name):
        if name not in cache:
            cache[name] = build_tiny_clip(name)
        return cache[name]

    return make
