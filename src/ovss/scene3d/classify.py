"""Name every instance mask of a scene with any class list, with or without adapted prompts.

Text side: with text prompts (OpenDAS, CoOp) each name is read through the learned context;
without (no adaptation, VPT) each name is put in the templates (default "a photo of a {}.", the
text OpenDAS's visual prompts learn against). A class scores the best of its synonyms; the label is
the best class and its score the softmax probability (OpenMask3D scores every mask 1.0, which
``score="ones"`` reproduces; AP then ranks ties by nothing and rewards calibrated scores less).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import OvssError
from ..text import ClassList
from .features import FeatureConfig, mask_features
from .projection import Visibility, compute_visibility
from .scene import Scene3D, read_masks, read_meta3d, read_scene
from ..outputs import as_job

SCORES = ("softmax", "ones")
FORMAT = "ovss-3d-instances"


@torch.no_grad()
def class_embeddings(learner, classes: ClassList, templates: str = "single") -> torch.Tensor:
    """Normalised embeddings, one per query (synonym)."""
    if learner.text_depth:
        return learner.encode_names(classes.queries).cpu()
    return learner.text_encoder.encode_classes(classes, templates).float().cpu()


def classify_features(features: torch.Tensor, text: torch.Tensor, query_to_class: list[int], num_classes: int,
                      scale: float) -> torch.Tensor:
    """M x C class probabilities: softmax over classes of ``scale`` x the best synonym's cosine."""
    sims = features @ text.T
    index = torch.tensor(query_to_class)
    best = torch.full((features.shape[0], num_classes), -torch.inf)
    best = best.scatter_reduce(1, index.expand(features.shape[0], -1), sims, reduce="amax")
    return torch.softmax(scale * best, dim=1)


def file_digest(path: str | os.PathLike) -> str:
    """First 16 hex digits of a file's SHA-256, so results name exactly which masks they label."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def read_inputs(scene_dir: str | os.PathLike, masks_path: str | os.PathLike) -> tuple[Scene3D, np.ndarray, list[int]]:
    """(scene, N x M masks, mask ids), checked: cheap, so bad input is refused before any model loads."""
    scene = read_scene(scene_dir)
    masks, mask_ids = read_masks(masks_path, len(scene.points))
    if masks.shape[1] == 0:
        raise OvssError(f"{masks_path} holds no instance masks; pass masks with at least one instance")
    return scene, masks, mask_ids


def classify_scene(scene_dir: str | os.PathLike, masks_path: str | os.PathLike, classes: ClassList, learner,
                   cfg: FeatureConfig | None = None, templates: str = "single", score: str = "softmax",
                   prompts: dict | None = None, progress=None,
                   inputs: tuple | None = None) -> tuple[dict, Scene3D, np.ndarray, Visibility]:
    """(result, scene, masks, visibility): result holds every setting and, per mask, its label,
    score, top-5 classes, views and crop count. ``inputs`` is ``read_inputs``'s answer, if already read."""
    if score not in SCORES:
        raise OvssError(f"unknown score {score!r}; choose one of: {', '.join(SCORES)}")
    cfg = (cfg or FeatureConfig()).check()
    scene, masks, mask_ids = inputs or read_inputs(scene_dir, masks_path)
    text = class_embeddings(learner, classes, templates)
    visibility = compute_visibility(scene, masks, cfg.vis_threshold, progress)
    features, info = mask_features(scene, masks, learner, cfg, visibility)
    with torch.no_grad():
        probs = classify_features(features, text, classes.query_to_class, len(classes), learner.logit_scale())
    names = classes.names
    instances = []
    for m in range(masks.shape[1]):
        seen = info[m]["crops"] > 0
        top = torch.topk(probs[m], min(5, len(names)))
        instances.append({
            "mask": m, "id": int(mask_ids[m]), "points": int(masks[:, m].sum()),
            "label": names[int(top.indices[0])] if seen else None,
            "class_index": int(top.indices[0]) if seen else -1,
            "score": (float(top.values[0]) if score == "softmax" else 1.0) if seen else 0.0,
            "top5": [[names[int(i)], float(v)] for v, i in zip(top.values, top.indices)] if seen else [],
            **info[m],
        })
    model = learner.model
    result = {
        "format": FORMAT, "scene": str(Path(scene_dir)), "masks": str(Path(masks_path)), "masks_sha256": file_digest(masks_path),
        "classes": [list(s) for s in classes.synonyms], "templates": None if learner.text_depth else templates,
        "score": score, "prompts": prompts, "features": cfg.describe(),
        "model": {"name": model.name, "pretrained": model.pretrained},
        "frames": len(scene), "points": int(len(scene.points)), "depth_scale": scene.depth_scale,
        "instances": instances,
    }
    return result, scene, masks, visibility


