"""The result store of a run folder: atomic result JSONs, partial checkpoints of unfinished
scenarios, resume, and the rule that a run folder holds one configuration."""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..files import atomic_write, write_json
from .evaluator import SemSegEvaluator
from .metrics import ConfusionMatrix
from .plan import Scenario


def plain_json(obj: Any) -> Any:
    """JSON-comparable form (tuples -> lists, numpy -> python)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (Path, torch.device)):
            return str(o)
        raise TypeError(f"cannot write {type(o).__name__} as JSON")

    return json.loads(json.dumps(obj, default=default))


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def result_seed(path: Path) -> int | None:
    """The seed of the finished result at ``path`` (None: no result there)."""
    data = read_json(path) if path.is_file() else None
    seed = ((data or {}).get("settings") or {}).get("seed")
    return seed if isinstance(seed, int) else None


def finished_result(sc: Scenario) -> tuple[Path | None, str | None]:
    """(path of an equal finished result, or None; why an existing one is not reused). A result of
    another seed is another scenario, never a stale version of this one."""
    why = None
    for path in (sc.path, sc.other_path):
        data = read_json(path) if path.is_file() else None
        if data is None or ((data.get("settings") or {}).get("seed", sc.seed) != sc.seed):
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


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every differing key, nested dicts flattened with dots."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a} -> {b}")
    return out


def run_config(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in SCENARIO_AXES}


def shared_config(settings: dict) -> dict:
    seg = settings.get("segmenter") or {}
    return {**{k: settings.get(k) for k in RUN_KEYS}, "segmenter": {k: seg.get(k) for k in RUN_SEGMENTER_KEYS}}


def find_conflicts(out: Path, planned: Sequence[dict]) -> list[tuple[Path, list[str]]]:
    """Result files in ``out`` computed with another configuration than the ``planned`` scenario
    settings, with what differs. A run folder holds one configuration, so that a summary never
    mixes, say, 4-image and 6-image results; new corruptions, methods and seeds may be added."""
    by_dataset = {s["dataset"]: run_config(s) for s in planned}
    hparams = {s["method"]: s["hparams"] for s in planned}
    severities = {s["severity"] for s in planned if s["severity"] is not None}
    shared = shared_config(planned[0]) if planned else None
    conflicts = []
    for path in sorted(out.glob("*/*/*.json")):
        if path.parts[-3].startswith("."):
            continue
        data = read_json(path)
        if not data or "scenario" not in data or not isinstance(data.get("settings"), dict):
            continue
        old = data["settings"]
        if old.get("dataset") in by_dataset:
            diff = differences(run_config(old), by_dataset[old["dataset"]])
        else:
            diff = differences(shared_config(old), shared)
        if old.get("method") in hparams and old.get("hparams") != hparams[old["method"]]:
            diff += differences({"hparams": old.get("hparams")}, {"hparams": hparams[old["method"]]})
        if old.get("severity") is not None and severities and old["severity"] not in severities:
            diff.append(f"severity: {old['severity']} -> {', '.join(map(str, sorted(severities)))}")
        if diff:
            conflicts.append((path, diff))
    return conflicts


def conflict_message(out: Path, conflicts: list[tuple[Path, list[str]]]) -> str:
    what = list(dict.fromkeys(d for _, diff in conflicts for d in diff))
    more = f" and {len(what) - 3} more" if len(what) > 3 else ""
    return (f"{out} holds {len(conflicts)} result(s) of another configuration ({'; '.join(what[:3])}{more}); "
            "a run folder holds one configuration: write this run to another folder, "
            "or replace those results (overwrite=True)")


def restore_counts(cm: ConfusionMatrix | SemSegEvaluator, counts: np.ndarray) -> bool:
    """Load checkpointed counts into ``cm``; False (``cm`` unchanged) when they do not fit its classes."""
    try:
        cm.load_state_dict({"counts": counts})
    except ValueError:
        return False
    return True


def partial_file(sc: Scenario, suffix: str) -> Path:
    # appended, not Path.with_suffix: stems such as "fog.seed1.rank0of2" contain dots
    return sc.partial.with_name(sc.partial.name + suffix)


def save_partial(sc: Scenario, cm: ConfusionMatrix | SemSegEvaluator, done: int, total: int, seconds: float, model_seconds: float) -> None:
    meta = {"settings": sc.settings, "done": done, "of": total, "seconds": seconds, "model_seconds": model_seconds}
    text = json.dumps(meta)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, counts=cm.state_dict()["counts"], meta=np.array(text))

    atomic_write(partial_file(sc, ".npz"), write)  # authoritative
    write_json(partial_file(sc, ".json"), {**meta, "note": "progress of an unfinished scenario; the .npz holds the counts"})


def load_partial(sc: Scenario) -> tuple[np.ndarray, dict] | None:
    path = partial_file(sc, ".npz")
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


def remove_partial(sc: Scenario) -> None:
    for suffix in (".npz", ".json"):
        partial_file(sc, suffix).unlink(missing_ok=True)


def versions() -> dict[str, str]:
    import open_clip

    from .. import __version__

    return {"ovss": __version__, "torch": torch.__version__, "open_clip": open_clip.__version__,
            "python": platform.python_version()}


