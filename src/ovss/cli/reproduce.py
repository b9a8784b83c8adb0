"""``ovss reproduce``: one published table, run with its protocol, beside the published numbers.

``ovss reproduce --list`` shows the tables; ``ovss reproduce TABLE --data-root DIR --pretrained W
--out RUN`` runs it (also under ``torchrun --nproc-per-node N -m ovss reproduce ...``).
"""
from __future__ import annotations

import argparse
import sys

from ..errors import OvssError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run a published table's protocol and compare with the published numbers",
        description=(
            "Run one published table (see --list) through the benchmark runner, one run folder per column "
            "(RUN/{column}/, resumable), and write RUN/reproduce.md, .csv, .json and .png: measured | published | delta "
            "per cell. Every published number comes with its source (src/ovss/reproduce/published.csv)."
        ),
    )
    p.add_argument("table", nargs="?", help="table name (see --list)")
    p.add_argument("--list", action="store_true", help="list the tables: paper, table, backbone, data, weights, GPU time")
    p.add_argument("--data-root", help="the data root `ovss data prepare NAME --out ROOT` writes to (one for every dataset), or a dataset's own root")
    p.add_argument("--model", default=None, help="open_clip model name (default: the table's backbone)")
    p.add_argument("--pretrained", default=None,
                   help="weights of the table's backbone: an open_clip tag (openai) or a local checkpoint file")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--vfm-weights", dest="second_weights", default=None, metavar="PATH",
                   help="DINO checkpoint for ProxyCLIP columns (dino_vitbase8_pretrain.pth)")
    p.add_argument("--rows", default=None, help="only these rows (datasets or corruptions), comma-separated")
    p.add_argument("--columns", default=None, help="only these columns, comma-separated")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N images of each dataset (a smoke run, not the published protocol)")
    p.add_argument("--workers", type=int, default=2, help="data-loading worker processes (default: 2)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: every core)")
    p.add_argument("--out", default=None, metavar="RUN", help="run folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results in RUN computed with other settings (default: stop and say what differs)")
    p.add_argument("--report-only", action="store_true",
                   help="only rebuild RUN/reproduce.* from the results already in RUN (no model, no data)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _names(text: str | None) -> list[str] | None:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    return items or None


def run(args: argparse.Namespace) -> int:
    from ..reproduce import get_table, list_text, reproduce_table
    from ..reproduce.run import check_run_folder, dataset_roots, select

    if args.list:
        print(list_text(), end="")
        return 0
    if not args.table:
        raise OvssError("name a table (see `ovss reproduce --list`)")
    table = get_table(args.table)
    if args.report_only:
        if not args.out:
            raise OvssError("--report-only needs --out RUN, the folder of an earlier run")
        from ..reproduce.run import report_table

        print(report_table(table.name, args.out)["markdown"], end="")
        return 0
    if not args.data_root or not args.out:
        raise OvssError("--data-root and --out are required to run a table (e.g. --data-root data --out run_table)")
    rows, columns = select(table, _names(args.rows), _names(args.columns))
    if args.limit is not None and args.limit < 1:
        raise OvssError(f"--limit must be a positive number of images, got {args.limit}")
    if args.workers < 0:
        raise OvssError(f"--workers must be 0 or more, got {args.workers}")
    model_name = args.model or table.spec.model
    if table.spec.model is not None and args.pretrained is None:
        raise OvssError(f"table {table.name} needs --pretrained: {table.spec.weights}")
    from .common import check_out_dir

    check_out_dir(args.out)
    check_run_folder(args.out, table)
    datasets = [r for r in rows if table.spec.rows_are == "dataset"] or table.datasets[:1]
    dataset_roots(table, args.data_root, [d for d in datasets if d in _known()])  # missing data: before the model
    if args.threads is not None:
        if args.threads < 1:
            raise OvssError(f"--threads must be 1 or more, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)

    import torch

    from ..evaluation.runner import setup_distributed, teardown_distributed
    from ..model import load_model

    rank, _, device = setup_distributed(args.device)
    try:
        torch.manual_seed(0)
        model = load_model(model_name, args.pretrained or table.spec.embedded_tag, device=device)
        result = reproduce_table(
            table.name, model, args.data_root, args.out, rows=rows, columns=[c.name for c in columns], limit=args.limit,
            workers=args.workers, progress=not args.no_progress, overwrite=args.overwrite,
            second_weights=args.second_weights,
        )
        if rank == 0:
            print(result["markdown"], end="")
            print(f"results in {args.out} (reproduce.md, .csv, .json, .png; one folder per column)", file=sys.stderr)
    finally:
        teardown_distributed()
    return 0


def _known() -> set[str]:
    from ..data import DATASETS

    return set(DATASETS)
