"""Seconds per image of each dense head vs the plain encoder forward over the same windows.

A 512 x 512 image, random-weights ViT-B/16, windows 224 / 112 (16 windows, one batch), text
embeddings cached (an image answering a class list it has seen). Prints a Markdown table.
"""
from __future__ import annotations

import platform
import statistics
import time

import numpy as np
import torch


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(repeats: int = 5, model_name: str = "ViT-B-16", size: int = 512) -> list[dict]:
    from ovss import Segmenter, load_model
    from ovss.dense import HEADS
    from ovss.segment import Preset

    # the image at its own size, windows 224 / 112: 16 windows of a 512 x 512 image
    preset = Preset("bench", resize_short=None, crop=224, stride=112, logit_scale=40.0, templates="single")

    torch.manual_seed(0)
    model = load_model(model_name, "none")
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    classes = "person, car, tree, sky, road, building, dog, cat, chair, table"
    plain_seg = Segmenter(model, head="clip", preset=preset)
    windows, _, _ = plain_seg.windows(plain_seg.preprocess(image))

    @torch.no_grad()
    def plain():
        model.clip.visual.output_tokens = True
        model.clip.visual(windows)

    base = _time(plain, repeats)
    rows = [{"what": f"plain encoder forward ({windows.shape[0]} windows)", "seconds": base, "ratio": 1.0}]
    for name in HEADS:
        seg = Segmenter(model, head=name, preset=preset, second_weights="none")  # ProxyCLIP: random DINO (cost only)
        seg.predict(image, classes)  # caches the text embeddings
        t = _time(lambda: seg.predict(image, classes), repeats)
        rows.append({"what": f"head {name}: image -> labels", "seconds": t, "ratio": t / base})
    model.clip.visual.output_tokens = False
    return rows


def main() -> None:
    torch.set_num_threads(torch.get_num_threads())
    rows = run()
    print(f"\n### Dense heads, 512 x 512, ViT-B/16 random weights ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__})\n")
    print("| what | s / image | x plain forward |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['seconds']:.3f} | {r['ratio']:.2f} |")


if __name__ == "__main__":
    main()
