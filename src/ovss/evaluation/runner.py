"""The benchmark runner: datasets x corruptions x methods x seeds, one JSON per scenario.

Layout of a run folder ``RUN``::

    RUN/{dataset}/{method}/{corruption}.json          one seed
    RUN/{dataset}/{method}/{corruption}.seed{S}.json  several seeds (``seeds=[0, 1, 2]``)
    RUN/.partial/...                                  checkpoints of unfinished scenarios
    RUN/summary.md, summary.csv, {dataset}_bar.png    written by ``ovss.evaluation.report``

Each result JSON holds the metrics (mIoU, mAcc, aAcc, per-class IoU and Acc by class name, the
C x C confusion matrix), the exact settings, the model, the versions and the timing.

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

Determinism: corruptions are keyed by image name (and the seed, for seeds other than 0); before every batch the random generators
(python, numpy, torch) are seeded from (seed, index of the batch's first image), so a resumed or
distributed run draws the same numbers as an uninterrupted single-process one.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.utils.data

from ..adaptation import AdaptationMethod, get_method
from ..corruptions import ALL_SCENARIOS, CORRUPTION_NAMES, SEVERITIES, corrupt
from ..corruptions.frost import frost_source
from ..data import DATASETS, SegDataset, resize_label, protocol_class_file, read_class_file
from ..errors import OvssError
from ..files import atomic_write, finite_or_none, write_json
from ..segment import Preset, Segmenter, default_preset
from ..segment.sliding import resized_size
from .metrics import ConfusionMatrix, all_reduce_sum

PARTIAL_DIR = ".partial"


# ----------------------------------------------------------------------------- arguments


def parse_corruptions(text: str | Sequence[str]) -> list[str]:
    """``all`` | ``original`` | ``name,name`` -> scenario names, ``original`` always first."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise OvssError("--corruptions is empty; pass all, original, or names such as gaussian_noise,fog")
    chosen: list[str] = ["original"]
    for name in names:
        if name == "all":
            chosen += list(CORRUPTION_NAMES)
        elif name in ALL_SCENARIOS:
            chosen.append(name)
        else:
            raise OvssError(f"unknown corruption '{name}'; choose all, original, or from: {', '.join(CORRUPTION_NAMES)}")
    return list(dict.fromkeys(chosen))


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """``0,1,2`` -> [0, 1, 2] (duplicates dropped)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        seeds = [int(str(s).strip()) for s in items if str(s).strip()]
    except ValueError:
        raise OvssError(f"--seeds must be comma-separated integers such as 0,1,2, got '{text}'") from None
    if not seeds or any(s < 0 for s in seeds):
        raise OvssError(f"--seeds must be non-negative integers such as 0,1,2, got '{text}'")
    return list(dict.fromkeys(seeds))


def check_severity(severity: int) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise OvssError(f"--severity must be one of {', '.join(map(str, SEVERITIES))}, got {severity!r}")
    return int(severity)


def open_dataset(name: str, root: str | os.PathLike, split: str = "val", limit: int | None = None) -> SegDataset:
    """``SegDataset`` with a layout problem turned into one line that names ``ovss data check``."""
    if name not in DATASETS:
        raise OvssError(f"unknown dataset '{name}'; valid names: {', '.join(DATASETS)}")
    try:
        ds = SegDataset(name, root, split, limit=limit)
    except OvssError as e:
        raise OvssError(f"{e} (diagnose with: ovss data check {root} --dataset {name} --split {split})") from None
    if len(ds) == 0:
        raise OvssError(f"{name} at {root} has no images in split {split}; check it with: ovss data check {root} --dataset {name}")
    return ds


# ----------------------------------------------------------------------------- distributed


def setup_distributed(device: str = "cpu") -> tuple[int, int, str]:
    """Join the process group torchrun describes in the environment: (rank, world_size, device).

    gloo on CPU, nccl on CUDA (each process on the GPU of its ``LOCAL_RANK``). Without
    ``WORLD_SIZE`` > 1 nothing happens, so the same command runs with or without torchrun.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    rank = int(os.environ.get("RANK", "0"))
    backend = "gloo"
    if str(device).startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device, backend = f"cuda:{local}", "nccl"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), device


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank, so all ranks take the same skip decisions."""
    if _rank_world()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank_indices(n: int, batch_size: int, rank: int, world: int) -> list[int]:
    """Image indices of ``rank``: whole batches, batch b to rank b % world (see the module docstring)."""
    starts = range(rank * batch_size, n, world * batch_size)
    return [i for s in starts for i in range(s, min(s + batch_size, n))]


# ----------------------------------------------------------------------------- data side


def output_size(preset: Preset, h: int, w: int) -> tuple[int, int]:
    """Where predictions are scored: the resized input size for ``eval_at_input_size``, else the image's."""
    if preset.eval_at_input_size:
        return tuple(resized_size(h, w, preset.resize_short, preset.max_long, preset.resize_to))
    return (h, w)


