"""The output contract every command that writes follows: nothing lost, nothing silent.

One ``OutputRun`` per job, entered before any heavy work:

- the output is checked first: a file where a folder should be (or above it), a read-only place,
  an output that is (or lies inside) one of the job's inputs: one line, nothing written;
- the output is locked while the job writes it (``.ovss.lock``, holding the writer's pid): a second
  job gets one line naming the lock and the process; a lock whose process died is taken over;
- every file written while the job runs names it (``ovss.files`` tags PNGs, JSONs and safetensors
  with the kind of job and the run id), and a file of another kind of job, or of another run of a
  job that does not resume (``segment``), is refused unless ``overwrite``; a user's file never;
- a job that resumes (bench, world make, 3d classify, ...) continues its own folder's files.

Files written before the tags existed stay readable; they carry no run, so a job that does not
resume treats them as another run's.
"""
from __future__ import annotations

import functools
import json
import os
import secrets
import socket
import tempfile
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from PIL import Image, UnidentifiedImageError

from .errors import OvssError

SOFTWARE_KEY = "Software"
OVSS_MARK = "ovss"
JSON_MARK_KEY = "written_by"  # JSON outputs carry {"written_by": "ovss"}
JOB_KEY = "ovss_job"  # JSON: {"kind": ..., "run": ...}; safetensors metadata: the kind
PNG_JOB_KEY, PNG_RUN_KEY = "ovss-job", "ovss-run"


@dataclass(frozen=True)
class Job:
    """The job writing files now: its kind ("segment", "world make", ...) and run id.

    ``resumes``: a rerun of this kind continues (and may replace) the files of an earlier run of
    the same kind (bench, world make, 3d classify); otherwise (segment) another run's files are
    refused unless ``overwrite``.
    """

    kind: str
    run: str
    resumes: bool = True
    overwrite: bool = False


_JOB: ContextVar[Job | None] = ContextVar("ovss_job", default=None)


def current_job() -> Job | None:
    return _JOB.get()


@contextmanager
def running(job: Job):
    """Tag every file written inside the block with ``job`` and check ``claim`` against it."""
    token = _JOB.set(job)
    try:
        yield job
    finally:
        _JOB.reset(token)


@contextmanager
def job_of(kind: str):
    """The running job; a library function called outside any (from Python) runs as ``kind``, so
    its files still name the job that wrote them (no lock: that is ``OutputRun``'s)."""
    job = current_job()
    if job is not None:
        yield job
        return
    with running(Job(kind, new_run_id())) as job:
        yield job


def as_job(kind: str):
    """Decorate a library entry point (``write_dataset``, ``run_benchmark``, ...) so that called from
    Python its files name a job of ``kind`` as the command's do; inside a running job (the command,
    or a bigger job such as ``ovsnet ablation`` making its data) they name that job."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with job_of(kind):
                return fn(*args, **kwargs)
        return wrapper
    return decorate


def file_job(path: str | os.PathLike) -> tuple[str, str] | None:
    """(kind, run) of the job that wrote ``path`` (PNG, JSON, safetensors, PLY); None for a file without a job tag (a user's
    file, a format that cannot carry one, or an ovss file older than the tags)."""
    path = Path(path)
    suffix = _format(path)
    try:
        if suffix == ".png":
            with Image.open(path) as im:
                text = getattr(im, "text", {})
                kind, run = text.get(PNG_JOB_KEY), text.get(PNG_RUN_KEY)
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            tag = data.get(JOB_KEY) if isinstance(data, dict) else None
            kind, run = (tag.get("kind"), tag.get("run")) if isinstance(tag, dict) else (None, None)
        elif suffix == ".safetensors":
            meta = _safetensors_metadata(path)
            kind, run = meta.get(JOB_KEY), meta.get("ovss_run")
        elif suffix == ".ply":
            with open(path, "rb") as f:
                head = f.read(4096).split(b"end_header")[0].decode("ascii", "replace").splitlines()
            comments = dict(line.split(" ", 2)[1:] for line in head if line.startswith("comment ") and line.count(" ") >= 2)
            kind, run = comments.get(PNG_JOB_KEY), comments.get(PNG_RUN_KEY)
        else:
            return None
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError, AttributeError):
        return None
    return (str(kind), str(run)) if kind and run else None


def _format(path: Path) -> str:
    """The suffix that says how to read ``path``'s tag: its own, or for another name (a dictionary
    written as dict.txt) what its first bytes show (a PNG, a JSON object)."""
    suffix = path.suffix.lower()
    if suffix in (".png", ".json", ".safetensors", ".ply"):
        return suffix
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return suffix
    if head.startswith(b"\x89PNG"):
        return ".png"
    return ".json" if head.lstrip()[:1] == b"{" else suffix


def without_tags(data):
    """A JSON object read back without the job's tags (a table such as class -> names, whose every
    key is data); anything else unchanged."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k not in (JSON_MARK_KEY, JOB_KEY)}
    return data


