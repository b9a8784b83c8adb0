"""ShapesWorld 2 rooms: the 3D counterpart of ShapesWorld 2's scenes, for OpenDAS's 3D instance table.

A room takes one of the world's contexts (a kitchen, a street, a farm...): its floor is one or two
of the context's grounds, its four walls are the context's backdrop (tiles, wallpaper, sky...) or,
outdoors, one of its far bands (building, forest, mountain), and its objects are the context's
things, as cut-outs carrying their Twemoji icon (transparent outside the drawing, seen from both
sides). Where a thing stands follows its zone in the world: ground and water things stand on the
floor, wall things (window, door, painting, clock) hang flat just in front of a wall, sky things
float high, underwater things float low. So objects co-occur as in the 2D scenes, and a CLIP that
learned ShapesWorld 2 in 2D can recognise them.

Everything is labelled with the class list of a benchmark that names every stuff class (sw2-59,
sw2-150, sw2-all); things outside the benchmark are never placed, so every instance has a class
of the dataset's ``classes.txt``. Geometry, cameras, ray casting and point sampling are
ShapesWorld-3D's (``rooms``), so a room is a pure function of its seed and settings and the style
changes only the textures.
"""
from __future__ import annotations

import numpy as np

from ..errors import OvssError
from .rooms import (
    TEXTURE_METRES, TEXTURE_PIXELS, Primitive, Room, check_room_counts, cutout_size, floor_spans, free_spot,
    pinhole, plane, ring_cameras, room_extent, wall_sides,
)
from .sw2_classes import BENCHMARKS, CONTEXTS, RECOLOR, STUFF2, THING_ZONE
from .sw2_render import PERMUTATIONS, icon_image, render2
from .sw2_scene import COMMON, COMMON_WEIGHT, check_style2

ROOM_BENCHMARK = "sw2-59"  # the default: VOC's things plus every stuff class, as Context's list
HEIGHT = 3.0
ICON_PIXELS = 128  # a cut-out's texture side


def check_room_benchmark(benchmark: str) -> tuple[str, ...]:
    """The benchmark's classes; it must name every stuff class, since floors and walls are labelled."""
    if benchmark not in BENCHMARKS:
        raise OvssError(f"unknown ShapesWorld 2 benchmark {benchmark!r}; choose from: {', '.join(BENCHMARKS)}",
                        param="benchmark")
    classes = BENCHMARKS[benchmark]
    missing = [s for s in STUFF2 if s not in classes]
    if missing:
        usable = [b for b, c in BENCHMARKS.items() if all(s in c for s in STUFF2)]
        raise OvssError(f"rooms label their floors and walls, but {benchmark} has no stuff classes "
                        f"({', '.join(missing[:3])}...); use {' or '.join(usable)}", param="benchmark")
    return classes


def room_contexts(benchmark: str) -> list[str]:
    """The contexts a room of ``benchmark`` can show: those with at least two of its things."""
    classes = set(check_room_benchmark(benchmark))
    return [name for name, ctx in CONTEXTS.items() if len({t for t in ctx["things"] if t in classes}) >= 2]


def stuff_texture2(name: str, style: str, seed: int) -> np.ndarray:
    """A 2 m x 2 m tile of a stuff class, as the 2D scenes paint it."""
    labels = np.full((TEXTURE_PIXELS, TEXTURE_PIXELS), STUFF2.index(name), dtype=np.uint8)
    return render2(labels, [], style, seed)


