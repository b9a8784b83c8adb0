"""The official downloads, read in place: tar and zip members by name, and the published checksums.

Extracting a 2 GB tar or a 19 GB zip to copy a tenth of it back out doubles the disk a user needs;
both formats allow reading one member at a time, so ``Archive`` indexes the members once and reads
only what a split needs. A truncated or damaged download is found when it is opened (a tar's member
headers, a zip's central directory) or when a member is read (a tar's short data, a zip's CRC), and
is reported as one line that names the file and says to download it again.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ...errors import OvssError

# Checksums published beside the official files' download code (the only ones we could cite):
#   VOC 2012 / 2010: torchvision ``datasets/voc.py`` DATASET_YEAR_DICT (md5),
#   val2017.zip: COCO download scripts and dataset loaders, e.g. torchtext-style ``valid_data_hash`` (md5),
#   ADEChallengeData2016.zip: GluonCV ``scripts/datasets/ade20k.py`` (sha1).
# stuffthingmaps_trainval2017.zip, trainval_merged.json and the Cityscapes zips have no checksum we
# could cite; their structure is checked instead (every member the split needs must be there).
KNOWN_CHECKSUMS: dict[str, tuple[str, str]] = {
    "VOCtrainval_11-May-2012.tar": ("md5", "6cd6e144f989b92b3379bac3b3de84fd"),
    "VOCtrainval_03-May-2010.tar": ("md5", "da459979d0c395079b5c75ee67908abb"),
    "val2017.zip": ("md5", "442b8da7639aecaf257c1dceb8ba8c80"),
    "ADEChallengeData2016.zip": ("sha1", "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7"),
}

_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


def _broken(path: Path, e: Exception) -> OvssError:
    why = str(e).splitlines()[0] if str(e) else e.__class__.__name__
    return OvssError(f"{path} is damaged or truncated ({why}); download it again")


def _plain(name: str) -> str:
    """A member's path without a leading ``./`` (``tar -cf x.tar ./VOCdevkit`` writes one)."""
    return name[2:] if name.startswith("./") else name


@dataclass
class Member:
    name: str
    size: int
    order: int  # position in the file: reading members in this order reads a tar front to back


class Archive:
    """A tar or zip download, opened for reading members by their path inside the archive."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            if zipfile.is_zipfile(self.path):
                self._zip = zipfile.ZipFile(self.path)
                self._tar = None
                infos = [i for i in self._zip.infolist() if not i.is_dir()]
                self._index = {_plain(i.filename): i for i in infos}
                self.members = {_plain(i.filename): Member(_plain(i.filename), i.file_size, i.header_offset) for i in infos}
            elif self.path.suffix == ".zip":
                raise zipfile.BadZipFile("no zip directory at its end")
            else:
                self._zip = None
                self._tar = tarfile.open(self.path, "r:*")
                infos = [m for m in self._tar.getmembers() if m.isfile()]  # reads every header: finds a cut-off tar
                if self.path.stat().st_size < self._tar.offset + 2 * tarfile.BLOCKSIZE:
                    raise tarfile.ReadError("no end-of-archive blocks after the last member")  # cut at a member's end
                self._index = {_plain(m.name): m for m in infos}
                self.members = {_plain(m.name): Member(_plain(m.name), m.size, m.offset) for m in infos}
        except _READ_ERRORS as e:
            raise _broken(self.path, e) from None

    def read(self, name: str) -> bytes:
        """The bytes of one member; a short or corrupt member is one line naming the archive."""
        try:
            if self._zip is not None:
                return self._zip.read(self._index[name])  # checks the member's CRC
            handle = self._tar.extractfile(self._index[name])
            data = handle.read()
            if len(data) != self._index[name].size:
                raise tarfile.ReadError("unexpected end of data")
            return data
        except KeyError:
            raise OvssError(f"{self.path} has no member {name}; is it the official file?") from None
        except _READ_ERRORS as e:
            raise _broken(self.path, e) from None

    def close(self) -> None:
        (self._zip or self._tar).close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_digest(path: Path, algorithm: str, progress: bool = False) -> str:
    """The hex digest of a (large) file, read in 8 MiB blocks with an optional progress bar."""
    h = hashlib.new(algorithm)
    size = path.stat().st_size
    from tqdm import tqdm

    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, desc=f"{algorithm} {path.name}",
                                     disable=not progress or size < 64 << 20) as bar:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def check_checksum(path: Path, progress: bool = False, verified: set[str] | None = None) -> str | None:
    """Compare ``path`` with its published checksum (None when none is known); raise one line on a mismatch.

    ``verified`` holds ``name:size:mtime`` keys of files already checked by an earlier (killed) run,
    so resuming does not hash 20 GB again; the key of a file checked now is returned.
    """
    known = KNOWN_CHECKSUMS.get(path.name)
    if known is None:
        return None
    stat = path.stat()
    key = f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"
    if verified is not None and key in verified:
        return key
    algorithm, expected = known
    actual = file_digest(path, algorithm, progress)
    if actual != expected:
        raise OvssError(
            f"{path} has {algorithm} {actual}, but the official {path.name} has {expected}; download it again "
            "(or pass checksum=False for a copy you trust)", param="checksum"
        )
    return key


def find_download(downloads: Path, filename: str, where: str) -> Path:
    """The official file ``filename`` in the downloads folder, or one line saying where to get it."""
    path = downloads / filename
    if not path.is_file():
        raise OvssError(f"{filename} not found in {downloads}; {where}", param="downloads")
    if path.stat().st_size == 0:
        raise OvssError(f"{path} is empty; download it again")
    return path
