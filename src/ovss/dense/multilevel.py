"""Training-free heads that read earlier blocks: GEM, SC-CLIP, and ResCLIP's attention mix.

The heads of ``ovss.dense.heads`` without ``levels`` change the last block alone. These two read
earlier blocks as well, so they get ``history``: the tokens that entered each block, in order
(``history[i]`` entered block ``i``; the last entry entered the last block). Both return tokens
B x (1 + hw) x D that go through ``ln_post`` and ``proj`` like the other heads' outputs.

GEM (Bousselham et al., "Grounding Everything", CVPR 2024): over the last ``GEM.blocks`` blocks a
second path runs beside the unchanged model. At each of those blocks it adds the output of a
self-self attention computed on the model's own ``ln_1`` tokens: q, k and v each attend to
themselves (L2-normalised, inverse temperature = mean token norm x d^-1/2, after one clustering
step), each result is applied to v, the three are averaged and go through ``out_proj``. The path
has no FFN. Settings read off WalBouss/GEM ``gem_utils.py`` (depth 7, one iteration).

SC-CLIP (Bai et al., "Self-Calibrated CLIP", 2024): the output of the second-last block is
scanned for anomaly tokens (local outlier factor, 30 neighbours, top 5 %), which are replaced by
the mean of their non-anomalous 3 x 3 neighbours; cosine similarities of an intermediate block's
(repaired) patch tokens, cut at 0.4, aggregate the repaired tokens before the last block, and
the untouched similarities (shifted by their mean, x3, negatives masked, soft-maxed) are averaged
with the k-k attention of the last block, which runs without residual or FFN and adds 0.3 x the
class token. A second, shallower similarity aggregates the result; the same last block run on
the sum of several intermediate outputs is aggregated the same way and added. Settings read off
SuleBai/SC-CLIP ``clip/model.py`` (defaults for 12-block models; other depths scale the block
indices, see ``ScClipSettings.blocks``).

ResCLIP (Yang et al., "ResCLIP", CVPR 2025), residual cross-correlation self-attention: the mean
of the soft-maxed q-k attention maps of intermediate blocks (5 .. 8 of 12) is mixed into the
last block's attention of SCLIP, ClearCLIP or NACLIP after its softmax (``DenseHead.rcs``; the
mix itself is in ``DenseEncoder._custom_attention``). Its semantic feedback refinement needs the
class list, so it is a step of ``Segmenter.predict`` (``ovss.dense.feedback``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..model.blocks import BlockAdapter, merge_heads  # noqa: F401  (merge_heads: one copy, re-exported)

# --------------------------------------------------------------------------------------- GEM


@dataclass(frozen=True)
class GemSettings:
    blocks: int = 6  # the authors' ``depth=7`` wraps resblocks[-1] ... resblocks[-6]
    iterations: int = 1
    temperature: float | None = None  # None: mean token norm x d^-1/2, per image and block


GEM = GemSettings()


def split_heads(block: BlockAdapter, y: torch.Tensor, grid: tuple[int, int] | None = None,
                skip: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v of tokens ``y`` (B x N x D) through ``block``'s input projection, as B x H x N x d
    (rotary embeddings for ``grid`` on the tokens after ``skip``, where the tower has them)."""
    return block.qkv(y, grid, skip)


def self_self_attention(block: BlockAdapter, y: torch.Tensor, settings: GemSettings = GEM,
                        grid: tuple[int, int] | None = None, skip: int = 1) -> torch.Tensor:
    """GEM's self-self attention of ``ln_1`` tokens ``y`` (B x N x D), through the output projection.

    For t in (v, k, q): ``iterations`` times t <- softmax(t^ t^T tau) t^ with t^ = t / |t|, then
    the weights softmax(t^ t^T tau) are applied to v; the three outputs are averaged.
    """
    q, k, v = split_heads(block, y, grid, skip)
    d = q.shape[-1]
    if settings.temperature is None:
        tau = y.norm(dim=-1).mean(dim=-1).view(-1, 1, 1, 1) * d ** -0.5
    else:
        tau = settings.temperature

    def weights(t: torch.Tensor) -> torch.Tensor:
        return (t @ t.transpose(-2, -1) * tau).softmax(dim=-1)

    total = 0
    for t in (v, k, q):
        for _ in range(settings.iterations):
            t = F.normalize(t, dim=-1)
            t = weights(t) @ t
        total = total + weights(F.normalize(t, dim=-1)) @ v
    return block.out(total / 3)


def gem_tokens(blocks: list[BlockAdapter], history: list[torch.Tensor], settings: GemSettings = GEM,
               grid: tuple[int, int] | None = None, prefix: int = 1) -> torch.Tensor:
    """GEM's path: it starts as the tokens entering its first block and adds each block's self-self
    attention of the unchanged model's tokens (no FFN)."""
    n = len(blocks)
    start = n - min(settings.blocks, n)
    path = history[start]
    for i in range(start, n):
        block = blocks[i]
        path = path + block.ls_1(self_self_attention(block, block.ln_1(history[i]), settings, grid, prefix))
    return path


# ----------------------------------------------------------------------------------- SC-CLIP


