"""Write a 3D scene in ScanNet's export layout (the one OpenMask3D and ``ovss 3d`` read).

    scene.ply, color/{i}.jpg, depth/{i}.png (uint16, metres x depth scale), pose/{i}.txt (camera to
    world), intrinsic/intrinsic_color.txt and intrinsic_depth.txt (4 x 4), plus instances.json.

Every file is written atomically, so an interrupted ``ovss world make3d`` never leaves a frame that
a rerun would trust half-written.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import atomic_write, save_image, write_json, write_text
from ..ply import write_ply

DEPTH_SCALE = 1000.0


def matrix_text(m: np.ndarray) -> str:
    return "\n".join(" ".join(f"{v:.9g}" for v in row) for row in np.asarray(m, dtype=np.float64)) + "\n"


def intrinsic_4x4(k: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = np.asarray(k, dtype=np.float64)[:3, :3]
    return out


def write_frame(root: str | os.PathLike, frame: int, color: np.ndarray, depth: np.ndarray, camera_to_world: np.ndarray,
                depth_scale: float = DEPTH_SCALE) -> None:
    """Write one posed RGB-D frame; ``depth`` in metres (0: no reading), clipped to the uint16 range."""
    root = Path(root)
    save_image(root / "color" / f"{frame}.jpg", Image.fromarray(np.asarray(color, dtype=np.uint8)))
    raw = np.clip(np.round(np.asarray(depth, dtype=np.float64) * depth_scale), 0, 65535).astype(np.uint16)
    atomic_write(root / "depth" / f"{frame}.png", lambda tmp: Image.fromarray(raw).save(tmp, format="PNG"))
    write_text(root / "pose" / f"{frame}.txt", matrix_text(camera_to_world))


def write_scene_layout(root: str | os.PathLike, points: np.ndarray, colors: np.ndarray | None,
                       intrinsic: np.ndarray, meta: dict | None = None) -> Path:
    """Write the frame-independent files of a scene (points, intrinsics, ``instances.json``)."""
    root = Path(root)
    write_ply(root / "scene.ply", points, colors)
    text = matrix_text(intrinsic_4x4(intrinsic))
    write_text(root / "intrinsic" / "intrinsic_color.txt", text)
    write_text(root / "intrinsic" / "intrinsic_depth.txt", text)
    if meta is not None:
        write_json(root / "instances.json", meta)
    return root
