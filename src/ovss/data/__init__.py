"""Benchmark datasets in MMSegmentation's layout, their class names, and layout checks.

``SegDataset(name, root)`` reads one split as ``{"image", "label", "name"}`` items;
``check_layout(name, root)`` says what is missing and how to prepare it; ``class_names(name)``
gives the class list (with synonyms) in label order.
"""
from .classnames import CLASSNAMES_DIR, class_names, class_set_folder, class_set_folders, protocol_class_file, read_class_file
from .datasets import (
    DATASETS,
    IGNORE_INDEX,
    DatasetSpec,
    LayoutReport,
    SegDataset,
    check_layout,
    get_spec,
    read_label,
    reduce_labels,
    resize_label,
    resolve_root,
    scan_layout,
)

__all__ = [
    "CLASSNAMES_DIR",
    "protocol_class_file",
    "class_set_folder",
    "class_set_folders",
    "DATASETS",
    "IGNORE_INDEX",
    "DatasetSpec",
    "LayoutReport",
    "SegDataset",
    "check_layout",
    "class_names",
    "get_spec",
    "read_class_file",
    "read_label",
    "reduce_labels",
    "resize_label",
    "resolve_root",
    "scan_layout",
]
