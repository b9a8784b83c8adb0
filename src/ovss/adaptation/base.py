"""The plug-in point for test-time adaptation methods.

The benchmark runner hands a method a batch of (possibly corrupted) images and asks for label maps;
how the method gets them (plain inference, or adapting the model on the batch first) is its own
business. Methods adapt episodically: whatever they change for one batch they undo before the next,
so results do not depend on the order of the images or on how they are split across processes.

Every method also keeps ``stats``, MLMP's cost table: seconds spent adapting and evaluating,
images seen, learnable parameters and peak memory. ``cost()`` turns them into per-image numbers.
"""
from __future__ import annotations

import abc
import time
from typing import Any

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock times measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory of a block of code, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only, like MLMP's table). CPU: the peak
    resident set size of the process (``VmHWM``), reset on entry through ``/proc/self/clear_refs``
    where Linux allows it; ``extra_mb`` is that peak minus the resident size on entry.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = 0.0
        self.extra_mb = 0.0
        self.source = "cuda_max_allocated" if device.type == "cuda" else "cpu_peak_rss"

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # resets the peak RSS of this process to its current RSS
            except OSError:
                self.source = "cpu_max_rss_since_start"
            self._start = _proc_status_mb("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mb = _proc_status_mb("VmHWM")
            if not self.peak_mb:
                import resource

                self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.extra_mb = max(self.peak_mb - self._start, 0.0)


def _proc_status_mb(key: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return 0.0


class AdaptationMethod(abc.ABC):
    """Base class: ``name`` is the registry key, ``batch_size`` how many images one call adapts on.

    Subclasses keep their hyper-parameters as constructor arguments and list them in
    ``hparams()``, which the runner records in every result so a run can be repeated.
    """

    name: str = "base"
    title: str = ""  # column title in benchmark tables (default: the name in upper case)
    batch_size: int = 1

    def hparams(self) -> dict[str, Any]:
        """Hyper-parameters that change results (recorded with them, compared on resume)."""
        return {"batch_size": self.batch_size}

    @abc.abstractmethod
    def __call__(
        self,
        segmenter,
        images: list[np.ndarray],
        classes,
        output_sizes: list[tuple[int, int]],
    ) -> list[torch.Tensor]:
        """Label maps (H x W integer tensors, one per image, at its ``output_sizes`` entry)."""

    # cost table ------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Totals since the last ``reset_stats()``: the raw material of MLMP's cost table."""
        if not hasattr(self, "_stats"):
            self.reset_stats()
        return self._stats

    def reset_stats(self) -> None:
        self._stats = {"adapt_seconds": 0.0, "eval_seconds": 0.0, "images": 0, "calls": 0,
                       "learnable_params": 0, "peak_memory_mb": 0.0, "peak_extra_mb": 0.0, "memory": ""}

    def _record(self, images: int, adapt_s: float, eval_s: float, memory: PeakMemory, learnable: int) -> None:
        s = self.stats
        s["adapt_seconds"] += adapt_s
        s["eval_seconds"] += eval_s
        s["images"] += images
        s["calls"] += 1
        s["learnable_params"] = learnable
        s["peak_memory_mb"] = max(s["peak_memory_mb"], memory.peak_mb)
        s["peak_extra_mb"] = max(s["peak_extra_mb"], memory.extra_mb)
        s["memory"] = memory.source

    def cost(self) -> dict[str, Any]:
        """Per-image seconds, peak memory and learnable parameters (MLMP's cost table row)."""
        s = self.stats
        n = max(s["images"], 1)
        return {"adapt_seconds_per_image": s["adapt_seconds"] / n, "eval_seconds_per_image": s["eval_seconds"] / n,
                "peak_memory_mb": s["peak_memory_mb"], "peak_extra_mb": s["peak_extra_mb"], "memory": s["memory"],
                "learnable_params": s["learnable_params"], "images": s["images"]}


class NoAdaptation(AdaptationMethod):
    """The frozen model: segment each image as it is (MLMP's "NoAdapt." column)."""

    name = "none"
    title = "NoAdapt."
    batch_size = 1

    def __call__(self, segmenter, images, classes, output_sizes):
        with PeakMemory(segmenter.device) as memory:
            t = time.perf_counter()
            labels = [segmenter.predict(image, classes, output_size=size).labels for image, size in zip(images, output_sizes)]
            _sync(segmenter.device)
            seconds = time.perf_counter() - t
        self._record(len(images), 0.0, seconds, memory, 0)
        return labels
