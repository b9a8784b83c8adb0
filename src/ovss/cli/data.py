"""``ovss data``: list the supported benchmarks, prepare one from its official downloads, check its layout.

Checking first turns a crash half-way through an evaluation into a one-line answer that names the
missing folder and the command that prepares it; ``prepare`` is that command, and ends by checking.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import OvssError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("data", help="list benchmark datasets and check their folder layout",
                                   description="The benchmark datasets ovss reads (MMSegmentation's folder layout).")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    check = sub.add_parser(
        "check", help="check that ROOT holds a dataset in the expected layout and every file opens",
        description="Check the folder layout, then open every image and annotation header (fast, no decoding) "
                    "and list the broken files and size mismatches.",
    )
    check.add_argument("root", metavar="ROOT", help="dataset root, or the folder above it (e.g. data/ holding VOCdevkit)")
    check.add_argument("--dataset", required=True, metavar="NAME", help="registered dataset name (see `ovss data list`), or scene3d for 3D scenes")
    check.add_argument("--split", default="val", help="split to check (default: val)")
    check.set_defaults(func=run_check)

    prepare = sub.add_parser(
        "prepare", help="build a benchmark's evaluation layout from the official downloads (no mmsegmentation)",
        description="Read the official archives in place (tar/zip, nothing extracted), write the split's images and "
                    "label maps as MMSegmentation's and SCLIP's converters would (docs/parity.md), then run `data check`. "
                    "Resumable: run it again after a kill and it skips the finished files; it never writes over a file "
                    "it did not write.",
    )
    prepare.add_argument("dataset", metavar="NAME", help="voc21, voc20, context60, context59, coco_object, coco_stuff164k, cityscapes or ade20k")
    prepare.add_argument("--from", dest="downloads", required=True, metavar="DOWNLOADS",
                         help="folder holding the official files under their own names (e.g. VOCtrainval_11-May-2012.tar)")
    prepare.add_argument("--out", required=True, metavar="ROOT",
                         help="data root: the dataset goes to its usual folder below it (ROOT/VOCdevkit/VOC2012, ROOT/coco_stuff164k, ...)")
    prepare.add_argument("--split", default="val", help="split to prepare (default: val, the one the benchmarks evaluate)")
    prepare.add_argument("--no-checksum", dest="checksum", action="store_false",
                         help="skip comparing the downloads with their published md5/sha1 (default: compare; the structure is always checked)")
    prepare.set_defaults(func=run_prepare)

    listing = sub.add_parser("list", help="print the registered datasets",
                             description="Print every dataset name ovss knows (the names --dataset and "
                                         "--datasets accept), with its classes, split folders and reduce-zero-label rule.")
    listing.set_defaults(func=run_list)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    return parser


def run_check(args: argparse.Namespace) -> int:
    from ..data import scan_layout
    from ..data.integrity import check_files

    from pathlib import Path

    # a root that is not there is the user's mistake (exit 2); problems found in a dataset that is
    # there are the check's findings (exit 1)
    if not Path(args.root).is_dir():
        raise OvssError(f"dataset root {args.root} does not exist or is not a folder; pass the folder holding the "
                        "dataset (or the folder above it)")
    if args.dataset.lower() == "scene3d":  # a 3D scene folder, or a root of scene folders
        from ..scene3d.segments import dataset_problems

        scenes, problems = dataset_problems(args.root, args.split)
        for problem in problems:
            print(f"- {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"ok: {scenes} scene(s) in the ScanNet/OpenMask3D layout")
        return 0
    report = scan_layout(args.dataset, args.root, args.split)
    broken = check_files(report.items, progress=True)  # every image and annotation header: found now, not mid-run
    report.problems.extend(broken)
    if report.problems:
        print(f"{report.dataset} ({args.split}) at {report.root}: {len(report.problems)} problem(s)", file=sys.stderr)
        for problem in report.problems:
            print(f"- {problem}", file=sys.stderr)
        return 1
    print(f"ok: {report.images} images, {report.annotations} annotations, {report.classes} classes")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from ..data.prepare import prepare_dataset

    result = prepare_dataset(args.dataset, args.downloads, args.out, split=args.split,
                             checksum=args.checksum, progress=sys.stderr.isatty())
    print(f"{result.dataset} ({args.split}): {result.written} file(s) written, {result.skipped} kept from an earlier run, in {result.folder}")
    return run_check(argparse.Namespace(root=args.out, dataset=result.dataset, split=args.split))


def run_list(args: argparse.Namespace) -> int:
    from ..data import DATASETS
    from ..data.prepare import PREPARERS

    header = ("name", "classes", "background", "reduce_zero_label", "images", "annotations", "split file", "made by")
    rows = [header]
    for spec in DATASETS.values():
        rows.append((
            spec.name,
            str(spec.num_classes) if spec.num_classes else "ROOT/" + spec.class_file,
            "from ROOT" if spec.classes_in_root else (str(spec.background_index) if spec.has_background else "-"),
            "yes" if spec.reduce_zero_label else "no",
            f"{spec.path(spec.image_dir, 'val')}/*{spec.image_suffix}",
            f"{spec.path(spec.ann_dir, 'val')}/*{spec.ann_suffix}",
            spec.path(spec.split_file, "val") or "-",
            f"ovss data prepare {spec.name} -> ROOT/{PREPARERS[spec.name].folder}" if spec.name in PREPARERS
            else "ovss world make",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print("\nFrom the official downloads: ovss data prepare NAME --from DOWNLOADS --out ROOT (see `ovss data prepare --help`).")
    return 0
