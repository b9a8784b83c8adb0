"""Train ovss's tiny CLIP contrastively on ShapesWorld image-caption pairs.

Each training image is a random 112 x 112 window of a scene rendered at a random size (so objects
appear at many scales), captioned with the classes the window shows, either in ShapesWorld's own
sentence forms or in a CLIP prompt template; a share of single-object images teaches names alone.
Nothing but contrastive image-text losses are used: the model is a CLIP, trained like one, with
captioned regions pooled from the dense features that the training-free heads and MLMP read.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import OvssError
from ..files import atomic_write, save_safetensors, write_json
from ..world.worlds import get_world, single_thing_caption
from .recipe import TinyClipRecipe
from ..outputs import as_job

MODEL_NAME = "ovss-tiny"
# Training scenes use seeds above every seed `ovss world make` gives (export seeds stay below 1e10),
# so exported validation and test splits are held out.
TRAIN_SEED_BASE = 10**10


def _template_caption(names: list[str], rng: np.random.Generator, templates: tuple[str, ...]) -> str:
    rng.shuffle(names)
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return str(rng.choice(templates)).format(joined)


class PairStream(torch.utils.data.IterableDataset):
    """An endless, seeded stream of (image uint8 3 x S x S, caption) pairs."""

    def __init__(self, cfg: TinyClipRecipe, templates: tuple[str, ...], start_step: int = 0):
        self.cfg = cfg
        self.templates = templates
        self.world = get_world(cfg.world)
        self.start_step = start_step  # a resumed run draws a fresh stream, not the first one again

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        key = [self.cfg.seed, worker] + ([self.start_step] if self.start_step else [])
        rng = np.random.default_rng(key)
        while True:
            yield self.sample(rng)

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, str, torch.Tensor, list[str], torch.Tensor]:
        """(image, caption, region boxes, region captions, labels): ``labels`` (S x S uint8) are the
        world's class indices of the window's pixels, 255 where unknown (a single thing's ground)."""
        cfg, s, world = self.cfg, self.cfg.image_size, self.world
        style = "default"
        if cfg.style_share > 0 and rng.random() < cfg.style_share:
            style = str(rng.choice([x for x in world.styles if x != "default"]))
        seed = TRAIN_SEED_BASE + int(rng.integers(2**40))
        if rng.random() < cfg.object_share:
            name = str(rng.choice(world.things))
            image, mask, color = world.object_image(name, seed, s, style)
            labels = np.where(mask, world.classes.index(name), 255).astype(np.uint8)
            if rng.random() < 0.5:
                caption = _template_caption([name], rng, self.templates)
            else:
                caption = single_thing_caption(world, name, color, rng)
            boxes, region_captions = torch.full((cfg.regions, 4), -1, dtype=torch.long), [""] * cfg.regions
        else:
            size = int(s / rng.uniform(0.35, 1.0))
            scene = world.make_scene(seed, size=size, style=style)
            y0, x0 = (int(rng.integers(0, size - s + 1)) for _ in range(2))
            objects = [m for (c, m), a in zip(scene.instances, scene.attributes) if a]
            if objects and rng.random() < cfg.object_crop_share:
                ys, xs = np.nonzero(objects[int(rng.integers(len(objects)))])
                cy, cx = int(ys.mean()), int(xs.mean())
                y0 = int(np.clip(cy - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, size - s))
                x0 = int(np.clip(cx - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, size - s))
            present = scene.present_in(y0, x0, y0 + s, x0 + s)
            image = scene.image[y0 : y0 + s, x0 : x0 + s]
            labels = scene.labels[y0 : y0 + s, x0 : x0 + s]
            if present and rng.random() < cfg.template_share:
                caption = _template_caption(list(present), rng, self.templates)
            else:
                caption = world.caption(scene, present, rng)
            boxes, region_captions = self.regions(scene, y0, x0, rng)
        if cfg.augment > 0 and rng.random() < cfg.augment:
            image = augment(image, rng)
        return (torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), caption, boxes, region_captions,
                torch.from_numpy(np.ascontiguousarray(labels)))

    def regions(self, scene, y0: int, x0: int, rng: np.random.Generator) -> tuple[torch.Tensor, list[str]]:
        """Random sub-windows on the patch grid (in patches: y0, x0, y1, x1) and their captions."""
        cfg, patch = self.cfg, 8
        grid = cfg.image_size // patch
        boxes = torch.full((cfg.regions, 4), -1, dtype=torch.long)
        captions = [""] * cfg.regions
        for r in range(cfg.regions):
            h, w = (int(rng.integers(3, grid // 2 + 2)) for _ in range(2))
            by, bx = int(rng.integers(0, grid - h + 1)), int(rng.integers(0, grid - w + 1))
            box = (y0 + by * patch, x0 + bx * patch, y0 + (by + h) * patch, x0 + (bx + w) * patch)
            present = scene.present_in(*box)
            if not present:
                continue
            boxes[r] = torch.tensor([by, bx, by + h, bx + w])
            if rng.random() < cfg.template_share:
                captions[r] = _template_caption(list(present), rng, self.templates)
            else:
                captions[r] = self.world.caption(scene, present, rng)
        return boxes, captions


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random photometric change of an H x W x 3 uint8 image (pixels only, so captions stay
    true): noise, blur, haze, contrast, brightness, colour jitter or grey. Generic changes of the
    kinds real photos vary in, not ImageNet-C's own functions (those stay the test)."""
    from PIL import Image, ImageFilter

    x = image.astype(np.float32)
    kind = int(rng.integers(7))
    if kind == 0:
        x += rng.normal(0, rng.uniform(8, 40), size=x.shape)
    elif kind == 1:
        im = Image.fromarray(image).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 2.5))))
        x = np.asarray(im, dtype=np.float32)
    elif kind == 2:
        haze = rng.uniform(0.3, 0.7)
        x = (1 - haze) * x + haze * rng.uniform(170, 240)
    elif kind == 3:
        c = rng.uniform(0.3, 0.7)
        x = x.mean() + c * (x - x.mean())
    elif kind == 4:
        x = x * rng.uniform(0.4, 1.6)
    elif kind == 5:
        x = x * rng.uniform(0.6, 1.4, size=(1, 1, 3))
    else:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    return np.clip(x, 0, 255).astype(np.uint8)


