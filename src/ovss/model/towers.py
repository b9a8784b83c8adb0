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
head's rule, pre-norm), lists its blocks as ``BlockAdapter``s, projects tokens into the joint
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

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OvssError

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


def resize_pos_embed(pos: torch.Tensor, native: tuple[int, int], grid: tuple[int, int], rule: str = "offset",
                     prefix: int = 1) -> torch.Tensor:
    """Positional embeddings (prefix + n*n, D) for a new patch grid ``grid``.

    ``offset``: bicubic with ``scale_factor = ((h + 0.1) / n, (w + 0.1) / n)``, unchanged when the
    grid is the native one (NACLIP, SCLIP, ClearCLIP). ``size``: bicubic to ``size=(h, w)``
    (MaskCLIP); ``size-aa``: the same with antialiasing (GEM; torch's antialiased bicubic kernel
    differs from the plain one even when enlarging). The ``prefix`` tokens' embeddings (the class
    token's, none for SigLIP) are kept.
    """
    if tuple(grid) == tuple(native):
        return pos
    cls_pos, patch_pos = pos[:prefix], pos[prefix:]
    n_h, n_w = native
    dim = pos.shape[-1]
    patch_pos = patch_pos.reshape(1, n_h, n_w, dim).permute(0, 3, 1, 2)
    h, w = grid
    if rule == "offset":
        resized = F.interpolate(patch_pos, scale_factor=((h + 0.1) / n_h, (w + 0.1) / n_w), mode="bicubic", align_corners=False)
    elif rule == "size":
        resized = F.interpolate(patch_pos, size=(h, w), mode="bicubic", align_corners=False)
    elif rule == "size-aa":
        resized = F.interpolate(patch_pos, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    else:
        raise ValueError(f"unknown position-embedding rule {rule!r}")
    assert resized.shape[-2:] == (h, w), (resized.shape, grid)
    return torch.cat([cls_pos, resized.permute(0, 2, 3, 1).reshape(h * w, dim)], dim=0)


def merge_heads(out: torch.Tensor) -> torch.Tensor:
    """B x H x N x d -> B x N x (H d)."""
    B, H, N, d = out.shape
    return out.transpose(1, 2).reshape(B, N, H * d)


# ------------------------------------------------------------------------------------ blocks


class BlockAdapter:
    """One transformer block seen through the operations the dense heads need (pre-norm blocks:
    x + ls_1(attn(ln_1 x)), then x + ls_2(mlp(ln_2 x)))."""

    def __init__(self, module: nn.Module, tower: "Tower"):
        self.module = module
        self.tower = tower

    def __getattr__(self, name):  # the block's own parts (``attn``, ``mlp``, ...) stay reachable
        if name in ("module", "tower"):
            raise AttributeError(name)
        return getattr(self.module, name)

    @property
    def num_heads(self) -> int:
        return self.module.attn.num_heads

    def ln_1(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def qkv(self, y: torch.Tensor, grid: tuple[int, int] | None = None, skip: int = 0):
        """q, k, v (B x H x N x d) of tokens ``y`` (after ``ln_1``); rotary embeddings for ``grid``
        on the tokens after the first ``skip``."""
        raise NotImplementedError

    def out(self, o: torch.Tensor) -> torch.Tensor:
        """Attention output B x H x N x d -> B x N x D through the block's output projection."""
        raise NotImplementedError

    def ls_1(self, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        """The second residual branch, ``ls_2(mlp(ln_2(x)))``."""
        raise NotImplementedError

    def attention(self, y: torch.Tensor, grid: tuple[int, int] | None = None, skip: int = 0) -> torch.Tensor:
        """The block's own attention of ``y`` (after ``ln_1``), through ``out``."""
        q, k, v = self.qkv(y, grid, skip)
        return self.out(F.scaled_dot_product_attention(q, k, v))

    def __call__(self, x: torch.Tensor, grid: tuple[int, int] | None = None, skip: int = 0) -> torch.Tensor:
        """The unchanged block on tokens ``x``."""
        x = x + self.ls_1(self.attention(self.ln_1(x), grid, skip))
        return x + self.ffn(x)


class OpenClipBlock(BlockAdapter):
    """open_clip's ResidualAttentionBlock (nn.MultiheadAttention with a fused in_proj)."""

    def ln_1(self, x):
        return self.module.ln_1(x)

    def qkv(self, y, grid=None, skip=0):
        attn = self.module.attn
        B, N, D = y.shape
        H = attn.num_heads
        q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        return tuple(t.reshape(B, N, H, D // H).transpose(1, 2) for t in (q, k, v))

    def out(self, o):
        return self.module.attn.out_proj(merge_heads(o))

    def ls_1(self, a):
        return self.module.ls_1(a)

    def ffn(self, x):
        b = self.module
        return b.ls_2(b.mlp(b.ln_2(x)))

    def attention(self, y, grid=None, skip=0):
        return self.module.attention(q_x=y)

    def __call__(self, x, grid=None, skip=0):
        return self.module(x)  # open_clip's own forward: what published numbers ran


class TimmBlock(BlockAdapter):
    """timm's ``Block`` (ViT, SigLIP) and ``EvaBlock`` (EVA-02, PE-Core): norm1/attn/norm2/mlp with
    layer scale as ``ls1``/``ls2`` modules or ``gamma_1``/``gamma_2`` parameters."""

    def ln_1(self, x):
        return self.module.norm1(x)

    def qkv(self, y, grid=None, skip=0):
        attn = self.module.attn
        B, N, _ = y.shape
        H = attn.num_heads
        if getattr(attn, "qkv", None) is not None:
            if getattr(attn, "q_bias", None) is not None:  # EVA: q and v biases, a zero k bias
                bias = torch.cat((attn.q_bias, attn.k_bias, attn.v_bias))
                if isinstance(attn.qkv, nn.Linear):  # as timm computes it
                    qkv = F.linear(y, attn.qkv.weight, bias)
                else:  # an int8 copy (dense.precision): the quantised matmul, then the bias
                    qkv = attn.qkv(y) + bias
            else:
                qkv = attn.qkv(y)
            q, k, v = qkv.reshape(B, N, 3, H, -1).permute(2, 0, 3, 1, 4).unbind(0)
        else:
            q, k, v = (p(y).reshape(B, N, H, -1).transpose(1, 2) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
        q, k = attn.q_norm(q), attn.k_norm(k)
        rope = self.tower.rope(grid) if grid is not None else None
        if rope is not None:
            from timm.layers import apply_rot_embed_cat

            half = getattr(attn, "rotate_half", False)
            q = torch.cat([q[:, :, :skip], apply_rot_embed_cat(q[:, :, skip:], rope, half=half)], dim=2).type_as(v)
            k = torch.cat([k[:, :, :skip], apply_rot_embed_cat(k[:, :, skip:], rope, half=half)], dim=2).type_as(v)
        return q, k, v

    def out(self, o):
        attn = self.module.attn
        return attn.proj(attn.norm(merge_heads(o)))

    def ls_1(self, a):
        b = self.module
        if hasattr(b, "ls1"):
            return b.ls1(a)
        return a if b.gamma_1 is None else b.gamma_1 * a

    def ffn(self, x):
        b = self.module
        m = b.mlp(b.norm2(x))
        if hasattr(b, "ls2"):
            return b.ls2(m)
        return m if b.gamma_2 is None else b.gamma_2 * m


# ------------------------------------------------------------------------------------ towers


class Tower:
    """A vision tower through the operations of the dense encoder (see the module docstring)."""

    family = ""
    block_class = BlockAdapter

    def __init__(self, visual: nn.Module):
        self.visual = visual

    # geometry ---------------------------------------------------------------------------------
    @property
    def prefix(self) -> int:
        """Tokens before the patches (1: a class token; 0: SigLIP)."""
        raise NotImplementedError

    @property
    def native_grid(self) -> tuple[int, int]:
        raise NotImplementedError

    @property
    def patch_size(self) -> tuple[int, int]:
        raise NotImplementedError

    @property
    def width(self) -> int:
        raise NotImplementedError

    @property
    def modules(self) -> list[nn.Module]:
        raise NotImplementedError

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
    def embed(self, images: torch.Tensor, rule: str) -> tuple[torch.Tensor, tuple[int, int]]:
        raise NotImplementedError

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (... x N x D, final block's output) -> ... x N x E, each token on its own."""
        raise NotImplementedError

    def global_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP's image embedding (B x E) from the final tokens (prefix + patches)."""
        raise NotImplementedError


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
