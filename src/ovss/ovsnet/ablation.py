"""The OVSNet paper's ablation (Table 3) on ShapesWorld: baseline, +GFA, +PC, both, from one call.

Data (made in ``data_dir`` when missing): a ShapesWorld train split, whose novel classes are not
scored (the model sees only the base classes), a val split with all classes (like ADE-150: close
to training), and an open split built from val by the OpenBench builder (base classes are merged
into "others", only images with novel classes kept: like OpenBench). The frozen CLIP's features
are computed once and shared by the four variants, which train with the same seed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import IGNORE_INDEX, SegDataset
from ..errors import OvssError
from ..files import save_safetensors, write_json, write_text
from ..text import ClassList
from .decoder import OVSNetConfig
from .train import EncodedSet, TrainSettings, encode_dataset, evaluate, train_ovsnet
from ..outputs import as_job
from ..world.export import export_base_classes

# variant name -> switches
VARIANTS: dict[str, dict] = {
    "baseline": {"gfa": False, "pc": False},
    "gfa": {"gfa": True, "pc": False},
    "pc": {"gfa": False, "pc": True},
    "both": {"gfa": True, "pc": True},
}
TITLES = {"baseline": "Baseline", "gfa": "+ GFA", "pc": "+ PC", "both": "+ Both"}


def prepare_data(data_dir: str | Path, n_train: int, n_val: int, seed: int, sigma1: float, sigma2: float,
                 similarity, progress: bool = True, world: str = "shapesworld",
                 benchmark: str | None = None) -> dict[str, Path]:
    """ShapesWorld train / val exports and the open split built from val (made once, then reused).

    ``world="shapesworld2"``: ShapesWorld 2 exports with ``benchmark``'s class list; the open split
    is measured against the export's own base classes."""
    from ..openbench import build_openbench
    from ..openbench.stats import VOCABULARIES
    from ..world import write_dataset

    data_dir = Path(data_dir)
    kw = {"world": world, "benchmark": benchmark} if world != "shapesworld" else {}
    train = write_dataset(data_dir / "train", n_train, seed=seed, split="train", progress=progress, **kw)
    val = write_dataset(data_dir / "val", n_val, seed=seed, split="val", progress=progress, **kw)
    open_dir = data_dir / "open"
    wanted = {"sigma1": sigma1, "sigma2": sigma2, "source_images": n_val}
    if world != "shapesworld":
        wanted.update(world=world, benchmark=benchmark)
    meta_path = open_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if (open_dir / "val.txt").is_file() and meta.get("ablation") == wanted:
        return {"train": train, "val": val, "open": open_dir}
    source = SegDataset("shapesworld", val, "val")
    base = export_base_classes(train)
    vocabulary = ([list(c) for c in source.classes if c[0] in base] if base is not None
                  else VOCABULARIES["shapesworld-base"]())
    summary = build_openbench([source], vocabulary, similarity, sigma1, sigma2, open_dir,
                              others_names=True, source_labels=["sw"], progress=progress)
    write_json(meta_path, {**summary, "ablation": wanted})
    return {"train": train, "val": val, "open": open_dir}


def _text(segmenter, classes: ClassList) -> torch.Tensor:
    return segmenter.class_embeddings(classes).float()


def _seen(classes: ClassList, train_names: set[str]) -> torch.Tensor:
    return torch.tensor([any(n.lower() in train_names for n in syn) for syn in classes.synonyms])


