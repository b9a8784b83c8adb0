"""What ``ovss 3d classify`` leaves in its output folder, and how ``ovss 3d eval`` reads it back.

    OUT/instances.json   every setting and, per mask, label, score, top-5, views (``classify_scene``)
    OUT/labelled.ply     the scene's points coloured by their instance's label (grey: no label)
    OUT/views/{i}.png    the frames that see most labelled instances, with boxes and labels

A folder holding files that ovss did not write is refused before any work, never written over.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import OvssError
from ..files import save_image, write_json
from ..outputs import file_job, job_of, written_by_ovss
from ..ply import write_ply
from ..viz import palette
from .classify import FORMAT
from .metrics import Matches, match_scene, summarize_ap
from .projection import view_box
from .scene import META_FILE, read_masks, read_meta3d

RESULT = "instances.json"
KIND = "3d classify"  # the job kind its files are tagged with (as the command line runs it)
OUTPUTS = (RESULT, "labelled.ply", "views")
GREY = (128, 128, 128)


def check_out_dir(out: str | os.PathLike) -> Path:
    """The output folder, refused when it holds a result ovss did not write."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OvssError(f"{str(out)!r} is a file; out must be a folder", param="out")
    result = out / RESULT
    if result.exists():
        try:
            ours = json.loads(result.read_text(encoding="utf-8")).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise OvssError(f"{str(result)!r} was not written by `ovss 3d classify`; choose another out folder", param="out")
    elif ((out / "labelled.ply").exists() or (out / "views").exists()) and not _unfinished_classify(out):
        raise OvssError(f"{str(out)!r} holds labelled.ply or views/ that ovss did not write; choose another out folder",
                        param="out")
    return out


def _unfinished_classify(out: Path) -> bool:
    """Whether labelled.ply and views/ in ``out`` are what a stopped ``3d classify`` run left before its
    instances.json (written last): then a rerun resumes into the folder and replaces them."""
    ply, views = out / "labelled.ply", out / "views"
    if ply.exists() and (file_job(ply) or ("",))[0] != KIND:
        return False
    if views.exists():
        if not views.is_dir():
            return False
        for f in views.iterdir():
            if not (f.suffix.lower() == ".png" and written_by_ovss(f) and (file_job(f) or (KIND,))[0] == KIND):
                return False
    return True


def label_colours(result: dict, num_points: int, masks: np.ndarray) -> np.ndarray:
    """N x 3 uint8: each point in its (last) labelled instance's class colour, grey elsewhere."""
    colours = np.empty((num_points, 3), dtype=np.uint8)
    colours[:] = GREY
    table = palette(256)
    for inst in result["instances"]:
        if inst["class_index"] >= 0:
            colours[masks[:, inst["mask"]]] = table[inst["class_index"] % 255]
    return colours


def draw_view(image: np.ndarray, boxes: list[tuple[tuple[int, int, int, int], str, int]]) -> Image.Image:
    """The frame with a coloured box and a label for every (box, text, class index)."""
    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    table = palette(256)
    for (x1, y1, x2, y2), text, c in boxes:
        colour = tuple(int(v) for v in table[c % 255])
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=2)
        left, top, right, bottom = font.getbbox(text)
        ty = max(0, y1 - (bottom - top) - 4)
        draw.rectangle([x1, ty, x1 + right - left + 4, ty + bottom - top + 4], fill=colour)
        draw.text((x1 + 2, ty + 2 - top), text, fill=(0, 0, 0) if sum(colour) > 380 else (255, 255, 255), font=font)
    return im


def write_outputs(out: str | os.PathLike, result: dict, scene, masks: np.ndarray, visibility, views: int = 3) -> Path:
    """Write the result JSON, the labelled point cloud and ``views`` labelled frames (the JSON last: a
    folder without it is an unfinished run, which a rerun resumes)."""
    out = check_out_dir(out)
    with job_of(KIND):
        return _write_outputs(out, result, scene, masks, visibility, views)


