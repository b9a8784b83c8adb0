"""The benchmark runner: datasets x corruptions x methods x seeds, one JSON per scenario.

Layout of a run folder ``RUN``::

    RUN/{dataset}/{method}/{corruption}.json          one seed
    RUN/{dataset}/{method}/{corruption}.seed{S}.json  several seeds (``seeds=[0, 1, 2]``)
    RUN/.partial/...                                  checkpoints of unfinished scenarios
    RUN/summary.md, summary.csv, {dataset}_bar.png    written by ``ovss.evaluation.report``

Each result JSON holds the metrics (mIoU, mAcc, aAcc, per-class IoU and Acc by class name, the
C x C confusion matrix), the exact settings, the model, the versions and the timing.

The images of a scenario go through ``evaluator.inference_on_dataset``, the one image loop every
mIoU in ovss uses, into a ``SemSegEvaluator``; what is the runner's own (seeding before each
batch, checkpoints, the save on an interruption, model timing) lives in the loop's hooks here.

Resume: a scenario whose JSON exists with equal ``settings`` is skipped. While a scenario runs, the
confusion matrix so far and the number of images done are saved every ``checkpoint_every`` images
(``RUN/.partial/{dataset}/{method}/{stem}.npz``, plus a readable ``.json`` beside it), so a killed
run loses at most that many images. Partial files are kept per rank (``...rank{r}of{w}``): each
process of a distributed run checkpoints its own shard, and a rerun with the same number of
processes continues every shard where it stopped.

Distributed (``torchrun``): the images of a scenario are split into method batches, and batch ``b``
goes to rank ``b % world_size``. With batch size 1 that is exactly ``SegDataset(shard=(rank,
world))``; for adapting methods it keeps every adaptation batch identical to the single-process
run, so the summed confusion matrix is the same. Only rank 0 writes result files and shows the
progress bar.

Determinism: corruptions are keyed by image name (and the --seed value, for values other than 0); before every batch the random generators
(python, numpy, torch) are seeded from (seed, index of the batch's first image), so a resumed or
distributed run draws the same numbers as an uninterrupted single-process one.
"""
from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from ..adaptation import AdaptationMethod
from ..corruptions.frost import frost_source
from ..data import SegDataset
from ..errors import OvssError
from ..files import finite_or_none, write_json
from ..segment import Segmenter, default_preset
from .distributed import from_rank0, rank_indices, rank_world, setup_distributed, teardown_distributed
from .evaluator import SemSegEvaluator, inference_on_dataset
from .metrics import all_reduce_sum
from .pipeline import ScenarioData, ScenarioLoaders, corruption_key, output_size, seed_everything
from .plan import (
    PARTIAL_DIR, Scenario, check_method, check_severity, open_dataset, parse_corruptions, parse_seeds, protocol_classes,
    result_path,
)
from .store import (
    conflict_message, find_conflicts, finished_result, load_partial, plain_json, read_json, remove_partial, restore_counts,
    result_seed,
    save_partial, versions,
)
from ..outputs import as_job

__all__ = [
    "run_benchmark", "open_dataset", "parse_corruptions", "parse_seeds", "check_severity", "setup_distributed",
    "teardown_distributed", "rank_indices", "ScenarioData", "ScenarioLoaders", "corruption_key", "output_size",
    "find_conflicts", "protocol_classes", "Scenario", "result_path",
]


