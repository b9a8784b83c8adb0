"""``ovss app``: a local page to segment any image with any words (needs ``pip install 'ovss[app]'``)."""
from __future__ import annotations

import argparse

from .common import add_model_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "app",
        help="interactive local page: upload an image, type classes, see the overlay",
        description="Serve a page on this machine to segment one image at a time with any class names "
                    "(gradio, installed by pip install 'ovss[app]'). Nothing is fetched from the internet.",
    )
    add_model_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--prompts", default=None, metavar="FILE",
                   help="OpenDAS prompts from `ovss adapt train` (RUN/prompts.safetensors), used for every image")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload accepted, in MB (default: 20)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="largest image accepted, in pixels (default: 4000000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..app import serve

    serve(args.model, args.pretrained, args.device, args.host, args.port, args.prompts, args.max_upload_mb, args.max_pixels)
    return 0
