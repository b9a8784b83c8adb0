"""Text embeddings of classes, averaged over templates, cached per model, classes and templates."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .classes import ClassList
from .templates import get_templates


class TextEncoder:
    """Encodes class queries with template ensembles.

    The transformer is run explicitly (``encode_tokens``) so that prompt learners can insert
    learned context tokens at any layer; without prompts it equals ``clip.encode_text``.
    """

    def __init__(self, model, batch_size: int = 256):
        self.model = model  # a ClipModel
        self.batch_size = batch_size
        self._cache: dict[tuple, torch.Tensor] = {}

    @property
    def tower(self) -> nn.Module:
        """The module holding token_embedding / transformer / ln_final / text_projection."""
        clip = self.model.clip
        return clip.text if hasattr(clip, "text") else clip

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.model.tokenizer(list(texts))

    @torch.no_grad()
    def unknown_words(self, words: Sequence[str]) -> list[str]:
        """The words holding a token whose embedding is all zeros: tokens the model never learned.

        Real CLIPs have none; ovss-tiny ships only the rows ShapesWorld's captions use, so any other
        word embeds like padding and every similarity computed from it is meaningless.
        """
        t = self.tower
        if not hasattr(t, "token_embedding") or not words:
            return []
        emb = t.token_embedding.weight
        blank = (emb == 0).all(dim=1)
        if not bool(blank.any()):
            return []
        tokens = self.tokenize(words).to(emb.device)
        # position 0 is the start token; after the end token come zeros (padding)
        ends = tokens.argmax(dim=1)
        return [w for w, row, end in zip(words, tokens, ends.tolist()) if bool(blank[row[1:end]].any())]

    def encode_tokens(
        self,
        tokens: torch.Tensor,
        prompts: Sequence[torch.Tensor | None] | None = None,
        n_ctx: int = 0,
    ) -> torch.Tensor:
        """Text features (N x E, not normalised) of tokenised texts.

        ``prompts``: per-layer learned context (K x W); layer 0's replaces the embeddings of the K
        tokens after the start token (so the texts should hold K placeholder words there), later
        layers' replace the same positions' hidden states (deep prompts).
        """
        t = self.tower
        if not hasattr(t, "token_embedding"):  # e.g. Hugging Face text towers
            return self.model.clip.encode_text(tokens)
        x = t.token_embedding(tokens)
        if prompts is not None and len(prompts) and prompts[0] is not None:
            k = prompts[0].shape[0]
            x = torch.cat([x[:, :1], prompts[0].to(x.dtype).expand(x.shape[0], -1, -1), x[:, 1 + k:]], dim=1)
        x = x + t.positional_embedding.to(x.dtype)
        mask = t.attn_mask
        for i, block in enumerate(t.transformer.resblocks):
            if prompts is not None and 0 < i < len(prompts) and prompts[i] is not None:
                k = prompts[i].shape[0]
                x = torch.cat([x[:, :1], prompts[i].to(x.dtype).expand(x.shape[0], -1, -1), x[:, 1 + k:]], dim=1)
            x = block(x, attn_mask=mask)
        x = t.ln_final(x)
        from open_clip.transformer import text_global_pool

        pool_type = getattr(t, "text_pool_type", getattr(t, "pool_type", "argmax"))
        eos = getattr(t, "text_eos_id", getattr(t, "eos_id", None))
        x = text_global_pool(x, tokens, pool_type, eos_token_id=eos)
        if isinstance(x, tuple):
            x = x[0]
        proj = t.text_projection
        if proj is not None:
            x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
        return x

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Normalised embeddings of plain texts (N x E)."""
        out = []
        device = self.model.device
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenize(texts[i : i + self.batch_size]).to(device)
            out.append(F.normalize(self.encode_tokens(tokens).float(), dim=-1))
        return torch.cat(out)

    def encode_classes(self, classes: ClassList, templates: str | Sequence[str] = "imagenet80") -> torch.Tensor:
        """One normalised embedding per query (synonym): the normalised mean over templates.

        Cached per (model, queries, templates): an image encoded once answers many class lists
        without re-running the text tower for lists it has seen.
        """
        templates = get_templates(templates)
        key = (id(self.model.clip), tuple(classes.queries), templates)
        if key not in self._cache:
            texts = [t.format(q) for q in classes.queries for t in templates]
            emb = self.encode_texts(texts).reshape(len(classes.queries), len(templates), -1)
            self._cache[key] = F.normalize(emb.mean(dim=1), dim=-1)
        return self._cache[key]