@as_job("bench")
def run_benchmark(
    model,
    datasets: Sequence[tuple[str, str | os.PathLike] | SegDataset],
    out: str | os.PathLike,
    *,
    split: str = "val",
    corruptions: str | Sequence[str] = ("original",),
    severity: int = 5,
    methods: Sequence[str | AdaptationMethod] = ("none",),
    seeds: str | Sequence[int] = (0,),
    limit: int | None = None,
    workers: int = 2,
    head: str | None = None,
    preset: str | None = None,
    checkpoint_every: int = 25,
    progress: bool = True,
    prompts=None,
    overwrite: bool = False,
    precision: str = "fp32",
    **overrides,
) -> list[dict]:
    """Run (or resume) every scenario and return the result dicts, finished ones included.

    ``datasets``: (name, root) pairs or opened ``SegDataset``s. ``corruptions``: as
    ``parse_corruptions``; ``original`` is always run. ``preset`` None picks ``default_preset``
    per dataset; ``precision``: the encoder's (``dense.precision``, recorded in every result's settings);
    ``overrides`` are preset settings (e.g. ``prob_thd=0.1``). Call it on every
    rank of a distributed run; only rank 0 writes files and returns the results.
    """
    out = Path(out)
    scenarios_c = parse_corruptions(corruptions)
    severity = check_severity(severity)
    seed_list = parse_seeds(seeds)
    method_list = [check_method(m) for m in methods]
    if len({m.name for m in method_list}) != len(method_list):
        raise OvssError("a method is listed twice; list each method once")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise OvssError(f"workers must be 0 or more, got {workers!r}", param="workers")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise OvssError(f"checkpoint_every must be a positive number of images, got {checkpoint_every!r}",
                        param="checkpoint_every")
    opened = [d if isinstance(d, SegDataset) else open_dataset(d[0], d[1], split, limit) for d in datasets]
    if len({d.spec.name for d in opened}) != len(opened):
        raise OvssError("a dataset is listed twice; list each dataset once")
    rank, world = rank_world()
    per_seed = len(seed_list) > 1
    model_info = model.describe()
    vers = versions()

    # plan: every scenario, its settings, and whether it is done or partly done
    plan: list[tuple[SegDataset, Segmenter, AdaptationMethod, Scenario]] = []
    for ds in opened:
        name = ds.spec.name
        seg = Segmenter(model, head=head, preset=preset or default_preset(model, name), dataset=name, prompts=prompts,
                        precision=precision, **overrides)
        for method in method_list:
            for seed in seed_list:
                for c in scenarios_c:
                    path = result_path(out, name, method.name, c, seed, per_seed)
                    other = result_path(out, name, method.name, c, seed, not per_seed)
                    if not per_seed and result_seed(path) not in (None, seed):
                        path, other = other, path  # that name holds another seed's result: seeds add, never replace
                    stem = path.name[: -len(".json")] + (f".rank{rank}of{world}" if world > 1 else "")
                    sc = Scenario(
                        dataset=name, method=method.name, corruption=c, seed=seed, path=path, other_path=other,
                        partial=out / PARTIAL_DIR / name / method.name / stem,
                    )
                    sc.settings = plain_json({
                        "segmenter": seg.settings(), "dataset": name, "split": ds.split,
                        "limit": limit, "images": len(ds), "corruption": c,
                        "severity": None if c == "original" else severity,
                        "method": method.name, "hparams": method.hparams(), "seed": seed,
                        **({"frost": frost_source()} if c == "frost" else {}),
                    })
                    plan.append((ds, seg, method, sc))

    conflicts = from_rank0(find_conflicts(out, [sc.settings for *_, sc in plan]) if rank == 0 else None)
    if conflicts and not overwrite:
        raise OvssError(conflict_message(out, conflicts), param="overwrite")
    if conflicts and rank == 0:
        for path, _ in conflicts:
            path.unlink(missing_ok=True)
        print(f"ovss bench: overwrite: removed {len(conflicts)} result(s) of another configuration from {out}",
              file=sys.stderr)

    done_paths = from_rank0([finished_result(sc) for *_, sc in plan])
    results: list[dict] = []
    todo = []
    for (ds, seg, method, sc), (found, why) in zip(plan, done_paths):
        if found is not None:
            if rank == 0:
                results.append(read_json(found))
            continue
        if why and rank == 0:
            print(f"ovss bench: {why}", file=sys.stderr)
        saved = load_partial(sc)
        if saved is not None:
            sc.resume = {"counts": saved[0], **saved[1]}
            sc.start = int(saved[1]["done"])
        todo.append((ds, seg, method, sc))

    total = sum(len(rank_indices(len(ds), m.batch_size, rank, world)) - sc.start for ds, _, m, sc in todo)
    skipped = len(plan) - len(todo)
    if rank == 0 and progress and skipped:
        print(f"ovss bench: {skipped} of {len(plan)} scenarios already done in {out}; skipping them", file=sys.stderr)

    from tqdm import tqdm

    bar = tqdm(total=total, desc="bench", unit="img", disable=not progress or rank != 0, dynamic_ncols=True)
    loaders = ScenarioLoaders(workers, severity)
    try:
        for ds, seg, method, sc in todo:
            bar.set_description(f"{sc.dataset}/{sc.method}/{sc.corruption}" + (f"/seed{sc.seed}" if per_seed else ""))
            result = _run_scenario(ds, seg, method, sc, loaders, checkpoint_every, bar, model_info, vers)
            if rank == 0:
                results.append(result)
    finally:
        loaders.close()
        bar.close()
    return results if rank == 0 else []