def load_learner(prompts: str | os.PathLike | None = None, model: str | None = None, pretrained: str | None = None,
                 device: str = "cpu", world: str | None = None):
    """(learner, prompts description): the prompts file's learner on the model it was learned on
    (unless ``model`` names another), or a learner without prompts (no adaptation): on a room of
    ``world``, by default the embedded weights trained on that world."""
    from ..opendas import PromptLearner, load_prompts, read_sidecar
    from ..model import embedded_tag_for, load_model

    if not prompts and model is None and pretrained is None:
        pretrained = embedded_tag_for(world)

    info = None
    if prompts:
        side = read_sidecar(prompts)
        recorded = side.get("model", {})
        if model is None:
            model, pretrained = recorded.get("name"), pretrained or recorded.get("pretrained")
        info = {"file": str(Path(prompts)), "method": side.get("method"), "base_classes": side.get("base_classes")}
    torch.manual_seed(0)  # random weights (--pretrained none) are then the ones the prompts were learned on
    clip = load_model(model, pretrained, device=device)
    learner = load_prompts(prompts, clip) if prompts else PromptLearner.unprompted(clip)
    for p in learner.parameters():
        p.requires_grad_(False)
    if info is not None:
        info["params"] = learner.num_parameters()
    return learner, info


def scene_classes(scene_dir: str | os.PathLike, classes: str | None, classes_file: str | None) -> ClassList:
    """--classes / --classes-file, else the classes a ShapesWorld-3D or ShapesWorld 2 room records,
    with its own world's synonyms (the two worlds share names such as "house" but not synonyms)."""
    from ..text import parse_classes

    if classes is None and classes_file is None:
        meta = read_meta3d(scene_dir)
        recorded = meta.get("classes")
        if not recorded:
            raise OvssError(f"{scene_dir} records no class names; pass classes=\"chair, table\" or a class file",
                              param="classes")
        from ..world.worlds import get_world

        synonyms = get_world(meta.get("world", "shapesworld")).synonyms
        return parse_classes([[c, *synonyms.get(c, ())] for c in recorded])
    return parse_classes(classes, classes_file)


@as_job("3d classify")
def classify_to_folder(scene_dir: str | os.PathLike, out: str | os.PathLike, masks: str | os.PathLike | None = None,
                       classes: str | None = None, classes_file: str | None = None, prompts: str | None = None,
                       model: str | None = None, pretrained: str | None = None, device: str = "cpu",
                       cfg: FeatureConfig | None = None, templates: str = "single", score: str = "softmax",
                       views: int = 3, progress=None) -> dict:
    """``ovss 3d classify``: check the inputs, classify every mask, write the outputs; returns the result."""
    from .outputs import check_out_dir, write_outputs

    check_out_dir(out)
    if masks is None:
        masks = Path(scene_dir) / "instance_ids.npy"
        if not masks.is_file():
            raise OvssError(f"no masks given and {masks} does not exist; pass masks=FILE (an N x M array or point ids)",
                              param="masks")
    if views < 0:
        raise OvssError(f"views must be 0 or more, got {views}", param="views")
    if score not in SCORES:
        raise OvssError(f"unknown score {score!r}; choose one of: {', '.join(SCORES)}")
    cfg = (cfg or FeatureConfig()).check()
    class_list = scene_classes(scene_dir, classes, classes_file)
    inputs = read_inputs(scene_dir, masks)
    room = read_meta3d(scene_dir)
    world = room.get("world", "shapesworld") if room.get("classes") else None  # a ShapesWorld room's world
    learner, info = load_learner(prompts, model, pretrained, device, world)
    result, scene, mask_array, visibility = classify_scene(scene_dir, masks, class_list, learner, cfg, templates, score,
                                                           info, progress, inputs)
    write_outputs(out, result, scene, mask_array, visibility, views)
    return result
