"""Run an open_clip vision transformer block by block to get dense features.

The loop is written out (rather than calling ``visual.forward``) because every method of ovss
needs something in the middle of it: dense heads replace the last block, test-time adaptation
reads intermediate layers, and prompt tuning inserts learned tokens at each layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OvssError
from .heads import DenseHead, get_head
from .precision import autocast, check_precision, quantized_copy


def resize_pos_embed(pos: torch.Tensor, native: tuple[int, int], grid: tuple[int, int], rule: str = "offset") -> torch.Tensor:
    """Positional embeddings (1 + n*n, D) for a new patch grid ``grid``.

    ``offset``: bicubic with ``scale_factor = ((h + 0.1) / n, (w + 0.1) / n)``, unchanged when the
    grid is the native one (NACLIP, SCLIP, ClearCLIP). ``size``: bicubic to ``size=(h, w)``
    (MaskCLIP); ``size-aa``: the same with antialiasing (GEM; torch's antialiased bicubic kernel
    differs from the plain one even when enlarging). The class token's embedding is kept.
    """
    if tuple(grid) == tuple(native):
        return pos
    cls_pos, patch_pos = pos[:1], pos[1:]
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


def gaussian_window(grid: tuple[int, int], std: float, device=None, dtype=None) -> torch.Tensor:
    """NACLIP's neighbourhood bias: exp(-d^2 / (2 std^2)) between patches, peak 1, not normalised.

    Returns (1 + hw, 1 + hw) with zeros on the class token's row and column.
    """
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], dim=1).to(torch.float64)
    d2 = torch.cdist(coords, coords).pow(2)
    window = torch.exp(-d2 / (2 * std * std))
    out = torch.zeros(h * w + 1, h * w + 1, dtype=torch.float64, device=device)
    out[1:, 1:] = window
    return out.to(dtype or torch.float32)


@dataclass
class DenseFeatures:
    """What one forward of the encoder returns.

    patch: projected patch features, B x h x w x E (not normalised).
    global_embedding: CLIP's image embedding (B x E) from the unchanged last block, if asked for.
    layers: raw tokens (B x (1 + K + hw) x D) after the requested blocks, by block index.
    attention: the attention outputs ``ls_1(attn(ln_1(x)))`` of the tapped blocks (not the last),
    by block index: what MLMP reads from intermediate blocks.
    """

    patch: torch.Tensor
    grid: tuple[int, int]
    global_embedding: torch.Tensor | None = None
    layers: dict[int, torch.Tensor] = field(default_factory=dict)
    attention: dict[int, torch.Tensor] = field(default_factory=dict)


class DenseEncoder(nn.Module):
    """Dense features of a frozen open_clip ViT with one of the training-free heads."""

    def __init__(self, visual: nn.Module, head: str | DenseHead = "naclip", second: nn.Module | None = None,
                 input_mean: Sequence[float] | None = None, input_std: Sequence[float] | None = None,
                 precision: str = "fp32"):
        """``second``: the second backbone of heads that need one (``ovss.model.second``), with
        ``input_mean``/``input_std``, the normalisation of the images given to ``forward``.
        ``precision``: fp32 (exact), or a fast mode of ``ovss.dense.precision``."""
        super().__init__()
        if not hasattr(visual, "transformer") or not hasattr(visual, "conv1"):
            raise OvssError("dense heads need an open_clip VisionTransformer (ViT-*) model; ResNet and timm towers are not supported")
        if getattr(visual, "attn_pool", None) is not None:
            raise OvssError("models with attentional pooling (CoCa) are not supported by the dense heads; pick a CLIP ViT")
        blocks = visual.transformer.resblocks
        if not isinstance(blocks[-1].attn, nn.MultiheadAttention):
            raise OvssError("this model's attention blocks are not supported by the dense heads; pick a CLIP ViT")
        device = next(visual.parameters()).device
        self.precision = check_precision(precision, device)
        # int8: a quantised copy that shares every non-Linear tensor with ``visual``
        self.visual = quantized_copy(visual) if precision == "int8" else visual
        self.head = get_head(head)
        if self.precision in self.head.unoffered_precisions:
            raise OvssError(f"precision={precision!r} is not offered with the {self.head.name} head: it agreed with fp32 "
                            "on fewer than 99 % of pixels on ShapesWorld (docs/benchmarks.md); use bf16 or fp32",
                            param="precision")
        self.native_grid = tuple(visual.grid_size)
        self.patch_size = tuple(visual.patch_size)
        self._window_cache: dict[tuple, torch.Tensor] = {}
        # kept outside the module tree: adaptation methods that walk the encoder's parameters
        # must not see (or train) the second backbone
        self.__dict__["second"] = second
        self.input_norm = (tuple(input_mean), tuple(input_std)) if input_mean is not None else None

    def autocast(self):
        """The precision's autocast context; every forward of the encoder runs inside it."""
        return autocast(self.precision, self.visual.conv1.weight.device)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.visual.transformer.resblocks

    def embed(self, images: torch.Tensor, rule: str | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch embedding + class token + (resized) position embedding + ln_pre."""
        v = self.visual
        x = v.conv1(images.to(v.conv1.weight.dtype))  # fp16 weights (the mlmp protocol on CUDA) take fp16 input
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        pos = resize_pos_embed(v.positional_embedding, self.native_grid, grid, rule or self.head.pos_resize)
        x = x + pos.to(x.dtype)
        return v.ln_pre(x), grid

    def forward(
        self,
        images: torch.Tensor,
        layers: Sequence[int] = (),
        with_global: bool = False,
        prompts: Sequence[torch.Tensor | None] | None = None,
        attention_taps: Sequence[int] = (),
        shared_global: bool = False,
    ) -> DenseFeatures:
        """Encode a batch of windows (B x 3 x H x W, normalised) into dense features.

        ``layers``: block indices (0-based, negative from the end) whose output tokens are
        returned; the last block's output is the head's. ``prompts``: per-block learned tokens (K x D) inserted after the class token
        (deep visual prompts); ``None`` entries keep the previous block's prompts. Runs in the
        encoder's precision (``autocast``). ``attention_taps``: blocks (not the last) whose attention
        outputs are returned too (the block is run in its two residual steps, which is ``block(x)``
        exactly). ``shared_global``: the global embedding from ``head_and_global`` (one pass for the
        head and CLIP's last block, equal up to float rounding) instead of a second run of the block.
        """
        with self.autocast():
            return self._forward(images, layers, with_global, prompts, attention_taps, shared_global)

    def _forward(self, images, layers, with_global, prompts, attention_taps=(), shared_global=False) -> DenseFeatures:
        proxy = self.proxy_features(images) if self.head.second else None
        x, grid = self.embed(images)
        n_blocks = len(self.blocks)
        wanted = {i % n_blocks for i in layers}
        taps = {i % n_blocks for i in attention_taps} - {n_blocks - 1}
        out_layers: dict[int, torch.Tensor] = {}
        attention: dict[int, torch.Tensor] = {}
        n_prompt = 0
        history: list[torch.Tensor] | None = [] if self.head.needs_history else None
        for i, block in enumerate(self.blocks):
            if prompts is not None and i < len(prompts) and prompts[i] is not None:
                p = prompts[i].to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, :1], p, x[:, 1 + n_prompt:]], dim=1)
                n_prompt = p.shape[1]
            if history is not None:  # multi-level heads: prompt tokens take no part in them
                history.append(torch.cat([x[:, :1], x[:, 1 + n_prompt:]], dim=1) if n_prompt else x)
            if i == n_blocks - 1:
                glob = None
                if with_global and shared_global:
                    dense, glob = self.head_and_global(x, grid, n_prompt, history=history, proxy=proxy)
                else:
                    dense = self.head_block(x, grid, n_prompt=n_prompt, history=history, proxy=proxy)
                    if with_global:
                        glob = self.global_embedding(block(x), n_prompt)
            elif i in taps:  # block(x), in its two residual steps, keeping the attention output
                a = block.ls_1(block.attention(q_x=block.ln_1(x)))
                attention[i] = a
                x = x + a
                x = x + block.ls_2(block.mlp(block.ln_2(x)))
            else:
                x = block(x)
            if i in wanted:
                out_layers[i] = x if i < n_blocks - 1 else dense
        patch = self.project(dense[:, 1 + n_prompt:])
        if proxy is not None:  # ProxyCLIP's features lie on the second backbone's grid
            grid = tuple(proxy.shape[-2:])
        patch = patch.reshape(x.shape[0], grid[0], grid[1], -1)
        return DenseFeatures(patch=patch, grid=grid, global_embedding=glob, layers=out_layers, attention=attention)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """ln_post then proj, token by token (the class token's path in CLIP)."""
        tokens = self.visual.ln_post(tokens)
        return tokens @ self.visual.proj if self.visual.proj is not None else tokens

    def global_embedding(self, tokens: torch.Tensor, n_prompt: int = 0) -> torch.Tensor:
        """CLIP's image embedding from the final tokens, pooled as the model was trained."""
        v = self.visual
        tokens = torch.cat([tokens[:, :1], tokens[:, 1 + n_prompt:]], dim=1)
        if getattr(v, "final_ln_after_pool", False):
            pooled, _ = v._global_pool(tokens)
            pooled = v.ln_post(pooled)
        else:
            pooled, _ = v._global_pool(v.ln_post(tokens))
        return pooled @ v.proj if v.proj is not None else pooled

    def proxy_features(self, images: torch.Tensor) -> torch.Tensor:
        """The second backbone's patch features (B x C x h x w) of CLIP-normalised ``images``."""
        if self.second is None or self.input_norm is None:
            raise OvssError(f"the {self.head.name} head needs a second backbone; build it with Segmenter or pass "
                            "second=load_second_backbone(...) and the input normalisation")
        from .proxy import renormalise, second_features

        spec = self.second.spec
        x = renormalise(images, *self.input_norm, spec.mean, spec.std)
        return second_features(self.second, x.to(next(self.second.vit.parameters()).dtype), resize_pos_embed).to(images.dtype)

    def head_block(self, x: torch.Tensor, grid: tuple[int, int], block: nn.Module | None = None, n_prompt: int = 0,
                   history: list[torch.Tensor] | None = None, proxy: torch.Tensor | None = None,
                   mix: torch.Tensor | None = None, feedback=None, qkv: torch.Tensor | None = None) -> torch.Tensor:
        """Run ``block`` (the last one by default) the head's way on tokens ``x``.

        Multi-level heads (``head.levels``) and ResCLIP's mix (``head.rcs``) need ``history``:
        the tokens (without prompt tokens) that entered each block, ``x`` last; prompt tokens of
        ``x`` are passed through the multi-level heads unchanged. ``mix``: ResCLIP's R already
        computed (``cross_correlation_attention``), in place of ``history``. ``feedback``:
        ResCLIP's semantic feedback (``ovss.dense.feedback.SemanticFeedback``) for heads with
        similarity terms, mixed into each term's logits before the softmax.
        ``qkv``: ``in_proj(ln_1(x))`` when the caller has it already (``head_and_global``).
        """
        head = self.head
        if head.needs_history and history is None and (head.levels or mix is None):
            raise ValueError(f"the {head.name} head reads earlier blocks: pass the tokens that entered each block")
        if head.levels:
            from .multilevel import multilevel_tokens

            out = multilevel_tokens(head.levels, self.blocks, history, grid)
            return torch.cat([out[:, :1], x[:, 1:1 + n_prompt], out[:, 1:]], dim=1) if n_prompt else out
        block = block if block is not None else self.blocks[-1]
        if head.second:  # ProxyCLIP: rows 0 .. n_prompt stand in for the class and prompt tokens
            if proxy is None:
                raise ValueError(f"the {head.name} head needs the second backbone's features (proxy_features)")
            from .proxy import proxy_attention

            y = block.ln_1(torch.cat([x[:, :1], x[:, 1 + n_prompt:]], dim=1) if n_prompt else x)
            return torch.cat([x[:, :1 + n_prompt], proxy_attention(block.attn, y, grid, proxy)], dim=1)
        if head.attention == "vanilla" and head.residual and head.ffn:
            return block(x)
        y = block.ln_1(x)
        attn = block.attn
        if head.attention == "vanilla":
            a = attn(y, y, y, need_weights=False)[0]
        else:
            if head.rcs is not None and mix is None:
                if n_prompt:
                    raise OvssError(f"the {head.name} head does not take visual prompts; pick a head without +rcs")
                from .multilevel import cross_correlation_attention

                mix = cross_correlation_attention(self.blocks, history)
            if feedback is not None and n_prompt:
                raise OvssError("ResCLIP's semantic feedback does not take visual prompts")
            a = self._custom_attention(attn, y, grid, n_prompt, mix if head.rcs is not None else None, feedback, qkv)
        a = block.ls_1(a)
        x = x + a if head.residual else a
        if head.ffn:
            x = x + block.ls_2(block.mlp(block.ln_2(x)))
        return x

    def head_and_global(self, x: torch.Tensor, grid: tuple[int, int], n_prompt: int = 0,
                        history: list[torch.Tensor] | None = None,
                        proxy: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(head_block(x), global_embedding(last_block(x)))`` with the last block's work shared.

        Why: a method that needs both (MLMP's local and global entropies) would otherwise run the
        last block twice. Both paths read the same ``ln_1(x)`` and q / k / v projection, so they are
        computed once; and when the model pools its class token (real CLIP ViTs), CLIP's unchanged
        path is run for the class token's row only, since the pooled embedding depends on nothing else.
        Equal to the two separate calls up to float rounding (tested).
        """
        block, head = self.blocks[-1], self.head
        if head.attention == "vanilla" and head.residual and head.ffn:  # the head's output is CLIP's own
            dense = block(x)
            return dense, self.global_embedding(dense, n_prompt)
        attn = block.attn
        y = block.ln_1(x)
        qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias)
        dense = self.head_block(x, grid, block, n_prompt, history=history, proxy=proxy, qkv=qkv)
        B, N, D = y.shape
        H = attn.num_heads
        q, k, v = (t.reshape(B, N, H, D // H).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        rows = 1 if getattr(self.visual, "pool_type", None) == "tok" else N
        a = F.scaled_dot_product_attention(q[:, :, :rows], k, v)  # CLIP's attention, softmax(q k^T / sqrt(d)) v
        a = attn.out_proj(a.transpose(1, 2).reshape(B, rows, D))
        tokens = x[:, :rows] + block.ls_1(a)
        tokens = tokens + block.ls_2(block.mlp(block.ln_2(tokens)))
        return dense, self.global_embedding(tokens, n_prompt if rows == N else 0)

    def _custom_attention(self, attn: nn.MultiheadAttention, y: torch.Tensor, grid: tuple[int, int], n_prompt: int,
                          mix: torch.Tensor | None = None, feedback=None, qkv: torch.Tensor | None = None) -> torch.Tensor:
        B, N, D = y.shape
        H = attn.num_heads
        d = D // H
        if qkv is None:
            qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias)
        q, k, v = qkv.chunk(3, dim=-1)
        q, k, v = (t.reshape(B, N, H, d).transpose(1, 2) for t in (q, k, v))
        if self.head.attention == "value":
            out = v
        else:
            scale = d ** -0.5
            pick = {"q": q, "k": k}
            bias = None
            if self.head.gaussian_std is not None:
                bias = self._window(grid, n_prompt, y.device, y.dtype)
            weights = 0
            for term in self.head.terms:
                logits = (pick[term[0]] @ pick[term[1]].transpose(-2, -1)) * scale
                if feedback is not None:  # ResCLIP's SFR: before NACLIP's window and the softmax
                    from .feedback import mix_feedback

                    logits = mix_feedback(logits, feedback)
                if bias is not None:
                    logits = logits + bias
                # float32 softmax: exact in fp32, and keeps the fast modes' attention maps accurate
                weights = weights + logits.float().softmax(dim=-1)
            if mix is not None:  # ResCLIP: tau ((1 - lambda) A + lambda R), after the softmax
                tau, lam = self.head.rcs
                weights = tau * ((1 - lam) * weights + lam * mix)
            out = weights.to(v.dtype) @ v
        out = out.transpose(1, 2).reshape(B, N, D)
        return attn.out_proj(out)

    def _window(self, grid, n_prompt, device, dtype) -> torch.Tensor:
        key = (tuple(grid), n_prompt, self.head.gaussian_std, str(device), dtype)
        if key not in self._window_cache:
            w = gaussian_window(grid, self.head.gaussian_std, device=device, dtype=dtype)
            if n_prompt:  # prompt tokens get no neighbourhood, like the class token
                full = torch.zeros(w.shape[0] + n_prompt, w.shape[1] + n_prompt, device=device, dtype=dtype)
                keep = torch.cat([torch.tensor([0]), torch.arange(1 + n_prompt, w.shape[0] + n_prompt)]).to(device)
                full[keep[:, None], keep[None, :]] = w
                w = full
            self._window_cache[key] = w
        return self._window_cache[key]
