"""The gradio page of ``ovss app``: controls in, ``ImageSession`` answers, nothing computed here.

Everything is served from this machine: the theme uses the system's fonts (gradio's default theme
would fetch Google fonts), analytics are off, and gradio ships its front end inside the package.
"""

import html
import os
import signal
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path


from ..errors import OvssError
from ..viz import UNLABELLED, label_png, palette
from .session import CONCEPT_SOURCES, MAX_PIXELS, TTA_METHODS, ImageSession, RunSettings, page_choices, preset_defaults

SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif")
MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")


def offline_environment() -> None:
    """Turn off gradio's analytics and version check and Hugging Face telemetry (before gradio is imported)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def check_gradio() -> None:
    """One line when gradio is missing, without importing it: gradio makes its temporary folders
    when imported, and the page first points them into its own folder (``launch_page``)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("gradio") is not None
    except ValueError:  # a module in sys.modules without a spec
        found = "gradio" in sys.modules and sys.modules["gradio"] is not None
    if not found:
        raise OvssError("ovss app needs gradio; install with pip install 'ovss[app]'")


def import_gradio():
    """gradio, or one line saying how to get it (it is the optional ``app`` extra)."""
    offline_environment()
    try:
        import gradio
    except ImportError:
        raise OvssError("ovss app needs gradio; install with pip install 'ovss[app]'") from None
    return gradio


