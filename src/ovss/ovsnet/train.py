"""Training and evaluating OVSNet on frozen dense CLIP features.

The CLIP is frozen, so its features are computed once per image (``encode_dataset``) and every
variant trains on the same cache. Training follows Mask2Former's recipe at small scale: Hungarian
matching of queries to the classes present (cost: class 2, mask BCE 5, dice 5), cross-entropy
with a down-weighted "no object" class, BCE + dice on matched masks, and, with PC on, the proxy
loss on the matched queries' F_Q and F_C against their classes' text embeddings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from ..data import IGNORE_INDEX, SegDataset, resize_label
from ..evaluation.evaluator import SemSegEvaluator, inference_on_dataset
from ..text import ClassList
from .decoder import OVSNet, OVSNetConfig
from .proxy import proxy_loss


@torch.no_grad()
def dense_features(segmenter, image: np.ndarray) -> torch.Tensor:
    """Unit-norm CLIP patch features of a whole image (gh x gw x E), stitched from the preset's
    windows (``segment.stitch_patch_features``: overlaps averaged patch by patch)."""
    from ..segment import stitch_patch_features

    return stitch_patch_features(segmenter.set_image(image), segmenter.model.patch_size)


@dataclass
class EncodedSet:
    """A dataset's cached CLIP features and labels."""

    features: torch.Tensor  # N x gh x gw x E (float16)
    labels: list[np.ndarray]  # full-size label maps, dataset indices
    seconds: float  # time spent encoding