def _run_scenario(ds: SegDataset, seg: Segmenter, method: AdaptationMethod, sc: Scenario, loaders: ScenarioLoaders,
                  checkpoint_every: int, bar, model_info: dict, vers: dict) -> dict:
    rank, world = rank_world()
    classes, class_source = protocol_classes(ds, seg.preset)
    evaluator = SemSegEvaluator(ds.num_classes, ds.ignore_index, distributed=True)
    mine = rank_indices(len(ds), method.batch_size, rank, world)
    seconds = model_seconds = 0.0
    start = 0
    if sc.resume is not None and restore_counts(evaluator, sc.resume["counts"]) and 0 < sc.start <= len(mine):
        start = sc.start
        seconds, model_seconds = float(sc.resume["seconds"]), float(sc.resume["model_seconds"])
    else:
        evaluator.reset()
    loader = loaders.batches(ds, seg.preset, sc.corruption, sc.seed, mine[start:], method.batch_size)
    done, saved_at = start, start
    if hasattr(method, "reset_stats"):
        method.reset_stats()
    t0 = time.perf_counter()
    state_at_done = evaluator.state_dict()  # the counts of the ``done`` images: what an interruption may save

    # the loop is shared (evaluator.inference_on_dataset); seeding, checkpoints and the save on an
    # interruption are this runner's, in these hooks and the ``except`` below
    def before_batch(batch: list[dict]) -> None:
        for item in batch:
            if "error" in item:
                raise OvssError(item["error"])
        seed_everything(sc.seed, batch[0]["index"])

    def predict(batch: list[dict]) -> list:
        return method(seg, [b["image"] for b in batch], classes, [b["size"] for b in batch])

    def after_batch(batch: list[dict], batch_model_seconds: float) -> None:
        nonlocal done, saved_at, model_seconds, state_at_done
        done += len(batch)
        model_seconds += batch_model_seconds
        state_at_done = evaluator.state_dict()
        if done - saved_at >= checkpoint_every and done < len(mine):
            save_partial(sc, evaluator, done, len(mine), seconds + time.perf_counter() - t0, model_seconds)
            saved_at = done

    try:
        inference_on_dataset(loader, predict, evaluator, before_batch=before_batch, after_batch=after_batch, bar=bar,
                             name=f"method {method.name}")
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep every image finished so far
        if done > saved_at and restore_counts(evaluator, state_at_done["counts"]):
            save_partial(sc, evaluator, done, len(mine), seconds + time.perf_counter() - t0, model_seconds)
        raise
    seconds += time.perf_counter() - t0
    images = int(all_reduce_sum(np.array([len(mine)], dtype=np.int64))[0])
    cm = evaluator.summed()  # collective: every rank, once
    remove_partial(sc)
    if rank != 0:
        return {}
    metrics = cm.compute()
    names = [c[0] for c in ds.classes]  # metric keys: the dataset's names, whichever list was queried
    result = {
        "scenario": {"dataset": sc.dataset, "method": sc.method, "corruption": sc.corruption, "seed": sc.seed},
        "metrics": {
            "mIoU": finite_or_none(metrics["mIoU"]), "mAcc": finite_or_none(metrics["mAcc"]), "aAcc": finite_or_none(metrics["aAcc"]),
            "IoU": {n: finite_or_none(v) for n, v in zip(names, metrics["IoU"])},
            "Acc": {n: finite_or_none(v) for n, v in zip(names, metrics["Acc"])},
        },
        "settings": sc.settings,
        "model": {"name": model_info.get("model"), "pretrained": model_info.get("pretrained"),
                  "weights": model_info.get("weights")},
        "data": {"root": str(ds.root), "classes": [list(c) for c in classes], "class_source": class_source,
                 "ignore_index": ds.ignore_index},
        "versions": vers,
        "timing": {
            "seconds": seconds, "images": images, "seconds_per_image": seconds / max(images, 1),
            "seconds_outside_model": max(seconds - model_seconds, 0.0),
            "workers": loaders.workers, "world_size": world, "resumed_at": start,
            "note": "seconds: wall time of rank 0 (summed over resumed runs); outside the model = data, corruption, scoring",
        },
        "cost": method.cost() if hasattr(method, "cost") else None,
        "confusion_matrix": cm.matrix.tolist(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(sc.path, result)
    if result_seed(sc.other_path) == sc.seed:  # a stale result under the other seed naming would be read twice
        sc.other_path.unlink()
    return result
