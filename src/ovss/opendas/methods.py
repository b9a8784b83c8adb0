"""The prompt-tuning methods, as data: which prompts each learns and in which training stages.

OpenDAS learns deep visual prompts first (cross-entropy over base classes plus negative
queries), then deep text prompts (cross-entropy plus the triplet loss). The baselines run under the
same trainer: CoOp learns shallow text prompts, VPT deep visual prompts, both with plain
cross-entropy over the base classes. ``depth=None`` means every layer.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import OvssError


@dataclass(frozen=True)
class Stage:
    """One training stage: which prompts learn, and what the loss sees."""

    part: str  # "visual" or "text"
    negatives: bool  # the label space holds the negative queries as well as the base classes
    triplet: bool  # add lambda x triplet loss with the hardest negative


@dataclass(frozen=True)
class Method:
    name: str
    visual_k: int
    visual_depth: int | None
    text_k: int
    text_depth: int | None
    stages: tuple[Stage, ...]
    description: str = ""

    def with_shape(self, visual_k=None, visual_depth=None, text_k=None, text_depth=None) -> "Method":
        """The method with some prompt sizes changed (unset arguments keep the method's own)."""
        changes = {k: v for k, v in dict(visual_k=visual_k, visual_depth=visual_depth, text_k=text_k,
                                         text_depth=text_depth).items() if v is not None}
        return replace(self, **changes)


PROMPT_METHODS: dict[str, Method] = {
    "opendas": Method(
        "opendas", 8, None, 4, None,
        (Stage("visual", negatives=True, triplet=False), Stage("text", negatives=True, triplet=True)),
        "deep visual then deep text prompts; negatives and triplet loss (OpenDAS)",
    ),
    "coop": Method("coop", 0, 0, 4, 1, (Stage("text", negatives=False, triplet=False),),
                   "shallow text prompts (CoOp), cross-entropy over the base classes"),
    "vpt": Method("vpt", 8, None, 0, 0, (Stage("visual", negatives=False, triplet=False),),
                  "deep visual prompts (VPT-deep), cross-entropy over the base classes"),
}


def get_prompt_method(name: str) -> Method:
    method = PROMPT_METHODS.get(str(name).strip().lower())
    if method is None:
        raise OvssError(f"unknown adaptation method '{name}'; choose from: {', '.join(PROMPT_METHODS)}")
    return method
