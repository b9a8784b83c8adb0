"""Prompt tuning in stages (OpenDAS): SGD, a constant warm-up epoch then cosine, resumable.

Each stage trains one side's prompts while the other side is fixed, so the fixed side is encoded
once per stage (all segment images in a text stage, all names in a visual stage). The batch order
of every epoch is drawn from (seed, stage, epoch), so a run resumed from a checkpoint, even one
written mid-epoch, takes exactly the steps the uninterrupted run would have taken. The CLIP's own
weights are frozen for the whole run and never change.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..errors import OvssError
from ..files import save_safetensors
from ..ovsnet.proxy import proxy_loss
from .evaluate import base_indices, encode_segments
from .losses import MARGIN, hardest_negatives, ramp, triplet_loss
from .methods import Method, Stage
from .prompts import PromptLearner
from .segments import SegmentSet

CHECKPOINT = "checkpoint.safetensors"


@dataclass
class PromptTrainConfig:
    """OpenDAS's settings (sec. 5, implementation details) as defaults."""

    epochs: int = 5  # per stage
    batch_size: int = 16
    lr: float = 0.0025
    warmup_epochs: int = 1  # at warmup_lr, then cosine from lr
    warmup_lr: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 5e-4
    triplet_weight: float = 5.0  # lambda, ramped up from 0 over the text stage
    margin: float = MARGIN
    seed: int = 0
    checkpoint_every: int = 50  # steps; a checkpoint is also written after every epoch
    proxy_weight: float = 0.0  # OVSNet's Proxy Calibration (the OVSNet/OpenBench paper) added to both stages; 0: off
    proxy_gamma: float = 2.0  # its Beta(gamma, gamma)

    def check(self) -> "PromptTrainConfig":
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise OvssError(f"{name} must be at least 1, got {getattr(self, name)}", param=name)
        if self.lr <= 0:
            raise OvssError(f"lr must be positive, got {self.lr}", param="lr")
        if self.warmup_lr < 0:
            raise OvssError(f"warmup_lr must not be negative, got {self.warmup_lr}", param="warmup_lr")
        if self.triplet_weight < 0:
            raise OvssError(f"triplet_weight must not be negative, got {self.triplet_weight}", param="triplet_weight")
        if self.margin < 0:
            raise OvssError(f"margin must not be negative, got {self.margin}", param="margin")
        if self.proxy_weight < 0:
            raise OvssError(f"proxy_weight must not be negative, got {self.proxy_weight}", param="proxy_weight")
        if self.proxy_gamma <= 0:
            raise OvssError(f"proxy_gamma must be positive, got {self.proxy_gamma}", param="proxy_gamma")
        return self


def learning_rate(step: int, steps_per_epoch: int, cfg: PromptTrainConfig) -> float:
    """Constant ``warmup_lr`` for the warm-up epochs, then cosine from ``lr`` towards 0."""
    total = cfg.epochs * steps_per_epoch
    warm = min(cfg.warmup_epochs, cfg.epochs - 1) * steps_per_epoch
    if step < warm:
        return cfg.warmup_lr
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@contextmanager
def frozen(module: torch.nn.Module):
    """No gradient for any weight of ``module`` inside the block; the flags are restored after."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def epoch_order(n: int, seed: int, stage: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + stage * 1009 + epoch)
    return torch.randperm(n, generator=g)


def _fingerprint(method: Method, learner: PromptLearner, cfg: PromptTrainConfig, base, negatives, segments: SegmentSet) -> dict:
    cfg_d = {k: v for k, v in asdict(cfg).items() if k != "checkpoint_every"}
    data = hashlib.sha256(segments.labels.numpy().tobytes() + segments.image_index.numpy().tobytes()).hexdigest()[:16]
    m = learner.model
    return {"method": method.name, "shape": learner.shape(), "config": cfg_d, "base": list(base),
            "negatives": list(negatives), "segments": data, "model": [m.name, m.pretrained]}


def save_checkpoint(path: Path, learner: PromptLearner, optimizer: torch.optim.Optimizer | None, state: dict) -> None:
    """Prompts, SGD momentum and the trainer's position in one safetensors file, written atomically."""

    tensors = {f"prompt.{k}": v.detach().float().cpu().contiguous() for k, v in learner.state_dict().items()}
    if optimizer is not None:
        names = {id(p): k for k, p in learner.named_parameters()}
        for group in optimizer.param_groups:
            for p in group["params"]:
                buf = optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    tensors[f"momentum.{names[id(p)]}"] = buf.detach().float().cpu().contiguous()
    if not tensors:
        tensors = {"empty": torch.zeros(0)}
    save_safetensors(path, tensors, metadata={"state": json.dumps(state)})


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(tensors, state) of a checkpoint written by ``save_checkpoint``."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            state = json.loads((f.metadata() or {})["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise OvssError(f"cannot read checkpoint {path} ({e.__class__.__name__}); delete it to start the run again") from None
    return tensors, state


