"""The page's answers in plain Python (``page.answer``, the main image box, launching): a bad upload
on either image box is one status line naming the user's file, never the previous run's pictures;
ProxyCLIP is not offered; uploads go into the page's folder and leave with it."""
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")

from ovss.app import ImageSession  # noqa: E402
from ovss.app import page as page_module  # noqa: E402
from ovss.app.page import Upload, answer, image_box, import_gradio  # noqa: E402
from ovss.app.session import page_choices  # noqa: E402
from ovss.errors import OvssError  # noqa: E402


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG file announcing width x height (8-bit RGB) with an empty IDAT: a header to read, no pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _ask(session, image=None, image_file=None, classes="a, b"):
    return answer(session, image, image_file, classes, None, None, "shapesworld", 100.0, 0.0, False, False, "cooc",
                  None, "none")


@pytest.fixture
def uploads(tmp_path):
    """Files as gradio keeps them: under a temporary folder of its own, the user's names aside."""
    store = tmp_path / "gradio" / "0f3a9c"
    store.mkdir(parents=True)
    good = store / "upload_1.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(good)
    text = store / "upload_2.png"
    text.write_text("not a picture")
    huge = store / "upload_3.png"
    _png_header(huge, 30000, 30000)
    return good, text, huge


@pytest.mark.parametrize("box", ["image", "image_file"])
def test_bad_uploads_on_either_box_are_one_status_line(tiny_random, tmp_path, uploads, box):
    good, text, huge = uploads
    session = ImageSession(tiny_random, tmp_path / "s")
    first = _ask(session, **{box: Upload(str(good), "holiday.png")})
    assert first[1].startswith("run 1: decoded") or first[1].startswith("run 1: encoded")
    assert first[2] is not None and first[5] is not None
    session2, status, overlay, shares, label_map, files, where = _ask(session, **{box: Upload(str(text), "notes.png")})
    assert status == ("run 2: **error:** cannot read notes.png as an image (UnidentifiedImageError); "
                      "upload a PNG, JPEG or other image file")
    assert (overlay, shares, label_map, files, where) == (None, "", None, None, "")  # nothing of run 1 left
    status = _ask(session, **{box: Upload(str(huge), "panorama.png")})[1]
    assert status == ("run 3: **error:** image panorama.png is 30000 x 30000 = 900.0 megapixels; the page takes up "
                      "to 4.0 (shrink it, or run ovss segment on it)")
    assert "gradio" not in status and "upload_" not in status


def test_messages_name_the_uploaded_file_not_the_server_copy(tiny_random, tmp_path, uploads, monkeypatch):
    good, _, _ = uploads
    session = ImageSession(tiny_random, tmp_path / "s")

    def fail(path):  # a reader whose message names the full path it was given
        raise OvssError(f"cannot read {path} as an image (OSError); pass a PNG, JPEG or other image file")

    monkeypatch.setattr("ovss.app.session.read_image", fail)
    status = _ask(session, image_file=Upload(str(good), "holiday.png"))[1]
    assert "holiday.png" in status and str(good.parent) not in status


def test_main_image_box_hands_over_the_file_unopened(uploads):
    from gradio.data_classes import FileData

    gr = import_gradio()
    box = image_box(gr)(type="filepath")
    assert box.get_block_name() == "image"  # the browser draws gradio's own image box
    _, text, huge = uploads
    assert box.preprocess(FileData(path=str(text), orig_name="notes.png")) == Upload(str(text), "notes.png")
    assert box.preprocess(FileData(path=str(huge), orig_name="panorama.png")) == Upload(str(huge), "panorama.png")
    assert box.preprocess(None) is None
    with pytest.raises(Exception):  # what gradio's own box does with them
        gr.Image(type="filepath").preprocess(FileData(path=str(text), orig_name="notes.png"))


def test_proxyclip_is_not_offered_and_refused_in_one_line(tiny_random, tmp_path):
    heads, presets = page_choices()
    assert "proxyclip" not in heads and "proxyclip" not in presets
    assert {"naclip", "sclip", "clip"} <= set(heads) and {"naclip", "shapesworld", "resclip"} <= set(presets)
    session = ImageSession(tiny_random, tmp_path)
    session.set_image(np.zeros((16, 16, 3), np.uint8))
    for settings in (dict(head="proxyclip", preset="shapesworld"), dict(preset="proxyclip")):
        from ovss.app import RunSettings

        with pytest.raises(OvssError, match=r"^the page does not run proxyclip: it needs a second backbone's "
                                            r"checkpoint \(DINO\), which ovss segment takes$"):
            session.run("a, b", RunSettings(**settings))


def test_uploads_live_in_the_page_folder_and_leave_with_it(monkeypatch, tiny_random):
    seen = {}

    class FakePage:
        def queue(self, **_):
            return self

        def launch(self, **options):
            import gradio.utils

            folder = Path(gradio.utils.get_upload_folder())
            folder.mkdir(parents=True)
            (folder / "upload.png").write_bytes(b"x")  # what gradio does with an upload
            seen["folder"], seen["allowed"] = folder, options["allowed_paths"]
            raise KeyboardInterrupt

    def fake_build(model, prompts=None, max_pixels=0, work_dir=None):
        seen["work"] = Path(work_dir)
        return FakePage(), Path(work_dir)

    monkeypatch.setattr(page_module, "build_page", fake_build)
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.setattr("signal.signal", lambda *a: None)
    with pytest.raises(KeyboardInterrupt):
        page_module.launch_page(tiny_random, port=1)
    assert seen["work"] in seen["folder"].parents  # gradio's uploads went into the page's folder
    assert not seen["work"].exists()  # ... and left with it
    import os

    assert "GRADIO_TEMP_DIR" not in os.environ
