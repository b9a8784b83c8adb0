"""The segmenter: encode an image once, answer many class lists.

``Segmenter.set_image`` resizes the image, cuts it into windows, and encodes all windows as one
batch; ``predict`` turns the cached patch features into per-class scores for any class list.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..dense import DenseEncoder, get_head
from ..dense.feedback import SFR, SemanticFeedback, feedback_attention, patch_labels, takes_feedback
from ..dense.multilevel import RCS, cross_correlation_attention
from ..errors import OvssError
from ..images import as_rgb
from ..model import ClipModel, load_model
from ..text import ClassList, TextEncoder, parse_classes
from .presets import Preset, check_second_backbone, default_preset, get_preset
from .protocol import FP16_LN_FP32, checkpoint_logit_scale, fp16_with_fp32_layernorm
from .resize import resize_bilinear_uint8
# the results live in .results; EncodedImage, label_shares and stitch_patch_features are imported
# from here by other modules too
from .results import (EncodedImage, SegmentationResult, drop_small_classes, label_shares, max_by_class,  # noqa: F401
                      max_over_classes, stitch_patch_features)
from .scoring import model_scoring
from . import bounded
from .bounded import windows_per_chunk
from .sliding import pad_to_multiple, resized_size, window_boxes


class PromptAddition(Protocol):
    """Learned prompts a ``Segmenter`` runs with: they make its encoders and describe themselves."""

    def dense_encoder(self, visual, head, **options) -> DenseEncoder: ...

    def text_encoder(self, model: ClipModel) -> TextEncoder: ...

    def describe(self) -> dict: ...


class Segmenter:
    """Open-vocabulary segmentation with a frozen CLIP and a training-free dense head."""

    def __init__(
        self,
        model: ClipModel | None = None,
        head: str | None = None,
        preset: str | Preset | None = None,
        dataset: str | None = None,
        device: str | torch.device | None = None,
        prompts: "PromptAddition | None" = None,
        precision: str = "fp32",
        **overrides,
    ):
        """``prompts``: learned prompts to run with (e.g. ``ovss.opendas.load_prompt_addition``); they
        build the dense and text encoders here, so nothing rewires the segmenter afterwards."""
        check_second_backbone(head, preset or "naclip", dataset, overrides.get("second_backbone"), overrides.get("second_weights"))
        self.model = model if model is not None else load_model()
        if device is not None:
            self.model.clip.to(device)
        # the head is one of the preset's settings: a chosen head replaces the preset's, so that
        # ``settings()`` records the head that ran (resume and reports compare these settings)
        self.preset = get_preset(preset or default_preset(self.model, dataset), dataset).with_overrides(head=head, **overrides)
        # SigLIP: a sigmoid per query with the model's logit bias, meaningful with the model's own scale
        self.scoring = model_scoring(self.model)
        if ((self.preset.logit_scale_from_checkpoint or self.scoring.kind == "sigmoid")
                and overrides.get("logit_scale") is None):
            self.preset = replace(self.preset, logit_scale=checkpoint_logit_scale(self.model))
        if self.preset.cuda_precision == FP16_LN_FP32 and self.device.type == "cuda":
            if self.model.info.get("weights_precision") != FP16_LN_FP32:
                fp16_with_fp32_layernorm(self.model)  # MLMP's CUDA setting; recorded in model.describe()
        self.head = get_head(self.preset.head)
        if self.head.rcs is not None and self.preset.rcs_weights is not None:  # ResCLIP's per-dataset weights
            self.head = replace(self.head, rcs=tuple(self.preset.rcs_weights))
        second = None
        if self.head.second:  # ProxyCLIP: a second backbone beside CLIP
            from ..model.second import load_second_backbone

            second = load_second_backbone(self.preset.second_backbone or self.head.second, self.preset.second_weights,
                                          device=self.model.device)
        # precision: fp32, or a fast mode (dense.precision)
        encoder_options = dict(second=second, input_mean=self.model.mean, input_std=self.model.std, precision=precision,
                               model_name=self.model.name)
        # ResCLIP's semantic feedback refinement: a step of predict (it needs the class list), on
        # heads whose last block has similarity terms; other heads run without it (settings say so)
        self.sfr = tuple(self.preset.sfr_weights) if self.preset.sfr_weights is not None and takes_feedback(self.head) else None
        if self.sfr is not None and prompts is not None:
            raise OvssError("ResCLIP's semantic feedback does not take learned prompts; use preset='resclip-rcs'", param="preset")
        self.prompts = prompts
        if prompts is None:
            self.encoder = DenseEncoder(self.model.visual, self.head, **encoder_options)
            self.text = TextEncoder(self.model)
        else:
            self.encoder = prompts.dense_encoder(self.model.visual, self.head, **encoder_options)
            self.text = prompts.text_encoder(self.model)
        self._encoded: EncodedImage | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def precision(self) -> str:
        return self.encoder.precision

    def settings(self) -> dict:
        """Every setting that changes the numbers, as it ran: the preset's values after the chosen
        head and overrides replaced them, ResCLIP's weights and the second backbone where a head has
        them, the model, and the prompts when there are any."""
        extra = {"rcs_weights": list(self.head.rcs)} if self.head.rcs is not None else {}
        if self.preset.sfr_weights is not None:  # what ran: None where the head cannot take the feedback
            extra["sfr_weights"] = list(self.sfr) if self.sfr is not None else None
            extra["sfr"] = SFR.describe() if self.sfr is not None else None
        if self.encoder.second is not None:
            extra.update(self.encoder.second.describe())
        if self.prompts is not None:
            extra["prompts"] = self.prompts.describe()
        if self.scoring.kind != "softmax":  # softmax: what every result before SigLIP ran, unrecorded
            extra.update(self.scoring.describe())
        return {**self.preset.settings(), **extra, **self.model.describe(), "precision": self.precision}

    # image side -----------------------------------------------------------------------------

    def preprocess(self, image) -> torch.Tensor:
        """An image (``ovss.images.as_rgb``: numpy, torch or PIL) -> 1 x 3 x h x w normalised, resized
        by the preset.

        ``resize_mode`` "opencv" (every preset): uint8 images are resized as uint8 with OpenCV
        bilinear, then normalised, as the mmseg pipelines do (see ``resize.py``). Float images, and
        ``resize_mode`` "torch", are resized as floats with torch's bilinear.
        """
        return self._preprocess(as_rgb(image))

    def _preprocess(self, image: np.ndarray) -> torch.Tensor:
        """``preprocess`` of an image ``as_rgb`` already returned (H x W x 3, uint8, or float 0..1)."""
        p = self.preset
        h, w = image.shape[:2]
        th, tw = resized_size(h, w, p.resize_short, p.max_long, p.resize_to)
        if image.dtype == np.uint8 and p.resize_mode == "opencv":
            image = resize_bilinear_uint8(image, (th, tw))
        x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
        if image.dtype != np.uint8:
            x = x * 255.0  # as_rgb's floats are 0..1; normalize takes 0..255
        if tuple(x.shape[-2:]) != (th, tw):
            x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False)
        x = self.model.normalize(x)
        return x.to(self.device)

    def windows(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int, int, int]], tuple[int, int]]:
        """Cut a preprocessed image into the preset's windows, made a multiple of the patch size
        as the preset's ``window_remainder`` says. The third value is the size the window's logits
        are resized to before they are cropped to the window (the padded size, or the window's)."""
        h, w = x.shape[-2:]
        boxes = window_boxes(h, w, self.preset.crop, self.preset.stride)
        batch = torch.cat([x[..., y1:y2, x1:x2] for (y1, y2, x1, x2) in boxes])
        ph, pw = self.model.patch_size
        size = tuple(batch.shape[-2:])
        if self.preset.window_remainder == "floor" and size[0] >= ph and size[1] >= pw:
            return batch[..., : size[0] // ph * ph, : size[1] // pw * pw], boxes, size
        batch, _ = pad_to_multiple(batch, self.model.patch_size)
        return batch, boxes, tuple(batch.shape[-2:])

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised projected patch features (B x h x w x E) for a batch of windows."""
        return F.normalize(self.encoder(x).patch.float(), dim=-1)

    @torch.no_grad()
    def set_image(self, image: np.ndarray | torch.Tensor) -> EncodedImage:
        """Encode ``image`` once; later ``predict`` calls reuse its features."""
        size, wanted, work, x = self._prepare(image)
        boxes = window_boxes(*x.shape[-2:], self.preset.crop, self.preset.stride)
        y1, y2, x1, x2 = boxes[0]
        per_chunk = windows_per_chunk((y2 - y1) * (x2 - x1))
        last_block = None
        if len(boxes) <= per_chunk:
            batch, boxes, padded = self.windows(x)
            if self.sfr is not None:
                feats, last_block = self._encode_for_feedback(batch)
            else:
                feats = self.patch_features(batch)
        else:  # thousands of windows (a large photo at full size): never all in memory at once
            if self.sfr is not None:
                raise OvssError(f"ResCLIP's semantic feedback keeps every window's last-block input; this image needs "
                                f"{len(boxes)} windows: resize it (the preset's resize_short) or use preset='resclip-rcs'",
                                param="preset")
            parts = []
            for i in range(0, len(boxes), per_chunk):
                batch = torch.cat([x[..., a:b, c:d] for (a, b, c, d) in boxes[i : i + per_chunk]])
                batch, _ = pad_to_multiple(batch, self.model.patch_size)
                parts.append(self.patch_features(batch))
            feats, padded = torch.cat(parts), tuple(batch.shape[-2:])
            del batch, parts
        self._encoded = EncodedImage(size, tuple(x.shape[-2:]), x, boxes, feats, padded,
                                     bounded_from=wanted if work != wanted else None, last_block=last_block)
        return self._encoded

    def _prepare(self, image):
        """(original size, the preset's size, the size worked at, the preprocessed image): a preset
        that keeps the size (shapesworld) works on a 24 MP photo at a bounded size (bounded memory)."""
        image = as_rgb(image)
        size = tuple(image.shape[:2])
        p = self.preset
        wanted = resized_size(*size, p.resize_short, p.max_long, p.resize_to)
        keeps_size = p.resize_short is None and p.resize_to is None
        work = bounded.bounded_size(wanted, bounded.MAX_INPUT_PIXELS) if keeps_size else wanted
        if work != wanted:
            image = bounded.shrink_image(image, work)
        return size, wanted, work, self._preprocess(image)

    @torch.no_grad()
    def encode_images(self, images: list, max_windows: int = 32) -> list[EncodedImage]:
        """Encode several images, stacking the windows of images of equal window size into shared
        forwards of at most ``max_windows`` windows (bounded memory). Pays where one image has few
        windows (small images, GPUs); each image's features equal ``set_image``'s. Pass the results
        to ``predict(encoded=...)``.
        """
        if not isinstance(images, (list, tuple)):
            raise OvssError(f"images must be a list of images, got {type(images).__name__}; for one image use set_image",
                            param="images")
        prepared, by_shape, alone = [], {}, {}
        for k, image in enumerate(images):
            size, wanted, work, x = self._prepare(image)
            boxes = window_boxes(*x.shape[-2:], self.preset.crop, self.preset.stride)
            y1, y2, x1, x2 = boxes[0]
            too_many = len(boxes) > min(max_windows, windows_per_chunk((y2 - y1) * (x2 - x1)))
            if work != wanted or too_many or self.sfr is not None:
                # a large photo (set_image's bounded, chunked path), or ResCLIP's feedback, which
                # needs the tokens entering the last block that only set_image keeps
                alone[k] = self.set_image(image)
                prepared.append(None)
                continue
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
        return [alone[k] if item is None else EncodedImage(item[0], tuple(item[1].shape[-2:]), item[1], item[2], f, item[3])
                for k, (item, f) in enumerate(zip(prepared, feats))]

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
        features = enc.features if self.sfr is None else self.semantic_feedback_features(enc, text)
        query_logits = self.window_logits_to_image(enc, features, text)
        return self.decode(query_logits, classes, enc, output_size)

    # ResCLIP's semantic feedback refinement ---------------------------------------------------

    def _encode_for_feedback(self, batch: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """``patch_features`` of a batch of windows, and what SFR needs to run the last block again:
        the tokens entering it and, for ``+rcs`` heads, ResCLIP's mix R (B x H x N x N)."""
        n = len(self.encoder.blocks)
        rcs_blocks = list(RCS.blocks(n)) if self.head.rcs is not None else []
        if rcs_blocks and rcs_blocks[0] < 1:
            raise OvssError(f"ResCLIP's semantic feedback needs at least 3 blocks before the mix; this model has {n}")
        out = self.encoder(batch, layers=[i - 1 for i in rcs_blocks] + [n - 2])
        mix = None
        if rcs_blocks:  # the tokens entering block i are block i - 1's output
            mix = cross_correlation_attention(self.encoder.blocks, {i: out.layers[i - 1] for i in rcs_blocks},
                                              grid=out.grid, prefix=self.encoder.prefix)
        return F.normalize(out.patch.float(), dim=-1), (out.layers[n - 2], mix)

    def semantic_feedback_features(self, enc: EncodedImage, text: torch.Tensor) -> torch.Tensor:
        """ResCLIP's SFR, window by window: the first segmentation from the cached features
        (cosine scores upsampled to the window, PAMR on the window, softmax with the logit scale),
        one label per patch, the feedback matrix, and the last block run again with it.

        Returns the refined normalised patch features, B x h x w x E, like ``enc.features``.
        """
        if enc.last_block is None:
            raise OvssError("this image was encoded without ResCLIP's semantic feedback; call set_image again")
        from .pamr import pamr

        tokens_in, mix = enc.last_block
        grid = tuple(enc.features.shape[1:3])
        text = text.to(enc.features.dtype)
        refined = []
        for b, (y1, y2, x1, x2) in enumerate(enc.boxes):
            window = enc.image[..., y1:y2, x1:x2]
            if tuple(window.shape[-2:]) != tuple(enc.padded):
                window, _ = pad_to_multiple(window, self.model.patch_size)
            scores = torch.einsum("hwe,qe->qhw", enc.features[b], text)[None]
            scores = F.interpolate(scores, size=enc.padded, mode="bilinear", align_corners=False)
            scores = pamr(window, scores, SFR.pamr_iterations, SFR.pamr_dilations)
            probs = self.scoring.probs(scores[0] * self.preset.logit_scale)
            labels = patch_labels(probs, self.model.patch_size, self.preset.sfr_threshold)
            matrix = feedback_attention(labels[: grid[0], : grid[1]]).to(tokens_in.dtype)
            P = self.encoder.prefix
            if P != 1:  # the matrix has one class-token row and column (zero); SigLIP has no class token
                full = matrix.new_zeros(P + matrix.shape[0] - 1, P + matrix.shape[1] - 1)
                full[P:, P:] = matrix[1:, 1:]
                matrix = full
            feedback = SemanticFeedback(matrix[None, None], self.sfr)
            x = self.encoder.head_block(tokens_in[b : b + 1], grid, mix=None if mix is None else mix[b : b + 1],
                                        feedback=feedback)
            refined.append(F.normalize(self.encoder.project(x[:, self.encoder.prefix:]).float(), dim=-1)
                           .reshape(grid[0], grid[1], -1))
        return torch.stack(refined)

    def window_logits_to_image(self, enc: EncodedImage, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Cosine logits of each window, upsampled to the window and averaged where windows overlap.

        Returns Q x h x w at the resized input size.
        """
        tokens = torch.einsum("bhwe,qe->bqhw", features, text.to(features.dtype))
        h, w = enc.input_size
        total = tokens.new_zeros(tokens.shape[1], h, w)
        count = tokens.new_zeros(1, h, w)
        # upsampled a chunk of windows at a time: all of a large photo's windows would not fit in memory
        step = windows_per_chunk(tokens.shape[1] * enc.padded[0] * enc.padded[1])
        for first in range(0, tokens.shape[0], step):
            logits = F.interpolate(tokens[first : first + step], size=enc.padded, mode="bilinear", align_corners=False)
            for (y1, y2, x1, x2), lg in zip(enc.boxes[first : first + step], logits):
                total[:, y1:y2, x1:x2] += lg[:, : y2 - y1, : x2 - x1]
                count[:, y1:y2, x1:x2] += 1
        total /= count
        return total

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
        pixels = size[0] * size[1]
        if (query_logits.shape[0] * pixels > bounded.MAX_DENSE_ELEMENTS or (p.pamr and pixels > bounded.MAX_WORK_PIXELS)
                or enc.bounded_from is not None):
            return self._decode_bounded(query_logits, classes, enc, size)
        if tuple(query_logits.shape[-2:]) != size:
            query_logits = F.interpolate(query_logits[None], size=size, mode="bilinear", align_corners=False)[0]
        if p.pamr:  # NACLIP: on the cosine logits at the output size, guided by the image resized there
            from .pamr import pamr

            image = enc.image if tuple(enc.image.shape[-2:]) == size else F.interpolate(
                enc.image, size=size, mode="bilinear", align_corners=False)
            query_logits = pamr(image, query_logits[None])[0]
        scaled = query_logits * p.logit_scale
        probs_q = self.scoring.probs(scaled)
        index = torch.tensor(classes.query_to_class, device=scaled.device)
        n = len(classes)
        logits = max_by_class(scaled, index, n)
        probs = max_by_class(probs_q, index, n)
        best, labels = max_over_classes(probs)
        if p.area_thd > 0:
            labels = drop_small_classes(labels, probs, p.area_thd)
        if p.prob_thd > 0:
            labels[best < p.prob_thd] = 0
        return SegmentationResult(logits=logits, probs=probs, labels=labels, classes=classes, confidence=best)

    def _decode_bounded(self, query_logits: torch.Tensor, classes: ClassList, enc: EncodedImage,
                        size: tuple[int, int]) -> SegmentationResult:
        """``decode`` for outputs too large to hold Q x H x W scores: the same steps, with the scores
        kept at the working size and labels made at full size band by band (``ovss.segment.bounded``).

        PAMR runs at no more than ``bounded.MAX_WORK_PIXELS`` (its dilations then span more of the
        photo than at full size); ``reduced`` in the result records every size that differs.
        """
        p = self.preset
        reduced: dict = {"labels_size": list(size)}
        if enc.bounded_from is not None:
            reduced["input_size"] = list(enc.input_size)
        src = query_logits
        if p.pamr:
            from .pamr import pamr

            work = bounded.bounded_size(size, bounded.MAX_WORK_PIXELS)
            if tuple(src.shape[-2:]) != work:
                src = F.interpolate(src[None], size=work, mode="bilinear", align_corners=False)[0]
            image = enc.image if tuple(enc.image.shape[-2:]) == work else F.interpolate(
                enc.image, size=work, mode="bilinear", align_corners=False)
            src = pamr(image, src[None])[0]
            del image
            if work != size:
                reduced["pamr_size"] = list(work)
        index = torch.tensor(classes.query_to_class, device=src.device)
        n = len(classes)

        def classify(band: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return max_over_classes(max_by_class(self.scoring.probs(band * p.logit_scale), index, n))

        best, labels = bounded.decode_in_bands(src, size, classify)
        if p.area_thd > 0:
            counts = torch.bincount(labels.flatten(), minlength=n).float()
            small = (counts <= p.area_thd * counts[1:].sum()) & (counts > 0)
            small[0] = False
            if small.any():  # as drop_small_classes: small classes lose their pixels to the next best

                def reclassify(band: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                    probs = max_by_class(self.scoring.probs(band * p.logit_scale), index, n)
                    probs[small] = 0.0
                    return probs[0], probs.argmax(dim=0)

                _, labels = bounded.decode_in_bands(src, size, reclassify)
        if p.prob_thd > 0:
            labels[best < p.prob_thd] = 0
        score_size = bounded.bounded_size(src.shape[-2:], bounded.MAX_WORK_PIXELS)
        if tuple(src.shape[-2:]) != score_size:
            src = F.interpolate(src[None], size=score_size, mode="bilinear", align_corners=False)[0]
        scaled = src * p.logit_scale
        logits = max_by_class(scaled, index, n)
        probs = max_by_class(self.scoring.probs(scaled), index, n)
        if score_size != size:
            reduced["scores_size"] = list(score_size)
        return SegmentationResult(logits=logits, probs=probs, labels=labels, classes=classes,
                                  confidence=best, reduced=reduced)