@dataclass(frozen=True)
class ScClipSettings:
    """SC-CLIP's defaults (``base_config.py``), block indices for a 12-block ViT (0-based outputs)."""

    similarity_block: int = 8  # pre_adjust_idx: its repaired tokens' similarity guides the last block
    refine_block: int = 3  # post_adjust_idx: its similarity aggregates the result
    fuse_from: int = 3  # multi_start_idx: outputs fuse_from .. fuse_to - 1 are summed
    fuse_to: int = 10  # multi_end_idx
    cls_weight: float = 0.3  # res_cls
    cut: float = 0.4  # beta: similarities below it do not aggregate
    neighbours: int = 30  # LOF n_neighbors
    contamination: float = 0.05
    reference_depth: int = 12

    def blocks(self, n_blocks: int) -> tuple[int, int, int, int]:
        """(similarity, refine, fuse_from, fuse_to) for a model of ``n_blocks`` blocks: the
        authors' indices, scaled by ``n_blocks / 12`` (rounded half up) on other depths."""
        if n_blocks == self.reference_depth:
            return self.similarity_block, self.refine_block, self.fuse_from, self.fuse_to

        def scale(i: int, last: int) -> int:  # outputs exist for blocks 0 .. n - 2
            return min(last, int(i * n_blocks / self.reference_depth + 0.5))

        lo, hi = scale(self.fuse_from, n_blocks - 2), scale(self.fuse_to, n_blocks - 1)
        return scale(self.similarity_block, n_blocks - 2), scale(self.refine_block, n_blocks - 2), lo, max(hi, lo + 1)


SCCLIP = ScClipSettings()


def local_outlier_scores(x: torch.Tensor, neighbours: int) -> torch.Tensor:
    """SC-CLIP's local outlier factor of the rows of ``x`` (N x D), as its authors compute it.

    Distances are squared Euclidean; the reachability distance of p to a neighbour is
    max(d(p, o), k-distance(p)) (p's own k-distance, where textbook LOF takes o's), so the local
    reachability density of p is k / k-distance(p); the score is the mean over p's k nearest
    neighbours (itself excluded) of density(o) / density(p).
    """
    k = min(neighbours, x.shape[0] - 1)
    # differences then norms (not cdist's matrix-product shortcut), a few rows at a time: the
    # neighbour sets are discrete, so distances are computed exactly as the authors do
    d2 = torch.cat([(x[i:i + 16, None] - x[None]).norm(dim=2).pow(2) for i in range(0, x.shape[0], 16)])
    dist, idx = torch.topk(d2, k=k + 1, largest=False)
    dist, idx = dist[:, 1:], idx[:, 1:]
    reach = torch.maximum(dist, dist[:, -1:])
    density = k / torch.nan_to_num(reach.mean(dim=1), nan=1e-6)
    return (density[idx] / density[:, None]).mean(dim=1)


def anomaly_mask(patches: torch.Tensor, grid: tuple[int, int], settings: ScClipSettings = SCCLIP) -> torch.Tensor:
    """h x w boolean map of the anomaly tokens among ``patches`` (hw x D, row-major): LOF score
    above its (1 - contamination) quantile."""
    if patches.shape[0] < 3:  # too few tokens for neighbours to mean anything
        return torch.zeros(grid, dtype=torch.bool, device=patches.device)
    scores = local_outlier_scores(patches, settings.neighbours)
    threshold = torch.quantile(scores.float(), 1 - settings.contamination)
    return (scores > threshold).reshape(grid)


