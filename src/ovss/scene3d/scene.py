"""Reconstructed scenes in the folder layout that ScanNet exports and OpenMask3D reads.

    SCENE/scene.ply                       points (and colours) of the reconstruction
    SCENE/color/{i}.jpg                   posed RGB frames (any image suffix)
    SCENE/depth/{i}.png                   16-bit depth, metres x depth scale (1000: millimetres)
    SCENE/pose/{i}.txt                    4 x 4 camera-to-world matrix (OpenCV camera: x right, y down, z forward)
    SCENE/intrinsic/intrinsic_color.txt   3 x 3 or 4 x 4 pinhole matrix of the colour frames
    SCENE/intrinsic/intrinsic_depth.txt   optional; else the colour one scaled to the depth size

Instance masks come as an N_points x M boolean array (``.npy`` or ``.pt``, OpenMask3D's output) or
as one instance id per point (``.npy`` or ``.txt``; ids 0 and below mean "no instance", as in
ScanNet's exports). Frames are read lazily: a scene's frames never have to fit in memory together.
ScanNet marks frames whose tracking failed with non-finite poses; those frames are skipped.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import OvssError
from ..files import IMAGE_SUFFIXES, read_rgb
from ..ply import read_ply

DEPTH_SCALE = 1000.0  # ScanNet's: depth PNGs hold millimetres
SCENE_FILE = "scene.ply"
META_FILE = "instances.json"  # ShapesWorld-3D's ground truth: instance ids -> classes, depth scale


@dataclass
class Scene3D:
    """A scene's points and posed frames; ``frame_ids`` are the frames with a valid pose, in order."""

    root: Path
    points: np.ndarray  # N x 3 float32, world coordinates
    colors: np.ndarray | None  # N x 3 uint8
    frame_ids: list[int]
    poses: np.ndarray  # F x 4 x 4 camera-to-world
    intrinsic_color: np.ndarray  # 3 x 3
    intrinsic_depth: np.ndarray | None  # 3 x 3, or None: the colour one scaled to each depth image
    depth_scale: float = DEPTH_SCALE
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame_ids)

    def _file(self, folder: str, frame: int, suffixes: tuple[str, ...]) -> Path:
        for suffix in suffixes:
            path = self.root / folder / f"{frame}{suffix}"
            if path.is_file():
                return path
        raise OvssError(f"frame {frame} has no file in {self.root / folder}; every pose needs its colour and depth frame")

    def color(self, index: int) -> np.ndarray:
        """H x W x 3 uint8 colour frame number ``index`` (a position in ``frame_ids``)."""
        return read_rgb(self._file("color", self.frame_ids[index], IMAGE_SUFFIXES))

    def depth(self, index: int) -> np.ndarray:
        """H x W float32 depth in metres (0 where the sensor saw nothing)."""
        path = self._file("depth", self.frame_ids[index], (".png",))
        try:
            with Image.open(path) as im:
                raw = np.asarray(im)
        except OSError as e:
            raise OvssError(f"cannot read depth frame {path} ({e.__class__.__name__}); pass 16-bit PNG depth") from None
        if raw.ndim != 2:
            raise OvssError(f"depth frame {path} has {raw.shape[2]} channels; depth must be a single-channel 16-bit PNG")
        return raw.astype(np.float32) / np.float32(self.depth_scale)

    def color_size(self) -> tuple[int, int]:
        """(height, width) of the colour frames (read from the first one's header)."""
        with Image.open(self._file("color", self.frame_ids[0], IMAGE_SUFFIXES)) as im:
            return im.height, im.width


def read_matrix(path: Path, shapes: tuple[tuple[int, int], ...]) -> np.ndarray:
    """A whitespace-separated matrix file of one of ``shapes``, as float64."""
    try:
        m = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as e:
        raise OvssError(f"cannot read {path} as a matrix ({e.__class__.__name__}); write rows of numbers") from None
    if m.shape not in shapes:
        want = " or ".join(f"{a}x{b}" for a, b in shapes)
        raise OvssError(f"{path} holds a {m.shape[0]}x{m.shape[1]} matrix; expected {want}")
    return m


def _intrinsic(path: Path) -> np.ndarray:
    k = read_matrix(path, ((3, 3), (4, 4)))[:3, :3]
    check_intrinsic(k, path)
    return k


def check_intrinsic(k: np.ndarray, where) -> None:
    """A pinhole matrix projects: finite, focal lengths fx = K[0,0] and fy = K[1,1] above 0, last row
    (0, 0, 1). An all-zero matrix would send every point to pixel (nan, nan) and label nothing."""
    if not np.isfinite(k).all():
        raise OvssError(f"{where}: the camera matrix has NaN or infinite entries; write the camera's intrinsic matrix")
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise OvssError(f"{where}: not a camera matrix: the focal lengths fx (row 1, column 1) and fy (row 2, "
                        f"column 2) must be above 0, got {k[0, 0]:g} and {k[1, 1]:g}; write the camera's intrinsic matrix")
    if not np.allclose(k[2], (0, 0, 1)):
        raise OvssError(f"{where}: not a camera matrix: its third row must be 0 0 1, got "
                        f"{' '.join(f'{v:g}' for v in k[2])}")


def frame_numbers(folder: Path) -> list[int]:
    """Frame numbers of the files ``{i}.<suffix>`` in ``folder``, sorted numerically."""
    out = []
    for p in folder.iterdir():
        if p.stem.isdigit():
            out.append(int(p.stem))
    return sorted(set(out))


