"""Peak memory and time of `ovss segment` on one 24-megapixel photo (6000 x 4000), per preset.

The photo is a ShapesWorld scene rendered at 600 x 400 and enlarged to 6000 x 4000 (JPEG), the
classes are ShapesWorld's 19 (28 names with synonyms), the model is the embedded ovss-tiny. Each
preset runs `ovss segment` in its own process; peak RSS is the kernel's maximum resident set size
of that process (os.wait4). A watchdog stops a run whose RSS passes --limit-gb, so measuring an
unbounded version cannot take a shared machine down; such a row reads "> LIMIT (stopped)".
--src runs another source tree (e.g. an export of an older commit) for before/after tables.
Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PRESETS = ("default", "shapesworld", "sclip", "naclip", "clearclip", "mlmp", "gem", "scclip", "resclip", "resclip-rcs",
           "proxyclip")


def make_photo(folder: Path, size: tuple[int, int] = (4000, 6000)) -> tuple[Path, Path]:
    """A (height, width) JPEG photo of a ShapesWorld scene, and the class file."""
    from PIL import Image

    from ovss.world import write_dataset

    root = write_dataset(folder / "sw", n=1, seed=5, split="val", size=(size[0] // 10, size[1] // 10), progress=False)
    small = Image.open(next((root / "images/val").glob("*.png"))).convert("RGB")
    photo = folder / "photo.jpg"
    small.resize((size[1], size[0]), Image.BICUBIC).save(photo, quality=92)
    return photo, root / "classes.txt"


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(photo: Path, classes: Path, preset: str, out: Path, src: str | None, limit_gb: float) -> dict:
    """Peak RSS (GB), wall seconds and exit status of one `ovss segment` run."""
    env = {**os.environ}
    if src:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "ovss", "segment", str(photo), "--classes-file", str(classes), "--out", str(out)]
    if preset != "default":
        cmd += ["--preset", preset]
    if preset == "proxyclip":  # no DINO weights offline: a random one, for memory and time only
        cmd += ["--vfm-weights", "none"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stopped = threading.Event()

    def watch() -> None:
        while proc.poll() is None:
            if _rss_kb(proc.pid) > limit_gb * 1024 * 1024:
                stopped.set()
                proc.kill()
                return
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"preset": preset, "peak_gb": usage.ru_maxrss / 1024 / 1024, "seconds": seconds, "rc": proc.returncode,
            "stopped": stopped.is_set(), "note": [line for line in err.splitlines() if "note:" in line]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS), help=f"comma-separated (default: {','.join(PRESETS)})")
    p.add_argument("--src", default=None, help="PYTHONPATH of the ovss to measure (default: this one)")
    p.add_argument("--label", default="this version", help="what the table measures")
    p.add_argument("--limit-gb", type=float, default=8.0, help="stop a run above this RSS (default 8)")
    p.add_argument("--size", default="4000x6000", help="photo HxW (default 4000x6000)")
    args = p.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photo, classes = make_photo(Path(tmp), size)
        for preset in args.presets.split(","):
            rows.append(measure(photo, classes, preset, Path(tmp) / preset, args.src, args.limit_gb))
    print(f"\n### Memory: `ovss segment` on a {size[1]} x {size[0]} photo ({args.label})\n")
    print(f"embedded ovss-tiny, 19 ShapesWorld classes; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores (shared, busy machine: times vary); `python benchmarks/memory.py "
          f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n")
    print("| preset | peak RSS | s | exit | reduced sizes (from the log) |")
    print("|---|---|---|---|---|")
    for r in rows:
        peak = f"> {args.limit_gb:.0f} GB (stopped)" if r["stopped"] else f"{r['peak_gb']:.2f} GB"
        note = "; ".join(n.split("pixels: ", 1)[-1] for n in r["note"]) or "-"
        print(f"| {r['preset']} | {peak} | {r['seconds']:.0f} | {r['rc']} | {note} |")


if __name__ == "__main__":
    main()
