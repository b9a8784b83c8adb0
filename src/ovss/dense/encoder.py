"""Run a CLIP vision tower block by block to get dense features.

The loop is written out (rather than calling ``visual.forward``) because every method of ovss
needs something in the middle of it: dense heads replace the last block, test-time adaptation
reads intermediate layers, and prompt tuning inserts learned tokens at each layer. It is written
once, against the tower adapters of ``ovss.model.towers`` (open_clip's ViT, timm's SigLIP ViT,
EVA-02 and PE-Core), so every head runs on every family.

Token layout everywhere: ``prefix`` tokens (the class token; none on SigLIP), then the learned
prompt tokens (``n_prompt``, OpenDAS), then the h x w patches in row-major order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OvssError
from ..model.blocks import resize_pos_embed
from ..model.towers import tower_for
from .heads import DenseHead, check_head_fits, get_head
from .precision import autocast, check_precision, quantized_copy


def gaussian_window(grid: tuple[int, int], std: float, device=None, dtype=None, prefix: int = 1) -> torch.Tensor:
    """NACLIP's neighbourhood bias: exp(-d^2 / (2 std^2)) between patches, peak 1, not normalised.

    Returns (prefix + hw, prefix + hw) with zeros on the prefix (class) tokens' rows and columns.
    """
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], dim=1).to(torch.float64)
    d2 = torch.cdist(coords, coords).pow(2)
    window = torch.exp(-d2 / (2 * std * std))
    out = torch.zeros(h * w + prefix, h * w + prefix, dtype=torch.float64, device=device)
    out[prefix:, prefix:] = window
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
    """Dense features of a frozen CLIP vision tower with one of the training-free heads."""

    def __init__(self, visual: nn.Module, head: str | DenseHead = "naclip", second: nn.Module | None = None,
                 input_mean: Sequence[float] | None = None, input_std: Sequence[float] | None = None,
                 precision: str = "fp32", model_name: str | None = None):
        """``second``: the second backbone of heads that need one (``ovss.model.second``), with
        ``input_mean``/``input_std``, the normalisation of the images given to ``forward``.
        ``precision``: fp32 (exact), or a fast mode of ``ovss.dense.precision``. ``model_name``
        names the backbone in refusals."""
        super().__init__()
        name = model_name or type(visual).__name__
        tower = tower_for(visual, name)  # one line where the tower's family has no adapter
        self.head = get_head(head)
        check_head_fits(self.head, tower, name)
        device = next(visual.parameters()).device
        self.precision = check_precision(precision, device)
        # int8: a quantised copy that shares every non-Linear tensor with ``visual``
        self.visual = quantized_copy(visual) if precision == "int8" else visual
        if self.precision in self.head.unoffered_precisions:
            raise OvssError(f"precision={precision!r} is not offered with the {self.head.name} head: it agreed with fp32 "
                            "on fewer than 99 % of pixels on ShapesWorld (docs/benchmarks.md); use bf16 or fp32",
                            param="precision")
        self.__dict__["tower"] = tower_for(self.visual, name)  # a plain object (its modules are visual's)
        self.prefix = self.tower.prefix
        self.native_grid = self.tower.native_grid
        self.patch_size = self.tower.patch_size
        self.__dict__["_blocks"] = self.tower.blocks
        self._window_cache: dict[tuple, torch.Tensor] = {}
        # kept outside the module tree: adaptation methods that walk the encoder's parameters
        # must not see (or train) the second backbone
        self.__dict__["second"] = second
        self.input_norm = (tuple(input_mean), tuple(input_std)) if input_mean is not None else None

    def autocast(self):
        """The precision's autocast context; every forward of the encoder runs inside it."""
        return autocast(self.precision, self.tower.device)

    @property
    def blocks(self) -> list:
        """The tower's blocks as ``ovss.model.blocks.BlockAdapter``s (their modules' parts reachable too)."""
        return self._blocks

    def embed(self, images: torch.Tensor, rule: str | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch embedding + prefix tokens + (resized) position embedding + pre-norm."""
        return self.tower.embed(images, rule or self.head.pos_resize)

    def run_block(self, i: int, x: torch.Tensor, grid: tuple[int, int], n_prompt: int = 0) -> torch.Tensor:
        """Block ``i`` unchanged on tokens ``x`` (with ``n_prompt`` prompt tokens after the prefix)."""
        return self.blocks[i](x, grid, self.prefix + n_prompt)

    def insert_prompts(self, x: torch.Tensor, prompt: torch.Tensor, n_prompt: int) -> tuple[torch.Tensor, int]:
        """``x`` with its ``n_prompt`` prompt tokens replaced by ``prompt`` (K x D); returns K too."""
        p = prompt.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)
        P = self.prefix
        return torch.cat([x[:, :P], p, x[:, P + n_prompt:]], dim=1), p.shape[1]

    def without_prompts(self, x: torch.Tensor, n_prompt: int) -> torch.Tensor:
        P = self.prefix
        return torch.cat([x[:, :P], x[:, P + n_prompt:]], dim=1) if n_prompt else x

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
        returned; the last block's output is the head's. ``prompts``: per-block learned tokens (K x D) inserted after the prefix
        (class) token (deep visual prompts); ``None`` entries keep the previous block's prompts. Runs in the
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
                x, n_prompt = self.insert_prompts(x, prompts[i], n_prompt)
            if history is not None:  # multi-level heads: prompt tokens take no part in them
                history.append(self.without_prompts(x, n_prompt))
            if i == n_blocks - 1:
                glob = None
                if with_global and shared_global:
                    dense, glob = self.head_and_global(x, grid, n_prompt, history=history, proxy=proxy)
                else:
                    dense = self.head_block(x, grid, n_prompt=n_prompt, history=history, proxy=proxy)
                    if with_global:
                        glob = self.global_embedding(self.run_block(i, x, grid, n_prompt), n_prompt)
            elif i in taps:  # block(x), in its two residual steps, keeping the attention output
                a = block.ls_1(block.attention(block.ln_1(x), grid, self.prefix + n_prompt))
                attention[i] = a
                x = x + a
                x = x + block.ffn(x)
            else:
                x = self.run_block(i, x, grid, n_prompt)
            if i in wanted:
                out_layers[i] = x if i < n_blocks - 1 else dense
        patch = self.project(dense[:, self.prefix + n_prompt:])
        if proxy is not None:  # ProxyCLIP's features lie on the second backbone's grid
            grid = tuple(proxy.shape[-2:])
        patch = patch.reshape(x.shape[0], grid[0], grid[1], -1)
        return DenseFeatures(patch=patch, grid=grid, global_embedding=glob, layers=out_layers, attention=attention)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens into the joint space one by one: the class token's path in CLIP (ln_post then
        proj), or an attention pool's value path where the tower pools that way (``ovss.model.towers``)."""
        return self.tower.project(tokens)

    def global_embedding(self, tokens: torch.Tensor, n_prompt: int = 0) -> torch.Tensor:
        """CLIP's image embedding from the final tokens, pooled as the model was trained."""
        return self.tower.global_embedding(self.without_prompts(tokens, n_prompt))

    def image_embedding(self, images: torch.Tensor, prompts: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """CLIP's image embedding (B x E) of normalised images with unchanged blocks (no head),
        with deep visual ``prompts`` as in ``forward``."""
        x, grid = self.embed(images)
        n = 0
        for i in range(len(self.blocks)):
            if prompts is not None and i < len(prompts) and prompts[i] is not None:
                x, n = self.insert_prompts(x, prompts[i], n)
            x = self.run_block(i, x, grid, n)
        return self.global_embedding(x, n)

    def proxy_features(self, images: torch.Tensor) -> torch.Tensor:
        """The second backbone's patch features (B x C x h x w) of CLIP-normalised ``images``."""
        if self.second is None or self.input_norm is None:
            raise OvssError(f"the {self.head.name} head needs a second backbone; build it with Segmenter or pass "
                            "second=load_second_backbone(...) and the input normalisation")
        from .proxy import renormalise, second_features

        spec = self.second.spec
        x = renormalise(images, *self.input_norm, spec.mean, spec.std)
        return second_features(self.second, x.to(next(self.second.vit.parameters()).dtype), resize_pos_embed).to(images.dtype)

    def head_block(self, x: torch.Tensor, grid: tuple[int, int], block=None, n_prompt: int = 0,
                   history: list[torch.Tensor] | None = None, proxy: torch.Tensor | None = None,
                   mix: torch.Tensor | None = None, feedback=None, qkv: tuple | None = None) -> torch.Tensor:
        """Run ``block`` (the last one by default, a ``BlockAdapter``) the head's way on tokens ``x``.

        Multi-level heads (``head.levels``) and ResCLIP's mix (``head.rcs``) need ``history``:
        the tokens (without prompt tokens) that entered each block, ``x`` last; prompt tokens of
        ``x`` are passed through the multi-level heads unchanged. ``mix``: ResCLIP's R already
        computed (``cross_correlation_attention``), in place of ``history``. ``feedback``:
        ResCLIP's semantic feedback (``ovss.dense.feedback.SemanticFeedback``) for heads with
        similarity terms, mixed into each term's logits before the softmax.
        ``qkv``: the block's ``qkv(ln_1(x))`` when the caller has it already (``head_and_global``).
        """
        head = self.head
        P = self.prefix
        if head.needs_history and history is None and (head.levels or mix is None):
            raise ValueError(f"the {head.name} head reads earlier blocks: pass the tokens that entered each block")
        if head.levels:
            from .multilevel import multilevel_tokens

            out = multilevel_tokens(head.levels, self.blocks, history, grid, P)
            return torch.cat([out[:, :P], x[:, P:P + n_prompt], out[:, P:]], dim=1) if n_prompt else out
        block = block if block is not None else self.blocks[-1]
        if head.second:  # ProxyCLIP: rows 0 .. P + n_prompt stand in for the prefix and prompt tokens
            if proxy is None:
                raise ValueError(f"the {head.name} head needs the second backbone's features (proxy_features)")
            from .proxy import proxy_attention

            y = block.ln_1(self.without_prompts(x, n_prompt))
            return torch.cat([x[:, :P + n_prompt], proxy_attention(block, y, grid, proxy, P)], dim=1)
        skip = P + n_prompt
        if head.attention == "vanilla" and head.residual and head.ffn:
            return block(x, grid, skip)
        y = block.ln_1(x)
        if head.attention == "vanilla":
            a = block.attention(y, grid, skip)
        else:
            if head.rcs is not None and mix is None:
                if n_prompt:
                    raise OvssError(f"the {head.name} head does not take visual prompts; pick a head without +rcs")
                from .multilevel import cross_correlation_attention

                mix = cross_correlation_attention(self.blocks, history, grid=grid, prefix=P)
            if feedback is not None and n_prompt:
                raise OvssError("ResCLIP's semantic feedback does not take visual prompts")
            if qkv is None:
                qkv = block.qkv(y, grid, skip)
            a = self._custom_attention(block, qkv, grid, n_prompt, mix if head.rcs is not None else None, feedback)
        a = block.ls_1(a)
        x = x + a if head.residual else a
        if head.ffn:
            x = x + block.ffn(x)
        return x

    def head_and_global(self, x: torch.Tensor, grid: tuple[int, int], n_prompt: int = 0,
                        history: list[torch.Tensor] | None = None,
                        proxy: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(head_block(x), global_embedding(last_block(x)))`` with the last block's work shared.

        Why: a method that needs both (MLMP's local and global entropies) would otherwise run the
        last block twice. Both paths read the same ``ln_1(x)`` and q / k / v projection, so they are
        computed once; and when the model pools its class token (CLIP ViTs, EVA-02), CLIP's unchanged
        path is run for the class token's row only, since the pooled embedding depends on nothing else.
        Equal to the two separate calls up to float rounding (tested).
        """
        block, head = self.blocks[-1], self.head
        skip = self.prefix + n_prompt
        if head.attention == "vanilla" and head.residual and head.ffn:  # the head's output is CLIP's own
            dense = block(x, grid, skip)
            return dense, self.global_embedding(dense, n_prompt)
        y = block.ln_1(x)
        qkv = block.qkv(y, grid, skip)
        dense = self.head_block(x, grid, block, n_prompt, history=history, proxy=proxy, qkv=qkv)
        q, k, v = qkv
        N = y.shape[1]
        rows = 1 if self.tower.pools_class_token else N
        a = block.out(F.scaled_dot_product_attention(q[:, :, :rows], k, v))  # CLIP's attention, softmax(q k^T / sqrt(d)) v
        tokens = x[:, :rows] + block.ls_1(a)
        tokens = tokens + block.ffn(tokens)
        return dense, self.global_embedding(tokens, n_prompt if rows == N else 0)

    def _custom_attention(self, block, qkv: tuple, grid: tuple[int, int], n_prompt: int,
                          mix: torch.Tensor | None = None, feedback=None) -> torch.Tensor:
        q, k, v = qkv
        if self.head.attention == "value":
            out = v
        else:
            scale = q.shape[-1] ** -0.5
            pick = {"q": q, "k": k, "v": v}
            bias = None
            if self.head.gaussian_std is not None:
                bias = self._window(grid, n_prompt, q.device, q.dtype)
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
        return block.out(out)

    def _window(self, grid, n_prompt, device, dtype) -> torch.Tensor:
        key = (tuple(grid), n_prompt, self.head.gaussian_std, str(device), dtype)
        if key not in self._window_cache:
            P = self.prefix
            w = gaussian_window(grid, self.head.gaussian_std, device=device, dtype=dtype, prefix=P)
            if n_prompt:  # prompt tokens get no neighbourhood, like the class token
                full = torch.zeros(w.shape[0] + n_prompt, w.shape[1] + n_prompt, device=device, dtype=dtype)
                keep = torch.cat([torch.arange(P), torch.arange(P + n_prompt, w.shape[0] + n_prompt)]).to(device)
                full[keep[:, None], keep[None, :]] = w
                w = full
            self._window_cache[key] = w
        return self._window_cache[key]
