"""``ovss 3d``: open-vocabulary 3D instance classification (OpenMask3D protocol, box-only crops).

    ovss 3d classify SCENE [--masks M] --classes "chair, table" [--prompts P] --out DIR
    ovss 3d eval DIR [DIR ...] [--base-classes FILE] [--out JSON]
"""
from __future__ import annotations

import argparse

from .common import add_model_args, no_verb


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("3d", help="name the instances of a 3D scene (OpenMask3D protocol) and score AP",
                                   description="Open-vocabulary 3D instance classification with CLIP crops of posed frames.")
    parser.set_defaults(func=lambda args: no_verb(parser))
    verbs = parser.add_subparsers(dest="scene3d_verb", metavar="VERB")

    c = verbs.add_parser("classify", help="label every instance mask of a scene",
                         description="Project each mask into the frames, crop its top-k views at 3 scales, encode "
                                     "with CLIP (and prompts), label it; writes instances.json, labelled.ply, views/.")
    c.add_argument("scene", metavar="SCENE", help="scene folder: scene.ply, color/, depth/, pose/, intrinsic/")
    c.add_argument("--masks", default=None, help="N x M masks (.npy/.pt) or per-point ids (.npy/.txt) "
                                                 "(default: SCENE/instance_ids.npy)")
    c.add_argument("--classes", default=None, help='comma-separated classes, e.g. "chair, table"')
    c.add_argument("--classes-file", default=None, help="class file: one class per line, synonyms after commas")
    c.add_argument("--prompts", default=None, metavar="FILE", help="RUN/prompts.safetensors of `ovss adapt train`")
    c.add_argument("--out", required=True, metavar="DIR", help="output folder")
    c.add_argument("--top-k", type=int, default=5, help="views per mask (default: 5)")
    c.add_argument("--levels", type=int, default=3, help="crop levels per view (default: 3)")
    c.add_argument("--expansion", type=float, default=0.1, help="box growth per level (default: 0.1)")
    c.add_argument("--vis-threshold", type=float, default=0.2, help="depth agreement for visibility, metres (default: 0.2)")
    c.add_argument("--templates", default="single", help="templates without text prompts (default: single)")
    c.add_argument("--score", default="softmax", help="softmax (class probability) or ones (OpenMask3D) (default: softmax)")
    c.add_argument("--views", type=int, default=3, help="labelled frames to write (default: 3)")
    c.add_argument("--batch-size", type=int, default=64, help="crops per CLIP batch (default: 64)")
    c.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_model_args(c)
    c.set_defaults(func=run_classify)

    e = verbs.add_parser("eval", help="ScanNet-style AP, AP50, AP25 (all, base, novel) of classified scenes",
                         description="Score `ovss 3d classify` results against the scenes' ground truth.")
    e.add_argument("results", nargs="+", metavar="DIR", help="output folders of `ovss 3d classify`")
    e.add_argument("--base-classes", default=None, metavar="FILE",
                   help="classes seen in adaptation (default: the prompts' own, else the rooms' own split)")
    e.add_argument("--min-region", type=int, default=100, help="smallest instance that counts, points (default: 100)")
    e.add_argument("--out", default=None, metavar="JSON", help="also write the scores here")
    e.set_defaults(func=run_eval)
    return parser


def run_classify(args: argparse.Namespace) -> int:
    from ..scene3d.classify import classify_to_folder
    from ..scene3d.features import FeatureConfig

    cfg = FeatureConfig(top_k=args.top_k, levels=args.levels, expansion=args.expansion,
                        vis_threshold=args.vis_threshold, batch_size=args.batch_size)
    progress = None
    if not args.no_progress:
        from functools import partial

        from tqdm import tqdm

        progress = partial(tqdm, desc="visibility", unit="frame", leave=False)
    result = classify_to_folder(args.scene, args.out, args.masks, args.classes, args.classes_file, args.prompts,
                                args.model, args.pretrained, args.device, cfg, args.templates, args.score,
                                args.views, progress)
    labelled = [i for i in result["instances"] if i["label"] is not None]
    print(f"{len(labelled)} of {len(result['instances'])} instances labelled "
          f"({'prompts ' + result['prompts']['file'] if result['prompts'] else 'no adaptation'}); wrote {args.out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ..scene3d.outputs import evaluate_folders
    from ..files import write_json

    scores = evaluate_folders(args.results, args.base_classes, args.min_region)
    if args.out:
        write_json(args.out, scores)
    print(scores["table"], end="")
    return 0
