"""ProxyCLIP: the last CLIP block attends with a second backbone's patch correspondence.

Lan et al., "ProxyCLIP: Proxy Attention Improves CLIP for Open-Vocabulary Segmentation" (ECCV
2024); settings read off mc-lan/ProxyCLIP (``open_clip/transformer.py`` ``custom_attn``,
``proxyclip_segmentor.py``). The window, already normalised for CLIP, is re-normalised for the
second backbone (DINO: ImageNet mean and std) and run through it; its last block's output, after
its final norm, gives cosine similarities between its patches. Shifted by beta x their mean
(per window: the authors run one window at a time), scaled by gamma, negatives masked and
soft-maxed, they replace the last CLIP block's attention over its values, which are resized
(bilinear) from CLIP's grid to the second backbone's; out_proj follows, no residual, no FFN. The
dense features come out on the second backbone's grid (DINO ViT-B/8: twice CLIP B/16's).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..model.blocks import merge_heads


@dataclass(frozen=True)
class ProxySettings:
    beta: float = 1.2
    gamma: float = 3.0


PROXY = ProxySettings()


def renormalise(images: torch.Tensor, from_mean, from_std, to_mean, to_std) -> torch.Tensor:
    """Images normalised with (from_mean, from_std) -> normalised with (to_mean, to_std)."""
    def col(v):
        return torch.tensor(v, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)

    return (images * col(from_std) + col(from_mean) - col(to_mean)) / col(to_std)


def second_features(backbone, images: torch.Tensor, resize_pos_embed) -> torch.Tensor:
    """Patch tokens (B x C x h x w) of the last block of a timm ViT after its final norm, with
    the position embedding resized by DINO's rule (``offset``, as ``resize_pos_embed``).

    ``images`` are normalised for ``backbone`` and a multiple of its patch size.
    """
    vit = backbone.vit
    x = vit.patch_embed.proj(images)
    B, D, h, w = x.shape
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([vit.cls_token.expand(B, -1, -1).to(x.dtype), x], dim=1)
    n = int(round((vit.pos_embed.shape[1] - 1) ** 0.5))
    x = x + resize_pos_embed(vit.pos_embed[0], (n, n), (h, w), "offset").to(x.dtype)
    for block in vit.blocks:
        x = block(x)
    x = vit.norm(x)
    return x[:, 1:].transpose(1, 2).reshape(B, D, h, w)


def proxy_attention(block, y: torch.Tensor, grid: tuple[int, int], proxy: torch.Tensor, prefix: int = 1,
                    settings: ProxySettings = PROXY) -> torch.Tensor:
    """ProxyCLIP's last-block attention: tokens ``y`` (B x (prefix + hw) x D, after ln_1) on CLIP's
    ``grid``, correspondence ``proxy`` (B x C x H x W) -> B x HW x D on the proxy's grid.
    ``block``: a ``ovss.model.blocks.BlockAdapter`` (its values and output projection)."""
    B, N, D = y.shape
    H_, W_ = proxy.shape[-2:]
    v = merge_heads(block.qkv(y, grid, prefix)[2])[:, prefix:]  # patch values only
    heads = block.num_heads
    d = v.shape[-1] // heads
    v = v.reshape(B, grid[0], grid[1], heads * d).permute(0, 3, 1, 2)
    v = F.interpolate(v.reshape(B * heads, d, *grid), size=(H_, W_), mode="bilinear", align_corners=False)
    v = v.reshape(B, heads, d, H_ * W_).transpose(-2, -1)  # B x heads x HW x d
    p = F.normalize(proxy.flatten(2), dim=1)
    sim = p.transpose(1, 2) @ p  # B x HW x HW
    sim = (sim - sim.mean(dim=(1, 2), keepdim=True) * settings.beta) * settings.gamma
    weights = sim.masked_fill(sim < 0, float("-inf")).softmax(dim=-1).to(v.dtype)
    return block.out(weights[:, None] @ v)
