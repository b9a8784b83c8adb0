"""Text side: class lists with synonyms, prompt templates, cached text embeddings."""
from .classes import ClassList, parse_classes
from .embed import TextEncoder
from .templates import TEMPLATE_SETS, get_templates

__all__ = ["ClassList", "parse_classes", "TextEncoder", "TEMPLATE_SETS", "get_templates"]
