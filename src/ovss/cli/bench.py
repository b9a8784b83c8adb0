"""``ovss bench``: the robustness benchmark (datasets x corruptions x methods x seeds) and its summary.

Runs under ``torchrun --nproc-per-node N -m ovss bench ...`` as well: the images are split across
the processes and the confusion matrices summed, giving the single-process numbers exactly.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import OvssError
from .common import add_model_args, add_speed_args, apply_speed_args, weights_for_data


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark segmentation under corruptions and adaptation methods",
        description=(
            "Evaluate every dataset clean and under ImageNet-C corruptions, for each adaptation method and seed; "
            "writes RUN/{dataset}/{method}/{corruption}.json per scenario (a rerun skips finished ones and resumes "
            "unfinished ones), then RUN/summary.md, RUN/summary.csv and RUN/{dataset}_bar.png."
        ),
    )
    p.add_argument("--dataset", help="dataset name(s), comma-separated (see `ovss data list`)")
    p.add_argument("--data-root", help="dataset root(s), comma-separated, one per dataset (or one for all)")
    p.add_argument("--split", default="val", help="split to evaluate (default: val)")
    p.add_argument("--corruptions", default="all",
                   help="all, original, or comma-separated corruption names; original is always included (default: all)")
    p.add_argument("--severity", type=int, default=5, help="corruption severity 1..5 (default: 5)")
    p.add_argument("--head", default=None, help="dense head (default: the preset's)")
    p.add_argument("--vfm", dest="second_backbone", default=None, help="second backbone for heads that use one (proxyclip): dino-vitb8, dino-vitb16")
    p.add_argument("--vfm-weights", dest="second_weights", default=None, metavar="PATH",
                   help="its checkpoint (e.g. dino_vitbase8_pretrain.pth), or 'none' for random weights (cost figures only)")
    p.add_argument("--preset", default=None,
                   help="inference protocol (default: shapesworld for the embedded model on shapesworld, else naclip)")
    p.add_argument("--methods", default="none", help="adaptation methods, comma-separated (default: none)")
    p.add_argument("--method-args", default=None, metavar="M.NAME=V[,...]",
                   help="per-method hyper-parameters, e.g. tent.lr=1e-4,watt.rounds=3 (recorded in every result); "
                        "with --preset mlmp the methods start from MLMP's own settings (text, steps, layout)")
    p.add_argument("--metric", default="miou", choices=("miou", "iou-single"),
                   help="miou: the corruption x method grid; iou-single: open-world queries on clean images (default: miou)")
    p.add_argument("--concepts", default="background,cooc,oracle",
                   help="with --metric iou-single: concept sources, comma-separated (background, cooc, llm, oracle, FILE)")
    p.add_argument("--concepts-dict", default=None, metavar="DICT",
                   help="with --metric iou-single: co-occurrence dictionary of the cooc source: a file from "
                        "`ovss concepts build` or a shipped name, shapesworld2 or shapesworld (default: the one of a "
                        "ShapesWorld export's world, else shapesworld2)")
    p.add_argument("--extra-classes", default=None, metavar="N[,N...]",
                   help="class-count analysis instead of the grid: mIoU on clean images with N irrelevant class names "
                        "added at inference, plotted against N (as `ovss openbench classcount`; one dataset)")
    p.add_argument("--seeds", default="0", help="seeds, comma-separated; several give mean ± std (default: 0)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images of each dataset")
    p.add_argument("--workers", type=int, default=2, help="data-loading worker processes (default: 2; 0 = in the main process)")
    p.add_argument("--checkpoint-every", type=int, default=25, metavar="N",
                   help="save an unfinished scenario's progress every N images (default: 25)")
    add_model_args(p)
    add_speed_args(p)
    p.add_argument("--prompts", default=None, metavar="FILE", help="adapted prompts from `ovss adapt train` (RUN/prompts.safetensors)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder for the results")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results in RUN that were computed with other settings (default: stop and say what differs)")
    p.add_argument("--report-only", action="store_true", help="only rebuild the summary from the JSONs in RUN")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _split(text: str | None, what: str) -> list[str]:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not items:
        raise OvssError(f"{what} is required (e.g. --dataset shapesworld --data-root data/shapesworld)")
    return items


def run(args: argparse.Namespace) -> int:
    from ..adaptation import get_method, parse_method_args
    from ..evaluation.report import write_report
    from ..evaluation.runner import (
        check_severity, open_dataset, parse_corruptions, parse_seeds, run_benchmark, setup_distributed,
        teardown_distributed,
    )

    from .common import check_model_args, check_out_dir

    if args.report_only:
        print(write_report(args.out), end="")
        return 0
    check_model_args(args)

    # everything a user can get wrong is checked before the model loads
    names = [n.lower() for n in _split(args.dataset, "--dataset")]
    roots = _split(args.data_root, "--data-root")
    if len(roots) == 1:
        roots = roots * len(names)
    if len(roots) != len(names):
        raise OvssError(f"--data-root lists {len(roots)} roots for {len(names)} datasets; give one per dataset or one for all")
    corruptions = parse_corruptions(args.corruptions)
    severity = check_severity(args.severity)
    seeds = parse_seeds(args.seeds)
    method_names = [m.lower() for m in _split(args.methods, "--methods")]
    method_args = parse_method_args(args.method_args, method_names)
    methods = [get_method(m, protocol=args.preset, **method_args[m]) for m in method_names]
    apply_speed_args(args)
    if args.precision != "fp32" and (args.metric != "miou" or args.extra_classes is not None):
        raise OvssError("--precision applies to the mIoU grid only; drop it with --metric iou-single or --extra-classes")
    if args.precision == "int8" and any(m.name != "none" for m in methods):
        raise OvssError("--precision int8 is for inference only; use bf16 or fp32 with adaptation methods")
    if args.limit is not None and args.limit < 1:
        raise OvssError(f"--limit must be a positive number of images, got {args.limit}")
    if args.workers < 0:
        raise OvssError(f"--workers must be 0 or more, got {args.workers}")
    from ..segment import check_second_backbone

    for name in names:  # a preset's head may differ per dataset
        check_second_backbone(args.head, args.preset, name, args.second_backbone, args.second_weights)
    world = weights_for_data(args, roots)  # before --out is made: a refusal leaves nothing behind
    check_out_dir(args.out)
    if args.extra_classes is not None:
        return _class_count(args, names, roots, seeds)
    from ..concepts.cooccurrence import DEFAULT_DICTIONARY, SHIPPED

    if args.concepts_dict is None and args.metric == "iou-single" and world in SHIPPED and world != DEFAULT_DICTIONARY:
        args.concepts_dict = world  # the dictionary mined from the data's own world's captions
        print(f"concepts: the shipped {world} co-occurrence dictionary (the data's world); --concepts-dict "
              "chooses another", file=sys.stderr)
    if args.concepts_dict is not None:
        if args.metric != "iou-single":
            raise OvssError("--concepts-dict applies to --metric iou-single only")
        if args.concepts_dict not in SHIPPED and not Path(args.concepts_dict).is_file():
            raise OvssError(f"--concepts-dict {args.concepts_dict}: no such file; build one with `ovss concepts build` "
                            f"or name a shipped one ({', '.join(SHIPPED)})")
    datasets = [open_dataset(n, r, args.split, args.limit) for n, r in zip(names, roots)]

    import torch

    from ..model import load_model

    if args.metric == "iou-single":
        from ..concepts.bench import run_iou_single

        torch.manual_seed(0)
        model = load_model(args.model, args.pretrained, device=args.device)
        text = run_iou_single(model, datasets, args.out, _split(args.concepts, "--concepts"), head=args.head,
                              preset=args.preset, progress=not args.no_progress, dictionary=args.concepts_dict,
                              overwrite=args.overwrite)
        print(text, end="")
        return 0

    rank, _, device = setup_distributed(args.device)
    try:
        torch.manual_seed(0)  # random weights (--pretrained none) are then the same in every run and process
        model = load_model(args.model, args.pretrained, device=device)
        prompts = None
        if args.prompts:
            from ..opendas import load_prompt_addition

            prompts = load_prompt_addition(args.prompts, model)
        run_benchmark(
            model, datasets, args.out, split=args.split, corruptions=corruptions, severity=severity,
            methods=methods, seeds=seeds, limit=args.limit, workers=args.workers, head=args.head,
            preset=args.preset, checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
            prompts=prompts, overwrite=args.overwrite, second_backbone=args.second_backbone, second_weights=args.second_weights, precision=args.precision,
        )
        if rank == 0:
            text = write_report(args.out)
            print(text, end="")
            print(f"results in {args.out} (summary.md, summary.csv, *_bar.png)", file=sys.stderr)
    finally:
        teardown_distributed()
    return 0


def _class_count(args: argparse.Namespace, names: list[str], roots: list[str], seeds: list[int]) -> int:
    """``--extra-classes``: the class-count curve of ``ovss openbench classcount`` on one dataset."""
    import torch

    from ..evaluation.runner import open_dataset
    from ..model import load_model
    from ..openbench import run_class_count
    from .common import parse_counts

    if len(names) != 1:
        raise OvssError("--extra-classes analyses one dataset at a time; give a single --dataset")
    if args.metric != "miou" or args.methods != "none":
        raise OvssError("--extra-classes measures mIoU without adaptation; drop --metric/--methods")
    counts = parse_counts(args.extra_classes, "--extra-classes")
    dataset = open_dataset(names[0], roots[0], args.split, args.limit)
    torch.manual_seed(0)
    model = load_model(args.model, args.pretrained, device=args.device)
    table = run_class_count(model, dataset, counts, args.out, seed=seeds[0], head=args.head, preset=args.preset,
                            progress=not args.no_progress)
    print(table, end="")
    print(f"results in {args.out} (classcount.json, classcount.md, classcount.png)", file=sys.stderr)
    return 0
