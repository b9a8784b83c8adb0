"""``ovss ovsnet ablation``: train OVSNet's four variants on ShapesWorld and print the OVSNet paper's Table 3.

    ovss ovsnet ablation --data DIR --out RUN [--steps 600] [--train-n 300] [--val-n 100] [--variants ...]
    ovss ovsnet ablation --train-data coco_stuff164k=R1 --val-data ade20k=R2 --open-data shapesworld=R3 --out RUN
"""
from __future__ import annotations

import argparse
import sys

from ..errors import OvssError
from .common import add_model_args, no_verb, weights_for_world


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ovsnet", help="OVSNet (GFA + Proxy Calibration) at small scale: the ablation on ShapesWorld",
        description="OVSNet (the OVSNet/OpenBench paper): a light mask decoder on frozen CLIP features with Gradient-Free Aggregation "
                    "and Proxy Calibration.",
    )
    parser.set_defaults(func=lambda args: no_verb(parser))
    verbs = parser.add_subparsers(dest="ovsnet_verb", metavar="VERB")
    a = verbs.add_parser(
        "ablation", help="train baseline, +GFA, +PC and both; print the ablation table",
        description="Make ShapesWorld train/val data and an open split (OpenBench builder) in --data when missing, "
                    "train each variant on the base classes, evaluate on val and on the open split. Writes "
                    "RUN/{variant}.json, RUN/{variant}.safetensors and RUN/ablation.md; a rerun skips finished variants.",
    )
    a.add_argument("--data", help="folder for the ShapesWorld data (made when missing)")
    a.add_argument("--train-data", metavar="NAME=ROOT", help="real data instead of ShapesWorld: the training set "
                   "(e.g. coco_stuff164k=data/coco_stuff; its train split, all its classes seen)")
    a.add_argument("--val-data", metavar="NAME=ROOT", help="with --train-data: a set close to training (e.g. ade20k=...)")
    a.add_argument("--open-data", metavar="NAME=ROOT",
                   help="with --train-data: an open set, e.g. an `ovss openbench build` output (shapesworld=DIR)")
    a.add_argument("--limit", type=int, default=None,
                   help="with --train-data: use the first N images of each set (features are cached in memory)")
    a.add_argument("--out", required=True, metavar="RUN", help="run folder for the results")
    a.add_argument("--variants", default="baseline,gfa,pc,both", help="comma-separated (default: all four)")
    a.add_argument("--train-n", type=int, default=300, help="training scenes (default: 300)")
    a.add_argument("--val-n", type=int, default=100, help="validation scenes, source of the open split (default: 100)")
    a.add_argument("--data-seed", type=int, default=0, help="ShapesWorld seed (default: 0)")
    a.add_argument("--world", default="shapesworld2", choices=("shapesworld", "shapesworld2"),
                   help="world of the --data exports (default: shapesworld2, whose exports name their base classes); "
                        "the default weights follow it")
    a.add_argument("--benchmark", default=None,
                   help="with --world shapesworld2: the class list of the exports (default: sw2-20)")
    a.add_argument("--sigma1", type=float, default=0.99, help="open split: keep images with a class below this (default: 0.99)")
    a.add_argument("--sigma2", type=float, default=0.99, help="open split: classes above this become others (default: 0.99)")
    a.add_argument("--steps", type=int, default=600, help="training steps per variant (default: 600)")
    a.add_argument("--batch-size", type=int, default=8, help="images per step (default: 8)")
    a.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    a.add_argument("--queries", type=int, default=16, help="decoder queries (default: 16)")
    a.add_argument("--w", type=float, default=None, help="GFA's fusion weight w (default: 0.5)")
    a.add_argument("--gamma", type=float, default=None, help="PC's Beta(gamma, gamma) (default: 2)")
    a.add_argument("--seed", type=int, default=0, help="training seed, shared by the variants (default: 0)")
    a.add_argument("--preset", default=None, help="feature protocol (default: shapesworld for ovss-tiny, else naclip)")
    a.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_model_args(a)
    a.set_defaults(func=run_ablation_cmd)
    return parser




def _real_data(args: argparse.Namespace) -> dict | None:
    """The three datasets of --train-data/--val-data/--open-data, opened (and checked) before the model loads."""
    from ..evaluation.runner import open_dataset

    given = {k: getattr(args, f"{k}_data") for k in ("train", "val", "open")}
    if not any(given.values()):
        if not args.data:
            raise OvssError("give --data DIR (ShapesWorld, made when missing) or --train-data, --val-data and --open-data")
        return None
    if args.limit is not None and args.limit < 1:
        raise OvssError(f"--limit must be a positive number of images, got {args.limit}")
    missing = [f"--{k}-data" for k, v in given.items() if not v]
    if missing:
        raise OvssError(f"real data needs all three of --train-data, --val-data and --open-data; missing {', '.join(missing)}")
    sets = {}
    for k, spec in given.items():
        name, sep, root = spec.partition("=")
        if not sep or not name.strip() or not root.strip():
            raise OvssError(f"--{k}-data must be NAME=ROOT (e.g. ade20k=data/ade), got {spec!r}")
        sets[k] = open_dataset(name.strip().lower(), root.strip(), "train" if k == "train" else "val", args.limit)
    return sets


def run_ablation_cmd(args: argparse.Namespace) -> int:
    import torch

    from ..concepts import ClipTextSimilarity
    from ..model import load_model
    from ..ovsnet import VARIANTS, OVSNetConfig, TrainSettings, prepare_data, run_ablation
    from ..ovsnet.gfa import convergence_bound
    from ..segment import Segmenter

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if not variants or bad:
        raise OvssError(f"unknown variant '{bad[0] if bad else ''}'; choose from: {', '.join(VARIANTS)}")
    for flag in ("train_n", "val_n", "steps", "batch_size", "queries"):
        if getattr(args, flag) < 1:
            raise OvssError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    overrides = {k: v for k, v in (("w", args.w), ("gamma", args.gamma)) if v is not None}
    cfg = OVSNetConfig(queries=args.queries, **overrides)
    if not 0 < cfg.w < 1:
        raise OvssError(f"--w must lie strictly between 0 and 1, got {cfg.w}")
    if cfg.gamma <= 0:
        raise OvssError(f"--gamma must be positive, got {cfg.gamma}")
    if convergence_bound(cfg.queries, cfg.w, cfg.lam) >= 1:
        raise OvssError(f"GFA may not converge with {cfg.queries} queries at w={cfg.w} (w^2 lam N = "
                        f"{convergence_bound(cfg.queries, cfg.w, cfg.lam):.2f} >= 1); lower --w or --queries")
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    real = _real_data(args)
    if args.benchmark and args.world != "shapesworld2":
        raise OvssError("--benchmark applies to --world shapesworld2 only")

    if not real:
        weights_for_world(args, args.world)
    torch.manual_seed(0)  # random weights (--pretrained none) are the same in every run
    model = load_model(args.model, args.pretrained, device=args.device)
    seg = Segmenter(model, preset=args.preset or ("shapesworld" if model.name == "ovss-tiny" else "naclip"))
    progress = not args.no_progress
    if real:
        data = real
    else:
        data = prepare_data(args.data, args.train_n, args.val_n, args.data_seed, args.sigma1, args.sigma2,
                            ClipTextSimilarity.from_segmenter(seg), progress, args.world, args.benchmark)
    results = run_ablation(seg, data, args.out, variants, cfg, settings, args.device, progress)
    from ..ovsnet import ablation_table

    print(ablation_table(results), end="")
    print(f"results in {args.out} (ablation.md, <variant>.json, <variant>.safetensors)", file=sys.stderr)
    return 0