def train_prompts(model, method: Method, segments: SegmentSet, base: Sequence[str], negatives: Sequence[str] = (),
                  out: str | Path | None = None, cfg: PromptTrainConfig | None = None, progress: bool = True,
                  log: Callable[[str], None] | None = None, stop_after: int | None = None) -> tuple[PromptLearner, dict]:
    """Learn ``method``'s prompts on the ``base``-class segments of ``segments``.

    Returns (learner, state); ``state["done"]`` is False when ``stop_after`` steps ran out first. With
    ``out``, checkpoints go to ``out/checkpoint.safetensors`` and a rerun resumes from them.
    """
    cfg = (cfg or PromptTrainConfig()).check()
    log = log or (lambda line: tqdm.write(line))
    base = list(base)
    if len(set(base)) != len(base):
        raise OvssError("a base class is listed twice; list each once")
    class_ids = base_indices(segments.class_names, base)
    train = segments.subset(torch.isin(segments.labels, torch.tensor(class_ids)))
    if len(train) == 0:
        raise OvssError("no training segments of the base classes; check the base-classes file and the data split")
    space_of_class = {c: i for i, c in enumerate(class_ids)}
    y_all = torch.tensor([space_of_class[int(c)] for c in train.labels], dtype=torch.long)
    negatives = [n for n in negatives if n.lower() not in {b.lower() for b in base}]

    torch.manual_seed(cfg.seed)
    learner = PromptLearner(model, method.visual_k, method.visual_depth, method.text_k, method.text_depth, seed=cfg.seed)
    learner.to(model.device)
    fingerprint = _fingerprint(method, learner, cfg, base, negatives, train)
    state = {"stage": 0, "step": 0, "fingerprint": fingerprint, "log": [], "running": {}}
    ckpt = Path(out) / CHECKPOINT if out is not None else None
    tensors = {}
    if ckpt is not None and ckpt.is_file():
        tensors, state = read_checkpoint(ckpt)
        if state.get("fingerprint") != fingerprint:
            diff = [k for k in fingerprint if state.get("fingerprint", {}).get(k) != fingerprint[k]]
            raise OvssError(f"{ckpt} belongs to a run with other settings ({', '.join(diff) or 'format'}); "
                            "write to another out folder or delete the checkpoint to start again", param="out")
        learner.load_state_dict({k[len("prompt."):]: v for k, v in tensors.items() if k.startswith("prompt.")})
        if state["stage"] < len(method.stages):
            log(f"resuming at stage {state['stage'] + 1}, step {state['step']} (from {ckpt})")

    budget = [stop_after]
    with frozen(model.clip):
        for s, stage in enumerate(method.stages):
            if s < state["stage"]:
                continue
            done = _run_stage(learner, stage, s, len(method.stages), train, y_all, base, negatives, cfg, state,
                              tensors, ckpt, progress, log, budget)
            tensors = {}
            if not done:
                return learner, {**state, "done": False}
    state["done"] = True
    return learner, state


