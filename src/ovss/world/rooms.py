"""ShapesWorld-3D: small rooms of ShapesWorld things as 3D primitives, with posed RGB-D frames.

A room is a floor (one or two ground classes), four walls (``wall`` bricks or a ``sky`` backdrop)
and objects: every object class stands in the room as a cut-out (a vertical plane carrying its
ShapesWorld drawing, transparent outside the drawing, seen from both sides), except balls, which
are spheres. Cut-outs keep the objects recognisable to a CLIP that learned ShapesWorld in 2D.
Frames come from a numpy ray caster: every pixel's ray is intersected with every primitive and
the nearest hit wins (a z-buffer), giving exact colour, depth and instance per pixel. Points are
sampled on the same surfaces, so every point carries its exact instance and class.

A room is a pure function of its seed and settings; the style (default, night, sketch) changes
only the textures, so labels and geometry never depend on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import OvssError
from ..files import atomic_write, write_json, write_text
from .classes import (
    BASE_CLASSES, CLASS_INDEX, CLASSES, GROUNDS, HOSTS, NOVEL_CLASSES, OBJECT_ANCHOR, OBJECT_ASPECT, OBJECT_COLORS,
    OBJECTS, SYNONYMS,
)
from .render import draw_object, render
from ..outputs import as_job
from .scene import check_image_size, check_style

TEXTURE_METRES = 2.0  # a stuff texture tile covers 2 m x 2 m
TEXTURE_PIXELS = 224
NEAR = 0.05
MIN_OBJECT_POINTS = 150  # every object gets at least this many points, however small


@dataclass
class Primitive:
    """A textured plane rectangle (``kind`` "plane") or a sphere ("sphere") of one instance.

    Plane: ``origin`` is a corner, ``axes`` (2 x 3) span it (lengths = its sides); texture row 0 is
    at ``origin + axes[1]`` (the top), so drawings stand upright. ``alpha`` (H x W bool) cuts the
    shape out of the rectangle; ``tile`` repeats the texture every ``tile`` metres instead of
    stretching it. Sphere: ``origin`` is the centre, ``radius`` its radius; its texture (a disc) is
    shown facing the viewer, as a ball looks the same from every side.
    """

    kind: str
    instance: int
    class_name: str
    texture: np.ndarray  # H x W x 3 uint8
    origin: np.ndarray
    axes: np.ndarray | None = None
    radius: float = 0.0
    alpha: np.ndarray | None = None
    tile: float | None = None

    def area(self) -> float:
        if self.kind == "sphere":
            return 4 * np.pi * self.radius ** 2
        full = float(np.linalg.norm(self.axes[0]) * np.linalg.norm(self.axes[1]))
        return full * (float(self.alpha.mean()) if self.alpha is not None else 1.0)


@dataclass
class Room:
    seed: int
    style: str
    size: tuple[float, float, float]  # x, y extent and wall height, metres
    primitives: list[Primitive]
    instances: list[dict]  # {"id", "class", "kind"} per instance, ids from 1
    cameras: np.ndarray  # F x 4 x 4 camera-to-world (OpenCV: x right, y down, z forward)
    intrinsic: np.ndarray  # 3 x 3
    frame_size: tuple[int, int]  # h, w
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------- textures

def stuff_texture(class_name: str, style: str, seed: int) -> np.ndarray:
    labels = np.full((TEXTURE_PIXELS, TEXTURE_PIXELS), CLASS_INDEX[class_name], dtype=np.uint8)
    return render(labels, [], style, seed)


def object_texture(name: str, host: str, rng: np.random.Generator, style: str, seed: int,
                   long_side: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(H x W x 3 texture, H x W alpha) of one ShapesWorld drawing, drawn over its host's texture."""
    aspect = OBJECT_ASPECT[name] * rng.uniform(0.9, 1.1)
    w, h = (long_side, max(8, int(round(long_side / aspect)))) if aspect >= 1 else (max(8, int(round(long_side * aspect))), long_side)
    color = str(rng.choice(OBJECT_COLORS[name]))
    part_map, lut = draw_object(name, w, h, color, rng, flip=bool(rng.random() < 0.5))
    stuff = np.full((h, w), CLASS_INDEX[host], dtype=np.uint8)
    return render(stuff, [(0, 0, part_map, lut)], style, seed), part_map > 0


