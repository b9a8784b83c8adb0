"""OVSNet at small scale (the OVSNet paper, Figure 3): a light mask decoder on frozen dense CLIP features.

Learned queries attend to the image's CLIP patch features and give masks plus one embedding each
in CLIP's text space (F_Q). The masks pool the same CLIP features (F_C, mask pooling). With GFA on,
both are fused by ``gfa.gfa``. Classification is cosine similarity to class text embeddings (plus a
learned "no object" embedding). At inference the query classifier (trained on seen classes) and
the CLIP classifier (general) are combined geometrically, class by class: seen classes lean on
the queries (alpha), classes unseen in training lean on CLIP (beta), as in FC-CLIP, on which the
seed builds. Everything takes features B x h x w x E, so a real CLIP and dataset only change E and
the feature extractor (see ``train.dense_features``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .gfa import DEFAULT_LAM, DEFAULT_W, gfa
from .proxy import DEFAULT_GAMMA


@dataclass(frozen=True)
class OVSNetConfig:
    """Architecture, switches and loss weights (seed: segmentation 5, classification 2, lam 0.2, gamma 2)."""

    queries: int = 16
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    gfa: bool = False
    pc: bool = False
    w: float = DEFAULT_W
    lam: float = DEFAULT_LAM
    gamma: float = DEFAULT_GAMMA
    alpha: float = 0.4  # weight of CLIP for seen classes (FC-CLIP's default)
    beta: float = 0.8  # weight of CLIP for classes unseen in training
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    class_weight: float = 2.0
    void_weight: float = 0.1
    pc_weight: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class OVSNetOutput:
    masks: torch.Tensor  # B x Q x h x w mask logits on the patch grid
    f_q: torch.Tensor  # B x Q x E query embeddings (unit norm before GFA; GFA's output when on)
    f_c: torch.Tensor  # B x Q x E mask-pooled CLIP features (likewise)


def sine_positions(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """Fixed 2-D sine/cosine position codes, (h*w) x dim, so the decoder knows where patches are."""
    quarter = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    parts = [f(c.flatten()[:, None] * freq) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    pos = torch.cat(parts, dim=1)
    return F.pad(pos, (0, dim - pos.shape[1]))


class MaskDecoder(nn.Module):
    """Queries -> masks (on the patch grid) + embeddings in CLIP's space."""

    def __init__(self, embed_dim: int, cfg: OVSNetConfig):
        super().__init__()
        h = cfg.hidden
        self.input_proj = nn.Linear(embed_dim, h)
        # depthwise 3x3 + pointwise: local context for the mask features at a fraction of a full conv's cost
        self.pixel = nn.Sequential(nn.Conv2d(h, h, 3, padding=1, groups=h), nn.GroupNorm(8, h), nn.ReLU(), nn.Conv2d(h, h, 1))
        self.query_feat = nn.Embedding(cfg.queries, h)
        self.query_pos = nn.Embedding(cfg.queries, h)
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(h, cfg.heads, dim_feedforward=4 * h, dropout=0.0, batch_first=True, norm_first=True)
            for _ in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(h)
        self.mask_embed = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h))
        self.embed = nn.Linear(h, embed_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features B x h x w x E -> (mask logits B x Q x h x w, embeddings B x Q x E)."""
        b, gh, gw, _ = features.shape
        x = self.input_proj(features)  # B x h x w x H
        memory = x.flatten(1, 2) + sine_positions(gh, gw, x.shape[-1], x.device)
        q = (self.query_feat.weight + self.query_pos.weight).unsqueeze(0).expand(b, -1, -1)
        for layer in self.layers:
            q = layer(q, memory)
        q = self.norm(q)
        pixel = self.pixel(x.permute(0, 3, 1, 2))
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(q), pixel)
        return masks, self.embed(q)


def mask_pool(masks: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Average of CLIP features under each soft mask: B x Q x E."""
    if masks.shape[-2:] != features.shape[1:3]:
        masks = F.interpolate(masks, size=features.shape[1:3], mode="bilinear", align_corners=False)
    weights = masks.sigmoid()
    pooled = torch.einsum("bqhw,bhwe->bqe", weights, features)
    return pooled / weights.sum(dim=(-1, -2)).unsqueeze(-1).clamp_min(1e-6)


def class_logits(emb: torch.Tensor, text: torch.Tensor, query_to_class: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Cosine of each embedding with each class (max over a class's synonyms): ... x C."""
    cos = F.normalize(emb, dim=-1) @ text.t()
    out = cos.new_full(cos.shape[:-1] + (n_classes,), -2.0)
    index = query_to_class.to(cos.device).expand_as(cos)
    return out.scatter_reduce(-1, index, cos, reduce="amax")


class OVSNet(nn.Module):
    """Decoder + mask pooling + optional GFA + cosine classifiers; the CLIP itself stays outside."""

    def __init__(self, embed_dim: int, cfg: OVSNetConfig = OVSNetConfig()):
        super().__init__()
        self.cfg = cfg
        self.decoder = MaskDecoder(embed_dim, cfg)
        self.void = nn.Parameter(torch.randn(embed_dim) / math.sqrt(embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(20.0)))

    def forward(self, features: torch.Tensor, use_gfa: bool | None = None) -> OVSNetOutput:
        """features: B x h x w x E unit-norm CLIP patch features."""
        masks, emb = self.decoder(features)
        f_q = F.normalize(emb, dim=-1)
        f_c = F.normalize(mask_pool(masks, features), dim=-1)
        if self.cfg.gfa if use_gfa is None else use_gfa:
            f_q, f_c = gfa(f_q, f_c, self.cfg.w, self.cfg.lam)
        return OVSNetOutput(masks, f_q, f_c)

    def query_logits(self, f_q: torch.Tensor, text: torch.Tensor, query_to_class: torch.Tensor, n_classes: int) -> torch.Tensor:
        """Scaled cosine logits over the classes plus "no object" (last): B x Q x (C + 1)."""
        logits = class_logits(f_q, text, query_to_class, n_classes)
        void = F.normalize(f_q, dim=-1) @ F.normalize(self.void, dim=0)
        scale = self.logit_scale.exp().clamp(max=100.0)
        return scale * torch.cat([logits, void.unsqueeze(-1)], dim=-1)

    @torch.no_grad()
    def semantic(self, features: torch.Tensor, text: torch.Tensor, query_to_class: torch.Tensor, n_classes: int,
                 seen: torch.Tensor, clip_scale: float, size: tuple[int, int], use_gfa: bool | None = None) -> torch.Tensor:
        """Per-pixel class scores B x C x H x W: sum over queries of class probability x mask.

        ``seen`` (C, bool) marks classes of the training vocabulary; ``clip_scale`` is the CLIP's
        own logit scale for the pooled-feature classifier.
        """
        out = self.forward(features, use_gfa)
        p_in = self.query_logits(out.f_q, text, query_to_class, n_classes).softmax(-1)
        p_void = p_in[..., -1:]
        p_clip = (clip_scale * class_logits(out.f_c, text, query_to_class, n_classes)).softmax(-1)
        weight = torch.where(seen.to(p_clip.device), self.cfg.alpha, self.cfg.beta)
        mixed = p_in[..., :-1].clamp_min(1e-8).pow(1 - weight) * p_clip.clamp_min(1e-8).pow(weight)
        probs = mixed / mixed.sum(-1, keepdim=True) * (1 - p_void)
        masks = F.interpolate(out.masks, size=size, mode="bilinear", align_corners=False).sigmoid()
        return torch.einsum("bqc,bqhw->bchw", probs, masks)
