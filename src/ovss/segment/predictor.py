"""The segmenter: encode an image once, answer many class lists.

``Segmenter.set_image`` resizes the image, cuts it into windows, and encodes all windows as one
batch; ``predict`` turns the cached patch features into per-class scores for any class list.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..dense import DenseEncoder, get_head
from ..errors import OvssError
from ..model import ClipModel, load_model
from ..text import ClassList, TextEncoder, parse_classes
from .presets import Preset, get_preset
from .sliding import pad_to_multiple, resized_size, window_boxes


@dataclass
class SegmentationResult:
    """logits: C x H x W class scores (scaled cosine similarity, max over synonyms);
    probs: C x H x W (softmax over all queries, max over synonyms); labels: H x W class indices."""

    logits: torch.Tensor
    probs: torch.Tensor
    labels: torch.Tensor
    classes: ClassList

    def shares(self) -> dict[str, float]:
        counts = torch.bincount(self.labels.flatten().long(), minlength=len(self.classes)).double()
        return {n: float(c) for n, c in zip(self.classes.names, counts / counts.sum())}


@dataclass
class EncodedImage:
    size: tuple[int, int]  # original H, W
    input_size: tuple[int, int]  # resized H, W
    image: torch.Tensor  # 1 x 3 x h x w normalised, resized
    boxes: list[tuple[int, int, int, int]]
    features: torch.Tensor  # B x h x w x E, normalised patch features of each window
    padded: tuple[int, int]  # padded window size


class Segmenter:
    """Open-vocabulary segmentation with a frozen CLIP and a training-free dense head."""

    def __init__(
        self,
        model: ClipModel | None = None,
        head: str | None = None,
        preset: str | Preset = "naclip",
        dataset: str | None = None,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        **overrides,
    ):
        self.model = model if model is not None else load_model()
        if device is not None:
            self.model.clip.to(device)
        self.preset = get_preset(preset, dataset).with_overrides(**overrides)
        self.head = get_head(head or self.preset.head)
        self.encoder = DenseEncoder(self.model.visual, self.head, precision)  # fp32, or a fast mode (dense.precision)
        self.text = TextEncoder(self.model)
        mean = torch.tensor(self.model.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.model.std).view(1, 3, 1, 1)
        self._mean, self._std = mean, std
        self._encoded: EncodedImage | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def precision(self) -> str:
        return self.encoder.precision

    def settings(self) -> dict:
        return {"head": self.head.name, **self.preset.settings(), **self.model.describe(), "precision": self.precision}

    # image side -----------------------------------------------------------------------------

    def preprocess(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 H x W x 3 -> 1 x 3 x h x w normalised, resized by the preset."""
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3:
                raise OvssError(f"expected an H x W x 3 RGB image, got shape {image.shape}; read files with ovss.files.read_rgb")
            x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
        else:
            x = image.float()[None] if image.ndim == 3 else image.float()
        h, w = x.shape[-2:]
        p = self.preset
        th, tw = resized_size(h, w, p.resize_short, p.max_long, p.resize_to)
        if (th, tw) != (h, w):
            x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False)
        x = (x / 255.0 - self._mean) / self._std
        return x.to(self.device)

    def windows(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int, int, int]], tuple[int, int]]:
        """Cut a preprocessed image into the preset's windows, padded to the patch size."""
        h, w = x.shape[-2:]
        boxes = window_boxes(h, w, self.preset.crop, self.preset.stride)
        batch = torch.cat([x[..., y1:y2, x1:x2] for (y1, y2, x1, x2) in boxes])
        batch, _ = pad_to_multiple(batch, self.model.patch_size)
        return batch, boxes, tuple(batch.shape[-2:])

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised projected patch features (B x h x w x E) for a batch of windows."""
        return F.normalize(self.encoder(x).patch.float(), dim=-1)

    @torch.no_grad()
    def set_image(self, image: np.ndarray | torch.Tensor) -> EncodedImage:
        """Encode ``image`` once; later ``predict`` calls reuse its features."""
        size = tuple(image.shape[:2]) if isinstance(image, np.ndarray) else tuple(image.shape[-2:])
        x = self.preprocess(image)
        batch, boxes, padded = self.windows(x)
        feats = self.patch_features(batch)
        self._encoded = EncodedImage(size, tuple(x.shape[-2:]), x, boxes, feats, padded)
        return self._encoded

    @torch.no_grad()
    def encode_images(self, images: list, max_windows: int = 32) -> list[EncodedImage]:
        """Encode several images, stacking the windows of images of equal window size into shared
        forwards of at most ``max_windows`` windows (bounded memory). Pays where one image has few
        windows (small images, GPUs); each image's features equal ``set_image``'s. Pass the results
        to ``predict(encoded=...)``.
        """
        prepared, by_shape = [], {}
        for image in images:
            size = tuple(image.shape[:2]) if isinstance(image, np.ndarray) else tuple(image.shape[-2:])
            x = self.preprocess(image)
            batch, boxes, padded = self.windows(x)
            prepared.append((size, x, boxes, padded, batch))
            by_shape.setdefault(tuple(batch.shape[1:]), []).append(len(prepared) - 1)
        feats: list[torch.Tensor | None] = [None] * len(prepared)
        for members in by_shape.values():
            chunk: list[int] = []
            for i in members + [None]:
                full = i is None or (chunk and sum(prepared[j][4].shape[0] for j in chunk) + prepared[i][4].shape[0] > max_windows)
                if full and chunk:
                    out = self.patch_features(torch.cat([prepared[j][4] for j in chunk]))
                    counts = [prepared[j][4].shape[0] for j in chunk]
                    for j, f in zip(chunk, out.split(counts)):
                        feats[j] = f
                    chunk = []
                if i is not None:
                    chunk.append(i)
        return [EncodedImage(size, tuple(x.shape[-2:]), x, boxes, f, padded)
                for (size, x, boxes, padded, _), f in zip(prepared, feats)]

    # text side and decoding ----------------------------------------------------------------

    def class_embeddings(self, classes: ClassList) -> torch.Tensor:
        return self.text.encode_classes(classes, self.preset.templates).to(self.device)

    @torch.no_grad()
    def predict(
        self,
        image: np.ndarray | torch.Tensor | None = None,
        classes=None,
        output_size: tuple[int, int] | None = None,
        encoded: EncodedImage | None = None,
    ) -> SegmentationResult:
        """Segment ``image`` (or ``encoded``, from ``encode_images``, or the last image given to
        ``set_image``) into ``classes``.

        The result is at the original image size unless ``output_size`` says otherwise.
        """
        classes = parse_classes(classes)
        if image is not None:
            self.set_image(image)
        enc = encoded if encoded is not None else self._encoded
        if enc is None:
            raise OvssError("no image: pass one to predict() or call set_image() first")
        text = self.class_embeddings(classes)
        query_logits = self.window_logits_to_image(enc, enc.features, text)
        return self.decode(query_logits, classes, enc, output_size)

    def window_logits_to_image(self, enc: EncodedImage, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Cosine logits of each window, upsampled to the window and averaged where windows overlap.

        Returns Q x h x w at the resized input size.
        """
        logits = torch.einsum("bhwe,qe->bqhw", features, text.to(features.dtype))
        logits = F.interpolate(logits, size=enc.padded, mode="bilinear", align_corners=False)
        h, w = enc.input_size
        total = logits.new_zeros(logits.shape[1], h, w)
        count = logits.new_zeros(1, h, w)
        for (y1, y2, x1, x2), lg in zip(enc.boxes, logits):
            total[:, y1:y2, x1:x2] += lg[:, : y2 - y1, : x2 - x1]
            count[:, y1:y2, x1:x2] += 1
        return total / count

    def decode(
        self,
        query_logits: torch.Tensor,
        classes: ClassList,
        enc: EncodedImage,
        output_size: tuple[int, int] | None = None,
    ) -> SegmentationResult:
        """Input-size query logits -> class logits, probabilities and labels at the output size."""
        p = self.preset
        size = tuple(output_size or (enc.input_size if p.eval_at_input_size else enc.size))
        if tuple(query_logits.shape[-2:]) != size:
            query_logits = F.interpolate(query_logits[None], size=size, mode="bilinear", align_corners=False)[0]
        if p.pamr:  # NACLIP: on the cosine logits at the output size, guided by the image resized there
            from .pamr import pamr

            image = enc.image if tuple(enc.image.shape[-2:]) == size else F.interpolate(
                enc.image, size=size, mode="bilinear", align_corners=False)
            query_logits = pamr(image, query_logits[None])[0]
        scaled = query_logits * p.logit_scale
        probs_q = scaled.softmax(dim=0)
        index = torch.tensor(classes.query_to_class, device=scaled.device)
        n = len(classes)
        logits = _max_by_class(scaled, index, n)
        probs = _max_by_class(probs_q, index, n)
        best, labels = _max_over_classes(probs)
        if p.area_thd > 0:
            labels = _drop_small_classes(labels, probs, p.area_thd)
        if p.prob_thd > 0:
            labels[best < p.prob_thd] = 0
        return SegmentationResult(logits=logits, probs=probs, labels=labels, classes=classes)


