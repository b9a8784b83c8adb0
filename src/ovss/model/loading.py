"""Load a CLIP for dense segmentation.

Three sources, one result (``ClipModel``):
- the embedded default (``ovss-tiny`` trained on ShapesWorld 2, shipped in the package);
- any open_clip model name with a pretrained tag (downloaded by open_clip where a network exists);
- a local checkpoint file: OpenAI's TorchScript ``.pt``, open_clip ``.bin``/``.pt`` state dicts or
  ``.safetensors``; or ``none`` for random initialisation (tests, benchmarks).

Loading never unpickles arbitrary objects: ``torch.load(weights_only=True)`` or safetensors.
"""
from __future__ import annotations

import logging
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import OvssError

CONFIG_DIR = Path(__file__).parent / "configs"
WEIGHTS_DIR = Path(__file__).parent / "weights"

# The table of weights that ship inside the package: model name -> {tag: file in WEIGHTS_DIR}.
EMBEDDED_WEIGHTS: dict[str, dict[str, str]] = {
    # "shapesworld2", the default: trained on ShapesWorld 2 with a per-patch term (189 classes; model card).
    # "shapesworld" and "shapesworld-levels": the earlier weights for the 19-class ShapesWorld, kept because
    # the ShapesWorld tables in docs/benchmarks.md and older run folders are measured with them.
    "ovss-tiny": {"shapesworld": "ovss-tiny-shapesworld.safetensors",
                  "shapesworld-levels": "ovss-tiny-shapesworld-levels.safetensors",
                  "shapesworld2": "ovss-tiny-shapesworld2.safetensors"},
}
DEFAULT_MODEL = ("ovss-tiny", "shapesworld2")
# The world each embedded tag was trained on. A model only knows its own world's classes, so the
# commands given a ShapesWorld export default to the weights of the export's world (`embedded_tag_for`).
EMBEDDED_WORLDS = {"shapesworld": "shapesworld", "shapesworld-levels": "shapesworld", "shapesworld2": "shapesworld2"}


def embedded_tag_for(world: str | None) -> str | None:
    """The embedded tag to use on data of ``world``: the default tag where it was trained on that
    world, else the first tag that was; None for data of no ShapesWorld."""
    if EMBEDDED_WORLDS.get(DEFAULT_MODEL[1]) == world:
        return DEFAULT_MODEL[1]
    return next((tag for tag, w in EMBEDDED_WORLDS.items() if w == world), None)


def is_embedded(model) -> bool:
    """Whether ``model`` (a ClipModel) holds weights shipped with ovss (trained on a ShapesWorld)."""
    return model.pretrained in EMBEDDED_WEIGHTS.get(model.name, {})
RANDOM_TAGS = ("none", "random", "")

# Compact storage of the embedded model: token-embedding rows of tokens never seen in training
# are zero and not stored; these two keys hold the stored rows and their token ids.
COMPACT_ROWS = "ovss.token_embedding.rows"
COMPACT_IDS = "ovss.token_embedding.ids"


@dataclass
class ClipModel:
    """An open_clip model with what dense segmentation needs to know about it."""

    clip: torch.nn.Module
    tokenizer: Any
    name: str
    pretrained: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    info: dict = field(default_factory=dict)

    @property
    def visual(self) -> torch.nn.Module:
        return self.clip.visual

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.clip.visual.image_size)

    @property
    def tower(self):
        """The vision tower's adapter (``ovss.model.towers``): its family, geometry and blocks."""
        from .towers import tower_for

        return tower_for(self.clip.visual, self.name)

    @property
    def patch_size(self) -> tuple[int, int]:
        return self.tower.patch_size

    @property
    def device(self) -> torch.device:
        return next(self.clip.parameters()).device

    @property
    def num_layers(self) -> int:
        return len(self.tower.modules)

    def describe(self) -> dict:
        return {"model": self.name, "pretrained": self.pretrained, **self.info}

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in the 0-255 range (B x 3 x H x W) -> the input this model was trained on: the
        model carries its own preprocessing, so no caller rewrites the normalisation."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images / 255.0 - mean) / std


_CONFIGS_ADDED = False


