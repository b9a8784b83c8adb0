"""Model loading: open_clip models by name, local checkpoints, or ovss's embedded tiny CLIP."""
from .loading import DEFAULT_MODEL, ClipModel, is_embedded, list_pretrained, load_model

__all__ = ["DEFAULT_MODEL", "ClipModel", "is_embedded", "list_pretrained", "load_model"]
