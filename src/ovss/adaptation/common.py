"""What the adapting methods share: the batch of windows, the trainable parameters, an exact reset,
episodic or online adaptation, the optimiser, and decoding adapted features into label maps.

A method subclasses ``TestTimeAdaptation`` and writes ``adapt`` (the loss and its steps); the base
class makes sure the shared model is left exactly as it was found after every call, so methods that
share one model in a benchmark never see each other's updates.
"""
from __future__ import annotations

import abc

import copy
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import OvssError
from ..images import as_rgb
from ..segment.predictor import EncodedImage
from ..segment.protocol import checkpoint_logit_scale
from ..text import ClassList, get_templates, parse_classes
from .base import AdaptationMethod, PeakMemory, _sync

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def entropy(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy of softmax(logits) along ``dim`` (nats)."""
    return -(logits.softmax(dim) * logits.log_softmax(dim)).sum(dim)


def layernorm_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    """Affine weights and biases of every LayerNorm in ``module``: TENT's choice, kept by MLMP."""
    params: dict[str, nn.Parameter] = {}
    for name, m in module.named_modules():
        if isinstance(m, nn.LayerNorm):
            for pname, p in m.named_parameters(recurse=False):
                params[f"{name}.{pname}" if name else pname] = p
    return params


class ParamSnapshot:
    """Copies of some parameters, restored bit for bit into the same tensors."""

    def __init__(self, params: dict[str, nn.Parameter]):
        self.params = dict(params)
        self.values = {n: p.detach().clone() for n, p in self.params.items()}

    @torch.no_grad()
    def restore(self) -> None:
        for n, p in self.params.items():
            p.copy_(self.values[n])


def average_weights(weights: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of several copies of the same parameters (WATT's weight average)."""
    if not weights:
        raise ValueError("nothing to average")
    return {n: sum(w[n] for w in weights) / len(weights) for n in weights[0]}


# ----------------------------------------------------------------------------- batches of windows


@dataclass
class WindowBatch:
    """The sliding windows of a batch of images.

    images: one EncodedImage per image (without features). groups: windows of one size stacked
    (one forward each) with, per image, the slice of its windows: ``slices[i] = (group, start, stop)``.
    """

    images: list[EncodedImage]
    groups: list[torch.Tensor]
    slices: list[tuple[int, int, int]]

def prepare_batch(segmenter, images: list) -> WindowBatch:
    """Resize, normalise and cut every image into the preset's windows, grouped by window size."""
    if getattr(segmenter, "sfr", None) is not None:  # SFR runs in Segmenter.predict, which TTA does not call
        raise OvssError("test-time adaptation does not run ResCLIP's semantic feedback; use preset='resclip-rcs', "
                        "ResCLIP without it", param="preset")
    encoded, by_shape, slices = [], {}, []
    parts: list[list[torch.Tensor]] = []
    for image in images:
        image = as_rgb(image)  # the input contract; preprocess takes what it returns unchanged
        size = tuple(image.shape[:2])
        x = segmenter.preprocess(image)
        windows, boxes, padded = segmenter.windows(x)
        encoded.append(EncodedImage(size, tuple(x.shape[-2:]), x, boxes, None, padded))
        g = by_shape.setdefault(tuple(windows.shape[1:]), len(by_shape))
        if g == len(parts):
            parts.append([])
        start = sum(w.shape[0] for w in parts[g])
        parts[g].append(windows)
        slices.append((g, start, start + windows.shape[0]))
    return WindowBatch(encoded, [torch.cat(p) for p in parts], slices)


def decode_labels(segmenter, batch: WindowBatch, features: list[torch.Tensor], text: torch.Tensor,
                  classes: ClassList, output_sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Label maps from normalised window features (one tensor per group), the segmenter's way."""
    labels = []
    for enc, (g, start, stop), size in zip(batch.images, batch.slices, output_sizes):
        feats = features[g][start:stop].float()
        enc = replace(enc, features=feats)
        query_logits = segmenter.window_logits_to_image(enc, feats, text)
        labels.append(segmenter.decode(query_logits, classes, enc, size).labels)
    return labels


def template_embeddings(segmenter, classes: ClassList, templates) -> torch.Tensor:
    """Normalised text embeddings of every query under every template: T x Q x E (not averaged)."""
    templates = get_templates(templates)
    texts = [t.format(q) for t in templates for q in classes.queries]
    emb = segmenter.text.encode_texts(texts)
    return emb.reshape(len(templates), len(classes.queries), -1).to(segmenter.device)


def mean_of(values: list[torch.Tensor]) -> torch.Tensor:
    """Mean over all elements of several tensors (windows of different sizes weigh per element)."""
    return sum(v.sum() for v in values) / sum(v.numel() for v in values)


# ----------------------------------------------------------------------------- the common base


def _positive_int(value, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OvssError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class TestTimeAdaptation(AdaptationMethod):
    """Adapt some parameters on the batch by gradient steps, then segment it with them.

    Trainable: the LayerNorm affine parameters of the vision encoder unless a method says otherwise
    (``trainable``). Episodic (default): every batch starts from the model as it was; online: the
    adapted parameters and optimiser state carry over to the next batch (``reset()`` forgets them).
    Either way the shared model holds its original weights again when the call returns.
    """

    title = ""
    batch_size = 2

    def __init__(self, steps: int = 10, lr: float = 1e-3, optimizer: str = "adam", episodic: bool = True,
                 batch_size: int = 2, logit_scale: float | str = 100.0, templates: str | list[str] | None = None):
        self.steps = _positive_int(steps, f"{self.name}: steps", 0)
        self.batch_size = _positive_int(batch_size, f"{self.name}: batch_size")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0:
            raise OvssError(f"{self.name}: lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        if optimizer not in OPTIMIZERS:
            raise OvssError(f"{self.name}: unknown optimizer '{optimizer}'; choose from: {', '.join(OPTIMIZERS)}")
        self.optimizer = optimizer
        self.episodic = bool(episodic)
        if logit_scale == "checkpoint":  # the model's logit_scale.exp(), resolved on every call (MLMP's code)
            self.logit_scale_setting: float | str = "checkpoint"
            self.logit_scale = 100.0
        else:
            try:
                self.logit_scale = self.logit_scale_setting = float(logit_scale)
            except (TypeError, ValueError):
                raise OvssError(f"{self.name}: logit_scale must be a number or 'checkpoint', got {logit_scale!r}") from None
        self.protocol: str | None = None  # set by get_method when a protocol chose the defaults
        self.templates = None if templates is None else get_templates(templates)
        self.last_losses: list[float] = []
        self._online: tuple[int, ParamSnapshot, dict] | None = None
        self._text_cache: dict[tuple, torch.Tensor] = {}

    def hparams(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "steps": self.steps, "lr": self.lr, "optimizer": self.optimizer,
                "episodic": self.episodic, "logit_scale": self.logit_scale_setting,
                "templates": list(self.templates) if self.templates else None, "protocol": self.protocol}

    # hooks -------------------------------------------------------------------------------------

    def trainable(self, segmenter) -> dict[str, nn.Parameter]:
        """The parameters this method updates."""
        return layernorm_parameters(segmenter.encoder.visual)

    @abc.abstractmethod
    def adapt(self, segmenter, batch: WindowBatch, classes: ClassList, params: dict[str, nn.Parameter],
              optimizer: torch.optim.Optimizer) -> list[float]:
        """Update ``params`` on ``batch``; return the loss of every step."""

    def predict(self, segmenter, batch: WindowBatch, classes: ClassList, output_sizes) -> list[torch.Tensor]:
        """Label maps with the adapted parameters (default: the segmenter's own head)."""
        feats = [segmenter.patch_features(w) for w in batch.groups]
        return decode_labels(segmenter, batch, feats, self.eval_text(segmenter, classes), classes, output_sizes)

    def template_text(self, segmenter, classes: ClassList, templates) -> torch.Tensor:
        """``template_embeddings``, cached per model, queries and templates (text is not adapted)."""
        key = (id(segmenter.model.clip), tuple(classes.queries), tuple(get_templates(templates)))
        if key not in self._text_cache:
            self._text_cache = {key: template_embeddings(segmenter, classes, templates)}
        return self._text_cache[key]

    def eval_text(self, segmenter, classes: ClassList) -> torch.Tensor:
        """Template-averaged query embeddings (the method's templates, else the preset's)."""
        return segmenter.text.encode_classes(classes, self.templates or segmenter.preset.templates).to(segmenter.device)

    # machinery ---------------------------------------------------------------------------------

    def make_optimizer(self, params: dict[str, nn.Parameter]) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.optimizer](list(params.values()), lr=self.lr)

    @staticmethod
    def step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def reset(self) -> None:
        """Forget what online adaptation has learned: the next call starts from the original model."""
        self._online = None

    def __call__(self, segmenter, images, classes, output_sizes):
        if len(images) != len(output_sizes):
            raise OvssError(f"{self.name}: got {len(images)} images but {len(output_sizes)} output sizes")
        classes = parse_classes(classes)
        if self.logit_scale_setting == "checkpoint":
            self.logit_scale = checkpoint_logit_scale(segmenter.model)
        if getattr(segmenter, "precision", "fp32") == "int8":
            raise OvssError(f"{self.name}: precision='int8' is for inference only (its quantised matmuls have no "
                            "gradient); use bf16 or fp32 with test-time adaptation", param="precision")
        device = segmenter.device
        batch = prepare_batch(segmenter, images)
        params = self.trainable(segmenter)
        original = ParamSnapshot(params)  # what the shared model holds now; put back at the end
        model_params = list(segmenter.model.clip.parameters())
        flags = [p.requires_grad for p in model_params]
        key = id(segmenter.model.clip)
        try:
            for p in model_params:
                p.requires_grad_(False)
            for p in params.values():
                p.requires_grad_(True)
            optimizer = self.make_optimizer(params)
            if not self.episodic and self._online is not None and self._online[0] == key:
                self._online[1].restore()
                optimizer.load_state_dict(self._online[2])
            with PeakMemory(device) as memory:
                t0 = time.perf_counter()
                with torch.enable_grad():
                    self.last_losses = self.adapt(segmenter, batch, classes, params, optimizer)
                _sync(device)
                t1 = time.perf_counter()
                with torch.no_grad():
                    labels = self.predict(segmenter, batch, classes, output_sizes)
                _sync(device)
                t2 = time.perf_counter()
            if not self.episodic:
                self._online = (key, ParamSnapshot(params), copy.deepcopy(optimizer.state_dict()))
        finally:
            original.restore()
            for p, flag in zip(model_params, flags):
                p.requires_grad_(flag)
            for p in params.values():
                p.grad = None
        self._record(len(images), t1 - t0, t2 - t1, memory, sum(p.numel() for p in params.values()))
        return labels
