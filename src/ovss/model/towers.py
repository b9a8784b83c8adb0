"""One small adapter per family of vision towers, so that every dense head runs on every CLIP.

open_clip builds three families of vision towers for its ViT models, and the dense heads need the
same handful of operations from each of them:

| family     | models (open_clip names)                     | tokens          | attention extras       | pooling        |
|------------|----------------------------------------------|-----------------|------------------------|----------------|
| ``openclip`` | ViT-*, OpenAI, LAION, MetaCLIP, DFN, quickgelu | class + patches | fused in_proj          | class token    |
| ``timm-vit`` | *-SigLIP, *-SigLIP2                         | patches only    | q/k norms (if any)     | attention pool |
| ``eva``      | EVA01/EVA02-*, PE-Core-*                    | class + patches | rotary embeddings, q/k | class token or |
|            |                                              |                 | norms, inner norm,     | attention pool |
|            |                                              |                 | SwiGLU, layer scale    |                |

A ``Tower`` embeds images (patch embedding, prefix tokens, position embedding resized by a dense
head's rule, pre-norm), lists its blocks as ``BlockAdapter``s (``ovss.model.blocks``), projects tokens into the joint
space one by one (``project``) and pools them the way the model was trained (``global_embedding``).
A ``BlockAdapter`` exposes the block's parts: ``ln_1``, ``qkv`` (heads split, q/k norms and rotary
embeddings applied), ``out`` (heads merged, inner norm, output projection), ``ls_1`` and ``ffn``
(``ls_2(mlp(ln_2(x)))``). The dense encoder's loop is written once against these.

Projection of a patch token where the model pools with an attention pool (SigLIP, PE-Core): the
pool is run on that token alone, so its attention is the identity and the token takes the pool's
value path, projection and MLP (MaskCLIP's reading of an attention pool).

Rotary embeddings are applied to the patch tokens only: prefix tokens and learned prompt tokens
(``skip``) keep none, as timm leaves the class token without one.
"""
from __future__ import annotations

from dataclasses import dataclass

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..errors import OvssError
from .blocks import BlockAdapter, OpenClipBlock, TimmBlock, merge_heads, resize_pos_embed  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Family:
    """A family of towers as ``ovss models`` lists it; ``prefix`` as ``Tower.prefix`` (the class
    token), so that a head's needs can be checked against the family without building a model."""

    name: str
    description: str
    models: str
    prefix: int
    scoring: str = "softmax"


FAMILIES = {
    "openclip": Family("openclip", "open_clip VisionTransformer: class token, fused q/k/v",
                       "ViT-* (OpenAI, LAION, DataComp, MetaCLIP, DFN, quickgelu)", 1),
    "timm-vit": Family("timm-vit", "timm VisionTransformer: no class token, attention pooling",
                       "ViT-*-SigLIP, ViT-*-SigLIP2 (tokenizer: ovss[siglip])", 0, "sigmoid"),
    "eva": Family("eva", "timm Eva: class token, rotary embeddings, q/k norms, SwiGLU",
                  "EVA01-*, EVA02-B/L-*, PE-Core-* (not EVA02-E: post-norm blocks)", 1),
}


def family_of(name: str, config: dict | None) -> str | None:
    """The family open_clip's config ``config`` of model ``name`` builds, or None (ResNets, CoCa,
    other timm towers), read without building the model."""
    vision = (config or {}).get("vision_cfg", {})
    timm_name = vision.get("timm_model_name")
    if timm_name:
        if "siglip" in timm_name:
            return "timm-vit"
        if timm_name.startswith(("eva", "vit_pe_core")):
            return "eva"
        return None
    if isinstance(vision.get("layers"), int) and "coca" not in name.lower():
        return "openclip"
    return None


# ------------------------------------------------------------------------------------ towers


