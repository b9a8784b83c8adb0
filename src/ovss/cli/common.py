"""Arguments shared by several commands."""
from __future__ import annotations

import argparse
import os
import shlex

from ..errors import OvssError


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, help="open_clip model name (default: the embedded ovss-tiny)")
    g.add_argument("--pretrained", default=None,
                   help="pretrained tag, local checkpoint file, or 'none' for random weights (default: the embedded "
                        "'shapesworld2' weights for ovss-tiny, on a ShapesWorld export the weights of its world; "
                        "required with any other --model)")
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def check_model_args(args: argparse.Namespace) -> None:
    """The model options a user can get wrong, checked before anything heavy runs."""
    from ..model import check_device, check_model_name, needs_weights

    if args.model is not None:
        check_model_name(args.model)
    if needs_weights(args.model, args.pretrained):
        raise OvssError(
            f"--model {args.model} needs --pretrained: an open_clip tag (e.g. openai), a local checkpoint file, "
            "or none for random weights (random weights give meaningless labels)"
        )
    try:
        check_device(args.device)
    except OvssError as e:
        raise OvssError(f"--device {args.device}: {e}") from None


def add_speed_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("speed")
    g.add_argument("--precision", default="fp32",
                   help="encoder precision: fp32 (default, exact), bf16 (autocast; fast on CPUs with AMX/AVX512-BF16 "
                        "and on GPUs), fp16 (CUDA autocast), int8 (CPU, dynamically quantised Linear layers, "
                        "inference only); agreement with fp32 in docs/benchmarks.md")
    g.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: every core, or OMP_NUM_THREADS if set)")


def apply_speed_args(args: argparse.Namespace) -> None:
    """Check ``--precision`` / ``--threads`` before any heavy work and set the thread count."""
    from ..dense import check_precision
    from ..errors import OvssError

    check_precision(args.precision, args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise OvssError(f"--threads must be 1 or more, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)


def weights_for_world(args: argparse.Namespace, world: str | None) -> None:
    """On data of a ShapesWorld, unless --model/--pretrained say otherwise, use the embedded weights
    trained on that world (a model only knows its own world's classes), and say so on stderr."""
    import sys

    from ..model import DEFAULT_MODEL, embedded_tag_for

    if world is None or args.pretrained is not None or args.model not in (None, DEFAULT_MODEL[0]):
        return
    tag = embedded_tag_for(world)
    if tag is not None and tag != DEFAULT_MODEL[1]:
        args.pretrained = tag
        print(f"weights: ovss-tiny {tag!r}, the embedded weights trained on the data's world ({world}); "
              f"--pretrained chooses others", file=sys.stderr)


def weights_for_data(args: argparse.Namespace, roots) -> str | None:
    """``weights_for_world`` for the world of these dataset roots; returns that world (None unless
    every root is a ShapesWorld export of one world). Exports of both worlds at once, with no
    weights named, are refused: each embedded file knows one world, so one set would be wrong."""
    from ..model import DEFAULT_MODEL
    from ..world.export import export_world

    worlds = {export_world(r) for r in roots}
    known = sorted(w for w in worlds if w is not None)
    if len(known) > 1 and args.pretrained is None and args.model in (None, DEFAULT_MODEL[0]):
        raise OvssError(f"the datasets are exports of {' and '.join(known)}, and each embedded weight file knows one "
                        "world: run them separately, or name the weights with --pretrained", param="--pretrained")
    world = worlds.pop() if len(worlds) == 1 else None
    weights_for_world(args, world)
    return world


def load_model_from_args(args: argparse.Namespace):
    """The model the options name, seeded: random weights (``--pretrained none``) are then the same
    in every run and every command, so two runs of one command give the same labels."""
    import torch

    from ..model import load_model

    check_model_args(args)
    torch.manual_seed(0)
    return load_model(args.model, args.pretrained, device=args.device)


def check_out_dir(path: str, flag: str = "--out"):
    """``--out`` checked (and created) before any work: one line naming the flag and the problem."""
    from ..files import check_output_dir

    try:
        return check_output_dir(path)
    except OvssError as e:
        raise OvssError(f"{flag} {path}: {e}") from None


def add_llm_args(g) -> None:
    """Options of an OpenAI-compatible LLM endpoint (concept lists, negative queries)."""
    g.add_argument("--llm-endpoint", default=os.environ.get("OVSS_LLM_ENDPOINT"),
                   help="OpenAI-compatible API base, e.g. http://localhost:8000/v1 (env OVSS_LLM_ENDPOINT)")
    g.add_argument("--llm-model", default=os.environ.get("OVSS_LLM_MODEL"), help="model name on that server (env OVSS_LLM_MODEL)")
    g.add_argument("--llm-api-key", default=None, help="API key if the server needs one (default: env OVSS_LLM_API_KEY)")
    g.add_argument("--llm-timeout", type=float, default=60.0, help="seconds to wait for an answer (default: 60)")
    g.add_argument("--llm-cache", default=None, metavar="DIR", help="answer cache folder (default: ~/.cache/ovss/llm)")


def no_verb(parser: argparse.ArgumentParser) -> int:
    """A command group called without a verb: show its help."""
    parser.print_help()
    return 2


def parse_counts(text: str, flag: str) -> list[int]:
    """``0,5,10`` -> [0, 5, 10]: counts of something, each 0 or more."""
    try:
        counts = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise OvssError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not counts or min(counts) < 0:
        raise OvssError(f"{flag} must list counts of 0 or more, got {text!r}")
    return counts


def flag_message(err: OvssError, parser: argparse.ArgumentParser) -> str:
    """``err``'s message as the command line prints it: the library names a value by its Python
    keyword (``err.param``); when ``parser`` has an option for that keyword, the flag takes its place
    (``precision='fp16'`` -> ``--precision fp16``, ``workers`` -> ``--workers``). Unchanged otherwise."""
    param = getattr(err, "param", None)
    action = next((a for a in parser._actions if param and a.dest == param and a.option_strings), None)
    if action is None:
        return str(err)
    flag = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
    return err.renamed(flag, quote=shlex.quote, switch=action.nargs == 0)
