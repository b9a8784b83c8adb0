"""CLIP text similarity between words, as the segmenter itself embeds them.

The delta and beta filters and the nearest-concept fallback compare words in the text space the
segmentation uses, so they measure exactly the confusion that contrastive concepts must avoid. Any
callable ``(words_a, words_b) -> len(a) x len(b) cosine matrix`` can stand in (tests use a stub).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..text import ClassList, TextEncoder

TextSimilarity = Callable[[Sequence[str], Sequence[str]], np.ndarray]


class ClipTextSimilarity:
    """Cosine similarity of template-averaged CLIP text embeddings, cached per word."""

    def __init__(self, text: TextEncoder, templates: str | Sequence[str] = "seven"):
        self.text = text
        self.templates = templates
        self._cache: dict[str, torch.Tensor] = {}

    @classmethod
    def from_segmenter(cls, segmenter) -> "ClipTextSimilarity":
        """The similarity of ``segmenter``'s text encoder and prompt templates."""
        return cls(segmenter.text, segmenter.preset.templates)

    def embed(self, words: Sequence[str]) -> torch.Tensor:
        missing = [w for w in dict.fromkeys(words) if w not in self._cache]
        if missing:
            emb = self.text.encode_classes(ClassList(tuple((w,) for w in missing)), self.templates).float().cpu()
            self._cache.update(zip(missing, emb))
        return torch.stack([self._cache[w] for w in words]) if words else torch.zeros(0, 1)

    def unknown_words(self, words: Sequence[str]) -> list[str]:
        """Words the text encoder has no embedding for (see ``TextEncoder.unknown_words``)."""
        return self.text.unknown_words(list(words))

    def __call__(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        if not a or not b:
            return np.zeros((len(a), len(b)))
        return (self.embed(list(a)) @ self.embed(list(b)).T).numpy().astype(np.float64)