def _write_outputs(out: Path, result: dict, scene, masks: np.ndarray, visibility, views: int) -> Path:
    labelled = [inst for inst in result["instances"] if inst["class_index"] >= 0]
    frames = sorted(range(len(scene)), key=lambda f: -int(sum(visibility.counts[f, i["mask"]] > 0 for i in labelled)))
    written = []
    for f in frames[:max(0, views)]:
        boxes = []
        for inst in labelled:
            box = view_box(visibility, masks, f, inst["mask"])
            if box is not None:
                boxes.append((box, f"{inst['label']} {inst['score']:.2f}", inst["class_index"]))
        if boxes:
            save_image(out / "views" / f"{scene.frame_ids[f]}.png", draw_view(scene.color(f), boxes))
            written.append(int(scene.frame_ids[f]))
    write_ply(out / "labelled.ply", scene.points, label_colours(result, len(scene.points), masks))
    write_json(out / RESULT, {**result, "views_written": written})
    return out


# ---------------------------------------------------------------- evaluation

def read_result(folder: str | os.PathLike) -> dict:
    path = Path(folder) / RESULT
    if Path(folder).is_file() and Path(folder).name.endswith(".json"):
        path = Path(folder)
    if not path.is_file():
        raise OvssError(f"{path} not found; pass folders written by `ovss 3d classify`")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise OvssError(f"cannot read {path} ({e.__class__.__name__}); rerun `ovss 3d classify`") from None
    if not isinstance(result, dict) or result.get("format") != FORMAT:
        raise OvssError(f"{path} is not an `ovss 3d classify` result")
    return result


