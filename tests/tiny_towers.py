"""Tiny models of every vision-tower family (imported by tests as ``tiny_towers``; the tests folder
is on the path through its conftest)."""
import torch

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
