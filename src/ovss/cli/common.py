"""Arguments shared by several commands."""
from __future__ import annotations

import argparse


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, help="open_clip model name (default: the embedded ovss-tiny)")
    g.add_argument("--pretrained", default=None, help="pretrained tag, local checkpoint file, or 'none' for random weights")
    g.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")


def load_model_from_args(args: argparse.Namespace):
    from ..model import load_model

    return load_model(args.model, args.pretrained, device=args.device)