def time_inference(model, segmenter, images: list[np.ndarray], text, classes: ClassList, seen, clip_scale,
                   gfa_modes: tuple[bool, ...], repeats: int = 3) -> dict[bool, float]:
    """Seconds per image for CLIP features + decoder + classification, per GFA mode.

    The modes run back to back on each image, in alternating order, and the best pass of each is
    kept, so that a busy machine slows both alike.
    """
    from .train import dense_features

    q2c = torch.tensor(classes.query_to_class)
    best = {m: float("inf") for m in gfa_modes}
    for r in range(repeats):
        total = dict.fromkeys(gfa_modes, 0.0)
        for i, image in enumerate(images):
            for mode in gfa_modes if (r + i) % 2 == 0 else gfa_modes[::-1]:
                t0 = time.perf_counter()
                feats = dense_features(segmenter, image)[None]
                model.semantic(feats, text, q2c, len(classes), seen, clip_scale, image.shape[:2], mode)
                total[mode] += time.perf_counter() - t0
        best = {m: min(best[m], total[m] / len(images)) for m in gfa_modes}
    return best


def time_gfa_op(cfg: OVSNetConfig, embed_dim: int, calls: int = 200) -> float:
    """Seconds of one image's aggregation alone (N queries x E), averaged over ``calls``."""
    from .gfa import gfa

    g = torch.Generator().manual_seed(0)
    f_q, f_c = (F.normalize(torch.randn(1, cfg.queries, embed_dim, generator=g), dim=-1) for _ in range(2))
    with torch.no_grad():
        gfa(f_q, f_c, cfg.w, cfg.lam)
        t0 = time.perf_counter()
        for _ in range(calls):
            gfa(f_q, f_c, cfg.w, cfg.lam)
    return (time.perf_counter() - t0) / calls


def _describe(ds: SegDataset) -> str:
    return f"{ds.spec.name}:{ds.root}:{ds.split}"


@as_job("ovsnet ablation")
def run_ablation(segmenter, data: dict[str, Path | SegDataset], out: str | Path, variants=tuple(VARIANTS),
                 config: OVSNetConfig = OVSNetConfig(), settings: TrainSettings = TrainSettings(), device: str = "cpu",
                 progress: bool = True, seen: list[str] | None = None) -> dict:
    """Train and evaluate each variant (a finished one with the same settings is read back); returns the results.

    ``data``: "train", "val" (close to training) and "open" (an open split), each a ShapesWorld
    folder from ``prepare_data`` or any ``SegDataset`` (a real training set, ADE20K, an OpenBench
    build). ``seen``: the training classes the decoder learns; default: ShapesWorld's base classes
    for ShapesWorld training data, else every class of the training set.
    """

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise OvssError(f"unknown variant '{unknown[0]}'; choose from: {', '.join(VARIANTS)}")
    out = Path(out)
    sets = {k: data[k] if isinstance(data[k], SegDataset) else SegDataset("shapesworld", data[k], k if k != "open" else "val")
            for k in ("train", "val", "open")}
    world_classes = ClassList(tuple(tuple(c) for c in sets["train"].classes))
    if seen is None and sets["train"].spec.name == "shapesworld":
        from ..world import BASE_CLASSES

        seen = export_base_classes(sets["train"].root)
        seen = list(BASE_CLASSES) if seen is None else seen
    seen_set = {n.lower() for n in seen} if seen is not None else None
    base = [i for i, c in enumerate(world_classes.synonyms) if seen_set is None or c[0].lower() in seen_set]
    if not base:
        raise OvssError("none of the seen classes is a class of the training set; check the class names")
    train_classes = ClassList(tuple(world_classes.synonyms[i] for i in base))
    label_map = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    label_map[base] = np.arange(len(base))
    train_names = {n.lower() for syn in train_classes.synonyms for n in syn}
    eval_classes = {k: ClassList(tuple(tuple(c) for c in sets[k].classes)) for k in ("val", "open")}
    scale = getattr(segmenter.model.clip, "logit_scale", None)
    clip_scale = min(float(scale.detach().exp()), 100.0) if scale is not None else 100.0

    encoded: dict[str, EncodedSet] = {}
    results: dict[str, dict] = {}
    for name in variants:
        cfg = OVSNetConfig(**{**config.as_dict(), **VARIANTS[name]})
        wanted = {"config": cfg.as_dict(), "train": vars(settings), "data": {k: _describe(v) for k, v in sets.items()},
                  "model": segmenter.model.describe(), "preset": segmenter.preset.name}
        path = out / f"{name}.json"
        if path.is_file():
            old = json.loads(path.read_text())
            if old.get("settings") == json.loads(json.dumps(wanted)):
                results[name] = old
                continue
        for k in ("train", "val", "open"):
            if k not in encoded:
                encoded[k] = encode_dataset(segmenter, sets[k], progress, desc=f"CLIP features ({k})")
        q2c = torch.tensor(train_classes.query_to_class)
        model, train_log = train_ovsnet(encoded["train"], label_map, _text(segmenter, train_classes), q2c,
                                        len(train_classes), cfg, settings, device, progress, desc=f"OVSNet {name}")
        metrics = {}
        for k in ("val", "open"):
            classes = eval_classes[k]
            text = _text(segmenter, classes)
            metrics[k] = evaluate(model, encoded[k], classes, text, _seen(classes, train_names), clip_scale, device=device)
        val_iou = metrics["val"]["IoU"]
        metrics["val"]["mIoU_seen"] = _mean([v for c, v in val_iou.items() if c.lower() in train_names])
        metrics["val"]["mIoU_unseen"] = _mean([v for c, v in val_iou.items() if c.lower() not in train_names])
        images = [sets["val"][i]["image"] for i in range(min(8, len(sets["val"])))]
        classes = eval_classes["val"]
        text, seen = _text(segmenter, classes), _seen(classes, train_names)
        # a GFA model is also timed with the aggregation skipped: GFA's own cost on the same weights
        times = time_inference(model, segmenter, images, text, classes, seen, clip_scale, (cfg.gfa, False) if cfg.gfa else (False,))
        timing = {"train_seconds": train_log["seconds"], "infer_s_per_image": times[cfg.gfa]}
        if cfg.gfa:
            timing["infer_s_per_image_without_gfa"] = times[False]
            timing["gfa_op_s_per_image"] = time_gfa_op(cfg, encoded["val"].features.shape[-1])
        results[name] = {"variant": name, "metrics": metrics, "timing": timing, "log": train_log["log"], "settings": wanted}
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_safetensors(out / f"{name}.safetensors", state)
        write_json(path, results[name])
    table = ablation_table(results)
    write_text(out / "ablation.md", table)
    return results