def shares_html(shares: dict[str, float], names: list[str]) -> str:
    """The legend as a table: colour, class, pixel share (the overlay's legend, readable by a test)."""
    colours = palette(256)
    rows = []
    for name, share in shares.items():
        index = names.index(name) if name in names else UNLABELLED
        r, g, b = (int(c) for c in colours[index])
        rows.append(f'<tr class="ovss-share"><td><span style="display:inline-block;width:14px;height:14px;'
                    f'background:rgb({r},{g},{b});border:1px solid #000"></span></td>'
                    f'<td class="ovss-name">{html.escape(name)}</td><td class="ovss-pct">{100 * share:.2f}%</td></tr>')
    return ('<table id="ovss-share-table"><thead><tr><th></th><th>class</th><th>pixels</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


@dataclass(frozen=True)
class Upload:
    """A file the page received: where the server keeps it, and the name it was uploaded under."""

    path: str
    name: str


def image_box(gr):
    """The main image box, a ``gr.Image`` that hands over the uploaded file without opening it.

    ``gr.Image`` opens every upload with PIL before any function runs: a file that is not an image,
    or a 30000 x 30000 PNG (PIL's decompression-bomb limit), then fails inside gradio ("Could not
    preprocess input component", red Error badges) and the status line keeps the previous run. Here
    the file goes to ``answer`` as an ``Upload`` and ``ImageSession.load_image`` says what is wrong
    in the status line, as for the other box. A pasted image (a data URL) is decoded by gradio.
    """

    class PathImage(gr.Image):
        is_template = True  # gradio's mark for a subclass drawn by its parent's front end (the image box)

        def preprocess(self, payload):
            if payload is None or payload.path is None or (payload.url or "").startswith("data:"):
                try:
                    return super().preprocess(payload)
                except Exception as e:  # a pasted image gradio cannot decode
                    return Upload("", f"the pasted image ({e.__class__.__name__})")
            return Upload(str(payload.path), Path(payload.orig_name or payload.path).name)

    return PathImage


def answer(session: ImageSession, image_path, image_file, classes_text, class_file, head, preset, logit_scale, prob_thd,
           pamr, open_world, concept_source, concept_file, tta) -> tuple:
    """What one press of Segment shows: (session, status line, overlay, shares table, label map,
    downloads, pixel line). An error replaces every output, so the status line never pairs a new
    error with the previous run's pictures; messages name uploads by their own names."""
    session.requests += 1
    number = f"run {session.requests}: "  # every answer differs from the last, so a reader sees it is new
    uploads = [u for u in (image_path, image_file, class_file, concept_file) if _file_path(u)]
    try:
        upload = image_file if _file_path(image_file) else image_path
        path = _file_path(upload)
        if not path:
            if isinstance(upload, Upload) and upload.name:
                raise OvssError(f"cannot read {upload.name}; paste or upload a PNG, JPEG or other image file")
            raise OvssError("no image yet; upload one, paste one, or pick an example below")
        session.load_image(path, _orig_name(upload))
        classes = _classes(classes_text, class_file)
        if concept_source == "file":
            concept_source = _file_path(concept_file)
            if not concept_source:
                raise OvssError("concept source 'file' needs a concept file (one concept a line); upload one")
        settings = RunSettings(head=head, preset=preset, logit_scale=float(logit_scale), prob_thd=float(prob_thd),
                               pamr=bool(pamr), open_world=bool(open_world), concepts=concept_source, tta=tta)
        run = session.run(classes, settings)
    except OvssError as e:
        message = page_message(e)
        for upload in uploads:  # the server's copy of an upload -> the name the user knows
            message = message.replace(_file_path(upload), _orig_name(upload))
        return session, f"{number}**error:** {html.escape(message)}", None, "", None, None, ""
    except Exception as e:  # a bug: say so on the page, keep the traceback in the server log, keep serving
        traceback.print_exc(file=sys.stderr)
        return session, f"{number}**internal error:** {html.escape(e.__class__.__name__)}: {html.escape(str(e))}", None, "", None, None, ""
    from PIL import Image

    overlay = Image.open(run.files.overlay).convert("RGB")
    label_map = label_png(run.labels).convert("RGB")
    files = [str(run.files.overlay), str(run.files.labels), str(run.files.record)]
    return (session, number + run.message(), overlay, shares_html(run.shares, run.classes.names), label_map, files,
            "click a pixel of the overlay to see its class and score")


def build_page(model, prompts: str | None = None, max_pixels: int = MAX_PIXELS, work_dir: str | None = None):
    """The gradio Blocks of the page, and the folder its sessions write into."""
    gr = import_gradio()
    from ..segment import default_preset
    from .examples import examples_world, write_examples

    heads, presets = page_choices()  # not ProxyCLIP: the page has no control for its DINO checkpoint

    work = Path(work_dir or tempfile.mkdtemp(prefix="ovss-app-"))
    examples = write_examples(work / "examples", world=examples_world(model))
    lock = threading.Lock()
    start = preset_defaults(None, model)
    counter = iter(range(1, 1 << 62))

    def new_session() -> ImageSession:
        return ImageSession(model, work / f"session-{next(counter)}", prompts=prompts, max_pixels=max_pixels, lock=lock)

    def segment(session, image_path, image_file, classes_text, class_file, head, preset, logit_scale, prob_thd, pamr,
                open_world, concept_source, concept_file, tta):
        return answer(session or new_session(), image_path, image_file, classes_text, class_file, head, preset,
                      logit_scale, prob_thd, pamr, open_world, concept_source, concept_file, tta)

    def inspect(session, evt: gr.SelectData):
        if session is None or session.last is None:
            return "run a segmentation first"
        x, y = (int(v) for v in evt.index[:2])
        return session.last.inspect(x, y)

    def on_preset(preset):
        d = preset_defaults(preset, model)
        return d["head"], d["logit_scale"], d["prob_thd"], d["pamr"]

    model_name = f"{model.name} ({model.pretrained})"
    with gr.Blocks(title="ovss", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        state = gr.State(None)
        gr.Markdown(f"## ovss: segment any image with any words\nmodel **{html.escape(model_name)}**"
                    + (f", OpenDAS prompts `{html.escape(str(prompts))}`" if prompts else "")
                    + f"; images up to {max_pixels / 1e6:.1f} megapixels. Everything runs on this machine.")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_box(gr)(label="image (upload, drag and drop, or paste)", type="filepath", image_mode=None,
                                 sources=["upload", "clipboard"], elem_id="ovss-image", height=280)
                image_file = gr.File(label="or any image file ovss reads (TIFF, 16-bit PNG, ...)",
                                     elem_id="ovss-image-file", height=80)
                classes = gr.Textbox(label="classes", elem_id="ovss-classes", lines=2,
                                     placeholder="sky, grass, boat   (one line: classes; several lines: one class a line, synonyms by commas)")
                class_file = gr.File(label="or a class file (cls_*.txt)", file_types=[".txt"], elem_id="ovss-class-file", height=80)
                with gr.Row():
                    head = gr.Dropdown(heads, value=start["head"], label="head", elem_id="ovss-head")
                    preset = gr.Dropdown(presets, value=default_preset(model), label="preset", elem_id="ovss-preset")
                with gr.Row():
                    logit_scale = gr.Number(value=start["logit_scale"], label="logit scale", minimum=0.001, elem_id="ovss-logit-scale")
                    prob_thd = gr.Slider(0, 1, value=start["prob_thd"], step=0.01, label="probability threshold", elem_id="ovss-prob-thd")
                    pamr = gr.Checkbox(value=start["pamr"], label="PAMR", elem_id="ovss-pamr")
                with gr.Accordion("open world: label only the classes asked for", open=False):
                    open_world = gr.Checkbox(False, label="open-world mode (other pixels stay unlabelled)", elem_id="ovss-open-world")
                    concept_source = gr.Radio([*CONCEPT_SOURCES, "file"], value="cooc", label="contrastive concepts from")
                    concept_file = gr.File(label="concept file (one concept a line)", file_types=[".txt"], height=80)
                tta = gr.Radio(list(TTA_METHODS), value="none", label="test-time adaptation", elem_id="ovss-tta")
                run = gr.Button("Segment", variant="primary", elem_id="ovss-run")
                gr.Examples([[str(p), text] for p, text in examples], inputs=[image, classes], label="ShapesWorld examples")
            with gr.Column(scale=1):
                status = gr.Markdown("upload an image, type classes, press Segment", elem_id="ovss-status")
                overlay = gr.Image(label="overlay (click a pixel)", interactive=False, elem_id="ovss-overlay", height=320,
                                   format="png")
                where = gr.Textbox(label="pixel", interactive=False, elem_id="ovss-inspect")
                shares = gr.HTML(elem_id="ovss-shares")
                label_map = gr.Image(label="label map", interactive=False, elem_id="ovss-labels", height=200,
                                     format="png")
                downloads = gr.File(label="the files ovss segment writes", file_count="multiple", elem_id="ovss-downloads")
        inputs = [state, image, image_file, classes, class_file, head, preset, logit_scale, prob_thd, pamr, open_world,
                  concept_source, concept_file, tta]
        outputs = [state, status, overlay, shares, label_map, downloads, where]
        run.click(segment, inputs, outputs)
        classes.submit(segment, inputs, outputs)
        prob_thd.release(segment, inputs, outputs)
        pamr.input(segment, inputs, outputs)
        open_world.input(segment, inputs, outputs)
        overlay.select(inspect, [state], [where])
        preset.input(on_preset, [preset], [head, logit_scale, prob_thd, pamr])
        image.upload(lambda: None, None, [image_file])
        image_file.upload(lambda: None, None, [image])
    return page, work


def launch_page(model, host: str = "127.0.0.1", port: int = 7860, prompts: str | None = None,
                max_upload_mb: float = 20.0, max_pixels: int = MAX_PIXELS) -> None:
    """Serve the page until interrupted. Everything it writes, gradio's copies of the uploads
    included (``GRADIO_TEMP_DIR``), lies in one folder removed when the page stops."""
    import shutil

    work = Path(tempfile.mkdtemp(prefix="ovss-app-"))
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(work / "uploads")  # read when gradio builds the page and its server
    try:
        gr = import_gradio()
        page, work = build_page(model, prompts=prompts, max_pixels=max_pixels, work_dir=str(work))
        theme = gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(MONO_FONTS))
        print(f"ovss app: http://{host}:{port} (sessions write to {work}; Ctrl+C stops)", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it like Ctrl+C, cleaning up
        page.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, share=False, inbrowser=False, show_error=True, quiet=True,
            max_file_size=int(max_upload_mb * 1024 * 1024), allowed_paths=[str(work)], theme=theme, ssr_mode=False,
            mcp_server=False, state_session_capacity=50, footer_links=[],
        )
    finally:  # the examples, every session's files and the uploads were written by this run: remove them with it
        shutil.rmtree(work, ignore_errors=True)
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous


# the page's name for each library keyword an error may be about (``OvssError.param``)
CONTROL_NAMES = {"classes": "classes", "head": "head", "preset": "preset", "logit_scale": "logit scale",
                 "prob_thd": "probability threshold", "pamr": "PAMR", "concepts": "concept source",
                 "tta": "test-time adaptation"}


def page_message(err: OvssError) -> str:
    """``err``'s message with the value it is about called by the page's control, not its Python keyword."""
    name = CONTROL_NAMES.get(err.param or "")
    return err.renamed(name, quote=lambda v: f"'{v}'") if name else str(err)


def _file_path(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, Upload):
        return value.path or None
    return value if isinstance(value, str) else getattr(value, "name", None) or getattr(value, "path", None)


def _orig_name(value) -> str | None:
    if isinstance(value, Upload):
        return value.name
    path = _file_path(value)
    return Path(path).name if path else None


def _classes(text: str, class_file):
    from ..text import parse_classes
    from .session import parse_class_text

    path = _file_path(class_file)
    if path and (text or "").strip():
        raise OvssError("give classes as text or as a class file, not both; clear one of them")
    return parse_classes(classes_file=path) if path else parse_class_text(text)
