"""``ovss adapt``: open-vocabulary domain adaptation of CLIP by prompt tuning (OpenDAS).

train: learn prompts on a dataset's base-class segments (opendas, coop or vpt), then print the table;
eval: OpenDAS's table (Acc, W-F1, B-F1, N-F1) for prompts files on one or more test sets;
segments-miou: name class-agnostic mask proposals with the adapted CLIP and score mIoU;
negatives: ask an OpenAI-compatible LLM for negative queries and write them as JSON.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import OvssError
from .common import add_llm_args, add_model_args, no_verb, weights_for_data


def add_parser(sub) -> None:
    p = sub.add_parser("adapt", help="adapt CLIP to a domain by prompt tuning (OpenDAS, CoOp, VPT)",
                       description="Open-vocabulary domain adaptation: learn prompts on a dataset's segments.")
    verbs = p.add_subparsers(dest="adapt_verb", metavar="VERB")
    p.set_defaults(func=lambda args: no_verb(p))

    t = verbs.add_parser("train", help="learn prompts on the base-class segments of a dataset",
                         description="Learn prompts on a dataset's base-class segments; rerunning resumes from RUN/checkpoint.")
    t.add_argument("--method", default="opendas", help="opendas, coop or vpt (default: opendas)")
    _add_data_args(t, split="train")
    t.add_argument("--out", required=True, metavar="RUN", help="run folder: prompts.safetensors, train.log, checkpoint")
    t.add_argument("--negatives", default="auto", metavar="SOURCE",
                   help="negative queries: a JSON file (class -> names), llm, none, or auto (the shipped file of the dataset, if any)")
    t.add_argument("--epochs", type=int, default=5, help="epochs per stage (default: 5)")
    t.add_argument("--batch-size", type=int, default=16, help="segments per step (default: 16)")
    t.add_argument("--lr", type=float, default=0.0025, help="SGD learning rate after the warm-up epoch (default: 0.0025)")
    t.add_argument("--lambda", dest="triplet_weight", type=float, default=5.0, help="triplet loss weight, ramped up from 0 (default: 5)")
    t.add_argument("--proxy-weight", type=float, default=0.0,
                   help="weight of OVSNet's Proxy Calibration loss in both stages (default: 0, off)")
    t.add_argument("--margin", type=float, default=1.5, help="triplet margin (default: 1.5)")
    t.add_argument("--visual-k", type=int, default=None, help="visual prompts per layer (default: the method's)")
    t.add_argument("--text-k", type=int, default=None, help="text prompts per layer (default: the method's)")
    t.add_argument("--visual-depth", type=int, default=None, help="layers with visual prompts (default: the method's)")
    t.add_argument("--text-depth", type=int, default=None, help="layers with text prompts (default: the method's)")
    t.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    t.add_argument("--checkpoint-every", type=int, default=50, metavar="STEPS", help="checkpoint interval (default: 50)")
    t.add_argument("--eval-data", default=None, metavar="ROOT", help="test set for the final table (default: --data)")
    t.add_argument("--eval-split", default="val", help="split of the test set (default: val)")
    _add_llm_args(t)
    add_model_args(t)
    t.set_defaults(func=run_train)

    e = verbs.add_parser("eval", help="OpenDAS's table: Acc, W-F1, B-F1, N-F1 of prompts on test sets",
                         description="Classify every segment of each test set with and without the prompts.")
    e.add_argument("--prompts", nargs="*", default=[], metavar="FILE", help="RUN/prompts.safetensors files (none: only no adaptation)")
    _add_data_args(e, split="val", several=True)
    e.add_argument("--out", default=None, metavar="JSON", help="also write the scores here")
    add_model_args(e)
    e.set_defaults(func=run_eval)

    s = verbs.add_parser("segments-miou", help="name mask proposals with the adapted CLIP and score mIoU",
                         description="Classify class-agnostic masks (ground truth, superpixels or dense-head regions) and score mIoU.")
    s.add_argument("--prompts", default=None, metavar="FILE", help="prompts file (default: none, the unadapted CLIP)")
    _add_data_args(s, split="val")
    s.add_argument("--proposals", default="gt", help="gt, slic or dense (default: gt)")
    s.add_argument("--out", default=None, metavar="JSON", help="also write the scores here")
    add_model_args(s)
    s.set_defaults(func=run_segments_miou)

    n = verbs.add_parser("negatives", help="generate negative queries with an OpenAI-compatible LLM",
                         description="Ask an LLM OpenDAS's instruction for five negatives per class; write class -> names as JSON.")
    n.add_argument("--classes", default=None, help='comma-separated classes, e.g. "boat, car"')
    n.add_argument("--classes-file", default=None, help="class file: one class per line (synonyms after commas are ignored)")
    n.add_argument("--out", required=True, metavar="JSON", help="file to write")
    _add_llm_args(n)
    n.set_defaults(func=run_negatives)


def _add_data_args(p: argparse.ArgumentParser, split: str, several: bool = False) -> None:
    g = p.add_argument_group("data")
    if several:
        g.add_argument("--data", nargs="+", required=True, metavar="ROOT", help="dataset root(s); one table column group each")
    else:
        g.add_argument("--data", required=True, metavar="ROOT", help="dataset root (MMSegmentation layout)")
    g.add_argument("--dataset", default="shapesworld", help="dataset name (default: shapesworld; see `ovss data list`), or scene3d for 3D scenes")
    g.add_argument("--split", default=split, help=f"split (default: {split})")
    g.add_argument("--base-classes", default=None, metavar="FILE",
                   help="classes seen in adaptation, one per line (default: the prompts' own, or ShapesWorld's base split)")
    g.add_argument("--limit", type=int, default=None, help="use only the first N images")
    g.add_argument("--cache", default=None, metavar="DIR", help="segment cache folder (default: ~/.cache/ovss/segments; none: do not cache)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_llm_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LLM for --negatives llm")
    add_llm_args(g)


def _llm(args: argparse.Namespace):
    from .concepts import llm_from_args

    client = llm_from_args(args)
    if client is None:
        raise OvssError("negatives from an LLM need --llm-endpoint URL and --llm-model NAME")
    return client


def _export_meta(args: argparse.Namespace) -> dict:
    """meta.json of a ShapesWorld 2 export or of ShapesWorld 2 rooms given as --data ({} for anything
    else): its base split and its world decide the defaults, not ShapesWorld's."""
    if args.dataset.lower() not in ("shapesworld", "scene3d") or not getattr(args, "data", None):
        return {}
    from ..world.export import world2_meta

    roots = args.data if isinstance(args.data, (list, tuple)) else [args.data]
    return world2_meta(roots[0])


