"""``ovss app``: a local page to segment one image with any words (the optional ``app`` extra).

``session.ImageSession`` holds the image and the segmenter in plain Python (encode once, decode
on every change); ``page.build_page`` wraps it in gradio, imported only when the page is built,
so ``import ovss`` and every other command work without gradio.
"""
from .session import ImageSession, PageResult, RunSettings, check_image_file, parse_class_text

__all__ = ["ImageSession", "PageResult", "RunSettings", "check_image_file", "parse_class_text", "serve"]


def serve(model_name: str | None = None, pretrained: str | None = None, device: str = "cpu", host: str = "127.0.0.1",
          port: int = 7860, prompts: str | None = None, max_upload_mb: float = 20.0, max_pixels: int | None = None) -> None:
    """Load the model and serve the page until interrupted (what ``ovss app`` runs).

    gradio is checked first, so a missing extra costs one line and no model loading.
    """
    import os

    from ..errors import OvssError
    from .page import check_gradio, launch_page
    from .session import MAX_PIXELS

    check_gradio()
    if prompts is not None and not os.path.isfile(prompts):
        raise OvssError(f"prompts file not found: {prompts} (pass RUN/prompts.safetensors from ovss adapt train)")
    if max_upload_mb <= 0:
        raise OvssError(f"max_upload_mb must be positive (got {max_upload_mb})", param="max_upload_mb")
    if max_pixels is not None and max_pixels < 1:
        raise OvssError(f"max_pixels must be positive (got {max_pixels})", param="max_pixels")
    check_port(host, port)
    warning = exposure_warning(host)
    if warning:
        import sys

        print(f"ovss app: warning: {warning}", file=sys.stderr, flush=True)
    from ..model import load_model

    model = load_model(model_name, pretrained, device=device)
    launch_page(model, host=host, port=port, prompts=prompts, max_upload_mb=max_upload_mb,
                max_pixels=max_pixels or MAX_PIXELS)


def check_port(host: str, port: int) -> None:
    """Refuse a port that cannot be served (taken, privileged, out of range) before the model loads."""
    import socket

    from ..errors import OvssError

    if not 0 < port < 65536:
        raise OvssError(f"port must be between 1 and 65535 (got {port})", param="port")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, port))
    except OSError as e:
        raise OvssError(f"cannot serve on {host}:{port} ({e.strerror or e}); choose another port or host",
                        param="port") from None


def exposure_warning(host: str) -> str | None:
    """A line for a host that lets other machines in: the page has no login, and whoever reaches it
    can upload files and run the model."""
    import ipaddress

    if host in ("localhost", "") or host.startswith("127."):
        return None if host else "an empty host binds every interface; the page has no login"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a host name: it may resolve to anything
        return f"host '{host}' is not this machine's loopback; anyone who reaches it can use the page (it has no login)"
    if address.is_loopback:
        return None
    if address.is_unspecified:
        return (f"host {host} binds every network interface: anyone on your network can upload files and run "
                "the model (the page has no login); use 127.0.0.1 to keep it on this machine")
    return f"host {host} is reachable from other machines: anyone who reaches it can use the page (it has no login)"
