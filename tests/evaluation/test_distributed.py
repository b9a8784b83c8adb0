"""``torchrun --nproc-per-node 2 -m ovss bench`` gives exactly the single-process numbers (CPU, gloo)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

import ovss
from ovss.world import write_dataset

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    src = str(Path(ovss.__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return env


def test_two_processes_equal_one(tmp_path):
    world = write_dataset(tmp_path / "sw", n=6, seed=1, split="val", size=112, progress=False)
    common = ["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "gaussian_noise",
              "--preset", "shapesworld", "--model", "ovss-tiny", "--pretrained", "none", "--no-progress"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    one = subprocess.run([sys.executable, "-m", "ovss", *common, "--workers", "0", "--out", str(single)],
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
         "--master-port", str(_free_port()), "-m", "ovss", *common, "--workers", "1", "--out", str(multi)],
        env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("| Corruption |") == 1  # only rank 0 reports
    for c in ("original", "gaussian_noise"):
        a = json.loads((single / "shapesworld" / "none" / f"{c}.json").read_text())
        b = json.loads((multi / "shapesworld" / "none" / f"{c}.json").read_text())
        assert b["timing"]["world_size"] == 2 and b["timing"]["images"] == 6
        assert a["confusion_matrix"] == b["confusion_matrix"]
        assert a["metrics"] == b["metrics"]
        assert a["settings"] == b["settings"]
    assert not list(multi.rglob("*.npz"))  # no checkpoint left behind
    # the result tables are equal; the cost table after them holds measured seconds and memory
    tables = [(d / "summary.md").read_text().split("Cost per image")[0] for d in (single, multi)]
    assert "| Corruption |" in tables[0] and tables[0] == tables[1]