def _max_by_class(values: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Max over the synonym rows of each class: Q x H x W -> C x H x W."""
    if values.shape[0] == n:
        return values
    return torch.stack([values[index == c].amax(dim=0) for c in range(n)])


def _max_over_classes(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(max, argmax) over dim 0 of C x H x W, first index on ties.

    A loop over the classes of whole-image comparisons: reducing over the outer dimension of a
    large tensor is several times slower on CPU, and this runs on every image at full size.
    """
    best = probs[0].clone()
    labels = torch.zeros(probs.shape[1:], dtype=torch.long, device=probs.device)
    for c in range(1, probs.shape[0]):
        better = probs[c] > best
        best = torch.where(better, probs[c], best)
        labels.masked_fill_(better, c)
    return best, labels


def _drop_small_classes(labels: torch.Tensor, probs: torch.Tensor, area_thd: float) -> torch.Tensor:
    """SCLIP's area threshold: a foreground class (index >= 1) whose predicted area is at most
    ``area_thd`` of all foreground pixels loses its pixels to the next best class."""
    counts = torch.bincount(labels.flatten(), minlength=probs.shape[0]).float()
    foreground = counts[1:].sum()
    small = (counts <= area_thd * foreground) & (counts > 0)
    small[0] = False
    if not small.any():
        return labels
    masked = probs.clone()
    masked[small] = 0.0
    return masked.argmax(dim=0)
