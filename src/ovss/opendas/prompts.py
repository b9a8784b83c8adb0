"""Deep visual and textual prompts for a frozen open_clip model, and their files.

The learner owns only the prompts: ``parameters()`` and ``state_dict()`` never reach the CLIP, which
is used but never changed. Visual prompts (K x width per layer) are inserted after the class token
(``DenseEncoder`` semantics); text prompts (K x text width per layer) replace the K placeholder
tokens after the start token (``TextEncoder.encode_tokens`` semantics). Layers past the prompt
depth carry the previous layer's prompt outputs through, as in OpenDAS.

Initialisation: visual prompts uniform as in VPT; the first text layer from the token embeddings
of "a photo of a" (OpenDAS). Deeper text layers start from the hidden states of those same tokens
(OpenDAS draws them at random): causal attention makes them independent of the class name, so the
prompted text encoder starts exactly at CLIP's "a photo of a {class}." embeddings, and the text
stage starts from the embedding space the visual stage was trained against.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..dense import DenseEncoder
from ..errors import OvssError
from ..files import save_safetensors, write_json
from ..text import TextEncoder

PHRASE = "a photo of a"
TEMPLATE = PHRASE + " {}."  # the text of a class when no text prompts are learned
FORMAT = "ovss-prompts"
FORMAT_VERSION = 1


def _resolve_depth(k: int, depth: int | None, layers: int, what: str) -> int:
    if k < 0:
        raise OvssError(f"the number of {what} prompts must be 0 or more, got {k}")
    if k == 0:
        return 0
    depth = layers if depth is None else int(depth)
    if not 1 <= depth <= layers:
        raise OvssError(f"{what} prompt depth must be between 1 and {layers} (the model's layers), got {depth}")
    return depth


class PromptLearner(nn.Module):
    """Learnable prompts for one ``ClipModel``; ``k=0`` on a side leaves that side as CLIP has it."""

    @classmethod
    def unprompted(cls, model) -> "PromptLearner":
        """No prompt at all: CLIP as it is, through the same interface (the "no adaptation" rows)."""
        return cls(model, visual_k=0, visual_depth=0, text_k=0, text_depth=0)

    def __init__(self, model, visual_k: int = 8, visual_depth: int | None = None, text_k: int = 4,
                 text_depth: int | None = None, seed: int = 0):
        super().__init__()
        text = TextEncoder(model)
        tower = text.tower
        if text_k and not hasattr(tower, "token_embedding"):
            raise OvssError(f"text prompts need an open_clip text tower; {model.name} has another kind; "
                            "use visual prompts only (the vpt method, or text_k=0)", param="text_k")
        pool = getattr(tower, "text_pool_type", getattr(tower, "pool_type", "argmax"))
        if text_k and pool != "argmax":  # the K prompts replace the words after CLIP's start token
            raise OvssError(f"text prompts need CLIP's text tower (a start token, end-token pooling); {model.name}'s pools "
                            f"the {pool!r} token (SigLIP): use visual prompts only (the vpt method, or text_k=0)",
                            param="text_k")
        # kept out of the module tree, so parameters() and state_dict() hold only the prompts
        self.__dict__["_clip"] = {"model": model, "encoder": DenseEncoder(model.visual, "clip", model_name=model.name),
                                 "text": text}
        self.visual_width = self.encoder.tower.width
        self.text_width = int(tower.token_embedding.weight.shape[1]) if hasattr(tower, "token_embedding") else 0
        self.visual_k, self.text_k = int(visual_k), int(text_k)
        self.visual_depth = _resolve_depth(self.visual_k, visual_depth, model.num_layers, "visual")
        text_layers = len(tower.transformer.resblocks) if hasattr(tower, "transformer") else 0
        self.text_depth = _resolve_depth(self.text_k, text_depth, text_layers, "text")
        g = torch.Generator().manual_seed(seed)
        patch = model.patch_size
        bound = math.sqrt(6.0 / (3 * patch[0] * patch[1] + self.visual_width))  # VPT's uniform init
        self.visual = nn.ParameterList(
            nn.Parameter(torch.rand(self.visual_k, self.visual_width, generator=g) * 2 * bound - bound)
            for _ in range(self.visual_depth))
        init = self._phrase_states() if self.text_depth else None
        if init is None:
            init = [torch.randn(self.text_k, self.text_width, generator=g) * 0.02 for _ in range(self.text_depth)]
        self.text = nn.ParameterList(nn.Parameter(t.clone()) for t in init)

    @property
    def model(self):
        return self._clip["model"]

    @property
    def encoder(self) -> DenseEncoder:
        return self._clip["encoder"]

    @property
    def text_encoder(self) -> TextEncoder:
        return self._clip["text"]

    @torch.no_grad()
    def _phrase_states(self) -> list[torch.Tensor] | None:
        """Token embeddings, then each layer's input hidden states, of the K words of PHRASE."""
        tower = self.text_encoder.tower
        tokens = self.text_encoder.tokenize([PHRASE]).to(self.model.device)
        if int((tokens[0] != 0).sum()) - 2 != self.text_k:
            return None  # K differs from the phrase's length: random start, as CoOp does
        k = self.text_k
        x = tower.token_embedding(tokens)
        states = [x[0, 1:1 + k].float().cpu()]
        x = x + tower.positional_embedding.to(x.dtype)
        for block in tower.transformer.resblocks[: self.text_depth - 1]:
            x = block(x, attn_mask=tower.attn_mask)
            states.append(x[0, 1:1 + k].float().cpu())
        return states

    # --------------------------------------------------------------------------- encoding

    def visual_prompts(self) -> list[torch.Tensor] | None:
        return list(self.visual) if self.visual_depth else None

    def text_prompts(self) -> list[torch.Tensor] | None:
        return list(self.text) if self.text_depth else None

    def texts(self, names: Sequence[str]) -> list[str]:
        """What the text tower reads for each class: K placeholders (replaced by the prompts) or the template."""
        if self.text_depth:
            return [" ".join(["X"] * self.text_k) + f" {n}." for n in names]
        return [TEMPLATE.format(n) for n in names]

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised CLIP image embeddings (B x E) of normalised images, with the visual prompts."""
        # the global path only: the dense forward would also run a head
        return F.normalize(self.encoder.image_embedding(images, self.visual_prompts()).float(), dim=-1)

    def encode_names(self, names: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Normalised text embeddings (N x E) of class names or queries, with the text prompts."""
        texts = self.texts(names)
        device = self.model.device
        out = []
        for i in range(0, len(texts), batch_size):
            tokens = self.text_encoder.tokenize(texts[i:i + batch_size]).to(device)
            out.append(self.text_encoder.encode_tokens(tokens, prompts=self.text_prompts()).float())
        return F.normalize(torch.cat(out), dim=-1)

    def logit_scale(self) -> float:
        scale = getattr(self.model.clip, "logit_scale", None)
        return float(scale.exp()) if scale is not None else 100.0

    # --------------------------------------------------------------------------- description

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def shape(self) -> dict:
        return {
            "visual": {"k": self.visual_k, "depth": self.visual_depth, "width": self.visual_width},
            "text": {"k": self.text_k, "depth": self.text_depth, "width": self.text_width},
            "params": self.num_parameters(),
        }