def _base_classes(args: argparse.Namespace, fallback: list[str] | None = None) -> list[str]:
    """--base-classes FILE, else ``fallback`` (a prompts file's own), else ShapesWorld's split."""
    if args.base_classes:
        from ..data import read_class_file

        return [names[0] for names in read_class_file(args.base_classes)]
    if fallback:
        return list(fallback)
    meta = _export_meta(args)
    if meta.get("base_classes"):  # a ShapesWorld 2 export names its own split
        return list(meta["base_classes"])
    if args.dataset.lower() == "shapesworld" or _shapesworld3d(args):
        from ..world import BASE_CLASSES

        return list(BASE_CLASSES)
    raise OvssError(f"--base-classes FILE is required for dataset {args.dataset} (one class seen in adaptation per line)")


def _check_limit(args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        raise OvssError(f"--limit must be a positive number of images, got {args.limit}")


def _load_model(args: argparse.Namespace, prompts: str | None = None):
    """The model named by the options, else the one the prompts were learned on (seeded: random
    weights, ``--pretrained none``, are then the same as in training)."""
    import torch

    from ..opendas import read_sidecar
    from ..model import load_model

    name, pretrained = args.model, args.pretrained
    if name is None and prompts:
        recorded = read_sidecar(prompts).get("model", {})
        name, pretrained = recorded.get("name"), pretrained or recorded.get("pretrained")
    elif getattr(args, "data", None):
        weights_for_data(args, args.data if isinstance(args.data, (list, tuple)) else [args.data])
        pretrained = args.pretrained
    torch.manual_seed(0)
    return load_model(name, pretrained, device=args.device)


def _shapesworld3d(args: argparse.Namespace) -> bool:
    """--dataset scene3d on rooms of `ovss world make3d` (ShapesWorld's classes and base split, or
    a ShapesWorld 2 rooms folder's own, which ``_export_meta`` reads first)."""
    if args.dataset.lower() != "scene3d":
        return False
    from ..scene3d.segments import is_scene_dataset

    return all(is_scene_dataset(r) for r in (args.data if isinstance(args.data, list) else [args.data]))


def _segments(args: argparse.Namespace, model, root: str, split: str):
    from ..opendas import load_segments, mean_pixel

    cache = False if args.cache == "none" else args.cache
    if args.dataset.lower() == "scene3d":  # 3D scenes: the crops of their instance masks (OpenMask3D's)
        from ..scene3d.segments import load_scene_segments

        return load_scene_segments(root, split, model.image_size[0], mean_pixel(model.mean), limit=args.limit,
                                   cache_dir=cache, progress=not args.no_progress)
    return load_segments(args.dataset, root, split, model.image_size[0], mean_pixel(model.mean),
                         limit=args.limit, cache_dir=cache, progress=not args.no_progress)


def _negatives(args: argparse.Namespace, method, base: list[str], all_names: list[str], out: Path, log) -> list[str]:
    from ..opendas.negatives import SHIPPED, generate_negatives, negative_queries, read_negatives
    from ..files import write_json

    source = args.negatives
    if not any(stage.negatives for stage in method.stages):
        if source not in ("auto", "none"):
            log(f"{method.name} trains without negative queries; --negatives {source} is not used")
        return []
    if source == "none":
        return []
    if source == "auto" and _export_meta(args):
        from ..world.sw2_classes import sibling_negatives

        table, where = sibling_negatives(exclude=all_names), "ShapesWorld 2's hierarchy (classes of the same category)"
    elif source == "auto":
        path = SHIPPED.get(args.dataset.lower())
        if path is None:
            log(f"no negative queries ship for {args.dataset}; training without (pass --negatives FILE or llm)")
            return []
        table, where = read_negatives(path), f"shipped {path.name}"
    elif source == "llm":
        table, where = generate_negatives(_llm(args), base), "LLM"
    else:
        table, where = read_negatives(source), source
    negatives = negative_queries(base, table, exclude=all_names)
    write_json(out / "negatives.json", {b: [n for n in table.get(b.lower(), []) if n in negatives] for b in base})
    log(f"{len(negatives)} negative queries from {where}")
    return negatives


def run_train(args: argparse.Namespace) -> int:
    from ..opendas import PromptTrainConfig, evaluate_segments, get_prompt_method, save_prompts, train_prompts
    from ..opendas.metrics import format_params
    from ..files import RunLog, write_json

    method = get_prompt_method(args.method).with_shape(args.visual_k, args.visual_depth, args.text_k, args.text_depth)
    cfg = PromptTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, triplet_weight=args.triplet_weight,
                      margin=args.margin, seed=args.seed, checkpoint_every=args.checkpoint_every,
                      proxy_weight=args.proxy_weight).check()
    _check_limit(args)
    base = _base_classes(args)
    out = Path(args.out)
    log = RunLog(out / "train.log")
    model = _load_model(args)
    segments = _segments(args, model, args.data, args.split)
    all_names = [n for names in _dataset_classes(args, args.data) for n in names]
    negatives = _negatives(args, method, base, all_names, out, log)
    log(f"{method.name} on {args.dataset} {args.data} ({args.split}): {len(segments)} segments, "
        f"{len(base)} base classes, model {model.name}/{model.pretrained}")
    learner, state = train_prompts(model, method, segments, base, negatives, out, cfg, progress=not args.no_progress, log=log)
    seconds = [e["seconds"] for e in state["log"]]
    info = {"method": method.name, "base_classes": base, "negatives": negatives, "config": vars(cfg),
            "data": segments.info, "seconds_per_epoch": seconds}
    path = save_prompts(out / "prompts.safetensors", learner, info)
    write_json(out / "train.json", {**info, "log": state["log"], "params": learner.num_parameters()})
    log(f"wrote {path} ({format_params(learner.num_parameters())} learnable parameters; "
        f"{sum(seconds):.0f} s of training, {sum(seconds) / max(1, len(seconds)):.1f} s per epoch)")

    eval_root = args.eval_data or args.data
    try:
        test = _segments(args, model, eval_root, args.eval_split)
    except OvssError as err:
        log(f"final table skipped: {err}")
        return 0
    from ..opendas import PromptLearner
    from ..opendas.metrics import format_table

    label = f"{Path(eval_root).name} ({args.eval_split})"
    rows = [{"method": "No adaptation", "params": 0,
             "scores": {label: evaluate_segments(PromptLearner.unprompted(model), test, base)}},
            {"method": method.name, "params": learner.num_parameters(),
             "scores": {label: evaluate_segments(learner, test, base)}}]
    table = format_table(rows, [label])
    write_json(out / "eval.json", rows)
    log("final table:\n" + table, echo=False)
    print(table, end="")
    return 0