def layout_problems(root: str | os.PathLike) -> list[str]:
    """What is missing from a scene folder, each as one line naming the fix (empty: the layout is complete)."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root} is not a folder; pass a scene folder (scene.ply, color/, depth/, pose/, intrinsic/)"]
    problems = []
    if not (root / SCENE_FILE).is_file():
        problems.append(f"{root / SCENE_FILE} is missing: export the reconstruction's points as {SCENE_FILE}")
    for folder in ("color", "depth", "pose"):
        if not (root / folder).is_dir():
            problems.append(f"{root / folder}/ is missing: export the posed frames as {folder}/{{i}}")
    if not (root / "intrinsic" / "intrinsic_color.txt").is_file():
        problems.append(f"{root}/intrinsic/intrinsic_color.txt is missing: write the colour camera's 3x3 or 4x4 matrix")
    if problems:
        return problems
    poses = frame_numbers(root / "pose")
    if not poses:
        problems.append(f"{root}/pose/ holds no {{i}}.txt files")
    colors = set(frame_numbers(root / "color"))
    depths = set(frame_numbers(root / "depth"))
    no_color = [i for i in poses if i not in colors]
    no_depth = [i for i in poses if i not in depths]
    if no_color:
        problems.append(f"{len(no_color)} pose(s) have no colour frame (first: color/{no_color[0]}.jpg)")
    if no_depth:
        problems.append(f"{len(no_depth)} pose(s) have no depth frame (first: depth/{no_depth[0]}.png)")
    return problems


def read_scene(root: str | os.PathLike, depth_scale: float | None = None) -> Scene3D:
    """Read a scene folder (points, poses, intrinsics); frames stay on disk until asked for.

    ``depth_scale`` None takes the scene's own (``instances.json`` of ShapesWorld-3D) or ScanNet's 1000.
    """
    root = Path(root)
    problems = layout_problems(root)
    if problems:
        raise OvssError(problems[0] + (f" (and {len(problems) - 1} more problem(s); run `ovss data check {root} --dataset scene3d`)"
                                       if len(problems) > 1 else ""))
    meta = read_meta3d(root)
    scale = float(depth_scale if depth_scale is not None else meta.get("depth_scale", DEPTH_SCALE))
    if not scale > 0:
        raise OvssError(f"the depth scale must be positive, got {scale}")
    points, colors = read_ply(root / SCENE_FILE)
    ids, poses = [], []
    for i in frame_numbers(root / "pose"):
        pose = read_matrix(root / "pose" / f"{i}.txt", ((4, 4),))
        if np.isfinite(pose).all():
            ids.append(i)
            poses.append(pose)
    if not ids:
        raise OvssError(f"no frame of {root} has a finite pose; the scene cannot be projected")
    k_color = _intrinsic(root / "intrinsic" / "intrinsic_color.txt")
    depth_path = root / "intrinsic" / "intrinsic_depth.txt"
    k_depth = _intrinsic(depth_path) if depth_path.is_file() else None
    return Scene3D(root, points, colors, ids, np.stack(poses), k_color, k_depth, scale, meta)


def read_meta3d(root: str | os.PathLike) -> dict:
    """A scene's ``instances.json`` (ShapesWorld-3D's ground truth), or {} when there is none."""
    path = Path(root) / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise OvssError(f"cannot read {path} ({e.__class__.__name__}); regenerate it or remove it") from None
    if not isinstance(meta, dict):
        raise OvssError(f"{path} is not a JSON object; regenerate it or remove it")
    return meta


def masks_from_ids(ids: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(N x M boolean masks, the M instance ids) of per-point ids; ids <= 0 belong to no instance."""
    ids = np.asarray(ids).astype(np.int64).ravel()
    values = [int(v) for v in np.unique(ids) if v > 0]
    masks = np.zeros((len(ids), len(values)), dtype=bool)
    if values:
        column = np.searchsorted(np.asarray(values), ids)
        where = ids > 0
        masks[np.flatnonzero(where), column[where]] = True
    return masks, values


def read_masks(path: str | os.PathLike, num_points: int) -> tuple[np.ndarray, list[int]]:
    """(N x M boolean masks, an id per mask) from a mask or instance-id file, checked against the scene.

    A 2-D array is taken as masks (ids 0..M-1, OpenMask3D's order); a 1-D one as per-point ids.
    """
    path = Path(path)
    if not path.is_file():
        raise OvssError(f"mask file not found: {path} (pass an N x M .npy/.pt mask array or a per-point id file)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".pt":
            import torch

            array = torch.load(path, map_location="cpu", weights_only=True)
            array = array.numpy() if hasattr(array, "numpy") else np.asarray(array)
        else:
            array = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except Exception as e:  # a foreign or truncated file: one line, no traceback
        raise OvssError(f"cannot read masks {path} ({e.__class__.__name__}); pass .npy, .pt or a text file of ids") from None
    if array.ndim == 2:
        if array.shape[0] != num_points and array.shape[1] == num_points:
            array = array.T  # M x N, as some tools save it
        if array.shape[0] != num_points:
            raise OvssError(f"{path} holds {array.shape[0]} x {array.shape[1]} masks but the scene has {num_points} "
                            "points; pass the masks computed on this scene's scene.ply")
        return array.astype(bool), list(range(array.shape[1]))
    if array.ndim == 1:
        if len(array) != num_points:
            raise OvssError(f"{path} holds {len(array)} instance ids but the scene has {num_points} points; "
                            "pass one id per point of scene.ply")
        return masks_from_ids(array)
    raise OvssError(f"{path} holds a {array.ndim}-D array; pass N x M masks or N instance ids")