def _region_weights(boxes: torch.Tensor, region_captions, grid: tuple[int, int]) -> tuple[torch.Tensor, list[str]]:
    """The box-mean weights of every captioned box (N x B*h*w; row i averages box i's patches)
    and the boxes' captions, in (image, region) order. Boxes with y0 < 0 carry no caption."""
    bsz, (gh, gw) = boxes.shape[0], grid
    rows, texts = [], []
    for b in range(bsz):
        for r in range(boxes.shape[1]):
            y0, x0, y1, x1 = boxes[b, r].tolist()
            if y0 < 0:
                continue
            cell = torch.zeros(bsz, gh, gw)
            cell[b, y0:y1, x0:x1] = 1.0 / ((y1 - y0) * (x1 - x0))
            rows.append(cell.reshape(-1))
            texts.append(region_captions[r][b])
    return (torch.stack(rows) if rows else torch.zeros(0, bsz * gh * gw)), texts


def _pool_regions(patches: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``patches`` (B x h x w x E) over each box of ``weights`` (from _region_weights).

    One matrix product rather than a slice per box: the backward of ~500 slices a step allocated
    a full B x h x w x E gradient each, which cost more than the model's own backward. The mean is
    taken in float32 and returned in the patches' dtype.
    """
    with torch.autocast(patches.device.type, enabled=False):
        pooled = weights @ patches.reshape(weights.shape[1], -1).float()
    return pooled.to(patches.dtype)


def _encode_with_regions(model, x: torch.Tensor, boxes: torch.Tensor, region_captions,
                         levels: list[int] = ()) -> tuple:
    """Image embeddings plus embeddings of captioned sub-windows pooled from patch features.

    The image embedding is open_clip's (average pooling: the mean of the projected final patch
    tokens). Each captioned region is embedded twice, as the mean over its patches of (a) the
    final tokens and (b) the last block's value path (v, out_proj), both through ln_post and proj.
    (b) stands in for what large CLIPs learn on their own and what the training-free heads
    (MaskCLIP, SCLIP, ClearCLIP, NACLIP) rely on: a value path whose patch features are aligned
    with text. ``levels``: intermediate blocks whose attention output (ln_1, q.k attention,
    out_proj; what MLMP reads) is pooled the same way, once per block.
    Returns (image embeddings, region embeddings, their captions, level embeddings, their captions,
    dense maps): ``dense maps`` are the value path's and then each level's projected patch features
    (B x h x w x E each), for the per-patch term.
    """
    visual = model.visual
    blocks = visual.transformer.resblocks
    grid = visual.grid_size
    tokens = visual._embeds(x)

    def dense(t: torch.Tensor) -> torch.Tensor:
        return (visual.ln_post(t[:, 1:]) @ visual.proj).reshape(x.shape[0], grid[0], grid[1], -1)

    weights, box_texts = _region_weights(boxes, region_captions, grid)
    level_emb, level_texts, level_maps = [], [], []
    for i, block in enumerate(blocks[:-1]):
        if i in levels:
            a = block.ls_1(block.attention(q_x=block.ln_1(tokens)))
            level_maps.append(dense(a))
            level_emb.append(_pool_regions(level_maps[-1], weights))
            level_texts += box_texts
            tokens = tokens + a
            tokens = tokens + block.ls_2(block.mlp(block.ln_2(tokens)))
        else:
            tokens = block(tokens)
    last = blocks[-1]
    final = last(tokens)
    attn = last.attn
    width = tokens.shape[-1]
    value = F.linear(last.ln_1(tokens), attn.in_proj_weight[2 * width :], attn.in_proj_bias[2 * width :])
    value = attn.out_proj(value)
    final_patches = dense(final)
    value_patches = dense(value)
    pooled = final_patches.mean(dim=(1, 2))
    region_emb, texts = [], []
    for patches in (final_patches, value_patches):
        region_emb.append(_pool_regions(patches, weights))
        texts += box_texts
    empty = pooled.new_zeros(0, pooled.shape[1])
    region = torch.cat(region_emb)
    level = torch.cat(level_emb) if level_emb else empty
    return pooled, region, texts, level, level_texts, [value_patches] + level_maps


def patch_targets(labels: torch.Tensor, num_classes: int, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each patch's class shares: (B*h*w x C) targets summing to 1 over its labelled pixels, and
    (B*h*w) weights, the labelled share of the patch (255 pixels are unknown, not a class)."""
    b, hh, ww = labels.shape
    gh, gw = hh // patch, ww // patch
    cells = labels[:, : gh * patch, : gw * patch].reshape(b, gh, patch, gw, patch).permute(0, 1, 3, 2, 4)
    cells = cells.reshape(b * gh * gw, patch * patch).long()
    cells = torch.where(cells == 255, torch.full_like(cells, num_classes), cells)
    counts = torch.zeros(cells.shape[0], num_classes + 1).scatter_add_(1, cells, torch.ones(cells.shape))
    known = counts[:, :num_classes].sum(dim=1)
    return counts[:, :num_classes] / known.clamp(min=1).unsqueeze(1), known / (patch * patch)