# ---------------------------------------------------------------- geometry

def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world matrix of a camera at ``position`` looking at ``target`` (z up, no roll)."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, position
    return pose


def plane(instance, name, texture, corner, u, v, alpha=None, tile=None) -> Primitive:
    """A plane primitive with corner ``corner`` spanned by ``u`` (along) and ``v`` (up)."""
    return Primitive("plane", instance, name, texture, np.asarray(corner, float), np.asarray([u, v], float),
                     alpha=alpha, tile=tile)


def room_extent(rng: np.random.Generator, objects: int) -> tuple[float, float]:
    """The floor's x and y sides: about 2.2 m per object on a side, at least 6 m, +-10 %."""
    side = max(6.0, 2.2 * np.sqrt(max(objects, 1)))
    return side * rng.uniform(0.9, 1.1), side * rng.uniform(0.9, 1.1)


def floor_spans(rng: np.random.Generator, sx: float, halves: int) -> list[tuple[float, float]]:
    """The x ranges of a floor of one ground, or of two halves cut at 35-65 % of the room."""
    if halves == 1:
        return [(0.0, sx)]
    cut = sx * rng.uniform(0.35, 0.65)
    return [(0.0, cut), (cut, sx)]


# the four walls, each (corner, direction along the wall), anticlockwise seen from above
def wall_sides(sx: float, sy: float) -> list[tuple[tuple, tuple]]:
    return [((0, 0, 0), (sx, 0, 0)), ((sx, 0, 0), (0, sy, 0)), ((sx, sy, 0), (-sx, 0, 0)), ((0, sy, 0), (0, -sy, 0))]


def ring_cameras(rng: np.random.Generator, sx: float, sy: float, frames: int) -> np.ndarray:
    """F x 4 x 4 poses on a ring around the room's centre, each looking across it, with some spread."""
    centre = np.array([sx / 2, sy / 2, 0.0])
    ring = 0.3 * min(sx, sy)
    cams = []
    a0 = rng.uniform(0, 2 * np.pi)
    for f in range(frames):
        a = a0 + 2 * np.pi * f / frames + rng.uniform(-0.15, 0.15)
        pos = centre + np.array([ring * np.cos(a), ring * np.sin(a), rng.uniform(1.3, 1.8)])
        look = a + np.pi + rng.uniform(-0.6, 0.6)  # across the centre, with some spread
        target = centre + np.array([0.5 * ring * np.cos(look), 0.5 * ring * np.sin(look), rng.uniform(0.5, 1.1)])
        cams.append(look_at(pos, target))
    return np.stack(cams)


def free_spot(rng: np.random.Generator, cameras: np.ndarray, placed: list, sx: float, sy: float,
              long_side: float) -> tuple[float, float]:
    """A floor position 0.9 m or more from every camera and clear of the ``placed`` (x, y, size)
    objects (40 tries; the last try is kept when none is clear)."""
    for _try in range(40):
        x, y = rng.uniform(0.6, sx - 0.6), rng.uniform(0.6, sy - 0.6)
        far_from_cams = np.min(np.hypot(cameras[:, 0, 3] - x, cameras[:, 1, 3] - y)) > 0.9
        if far_from_cams and all(np.hypot(x - px, y - py) > 0.55 * (long_side + r) for px, py, r in placed):
            break
    return x, y


def cutout_size(alpha: np.ndarray, long_side: float) -> tuple[float, float]:
    """(width, height) in metres of a cut-out whose texture's longer side spans ``long_side``."""
    th, tw = alpha.shape
    return (long_side, long_side * th / tw) if tw >= th else (long_side * tw / th, long_side)