def _safetensors_metadata(path: Path) -> dict:
    """The ``__metadata__`` of a safetensors file, read from its header alone."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 0 < size < 100_000_000:
            return {}
        header = json.loads(f.read(size).decode("utf-8"))
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def claim_problem(path: str | os.PathLike, job: Job | None = None) -> str | None:
    """Why the running job must not replace the existing file at ``path``, e.g. "another
    `ovss segment` run (...) wrote it" (None: it may).

    A file of another kind of job is refused, and for a job that does not resume, a file of
    another run or an ovss file older than the tags; ``overwrite`` allows both. Files without a
    tag are left to the job's own checks (``check_not_foreign``)."""
    job = job or current_job()
    path = Path(path)
    if job is None or job.overwrite or not path.is_file():
        return None
    tag = file_job(path)
    if tag is None:
        if not job.resumes and written_by_ovss(path):
            return "an earlier ovss run wrote it"
        return None
    kind, run = tag
    if kind != job.kind:
        return f"`ovss {kind}` wrote it, not `ovss {job.kind}`"
    if run != job.run and not job.resumes:
        return f"another `ovss {kind}` run ({run}) wrote it"
    return None


def claim(path: str | os.PathLike) -> None:
    """Raise before replacing a file the running job must not replace (see ``claim_problem``)."""
    why = claim_problem(path)
    if why:
        raise OvssError(f"refusing to replace {Path(path)}: {why}; choose another output, or replace it "
                        "(overwrite=True)", param="overwrite")


