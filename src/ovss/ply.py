"""Point clouds as PLY files: the vertex positions and colours that ScanNet and OpenMask3D exchange.

ovss needs only the ``vertex`` element (x, y, z and, if present, red, green, blue); a mesh's faces
and any other elements after it are skipped. Reading and writing are plain numpy (no 3D library
needed): binary little/big endian and ASCII are read, binary little endian is written, atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import OvssError
from .files import atomic_write
from .outputs import PNG_JOB_KEY, PNG_RUN_KEY, current_job

# PLY scalar type names (both spellings) -> numpy type characters
PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def _header(f, path: Path) -> tuple[str, list[tuple[str, int, list[tuple[str, str]]]]]:
    """(format, [(element, count, [(property, numpy type) or (property, 'list')])])."""
    if f.readline().strip() != b"ply":
        raise OvssError(f"{path} is not a PLY file (it does not start with 'ply'); pass a .ply point cloud")
    fmt, elements = None, []
    while True:
        line = f.readline()
        if not line:
            raise OvssError(f"{path} has no 'end_header' line; the file is truncated or not a PLY file")
        words = line.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements:
            if words[1] == "list":
                elements[-1][2].append((words[-1], "list"))
            elif words[1] in PLY_TYPES:
                elements[-1][2].append((words[2], PLY_TYPES[words[1]]))
            else:
                raise OvssError(f"{path}: unknown PLY property type {words[1]!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise OvssError(f"{path}: unsupported PLY format {fmt!r}")
    return fmt, elements


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """(N x 3 float32 positions, N x 3 uint8 colours or None) of a PLY file's vertices."""
    path = Path(path)
    if not path.is_file():
        raise OvssError(f"point cloud not found: {path} (pass the scene's .ply file)")
    with open(path, "rb") as f:
        fmt, elements = _header(f, path)
        if not elements or elements[0][0] != "vertex":
            raise OvssError(f"{path}: the first PLY element is not 'vertex'; pass a point cloud or mesh PLY")
        _, count, props = elements[0]
        if any(kind == "list" for _, kind in props):
            raise OvssError(f"{path}: list properties on vertices are not supported")
        names = [name for name, _ in props]
        for axis in "xyz":
            if axis not in names:
                raise OvssError(f"{path}: the vertices have no '{axis}' property")
        # a header may announce any count (10^12 vertices): compare it with the bytes there are
        # before anything of that size is allocated
        here = f.tell()
        left = os.fstat(f.fileno()).st_size - here
        smallest = 2 * len(names) if fmt == "ascii" else np.dtype([(n, t) for n, t in props]).itemsize
        if count < 0 or count * smallest > left:
            raise OvssError(f"{path}: the header announces {count} vertices, the file has room for at most "
                            f"{left // max(smallest, 1)}: it is truncated or its header is wrong")
        if fmt == "ascii":
            rows = [f.readline() for _ in range(count)]
            try:
                table = np.loadtxt(rows, dtype=np.float64, ndmin=2)
            except ValueError:
                raise OvssError(f"{path}: the ASCII vertex list is malformed or truncated") from None
            if table.shape != (count, len(names)):
                raise OvssError(f"{path}: expected {count} vertices of {len(names)} values, the file is truncated")
            column = {n: table[:, i] for i, n in enumerate(names)}
        else:
            order = "<" if fmt == "binary_little_endian" else ">"
            dtype = np.dtype([(n, order + t) for n, t in props])
            data = f.read(dtype.itemsize * count)
            if len(data) < dtype.itemsize * count:
                raise OvssError(f"{path}: the file is truncated ({count} vertices announced)")
            table = np.frombuffer(data, dtype=dtype, count=count)
            column = {n: table[n] for n in names}
    xyz = np.stack([column[a] for a in "xyz"], axis=1).astype(np.float32)
    rgb = None
    if all(c in column for c in ("red", "green", "blue")):
        rgb = np.clip(np.stack([column[c] for c in ("red", "green", "blue")], axis=1), 0, 255).astype(np.uint8)
    return xyz, rgb


def write_ply(path: str | os.PathLike, xyz: np.ndarray, rgb: np.ndarray | None = None) -> Path:
    """Write points (and uint8 colours) as a binary little endian PLY, atomically."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if rgb is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    table = np.empty(len(xyz), dtype=np.dtype(fields))
    for i, a in enumerate("xyz"):
        table[a] = xyz[:, i]
    if rgb is not None:
        rgb = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
        for i, c in enumerate(("red", "green", "blue")):
            table[c] = rgb[:, i]
    job = current_job()  # the job that writes it, as comments (read back by ovss.outputs.file_job)
    tags = [f"comment {PNG_JOB_KEY} {job.kind}", f"comment {PNG_RUN_KEY} {job.run}"] if job is not None else []
    lines = ["ply", "format binary_little_endian 1.0", *tags, f"element vertex {len(xyz)}",
             "property float x", "property float y", "property float z"]
    if rgb is not None:
        lines += ["property uchar red", "property uchar green", "property uchar blue"]
    header = ("\n".join(lines + ["end_header"]) + "\n").encode("ascii")

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(table.tobytes())

    return atomic_write(path, _write)
