"""``ovss app`` on the command line: listed in the help, gradio imported only when it runs."""
import subprocess
import sys

import pytest

from ovss.cli import main


def test_help_lists_app_without_importing_gradio():
    code = ("import sys; from ovss.cli import build_parser; p = build_parser(); "
            "assert 'app' in p.format_help(); print('gradio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_missing_gradio_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` raise ImportError
    assert main(["app", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ovss: error: ovss app needs gradio; install with pip install 'ovss[app]'"


@pytest.mark.parametrize("args,msg", [
    (["--prompts", "/no/such/prompts.safetensors"], "prompts file not found: /no/such/prompts.safetensors"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    (["--max-pixels", "0"], "--max-pixels must be positive"),
    (["--port", "70000"], "--port must be between 1 and 65535"),
])
def test_bad_options_are_one_line_before_the_model_loads(args, msg, capsys):
    pytest.importorskip("gradio", reason="gradio is not installed (pip install 'ovss[app]')")
    assert main(["app", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


def test_a_taken_port_is_one_line(capsys):
    import socket

    pytest.importorskip("gradio", reason="gradio is not installed (pip install 'ovss[app]')")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ovss: error: cannot serve on 127.0.0.1:{port} (") and "choose another --port" in err


def test_binding_every_interface_warns(monkeypatch, capsys):
    # issue 22: --host 0.0.0.0 bound every interface without a word
    pytest.importorskip("gradio", reason="gradio is not installed (pip install 'ovss[app]')")
    from ovss.app import exposure_warning

    assert exposure_warning("127.0.0.1") is None and exposure_warning("::1") is None
    assert exposure_warning("localhost") is None
    assert "binds every network interface" in exposure_warning("0.0.0.0")
    assert "binds every network interface" in exposure_warning("::")
    assert "reachable from other machines" in exposure_warning("192.168.1.5")
    import ovss.app
    import ovss.app.page
    import ovss.model

    monkeypatch.setattr(ovss.app, "check_port", lambda host, port: None)
    monkeypatch.setattr(ovss.model, "load_model", lambda *a, **k: "model")
    monkeypatch.setattr(ovss.app.page, "launch_page", lambda *a, **k: None)
    assert main(["app", "--host", "0.0.0.0", "--port", "8123"]) == 0
    err = capsys.readouterr().err.strip()
    assert err == ("ovss app: warning: host 0.0.0.0 binds every network interface: anyone on your network can "
                   "upload files and run the model (the page has no login); use 127.0.0.1 to keep it on this machine")