def pinhole(frame_size: tuple[int, int]) -> np.ndarray:
    """The rooms' camera matrix: focal length 0.8 x the frame width, centred."""
    fy = fx = 0.8 * frame_size[1]
    return np.array([[fx, 0, (frame_size[1] - 1) / 2], [0, fy, (frame_size[0] - 1) / 2], [0, 0, 1]])


def make_room(seed: int, objects: int = 6, frames: int = 12, frame_size: tuple[int, int] = (240, 320),
              style: str = "default") -> Room:
    """Room number ``seed``: floor, walls, ``objects`` objects and ``frames`` cameras looking in."""
    check_style(style)
    check_room_counts(objects, frames)
    rng = np.random.default_rng([int(seed), 31])
    sx, sy = room_extent(rng, objects)
    height = 3.0
    prims: list[Primitive] = []
    instances: list[dict] = []

    def add(kind: str, name: str) -> int:
        instances.append({"id": len(instances) + 1, "class": name, "kind": kind})
        return len(instances)

    # floor: one ground, or two halves
    grounds = [str(rng.choice(GROUNDS))]
    if rng.random() < 0.4:
        grounds.append(str(rng.choice([g for g in GROUNDS if g != grounds[0]])))
    for g, (x0, x1) in zip(grounds, floor_spans(rng, sx, len(grounds))):
        i = add("floor", g)
        prims.append(plane(i, g, stuff_texture(g, style, seed * 7 + i), (x0, 0, 0), (x1 - x0, 0, 0), (0, sy, 0),
                           tile=TEXTURE_METRES))
    # walls: bricks or a sky backdrop, each its own instance
    for corner, along in wall_sides(sx, sy):
        name = "sky" if rng.random() < 0.4 else "wall"
        i = add("wall", name)
        prims.append(plane(i, name, stuff_texture(name, style, seed * 7 + i), corner, along, (0, 0, height),
                           tile=TEXTURE_METRES))

    cameras = ring_cameras(rng, sx, sy, frames)

    # objects: away from the cameras and from each other
    placed: list[tuple[float, float, float]] = []
    for _ in range(objects):
        name = str(rng.choice(OBJECTS))
        host = max(HOSTS[name], key=HOSTS[name].get)
        long_side = rng.uniform(0.9, 1.5)
        x, y = free_spot(rng, cameras, placed, sx, sy, long_side)
        placed.append((x, y, long_side))
        i = add("object", name)
        tex_seed = seed * 7 + i
        if name == "ball":
            r = 0.3 * long_side
            texture, alpha = object_texture(name, host, rng, style, tex_seed)
            prims.append(Primitive("sphere", i, name, texture, np.array([x, y, r]), radius=r, alpha=alpha))
            continue
        texture, alpha = object_texture(name, host, rng, style, tex_seed)
        w, h = cutout_size(alpha, long_side)
        yaw = rng.uniform(0, np.pi)
        u = np.array([np.cos(yaw), np.sin(yaw), 0.0]) * w
        z0 = 0.0 if OBJECT_ANCHOR[name] == "base" else rng.uniform(1.0, height - h - 0.2)
        corner = np.array([x, y, z0]) - u / 2
        prims.append(plane(i, name, texture, corner, u, (0, 0, h), alpha=alpha))

    info = {"objects": objects, "frames": frames, "frame_size": list(frame_size), "room": [sx, sy, height]}
    return Room(int(seed), style, (sx, sy, height), prims, instances, cameras, pinhole(frame_size), tuple(frame_size), info)


def check_room_counts(objects: int, frames: int) -> None:
    if objects < 0 or frames < 1:
        raise OvssError(f"a room needs 0 or more objects and at least 1 frame (got {objects} objects, {frames} frames)")


# ---------------------------------------------------------------- ray casting