class Tower(ABC):
    """A vision tower through the operations of the dense encoder (see the module docstring).

    Abstract: a family's tower that misses one of the geometry properties fails when it is created."""

    family = ""
    block_class = BlockAdapter

    def __init__(self, visual: nn.Module):
        self.visual = visual

    # geometry ---------------------------------------------------------------------------------
    @property
    @abstractmethod
    def prefix(self) -> int:
        """Tokens before the patches (1: a class token; 0: SigLIP)."""
        ...

    @property
    @abstractmethod
    def native_grid(self) -> tuple[int, int]:
        ...

    @property
    @abstractmethod
    def patch_size(self) -> tuple[int, int]:
        ...

    @property
    @abstractmethod
    def width(self) -> int:
        ...

    @property
    @abstractmethod
    def modules(self) -> list[nn.Module]:
        ...

    @property
    def blocks(self) -> list[BlockAdapter]:
        return [self.block_class(m, self) for m in self.modules]

    @property
    def pools_class_token(self) -> bool:
        """Whether the global embedding reads the class token alone (so only its row is needed)."""
        return False

    @property
    def device(self) -> torch.device:
        return next(self.visual.parameters()).device

    def describe(self) -> dict:
        return {"tower": self.family, "class_token": self.prefix > 0}

    def rope(self, grid: tuple[int, int]) -> torch.Tensor | None:
        """Rotary embeddings (hw x 2 d) for ``grid``, or None where the tower has none."""
        return None

    # the three steps around the blocks ---------------------------------------------------------
    @abstractmethod
    def embed(self, images: torch.Tensor, rule: str) -> tuple[torch.Tensor, tuple[int, int]]:
        """Images (B x 3 x H x W) -> prefix + patch tokens and their grid, positions resized by ``rule``."""

    @abstractmethod
    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (... x N x D, final block's output) -> ... x N x E, each token on its own."""

    @abstractmethod
    def global_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP's image embedding (B x E) from the final tokens (prefix + patches)."""


class OpenClipTower(Tower):
    family = "openclip"
    block_class = OpenClipBlock

    prefix = 1

    @property
    def native_grid(self):
        return tuple(self.visual.grid_size)

    @property
    def patch_size(self):
        return tuple(self.visual.patch_size)

    @property
    def width(self):
        return int(self.visual.class_embedding.shape[-1])

    @property
    def modules(self):
        return list(self.visual.transformer.resblocks)

    @property
    def pools_class_token(self):
        return getattr(self.visual, "pool_type", None) == "tok"

    def embed(self, images, rule):
        v = self.visual
        x = v.conv1(images.to(v.conv1.weight.dtype))  # fp16 weights (the mlmp protocol on CUDA) take fp16 input
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + resize_pos_embed(v.positional_embedding, self.native_grid, grid, rule).to(x.dtype)
        return v.ln_pre(x), grid

    def project(self, tokens):
        tokens = self.visual.ln_post(tokens)
        return tokens @ self.visual.proj if self.visual.proj is not None else tokens

    def global_embedding(self, tokens):
        v = self.visual
        if getattr(v, "final_ln_after_pool", False):
            pooled, _ = v._global_pool(tokens)
            pooled = v.ln_post(pooled)
        else:
            pooled, _ = v._global_pool(v.ln_post(tokens))
        return pooled @ v.proj if v.proj is not None else pooled


class TimmTower(Tower):
    """open_clip's ``TimmModel`` around a timm ``VisionTransformer`` (SigLIP) or ``Eva``
    (EVA-02, PE-Core): ``visual.trunk`` is the timm model, ``visual.head`` open_clip's projection."""

    block_class = TimmBlock

    def __init__(self, visual):
        super().__init__(visual)
        self.trunk = visual.trunk
        self._rope_cache: dict[tuple, torch.Tensor] = {}

    @property
    def prefix(self):
        return int(self.trunk.num_prefix_tokens)

    @property
    def native_grid(self):
        return tuple(self.trunk.patch_embed.grid_size)

    @property
    def patch_size(self):
        return tuple(self.trunk.patch_embed.patch_size)

    @property
    def width(self):
        return int(self.trunk.embed_dim)

    @property
    def modules(self):
        return list(self.trunk.blocks)

    @property
    def pools_class_token(self):
        return getattr(self.trunk, "attn_pool", None) is None and self.trunk.global_pool == "token"

    def embed(self, images, rule):
        t = self.trunk
        pe = t.patch_embed
        x = pe.proj(images.to(pe.proj.weight.dtype))
        grid = (x.shape[-2], x.shape[-1])
        x = pe.norm(x.flatten(2).transpose(1, 2))
        prefix = [tok.expand(x.shape[0], -1, -1).to(x.dtype) for tok in (t.cls_token, getattr(t, "reg_token", None))
                  if tok is not None]
        pos = t.pos_embed[0] if t.pos_embed is not None else None
        if t.no_embed_class:
            if pos is not None:
                x = x + resize_pos_embed(pos, self.native_grid, grid, rule, prefix=0).to(x.dtype)
            x = torch.cat(prefix + [x], dim=1)
        else:
            x = torch.cat(prefix + [x], dim=1)
            if pos is not None:
                x = x + resize_pos_embed(pos, self.native_grid, grid, rule, prefix=self.prefix).to(x.dtype)
        return t.norm_pre(x), grid

    def project(self, tokens):
        t = self.trunk
        x = t.norm(tokens)
        if getattr(t, "attn_pool", None) is not None:  # each token pooled alone: the pool's value path
            x = t.attn_pool(x.reshape(-1, 1, x.shape[-1])).reshape(*x.shape[:-1], -1)
        return self.visual.head(t.head(t.fc_norm(x)))

    def global_embedding(self, tokens):
        t = self.trunk
        return self.visual.head(t.forward_head(t.norm(tokens)))


class EvaTower(TimmTower):
    family = "eva"

    def rope(self, grid):
        rope = getattr(self.trunk, "rope", None)
        if rope is None or grid is None:
            return None
        key = (tuple(grid), str(self.device))
        if key not in self._rope_cache:
            if tuple(grid) == self.native_grid:
                emb = rope.get_embed()
            else:  # the rope caches one grid: build this one, then put the native one back
                rope.update_feat_shape(list(grid))
                emb = rope.get_embed()
                rope.update_feat_shape(list(self.native_grid))
            self._rope_cache[key] = emb
        return self._rope_cache[key]


class TimmVitTower(TimmTower):
    family = "timm-vit"


def tower_for(visual: nn.Module, model: str = "this model") -> Tower:
    """The adapter of ``visual``'s family; one line naming what is missing where there is none."""
    if hasattr(visual, "transformer") and hasattr(visual, "conv1"):
        if getattr(visual, "attn_pool", None) is not None:
            raise OvssError(f"{model}: towers with attentional pooling over a text decoder (CoCa) are not supported by "
                            "the dense heads; pick a CLIP ViT")
        if not isinstance(visual.transformer.resblocks[-1].attn, nn.MultiheadAttention):
            raise OvssError(f"{model}: this tower's attention blocks are not supported by the dense heads; pick a CLIP ViT")
        return OpenClipTower(visual)
    trunk = getattr(visual, "trunk", None)
    if trunk is not None:
        from timm.models.eva import Eva, EvaBlock, EvaBlockPostNorm
        from timm.models.vision_transformer import Block, VisionTransformer

        if isinstance(trunk, Eva) and any(type(b) is EvaBlockPostNorm for b in trunk.blocks):
            raise OvssError(f"{model}: post-norm blocks (EVA02-E) are not supported by the dense heads: their "
                            "attention output is normalised after the residual branch; pick EVA02-B/L or PE-Core")
        if isinstance(trunk, Eva) and all(type(b) is EvaBlock for b in trunk.blocks):
            if getattr(trunk, "rope_mixed", False):
                raise OvssError(f"{model}: depth-dependent (mixed) rotary embeddings are not supported by the dense heads")
            attn = trunk.blocks[-1].attn
            if getattr(attn, "gate", None) is not None or getattr(attn, "num_kv_groups", 1) != 1:
                raise OvssError(f"{model}: gated or grouped-query attention is not supported by the dense heads")
            return EvaTower(visual)
        if isinstance(trunk, VisionTransformer) and all(type(b) is Block for b in trunk.blocks):
            return TimmVitTower(visual)
        raise OvssError(f"{model}: the timm tower {type(trunk).__name__} is not supported by the dense heads; "
                        "ViT (SigLIP), EVA-02 and PE-Core towers are")
    raise OvssError(f"{model}: dense heads need a ViT tower (open_clip VisionTransformer, SigLIP, EVA-02 or PE-Core); "
                    f"{type(visual).__name__} (ResNet or another kind) is not supported")
