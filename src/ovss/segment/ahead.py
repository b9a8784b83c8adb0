"""Encoding the images of a folder a few at a time, their windows in shared forwards."""
from __future__ import annotations

from pathlib import Path

from ..errors import OvssError


class EncodedAhead:
    """Reads and encodes the next few images of a folder together, their windows in shared
    forwards (``Segmenter.encode_images``): it pays where one image has few windows. Features are
    kept for at most ``group`` images at a time (bounded memory); a file that cannot be read fails
    alone, as before."""

    def __init__(self, seg, files: list[Path], read, group: int = 8):
        """``read(path)``: an image file as ``seg.encode_images`` takes it, or an object with ``.rgb``."""
        self.seg, self.files, self.read, self.group = seg, files, read, group
        self.ready: dict[int, tuple] = {}
        self.next = 0

    def get(self, path: Path):
        i = self.next
        self.next += 1
        assert self.files[i] == path, "images are asked for in the order of the files"
        if i not in self.ready:
            self._encode(i)
        found = self.ready.pop(i)
        if isinstance(found, OvssError):
            raise found
        return found

    def _encode(self, start: int) -> None:
        images = {}
        for i in range(start, min(start + self.group, len(self.files))):
            try:
                images[i] = self.read(self.files[i])
            except OvssError as e:
                self.ready[i] = e
        pixels = [getattr(image, "rgb", image) for image in images.values()]
        try:
            encoded = self.seg.encode_images(pixels)
        except OvssError:  # one bad image must not fail its neighbours: encode them one by one
            encoded = []
            for image in pixels:
                try:
                    encoded.append(self.seg.encode_images([image])[0])
                except OvssError as e:
                    encoded.append(e)
        for (i, image), enc in zip(images.items(), encoded):
            self.ready[i] = enc if isinstance(enc, OvssError) else (image, enc)
