"""The blocks of the vision towers, seen through what the dense heads need (``BlockAdapter``), and
the position-embedding resize every tower shares; the towers themselves are in ``ovss.model.towers``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn


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


class BlockAdapter(ABC):
    """One transformer block seen through the operations the dense heads need (pre-norm blocks:
    x + ls_1(attn(ln_1 x)), then x + ls_2(mlp(ln_2 x)))."""

    def __init__(self, module: nn.Module, tower):
        """``tower``: the ``ovss.model.towers.Tower`` the block belongs to (its rotary embeddings)."""
        self.module = module
        self.tower = tower

    def __getattr__(self, name):  # the block's own parts (``attn``, ``mlp``, ...) stay reachable
        if name in ("module", "tower"):
            raise AttributeError(name)
        return getattr(self.module, name)

    @property
    def num_heads(self) -> int:
        return self.module.attn.num_heads

    @abstractmethod
    def ln_1(self, x: torch.Tensor) -> torch.Tensor:
        ...

    @abstractmethod
    def qkv(self, y: torch.Tensor, grid: tuple[int, int] | None = None, skip: int = 0):
        """q, k, v (B x H x N x d) of tokens ``y`` (after ``ln_1``); rotary embeddings for ``grid``
        on the tokens after the first ``skip``."""
        ...

    @abstractmethod
    def out(self, o: torch.Tensor) -> torch.Tensor:
        """Attention output B x H x N x d -> B x N x D through the block's output projection."""
        ...

    @abstractmethod
    def ls_1(self, a: torch.Tensor) -> torch.Tensor:
        ...

    @abstractmethod
    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        """The second residual branch, ``ls_2(mlp(ln_2(x)))``."""
        ...

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