def _dataset_classes(args: argparse.Namespace, root: str) -> list[list[str]]:
    from ..data import class_names

    if args.dataset.lower() == "scene3d":
        from ..scene3d.segments import dataset_classes

        return dataset_classes(root)
    return class_names(args.dataset, root)


def run_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..opendas import PromptLearner, evaluate_segments, load_prompts, read_sidecar
    from ..opendas.metrics import format_table
    from ..files import write_json

    _check_limit(args)
    sidecars = [read_sidecar(p) for p in args.prompts]
    base = _base_classes(args, sidecars[0].get("base_classes") if sidecars else None)
    model = _load_model(args, args.prompts[0] if args.prompts else None)
    learners = [("No adaptation", PromptLearner.unprompted(model))]
    for path, info in zip(args.prompts, sidecars):
        name = info.get("method", "?")
        if sum(s.get("method") == name for s in sidecars) > 1:
            name = f"{name} ({Path(path).parent.name})"
        learners.append((name, load_prompts(path, model)))
    labels, rows = [], [{"method": n, "params": lr.num_parameters(), "scores": {}} for n, lr in learners]
    for root in args.data:
        label = f"{Path(root).name} ({args.split})"
        labels.append(label)
        segments = _segments(args, model, root, args.split)
        for row, (_, learner) in tqdm(list(zip(rows, learners)), desc=f"evaluate {label}", unit="method",
                                      disable=args.no_progress):
            row["scores"][label] = evaluate_segments(learner, segments, base)
    table = format_table(rows, labels)
    if args.out:
        write_json(args.out, {"base_classes": base, "rows": rows})
    print(table, end="")
    return 0


