"""``ovss bench`` stopped from outside: SIGTERM stops as cleanly as Ctrl-C, and SIGKILL leaves no workers.

Both run the real command in a subprocess on a small ShapesWorld export, wait until a checkpoint
shows images are being processed, then send the signal.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux")

N_IMAGES = 16


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("signals") / "sw"
    subprocess.run([sys.executable, "-m", "ovss", "world", "make", "--world", "shapesworld", "--out", str(out), "--n", str(N_IMAGES),
                    "--size", "112", "--seed", "3"], check=True, capture_output=True, env=_env(), timeout=120)
    return out


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _bench(world: Path, run: Path, workers: int = 2) -> list[str]:
    return [sys.executable, "-m", "ovss", "bench", "--dataset", "shapesworld", "--data-root", str(world),
            "--corruptions", "original", "--workers", str(workers), "--checkpoint-every", "1",
            "--no-progress", "--out", str(run)]


def _partial(run: Path) -> Path:
    return run / ".partial" / "shapesworld" / "none" / "original.npz"


def _wait_for(condition, proc, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, f"bench ended early (rc {proc.returncode}): {proc.stderr.read()}"
        assert time.monotonic() < deadline, "bench made no progress"
        time.sleep(0.02)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has released everything; only its exit status is left


def _done(run: Path) -> int:
    meta = json.loads((run / ".partial/shapesworld/none/original.json").read_text())
    return int(meta["done"])


def test_sigterm_stops_like_ctrl_c_and_the_rerun_resumes(world, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_bench(world, run), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _partial(run).is_file(), proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "ovss: terminated (SIGTERM); finished results are kept and a rerun resumes"
    assert "Traceback" not in err
    done = _done(run)
    assert 1 <= done < N_IMAGES  # the images finished before the signal are kept
    assert not (run / "shapesworld/none/original.json").exists()

    rerun = subprocess.run(_bench(world, run), env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads((run / "shapesworld/none/original.json").read_text())
    assert result["timing"]["resumed_at"] == done
    assert result["timing"]["images"] == N_IMAGES
    assert not _partial(run).exists()
    # every image counted exactly once: the confusion matrix holds every labelled (not 255) pixel once
    labelled = sum(int((np.asarray(Image.open(p)) != 255).sum()) for p in (world / "annotations/val").glob("*.png"))
    assert sum(map(sum, result["confusion_matrix"])) == labelled


def test_sigkill_takes_the_dataloader_workers_with_it(world, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_bench(world, run), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _partial(run).is_file(), proc)
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers  # the two DataLoader workers (and possibly a pin-memory helper)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 3.0
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leave them behind even when the test fails
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers {left} outlived their killed parent"