def _plane_uv(p: Primitive, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texture coordinates (s along axes[0], t along axes[1], both 0..1 inside) of points on a plane."""
    rel = hits - p.origin
    a, b = p.axes
    return rel @ a / (a @ a), rel @ b / (b @ b)


def _texel(p: Primitive, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(texture rows, columns) of plane coordinates; tiled textures repeat every ``tile`` metres."""
    th, tw = p.texture.shape[:2]
    if p.tile:
        la, lb = np.linalg.norm(p.axes[0]), np.linalg.norm(p.axes[1])
        s, t = (s * la / p.tile) % 1.0, (t * lb / p.tile) % 1.0
    col = np.clip((s * tw).astype(np.intp), 0, tw - 1)
    row = np.clip(((1.0 - t) * th).astype(np.intp), 0, th - 1)
    return row, col


def _disc_texel(p: Primitive, hits: np.ndarray, right: np.ndarray, up: np.ndarray):
    """(rows, columns, inside) of a sphere's disc texture seen along a view with ``right``/``up`` axes."""
    th, tw = p.texture.shape[:2]
    rel = (hits - p.origin) / p.radius
    s, t = rel @ right, rel @ up
    col = np.clip(((s + 1) / 2 * tw).astype(np.intp), 0, tw - 1)
    row = np.clip(((1 - t) / 2 * th).astype(np.intp), 0, th - 1)
    return row, col, p.alpha[row, col]


def render_frame(room: Room, camera_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H x W x 3 uint8 colour, H x W float32 depth in metres (0: nothing), H x W instance ids (0: none))."""
    h, w = room.frame_size
    k_inv = np.linalg.inv(room.intrinsic)
    ys, xs = np.mgrid[0:h, 0:w]
    pix = np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)], axis=1).astype(np.float64)
    rot, origin = camera_to_world[:3, :3], camera_to_world[:3, 3]
    dirs = (pix @ k_inv.T) @ rot.T  # camera z = 1, so the ray parameter is the depth
    depth = np.full(h * w, np.inf)
    color = np.zeros((h * w, 3), dtype=np.uint8)
    color[:] = (90, 90, 95)
    ids = np.zeros(h * w, dtype=np.int32)
    right, up = rot[:, 0], -rot[:, 1]
    for p in room.primitives:
        if p.kind == "plane":
            normal = np.cross(p.axes[0], p.axes[1])
            denom = dirs @ normal
            with np.errstate(divide="ignore", invalid="ignore"):
                t = ((p.origin - origin) @ normal) / denom
            cand = np.flatnonzero((t > NEAR) & (t < depth))
            if cand.size == 0:
                continue
            hits = origin + t[cand, None] * dirs[cand]
            s, v = _plane_uv(p, hits)
            inside = (s >= 0) & (s <= 1) & (v >= 0) & (v <= 1)
            cand, s, v = cand[inside], s[inside], v[inside]
            row, col = _texel(p, s, v)
            if p.alpha is not None:
                keep = p.alpha[row, col]
                cand, row, col = cand[keep], row[keep], col[keep]
        else:
            oc = origin - p.origin
            a = np.einsum("ij,ij->i", dirs, dirs)
            b = 2 * dirs @ oc
            c = oc @ oc - p.radius ** 2
            disc = b * b - 4 * a * c
            cand = np.flatnonzero(disc >= 0)
            t = np.full(h * w, np.inf)
            t[cand] = (-b[cand] - np.sqrt(disc[cand])) / (2 * a[cand])
            cand = cand[(t[cand] > NEAR) & (t[cand] < depth[cand])]
            if cand.size == 0:
                continue
            hits = origin + t[cand, None] * dirs[cand]
            row, col, _ = _disc_texel(p, hits, right, up)
        depth[cand] = t[cand]
        color[cand] = p.texture[row, col]
        ids[cand] = p.instance
    depth[~np.isfinite(depth)] = 0.0
    return color.reshape(h, w, 3), depth.reshape(h, w).astype(np.float32), ids.reshape(h, w)


# ---------------------------------------------------------------- points

def min_points(objects: int) -> int:
    """The fewest points a room with ``objects`` objects can be sampled with."""
    return MIN_OBJECT_POINTS * objects + 500


def sample_points(room: Room, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n x 3 points, n x 3 uint8 colours, n instance ids) spread over the surfaces by area, each
    object getting at least ``MIN_OBJECT_POINTS``."""
    rng = np.random.default_rng([room.seed, 37])
    need = min_points(sum(i["kind"] == "object" for i in room.instances))
    if n < need:
        raise OvssError(f"{n} points are too few for a room of {len(room.instances)} instances; ask for at least {need}")
    areas = np.array([p.area() for p in room.primitives])
    floor = np.array([MIN_OBJECT_POINTS if room.instances[p.instance - 1]["kind"] == "object" else 0
                      for p in room.primitives])
    share = floor + np.floor((n - floor.sum()) * areas / areas.sum()).astype(int)
    share[int(np.argmax(areas))] += n - share.sum()  # the largest surface takes the rounding
    xyz, rgb, ids = [], [], []
    for p, count in zip(room.primitives, share):
        if p.kind == "plane":
            got = []
            while sum(len(g) for g in got) < count:
                st = rng.random((2 * count + 16, 2))
                if p.alpha is not None:
                    row, col = _texel(p, st[:, 0], st[:, 1])
                    st = st[p.alpha[row, col]]
                got.append(st)
            st = np.concatenate(got)[:count]
            pts = p.origin + st[:, :1] * p.axes[0] + st[:, 1:] * p.axes[1]
            row, col = _texel(p, st[:, 0], st[:, 1])
        else:
            d = rng.normal(size=(count, 3))
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            pts = p.origin + p.radius * d
            # colour as the ball is seen from the -y side (a fixed view for the reconstruction)
            row, col, _ = _disc_texel(p, pts, np.array([1.0, 0, 0]), np.array([0, 0, 1.0]))
        xyz.append(pts)
        rgb.append(p.texture[row, col])
        ids.append(np.full(count, p.instance, dtype=np.int32))
    return np.concatenate(xyz).astype(np.float32), np.concatenate(rgb), np.concatenate(ids)


# ---------------------------------------------------------------- datasets

FORMAT = "shapesworld3d"
ROOMS_VERSION = 1  # bump when the same settings would give other rooms
# settings every split of one folder shares (a folder holds several splits, e.g. train and val)
_KEY_FIELDS = ("format", "rooms_version", "style", "seed", "objects", "frames", "points", "frame_size", "world", "benchmark")


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def room_name(seed: int) -> str:
    return f"room_{seed:06d}"


def write_room(root, room: Room, points: int, classes: tuple[str, ...] = CLASSES,
               base_classes: tuple[str, ...] | None = None) -> dict:
    """Write one room in the scene layout; ``instances.json`` is written last (a finished room has it).
    ``base_classes`` (ShapesWorld 2) go into it, so ``ovss 3d eval`` splits base and novel as the
    rooms do."""
    from .layout3d import DEPTH_SCALE, write_frame, write_scene_layout

    xyz, rgb, ids = sample_points(room, points)
    write_scene_layout(root, xyz, rgb, room.intrinsic)
    atomic_write(Path(root) / "instance_ids.npy", lambda tmp: _save_npy(tmp, ids))
    for f, pose in enumerate(room.cameras):
        color, depth, _ = render_frame(room, pose)
        write_frame(root, f, color, depth, pose, DEPTH_SCALE)
    meta = {"format": FORMAT, "rooms_version": ROOMS_VERSION, "seed": room.seed, "style": room.style,
            "depth_scale": DEPTH_SCALE, "instances": room.instances, "classes": list(classes),
            "points": int(points), **room.info}
    if base_classes is not None:
        meta["base_classes"] = list(base_classes)
    write_json(Path(root) / "instances.json", meta)
    return meta


@as_job("world make3d")
def write_rooms(out_dir, n: int, split: str = "val", seed: int = 0, style: str = "default", objects: int = 6,
                frames: int = 12, points: int = 20000, frame_size: tuple[int, int] = (240, 320),
                progress: bool = True, world: str = "shapesworld", benchmark: str | None = None) -> Path:
    """Write ``n`` rooms to ``out_dir/split/`` (and ``split.txt``, ``classes.txt``, ``meta.json``).

    ``world="shapesworld2"``: ShapesWorld 2 rooms labelled with ``benchmark``'s classes (default
    sw2-59; ``sw2_rooms``). Rerunning with the same settings finishes an interrupted run (finished
    rooms are kept); a folder made with other settings is refused, and a room folder ovss did not
    write is never written over.
    """
    from tqdm import tqdm

    from .export import check_export_target, read_meta, scene_seed

    if world not in ("shapesworld", "shapesworld2"):
        raise OvssError(f"unknown world {world!r}; rooms exist for shapesworld and shapesworld2", param="world")
    if world == "shapesworld2":
        from .sw2_classes import SYNONYMS2, is_novel
        from .sw2_rooms import ROOM_BENCHMARK, check_room_benchmark, make_room2
        from .sw2_scene import check_style2

        check_style2(style)
        benchmark = benchmark or ROOM_BENCHMARK
        classes = check_room_benchmark(benchmark)
        base = tuple(c for c in classes if not is_novel(c))
        novel = tuple(c for c in classes if is_novel(c))
        synonyms = SYNONYMS2

        def build(s: int) -> Room:
            return make_room2(s, objects, frames, frame_size, style, benchmark)
    else:
        if benchmark is not None:
            raise OvssError("benchmark applies to world='shapesworld2' only (ShapesWorld has one class list)",
                            param="benchmark")
        check_style(style)
        classes, base, novel, synonyms = CLASSES, BASE_CLASSES, NOVEL_CLASSES, SYNONYMS

        def build(s: int) -> Room:
            return make_room(s, objects, frames, frame_size, style)
    out = check_export_target(out_dir, n, split, "the rooms")
    if objects < 0:
        raise OvssError(f"objects must be 0 or more, got {objects}", param="objects")
    if frames < 1:
        raise OvssError(f"frames must be at least 1, got {frames}", param="frames")
    frame_size = check_image_size(frame_size, "frame_size")
    if points < min_points(objects):
        raise OvssError(f"points={points} is too few for {objects} objects; give at least {min_points(objects)}",
                        param="points")
    meta = {"format": FORMAT, "rooms_version": ROOMS_VERSION, "style": style, "seed": int(seed), "splits": {split: int(n)},
            "objects": int(objects), "frames": int(frames), "points": int(points),
            "frame_size": list(frame_size), "classes": list(classes), "base_classes": list(base),
            "novel_classes": list(novel)}
    if world == "shapesworld2":
        meta.update(world=world, benchmark=benchmark)
    old = read_meta(out)
    if old is not None:
        if old.get("format") != FORMAT:
            raise OvssError(f"{out} holds another kind of dataset ({old.get('format')}); choose another out_dir", param="out_dir")
        diff = [k for k in _KEY_FIELDS if old.get(k) != meta.get(k)]
        if diff:
            raise OvssError(f"{out} holds 3D rooms made with other settings ({', '.join(diff)} differ); "
                            "choose another out_dir or delete it", param="out_dir")
        meta["splits"] = {**old.get("splits", {}), split: int(n)}
    elif (out / split).exists() and any((out / split).iterdir()):
        raise OvssError(f"{out / split} already holds files that ShapesWorld-3D did not write; choose an empty folder")
    write_json(out / "meta.json", meta)
    names = []
    for i in tqdm(range(n), desc=f"ShapesWorld-3D {split}", unit="room", disable=not progress):
        s = scene_seed(seed, split, i)
        name = room_name(s)
        names.append(name)
        folder = out / split / name
        if (folder / "instances.json").is_file():
            continue
        write_room(folder, build(s), points, classes, base if world == "shapesworld2" else None)
    write_text(out / "classes.txt", "".join(", ".join((c,) + tuple(synonyms[c])) + "\n" for c in classes))
    write_text(out / f"{split}.txt", "".join(x + "\n" for x in names))
    return out
