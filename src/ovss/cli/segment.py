"""``ovss segment``: label every pixel of any image with any words."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import OvssError
from .common import add_model_args, add_speed_args, apply_speed_args, load_model_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "segment",
        help="segment images with any class names",
        description="Segment images into the given classes; writes a label PNG, an overlay PNG and a JSON per image.",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    p.add_argument("--classes", help='comma-separated class names, e.g. "cat, sofa"')
    p.add_argument("--classes-file", help="class file: one class per line, synonyms separated by commas")
    add_model_args(p)
    add_speed_args(p)
    p.add_argument("--head", default=None, help="dense head (default: the preset's): clip, maskclip, sclip, clearclip, naclip, gem, scclip, sclip+rcs, clearclip+rcs, naclip+rcs, proxyclip")
    p.add_argument("--preset", default=None, help="inference protocol: sclip, naclip, clearclip, gem, scclip, resclip-rcs, resclip, proxyclip, mlmp, shapesworld (default: shapesworld for the embedded model, else naclip)")
    p.add_argument("--dataset", default=None, help="apply the preset's settings for this dataset (e.g. voc21)")
    p.add_argument("--vfm", dest="second_backbone", default=None, help="second backbone for heads that use one (proxyclip): dino-vitb8, dino-vitb16")
    p.add_argument("--vfm-weights", dest="second_weights", default=None, metavar="PATH",
                   help="its checkpoint (e.g. dino_vitbase8_pretrain.pth), or 'none' for random weights (cost figures only)")
    p.add_argument("--prob-thd", type=float, default=None, help="pixels below this class probability become class 0")
    p.add_argument("--pamr", action="store_true", default=None, help="refine with PAMR")
    p.add_argument("--prompts", default=None, metavar="FILE", help="adapted prompts from `ovss adapt train` (RUN/prompts.safetensors)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none either when stderr is not a terminal, e.g. a log file)")
    p.add_argument("--tta", default=None, metavar="METHOD",
                   help="adapt the model on each image before segmenting it: tent, tpt, watt, clipartt, mlmp")
    p.add_argument("--open-world", action="store_true",
                   help="label only the classes asked for; every other pixel stays unlabelled (255), "
                        "decided by contrasting with --concepts")
    from .concepts import add_concept_args

    add_concept_args(p)
    p.set_defaults(func=run)


def collect_images(inputs: list[str]) -> tuple[list[Path], list[Path], list[str]]:
    """Files to segment, the folders they came from, and the problems with inputs that give none."""
    from ..files import IMAGE_SUFFIXES

    files, folders, problems = [], [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                problems.append(f"no images in folder {path} (looked for {', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
            folders.append(path)
        else:
            files.append(path)
    return files, folders, problems


def _terminal(stream) -> bool:
    """Whether ``stream`` is a terminal: a progress bar redraws itself with carriage returns, which a
    log file or a pipe keeps as one long line of partial bars."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def check_dataset_name(name: str | None) -> None:
    """``--dataset`` picks per-dataset preset settings: an unknown name is an error, not ignored."""
    if name is None:
        return
    from ..data import DATASETS

    if name not in DATASETS:
        raise OvssError(f"unknown --dataset '{name}'; choose one of: {', '.join(DATASETS)}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..files import read_image
    from ..images import frames_record
    from ..segment import Segmenter, default_preset
    from ..segment.ahead import EncodedAhead
    from ..segment.outputs import plan_outputs
    from ..segment.single import write_segmentation
    from ..text import parse_classes
    from ..viz import overlay_size
    from .common import check_model_args, check_out_dir

    # everything a user can get wrong is checked before the model loads
    classes = parse_classes(args.classes, args.classes_file)
    check_dataset_name(args.dataset)
    from ..segment.presets import check_ranges

    check_ranges({"prob_thd": args.prob_thd})
    from ..segment import check_second_backbone

    check_second_backbone(args.head, args.preset, args.dataset, args.second_backbone, args.second_weights)
    check_model_args(args)
    files, folders, problems = collect_images(args.inputs)
    tta = None
    if args.tta is not None:
        from ..adaptation import get_method

        if args.open_world:
            raise OvssError("--tta does not work with --open-world; drop one of them")
        # the preset's protocol chooses the method's settings, as ``ovss bench --preset`` does
        # (under mlmp: the checkpoint's logit scale, MLMP's templates); the JSON records them
        tta = get_method(args.tta, protocol=args.preset)
    out = check_out_dir(args.out)
    stems = plan_outputs(files, folders, out)
    apply_speed_args(args)
    if tta is not None and args.precision == "int8":
        raise OvssError("--precision int8 is for inference only; use bf16 or fp32 with --tta")
    if not args.open_world and args.concepts is not None:
        raise OvssError("--concepts works with --open-world; add --open-world or drop --concepts")
    model = load_model_from_args(args)
    prompts = None
    if args.prompts:
        from ..opendas import load_prompt_addition

        prompts = load_prompt_addition(args.prompts, model)
    seg = Segmenter(
        model, head=args.head, preset=args.preset or default_preset(model, args.dataset), dataset=args.dataset,
        prob_thd=args.prob_thd, pamr=args.pamr, prompts=prompts, second_backbone=args.second_backbone, second_weights=args.second_weights,
        precision=args.precision,
    )
    open_world = None
    if args.open_world:
        from .concepts import open_world_from_args

        open_world = open_world_from_args(args, seg, classes)
    for problem in problems:
        print(f"ovss: error: {problem}", file=sys.stderr)
    failed = len(problems)
    legend_said = None
    # plain segmentation: the images of a folder are encoded a few at a time (shared forwards)
    ahead = EncodedAhead(seg, files, read_image) if open_world is None and tta is None else None
    for path, stem in tqdm(list(zip(files, stems)), desc="segment", unit="img", disable=len(files) < 2 or args.no_progress or not _terminal(sys.stderr)):
        reduced: dict = {}  # work done below the photo's size to bound memory: said in the JSON and the log
        try:
            if ahead is not None:
                loaded, encoded = ahead.get(path)
                image = loaded.rgb
                result = seg.predict(classes=classes, encoded=encoded, output_size=image.shape[:2])  # mlmp too
                labels, shares = result.labels.cpu().numpy().astype("uint8"), result.shares()
                reduced = {k: v for k, v in (result.reduced or {}).items() if k in ("input_size", "pamr_size")}
            else:
                loaded = read_image(path)
                image = loaded.rgb
                if open_world is not None:
                    labels, shares = open_world.segment(image)
                else:
                    from ..adaptation.single import adapt_and_segment

                    labels, shares = adapt_and_segment(tta, seg, image, classes)
        except OvssError as e:
            print(f"ovss: error: {e}", file=sys.stderr)
            failed += 1
            continue
        frames, note = frames_record(path)
        if note:
            print(f"ovss: note: {note}", file=sys.stderr)
        if overlay_size(*labels.shape) != labels.shape:
            reduced["overlay_size"] = list(overlay_size(*labels.shape))
        if reduced:
            what = {"input_size": "the model saw it", "pamr_size": "PAMR ran", "overlay_size": "the overlay is"}
            done = ", ".join(f"{what[k]} at {v[1]}x{v[0]}" for k, v in reduced.items())
            print(f"ovss: note: {path} is {labels.shape[1]}x{labels.shape[0]} pixels: {done}, to bound memory; "
                  "labels are at full size", file=sys.stderr)
        written = write_segmentation(out, stem, image, labels, classes, shares, str(path), seg.settings(), {
            **loaded.describe(), **frames,
            **({"reduced": {"why": "bounded memory", "labels_size": list(labels.shape), **reduced}} if reduced else {}),
            **({"tta": {"method": tta.name, **tta.hparams()}} if tta is not None else {}),
            **({"open_world": open_world.describe()} if open_world is not None else {}),
        })
        if written.note and written.note != legend_said:
            legend_said = written.note  # once per run, not once per image
            print(f"ovss: note: {written.note}", file=sys.stderr)
        if len(files) == 1:
            print(f"wrote {out / (stem + '_overlay.png')}")
    if len(files) > 1:
        print(f"segmented {len(files) - failed + len(problems)} of {len(files)} images into {out}")
    # nothing segmented (a missing file, a file that is no image): the user's mistake, exit 2; some
    # images written and some not: exit 1, the others are kept
    done = len(files) - (failed - len(problems))
    if failed and done == 0:
        return 2
    return 1 if failed else 0