def run_segments_miou(args: argparse.Namespace) -> int:
    from ..data import SegDataset
    from ..opendas import PromptLearner, load_prompts, read_sidecar, segments_miou
    from ..opendas.proposals import PROPOSALS
    from ..files import write_json

    if args.proposals not in PROPOSALS:
        raise OvssError(f"unknown proposals '{args.proposals}'; choose one of: {', '.join(PROPOSALS)}")
    _check_limit(args)
    info = read_sidecar(args.prompts) if args.prompts else {}
    base = _base_classes(args, info.get("base_classes"))
    dataset = SegDataset(args.dataset, args.data, args.split, limit=args.limit)
    model = _load_model(args, args.prompts)
    learner = load_prompts(args.prompts, model) if args.prompts else PromptLearner.unprompted(model)
    result = segments_miou(learner, dataset, args.proposals, base=base, progress=not args.no_progress)
    result["prompts"] = args.prompts
    if args.out:
        write_json(args.out, result)
    what = info.get("method", "no adaptation")
    print(f"{what}, {args.proposals} proposals, {result['images']} images: mIoU {result['mIoU']:.1f}, "
          f"mAcc {result['mAcc']:.1f}, base mIoU {result['mIoU base']:.1f}, novel mIoU {result['mIoU novel']:.1f}")
    return 0


def run_negatives(args: argparse.Namespace) -> int:
    from ..opendas import generate_negatives
    from ..files import write_json
    from ..text import parse_classes

    classes = parse_classes(args.classes, args.classes_file).names
    client = _llm(args)
    table = generate_negatives(client, classes)
    missing = [c for c in classes if c.lower() not in table]
    write_json(args.out, table)
    print(f"wrote {args.out}: negatives for {len(classes) - len(missing)} of {len(classes)} classes"
          + (f" (none for {', '.join(missing)})" if missing else ""))
    return 0