def _mean(values) -> float:
    values = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def ablation_table(results: dict[str, dict]) -> str:
    """The OVSNet paper's Table 3 on ShapesWorld, with differences to the baseline and timings."""
    lines = ["| Method | Val mIoU (all) | Val mIoU (unseen) | Open split mIoU | Train s | Infer ms/img |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    base = results.get("baseline")

    def cell(r, get):
        v = get(r)
        if base is None or r is base:
            return f"{v:.1f}"
        d = v - get(base)
        return f"{v:.1f} ({'+' if d >= 0 else ''}{d:.1f})"

    for name in VARIANTS:
        if name not in results:
            continue
        r = results[name]
        lines.append(f"| {TITLES[name]} | {cell(r, lambda x: x['metrics']['val']['mIoU'])} | "
                     f"{cell(r, lambda x: x['metrics']['val']['mIoU_unseen'])} | {cell(r, lambda x: x['metrics']['open']['mIoU'])} | "
                     f"{r['timing']['train_seconds']:.0f} | {1000 * r['timing']['infer_s_per_image']:.1f} |")
    notes = []
    for name in ("gfa", "both"):
        t = results.get(name, {}).get("timing", {})
        if "infer_s_per_image_without_gfa" in t:
            extra = t["infer_s_per_image"] / t["infer_s_per_image_without_gfa"] - 1
            op = t.get("gfa_op_s_per_image", float("nan")) / t["infer_s_per_image_without_gfa"]
            notes.append(f"GFA adds {100 * extra:+.1f} % to inference time ({TITLES[name]}, same model with and without it; "
                         f"the aggregation alone is {100 * op:.2f} % of an image's time).")
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")
