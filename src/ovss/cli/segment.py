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
    p.add_argument("--head", default=None, help="dense head (default: the preset's): clip, maskclip, sclip, clearclip, naclip")
    p.add_argument("--preset", default=None, help="inference protocol: sclip, naclip, clearclip, mlmp, shapesworld (default: shapesworld for the embedded model, else naclip)")
    p.add_argument("--dataset", default=None, help="apply the preset's settings for this dataset (e.g. voc21)")
    p.add_argument("--prob-thd", type=float, default=None, help="pixels below this class probability become class 0")
    p.add_argument("--pamr", action="store_true", default=None, help="refine with PAMR")
    p.add_argument("--prompts", default=None, metavar="FILE", help="adapted prompts from `ovss adapt train` (RUN/prompts.safetensors)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tta", default=None, metavar="METHOD",
                   help="adapt the model on each image before segmenting it: tent, tpt, watt, clipartt, mlmp")
    p.add_argument("--open-world", action="store_true",
                   help="label only the classes asked for; every other pixel stays unlabelled (255), "
                        "decided by contrasting with --concepts")
    from .concepts import add_concept_args

    add_concept_args(p)
    p.set_defaults(func=run)


def collect_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files to segment, and the problems with inputs that give none."""
    from ..files import IMAGE_SUFFIXES

    files, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                problems.append(f"no images in folder {path} (looked for {', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        else:
            files.append(path)
    return files, problems


class EncodedAhead:
    """Reads and encodes the next few images of a folder together, their windows in shared
    forwards (``Segmenter.encode_images``): it pays where one image has few windows. Features are
    kept for at most ``group`` images at a time (bounded memory); a file that cannot be read fails
    alone, as before."""

    def __init__(self, seg, files: list[Path], read, group: int = 8):
        self.seg, self.files, self.read, self.group = seg, files, read, group
        self.ready: dict[int, tuple] = {}
        self.next = 0

    def get(self, path: Path):
        i = self.next
        self.next += 1
        assert self.files[i] == path, "images are asked for in the order of the files"
        if i not in self.ready:
            self._encode(i)
        found = self.ready.pop(i)
        if isinstance(found, OvssError):
            raise found
        return found

    def _encode(self, start: int) -> None:
        images = {}
        for i in range(start, min(start + self.group, len(self.files))):
            try:
                images[i] = self.read(self.files[i])
            except OvssError as e:
                self.ready[i] = e
        try:
            encoded = self.seg.encode_images(list(images.values()))
        except OvssError:  # one bad image must not fail its neighbours: encode them one by one
            encoded = []
            for i, image in images.items():
                try:
                    encoded.append(self.seg.encode_images([image])[0])
                except OvssError as e:
                    encoded.append(e)
        for (i, image), enc in zip(images.items(), encoded):
            self.ready[i] = enc if isinstance(enc, OvssError) else (image, enc)


def default_preset(model) -> str:
    from ..model import is_embedded

    return "shapesworld" if is_embedded(model) else "naclip"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..files import read_rgb, save_image, write_json
    from ..segment import Segmenter
    from ..text import parse_classes
    from ..viz import label_png, overlay

    classes = parse_classes(args.classes, args.classes_file)
    files, problems = collect_images(args.inputs)
    tta = None
    if args.tta is not None:
        from ..adaptation import get_method

        if args.open_world:
            raise OvssError("--tta does not work with --open-world; drop one of them")
        tta = get_method(args.tta)
    apply_speed_args(args)
    if tta is not None and args.precision == "int8":
        raise OvssError("--precision int8 is for inference only; use bf16 or fp32 with --tta")
    model = load_model_from_args(args)
    seg = Segmenter(
        model, head=args.head, preset=args.preset or default_preset(model), dataset=args.dataset,
        prob_thd=args.prob_thd, pamr=args.pamr, precision=args.precision,
    )
    if args.prompts:
        from ..domain import apply_prompts

        apply_prompts(seg, args.prompts)
    open_world = None
    if args.open_world:
        from .concepts import OpenWorldRun

        open_world = OpenWorldRun(args, seg, classes)
    elif args.concepts is not None:
        raise OvssError("--concepts works with --open-world; add --open-world or drop --concepts")
    out = Path(args.out)
    for problem in problems:
        print(f"ovss: error: {problem}", file=sys.stderr)
    stems: dict[str, int] = {}
    failed = len(problems)
    ahead = EncodedAhead(seg, files, read_rgb) if open_world is None and tta is None else None
    for path in tqdm(files, desc="segment", unit="img", disable=len(files) < 2):
        try:
            if ahead is not None:  # plain segmentation: images encoded a few at a time
                image, encoded = ahead.get(path)
                result = seg.predict(classes=classes, encoded=encoded)
                labels, shares = result.labels.cpu().numpy().astype("uint8"), result.shares()
            elif open_world is not None:
                image = read_rgb(path)
                labels, shares = open_world.segment(image)
            else:
                import torch

                from ..adaptation.common import label_shares

                image = read_rgb(path)
                torch.manual_seed(0)  # methods with random views give the same labels every run
                lab = tta(seg, [image], classes, [image.shape[:2]])[0]
                labels, shares = lab.cpu().numpy().astype("uint8"), label_shares(lab, classes)
        except OvssError as e:
            print(f"ovss: error: {e}", file=sys.stderr)
            failed += 1
            continue
        stem = path.stem if path.stem not in stems else f"{path.stem}_{stems[path.stem]}"
        stems[path.stem] = stems.get(path.stem, 0) + 1
        save_image(out / f"{stem}.png", label_png(labels))
        save_image(out / f"{stem}_overlay.png", overlay(image, labels, classes.names, list(shares.values())))
        write_json(out / f"{stem}.json", {
            "image": str(path), "size": list(image.shape[:2]),
            "classes": [list(s) for s in classes.synonyms],
            "pixel_share": shares,
            "outputs": {"labels": f"{stem}.png", "overlay": f"{stem}_overlay.png"},
            "settings": seg.settings(),
            **({"tta": {"method": tta.name, **tta.hparams()}} if tta is not None else {}),
            **({"open_world": open_world.describe()} if open_world is not None else {}),
        })
        if len(files) == 1:
            print(f"wrote {out / (stem + '_overlay.png')}")
    if len(files) > 1:
        print(f"segmented {len(files) - failed + len(problems)} of {len(files)} images into {out}")
    return 1 if failed else 0