def repair_anomalies(feature_map: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace the features (B x C x h x w) at ``mask`` (h x w) by the mean of their 3 x 3
    neighbours that are inside the grid and not anomalous; a token with none keeps its value."""
    keep = (~mask).to(feature_map.dtype)[None, None]
    ring = torch.ones(1, 1, 3, 3, dtype=feature_map.dtype, device=feature_map.device)
    ring[0, 0, 1, 1] = 0
    C = feature_map.shape[1]
    sums = F.conv2d(F.pad(feature_map * keep, (1, 1, 1, 1)), ring.expand(C, 1, 3, 3), groups=C)
    counts = F.conv2d(F.pad(keep, (1, 1, 1, 1)), ring)
    update = mask[None, None] & (counts > 0)
    return torch.where(update, sums / counts.clamp(min=1), feature_map)


def cosine_similarity_map(tokens: torch.Tensor) -> torch.Tensor:
    """B x N x N cosine similarities of tokens B x N x D."""
    t = F.normalize(tokens, dim=-1)
    return t @ t.transpose(-2, -1)


def aggregate(tokens: torch.Tensor, similarity: torch.Tensor, cut: float) -> torch.Tensor:
    """Mean of ``tokens`` (B x N x D) weighted by ``similarity`` (B x N x N) with values below
    ``cut`` set to zero, each row normalised to sum 1 (+1e-6)."""
    w = similarity.masked_fill(similarity < cut, 0.0)
    return (w / (w.sum(dim=-1, keepdim=True) + 1e-6)) @ tokens


def guided_attention(block: BlockAdapter, y: torch.Tensor, similarity: torch.Tensor,
                     grid: tuple[int, int] | None = None) -> torch.Tensor:
    """SC-CLIP's last-block attention on patch tokens ``y`` (B x hw x D): the mean of
    softmax(k k^T / sqrt d) and softmax of the similarity shifted by its mean (over the whole
    batch, as the authors compute it for one image) times 3, negatives masked; then out_proj."""
    q, k, v = split_heads(block, y, grid, 0)
    d = q.shape[-1]
    guide = (similarity - similarity.mean()) * 3.0
    guide = guide.masked_fill(guide < 0, float("-inf")).softmax(dim=-1)[:, None]
    weights = (guide + (k @ k.transpose(-2, -1) * d ** -0.5).softmax(dim=-1)) / 2
    return block.out(weights @ v)


def scclip_tokens(blocks: list[BlockAdapter], history: list[torch.Tensor], grid: tuple[int, int],
                  settings: ScClipSettings = SCCLIP) -> torch.Tensor:
    """SC-CLIP's dense tokens, B x (1 + hw) x D; its output has no class token, so the class
    token of the last block's input stands in row 0 (it is not a prediction)."""
    n = len(blocks)
    sim_i, refine_i, lo, hi = settings.blocks(n)
    outputs = history[1:]  # outputs[i]: tokens after block i, for i < n - 1
    last_in = history[-1]
    B, _, D = last_in.shape
    h, w = grid
    last = blocks[-1]

    def as_map(patches):
        return patches.transpose(1, 2).reshape(-1, D, h, w)

    def as_tokens(fmap):
        return fmap.reshape(-1, D, h * w).transpose(1, 2)

    # one image at a time: the anomaly scan and the similarity statistics are per image
    results = []
    for b in range(B):
        sl = slice(b, b + 1)
        cls = last_in[sl, :1]
        mask = anomaly_mask(last_in[b, 1:], grid, settings)
        x = as_tokens(repair_anomalies(as_map(last_in[sl, 1:]), mask))
        guide = cosine_similarity_map(as_tokens(repair_anomalies(as_map(outputs[sim_i][sl, 1:]), mask)))
        x = aggregate(x, guide, settings.cut)
        x = guided_attention(last, last.ln_1(x), guide, grid) + settings.cls_weight * cls
        refine = cosine_similarity_map(outputs[refine_i][sl, 1:])
        x = aggregate(x, refine, settings.cut)
        fused = torch.stack([outputs[i][sl] for i in range(lo, hi)]).sum(dim=0)
        extra = guided_attention(last, last.ln_1(fused[:, 1:]), guide, grid) + settings.cls_weight * fused[:, :1]
        x = x + aggregate(extra, refine, settings.cut)
        results.append(torch.cat([cls, x], dim=1))
    return torch.cat(results)


# ----------------------------------------------------------------------------------- ResCLIP


@dataclass(frozen=True)
class RcsSettings:
    """ResCLIP's intermediate blocks for the cross-correlation mix: attention maps of blocks
    ``first`` .. ``last`` (0-based, inclusive) of a 12-block ViT, averaged (``clip/model.py``:
    ``attn_map[i] for i in range(5, 9)``); other depths scale the indices."""

    first: int = 5
    last: int = 8
    reference_depth: int = 12

    def blocks(self, n_blocks: int) -> range:
        if n_blocks == self.reference_depth:
            return range(self.first, self.last + 1)

        def scale(i: int) -> int:
            return min(n_blocks - 2, int(i * n_blocks / self.reference_depth + 0.5))

        return range(scale(self.first), max(scale(self.last), scale(self.first)) + 1)


RCS = RcsSettings()


def cross_correlation_attention(blocks: list[BlockAdapter], history: list[torch.Tensor], settings: RcsSettings = RCS,
                                grid: tuple[int, int] | None = None, prefix: int = 1) -> torch.Tensor:
    """ResCLIP's R: the mean over the chosen intermediate blocks of their own soft-maxed q-k
    attention (B x H x N x N), computed on the tokens that entered them."""
    maps = []
    for i in settings.blocks(len(blocks)):
        q, k, _ = split_heads(blocks[i], blocks[i].ln_1(history[i]), grid, prefix)
        maps.append((q * q.shape[-1] ** -0.5 @ k.transpose(-2, -1)).softmax(dim=-1))
    return torch.stack(maps).mean(dim=0)


def multilevel_tokens(name: str, blocks: list[BlockAdapter], history: list[torch.Tensor], grid: tuple[int, int],
                      prefix: int = 1) -> torch.Tensor:
    """The dense tokens of multi-level head ``name`` from the tokens that entered each block
    (``prefix``: tokens before the patches; SC-CLIP needs a class token, ``DenseHead.needs``)."""
    if len(history) != len(blocks):
        raise ValueError(f"{name}: history holds {len(history)} entries for {len(blocks)} blocks")
    if name == "gem":
        return gem_tokens(blocks, history, grid=grid, prefix=prefix)
    if name == "scclip":
        return scclip_tokens(blocks, history, grid)
    raise ValueError(f"unknown multi-level head {name!r}")