def dense_loss(maps: list[torch.Tensor], class_txt: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
               scale: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy of every patch's feature against all class-name embeddings, weighted by
    the patch's labelled share, averaged over the maps (value path, levels)."""
    keep = weights > 0
    if not bool(keep.any()):
        return class_txt.sum() * 0
    total = 0
    for m in maps:
        f = F.normalize(m.reshape(-1, m.shape[-1]).float()[keep], dim=-1)
        logp = F.log_softmax(scale * f @ class_txt.T, dim=1)
        total = total + (-(targets[keep] * logp).sum(dim=1) * weights[keep]).sum() / weights[keep].sum()
    return total / len(maps)


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, caption_index: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric loss with several embeddings per caption.

    ``img``: N normalised embeddings; ``txt``: U normalised embeddings of the distinct captions;
    ``caption_index[i]``: which caption embedding i belongs to. Image-to-text is a cross-entropy
    over the distinct captions; text-to-image spreads the target over all embeddings of a caption.
    """
    logits = scale * img @ txt.T
    i2t = F.cross_entropy(logits, caption_index)
    owner = F.one_hot(caption_index, txt.shape[0]).T.float()
    t2i = F.cross_entropy(logits.T, owner / owner.sum(dim=1, keepdim=True))
    return 0.5 * (i2t + t2i)


def _param_groups(model: torch.nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim < 2 or "embedding" in name or "logit_scale" in name or name.endswith("class_embedding"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@as_job("world train")
def train_tiny_clip(out: str | Path, cfg: TinyClipRecipe | None = None, progress: bool = True) -> dict:
    """Train from scratch and write a compact safetensors checkpoint plus a JSON log next to it."""
    from tqdm import tqdm

    from ..adaptation.mlmp import fused_layers
    from ..model.loading import compact_state_dict, create_architecture, open_clip_with_ovss_configs
    from ..text.templates import SEVEN, get_templates

    cfg = cfg or TinyClipRecipe()
    out = Path(out)
    torch.manual_seed(cfg.seed)
    open_clip = open_clip_with_ovss_configs()
    model = create_architecture(open_clip, MODEL_NAME)
    init_tokens: set[int] = set()
    if cfg.init:
        from ..model.loading import read_checkpoint

        state = read_checkpoint(cfg.init)
        model.load_state_dict(state, strict=True)
        # keep the rows the initial weights knew, so the shipped file still holds them
        init_tokens = set(torch.nonzero(state["token_embedding.weight"].abs().sum(dim=1)).flatten().tolist())
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    model.train()
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    templates = tuple(dict.fromkeys(get_templates("imagenet80") + SEVEN))
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    ckpt_path = out.with_suffix(".ckpt.pt")
    first_step, used_tokens, log, spent = 0, set(init_tokens), [], 0.0
    if ckpt_path.exists():
        # resume: the same recipe only (a checkpoint of another recipe is refused, not mixed in)
        ckpt = torch.load(ckpt_path, weights_only=True)
        if json.loads(ckpt["config"]) != asdict(cfg):
            raise OvssError(f"{ckpt_path} was written with another recipe; delete it or choose another out")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        first_step, spent = int(ckpt["step"]), float(ckpt["seconds"])
        used_tokens = set(ckpt["tokens"].tolist())
        log = json.loads(ckpt["log"])
    stream = PairStream(cfg, templates, start_step=first_step)
    loader = torch.utils.data.DataLoader(
        stream, batch_size=cfg.batch_size, num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0, prefetch_factor=4 if cfg.workers > 0 else None,
    )

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))

    levels = fused_layers(len(model.visual.transformer.resblocks), cfg.level_fraction)[:-1]
    start = time.time() - spent
    bar = tqdm(total=cfg.steps, initial=first_step, desc="train ovss-tiny", unit="step", disable=not progress)
    class_names = list(stream.world.classes)
    synonyms = stream.world.synonyms
    for step, (images, captions, boxes, region_captions, labels) in enumerate(loader, start=first_step):
        if step >= cfg.steps:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = (images.float() / 255.0 - mean) / std
        captions = list(captions)
        batch = len(captions)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            level_emb, level_texts, maps = None, [], []
            if cfg.regions:
                img, region_emb, region_texts, level_emb, level_texts, maps = _encode_with_regions(
                    model, x, boxes, region_captions, levels if cfg.level_weight else ())
                img = torch.cat([img, region_emb])
                captions = captions + region_texts
            else:
                img = model.encode_image(x)
            distinct = list(dict.fromkeys(captions))
            tokens = tokenizer(distinct)
            txt = model.encode_text(tokens)
            if cfg.dense_weight and maps:
                # every class once, under a random name (its own or a synonym) and template
                pick = np.random.default_rng([cfg.seed, step, 7])
                names = [str(pick.choice([n, *synonyms.get(n, ())])) for n in class_names]
                class_tokens = tokenizer([str(pick.choice(templates)).format(n) for n in names])
                class_txt = model.encode_text(class_tokens)
        used_tokens.update(torch.unique(tokens).tolist())
        img, txt = F.normalize(img.float(), dim=-1), F.normalize(txt.float(), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        position = {c: i for i, c in enumerate(distinct)}
        caption_index = torch.tensor([position[c] for c in captions])
        loss = contrastive_loss(img, txt, caption_index, scale)
        if level_texts:
            # level captions are region captions: their text embeddings are computed already
            level_distinct = list(dict.fromkeys(level_texts))
            level_txt = txt[torch.tensor([position[c] for c in level_distinct])]
            level_position = {c: i for i, c in enumerate(level_distinct)}
            level_index = torch.tensor([level_position[c] for c in level_texts])
            level_loss = contrastive_loss(F.normalize(level_emb.float(), dim=-1), level_txt, level_index, scale)
            loss = loss + cfg.level_weight * level_loss
        if cfg.dense_weight and maps:
            used_tokens.update(torch.unique(class_tokens).tolist())
            targets, weights = patch_targets(labels, len(class_names), x.shape[-1] // model.visual.grid_size[1])
            loss = loss + cfg.dense_weight * dense_loss(maps, F.normalize(class_txt.float(), dim=-1),
                                                        targets, weights, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == cfg.steps - 1:
            with torch.no_grad():
                acc = ((img[:batch] @ txt.T).argmax(dim=1) == caption_index[:batch]).float().mean().item()
            log.append({"step": step, "loss": round(loss.item(), 4), "batch_acc": round(acc, 3),
                        "logit_scale": round(scale.item(), 2), "seconds": round(time.time() - start, 1)})
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step + 1,
                     "seconds": time.time() - start, "tokens": torch.tensor(sorted(used_tokens)),
                     "log": json.dumps(log), "config": json.dumps(asdict(cfg))}
            atomic_write(ckpt_path, lambda tmp: torch.save(state, tmp))
        bar.update(1)
    bar.close()
    model.eval()
    state = compact_state_dict(model, torch.tensor(sorted(used_tokens)))
    save_safetensors(out, state, metadata={"model": MODEL_NAME, "config": json.dumps(asdict(cfg))})
    summary = {"model": MODEL_NAME, "config": asdict(cfg), "seconds": round(time.time() - start, 1),
               "tokens_seen": len(used_tokens), "log": log}
    write_json(out.with_suffix(".train.json"), summary)
    if ckpt_path.exists():
        ckpt_path.unlink()  # the run is complete: its resumable state is no longer needed
    return summary
