"""What one browser tab of ``ovss app`` holds, in plain Python (no gradio here, so it is testable).

An ``ImageSession`` keeps one image and one ``Segmenter``. The image is encoded once; asking for
other classes, another logit scale, threshold, PAMR or open-world mode only decodes the cached
features again (``Segmenter.predict(None, ...)``), which is what makes the page feel instant.
Changing the head or the preset changes the features, so those encode again; so does a TTA run,
whose method may re-encode the image with the adapted model.

Every run writes the same three files ``ovss segment`` writes (``segment.single.write_segmentation``)
into the session's folder, overwriting the previous run's, so the page can offer them for download
and disk use stays bounded.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import OvssError
from ..files import read_image
from ..images import as_rgb, frames_record
from ..segment import SegmentationResult, Segmenter, default_preset, get_preset
from ..outputs import job_of
from ..segment.single import SegmentationFiles, write_segmentation
from ..text import ClassList, parse_classes
from ..viz import UNLABELLED

MAX_PIXELS = 4_000_000  # decoding keeps C x H x W float scores; 4 MP x 20 classes is ~320 MB
TTA_METHODS = ("none", "tent", "mlmp")
CONCEPT_SOURCES = ("cooc", "background")


def parse_class_text(text: str | None) -> ClassList:
    """Classes typed on the page: one line is comma-separated classes ("cat, sofa"); several lines
    are a class file (one class a line, its synonyms separated by commas: "sofa, couch")."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if len(lines) > 1:
        return parse_classes([line.split(",") for line in lines])
    if not lines:
        raise OvssError('no classes given; type class names separated by commas, e.g. "sky, grass, boat"')
    return parse_classes(lines[0])


def check_image_file(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, name: str | None = None) -> tuple[int, int]:
    """(width, height) of an image file, read from its header only; a picture larger than
    ``max_pixels`` is refused before it is decoded. ``name``: what messages call the file (the
    name it was uploaded under, not the server's copy)."""
    name = name or Path(path).name
    try:
        width, height = _header_size(path)
    except FileNotFoundError:
        raise OvssError(f"image not found: {name} (upload it again)") from None
    except Exception as e:  # PIL raises many types for files that are not images
        raise OvssError(f"cannot read {name} as an image ({e.__class__.__name__}); "
                        "upload a PNG, JPEG or other image file") from None
    if width * height > max_pixels:
        raise OvssError(f"image {name} is {width} x {height} = {width * height / 1e6:.1f} megapixels; "
                        f"the page takes up to {max_pixels / 1e6:.1f} (shrink it, or run ovss segment on it)")
    return width, height


_HEADER_LOCK = threading.Lock()


def _header_size(path) -> tuple[int, int]:
    """An image's size from its header. PIL refuses to even open a picture above twice its
    decompression-bomb limit (a 30000 x 30000 PNG); its size is still wanted for the message, and
    opening decodes nothing, so the limit is lifted for the open alone."""
    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError:
        with _HEADER_LOCK:
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as im:
                    return im.size
            finally:
                Image.MAX_IMAGE_PIXELS = limit


def needs_second_backbone(head: str | None, preset: str | None) -> bool:
    """Whether (head, preset) runs a head with a second backbone (ProxyCLIP's DINO)."""
    from ..dense import get_head

    return bool(get_head(head or get_preset(preset).head).second)


def page_choices() -> tuple[list[str], list[str]]:
    """The heads and presets the page offers: all but those with a second backbone (ProxyCLIP),
    which needs a DINO checkpoint the page has no control for (``ovss segment --vfm-weights`` runs it)."""
    from ..dense import HEADS
    from ..segment import PRESETS

    return ([h for h in HEADS if not needs_second_backbone(h, None)],
            [p for p in PRESETS if not needs_second_backbone(None, p)])


def check_page_head(head: str | None, preset: str) -> None:
    """One line for a head (or a preset's head) the page cannot run; unknown names are left to the
    segmenter's own message."""
    from ..dense import HEADS
    from ..segment import PRESETS

    if (head is not None and head not in HEADS) or (head is None and preset not in PRESETS):
        return
    if needs_second_backbone(head, preset):
        raise OvssError(f"the page does not run {head or preset}: it needs a second backbone's checkpoint (DINO), "
                        "which ovss segment takes", param="head" if head else "preset")


@dataclass
class RunSettings:
    """The page's controls. None keeps the preset's value."""

    head: str | None = None
    preset: str | None = None
    logit_scale: float | None = None
    prob_thd: float | None = None
    pamr: bool | None = None
    open_world: bool = False
    concepts: str = "cooc"  # a source name or the path of a concept file
    tta: str = "none"


