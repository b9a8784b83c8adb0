"""Class-agnostic mask proposals classified by the (adapted) CLIP, scored with mIoU.

This is how OpenDAS is used inside OVSeg (OpenDAS, sec. 4.5 and table 3): a proposal generator
gives masks without names, each mask is cut out like a training segment and named by the adapted
CLIP, and the named masks paint the label map. Proposal sources (``PROPOSALS``):

* ``gt``: the ground-truth class masks (the paper's protocol: only naming is measured);
* ``slic``: SLIC-like superpixels (k-means on colour and position from a grid of seeds);
* ``dense``: connected regions of a dense head's argmax map (the names are thrown away).

Pixels no proposal covers are left unlabelled (255) and count as wrong.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..errors import OvssError
from .evaluate import base_indices
from .prompts import PromptLearner
from .segments import class_masks, cut_segment, mean_pixel

UNLABELLED = 255


def slic_superpixels(image: np.ndarray, n_segments: int = 64, compactness: float = 20.0, iters: int = 5) -> np.ndarray:
    """Superpixel ids (H x W int) of an RGB image: k-means on (r, g, b, y, x) from a grid of seeds.

    ``compactness`` weighs position against colour (in RGB units per seed spacing), as SLIC's m.
    """
    h, w = image.shape[:2]
    step = max(1.0, float(np.sqrt(h * w / max(1, n_segments))))
    ys = np.arange(step / 2, h, step)
    xs = np.arange(step / 2, w, step)
    yy, xx = np.mgrid[0:h, 0:w]
    weight = compactness / step
    feats = np.concatenate([image.reshape(-1, 3).astype(np.float32),
                            weight * np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float32)], axis=1)
    seeds = [int(y) * w + int(x) for y in ys for x in xs]
    centers = feats[seeds].copy()
    assign = np.zeros(h * w, dtype=np.int64)
    for _ in range(iters):
        d = (feats ** 2).sum(1)[:, None] - 2 * feats @ centers.T + (centers ** 2).sum(1)[None, :]
        assign = d.argmin(1)
        for k in range(len(centers)):
            members = assign == k
            if members.any():
                centers[k] = feats[members].mean(0)
    _, ids = np.unique(assign, return_inverse=True)
    return ids.reshape(h, w)


def gt_proposals(image: np.ndarray, label: np.ndarray, context: dict) -> list[np.ndarray]:
    return [mask for _, mask in class_masks(label, context.get("ignore_index", 255), min_pixels=1)]


def slic_proposals(image: np.ndarray, label: np.ndarray, context: dict) -> list[np.ndarray]:
    ids = slic_superpixels(image, context.get("n_segments", 64))
    return [ids == k for k in range(int(ids.max()) + 1)]


def dense_proposals(image: np.ndarray, label: np.ndarray, context: dict) -> list[np.ndarray]:
    from scipy import ndimage

    labels = context["segmenter"].predict(image, context["classes"]).labels.cpu().numpy()
    masks = []
    for c in np.unique(labels):
        regions, n = ndimage.label(labels == c)
        masks += [regions == r for r in range(1, n + 1)]
    return masks


PROPOSALS: dict[str, Callable[[np.ndarray, np.ndarray, dict], list[np.ndarray]]] = {
    "gt": gt_proposals, "slic": slic_proposals, "dense": dense_proposals,
}


@torch.no_grad()
def classify_proposals(learner: PromptLearner, image: np.ndarray, masks: Sequence[np.ndarray],
                       text: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Label map (H x W uint8): each mask painted with the class whose text (rows of ``text``,
    normalised) its cut-out looks most like; later masks win where masks overlap."""
    m = learner.model
    size = m.image_size[0]
    fill = mean_pixel(m.mean)
    out = np.full(image.shape[:2], UNLABELLED, dtype=np.uint8)
    masks = [mk for mk in masks if mk.any()]
    for i in range(0, len(masks), batch_size):
        chunk = masks[i:i + batch_size]
        crops = np.stack([cut_segment(image, mk, fill, size) for mk in chunk])
        x = m.normalize(torch.from_numpy(crops).permute(0, 3, 1, 2).float())
        pred = (learner.encode_images(x.to(m.device)).cpu() @ text.cpu().T).argmax(1)
        for mk, c in zip(chunk, pred.tolist()):
            out[mk] = c
    return out


def segments_miou(learner: PromptLearner, dataset, proposals: str = "gt", base: Sequence[str] = (),
                  progress: bool = True, **context) -> dict:
    """mIoU / mAcc (percent) of naming ``proposals`` masks on a ``SegDataset``, plus mIoU over the
    base and the novel classes when ``base`` is given. ``context``: e.g. ``segmenter`` for ``dense``."""
    from ..evaluation.evaluator import SemSegEvaluator, inference_on_dataset
    from ..text import parse_classes

    if proposals not in PROPOSALS:
        raise OvssError(f"unknown proposals '{proposals}'; choose one of: {', '.join(PROPOSALS)}")
    names = [c[0] for c in dataset.classes]
    if len(names) >= UNLABELLED:
        raise OvssError(f"{len(names)} classes do not fit a uint8 label map; use a dataset with fewer than 255 classes")
    if proposals == "dense" and "segmenter" not in context:
        from ..segment import Segmenter, default_preset

        context["segmenter"] = Segmenter(learner.model, preset=default_preset(learner.model))
    context.setdefault("classes", parse_classes([list(c) for c in dataset.classes]))
    context.setdefault("ignore_index", dataset.ignore_index)
    text = learner.encode_names(names)

    def predict(batch: list[dict]) -> list[np.ndarray]:
        out = []
        for item in batch:
            masks = PROPOSALS[proposals](item["image"], item["label"], context)
            out.append(classify_proposals(learner, item["image"], masks, text))
        return out

    evaluator = SemSegEvaluator(len(names), dataset.ignore_index)
    with tqdm(desc=f"classify {proposals} proposals", unit="img", disable=not progress, total=len(dataset)) as bar:
        inference_on_dataset(([dataset[i]] for i in range(len(dataset))), predict, evaluator, bar=bar,
                             name=f"{proposals} proposals")
    scores = evaluator.evaluate()
    result = {"proposals": proposals, "images": len(dataset), "mIoU": scores["mIoU"], "mAcc": scores["mAcc"],
              "aAcc": scores["aAcc"], "IoU": dict(zip(names, scores["IoU"]))}
    if base:
        ids = base_indices(names, base)
        iou = np.asarray(scores["IoU"], dtype=np.float64)
        novel = [c for c in range(len(names)) if c not in ids]
        result["mIoU base"] = float(np.nanmean(iou[ids])) if ids and not np.isnan(iou[ids]).all() else float("nan")
        result["mIoU novel"] = float(np.nanmean(iou[novel])) if novel and not np.isnan(iou[novel]).all() else float("nan")
    return result
