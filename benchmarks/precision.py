"""Quality of the fast precisions against fp32: label agreement and mIoU, every head.

Embedded ovss-tiny (``shapesworld`` weights) on ShapesWorld validation scenes (``ovss world make
--world shapesworld --n N --seed 1 --split val``, written to a temporary folder), ``shapesworld``
preset: per head and precision, the share of pixels whose label equals fp32's and the mIoU.
Random-weights ViT-B/16 (seed 0) on a few of the same scenes at 448 px, windows 224 / 112:
agreement only (random weights have no meaningful mIoU).
The bar a mode must pass to be offered: agreement >= 99 % and |mIoU - fp32| <= 0.3 for every head.
Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

MODES = ("bf16", "int8")


def _labels(seg, images, classes, sizes=None):
    sizes = sizes or [None] * len(images)
    return [seg.predict(im, classes, output_size=s).labels.cpu().numpy() for im, s in zip(images, sizes)]


def quality_embedded(root: Path, modes=MODES) -> list[dict]:
    from ovss import Segmenter, load_model
    from ovss.dense import HEADS
    from ovss.evaluation.metrics import ConfusionMatrix
    from ovss.evaluation.runner import open_dataset

    ds = open_dataset("shapesworld", root)
    items = [ds[i] for i in range(len(ds))]
    images = [it["image"] for it in items]
    model = load_model(pretrained="shapesworld")  # the weights trained on these (ShapesWorld) scenes
    rows = []
    for head in [h for h, spec in HEADS.items() if not spec.second]:  # ProxyCLIP: no DINO weights offline
        ref = None
        for precision in ("fp32", *modes):
            if precision in HEADS[head].unoffered_precisions:  # refused since it missed the bar (docs/benchmarks.md)
                rows.append({"head": head, "precision": precision, "agreement": None, "miou": None, "delta": None})
                continue
            seg = Segmenter(model, head=head, preset="shapesworld", precision=precision)
            labels = _labels(seg, images, ds.classes)
            cm = ConfusionMatrix(ds.num_classes, ds.ignore_index)
            for lab, it in zip(labels, items):
                cm.update(torch.from_numpy(lab), it["label"])
            miou = float(cm.compute()["mIoU"])
            if ref is None:
                ref = (labels, miou)
            agree = float(np.mean(np.concatenate([(a == b).ravel() for a, b in zip(labels, ref[0])])))
            rows.append({"head": head, "precision": precision, "agreement": agree, "miou": miou,
                         "delta": miou - ref[1]})
    return rows


def agreement_vitb(images: list[np.ndarray], modes=MODES) -> list[dict]:
    from ovss import Segmenter, load_model
    from ovss.dense import HEADS
    from ovss.segment import Preset

    torch.manual_seed(0)
    model = load_model("ViT-B-16", "none")
    preset = Preset("bench448", resize_to=(448, 448), crop=224, stride=112, logit_scale=40.0, templates="single")
    classes = "person, car, tree, sky, road, building, dog, cat, chair, table"
    rows = []
    for head in [h for h, spec in HEADS.items() if not spec.second]:  # ProxyCLIP: no DINO weights offline
        ref = _labels(Segmenter(model, head=head, preset=preset), images, classes)
        for precision in modes:
            if precision in HEADS[head].unoffered_precisions:
                rows.append({"head": head, "precision": precision, "agreement": None})
                continue
            labels = _labels(Segmenter(model, head=head, preset=preset, precision=precision), images, classes)
            agree = float(np.mean(np.concatenate([(a == b).ravel() for a, b in zip(labels, ref)])))
            rows.append({"head": head, "precision": precision, "agreement": agree})
    return rows


def run(n: int = 50, n_vitb: int = 2, modes=MODES) -> tuple[list[dict], list[dict]]:
    from ovss.evaluation.runner import open_dataset
    from ovss.world import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp) / "sw", n=n, seed=1, split="val", progress=False)
        emb = quality_embedded(root, modes)
        ds = open_dataset("shapesworld", root, limit=n_vitb)
        vitb = agreement_vitb([ds[i]["image"] for i in range(len(ds))], modes) if n_vitb else []
    return emb, vitb


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50, help="ShapesWorld val scenes for the embedded model (default 50)")
    p.add_argument("--n-vitb", type=int, default=2, help="scenes for the random ViT-B/16 agreement (default 2)")
    args = p.parse_args(argv)
    emb, vitb = run(args.n, args.n_vitb)
    command = "python benchmarks/precision.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n### Fast precisions against fp32: labels and mIoU ({args.n} ShapesWorld val scenes, embedded ovss-tiny)\n")
    print(f"shapesworld preset; {platform.processor() or platform.machine()}, torch {torch.__version__}; "
          f"`{command.strip()}`. Bar: agreement >= 99 % and |delta mIoU| <= 0.3 for every head.\n")
    print("| head | precision | pixels agreeing with fp32 | mIoU | delta mIoU |")
    print("|---|---|---|---|---|")
    for r in emb:
        if r["agreement"] is None:
            print(f"| {r['head']} | {r['precision']} | not offered (missed the bar) | | |")
            continue
        print(f"| {r['head']} | {r['precision']} | {100 * r['agreement']:.2f} % | {r['miou']:.2f} | {r['delta']:+.2f} |")
    if vitb:
        print(f"\nRandom-weights ViT-B/16, {args.n_vitb} of the scenes resized to 448 x 448, windows 224 / 112, "
              "10 class names (agreement only):\n")
        print("| head | " + " | ".join(MODES) + " |")
        print("|---|" + "---|" * len(MODES))
        by = {(r["head"], r["precision"]): r["agreement"] for r in vitb}
        for head in dict.fromkeys(r["head"] for r in vitb):
            print(f"| {head} | " + " | ".join("not offered" if by[(head, m)] is None else f"{100 * by[(head, m)]:.2f} %" for m in MODES) + " |")


if __name__ == "__main__":
    main()