@dataclass
class PageResult:
    """One run: the labels and shares ``ovss segment`` would write, the files, and what it cost."""

    labels: np.ndarray  # H x W uint8, 255 = unlabelled (open-world)
    shares: dict[str, float]
    classes: ClassList
    files: SegmentationFiles
    result: SegmentationResult | None  # scores behind the labels (None after TTA: methods return labels)
    encoded: bool  # whether this run had to encode the image
    seconds: dict[str, float] = field(default_factory=dict)
    concepts: list[str] = field(default_factory=list)  # open-world contrastive concepts
    tta: str = ""  # the TTA method's title when one adapted the model
    notes: list[str] = field(default_factory=list)  # what the page should say beside the timings

    def message(self) -> str:
        parts = [f"{k} {v:.2f} s" for k, v in self.seconds.items()]
        if self.tta:
            head = f"adapted the model on this image with {self.tta}, then segmented"
        elif self.encoded:
            head = "encoded the image, then decoded"
        else:
            head = "decoded the cached features (no re-encoding)"
        line = f"{head}: {', '.join(parts)}"
        if self.concepts:
            line += f"; contrastive concepts: {', '.join(self.concepts) or '(none)'}"
        for note in [*self.notes, *([self.files.note] if self.files.note else [])]:
            line += f"; note: {note}"
        return line

    def inspect(self, x: int, y: int) -> str:
        """What the page says about pixel (x, y): its class and the score behind it."""
        h, w = self.labels.shape
        if not (0 <= x < w and 0 <= y < h):
            return f"({x}, {y}) is outside the image ({w} x {h}); click on the picture, not the legend"
        label = int(self.labels[y, x])
        name = "(unlabelled)" if label == UNLABELLED else self.classes.names[label]
        if self.result is None:
            return f"pixel ({x}, {y}): {name} (TTA returns labels only, so there is no score)"
        probs = self.result.probs[:, y, x].float().cpu()
        winner = int(probs.argmax())
        if label == UNLABELLED:
            return (f"pixel ({x}, {y}): (unlabelled); won by '{self.result.classes.names[winner]}' "
                    f"with probability {float(probs[winner]):.3f}")
        line = f"pixel ({x}, {y}): {name}, probability {float(probs[label]):.3f}"
        if winner != label:
            line += f" (best was '{self.result.classes.names[winner]}' {float(probs[winner]):.3f}, below the threshold)"
        return line


