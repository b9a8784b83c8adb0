"""torchrun support: joining the process group, rank 0's decisions on every rank, and which
images each rank evaluates."""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


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


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank, so all ranks take the same skip decisions."""
    if rank_world()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank_indices(n: int, batch_size: int, rank: int, world: int) -> list[int]:
    """Image indices of ``rank``: whole batches, batch b to rank b % world (see the module docstring)."""
    starts = range(rank * batch_size, n, world * batch_size)
    return [i for s in starts for i in range(s, min(s + batch_size, n))]


