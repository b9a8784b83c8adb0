"""TPT (Shu et al., NeurIPS 2022) for dense segmentation: test-time prompt tuning.

The learnable prompt is the text context "a photo of a" (its token embeddings, n_ctx = 4 for
CLIP's tokenizer) in front of every query; the encoders stay frozen. Each window is seen as
``views`` views: itself and views - 1 random resized crops (scale 0.08-1, ratio 3/4-4/3, resized
back to the window) with random horizontal flips, TPT's augmentation for natural images.
Confidence selection: per window, only the ``select_ratio`` (10 %) of views with the lowest mean
patch entropy enter the loss, which is the mean patch entropy of the selected views.

Dense deviation from the paper: the views' patches are not aligned, so the loss averages the
selected views' entropies instead of taking the entropy of their averaged prediction. The image
encoder is frozen, so the views are encoded once per call, not once per step (same numbers).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OvssError
from .common import TestTimeAdaptation, decode_labels, entropy, mean_of


def random_resized_crops(windows: torch.Tensor, views: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """B x 3 x H x W -> B x V x 3 x H x W: view 0 the window, the others random resized crops, half flipped.

    Draws from torch's global generator (the runner seeds it before every batch).
    """
    B, C, H, W = windows.shape
    out = [windows]
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(views - 1):
        crops = []
        for b in range(B):
            box = (0, 0, H, W)
            for _ in range(10):  # torchvision's rule: ten tries, else the whole window
                area = H * W * float(torch.empty(1).uniform_(*scale))
                r = math.exp(float(torch.empty(1).uniform_(*log_ratio)))
                w, h = int(round(math.sqrt(area * r))), int(round(math.sqrt(area / r)))
                if 0 < w <= W and 0 < h <= H:
                    y0 = int(torch.randint(0, H - h + 1, (1,)))
                    x0 = int(torch.randint(0, W - w + 1, (1,)))
                    box = (y0, x0, h, w)
                    break
            y0, x0, h, w = box
            crop = F.interpolate(windows[b : b + 1, :, y0 : y0 + h, x0 : x0 + w], size=(H, W), mode="bilinear",
                                 align_corners=False, antialias=True)
            if float(torch.rand(1)) < 0.5:
                crop = crop.flip(-1)
            crops.append(crop)
        out.append(torch.cat(crops))
    return torch.stack(out, dim=1)


def select_confident(view_entropy: torch.Tensor, ratio: float) -> torch.Tensor:
    """Indices (B x k) of the k = max(1, int(V x ratio)) lowest-entropy views of each window (B x V)."""
    k = max(1, int(view_entropy.shape[-1] * ratio))
    return view_entropy.topk(k, dim=-1, largest=False).indices


class TPT(TestTimeAdaptation):
    """Prompt tuning on augmented views with confidence selection; only the text context learns."""

    name = "tpt"
    title = "TPT"

    def __init__(self, views: int = 64, select_ratio: float = 0.1, ctx_init: str = "a photo of a",
                 chunk: int = 64, suffix: str = ".", **kwargs):
        super().__init__(**kwargs)
        if isinstance(views, bool) or not isinstance(views, int) or views < 1:
            raise OvssError(f"tpt: views must be a positive integer, got {views!r}")
        if not 0 < float(select_ratio) <= 1:
            raise OvssError(f"tpt: select_ratio must be in (0, 1], got {select_ratio!r}")
        self.views, self.select_ratio, self.ctx_init = views, float(select_ratio), ctx_init
        self.suffix = str(suffix)  # after the class name: "." (CLIP's prompts) or "" (MLMP's "a photo of a {}")
        self.chunk = max(1, int(chunk))
        self._ctx: dict[int, nn.Parameter] = {}

    def hparams(self):
        return {**super().hparams(), "views": self.views, "select_ratio": self.select_ratio, "ctx_init": self.ctx_init,
                "suffix": self.suffix}

    def trainable(self, segmenter) -> dict[str, nn.Parameter]:
        """The context embeddings, created once per model from the words of ``ctx_init``."""
        key = id(segmenter.model.clip)
        if key not in self._ctx:
            tower = segmenter.text.tower
            if not hasattr(tower, "token_embedding"):
                raise OvssError("tpt needs a CLIP text tower with token embeddings (open_clip models); pick another method")
            ids = segmenter.text.tokenize([self.ctx_init])[0]
            n_ctx = int(ids.argmax()) - 1  # tokens between the start and end tokens
            with torch.no_grad():
                init = tower.token_embedding(ids[1 : 1 + n_ctx].to(segmenter.device)).detach().clone().float()  # fp32 even under fp16 weights, as MLMP's
            self._ctx = {key: nn.Parameter(init)}
        return {"ctx": self._ctx[key]}

    def prompted_text(self, segmenter, classes, ctx: torch.Tensor) -> torch.Tensor:
        """Normalised query embeddings (Q x E) of "<ctx> query<suffix>" with the learned context."""
        tokens = segmenter.text.tokenize([f"{self.ctx_init} {q}{self.suffix}" for q in classes.queries]).to(segmenter.device)
        return F.normalize(segmenter.text.encode_tokens(tokens, prompts=[ctx]).float(), dim=-1)

    def adapt(self, segmenter, batch, classes, params, optimizer):
        ctx = params["ctx"]
        with torch.no_grad():  # the image side never changes: encode the views once
            view_feats = []  # per group: B x V x h x w x E
            for windows in batch.groups:
                per_window = []
                for b in range(windows.shape[0]):  # one window's views at a time keeps memory small
                    views = random_resized_crops(windows[b : b + 1], self.views)[0]  # V x 3 x H x W
                    per_window.append(torch.cat([segmenter.patch_features(views[i : i + self.chunk])
                                                 for i in range(0, len(views), self.chunk)]))
                view_feats.append(torch.stack(per_window))
        losses = []
        for _ in range(self.steps):
            text = self.prompted_text(segmenter, classes, ctx)
            selected = []
            for feats in view_feats:
                ent = entropy(self.logit_scale * feats @ text.T).flatten(2).mean(dim=2)  # B x V
                selected.append(ent.gather(1, select_confident(ent.detach(), self.select_ratio)))
            losses.append(self.step(optimizer, mean_of(selected)))
        return losses

    def predict(self, segmenter, batch, classes, output_sizes):
        text = self.prompted_text(segmenter, classes, self.trainable(segmenter)["ctx"])
        feats = [segmenter.patch_features(w) for w in batch.groups]
        return decode_labels(segmenter, batch, feats, text, classes, output_sizes)