def save_prompts(path: str | Path, learner: PromptLearner, info: dict | None = None) -> Path:
    """Write the prompts (safetensors) and a JSON sidecar (method, K, depth, model, ...) next to it."""

    path = Path(path)
    tensors = {f"visual.{i}": p.detach().float().cpu().contiguous() for i, p in enumerate(learner.visual)}
    tensors |= {f"text.{i}": p.detach().float().cpu().contiguous() for i, p in enumerate(learner.text)}
    if not tensors:  # safetensors cannot hold nothing; "no adaptation" is still a valid file
        tensors = {"empty": torch.zeros(0)}
    save_safetensors(path, tensors)
    m = learner.model
    write_json(sidecar_path(path), {
        "format": FORMAT, "version": FORMAT_VERSION, **(info or {}), **learner.shape(),
        "model": {"name": m.name, "pretrained": m.pretrained, **m.info},
    })
    return path


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def read_sidecar(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise OvssError(f"prompts file not found: {path} (pass RUN/prompts.safetensors written by `ovss adapt train`)")
    side = sidecar_path(path)
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OvssError(f"{side.name} is missing next to {path}; copy the JSON sidecar with the prompts file") from None
    except (OSError, ValueError) as e:
        raise OvssError(f"cannot read {side} ({e.__class__.__name__}); copy it again from the run folder") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise OvssError(f"{side} is not an ovss prompts sidecar; pass a file written by `ovss adapt train`")
    return info


def load_prompts(path: str | Path, model) -> PromptLearner:
    """A learner holding the prompts of ``path`` for ``model`` (which must be the model they were learned on)."""
    from safetensors.torch import load_file

    info = read_sidecar(path)
    want = info.get("model", {}).get("name")
    if want and want != model.name:
        raise OvssError(f"{Path(path).name} was learned on {want}, not {model.name}; load it with model={want!r}", param="model")
    v, t = info["visual"], info["text"]
    learner = PromptLearner(model, v["k"], v["depth"] or None, t["k"], t["depth"] or None)
    for side, width in (("visual", learner.visual_width), ("text", learner.text_width)):
        if info[side]["k"] and info[side]["width"] != width:
            raise OvssError(f"{Path(path).name} holds {side} prompts of width {info[side]['width']}, the model's is "
                            f"{width}; pass the model the prompts were learned on")
    try:
        state = load_file(str(path))
    except Exception as e:
        raise OvssError(f"cannot read prompts {path} ({e.__class__.__name__}); pass a file written by `ovss adapt train`") from None
    state.pop("empty", None)
    own = learner.state_dict()
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        raise OvssError(f"{Path(path).name} does not match its sidecar {sidecar_path(path).name}; copy both files from the same run")
    learner.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    learner.to(model.device)
    return learner
