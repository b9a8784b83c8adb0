"""Mask features as OpenMask3D computes them, in the box-only variant.

For every mask: the top-k frames by visible points (k = 5); in each, the box of the mask's visible
points, cropped at 3 levels (each growing the box by 0.1 x level of its side on every side); every
crop encoded by CLIP (with OpenDAS visual prompts, if given); the mask's feature is the mean of the
normalised crop embeddings, normalised again (so cosine similarity and a softmax over classes
can be read directly).

Where OpenMask3D refines the projected points into a 2D mask with SAM and boxes that mask, this
boxes the projected visible points themselves: no SAM weights are available offline, and on a
dense point cloud the box of the visible points is close to the box of the object's pixels (the
SAM mask mainly fills holes and trims stray points). Crops are padded to a square with CLIP's mean
pixel and resized, as ovss's segments are (OpenMask3D's CLIP preprocessing centre-crops instead,
which can cut off the ends of long objects).

Frames are read one at a time and crops are encoded in bounded batches, so memory does not grow
with the number of frames or masks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..opendas import cut_segment, mean_pixel
from ..errors import OvssError
from .projection import TOP_K, VIS_THRESHOLD, Visibility, compute_visibility, expand_box, top_k_views, view_box

LEVELS = 3
EXPANSION = 0.1


@dataclass
class FeatureConfig:
    """OpenMask3D's defaults; every field is written to the results."""

    top_k: int = TOP_K
    levels: int = LEVELS
    expansion: float = EXPANSION
    vis_threshold: float = VIS_THRESHOLD
    batch_size: int = 64
    refine: str = "box"  # OpenMask3D: "sam"; only the box-only variant exists here

    def check(self) -> "FeatureConfig":
        for name in ("top_k", "levels", "batch_size"):
            if getattr(self, name) < 1:
                raise OvssError(f"{name} must be at least 1, got {getattr(self, name)}", param=name)
        if self.expansion < 0:
            raise OvssError(f"expansion must not be negative, got {self.expansion}", param="expansion")
        if self.vis_threshold <= 0:
            raise OvssError(f"vis_threshold must be positive, got {self.vis_threshold}", param="vis_threshold")
        if self.refine != "box":
            raise OvssError(f"mask refinement {self.refine!r} is not available; only 'box' (no SAM weights offline)")
        return self

    def describe(self) -> dict:
        return asdict(self)


def square_crop(image: np.ndarray, box: tuple[int, int, int, int], fill, size: int) -> np.ndarray:
    """The ``box`` (x1, y1, x2, y2) of ``image``, padded to a square of ``fill`` and resized to ``size``."""
    x1, y1, x2, y2 = box
    crop = image[y1:y2, x1:x2]
    return cut_segment(crop, np.ones(crop.shape[:2], dtype=bool), fill, size)


def crop_plan(visibility: Visibility, masks: np.ndarray, cfg: FeatureConfig) -> dict[int, list[tuple[int, tuple]]]:
    """frame -> [(mask, box of its visible points)] for every mask's top-k frames."""
    plan: dict[int, list[tuple[int, tuple]]] = {}
    for m, frames in enumerate(top_k_views(visibility.counts, cfg.top_k)):
        for f in frames:
            box = view_box(visibility, masks, f, m)
            if box is not None:
                plan.setdefault(f, []).append((m, box))
    return plan


def iter_crops(scene, plan: dict, cfg: FeatureConfig, fill, size: int):
    """(mask, frame, level, crop image) for every planned crop, reading each frame once."""
    h_w = scene.color_size()
    for f in sorted(plan):
        image = scene.color(f)
        if image.shape[:2] != h_w:
            raise OvssError(f"colour frame {scene.frame_ids[f]} is {image.shape[1]}x{image.shape[0]}, the first is "
                            f"{h_w[1]}x{h_w[0]}; all colour frames of a scene must have one size")
        for m, box in plan[f]:
            for level in range(cfg.levels):
                yield m, f, level, square_crop(image, expand_box(box, level, cfg.expansion, h_w), fill, size)


def image_encoder(learner) -> Callable[[np.ndarray], torch.Tensor]:
    """uint8 B x S x S x 3 crops -> normalised embeddings, with the learner's visual prompts (if any)."""
    m = learner.model
    mean = torch.tensor(m.mean).view(1, 3, 1, 1)
    std = torch.tensor(m.std).view(1, 3, 1, 1)

    @torch.no_grad()
    def encode(images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        return learner.encode_images(((x - mean) / std).to(m.device)).float().cpu()

    return encode


def mask_features(scene, masks: np.ndarray, learner, cfg: FeatureConfig | None = None,
                  visibility: Visibility | None = None, progress=None) -> tuple[torch.Tensor, list[dict]]:
    """(M x E normalised features, per mask {"views": frame ids, "crops": n}); a mask that no frame
    sees gets a zero feature and no views."""
    cfg = (cfg or FeatureConfig()).check()
    if visibility is None:
        visibility = compute_visibility(scene, masks, cfg.vis_threshold, progress)
    model = learner.model
    size, fill = model.image_size[0], mean_pixel(model.mean)
    encode = image_encoder(learner)
    plan = crop_plan(visibility, masks, cfg)
    n_masks = masks.shape[1]
    sums: torch.Tensor | None = None
    counts = np.zeros(n_masks, dtype=np.int64)
    views: list[list[int]] = [[] for _ in range(n_masks)]
    batch, owners = [], []

    def flush():
        nonlocal sums
        emb = encode(np.stack(batch))
        if sums is None:
            sums = torch.zeros(n_masks, emb.shape[1])
        sums.index_add_(0, torch.tensor(owners), emb)
        batch.clear()
        owners.clear()

    for m, f, level, crop in iter_crops(scene, plan, cfg, fill, size):
        if level == 0:
            views[m].append(int(scene.frame_ids[f]))
        batch.append(crop)
        owners.append(m)
        counts[m] += 1
        if len(batch) >= cfg.batch_size:
            flush()
    if batch:
        flush()
    if sums is None:  # no mask is seen by any frame: the embedding width from one blank crop
        sums = torch.zeros(n_masks, encode(np.zeros((1, size, size, 3), np.uint8)).shape[1])
    features = F.normalize(sums / torch.from_numpy(np.maximum(counts, 1)).float()[:, None], dim=-1)
    info = [{"views": views[m], "crops": int(counts[m]), "visible_points": int(visibility.counts[:, m].max(initial=0))}
            for m in range(n_masks)]
    return features, info