def corruption_key(name: str, seed: int) -> str:
    """The key of an image's corruption draw: its name under seed 0, name and seed otherwise, so that
    every seed sees other noise, snow or glass-blur draws (as reruns of ImageNet-C do)."""
    return name if int(seed) == 0 else f"{name}\x00seed{int(seed)}"


class ScenarioData(torch.utils.data.Dataset):
    """Items of one scenario: the image under the corruption, the ground truth at the scoring size.

    Runs inside DataLoader workers, so reading, corrupting and resizing overlap the model. An
    ``OvssError`` is returned as ``{"error": message}`` and raised again in the main process,
    keeping the user's one-line message (a worker would wrap it in a multi-line traceback).
    """

    def __init__(self, dataset: SegDataset, corruption: str, severity: int, preset: Preset, indices: Sequence[int],
                 seed: int = 0):
        self.dataset, self.corruption, self.severity = dataset, corruption, severity
        self.preset, self.indices, self.seed = preset, list(indices), int(seed)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int | tuple[str, int, int]) -> dict:
        """Item ``i`` of the scenario, or, for a key ``(corruption, seed, index)``, dataset image
        ``index`` under that corruption and seed (how ``ScenarioLoaders`` serves every scenario)."""
        corruption, seed, index = i if isinstance(i, tuple) else (self.corruption, self.seed, self.indices[i])
        try:
            item = self.dataset[index]
            image = item["image"]
            if corruption != "original":
                image = corrupt(image, corruption, self.severity, key=corruption_key(item["name"], seed))
            size = output_size(self.preset, *image.shape[:2])
            return {"index": index, "name": item["name"], "image": image,
                    "label": resize_label(item["label"], size), "size": size}
        except OvssError as e:
            return {"index": index, "error": str(e)}


def _collate(batch: list[dict]) -> list[dict]:
    return batch


def _worker_init(_worker_id: int, parent_pid: int | None = None) -> None:
    torch.set_num_threads(1)  # workers do numpy/PIL work; leave the cores to the model
    die_with_parent(parent_pid)


def die_with_parent(parent_pid: int | None) -> None:
    """Have the kernel kill this process when its parent dies, however it dies (SIGKILL included).

    A DataLoader worker that outlives its parent holds its memory until it next polls the parent,
    which a worker blocked on a full pipe never does. Linux only (prctl PR_SET_PDEATHSIG); if the
    parent died before the request took effect, exit at once.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


class _Batches:
    """Batch sampler of a persistent loader: the batches of keys of the scenario being run."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int, int]]] = []

    def __iter__(self):
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


class ScenarioLoaders:
    """One DataLoader per dataset and preset whose worker processes live across scenarios.

    Why: starting workers (a process each, importing torch and the dataset) cost about a second per
    scenario, paid again for each of the 16 corruptions x methods x seeds. Here the workers start
    once (``persistent_workers``) and each scenario only sets the keys (corruption, seed, index)
    they load; what an item holds does not depend on which worker made it, so results are unchanged.
    """

    def __init__(self, workers: int, severity: int):
        self.workers, self.severity = workers, severity
        self._loaders: dict[tuple[int, int], tuple[torch.utils.data.DataLoader, _Batches]] = {}

    def batches(self, ds: SegDataset, preset: Preset, corruption: str, seed: int, indices: Sequence[int],
                batch_size: int):
        key = (id(ds), id(preset))
        if key not in self._loaders:
            sampler = _Batches()
            loader = torch.utils.data.DataLoader(
                ScenarioData(ds, "original", self.severity, preset, [], 0), batch_sampler=sampler,
                num_workers=self.workers, collate_fn=_collate,
                worker_init_fn=functools.partial(_worker_init, parent_pid=os.getpid()) if self.workers else None,
                persistent_workers=self.workers > 0,
            )
            self._loaders[key] = (loader, sampler)
        loader, sampler = self._loaders[key]
        keys = [(corruption, int(seed), int(i)) for i in indices]
        sampler.batches = [keys[j : j + batch_size] for j in range(0, len(keys), batch_size)]
        return iter(loader)

    def close(self) -> None:
        """Stop the workers (dropping the loaders shuts their processes down)."""
        self._loaders.clear()


