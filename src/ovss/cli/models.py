"""``ovss models``: what can be loaded, which heads and presets exist."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list models with weights, dense heads and presets",
                       description="List the models ovss can load with weights (the embedded ovss-tiny first, then "
                                   "open_clip's table of pretrained tags), the dense heads and the presets "
                                   "(published protocols) with their settings.")
    p.add_argument("--all", action="store_true", help="list every open_clip architecture too")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..dense import HEADS
    from ..model import DEFAULT_MODEL, list_pretrained
    from ..model.loading import EMBEDDED_WEIGHTS, open_clip_with_ovss_configs
    from ..segment.presets import PRESETS

    print("models with weights (model  tag):")
    for name, tag in list_pretrained():
        mark = "  (default, embedded)" if (name, tag) == DEFAULT_MODEL else "  (embedded)" if tag in EMBEDDED_WEIGHTS.get(name, {}) else ""
        print(f"  {name:32s} {tag}{mark}")
    print("  any model with a local checkpoint: --model NAME --pretrained PATH (OpenAI .pt, open_clip .bin, .safetensors)")
    if args.all:
        print("\narchitectures:")
        for name in open_clip_with_ovss_configs().list_models():
            print(f"  {name}")
    print("\ndense heads:")
    for h in HEADS.values():
        print(f"  {h.name:10s} {h.description}")
    from ..dense.heads import head_fits
    from ..model.towers import FAMILIES

    print("\nbackbones (vision tower families) and the heads each supports:")
    for f in FAMILIES.values():
        ok = [h.name for h in HEADS.values() if head_fits(h, f) is None]
        no = [f"{h.name} (needs {head_fits(h, f).split(' (')[0]})" for h in HEADS.values() if head_fits(h, f) is not None]
        print(f"  {f.name:9s} {f.models}; {f.description}; scores with a {f.scoring}")
        print(f"            heads: {', '.join(ok)}" + (f"; not: {', '.join(no)}" if no else ""))
    from ..model.second import SECOND_BACKBONES

    print("\nsecond backbones (--vfm, weights with --vfm-weights PATH; cost of one 224 x 224 window):")
    for b in SECOND_BACKBONES.values():
        print(f"  {b.name:12s} {b.description}; timm {b.timm_name}, patch {b.patch_size}, {b.tokens()} tokens, "
              f"{b.gflops():.1f} GFLOPs; weights file {b.checkpoint}")
    print("\npresets:")
    for p in PRESETS.values():
        print(f"  {p.name:12s} {p.description}")
    return 0
