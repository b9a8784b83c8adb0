"""ShapesWorld: ovss's own deterministic synthetic world of textured stuff and drawn objects.

It gives exact labels, instance masks and captions for free, so models can be trained and tested
without downloading anything, and open-vocabulary behaviour can be checked against known truth.
"""
from .captions import caption_for, classes_in_caption
from .classes import (
    BASE_CLASSES, CLASS_INDEX, CLASSES, COLORS, HOSTS, IGNORE_INDEX, NOVEL_CLASSES, OBJECT_COLORS,
    OBJECTS, STUFF, STYLES, SYNONYMS,
)
from .export import read_meta, scene_name, scene_seed, write_dataset
from .scene import Scene, check_style, make_object_image, make_scene, present_classes

__all__ = [
    "BASE_CLASSES", "CLASS_INDEX", "CLASSES", "COLORS", "HOSTS", "IGNORE_INDEX", "NOVEL_CLASSES",
    "OBJECT_COLORS", "OBJECTS", "STUFF", "STYLES", "SYNONYMS", "Scene", "caption_for",
    "check_style", "classes_in_caption", "make_object_image", "make_scene", "present_classes",
    "read_meta", "scene_name", "scene_seed", "write_dataset",
]
