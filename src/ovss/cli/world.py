"""``ovss world <verb>``: the built-in synthetic worlds, ShapesWorld 2 (the default) and ShapesWorld.

    ovss world make --out DIR --n N [--style default|night|sketch] [--seed K] [--split val] [--size 224]
                    [--world shapesworld2 [--benchmark sw2-20] | --world shapesworld]
    ovss world make3d --out DIR --n N [--split val] [--objects 6] [--frames 12] [--points 20000] [--style ...]
                     [--world shapesworld2 [--benchmark sw2-59] | --world shapesworld]
    ovss world train --out FILE.safetensors [--steps N] [--batch-size B] [--seed K] [--world W] ...
    ovss world eval [--world shapesworld2|shapesworld] [--weights FILE] [--n N] [--quick] [--out REPORT.json]
"""
from __future__ import annotations

import argparse

from ..errors import OvssError
from .common import no_verb


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``world`` and its verbs to the top-level sub-command parsers."""
    parser = subparsers.add_parser(
        "world", help="make ShapesWorld datasets (synthetic scenes with exact labels and captions)",
        description="ShapesWorld: a deterministic synthetic world of textured stuff and drawn objects.",
    )
    parser.set_defaults(func=lambda args: no_verb(parser))
    verbs = parser.add_subparsers(dest="world_verb", metavar="VERB")

    make = verbs.add_parser(
        "make", help="write scenes in MMSegmentation's folder layout",
        description="Write N ShapesWorld scenes (images, label PNGs, captions) to a folder; "
                    "rerunning resumes an interrupted run.",
    )
    make.add_argument("--out", dest="out_dir", metavar="DIR", required=True, help="output folder")
    make.add_argument("--n", type=int, required=True, help="number of images")
    make.add_argument("--style", default="default", help="default, night or sketch (default: default)")
    make.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    make.add_argument("--split", default="val", help="split name (default: val)")
    make.add_argument("--size", default="224", help="image side, or HxW such as 224x320 (default: 224)")
    make.add_argument("--world", default="shapesworld2",
                      help="shapesworld2 (189 classes in contexts; the default) or shapesworld (19 classes)")
    make.add_argument("--benchmark", default=None,
                      help="ShapesWorld 2 class list: sw2-20 (default), sw2-59, sw2-150 or sw2-all")
    make.set_defaults(func=run_make)

    make3d = verbs.add_parser(
        "make3d", help="write ShapesWorld-3D rooms (points, posed RGB-D frames, instance labels)",
        description="Write N rooms of ShapesWorld things as 3D primitives in ScanNet's export layout "
                    "(OUT/SPLIT/room_*/scene.ply, color/, depth/, pose/, intrinsic/, instance_ids.npy, "
                    "instances.json); rerunning resumes an interrupted run.",
    )
    make3d.add_argument("--out", dest="out_dir", metavar="DIR", required=True, help="output folder")
    make3d.add_argument("--n", type=int, required=True, help="number of rooms")
    make3d.add_argument("--split", default="val", help="split name (default: val)")
    make3d.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    make3d.add_argument("--style", default="default", help="default, night or sketch (default: default)")
    make3d.add_argument("--objects", type=int, default=6, help="objects per room (default: 6)")
    make3d.add_argument("--frames", type=int, default=12, help="posed frames per room (default: 12)")
    make3d.add_argument("--points", type=int, default=20000, help="points per room (default: 20000)")
    make3d.add_argument("--size", default="240x320", help="frame size HxW (default: 240x320)")
    make3d.add_argument("--world", default="shapesworld2",
                        help="shapesworld2 (rooms of its contexts; the default) or shapesworld (19 classes)")
    make3d.add_argument("--benchmark", default=None,
                        help="ShapesWorld 2 class list with every stuff class: sw2-59 (default), sw2-150 or sw2-all")
    make3d.add_argument("--no-progress", action="store_true", help="no progress bar")
    make3d.set_defaults(func=run_make3d)

    train = verbs.add_parser(
        "train", help="train the tiny CLIP from scratch on ShapesWorld",
        description="Train ovss's tiny CLIP contrastively on ShapesWorld image-caption pairs and "
                    "write a safetensors checkpoint (plus FILE.train.json with the loss log). --recipe picks "
                    "the recipe of an embedded weight file (default: shapesworld2, the default weights; "
                    "56 min on 2 cores); the other flags change single settings of it.",
    )
    from ..tinyclip.recipe import RECIPES

    train.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    train.add_argument("--recipe", default="shapesworld2",
                       help=f"the recipe of these embedded weights: {', '.join(RECIPES)} (default: shapesworld2; "
                            "docs/model_card_ovss_tiny.md)")
    # every setting below defaults to the recipe's own value (None here: "not given"); the help shows
    # the default recipe's
    default = RECIPES["shapesworld2"]

    def shown(name: str) -> str:
        return f" (default: the recipe's; shapesworld2's is {getattr(default, name)})"

    train.add_argument("--steps", type=int, help="optimisation steps" + shown("steps"))
    train.add_argument("--batch-size", type=int, help="image-caption pairs per step" + shown("batch_size"))
    train.add_argument("--lr", type=float, help="peak learning rate" + shown("lr"))
    train.add_argument("--seed", type=int, help="training seed" + shown("seed"))
    train.add_argument("--workers", type=int, help="data-loading worker processes" + shown("workers"))
    train.add_argument("--regions", type=int, help="captioned sub-windows per scene image" + shown("regions"))
    train.add_argument("--style-share", type=float, help="share of training scenes in the other styles" + shown("style_share"))
    train.add_argument("--level-weight", type=float,
                       help="weight of the region term on the intermediate blocks MLMP fuses (0: off)" + shown("level_weight"))
    train.add_argument("--dense-weight", type=float,
                       help="weight of the per-patch term: patch features classified against every class name, "
                            "targets from the scene labels (0: off)" + shown("dense_weight"))
    train.add_argument("--world", help="shapesworld or shapesworld2" + shown("world"))
    train.add_argument("--augment", type=float,
                       help="share of images with a random photometric augmentation" + shown("augment"))
    train.add_argument("--init", help="start from these weights (.safetensors; the recipes start from scratch)")
    train.add_argument("--warmup", type=int, help="warm-up steps" + shown("warmup"))
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    train.set_defaults(func=run_train)

    ev = verbs.add_parser(
        "eval", help="measure a tiny CLIP on held-out ShapesWorld scenes (the model card's numbers)",
        description="Zero-shot accuracy on single-object images, dense mIoU per head on clean "
                    "validation scenes, and naclip's mIoU under the 15 corruptions and the domain styles.",
    )
    ev.add_argument("--weights", default=None,
                    help="ovss-tiny checkpoint or embedded tag (default: the embedded weights of --world: "
                         "shapesworld2, or shapesworld)")
    ev.add_argument("--n", type=int, default=None,
                    help="validation scenes per scenario (default: 500 on shapesworld2, so that every sw2-20 class "
                         "occurs; 50 on shapesworld)")
    ev.add_argument("--quick", action="store_true", help="only zero-shot accuracy and naclip on clean scenes")
    ev.add_argument("--out", default=None, help="write the report as JSON here, and as Markdown next to it")
    ev.add_argument("--world", default="shapesworld2",
                    help="shapesworld2 (the default): zero-shot accuracy and naclip mIoU per benchmark; or shapesworld: "
                         "the 19-class world's model card numbers, with corruptions and styles")
    ev.add_argument("--benchmark", action="append", default=None,
                    help="ShapesWorld 2 benchmark(s) to measure (repeatable; default: sw2-20)")
    ev.set_defaults(func=run_eval)
    return parser




def parse_size(text: str) -> int | tuple[int, int]:
    """'224' -> 224, '224x320' -> (224, 320); anything else is a user error."""
    parts = str(text).lower().split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2) or min(nums, default=0) < 16:
        raise OvssError(f"--size {text!r} is not a size; give a side such as 224 or HxW such as 224x320 (at least 16)")
    from ..world.scene import MAX_SIDE

    if max(nums) > MAX_SIDE:
        raise OvssError(f"--size {text} is too large; ShapesWorld draws at most {MAX_SIDE} pixels a side")
    return nums[0] if len(nums) == 1 else (nums[0], nums[1])


def run_make(args: argparse.Namespace) -> int:
    from ..world import check_style, write_dataset

    if args.world == "shapesworld":
        check_style(args.style)
    size = parse_size(args.size)
    out = write_dataset(args.out_dir, args.n, style=args.style, seed=args.seed, split=args.split, size=size,
                        world=args.world, benchmark=args.benchmark)
    title = "ShapesWorld 2" if args.world == "shapesworld2" else "ShapesWorld"
    print(f"{title}: {args.n} {args.style} images of split {args.split!r} in {out}")
    return 0


def run_make3d(args: argparse.Namespace) -> int:
    from ..world.rooms import write_rooms

    size = parse_size(args.size)
    size = (size, size) if isinstance(size, int) else size
    out = write_rooms(args.out_dir, args.n, split=args.split, seed=args.seed, style=args.style, objects=args.objects,
                      frames=args.frames, points=args.points, frame_size=size, progress=not args.no_progress,
                      world=args.world, benchmark=args.benchmark)
    what = "ShapesWorld-3D" if args.world == "shapesworld" else f"ShapesWorld 2 ({args.benchmark or 'sw2-59'})"
    print(f"{what}: {args.n} {args.style} rooms of split {args.split!r} in {out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    # torch is imported only here, so other commands start fast.
    from dataclasses import replace

    from ..tinyclip.recipe import RECIPES
    from ..tinyclip.train import train_tiny_clip

    options = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "seed", "workers", "regions", "style_share",
                                            "level_weight", "world", "augment", "init", "warmup",
                                            "dense_weight")}
    options = {k: v for k, v in options.items() if v is not None}  # the flags given; the recipe has the rest
    if args.recipe not in RECIPES:
        raise OvssError(f"unknown recipe {args.recipe!r}; choose one of: {', '.join(RECIPES)}", param="--recipe")
    for k in ("steps", "batch_size"):
        if k in options and options[k] < 1:
            raise OvssError(f"--{k.replace('_', '-')} must be at least 1 (got {options[k]})")
    if not str(args.out).endswith(".safetensors"):
        raise OvssError(f"--out {args.out!r} must name a .safetensors file")
    from ..world.worlds import get_world

    recipe = replace(RECIPES[args.recipe], **options)
    get_world(recipe.world)  # an unknown world is refused before any training starts
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    summary = train_tiny_clip(args.out, recipe, progress=not args.no_progress)
    print(f"trained {summary['model']} in {summary['seconds']} s; wrote {args.out}")
    return 0


def _report_markdown(out: str, overwrite: bool):
    """Where the report's Markdown goes (next to --out), checked before any work. A Markdown file
    cannot carry ovss's job tag, so an existing one is replaced only with --overwrite, as the JSON
    report itself (world eval does not resume): a user's notes of that name stay."""
    from pathlib import Path

    md = Path(out).with_suffix(".md")
    if md.exists() and not overwrite:
        raise OvssError(f"refusing to write over {md}: the report's Markdown goes next to --out; choose another "
                        "--out, or replace it (--overwrite)", param="--overwrite")
    return md


