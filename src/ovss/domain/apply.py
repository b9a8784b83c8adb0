"""Use adapted prompts inside the segmenter, so `ovss segment` and `ovss bench` run the adapted CLIP.

OpenDAS plugs into a segmentation pipeline by replacing its CLIP (seed 001, sec. 4.5): here the
segmenter's dense encoder inserts the visual prompts at every forward, and its class embeddings
come from the prompted text encoder (one learned context instead of a template ensemble; a prompts
file without text prompts uses "a photo of a {class}.", the text its visual prompts learned against).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..dense import DenseEncoder
from ..text import ClassList, TextEncoder
from .prompts import PromptLearner, load_prompts, read_sidecar


class PromptedDenseEncoder(DenseEncoder):
    """A ``DenseEncoder`` that inserts a learner's visual prompts unless a call passes its own."""

    def __init__(self, visual, head, learner: PromptLearner, precision: str = "fp32"):
        super().__init__(visual, head, precision)
        self.__dict__["learner"] = learner  # not a submodule: the encoder's parameters stay CLIP's

    def forward(self, images, layers=(), with_global=False, prompts=None):
        prompts = prompts if prompts is not None else self.learner.visual_prompts()
        return super().forward(images, layers=layers, with_global=with_global, prompts=prompts)


class PromptedTextEncoder(TextEncoder):
    """Class embeddings from a learner's text prompts; the template set is not used."""

    def __init__(self, model, learner: PromptLearner, batch_size: int = 256):
        super().__init__(model, batch_size)
        self.learner = learner

    def encode_classes(self, classes: ClassList, templates: str | Sequence[str] = "single") -> torch.Tensor:
        key = ("prompts", id(self.learner), tuple(classes.queries))
        if key not in self._cache:
            with torch.no_grad():
                self._cache[key] = self.learner.encode_names(classes.queries)
        return self._cache[key]


def apply_prompts(segmenter, prompts_file: str | Path) -> PromptLearner:
    """Make ``segmenter`` use the prompts of ``prompts_file`` (visual and text); returns the learner.

    The segmenter's ``settings()`` then names the prompts file, so benchmark results made with and
    without prompts are never mixed up.
    """
    info = read_sidecar(prompts_file)
    learner = load_prompts(prompts_file, segmenter.model)
    for p in learner.parameters():
        p.requires_grad_(False)
    segmenter.encoder = PromptedDenseEncoder(segmenter.model.visual, segmenter.head, learner, segmenter.precision)
    segmenter.text = PromptedTextEncoder(segmenter.model, learner)
    described = {"file": str(Path(prompts_file)), "method": info.get("method"), "params": learner.num_parameters()}
    settings = segmenter.settings
    segmenter.settings = lambda: {**settings(), "prompts": described}
    return learner