class ImageSession:
    """One image and one segmenter; ``run`` answers the page's controls, encoding only when needed.

    ``lock`` serialises model work across sessions: TTA changes the shared model's weights while it
    adapts (and restores them after), so no other run may use the model meanwhile.
    """

    def __init__(self, model, out_dir: str | os.PathLike, prompts: str | None = None,
                 max_pixels: int = MAX_PIXELS, lock: threading.Lock | None = None):
        self.model = model
        self.out_dir = Path(out_dir)
        self.prompts = prompts
        self.max_pixels = max_pixels
        self.lock = lock or threading.Lock()
        self.requests = 0  # runs the page asked for (numbers its messages)
        self.encodes = 0  # how many times this session encoded an image (tests and the page read it)
        self.image: np.ndarray | None = None
        self.image_name = "image"
        self.image_source: tuple | None = None  # (path, size, mtime) of the file the image came from
        self.last: PageResult | None = None  # the latest run, for pixel inspection
        self._segmenter: Segmenter | None = None
        self._segmenter_key: tuple | None = None
        self._base_preset = None
        self._encoded_for: tuple | None = None

    # image -----------------------------------------------------------------------------------

    def load_image(self, path: str | os.PathLike, name: str | None = None) -> np.ndarray:
        """Read an uploaded file the way ``ovss segment`` reads it (``files.read_image``: upright)."""
        stat = os.stat(path) if os.path.isfile(path) else None
        source = (str(path), stat.st_size, stat.st_mtime_ns) if stat else None
        if source is not None and source == self.image_source and self.image is not None:
            return self.image  # the same upload again: keep the encoded features
        name = name or Path(path).name
        check_image_file(path, self.max_pixels, name)
        try:
            loaded = read_image(path)
        except OvssError as e:  # its message names the server's copy of the upload: name the user's file
            raise OvssError(str(e).replace(str(path), name), param=e.param) from None
        self.set_image(loaded.rgb, name)
        self.image_source = source
        frames, self.image_note = frames_record(path)
        if self.image_note:
            self.image_note = self.image_note.replace(str(path), name)
        self.image_record = {**loaded.describe(), **frames}
        return self.image

    def set_image(self, image: np.ndarray, name: str = "image") -> None:
        image = as_rgb(image)  # the input contract (numpy, torch, PIL; one message per rule)
        if image.dtype != np.uint8:  # float 0..1: the page draws and writes uint8 pictures
            image = np.round(image * 255).astype(np.uint8)
        if image.shape[0] * image.shape[1] > self.max_pixels:
            raise OvssError(f"image is {image.shape[1]} x {image.shape[0]}; the page takes up to "
                            f"{self.max_pixels / 1e6:.1f} megapixels (shrink it, or run ovss segment on it)")
        self.image = image
        self.image_name = name
        self.image_source = None
        self.image_record: dict = {}  # how the file was read (EXIF orientation), as ovss segment records it
        self.image_note: str | None = None  # what reading the file left out (frames after the first)
        self.last = None
        self._encoded_for = None

    # model side ------------------------------------------------------------------------------

    def segmenter(self, head: str | None, preset: str | None) -> Segmenter:
        """The segmenter for (head, preset), built once; the OpenDAS prompts are applied to it."""
        preset = preset or default_preset(self.model)
        check_page_head(head, preset)
        key = (head, preset)
        if key != self._segmenter_key:
            prompts = None
            if self.prompts:
                from ..opendas import load_prompt_addition

                prompts = self._prompt_addition = getattr(self, "_prompt_addition", None) or load_prompt_addition(
                    self.prompts, self.model)
            seg = Segmenter(self.model, head=head, preset=preset, prompts=prompts)
            self._segmenter, self._segmenter_key, self._base_preset = seg, key, seg.preset
            self._encoded_for = None
        return self._segmenter

    def run(self, classes: ClassList | str, settings: RunSettings | None = None) -> PageResult:
        """Segment the session's image into ``classes`` with ``settings``; write the three files."""
        s = settings or RunSettings()
        classes = parse_class_text(classes) if isinstance(classes, str) else classes
        if self.image is None:
            raise OvssError("no image yet; upload one or pick an example first")
        tta = None
        if s.tta and s.tta != "none":
            from ..adaptation import get_method

            if s.open_world:
                raise OvssError("TTA does not work with open-world mode; switch one of them off")
            tta = get_method(s.tta, protocol=s.preset or default_preset(self.model))  # as ovss bench runs it
        for name, value, low, high in (("logit scale", s.logit_scale, 1e-3, 1e4), ("probability threshold", s.prob_thd, 0, 1)):
            if value is not None and not low <= value <= high:
                raise OvssError(f"{name} must be between {low:g} and {high:g} (got {value})")
        with self.lock:
            seg = self.segmenter(s.head, s.preset)
            seg.preset = self._base_preset.with_overrides(logit_scale=s.logit_scale, prob_thd=s.prob_thd, pamr=s.pamr)
            seconds: dict[str, float] = {}
            open_world = self._open_world(seg, classes, s) if s.open_world else None
            encoded = False
            if tta is None and self._encoded_for != (id(self.image), self._segmenter_key):
                t0 = time.perf_counter()
                seg.set_image(self.image)
                seconds["encode"] = time.perf_counter() - t0
                self._encoded_for = (id(self.image), self._segmenter_key)
                self.encodes += 1
                encoded = True
            t0 = time.perf_counter()
            result = None
            if open_world is not None:
                labels, shares, result = open_world.segment_with_result(None)
                seconds["decode"] = time.perf_counter() - t0
            elif tta is not None:
                from ..adaptation.single import adapt_and_segment

                labels, shares = adapt_and_segment(tta, seg, self.image, classes)
                seconds["adapt + segment"] = time.perf_counter() - t0
                self._encoded_for = None  # the method may have left the adapted model's features cached
                encoded = True
            else:
                result = seg.predict(None, classes)
                labels, shares = result.labels.cpu().numpy().astype("uint8"), result.shares()
                seconds["decode"] = time.perf_counter() - t0
            extra = {  # the keys ovss segment writes, so the downloaded JSON is the command's
                **self.image_record,
                **({"tta": {"method": tta.name, **tta.hparams()}} if tta is not None else {}),
                **({"open_world": open_world.describe()} if open_world is not None else {}),
            }
            with job_of("app"):  # the downloads name the job that wrote them, as every ovss output does
                files = write_segmentation(self.out_dir, Path(self.image_name).stem or "image", self.image, labels,
                                           classes, shares, self.image_name, seg.settings(), extra)
        self.last = PageResult(labels, shares, classes, files, result, encoded, seconds,
                               open_world.concepts.concepts if open_world is not None else [],
                               (tta.title or tta.name.upper()) if tta is not None else "",
                               [self.image_note] if self.image_note else [])
        return self.last

    def _open_world(self, seg: Segmenter, classes: ClassList, s: RunSettings):
        from ..concepts import OpenWorldQuery, make_source

        if s.concepts not in CONCEPT_SOURCES and not Path(s.concepts).is_file():
            raise OvssError(f"concept source '{s.concepts}': choose {', '.join(CONCEPT_SOURCES)} or upload a concept file")
        return OpenWorldQuery(seg, classes, make_source(s.concepts))


def preset_defaults(preset: str | None, model) -> dict:
    """The values the page's controls show for a preset (its head, logit scale, threshold, PAMR)."""
    p = get_preset(preset or default_preset(model))
    return {"head": p.head, "logit_scale": p.logit_scale, "prob_thd": p.prob_thd, "pamr": p.pamr}
