"""``ovss openbench <verb>``: how open a benchmark is, building open ones, and the class-count curve.

    ovss openbench stats --train-vocab V --datasets D1,D2 [--out DIR]
    ovss openbench build --sources NAME=ROOT,... --train-vocab V --sigma1 S1 --sigma2 S2 [--merge FILE] --out DIR
    ovss openbench classcount --dataset D --data-root R --extra-classes 0,5,10,20 --out DIR
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import OvssError
from .common import add_model_args, no_verb

VOCAB_HELP = ("training vocabulary: a class file, a dataset folder with classes.txt, a dataset whose class list "
              "ovss ships (e.g. coco_stuff164k), or shapesworld-base")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "openbench", help="openness of benchmarks vs a training vocabulary; build open benchmarks",
        description="OpenBench (the OVSNet/OpenBench paper): class similarity to the training vocabulary, an open-benchmark builder, "
                    "and mIoU against the number of inference classes.",
    )
    parser.set_defaults(func=lambda args: no_verb(parser))
    verbs = parser.add_subparsers(dest="openbench_verb", metavar="VERB")

    st = verbs.add_parser("stats", help="the openness table (the OVSNet paper's Table 1) and similarity histogram (Figure 1a)")
    st.add_argument("--train-vocab", required=True, help=VOCAB_HELP)
    st.add_argument("--datasets", required=True,
                    help="comma-separated: NAME (class list only), NAME=ROOT (counts images), a dataset folder, or a class file")
    st.add_argument("--split", default="val", help="split whose images are counted (default: val)")
    st.add_argument("--templates", default="seven", help="prompt templates of the text embeddings (default: seven)")
    st.add_argument("--out", default=None, help="folder for openness.md, openness.json and openness_hist.png")
    add_model_args(st)
    st.set_defaults(func=run_stats)

    b = verbs.add_parser("build", help="build an open benchmark from existing datasets")
    b.add_argument("--sources", required=True, help="comma-separated NAME=ROOT, or dataset folders (shapesworld layout)")
    b.add_argument("--train-vocab", required=True, help=VOCAB_HELP)
    b.add_argument("--sigma1", type=float, required=True, help="keep images whose least similar class is below this")
    b.add_argument("--sigma2", type=float, required=True, help="in kept images, classes above this become 'others'")
    b.add_argument("--merge", default=None, help="rules 'old -> new | others | ignore', one per line")
    b.add_argument("--split", default="val", help="split of the sources to read and of the output (default: val)")
    b.add_argument("--others-names", action="store_true",
                   help="list the classes merged into 'others' as its synonyms (for text encoders that lack the word)")
    b.add_argument("--templates", default="seven", help="prompt templates of the text embeddings (default: seven)")
    b.add_argument("--out", required=True, help="output folder (read it with --dataset shapesworld --data-root OUT)")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_model_args(b)
    b.set_defaults(func=run_build)

    c = verbs.add_parser("classcount", help="mIoU against the number of irrelevant classes at inference (Figure 5)")
    c.add_argument("--dataset", required=True, help="dataset name (see `ovss data list`)")
    c.add_argument("--data-root", required=True, help="dataset root")
    c.add_argument("--split", default="val", help="split to evaluate (default: val)")
    c.add_argument("--extra-classes", default="0,5,10,20", help="counts of added names, comma-separated (default: 0,5,10,20)")
    c.add_argument("--pool", default=None, help="class file of irrelevant names (default: every class list ovss ships)")
    c.add_argument("--max-similarity", type=float, default=None,
                   help="drop pool names whose text similarity to a dataset class exceeds this")
    c.add_argument("--seed", type=int, default=0, help="seed of the shuffle of the pool (default: 0)")
    c.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    c.add_argument("--preset", default=None, help="inference protocol (default: as ovss bench picks it)")
    c.add_argument("--head", default=None, help="dense head (default: the preset's)")
    c.add_argument("--out", required=True, help="folder for classcount.json, classcount.md and classcount.png")
    c.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_model_args(c)
    c.set_defaults(func=run_classcount)
    return parser




def _items(text: str, flag: str) -> list[str]:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not items:
        raise OvssError(f"{flag} is empty; give at least one item")
    return items


def _similarity(args: argparse.Namespace):
    import torch

    from ..concepts import ClipTextSimilarity
    from ..model import load_model
    from ..text import TextEncoder, get_templates

    get_templates(args.templates)  # a bad name fails before the model loads
    torch.manual_seed(0)  # random weights (--pretrained none) are the same in every run
    model = load_model(args.model, args.pretrained, device=args.device)
    return ClipTextSimilarity(TextEncoder(model), args.templates)


def run_stats(args: argparse.Namespace) -> int:
    from ..files import write_json, write_text
    from ..openbench import Hierarchy, openness_stats, parse_dataset, plot_histogram, resolve_vocabulary, stats_table

    train_label, train = resolve_vocabulary(args.train_vocab)
    entries = [parse_dataset(d, args.split) for d in _items(args.datasets, "--datasets")]
    similarity = _similarity(args)
    hierarchy = Hierarchy.auto()
    rows = [openness_stats(e, train, similarity, hierarchy) for e in entries]
    table = stats_table(rows)
    note = f"\nTraining vocabulary: {train_label} ({len(train)} classes); is-a relations: {hierarchy.source}.\n"
    unknown_train = similarity.unknown_words([t[0] for t in train])
    unread = sum(len(r.unknown) for r in rows) + len(unknown_train)
    if unread:
        note += (f"Warning: {unread} class names ({len(unknown_train)} in the training vocabulary) hold words this "
                 "model never learned, so their similarities are meaningless; measure with a real CLIP "
                 "(--model ViT-B-16 --pretrained FILE).\n")
    print(table + note, end="")
    if args.out:
        out = Path(args.out)
        write_text(out / "openness.md", table + note)
        write_json(out / "openness.json", {"train_vocab": train_label, "train_classes": len(train),
                                           "train_unknown_to_model": unknown_train,
                                           "hierarchy": hierarchy.source, "rows": [r.as_dict() for r in rows]})
        plot_histogram(rows, out / "openness_hist.png", train_label)
        print(f"results in {out} (openness.md, openness.json, openness_hist.png)", file=sys.stderr)
    return 0


def run_build(args: argparse.Namespace) -> int:
    from ..openbench import build_openbench, parse_dataset, read_merge_file, resolve_vocabulary

    _, train = resolve_vocabulary(args.train_vocab)
    for flag in ("sigma1", "sigma2"):
        value = getattr(args, flag)
        if not -1.0 <= value <= 1.0:
            raise OvssError(f"--{flag} must be a cosine similarity between -1 and 1, got {value}")
    merge = read_merge_file(args.merge) if args.merge else None
    entries = [parse_dataset(s, args.split) for s in _items(args.sources, "--sources")]
    missing = [s for s, e in zip(_items(args.sources, "--sources"), entries) if e.dataset is None]
    if missing:
        raise OvssError(f"source '{missing[0]}' has no images; write it as NAME=ROOT or give the dataset folder")
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        labels = [f"{lab}{i}" for i, lab in enumerate(labels)]
    summary = build_openbench(
        [e.dataset for e in entries], train, _similarity(args), args.sigma1, args.sigma2, args.out, merge=merge,
        split=args.split, others_names=args.others_names, source_labels=labels, progress=not args.no_progress,
    )
    kept = [c["name"] for c in summary["classes"][1:]]
    print(f"OpenBench: {summary['images']} images, {len(kept)} classes + others in {args.out}")
    print(f"classes: {', '.join(kept)}")
    print(f"to others: {', '.join(summary['to_others']) or '-'}")
    print(f"evaluate with: ovss bench --dataset shapesworld --data-root {args.out} --split {args.split}")
    return 0


def run_classcount(args: argparse.Namespace) -> int:
    import torch

    from ..evaluation.runner import open_dataset
    from ..model import load_model
    from ..openbench import run_class_count
    from .common import check_model_args, check_out_dir, parse_counts, weights_for_data

    counts = parse_counts(args.extra_classes, "--extra-classes")
    if args.limit is not None and args.limit < 1:
        raise OvssError(f"--limit must be a positive number of images, got {args.limit}")
    check_model_args(args)
    dataset = open_dataset(args.dataset.lower(), args.data_root, args.split, args.limit)
    check_out_dir(args.out)
    weights_for_data(args, [args.data_root])
    torch.manual_seed(0)
    model = load_model(args.model, args.pretrained, device=args.device)
    table = run_class_count(model, dataset, counts, args.out, pool=args.pool, seed=args.seed,
                            max_similarity=args.max_similarity, head=args.head, preset=args.preset,
                            progress=not args.no_progress)
    print(table, end="")
    print(f"results in {args.out} (classcount.json, classcount.md, classcount.png)", file=sys.stderr)
    return 0
