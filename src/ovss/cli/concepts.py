"""``ovss concepts``: build a co-occurrence dictionary, show a query's contrastive concepts.

Also holds the open-world options that ``ovss segment --open-world`` shares (``add_concept_args``,
``open_world_from_args``), so both commands read them the same way.
"""
from __future__ import annotations

import argparse
import os

from ..errors import OvssError
from .common import add_llm_args, add_model_args, load_model_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "concepts",
        help="contrastive concepts for open-world segmentation",
        description="Build a co-occurrence dictionary from captions, or show the contrastive concepts of a query.",
    )
    csub = p.add_subparsers(dest="concepts_command", metavar="ACTION")

    b = csub.add_parser("build", help="build a co-occurrence dictionary from a caption corpus",
                        description="Count concepts and their co-occurrences in a text file with one caption a line.")
    b.add_argument("--captions", required=True, metavar="FILE", help="text file, one caption a line")
    b.add_argument("--out", required=True, metavar="DICT.json", help="dictionary to write")
    b.add_argument("--min-count", type=int, default=1, help="drop concepts in fewer captions (default: 1)")
    b.add_argument("--min-frequency", type=float, default=0.0,
                   help="store only pairs with at least this normalised co-occurrence (default: 0, all)")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    b.set_defaults(func=run_build)

    s = csub.add_parser("show", help="print a query's contrastive concepts and why each was kept or dropped",
                        description="Print the contrastive concepts of one or more queries (comma-separated).")
    s.add_argument("query", help='the query, e.g. "boat" (several: "boat, car")')
    add_concept_args(s, source_flag="--source", dict_flag="--dict")
    s.add_argument("--classes", help="the dataset's classes, comma-separated (for --source oracle)")
    s.add_argument("--all", action="store_true", help="also list every concept below gamma")
    add_model_args(s)
    s.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: _need_action(p))


def _need_action(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def add_concept_args(p: argparse.ArgumentParser, source_flag: str = "--concepts", dict_flag: str = "--concepts-dict") -> None:
    """Options choosing the contrastive concepts (shared by ``segment --open-world`` and ``concepts show``)."""
    from ..concepts.sources import BETA, DELTA, GAMMA

    g = p.add_argument_group("contrastive concepts")
    g.add_argument(source_flag, dest="concepts", default=None, metavar="SOURCE",
                   help="background, cooc, llm, oracle, or a file of concepts (default: cooc)")
    g.add_argument(dict_flag, dest="concepts_dict", default=None, metavar="DICT",
                   help="co-occurrence dictionary: a file from `ovss concepts build` or a shipped name, "
                        "shapesworld2 (the default) or shapesworld")
    g.add_argument("--gamma", type=float, default=GAMMA, help=f"co-occurrence threshold (default: {GAMMA})")
    g.add_argument("--delta", type=float, default=DELTA, help=f"drop concepts more similar to the query (default: {DELTA})")
    g.add_argument("--beta", type=float, default=BETA, help=f"several queries: drop concepts more similar to any (default: {BETA})")
    g.add_argument("--abstract", default="auto", help="abstract-concept filter: auto, wordnet, list, llm, none (default: auto)")
    add_llm_args(g)


def llm_from_args(args: argparse.Namespace):
    """An LLMClient when an endpoint is given, else None."""
    if not args.llm_endpoint and not args.llm_model:
        return None
    from ..concepts import LLMClient

    if not args.llm_endpoint:
        raise OvssError("--llm-model needs --llm-endpoint URL (an OpenAI-compatible API base)")
    # the client's own checks speak of its keywords (model, timeout), which are other flags here
    if not args.llm_model:
        raise OvssError("--llm-endpoint needs --llm-model NAME (the model name as the server lists it)")
    if args.llm_timeout <= 0:
        raise OvssError(f"--llm-timeout must be positive (got {args.llm_timeout})")
    key = args.llm_api_key or os.environ.get("OVSS_LLM_API_KEY")
    return LLMClient(args.llm_endpoint, args.llm_model, key, args.llm_timeout, args.llm_cache)


def source_from_args(args: argparse.Namespace, class_names=None):
    from ..concepts import make_source

    llm = llm_from_args(args)
    if llm is None and "llm" in (args.concepts, args.abstract):
        what = "the llm source needs an endpoint" if args.concepts == "llm" else "--abstract llm needs an LLM"
        raise OvssError(f"{what}: pass --llm-endpoint URL and --llm-model NAME "
                        "(or set OVSS_LLM_ENDPOINT and OVSS_LLM_MODEL)")
    return make_source(args.concepts or "cooc", class_names=class_names, dictionary=args.concepts_dict,
                       gamma=args.gamma, delta=args.delta, abstract=args.abstract, llm=llm)


def _check_thresholds(args: argparse.Namespace) -> None:
    for name in ("gamma", "delta", "beta"):
        value = getattr(args, name)
        if not -1.0 <= value <= 1.0:
            raise OvssError(f"--{name} must be between -1 and 1 (got {value})")


def open_world_from_args(args: argparse.Namespace, segmenter, classes):
    """``ovss segment --open-world``: the concepts are chosen once, then every image is segmented."""
    from ..concepts import OpenWorldQuery

    _check_thresholds(args)
    return OpenWorldQuery(segmenter, classes, source_from_args(args), args.beta)


def run_build(args: argparse.Namespace) -> int:
    from ..concepts import build_from_file, save_dictionary

    d = build_from_file(args.captions, args.min_count, args.min_frequency, progress=not args.no_progress)
    path = save_dictionary(d, args.out)
    pairs = sum(len(row) for row in d.pairs.values())
    print(f"wrote {path}: {len(d.counts)} concepts, {pairs} co-occurring pairs from {d.captions} captions")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ..concepts import ClipTextSimilarity, contrastive_concepts

    _check_thresholds(args)
    queries = [q.strip() for q in args.query.split(",") if q.strip()]
    if not queries:
        raise OvssError('no query given; pass a word such as "boat"')
    class_names = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    source = source_from_args(args, class_names)
    similarity = None
    if source.name == "cooc" or len(queries) > 1:
        from ..segment import Segmenter, default_preset

        model = load_model_from_args(args)
        similarity = ClipTextSimilarity.from_segmenter(Segmenter(model, preset=default_preset(model)))
    cc = contrastive_concepts(queries, source, similarity, args.beta, exclude=queries)
    print(f"contrastive concepts for {', '.join(repr(q) for q in queries)} (source {source.name})")
    for note in cc.notes:
        print(f"  {note}")
    below = [d for d in cc.decisions if "<= gamma" in d.reason]
    shown = [d for d in cc.decisions if args.all or d not in below]
    width = max([len(d.concept) for d in shown] + [8])
    for d in shown:
        who = f" [{d.query}]" if len(queries) > 1 else ""
        print(f"  {'kept   ' if d.kept else 'dropped'}  {d.concept:<{width}}  {d.reason}{who}")
    if below and not args.all:
        print(f"  ... and {len(below)} more below gamma {args.gamma:g} (--all lists them)")
    print(f"segment with: {' | '.join(queries)} || {', '.join(cc.concepts) or '(nothing else)'}")
    return 0