def ground_truth(scene_dir: str | os.PathLike, gt: str | os.PathLike | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """(per-point instance ids, id -> class name): ``gt`` or the scene's instance_ids.npy, classes from
    its instances.json."""
    scene_dir = Path(scene_dir)
    meta = read_meta3d(scene_dir)
    if not meta.get("instances"):
        raise OvssError(f"{scene_dir / META_FILE} with the ground-truth classes is missing; evaluate scenes that "
                        "carry their instance classes (ShapesWorld-3D writes them)")
    ids_path = Path(gt) if gt else scene_dir / "instance_ids.npy"
    masks, mask_ids = read_masks(ids_path, _count_points(ids_path))
    ids = np.zeros(masks.shape[0], dtype=np.int64)
    for k, i in enumerate(mask_ids):
        ids[masks[:, k]] = i
    classes = {int(inst["id"]): str(inst["class"]) for inst in meta["instances"]}
    missing = [i for i in mask_ids if i not in classes]
    if missing:
        raise OvssError(f"instance {missing[0]} of {ids_path} has no class in {scene_dir / META_FILE}")
    return ids, classes


def _count_points(path: Path) -> int:
    if path.suffix == ".npy":
        return int(np.load(path, mmap_mode="r").shape[0])
    return int(len(np.loadtxt(path, dtype=np.int64, ndmin=1)))


def evaluate_results(folders: Sequence[str | os.PathLike], base: Sequence[str] = (), min_region: int = 100) -> dict:
    """AP / AP50 / AP25 (all, base, novel) and the segment F1s over the results of several scenes.

    All results must name the same classes. Segment scores pair each labelled mask with the
    ground-truth instance it overlaps most (IoU >= 0.5); a mask without a label counts as wrong.
    """
    from ..opendas import classification_scores

    results = [read_result(f) for f in folders]
    if not results:
        raise OvssError("no results to evaluate; pass folders written by `ovss 3d classify`")
    names = [syn[0] for syn in results[0]["classes"]]
    for f, r in zip(folders, results):
        if [syn[0] for syn in r["classes"]] != names:
            raise OvssError(f"{f} was classified with other classes than {folders[0]}; evaluate like with like")
    lower = {n.lower(): i for i, n in enumerate(names)}
    matches = Matches(len(names))
    pred_seg, true_seg = [], []
    for folder, r in zip(folders, results):
        gt_ids, gt_names = ground_truth(r["scene"])
        unknown = sorted({n for n in gt_names.values() if n.lower() not in lower})
        if unknown:
            raise OvssError(f"the ground truth of {r['scene']} holds class {unknown[0]!r}, which is not in the class "
                            "list it was classified with; classify with every ground-truth class")
        gt_class = {i: lower[n.lower()] for i, n in gt_names.items()}
        masks, _ = read_masks(r["masks"], len(gt_ids))
        pred_masks = [np.flatnonzero(masks[:, inst["mask"]]) for inst in r["instances"]]
        match_scene(matches, gt_ids, gt_class, pred_masks, [inst["class_index"] for inst in r["instances"]],
                    [inst["score"] for inst in r["instances"]], min_region)
        for inst, index in zip(r["instances"], pred_masks):
            hit = gt_ids[index]
            hit = hit[hit > 0]
            if len(hit) == 0:
                continue
            g = int(np.bincount(hit).argmax())
            iou = (hit == g).sum() / (len(index) + (gt_ids == g).sum() - (hit == g).sum())
            if iou >= 0.5:
                pred_seg.append(inst["class_index"] if inst["class_index"] >= 0 else len(names))
                true_seg.append(gt_class[g])
    out = summarize_ap(matches, names, base)
    base_ids = [lower[b.lower()] for b in base if b.lower() in lower]
    if true_seg:
        seg = classification_scores(pred_seg, true_seg, len(names), base_ids)
        out["segments"] = {k: seg[k] for k in ("Acc", "W-F1", "B-F1", "N-F1", "segments")}
    out.update({"scenes": len(results), "min_region": min_region, "base_classes": list(base),
                "settings": {k: results[0].get(k) for k in ("templates", "score", "prompts", "features", "model")}})
    return out


def format_scores(scores: dict) -> str:
    """A Markdown table: AP / AP50 / AP25 over all, base and novel classes, and the segment F1s."""
    def cell(v):
        return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.1f}"

    rows = [("all", scores)] + [(k, scores[k]) for k in ("base", "novel") if k in scores]
    lines = ["| classes | AP | AP50 | AP25 |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {cell(s['AP'])} | {cell(s['AP50'])} | {cell(s['AP25'])} |" for name, s in rows]
    seg = scores.get("segments")
    if seg:
        lines += ["", f"segments: {seg['segments']}, Acc {cell(seg['Acc'])}, W-F1 {cell(seg['W-F1'])}, "
                      f"B-F1 {cell(seg['B-F1'])}, N-F1 {cell(seg['N-F1'])}"]
    return "\n".join(lines) + "\n"


def evaluate_folders(folders: Sequence[str | os.PathLike], base_file: str | os.PathLike | None = None,
                     min_region: int = 100) -> dict:
    """``ovss 3d eval``: base classes from ``base_file``, else the prompts' own, else the rooms' own
    split for ShapesWorld-3D and ShapesWorld 2 rooms (else none: no base/novel split); scores plus
    their table."""
    if min_region < 1:
        raise OvssError(f"min_region must be at least 1 point, got {min_region}", param="min_region")
    results = [read_result(f) for f in folders]
    base: list[str] = []
    if base_file:
        from ..data import read_class_file

        base = [names[0] for names in read_class_file(base_file)]
    elif results and (results[0].get("prompts") or {}).get("base_classes"):
        base = list(results[0]["prompts"]["base_classes"])
    elif results and read_meta3d(results[0]["scene"]).get("format") == "shapesworld3d":
        from ..world import BASE_CLASSES

        # ShapesWorld 2 rooms name their benchmark's split; ShapesWorld-3D's is ShapesWorld's
        base = list(read_meta3d(results[0]["scene"]).get("base_classes") or BASE_CLASSES)
    scores = evaluate_results(folders, base, min_region)
    scores["table"] = format_scores(scores)
    return scores
