"""Prompt template ensembles: CLIP's 80 ImageNet templates, the 7-template set, a single one."""
from __future__ import annotations

from ..errors import OvssError

# The 7 templates of CLIP's ensemble as MLMP's prompts.yaml writes them (exact strings: the first
# has no period, github.com/dosowiechi/MLMP 2a887de); one character changes the text embedding.
SEVEN = (
    "itap of a {}",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
SINGLE = ("a photo of a {}.",)
# MLMP's REFERENCE_PROMPT (no period): the text of its TENT, TPT and CLIPArTT baselines.
MLMP_REFERENCE = ("a photo of a {}",)


def _imagenet80() -> tuple[str, ...]:
    # open_clip ships CLIP's 80 templates as functions of the class name; format them with "{}".
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)


TEMPLATE_SETS = {"imagenet80": _imagenet80, "seven": lambda: SEVEN, "single": lambda: SINGLE,
                 "mlmp_reference": lambda: MLMP_REFERENCE, "name": lambda: ("{}",)}


def get_templates(name_or_list: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A named set (imagenet80, seven, single, mlmp_reference, name) or an explicit list of '{}' templates."""
    if isinstance(name_or_list, (list, tuple)):
        templates = tuple(name_or_list)
        bad = [t for t in templates if t.count("{}") != 1]
        if bad:
            raise OvssError(f"template {bad[0]!r} must contain '{{}}' exactly once, where the class name goes")
        return templates
    if name_or_list not in TEMPLATE_SETS:
        raise OvssError(f"unknown template set '{name_or_list}'; choose one of: {', '.join(TEMPLATE_SETS)}")
    return TEMPLATE_SETS[name_or_list]()
