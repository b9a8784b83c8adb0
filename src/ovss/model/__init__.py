"""Model loading: open_clip models by name, local checkpoints, or ovss's embedded tiny CLIP."""
from .loading import DEFAULT_MODEL, EMBEDDED_WORLDS, ClipModel, check_device, check_model_name, embedded_tag_for, is_embedded, list_pretrained, load_model, needs_weights

__all__ = ["DEFAULT_MODEL", "EMBEDDED_WORLDS", "ClipModel", "check_device", "check_model_name", "embedded_tag_for", "is_embedded", "list_pretrained", "load_model", "needs_weights"]
