"""Second vision backbones: a vision foundation model run beside CLIP (ProxyCLIP and its successors).

Methods such as ProxyCLIP take the patch-to-patch correspondence of a self-supervised ViT (DINO)
and use it as the last CLIP block's attention. ovss treats that model as a *second backbone*:
named in a table (architecture, patch size, input normalisation, cost), built through ``timm``
(a maintained implementation of the same ViT), and loaded from a local checkpoint safely
(``torch.load(weights_only=True)`` or safetensors, via ``read_checkpoint``) or randomly
initialised for tests and cost figures. Its dense features are computed in
``ovss.dense.proxy``; the windows are CLIP's (each window goes through both models).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import OvssError
from .loading import RANDOM_TAGS, read_checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SecondBackboneSpec:
    """One second backbone: how to build it, feed it, and what it costs."""

    name: str
    timm_name: str
    patch_size: int
    width: int
    depth: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    checkpoint: str = ""  # the file its authors publish
    description: str = ""

    def tokens(self, size: int = 224) -> int:
        """Patch tokens of one size x size window."""
        return (size // self.patch_size) ** 2

    def gflops(self, size: int = 224) -> float:
        """Multiply-adds x 2 of one window through the blocks (projections, MLP, attention), in GFLOPs."""
        n = self.tokens(size) + 1
        per_block = 2 * (12 * n * self.width ** 2 + 2 * n * n * self.width)
        return self.depth * per_block / 1e9


SECOND_BACKBONES: dict[str, SecondBackboneSpec] = {
    "dino-vitb8": SecondBackboneSpec(
        "dino-vitb8", "vit_base_patch8_224", 8, 768, 12, checkpoint="dino_vitbase8_pretrain.pth",
        description="DINO ViT-B/8 (ProxyCLIP's default)",
    ),
    "dino-vitb16": SecondBackboneSpec(
        "dino-vitb16", "vit_base_patch16_224", 16, 768, 12, checkpoint="dino_vitbase16_pretrain.pth",
        description="DINO ViT-B/16",
    ),
}


def get_second_spec(name: str) -> SecondBackboneSpec:
    if name not in SECOND_BACKBONES:
        raise OvssError(f"unknown second backbone '{name}'; choose one of: {', '.join(SECOND_BACKBONES)}")
    return SECOND_BACKBONES[name]


class SecondBackbone(nn.Module):
    """A timm ViT and its spec; ``ovss.dense.proxy.second_features`` runs it."""

    def __init__(self, spec: SecondBackboneSpec, vit: nn.Module, weights: str):
        super().__init__()
        self.spec = spec
        self.vit = vit
        self.weights = weights

    def describe(self) -> dict:
        return {"second_backbone": self.spec.name, "second_weights": self.weights}


def dino_backbone_state(state: dict) -> dict:
    """A DINO checkpoint's backbone weights: the plain ``*_pretrain.pth`` state dict, or the
    teacher of a full training checkpoint (``backbone.`` prefixes dropped, projection head left out)."""
    if "teacher" in state and isinstance(state["teacher"], dict):
        state = state["teacher"]
    state = {k[len("backbone."):] if k.startswith("backbone.") else k: v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def load_second_backbone(name: str, weights: str | None, device: str | torch.device = "cpu") -> SecondBackbone:
    """Build ``name`` with ``weights``: a local checkpoint file, or ``none`` for random weights
    (drawn from a fixed seed, so that runs repeat)."""
    spec = get_second_spec(name)
    if weights is None:
        raise OvssError(f"the second backbone {name} needs weights: pass second_weights=PATH ({spec.checkpoint}) "
                        "or second_weights='none' for random weights (cost figures only)", param="second_weights")
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vit = timm.create_model(spec.timm_name, pretrained=False, num_classes=0)
    if weights.lower() not in RANDOM_TAGS:
        path = Path(weights).expanduser()
        if not path.exists():
            raise OvssError(f"second-backbone checkpoint not found: {path} (check the path)")
        state = dino_backbone_state(read_checkpoint(path))
        own = vit.state_dict()
        bad = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
        extra = [k for k in state if k not in own]
        if bad or extra:
            key = (bad or extra)[0]
            raise OvssError(f"checkpoint {path} does not fit {name} (first mismatch: '{key}'); pass the {spec.checkpoint} file")
        vit.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    return SecondBackbone(spec, vit.to(device).eval().requires_grad_(False), weights)
