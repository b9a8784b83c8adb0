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
])
def test_bad_options_are_one_line_before_the_model_loads(args, msg, capsys):
    pytest.importorskip("gradio", reason="gradio is not installed (pip install 'ovss[app]')")
    assert main(["app", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