def written_by_ovss(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` is one ovss wrote (a marked PNG or JSON); False for anything else."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".png":
            with Image.open(path) as im:
                return getattr(im, "text", {}).get(SOFTWARE_KEY) == OVSS_MARK
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(data, dict) and data.get(JSON_MARK_KEY) == OVSS_MARK
        if path.suffix.lower() == ".safetensors":
            return _safetensors_metadata(path).get(JSON_MARK_KEY) == OVSS_MARK
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError):
        return False
    return False


def check_not_foreign(paths, hint: str) -> None:
    """Raise before any work if a path that would be written holds a file ovss did not write, or
    one the running job must not replace (another job's or another run's, see ``claim``)."""
    for path in paths:
        path = Path(path)
        if path.exists() and not (path.is_file() and written_by_ovss(path)):
            raise OvssError(f"refusing to write over {path}: ovss did not write it; {hint}")
        claim(path)


def check_output_dir(path: str | os.PathLike) -> Path:
    """Make sure ``path`` is (or can become) a writable folder, before any heavy work starts.

    Names the real problem in one line: a file where the folder should be, a file above it, a
    read-only place, or a pseudo file system such as /proc. Creates nothing: a probe file is made
    and removed in the folder, or in its nearest existing parent, so a run stopped by a later
    mistake leaves no empty output folder behind.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OvssError(f"{path} is a file, not a folder")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OvssError(f"{path} lies under {parent}, which is a file, not a folder")
    resolved = path.resolve()
    if resolved.parts[:2] in (("/", "proc"), ("/", "sys")):
        raise OvssError(f"{path} is in the kernel's pseudo file system /{resolved.parts[1]}; pick a normal folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ovss-probe.", dir=parent)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise OvssError(f"cannot write into {parent} ({e.strerror or e.__class__.__name__}); pick a writable folder") from None
    return path


def inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (both resolved, links followed)."""
    p, f = Path(path).expanduser().resolve(), Path(folder).expanduser().resolve()
    return p == f or f in p.parents


def check_not_input(out: str | os.PathLike, inputs: Iterable = (), folders: Iterable = ()) -> None:
    """Raise when the output ``out`` is one of ``inputs`` (a file or folder the job reads), or lies
    inside one of ``folders`` (folders the job reads whole, whose new files would be read as
    inputs next time): the job would write over, or into, what it reads."""
    for item in inputs:
        if item is not None and Path(item).expanduser().exists() and inside(out, item) and \
                Path(out).expanduser().resolve() == Path(item).expanduser().resolve():
            raise OvssError(f"the output {out} is the input {item}: it would be written over; "
                            "choose an output that is not an input")
    for item in folders:
        if item is not None and Path(item).expanduser().is_dir() and inside(out, item):
            raise OvssError(f"the output {out} lies inside the input folder {item}, whose files this job reads; "
                            "choose an output outside it")


def new_run_id() -> str:
    """A run id unique across processes and machines: time, pid and a random part."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"


LOCK_NAME = ".ovss.lock"
SCAN_LIMIT = 400  # tagged files looked at when checking a folder for another job's results


class OutputRun:
    """One job's output: checked, locked and tagged while the job writes it (module docstring).

    ``kind``: the job ("segment", "world make", ...); ``out``: the folder it writes (``is_file``:
    the file); ``inputs``: paths it reads, which the output must not be; ``input_folders``: folders
    it reads whole, which the output must not lie inside;
    ``resumes``: a rerun continues the files of the same kind of job; ``overwrite``: files of
    another job or run may be replaced; ``param``: the keyword the caller named the output with.
    """

    def __init__(self, kind: str, out: str | os.PathLike, *, inputs: Iterable = (), input_folders: Iterable = (),
                 is_file: bool = False, resumes: bool = True, overwrite: bool = False, param: str = "out"):
        self.out = Path(out).expanduser()
        self.param = param
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.input_folders = [Path(p) for p in input_folders if p is not None]
        self.is_file = is_file
        self.job = Job(kind, new_run_id(), resumes=resumes, overwrite=overwrite)
        self._created: list[Path] = []
        self._lock: Path | None = None
        self._token = None

    @property
    def folder(self) -> Path:
        return self.out.parent if self.is_file else self.out

    @property
    def lock_path(self) -> Path:
        return self.folder / (f".{self.out.name}{LOCK_NAME}" if self.is_file else LOCK_NAME)

    def check(self) -> None:
        """Everything about the output that can be wrong, before any work; creates nothing."""
        try:
            if self.is_file:
                if self.out.is_dir():
                    raise OvssError(f"{self.out} is a folder; name a file to write")
                check_output_dir(self.folder)
            else:
                check_output_dir(self.out)
        except OvssError as e:  # named as the caller passed it: out='x/y' (the command line: --out x/y)
            raise OvssError(f"{self.param}={str(self.out)!r}: {e}", param=self.param) from None
        check_not_input(self.out, self.inputs, self.input_folders)
        if self.is_file and self.out.is_file() and not self.job.overwrite and file_job(self.out) is None:
            raise OvssError(f"refusing to replace {self.out}: no ovss job wrote it (or one older than the job tags); "
                            "choose another output, or replace it (overwrite=True)", param="overwrite")
        if self.is_file:
            why = claim_problem(self.out, self.job)
            if why:
                raise OvssError(f"refusing to replace {self.out}: {why}; choose another output, or replace it "
                                "(overwrite=True)", param="overwrite")
        elif self.job.resumes and not self.job.overwrite:
            other = self._other_kind()
            if other is not None:
                raise OvssError(f"{self.out} holds results of `ovss {other[1]}` (e.g. {other[0]}), not of "
                                f"`ovss {self.job.kind}`; choose another output folder, or write into it anyway "
                                "(overwrite=True)", param="overwrite")

    def _other_kind(self) -> tuple[Path, str] | None:
        seen = 0
        for root, dirs, files in os.walk(self.out):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.lower().endswith((".png", ".json", ".safetensors")):
                    continue
                seen += 1
                tag = file_job(Path(root) / name)
                if tag is not None and tag[0] != self.job.kind:
                    return Path(root) / name, tag[0]
                if seen >= SCAN_LIMIT:
                    return None
        return None

    def __enter__(self) -> "OutputRun":
        self.check()
        self._make_folder()
        if int(os.environ.get("RANK", "0") or 0) == 0:  # torchrun: rank 0 holds the lock for all ranks
            self._take_lock()
        self._token = _JOB.set(self.job)
        return self

    def __exit__(self, *exc) -> None:
        if self._token is not None:
            _JOB.reset(self._token)
        self._release_lock()
        for folder in reversed(self._created):  # a job stopped early leaves no empty folder behind
            try:
                folder.rmdir()
            except OSError:
                pass

    def _make_folder(self) -> None:
        missing = []
        folder = self.folder
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created = list(reversed(missing))

    def _take_lock(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "kind": self.job.kind, "run": self.job.run,
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        lock = self.lock_path
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(lock)
            if _alive(holder, lock):
                raise OvssError(
                    f"{self.out} is being written by another ovss job (`ovss {holder.get('kind', '?')}`, "
                    f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}); "
                    f"wait for it to finish or choose another output (lock file {lock})") from None
            fd, tmp = tempfile.mkstemp(prefix=".ovss-lock.", dir=self.folder)  # a dead job's lock: take it over
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            os.replace(tmp, lock)
            if _read_lock(lock).get("run") != self.job.run:  # another job took it over at the same moment
                raise OvssError(f"{self.out} was just taken by another ovss job; wait for it or choose another output "
                                f"(lock file {lock})")
        else:
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None and _read_lock(self._lock).get("run") == self.job.run:
            try:
                self._lock.unlink()
            except OSError:
                pass
        self._lock = None


def _read_lock(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(holder: dict, lock: Path) -> bool:
    """Whether the job holding a lock still runs. Another machine's process cannot be checked, so
    it counts as running; an unreadable lock is being written right now unless it is old."""
    pid = holder.get("pid")
    if not isinstance(pid, int):
        try:
            return time.time() - lock.stat().st_mtime < 10
        except OSError:
            return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