def _run_stage(learner: PromptLearner, stage: Stage, s: int, n_stages: int, train: SegmentSet, y_all: torch.Tensor,
               base: list[str], negatives: list[str], cfg: PromptTrainConfig, state: dict, tensors: dict,
               ckpt: Path | None, progress: bool, log, budget: list) -> bool:
    """Run (the rest of) stage ``s``; False when the step budget ran out before its end."""
    m = learner.model
    device = m.device
    names = base + (negatives if stage.negatives else [])
    if len(names) < 2:
        raise OvssError("the label space needs at least two names; give more base classes or negative queries")
    params = learner.visual if stage.part == "visual" else learner.text
    if len(params) == 0:
        raise OvssError(f"stage {s + 1} trains {stage.part} prompts but the method has none; set their K above 0")
    for p in learner.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    with torch.no_grad():  # the side this stage does not train is encoded once
        if stage.part == "visual":
            fixed_text = learner.encode_names(names).to(device)
        else:
            fixed_images = encode_segments(learner, train, progress=progress, desc="encode segments").to(device)
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    names_of = {id(p): k for k, p in learner.named_parameters()}
    for p in params:
        buf = tensors.get(f"momentum.{names_of[id(p)]}")
        if buf is not None:
            optimizer.state[p]["momentum_buffer"] = buf.to(device=p.device, dtype=p.dtype).clone()
    scale = learner.logit_scale()
    n = len(train)
    per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * per_epoch
    y_all = y_all.to(device)
    run = state.get("running") or {}
    t0 = time.perf_counter() - run.get("seconds", 0.0)
    bar = tqdm(total=total, initial=state["step"], desc=f"stage {s + 1}/{n_stages} ({stage.part})", unit="step",
               disable=not progress, leave=False)
    step = state["step"]
    while step < total:
        if budget[0] is not None and budget[0] <= 0:  # out of steps for this call: keep the place
            if ckpt is not None:
                save_checkpoint(ckpt, learner, optimizer, state)
            bar.close()
            return False
        epoch, k = divmod(step, per_epoch)
        index = epoch_order(n, cfg.seed, s, epoch)[k * cfg.batch_size:(k + 1) * cfg.batch_size]
        lr = learning_rate(step, per_epoch, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        y = y_all[index.to(device)]
        if stage.part == "visual":
            img = learner.encode_images(train.batch(index, m).to(device))
            txt = fixed_text
        else:
            img = fixed_images[index.to(device)]
            txt = learner.encode_names(names)
        logits = scale * img @ txt.T
        ce = F.cross_entropy(logits, y)
        loss, trip, lam = ce, torch.zeros(()), 0.0
        if stage.triplet:
            lam = ramp(step, total, cfg.triplet_weight)
            neg = hardest_negatives(img.detach(), txt.detach(), y)
            trip = triplet_loss(img, txt[y], txt[neg], cfg.margin)
            loss = ce + lam * trip
        if cfg.proxy_weight:
            # mixed segment embeddings supervised by the same mix of their classes' texts; the draws
            # depend on (seed, stage, step) only, so a resumed run makes the same ones
            rng = np.random.default_rng([cfg.seed, s, step])
            loss = loss + cfg.proxy_weight * proxy_loss(img, txt[y], y.cpu(), cfg.proxy_gamma, rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        loss_value = float(loss.detach())
        for key, value in (("loss", loss_value * len(y)), ("ce", float(ce.detach()) * len(y)),
                           ("triplet", float(trip.detach()) * len(y)),
                           ("correct", int((logits.detach().argmax(1) == y).sum())), ("n", len(y))):
            run[key] = run.get(key, 0) + value
        run.setdefault("lr", lr)  # the rate of the epoch's first step
        bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2g}")
        end_of_epoch = step % per_epoch == 0
        if end_of_epoch:
            seconds = time.perf_counter() - t0
            entry = {"stage": s + 1, "part": stage.part, "epoch": epoch + 1, "loss": run["loss"] / run["n"],
                     "ce": run["ce"] / run["n"], "triplet": run["triplet"] / run["n"],
                     "acc": 100.0 * run["correct"] / run["n"], "lr": run["lr"], "lambda": lam, "seconds": seconds}
            state["log"].append(entry)
            log(f"stage {s + 1}/{n_stages} ({stage.part}) epoch {epoch + 1}/{cfg.epochs}: loss {entry['loss']:.4f} "
                f"(ce {entry['ce']:.4f}, triplet {entry['triplet']:.4f}, lambda {lam:.2f}), train acc {entry['acc']:.1f}%, "
                f"lr {entry['lr']:.2g}, {seconds:.1f} s")
            run, t0 = {}, time.perf_counter()
        state["step"], state["running"] = step, {**run, "seconds": time.perf_counter() - t0} if run else {}
        if budget[0] is not None:
            budget[0] -= 1
        if ckpt is not None and (end_of_epoch or step % cfg.checkpoint_every == 0):
            if step == total:
                state["stage"], state["step"], state["running"] = s + 1, 0, {}
            save_checkpoint(ckpt, learner, None if step == total else optimizer, state)
    bar.close()
    state["stage"], state["step"], state["running"] = s + 1, 0, {}
    for p in params:
        p.requires_grad_(False)
    return True