def open_clip_with_ovss_configs():
    """The open_clip module, with ovss's architecture configs (``configs/``) registered once."""
    global _CONFIGS_ADDED
    import open_clip

    if not _CONFIGS_ADDED:
        open_clip.add_model_config(CONFIG_DIR)
        _CONFIGS_ADDED = True
    return open_clip


def list_pretrained() -> list[tuple[str, str]]:
    """(model, tag) pairs: ovss's embedded weights first, then open_clip's table."""
    open_clip = open_clip_with_ovss_configs()
    embedded = [(m, t) for m, tags in EMBEDDED_WEIGHTS.items() for t in tags]
    return embedded + list(open_clip.list_pretrained())


def load_model(
    name: str | None = None,
    pretrained: str | None = None,
    device: str | torch.device = "cpu",
) -> ClipModel:
    """Load ``name`` with ``pretrained`` weights (a tag, a local file, or ``none``).

    With no name, the embedded default (ovss-tiny trained on ShapesWorld 2) is loaded.
    """
    open_clip = open_clip_with_ovss_configs()
    if name is None:
        name, pretrained = DEFAULT_MODEL if pretrained is None else (DEFAULT_MODEL[0], pretrained)
    check_model_name(name)
    if needs_weights(name, pretrained):
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise OvssError(
            f"model '{name}' needs weights: an open_clip tag ({', '.join(tags[:3]) or 'none known'}), "
            "a local checkpoint file, or 'none' for random weights"
        )
    check_device(device)
    check_tokenizer(open_clip, name)
    if pretrained is None:
        pretrained = next(iter(EMBEDDED_WEIGHTS[name]))

    activation_from = None  # why the activation differs from the name's config, where it does
    if pretrained.lower() in RANDOM_TAGS:
        clip = create_architecture(open_clip, name)
        source = "random initialisation"
    elif name in EMBEDDED_WEIGHTS and pretrained in EMBEDDED_WEIGHTS[name]:
        path = WEIGHTS_DIR / EMBEDDED_WEIGHTS[name][pretrained]
        if not path.exists():
            raise OvssError(f"embedded weights {path.name} are missing from the install; reinstall ovss or run 'ovss world train'")
        clip = create_architecture(open_clip, name)
        _load_into(clip, read_checkpoint(path), str(path))
        source = f"embedded ({path.name})"
    elif Path(pretrained).expanduser().exists() or _looks_like_path(pretrained):
        path = Path(pretrained).expanduser()
        if not path.exists():
            raise OvssError(f"checkpoint not found: {path} (check the path)")
        state, openai = read_checkpoint(path, return_kind=True)
        openai = openai or openai_by_name(path)
        # OpenAI trained its CLIPs with QuickGELU; open_clip's plain names (ViT-B-16) build GELU,
        # which loads the same tensors and silently gives other features
        clip = create_architecture(open_clip, name, quick_gelu=bool(openai))
        _load_into(clip, state, str(path))
        source = f"file {path}"
        if openai:
            activation_from = f"OpenAI weights ({openai})"
    else:
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise OvssError(
                f"unknown pretrained tag '{pretrained}' for {name}; known tags: {', '.join(tags) or 'none'}, "
                "or pass a local checkpoint file or 'none'"
            )
        check_pretrained_reachable(open_clip, name, pretrained)  # offline: one line now, not a minute of retries
        tag_quick_gelu = bool(open_clip.get_pretrained_cfg(name, pretrained).get("quick_gelu", False))
        if tag_quick_gelu:  # OpenAI's weights under a plain name: build the activation they were trained with
            activation_from = f"the pretrained tag '{pretrained}' (trained with QuickGELU)"
        try:
            clip = open_clip.create_model(name, pretrained=pretrained, force_quick_gelu=tag_quick_gelu)
        except Exception as e:  # network errors come in many types
            raise OvssError(
                f"cannot fetch weights {name}/{pretrained} ({e.__class__.__name__}: no network?); "
                "download the checkpoint elsewhere and pass pretrained=PATH", param="pretrained"
            ) from None
        source = f"open_clip tag {pretrained}"
    clip = clip.to(device).eval()
    try:
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as e:  # a Hugging Face tokenizer is fetched from the hub: no network, no tokenizer
        raise OvssError(f"cannot load the tokenizer of {name} ({e.__class__.__name__}: no network, or a missing "
                        "package?); install 'ovss[siglip]' and fetch it once where a network exists") from None
    mean = tuple(getattr(clip.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(getattr(clip.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    info = {"weights": source, "activation": activation_of(clip)}
    if activation_from is not None:
        info["activation_from"] = activation_from
    return ClipModel(clip, tokenizer, name, pretrained, mean, std, info)


def activation_of(clip: torch.nn.Module) -> str:
    """The MLP activation the built model runs: "quick_gelu" (OpenAI's x * sigmoid(1.702 x)) or "gelu"."""
    names = {type(m).__name__ for m in clip.modules()}
    return "quick_gelu" if "QuickGELU" in names else "gelu"


# keys OpenAI's checkpoints carry besides the weights (``clip/model.py``'s build_model drops them)
OPENAI_BOOKKEEPING = ("input_resolution", "context_length", "vocab_size")


def openai_by_name(path: str | Path) -> str | None:
    """Why a checkpoint file is OpenAI's from its path (``ViT-B-16-openai.pt``, open_clip's cache
    ``vit_base_patch16_clip_224.openai/``), or None."""
    return "its path names openai" if "openai" in str(path).lower() else None


def check_pretrained_reachable(open_clip, name: str, tag: str, timeout: float = 3.0) -> None:
    """Weights of an open_clip tag are in the local cache, or their host answers; else one line.

    Offline, open_clip and huggingface_hub retry for about a minute, with dozens of warnings,
    before failing: one connection attempt says the same at once.
    """
    import os
    import socket
    from urllib.parse import urlparse

    cfg = open_clip.get_pretrained_cfg(name, tag) or {}
    hub, url = cfg.get("hf_hub", ""), cfg.get("url", "")
    if "file" in cfg:
        return
    if hub:
        try:
            from huggingface_hub import constants, try_to_load_from_cache
        except ImportError:
            return  # open_clip says the hub is missing
        model_id, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        names = [filename] + ([filename.rsplit(".", 1)[0] + ".safetensors"] if filename.endswith((".bin", ".pth")) else [])
        if any(isinstance(try_to_load_from_cache(model_id, n), str) for n in names):
            return
        host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
        offline = constants.HF_HUB_OFFLINE
    elif url:
        if os.path.isfile(os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url))):
            return
        host, offline = urlparse(url).hostname, False
    else:
        return
    why = "HF_HUB_OFFLINE is set" if offline else None
    if why is None and any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # through a proxy a direct connection says nothing; the download itself will tell
    if why is None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            return
        except OSError as e:
            why = f"{host} is unreachable: {e.strerror or e.__class__.__name__}"
    raise OvssError(f"cannot fetch weights {name}/{tag} ({why}; they are not in the local cache); "
                    "download the checkpoint elsewhere and pass pretrained=PATH", param="pretrained")


def check_model_name(name: str) -> None:
    """An unknown architecture name is one line, with the closest spelling where there is one."""
    models = open_clip_with_ovss_configs().list_models()
    if name not in models:
        close = [m for m in models if name.lower().replace("/", "-") == m.lower()]
        hint = f" (did you mean {close[0]}?)" if close else " (run 'ovss models' to list them)"
        raise OvssError(f"unknown model '{name}'{hint}")


# optional extras: the packages a model's tokenizer needs -> the extra that installs them
TOKENIZER_EXTRAS = {"siglip": ("transformers", "sentencepiece")}


def check_tokenizer(open_clip, name: str) -> None:
    """One line naming the optional extra when ``name``'s tokenizer (or text tower) needs packages that
    are not installed (SigLIP's and SigLIP 2's tokenizers, NLLB-CLIP's text tower come from Hugging
    Face ``transformers``), before any weights are built."""
    import importlib.util

    text = (open_clip.get_model_config(name) or {}).get("text_cfg") or {}
    if not (text.get("hf_tokenizer_name") or text.get("hf_model_name")):
        return
    missing = [p for p in TOKENIZER_EXTRAS["siglip"] if importlib.util.find_spec(p) is None]
    if missing:
        what = "text tower" if text.get("hf_model_name") else "tokenizer"
        raise OvssError(f"model '{name}' needs a Hugging Face {what} ({', '.join(missing)} not installed): "
                        "install the optional extra, pip install 'ovss[siglip]'")


def needs_weights(name: str | None, pretrained: str | None) -> bool:
    """True when ``name`` is given without weights and ships none: random weights are never a
    silent default (they give meaningless labels), only an explicit ``pretrained='none'``."""
    return name is not None and pretrained is None and name not in EMBEDDED_WEIGHTS


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device that exists on this machine, else one line that says why."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise OvssError(f"unknown device '{device}'; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise OvssError("CUDA is not available on this machine (no GPU, or a CPU-only torch); use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise OvssError(f"there is no GPU {dev.index}; this machine has {torch.cuda.device_count()}")
    elif dev.type not in ("cpu", "mps"):
        raise OvssError(f"device type '{dev.type}' is not supported; use cpu, cuda or cuda:N")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise OvssError("MPS is not available on this machine; use cpu")
    return dev


def _looks_like_path(text: str) -> bool:
    return any(s in text for s in ("/", "\\")) or text.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))


def create_architecture(open_clip, name: str, quick_gelu: bool = False) -> torch.nn.Module:
    """The architecture with random weights (open_clip's warning about that is silenced)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        return open_clip.create_model(name, pretrained=None, force_quick_gelu=quick_gelu)
    finally:
        root.setLevel(level)


def read_checkpoint(path: str | Path, return_kind: bool = False):
    """Read a state dict safely. Returns (state, why it is OpenAI's or None) with ``return_kind``.

    OpenAI's checkpoints are TorchScript archives: they are read with ``torch.jit.load``, which
    restores tensors and TorchScript code, never arbitrary Python objects.
    """
    path = Path(path)
    is_openai: str | None = None
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        elif _is_torchscript(path):
            with warnings.catch_warnings():  # TorchScript is deprecated, but it is OpenAI's format
                warnings.simplefilter("ignore", FutureWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
            is_openai = "a TorchScript archive, OpenAI's format"
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except OvssError:
        raise
    except Exception as e:
        raise OvssError(f"cannot read checkpoint {path} ({e.__class__.__name__}); pass an OpenAI .pt, open_clip .bin/.pt or .safetensors file") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise OvssError(f"{path} holds no state dict; pass a checkpoint of model weights")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if "visual.conv1.weight" in state and all(k in state for k in OPENAI_BOOKKEEPING):  # OpenAI's key layout
        is_openai = is_openai or "its keys: OpenAI's layout (input_resolution, context_length, vocab_size)"
        state = {k: v for k, v in state.items() if k not in OPENAI_BOOKKEEPING}
    state = _expand_compact(state)
    return (state, is_openai) if return_kind else state


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def _expand_compact(state: dict) -> dict:
    if COMPACT_ROWS not in state:
        return state
    rows, ids = state.pop(COMPACT_ROWS), state.pop(COMPACT_IDS).long()
    vocab = int(state.pop("ovss.token_embedding.vocab_size").item())
    full = torch.zeros(vocab, rows.shape[1], dtype=rows.dtype)
    full[ids] = rows
    state["token_embedding.weight"] = full
    return state


def compact_state_dict(clip: torch.nn.Module, used_token_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """The state dict with only the token-embedding rows of ``used_token_ids`` (for shipping)."""
    state = {k: v.detach().clone().contiguous() for k, v in clip.state_dict().items()}
    emb = state.pop("token_embedding.weight")
    ids = torch.unique(used_token_ids.long())
    state[COMPACT_ROWS] = emb[ids].contiguous()
    state[COMPACT_IDS] = ids.to(torch.int64)
    state["ovss.token_embedding.vocab_size"] = torch.tensor(emb.shape[0])
    return state


def _load_into(clip: torch.nn.Module, state: dict, where: str) -> None:
    """Load strictly; name the first key or shape that does not fit."""
    own = clip.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.endswith("num_batches_tracked")}
    for key, value in own.items():
        if key not in state:
            raise OvssError(f"checkpoint {where} lacks '{key}': it does not fit this model; pick the model it was made for")
        if tuple(state[key].shape) != tuple(value.shape):
            raise OvssError(
                f"checkpoint {where} has '{key}' of shape {tuple(state[key].shape)}, the model expects "
                f"{tuple(value.shape)}; pick the model it was made for"
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise OvssError(f"checkpoint {where} has unexpected key '{extra[0]}': it does not fit this model; "
                        "pick the model it was made for")
    clip.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)

