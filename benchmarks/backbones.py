"""Seconds per image and peak memory of the dense encoder for each family of vision towers.

One 448 x 448 window (28 x 28 patches of 16 px: position embeddings, and EVA's rotary embeddings,
resized from the native 14 x 14) through each model's full-size vision tower with random weights
(seed 0; the text tower is cut to one small block, it takes no part), NACLIP head, fp32 and bf16.
CPU seconds of the process (``time.process_time``; one thread, so other jobs disturb it little),
best of ``--repeats`` after a warm-up; peak memory: the process's peak resident set during the
timed runs (``adaptation.base.PeakMemory``: model and Python included), and the part above the
resident set at the start of the run. Prints a Markdown table.

    PYTHONPATH=src python benchmarks/backbones.py [--models ViT-B-16,ViT-B-16-SigLIP2,EVA02-B-16,PE-Core-B-16]
"""
from __future__ import annotations

import argparse
import logging
import platform
import subprocess
import sys
import time

import torch

MODELS = ("ViT-B-16", "ViT-B-16-SigLIP2", "EVA02-B-16", "PE-Core-B-16")


def vision_tower(name: str) -> torch.nn.Module:
    """``name``'s full-size vision tower, random weights (seed 0)."""
    from ovss.model.loading import open_clip_with_ovss_configs

    open_clip = open_clip_with_ovss_configs()
    cfg = open_clip.get_model_config(name)
    text = dict(cfg["text_cfg"], width=64, heads=2, layers=1)
    logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(0)
    return open_clip.create_model(name, pretrained=None, text_cfg=text).visual.eval()


def measure(name: str, size: int, repeats: int, head: str = "naclip") -> list[dict]:
    from ovss.adaptation.base import PeakMemory
    from ovss.dense import DenseEncoder

    visual = vision_tower(name)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    rows = []
    for precision in ("fp32", "bf16"):
        enc = DenseEncoder(visual, head, precision=precision, model_name=name)
        with torch.no_grad():
            enc(x)  # warm-up
            best, peak, extra = float("inf"), 0.0, 0.0
            for _ in range(repeats):
                with PeakMemory(torch.device("cpu")) as memory:
                    t = time.process_time()
                    out = enc(x)
                    best = min(best, time.process_time() - t)
                peak, extra = max(peak, memory.peak_mb), max(extra, memory.extra_mb)
        rows.append(dict(model=name, family=enc.tower.family, precision=precision, grid=out.grid, seconds=best,
                         peak_mb=peak, extra_mb=extra,
                         params_m=sum(p.numel() for p in visual.parameters()) / 1e6))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.models.split(",")
    if not args.rows_only:
        print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), "
              f"{args.size} x {args.size}, best of {args.repeats} after a warm-up\n")
        print("| model | family | vision params (M) | precision | grid | CPU s / image | peak RSS MiB | above start MiB |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
    if len(names) > 1:  # one process per model: each peak resident set holds that model only
        for name in names:
            subprocess.run([sys.executable, __file__, "--models", name, "--size", str(args.size), "--repeats",
                            str(args.repeats), "--threads", str(args.threads), "--rows-only"], check=True)
        return
    for name in names:
        for r in measure(name, args.size, args.repeats):
            print(f"| {r['model']} | {r['family']} | {r['params_m']:.1f} | {r['precision']} | {r['grid'][0]} x {r['grid'][1]} "
                  f"| {r['seconds']:.3f} | {r['peak_mb']:.0f} | {r['extra_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
