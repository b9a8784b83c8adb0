"""Which points of a scene each frame sees, stored sparsely, and the frames that see a mask best.

OpenMask3D projects every point into every frame and keeps those whose projected depth agrees
with the sensor's depth within a threshold (0.2 m). It then stores views x masks x H x W booleans,
which for a ScanNet scene (hundreds of views, hundreds of masks) runs into tens of gigabytes. Here
a frame keeps only the indices and pixels of its visible points (at most N per frame), and the
per-mask counts (views x masks integers), which is all top-k selection and cropping need.

Pixel convention: integer coordinates are pixel centres (OpenCV's), so a projected point falls in
pixel ``round(u), round(v)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIS_THRESHOLD = 0.2  # metres; OpenMask3D's default
TOP_K = 5


def project(points: np.ndarray, camera_to_world: np.ndarray, intrinsic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N x 2 float pixel coordinates, N camera depths) of world points in one camera.

    Points behind the camera (depth <= 0) get NaN coordinates.
    """
    world_to_camera = np.linalg.inv(camera_to_world)
    cam = points.astype(np.float64) @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    z = cam[:, 2]
    uv = np.full((len(points), 2), np.nan)
    front = z > 1e-9
    uv[front, 0] = intrinsic[0, 0] * cam[front, 0] / z[front] + intrinsic[0, 1] * cam[front, 1] / z[front] + intrinsic[0, 2]
    uv[front, 1] = intrinsic[1, 1] * cam[front, 1] / z[front] + intrinsic[1, 2]
    return uv, z


def scaled_intrinsic(intrinsic: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """The intrinsic of ``from_size`` (h, w) images for images resized to ``to_size`` (pixel centres kept)."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    k = np.array(intrinsic, dtype=np.float64)
    k[0, :] *= sx
    k[1, :] *= sy
    k[0, 2] = (intrinsic[0, 2] + 0.5) * sx - 0.5
    k[1, 2] = (intrinsic[1, 2] + 0.5) * sy - 0.5
    return k


def visible_points(points: np.ndarray, camera_to_world: np.ndarray, intrinsic_color: np.ndarray,
                   color_size: tuple[int, int], depth: np.ndarray, intrinsic_depth: np.ndarray | None = None,
                   threshold: float = VIS_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the visible points, their M x 2 int pixels (x, y) in the colour frame).

    A point is visible when it projects inside both frames and the sensor depth at its depth pixel
    is valid (> 0) and within ``threshold`` metres of the point's own depth.
    """
    h, w = color_size
    uv, z = project(points, camera_to_world, intrinsic_color)
    k_depth = intrinsic_depth if intrinsic_depth is not None else scaled_intrinsic(intrinsic_color, color_size, depth.shape)
    if intrinsic_depth is None and depth.shape == (h, w):
        duv = uv
    else:
        duv, _ = project(points, camera_to_world, k_depth)
    with np.errstate(invalid="ignore"):
        px, py = np.round(uv[:, 0]), np.round(uv[:, 1])
        dx, dy = np.round(duv[:, 0]), np.round(duv[:, 1])
        dh, dw = depth.shape
        inside = (px >= 0) & (px < w) & (py >= 0) & (py < h) & (dx >= 0) & (dx < dw) & (dy >= 0) & (dy < dh)
    index = np.flatnonzero(inside)
    sensor = depth[dy[index].astype(np.intp), dx[index].astype(np.intp)]
    keep = (sensor > 0) & (np.abs(sensor - z[index]) <= threshold)
    index = index[keep]
    pixels = np.stack([px[index], py[index]], axis=1).astype(np.int32)
    return index.astype(np.int64), pixels


@dataclass
class Visibility:
    """The visible points of every frame (sparse) and how many of each mask's points each frame sees."""

    points: list[np.ndarray]  # per frame: indices of visible points
    pixels: list[np.ndarray]  # per frame: their (x, y) pixels in the colour frame
    counts: np.ndarray  # frames x masks: visible points of each mask

    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.points) + sum(p.nbytes for p in self.pixels) + self.counts.nbytes


def mask_counts(index: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """How many of the points ``index`` each mask (column of N x M ``masks``) holds."""
    if len(index) == 0:
        return np.zeros(masks.shape[1], dtype=np.int64)
    return masks[index].sum(axis=0, dtype=np.int64)


def compute_visibility(scene, masks: np.ndarray, threshold: float = VIS_THRESHOLD, progress=None) -> Visibility:
    """Visibility of every frame of ``scene`` (a ``Scene3D``); frames are read one at a time."""
    size = scene.color_size()
    points, pixels, counts = [], [], []
    frames = range(len(scene))
    for f in (progress(frames) if progress else frames):
        index, pix = visible_points(scene.points, scene.poses[f], scene.intrinsic_color, size, scene.depth(f),
                                    scene.intrinsic_depth, threshold)
        points.append(index)
        pixels.append(pix)
        counts.append(mask_counts(index, masks))
    return Visibility(points, pixels, np.stack(counts) if counts else np.zeros((0, masks.shape[1]), np.int64))


def top_k_views(counts: np.ndarray, k: int = TOP_K) -> list[list[int]]:
    """Per mask, the (at most ``k``) frames that see most of its points, best first; frames seeing
    none are left out and ties go to the earlier frame."""
    out = []
    for m in range(counts.shape[1]):
        order = np.argsort(-counts[:, m], kind="stable")[:k]
        out.append([int(f) for f in order if counts[f, m] > 0])
    return out


def mask_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) box of pixels, exclusive at the far end (OpenMask3D's mask2box)."""
    return (int(pixels[:, 0].min()), int(pixels[:, 1].min()), int(pixels[:, 0].max()) + 1, int(pixels[:, 1].max()) + 1)


def expand_box(box: tuple[int, int, int, int], level: int, ratio: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box grown on each side by ``int(side * ratio) * level`` pixels, clipped to the (h, w) frame:
    OpenMask3D's multi-level crops (level 0 is the box itself)."""
    x1, y1, x2, y2 = box
    if level == 0:
        return box
    gx = int(abs(x2 - x1) * ratio) * level
    gy = int(abs(y2 - y1) * ratio) * level
    return max(0, x1 - gx), max(0, y1 - gy), min(size[1], x2 + gx), min(size[0], y2 + gy)


def view_box(visibility: Visibility, masks: np.ndarray, frame: int, mask: int) -> tuple[int, int, int, int] | None:
    """Box of mask ``mask``'s visible points in ``frame``; None when the frame sees none of them."""
    index = visibility.points[frame]
    inside = masks[index, mask]
    if not inside.any():
        return None
    return mask_box(visibility.pixels[frame][inside])