def icon_texture(name: str, host: str, rng: np.random.Generator, style: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(texture, alpha) of a thing's icon painted over its host's texture (so a style sees both,
    as in a 2D scene); recolourable things get a channel permutation as in the scenes."""
    perm = int(rng.integers(len(PERMUTATIONS))) if name in RECOLOR and rng.random() < 0.7 else 0
    rgb, mask = icon_image(name, ICON_PIXELS, ICON_PIXELS, perm, bool(rng.random() < 0.5))
    stuff = np.full(mask.shape, STUFF2.index(host), dtype=np.uint8)
    return render2(stuff, [(0, 0, rgb, mask)], style, seed), mask


def make_room2(seed: int, objects: int = 6, frames: int = 12, frame_size: tuple[int, int] = (240, 320),
               style: str = "default", benchmark: str = ROOM_BENCHMARK) -> Room:
    """ShapesWorld 2 room number ``seed``: a context, its floor and walls, ``objects`` of its things
    (weighted as the 2D scenes weight them) and ``frames`` cameras looking in."""
    check_style2(style)
    check_room_counts(objects, frames)
    classes = set(check_room_benchmark(benchmark))
    rng = np.random.default_rng([int(seed), 41])
    contexts = room_contexts(benchmark)
    context = contexts[int(rng.integers(len(contexts)))]
    ctx = CONTEXTS[context]
    sx, sy = room_extent(rng, objects)
    prims: list[Primitive] = []
    instances: list[dict] = []

    def add(kind: str, name: str) -> int:
        instances.append({"id": len(instances) + 1, "class": name, "kind": kind})
        return len(instances)

    grounds = [str(rng.choice(ctx["ground"]))]
    if len(ctx["ground"]) > 1 and rng.random() < 0.4:
        grounds.append(str(rng.choice([g for g in ctx["ground"] if g != grounds[0]])))
    for g, (x0, x1) in zip(grounds, floor_spans(rng, sx, len(grounds))):
        i = add("floor", g)
        prims.append(plane(i, g, stuff_texture2(g, style, seed * 7 + i), (x0, 0, 0), (x1 - x0, 0, 0), (0, sy, 0),
                           tile=TEXTURE_METRES))
    walls = []
    for corner, along in wall_sides(sx, sy):
        far = ctx["far"] and rng.random() < 0.5
        name = str(rng.choice(ctx["far"] if far else ctx["top"]))
        i = add("wall", name)
        walls.append((corner, along, name))
        prims.append(plane(i, name, stuff_texture2(name, style, seed * 7 + i), corner, along, (0, 0, HEIGHT),
                           tile=TEXTURE_METRES))

    cameras = ring_cameras(rng, sx, sy, frames)

    names = [t for t in ctx["things"] if t in classes]
    weights = np.asarray([COMMON_WEIGHT if n in COMMON else 1.0 for n in names])
    placed: list[tuple[float, float, float]] = []
    for _ in range(objects):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        zone = THING_ZONE[name]
        long_side = rng.uniform(0.9, 1.5)
        i = add("object", name)
        if zone == "wall":  # flat on a wall, 5 cm in front of it, facing the room
            corner, along, host = walls[int(rng.integers(4))]
            texture, alpha = icon_texture(name, host, rng, style, seed * 7 + i)
            w, h = cutout_size(alpha, long_side)
            length = float(np.linalg.norm(along))
            direction = np.asarray(along, float) / length
            inward = np.array([-direction[1], direction[0], 0.0])  # the walls run anticlockwise
            start = rng.uniform(0.2, max(0.2, length - w - 0.2))
            z0 = rng.uniform(0.8, HEIGHT - h - 0.1) if HEIGHT - h - 0.1 > 0.8 else 0.1
            origin = np.asarray(corner, float) + direction * start + inward * 0.05 + np.array([0, 0, z0])
            prims.append(plane(i, name, texture, origin, direction * w, (0, 0, h), alpha=alpha))
            continue
        x, y = free_spot(rng, cameras, placed, sx, sy, long_side)
        placed.append((x, y, long_side))
        host = grounds[0] if x < sx * 0.5 or len(grounds) == 1 else grounds[1]
        texture, alpha = icon_texture(name, "sky" if zone == "sky" else host, rng, style, seed * 7 + i)
        w, h = cutout_size(alpha, long_side)
        yaw = rng.uniform(0, np.pi)
        u = np.array([np.cos(yaw), np.sin(yaw), 0.0]) * w
        top = HEIGHT - h - 0.1
        z0 = (rng.uniform(min(1.6, top), max(1.6, top)) if zone == "sky"
              else rng.uniform(0.3, max(0.3, min(1.0, top))) if zone == "under" else 0.0)
        prims.append(plane(i, name, texture, np.array([x, y, z0]) - u / 2, u, (0, 0, h), alpha=alpha))

    info = {"objects": objects, "frames": frames, "frame_size": list(frame_size), "room": [sx, sy, HEIGHT],
            "context": context, "world": "shapesworld2", "benchmark": benchmark}
    return Room(int(seed), style, (sx, sy, HEIGHT), prims, instances, cameras, pinhole(frame_size),
                tuple(frame_size), info)
