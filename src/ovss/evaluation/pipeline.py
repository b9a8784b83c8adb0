"""The data side of a benchmark: each scenario's images under their corruption, read in worker
processes that live across scenarios and die with their parent, and the seeding that makes
a resumed or distributed run draw the numbers of an uninterrupted one."""
from __future__ import annotations

import functools
import os
import random
import sys
from typing import Sequence

import numpy as np
import torch
import torch.utils.data

from ..corruptions import corrupt
from ..data import SegDataset, resize_label
from ..errors import OvssError
from ..segment import Preset
from ..segment.sliding import resized_size


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


def collate_items(batch: list[dict]) -> list[dict]:
    return batch


def worker_init(_worker_id: int, parent_pid: int | None = None) -> None:
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


class BatchKeys:
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
        self._loaders: dict[tuple[int, int], tuple[torch.utils.data.DataLoader, BatchKeys]] = {}

    def batches(self, ds: SegDataset, preset: Preset, corruption: str, seed: int, indices: Sequence[int],
                batch_size: int):
        key = (id(ds), id(preset))
        if key not in self._loaders:
            sampler = BatchKeys()
            loader = torch.utils.data.DataLoader(
                ScenarioData(ds, "original", self.severity, preset, [], 0), batch_sampler=sampler,
                num_workers=self.workers, collate_fn=collate_items,
                worker_init_fn=functools.partial(worker_init, parent_pid=os.getpid()) if self.workers else None,
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


def seed_everything(seed: int, first_index: int) -> None:
    state = np.random.SeedSequence([int(seed), int(first_index)]).generate_state(2)
    value = int(state[0]) | (int(state[1]) << 32)
    random.seed(value)
    np.random.seed(int(state[0]))
    torch.manual_seed(value)