def run_eval(args: argparse.Namespace) -> int:
    from ..files import write_json, write_text
    from ..model import load_model
    from ..tinyclip.quality import quality_report, report_markdown

    if args.world not in ("shapesworld", "shapesworld2"):
        raise OvssError(f"unknown world {args.world!r}; choose shapesworld or shapesworld2", param="--world")
    markdown = _report_markdown(args.out, getattr(args, "overwrite", False)) if args.out else None
    if args.n is not None and args.n < 1:
        raise OvssError(f"--n must be at least 1, got {args.n}", param="--n")
    if args.world == "shapesworld2":
        from ..tinyclip.quality2 import EVAL_SCENES, check_benchmarks2, quality_report2, report_markdown2

        benchmarks = check_benchmarks2(args.benchmark or ("sw2-20",))
        model = load_model("ovss-tiny", args.weights or "shapesworld2")
        report = quality_report2(model, n=args.n or EVAL_SCENES, benchmarks=benchmarks)
        report["model"] = model.describe()
        text = report_markdown2(report)
        print(text)
        if args.out:
            write_json(args.out, report)
            write_text(markdown, text)
        return 0
    if args.benchmark:
        raise OvssError("--benchmark names ShapesWorld 2 class lists: add --world shapesworld2 or drop it",
                        param="--benchmark")
    args.n = args.n or 50
    model = load_model("ovss-tiny", args.weights or "shapesworld")
    if args.quick:
        report = quality_report(model, n=args.n, heads=("naclip",), corruptions=(), styles=())
    else:
        report = quality_report(model, n=args.n)
    report["model"] = model.describe()
    text = report_markdown(report)
    print(text)
    if args.out:
        write_json(args.out, report)
        write_text(markdown, text)
    return 0
