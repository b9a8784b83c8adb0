"""Images per second of the whole benchmark pipeline: read, corrupt, segment, score.

40 ShapesWorld val images at 224 px are written to a temporary folder and run through
``run_benchmark`` (DataLoader workers as ``ovss bench`` defaults to) with the embedded model, or
ovss-tiny with random weights where the embedded weights are not installed; the shapesworld preset
either way, so the numbers compare. Per scenario it reports images per second and the share of
wall time spent outside the model (data reading, corruption, ground-truth handling, scoring), the
part that workers should hide. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import torch


def _model():
    from ovss.model import load_model
    from ovss.model.loading import EMBEDDED_WEIGHTS, WEIGHTS_DIR

    files = EMBEDDED_WEIGHTS["ovss-tiny"]
    if all((WEIGHTS_DIR / f).is_file() for f in files.values()):
        return load_model(), "ovss-tiny (embedded weights)"
    torch.manual_seed(0)
    return load_model("ovss-tiny", "none"), "ovss-tiny (random weights: embedded ones not installed)"


def run(n: int = 40, size: int = 224, workers: int = 2, corruptions: str = "gaussian_noise,glass_blur,fog") -> tuple[list[dict], str]:
    from ovss.evaluation.runner import run_benchmark
    from ovss.world import write_dataset

    model, label = _model()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp) / "sw", n=n, seed=1, split="val", size=size, progress=False)
        results = run_benchmark(model, [("shapesworld", root)], Path(tmp) / "run", corruptions=corruptions,
                                preset="shapesworld", workers=workers, progress=False)
    rows = []
    for r in results:
        t = r["timing"]
        rows.append({"scenario": r["scenario"]["corruption"], "images": t["images"], "seconds": t["seconds"],
                     "ips": t["images"] / t["seconds"], "outside": t["seconds_outside_model"] / t["seconds"]})
    return rows, label


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="images (default 40)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2, as ovss bench)")
    p.add_argument("--corruptions", default="gaussian_noise,glass_blur,fog", help="scenarios besides original")
    args = p.parse_args(argv)
    rows, label = run(args.n, args.size, args.workers, args.corruptions)
    total_images = sum(r["images"] for r in rows)
    total_seconds = sum(r["seconds"] for r in rows)
    total_outside = sum(r["outside"] * r["seconds"] for r in rows)
    command = "python benchmarks/pipeline.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n### Benchmark pipeline: read, corrupt, segment, score ({args.n} ShapesWorld images, {args.size} px)\n")
    print(f"{label}, shapesworld preset, {args.workers} workers; {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; `{command.strip()}`\n")
    print("| scenario | images | s | images / s | time outside the model |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['images']} | {r['seconds']:.2f} | {r['ips']:.1f} | {100 * r['outside']:.0f} % |")
    print(f"| **all** | {total_images} | {total_seconds:.2f} | {total_images / total_seconds:.1f} | "
          f"{100 * total_outside / total_seconds:.0f} % |")


if __name__ == "__main__":
    main()
