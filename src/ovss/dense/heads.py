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

Multi-level heads (``levels``) read the tokens that entered earlier blocks too; their computation
lives in ``ovss.dense.multilevel``:

| head      | what it does                                                       | position-embedding resize |
|-----------|--------------------------------------------------------------------|---------------------------|
| gem       | GEM: a self-self attention path (q-q, k-k, v-v, L2-normalised,     | bicubic antialiased, size |
|           | one clustering step) in parallel over the last 6 blocks            |                           |
| scclip    | SC-CLIP: anomaly tokens (LOF) repaired, intermediate-feature       | bicubic, (g + 0.1) / n    |
|           | similarities aggregate and steer the last block, multi-level fusion|                           |

(values read off the official code; see ``docs/protocols.md``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import OvssError


@dataclass(frozen=True)
class DenseHead:
    """How the last block is run to get dense features.

    attention: ``vanilla`` (CLIP's q k^T), ``value`` (identity attention: each token keeps its own
    value), or a '+'-joined list of similarity terms among ``qq``, ``kk``, ``qk``, each soft-maxed
    separately and summed (SCLIP's correlative self-attention is ``qq+kk``).
    gaussian_std: NACLIP's neighbourhood window, in patches, added to the attention logits.
    pos_resize: ``offset`` (bicubic with scale (g + 0.1) / n, as NACLIP/SCLIP/ClearCLIP),
    ``size`` (bicubic to the new grid size, as MaskCLIP) or ``size-aa`` (the same, antialiased, as GEM).
    levels: a multi-level head of ``ovss.dense.multilevel`` (``gem``, ``scclip``) that replaces
    the last block with a computation over the tokens of earlier blocks; ``attention``,
    ``residual`` and ``ffn`` then only describe it.
    rcs: ResCLIP's residual cross-correlation self-attention (tau, lambda): the head's soft-maxed
    attention A becomes tau ((1 - lambda) A + lambda R), R the mean q-k attention of intermediate
    blocks (``ovss.dense.multilevel.RCS``). A modifier of any head with similarity terms
    (``with_rcs``); ``naclip+rcs`` is ResCLIP's own method.
    second: the second backbone (``ovss.model.second``) whose patch correspondence is the last
    block's attention (ProxyCLIP, ``ovss.dense.proxy``); the features come out on its grid.
    unoffered_precisions: fast precisions (``ovss.dense.precision``) this head refuses because they
    missed the quality bar (>= 99 % of pixels agreeing with fp32 on ShapesWorld validation,
    docs/benchmarks.md); SC-CLIP's outlier search amplifies int8's small changes.
    needs: what the head needs from the vision tower (``TOWER_NEEDS``); a tower that lacks one is
    refused with one line naming head and backbone (``check_head_fits``).
    """

    name: str
    attention: str
    residual: bool = True
    ffn: bool = True
    gaussian_std: float | None = None
    pos_resize: str = "offset"
    description: str = ""
    levels: str | None = None
    rcs: tuple[float, float] | None = None
    second: str | None = None
    unoffered_precisions: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.attention.split("+"))

    @property
    def needs_history(self) -> bool:
        """Whether the head reads the tokens that entered earlier blocks."""
        return bool(self.levels) or self.rcs is not None


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
    "gem": DenseHead(
        "gem", "qq+kk+vv", residual=True, ffn=False, pos_resize="size-aa", levels="gem",
        description="GEM: self-self attention path (q-q, k-k, v-v) in parallel over the last 6 blocks, no FFN",
    ),
    "proxyclip": DenseHead(
        "proxyclip", "proxy", residual=False, ffn=False, second="dino-vitb8",
        description="ProxyCLIP: a second backbone's (DINO) patch similarity attends over the last block's values",
    ),
    "scclip": DenseHead(
        "scclip", "kk", residual=False, ffn=False, levels="scclip", unoffered_precisions=("int8",), needs=("class_token",),
        description="SC-CLIP: anomaly tokens repaired, mid-layer similarity guides the last block, multi-level fusion",
    ),
}


# ResCLIP's (tau, lambda) for an image of no dataset: its demo.py's, also its VOC20 config's. Its
# other configs: 0.3 on VOC21, Context60 and ADE20K, 0.2 on Cityscapes, 0.4 on Context59,
# COCO-Object and COCO-Stuff (the resclip presets' per_dataset)
RCS_DEFAULT = (2.0, 0.6)


def with_rcs(base: DenseHead, weights: tuple[float, float] = RCS_DEFAULT) -> DenseHead:
    """``base`` with ResCLIP's residual cross-correlation self-attention mixed into its last block."""
    if base.levels or base.attention in ("vanilla", "value") or base.rcs is not None:
        raise OvssError(f"ResCLIP's attention mix needs a head with similarity terms (sclip, clearclip, naclip), not '{base.name}'")
    return replace(base, name=f"{base.name}+rcs", rcs=(float(weights[0]), float(weights[1])),
                   description=f"ResCLIP (RCS, tau {weights[0]:g}, lambda {weights[1]:g}) on {base.description}")


for _base in ("sclip", "clearclip", "naclip"):
    HEADS[f"{_base}+rcs"] = with_rcs(HEADS[_base])


# what a head may need from a tower: a test on a ``ovss.model.towers.Tower`` (or a ``Family``: both
# have ``prefix``) and the words of a refusal
TOWER_NEEDS = {
    "class_token": (lambda tower: tower.prefix > 0, "a class token (its output adds the class token back)"),
}


def head_fits(head: DenseHead, tower) -> str | None:
    """None when ``tower`` has everything ``head`` needs, else what it lacks (words)."""
    for need in head.needs:
        test, words = TOWER_NEEDS[need]
        if not test(tower):
            return words
    return None


def check_head_fits(head: DenseHead, tower, model: str) -> None:
    """One line naming head and backbone when the head cannot run on the tower."""
    lacking = head_fits(head, tower)
    if lacking is not None:
        raise OvssError(f"the {head.name} head needs {lacking}; {model} ({tower.family} tower) has none: "
                        "pick another head or backbone", param="head")


def get_head(name: str | DenseHead) -> DenseHead:
    if isinstance(name, DenseHead):
        return name
    if name not in HEADS:
        raise OvssError(f"unknown head '{name}'; choose one of: {', '.join(HEADS)}")
    return HEADS[name]