def encode_dataset(segmenter, dataset: SegDataset, progress: bool = True, desc: str = "CLIP features") -> EncodedSet:
    feats, labels = [], []
    t0 = time.perf_counter()
    for item in tqdm(dataset, desc=desc, unit="img", disable=not progress, total=len(dataset)):
        feats.append(dense_features(segmenter, item["image"]).half().cpu())
        labels.append(item["label"])
    shapes = {tuple(f.shape) for f in feats}
    if len(shapes) != 1:
        raise ValueError(f"images of different sizes give feature grids {sorted(shapes)}; OVSNet's small trainer needs one size")
    return EncodedSet(torch.stack(feats), labels, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- matching and losses


def _targets(label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(classes K, masks K x P) of the training classes present in one flattened label map."""
    classes = torch.unique(label)
    classes = classes[classes != IGNORE_INDEX]
    return classes, (label[None, :] == classes[:, None]).float()


def _pairwise_mask_costs(logits: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean BCE and dice loss of every query mask (Q x P) against every target (K x P)."""
    p = logits.shape[1]
    bce = (F.softplus(-logits) @ gt.t() + F.softplus(logits) @ (1 - gt).t()) / max(p, 1)
    prob = logits.sigmoid()
    dice = 1 - (2 * prob @ gt.t() + 1) / (prob.sum(-1)[:, None] + gt.sum(-1)[None, :] + 1)
    return bce, dice


def _dice(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    prob = logits.sigmoid()
    return (1 - (2 * (prob * gt).sum(-1) + 1) / (prob.sum(-1) + gt.sum(-1) + 1)).mean()


def ovsnet_loss(model: OVSNet, out, labels: torch.Tensor, text: torch.Tensor, query_to_class: torch.Tensor,
                n_classes: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Losses of one batch; ``labels`` B x H' x W' training-class indices (255 = not scored).

    Mask logits are upsampled to the labels' size (twice the patch grid in ``train_ovsnet``).
    """
    cfg = model.cfg
    logits = model.query_logits(out.f_q, text, query_to_class, n_classes)  # B x Q x (C + 1)
    b, q = logits.shape[:2]
    masks = F.interpolate(out.masks, size=labels.shape[-2:], mode="bilinear", align_corners=False).flatten(2)
    class_target = torch.full((b, q), n_classes, dtype=torch.long, device=logits.device)
    mask_terms, dice_terms, matched_q, matched_c, matched_cls = [], [], [], [], []
    for i in range(b):
        label = labels[i].flatten()
        valid = label != IGNORE_INDEX
        classes, gt = _targets(label)
        if len(classes) == 0:
            continue
        pred = masks[i][:, valid]
        gt = gt[:, valid]
        with torch.no_grad():
            bce, dice = _pairwise_mask_costs(pred, gt)
            prob = logits[i].softmax(-1)[:, classes]
            cost = -cfg.class_weight * prob + cfg.mask_weight * bce + cfg.dice_weight * dice
            qi, ki = linear_sum_assignment(cost.cpu().numpy())
        qi, ki = torch.as_tensor(qi, device=logits.device), torch.as_tensor(ki, device=logits.device)
        class_target[i, qi] = classes[ki]
        mask_terms.append(F.binary_cross_entropy_with_logits(pred[qi], gt[ki]))
        dice_terms.append(_dice(pred[qi], gt[ki]))
        matched_q.append(out.f_q[i, qi])
        matched_c.append(out.f_c[i, qi])
        matched_cls.append(classes[ki])
    weight = torch.ones(n_classes + 1, device=logits.device)
    weight[-1] = cfg.void_weight
    losses = {"class": cfg.class_weight * F.cross_entropy(logits.flatten(0, 1), class_target.flatten(), weight=weight)}
    zero = logits.sum() * 0.0
    losses["mask"] = cfg.mask_weight * torch.stack(mask_terms).mean() if mask_terms else zero
    losses["dice"] = cfg.dice_weight * torch.stack(dice_terms).mean() if dice_terms else zero
    if cfg.pc and matched_cls:
        cls = torch.cat(matched_cls)
        first = _first_query(query_to_class, n_classes)
        target_text = text[first[cls]]
        losses["pc"] = cfg.pc_weight * proxy_loss([torch.cat(matched_q), torch.cat(matched_c)], target_text, cls,
                                                  cfg.gamma, rng)
    return losses


def _first_query(query_to_class: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Index of each class's first synonym (its display name) among the text queries."""
    first = torch.full((n_classes,), -1, dtype=torch.long)
    for i, c in enumerate(query_to_class.tolist()):
        if first[c] < 0:
            first[c] = i
    return first.to(query_to_class.device)


# ----------------------------------------------------------------------------- training


@dataclass
class TrainSettings:
    steps: int = 600
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.05
    seed: int = 0


def train_ovsnet(data: EncodedSet, train_label_map: np.ndarray, text: torch.Tensor, query_to_class: torch.Tensor,
                 n_classes: int, cfg: OVSNetConfig, settings: TrainSettings = TrainSettings(),
                 device: str | torch.device = "cpu", progress: bool = True, desc: str = "OVSNet") -> tuple[OVSNet, dict]:
    """Train an OVSNet on cached features; ``train_label_map`` maps dataset labels to training classes (255 = unseen)."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    gh, gw = data.features.shape[1:3]
    targets = torch.from_numpy(np.stack([train_label_map[resize_label(lab, (2 * gh, 2 * gw), sampling="centre")] for lab in data.labels]))
    model = OVSNet(data.features.shape[-1], cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / settings.steps) ** 0.9)
    text, query_to_class = text.to(device), query_to_class.to(device)
    log, t0 = [], time.perf_counter()
    for step in tqdm(range(settings.steps), desc=desc, unit="step", disable=not progress):
        idx = torch.from_numpy(rng.choice(len(data.features), size=min(settings.batch_size, len(data.features)), replace=False))
        feats, labels = data.features[idx].float().to(device), targets[idx].long().to(device)
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5).to(device)
        feats = torch.where(flip[:, None, None, None], feats.flip(2), feats)
        labels = torch.where(flip[:, None, None], labels.flip(2), labels)
        losses = ovsnet_loss(model, model(feats), labels, text, query_to_class, n_classes, rng)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == settings.steps - 1:
            log.append({"step": step, **{k: round(float(v.detach()), 4) for k, v in losses.items()}})
    return model.eval(), {"seconds": time.perf_counter() - t0, "log": log}


# ----------------------------------------------------------------------------- evaluation


def evaluate(model: OVSNet, data: EncodedSet, classes: ClassList, text: torch.Tensor, seen: torch.Tensor,
             clip_scale: float, use_gfa: bool | None = None, device: str | torch.device = "cpu",
             batch_size: int = 16) -> dict:
    """mIoU / mAcc / aAcc (percent) and per-class IoU on a cached dataset, predicting at label size."""
    n = len(classes)
    q2c = torch.tensor(classes.query_to_class)
    items = [{"features": data.features[i], "label": lab} for i, lab in enumerate(data.labels)]

    def predict(batch: list[dict]) -> np.ndarray:
        """Label maps at the size of the batch's first label (a cached set has one size)."""
        feats = torch.stack([item["features"] for item in batch]).float().to(device)
        scores = model.semantic(feats, text.to(device), q2c.to(device), n, seen, clip_scale, batch[0]["label"].shape, use_gfa)
        return scores.argmax(1).cpu().numpy()

    evaluator = SemSegEvaluator(n)
    inference_on_dataset((items[i:i + batch_size] for i in range(0, len(items), batch_size)), predict, evaluator,
                         name="OVSNet")
    m = evaluator.evaluate()
    return {"mIoU": m["mIoU"], "mAcc": m["mAcc"], "aAcc": m["aAcc"], "IoU": dict(zip(classes.names, m["IoU"]))}