def _seed_everything(seed: int, first_index: int) -> None:
    state = np.random.SeedSequence([int(seed), int(first_index)]).generate_state(2)
    value = int(state[0]) | (int(state[1]) << 32)
    random.seed(value)
    np.random.seed(int(state[0]))
    torch.manual_seed(value)


# ----------------------------------------------------------------------------- files


@dataclass
class Scenario:
    dataset: str
    method: str
    corruption: str
    seed: int
    path: Path  # result JSON
    other_path: Path  # the same scenario under the other seed naming (single vs several seeds)
    partial: Path  # partial checkpoint path without its .npz / .json suffix
    settings: dict = field(default_factory=dict)
    start: int = 0  # images of this rank already done (from a checkpoint)
    resume: dict | None = None


def result_path(out: Path, dataset: str, method: str, corruption: str, seed: int, per_seed: bool) -> Path:
    stem = f"{corruption}.seed{seed}" if per_seed else corruption
    return Path(out) / dataset / method / f"{stem}.json"


def _plain(obj: Any) -> Any:
    """JSON-comparable form (tuples -> lists, numpy -> python)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (Path, torch.device)):
            return str(o)
        raise TypeError(f"cannot write {type(o).__name__} as JSON")

    return json.loads(json.dumps(obj, default=default))


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _finished(sc: Scenario) -> tuple[Path | None, str | None]:
    """(path of an equal finished result, or None; why an existing one is not reused)."""
    why = None
    for path in (sc.path, sc.other_path):
        data = _read_json(path) if path.is_file() else None
        if data is None:
            continue
        if data.get("settings") == sc.settings:
            return path, None
        old = data.get("settings") or {}
        diff = [k for k in sorted(set(old) | set(sc.settings)) if old.get(k) != sc.settings.get(k)]
        why = f"{path} was computed with other settings ({', '.join(diff[:3])}); recomputing it"
    return None, why


# Settings that name a scenario within a run (several corruptions, methods and seeds share a run
# folder); every other setting is the run's configuration, one per folder. "frost" (which frost
# source ran) exists only in frost scenarios, so it is compared per scenario (a changed source
# recomputes those results) and not against the run's other scenarios, which lack it.
SCENARIO_AXES = ("corruption", "severity", "method", "hparams", "seed", "frost")
# What every dataset of a run shares (datasets differ in their per-dataset preset values).
RUN_KEYS = ("split", "limit")
RUN_SEGMENTER_KEYS = ("name", "head", "model", "pretrained", "weights")


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every differing key, nested dicts flattened with dots."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a} -> {b}")
    return out


def _run_config(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in SCENARIO_AXES}


def _shared_config(settings: dict) -> dict:
    seg = settings.get("segmenter") or {}
    return {**{k: settings.get(k) for k in RUN_KEYS}, "segmenter": {k: seg.get(k) for k in RUN_SEGMENTER_KEYS}}


def find_conflicts(out: Path, planned: Sequence[dict]) -> list[tuple[Path, list[str]]]:
    """Result files in ``out`` computed with another configuration than the ``planned`` scenario
    settings, with what differs. A run folder holds one configuration, so that a summary never
    mixes, say, 4-image and 6-image results; new corruptions, methods and seeds may be added."""
    by_dataset = {s["dataset"]: _run_config(s) for s in planned}
    hparams = {s["method"]: s["hparams"] for s in planned}
    severities = {s["severity"] for s in planned if s["severity"] is not None}
    shared = _shared_config(planned[0]) if planned else None
    conflicts = []
    for path in sorted(out.glob("*/*/*.json")):
        if path.parts[-3].startswith("."):
            continue
        data = _read_json(path)
        if not data or "scenario" not in data or not isinstance(data.get("settings"), dict):
            continue
        old = data["settings"]
        if old.get("dataset") in by_dataset:
            diff = _differences(_run_config(old), by_dataset[old["dataset"]])
        else:
            diff = _differences(_shared_config(old), shared)
        if old.get("method") in hparams and old.get("hparams") != hparams[old["method"]]:
            diff += _differences({"hparams": old.get("hparams")}, {"hparams": hparams[old["method"]]})
        if old.get("severity") is not None and severities and old["severity"] not in severities:
            diff.append(f"severity: {old['severity']} -> {', '.join(map(str, sorted(severities)))}")
        if diff:
            conflicts.append((path, diff))
    return conflicts


def _conflict_message(out: Path, conflicts: list[tuple[Path, list[str]]]) -> str:
    what = list(dict.fromkeys(d for _, diff in conflicts for d in diff))
    more = f" and {len(what) - 3} more" if len(what) > 3 else ""
    return (f"{out} holds {len(conflicts)} result(s) of another configuration ({'; '.join(what[:3])}{more}); "
            "a run folder holds one configuration: write this run to another folder (--out), "
            "or replace those results (--overwrite)")


def _cm_restore(cm: ConfusionMatrix, counts: np.ndarray) -> bool:
    try:
        cm.load_state_dict({"counts": counts})
    except ValueError:
        return False
    return True


def _partial_file(sc: Scenario, suffix: str) -> Path:
    # appended, not Path.with_suffix: stems such as "fog.seed1.rank0of2" contain dots
    return sc.partial.with_name(sc.partial.name + suffix)


def _save_partial(sc: Scenario, cm: ConfusionMatrix, done: int, total: int, seconds: float, model_seconds: float) -> None:
    meta = {"settings": sc.settings, "done": done, "of": total, "seconds": seconds, "model_seconds": model_seconds}
    text = json.dumps(meta)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, counts=cm.state_dict()["counts"], meta=np.array(text))

    atomic_write(_partial_file(sc, ".npz"), write)  # authoritative
    write_json(_partial_file(sc, ".json"), {**meta, "note": "progress of an unfinished scenario; the .npz holds the counts"})


def _load_partial(sc: Scenario) -> tuple[np.ndarray, dict] | None:
    path = _partial_file(sc, ".npz")
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            counts, meta = z["counts"].astype(np.int64), json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError):
        return None
    if meta.get("settings") != sc.settings:
        return None
    return counts, meta


def _remove_partial(sc: Scenario) -> None:
    for suffix in (".npz", ".json"):
        _partial_file(sc, suffix).unlink(missing_ok=True)


def versions() -> dict[str, str]:
    import open_clip

    from .. import __version__

    return {"ovss": __version__, "torch": torch.__version__, "open_clip": open_clip.__version__,
            "python": platform.python_version()}


# ----------------------------------------------------------------------------- the run


def _method(m: str | AdaptationMethod) -> AdaptationMethod:
    method = get_method(m) if isinstance(m, str) else m
    if not isinstance(method.batch_size, int) or method.batch_size < 1:
        raise OvssError(f"method {method.name}: batch_size must be a positive integer, got {method.batch_size!r}")
    return method


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
    method_list = [_method(m) for m in methods]
    if len({m.name for m in method_list}) != len(method_list):
        raise OvssError("a method is listed twice; list each method once")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise OvssError(f"--workers must be 0 or more, got {workers!r}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise OvssError(f"--checkpoint-every must be a positive number of images, got {checkpoint_every!r}")
    opened = [d if isinstance(d, SegDataset) else open_dataset(d[0], d[1], split, limit) for d in datasets]
    if len({d.spec.name for d in opened}) != len(opened):
        raise OvssError("a dataset is listed twice; list each dataset once")
    rank, world = _rank_world()
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
                    stem = path.name[: -len(".json")] + (f".rank{rank}of{world}" if world > 1 else "")
                    sc = Scenario(
                        dataset=name, method=method.name, corruption=c, seed=seed, path=path,
                        other_path=result_path(out, name, method.name, c, seed, not per_seed),
                        partial=out / PARTIAL_DIR / name / method.name / stem,
                    )
                    sc.settings = _plain({
                        "segmenter": seg.settings(), "dataset": name, "split": ds.split,
                        "limit": limit, "images": len(ds), "corruption": c,
                        "severity": None if c == "original" else severity,
                        "method": method.name, "hparams": method.hparams(), "seed": seed,
                        **({"frost": frost_source()} if c == "frost" else {}),
                    })
                    plan.append((ds, seg, method, sc))

    conflicts = _from_rank0(find_conflicts(out, [sc.settings for *_, sc in plan]) if rank == 0 else None)
    if conflicts and not overwrite:
        raise OvssError(_conflict_message(out, conflicts))
    if conflicts and rank == 0:
        for path, _ in conflicts:
            path.unlink(missing_ok=True)
        print(f"ovss bench: --overwrite: removed {len(conflicts)} result(s) of another configuration from {out}",
              file=sys.stderr)

    done_paths = _from_rank0([_finished(sc) for *_, sc in plan])
    results: list[dict] = []
    todo = []
    for (ds, seg, method, sc), (found, why) in zip(plan, done_paths):
        if found is not None:
            if rank == 0:
                results.append(_read_json(found))
            continue
        if why and rank == 0:
            print(f"ovss bench: {why}", file=sys.stderr)
        saved = _load_partial(sc)
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


def protocol_classes(ds: SegDataset, preset: Preset) -> tuple[list[list[str]], str]:
    """The class list a scenario queries and where it comes from: the preset's protocol list for
    the dataset (``Preset.class_set``, e.g. MLMP's own files) if it has one, else the dataset's."""
    path = protocol_class_file(ds.spec.name, preset.class_set)
    if path is None:
        return ds.classes, "dataset"
    classes = read_class_file(path)
    if len(classes) != len(ds.classes):
        raise OvssError(f"{path} lists {len(classes)} classes but {ds.spec.name} has {len(ds.classes)}; "
                        "the protocol's list must follow the dataset's label order")
    return classes, f"{preset.class_set}/{path.name}"


def _run_scenario(ds: SegDataset, seg: Segmenter, method: AdaptationMethod, sc: Scenario, loaders: ScenarioLoaders,
                  checkpoint_every: int, bar, model_info: dict, vers: dict) -> dict:
    rank, world = _rank_world()
    classes, class_source = protocol_classes(ds, seg.preset)
    cm = ConfusionMatrix(ds.num_classes, ds.ignore_index)
    mine = rank_indices(len(ds), method.batch_size, rank, world)
    seconds = model_seconds = 0.0
    start = 0
    if sc.resume is not None and _cm_restore(cm, sc.resume["counts"]) and 0 < sc.start <= len(mine):
        start = sc.start
        seconds, model_seconds = float(sc.resume["seconds"]), float(sc.resume["model_seconds"])
    else:
        cm.reset()
    loader = loaders.batches(ds, seg.preset, sc.corruption, sc.seed, mine[start:], method.batch_size)
    done, saved_at = start, start
    if hasattr(method, "reset_stats"):
        method.reset_stats()
    t0 = time.perf_counter()
    counts_at_done = cm.state_dict()["counts"]  # the counts of the ``done`` images: what an interruption may save
    try:
        for batch in loader:
            for item in batch:
                if "error" in item:
                    raise OvssError(item["error"])
            _seed_everything(sc.seed, batch[0]["index"])
            t = time.perf_counter()
            labels = method(seg, [b["image"] for b in batch], classes, [b["size"] for b in batch])
            model_seconds += time.perf_counter() - t
            if len(labels) != len(batch):
                raise RuntimeError(f"method {method.name} returned {len(labels)} label maps for {len(batch)} images")
            for lab, item in zip(labels, batch):
                cm.update(lab, item["label"])
            done += len(batch)
            counts_at_done = cm.state_dict()["counts"]
            bar.update(len(batch))
            if done - saved_at >= checkpoint_every and done < len(mine):
                _save_partial(sc, cm, done, len(mine), seconds + time.perf_counter() - t0, model_seconds)
                saved_at = done
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep every image finished so far
        if done > saved_at and _cm_restore(cm, counts_at_done):
            _save_partial(sc, cm, done, len(mine), seconds + time.perf_counter() - t0, model_seconds)
        raise
    seconds += time.perf_counter() - t0
    images = int(all_reduce_sum(np.array([len(mine)], dtype=np.int64))[0])
    cm.reduce_distributed()
    _remove_partial(sc)
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
    if sc.other_path.is_file():  # a stale result under the other seed naming would be read twice by the report
        sc.other_path.unlink()
    return result
