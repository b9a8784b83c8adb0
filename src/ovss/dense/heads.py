"""The training-free dense heads of the field, as data.

Every head changes only the last transformer block of the vision encoder; the patch tokens that
come out of it then go through ``ln_post`` and ``proj`` like the class token does in CLIP.

| head      | last-block attention              | residual | FFN | position-embedding resize |
|-----------|-----------------------------------|----------|-----|---------------------------|
| clip      | CLIP's own (q k^T)                | yes      | yes | bicubic, (g + 0.1) / n    |
| maskclip  | value path only (v, out_proj)     | yes      | yes | bicubic, size = (h, w)    |
| sclip     | softmax(q q^T) + softmax(k k^T)   | yes      | yes | bicubic, (g + 0.1) / n    |
| clearclip | softmax(q q^T)                    | no       | no  | bicubic, (g + 0.1) / n    |
| naclip    | softmax(k k^T + Gaussian window)  | no       | no  | bicubic, (g + 0.1) / n    |

(values read off the official code; see ``docs/protocols.md``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import OvssError


@dataclass(frozen=True)
class DenseHead:
    """How the last block is run to get dense features.

    attention: ``vanilla`` (CLIP's q k^T), ``value`` (identity attention: each token keeps its own
    value), or a '+'-joined list of similarity terms among ``qq``, ``kk``, ``qk``, each soft-maxed
    separately and summed (SCLIP's correlative self-attention is ``qq+kk``).
    gaussian_std: NACLIP's neighbourhood window, in patches, added to the attention logits.
    pos_resize: ``offset`` (bicubic with scale (g + 0.1) / n, as NACLIP/SCLIP/ClearCLIP) or
    ``size`` (bicubic to the new grid size, as MaskCLIP).
    """

    name: str
    attention: str
    residual: bool = True
    ffn: bool = True
    gaussian_std: float | None = None
    pos_resize: str = "offset"
    description: str = ""

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.attention.split("+"))


HEADS: dict[str, DenseHead] = {
    "clip": DenseHead("clip", "vanilla", description="vanilla CLIP: patch tokens of the unchanged last block"),
    "maskclip": DenseHead("maskclip", "value", pos_resize="size", description="MaskCLIP: value path of the last block"),
    "sclip": DenseHead("sclip", "qq+kk", description="SCLIP: correlative self-attention q-q + k-k"),
    "clearclip": DenseHead(
        "clearclip", "qq", residual=False, ffn=False, description="ClearCLIP: q-q attention, no residual, no FFN"
    ),
    "naclip": DenseHead(
        "naclip", "kk", residual=False, ffn=False, gaussian_std=5.0,
        description="NACLIP: k-k attention plus a Gaussian neighbourhood, no residual, no FFN",
    ),
}


def get_head(name: str | DenseHead) -> DenseHead:
    if isinstance(name, DenseHead):
        return name
    if name not in HEADS:
        raise OvssError(f"unknown head '{name}'; choose one of: {', '.join(HEADS)}")
    return HEADS[name]
