"""OpenBench (the OVSNet/OpenBench paper): how far a benchmark's classes are from the training vocabulary, and a
builder for benchmarks that are far from it.

    from ovss.concepts import ClipTextSimilarity
    from ovss.openbench import openness_stats, parse_dataset, resolve_vocabulary, stats_table
    sim = ClipTextSimilarity.from_segmenter(seg)
    _, train = resolve_vocabulary("coco_stuff164k")
    print(stats_table([openness_stats(parse_dataset("ade20k"), train, sim)]))
"""
from .builder import build_openbench, read_merge_file
from .classcount import class_count_curve, curve_table, default_pool, irrelevant_names, plot_curve, run_class_count
from .hierarchy import Hierarchy, fine_grained, semantic_duplicates
from .stats import (
    FINE_SHARE, VOCABULARIES, DatasetEntry, OpennessStats, max_similarity, openness_stats, parse_dataset,
    plot_histogram, resolve_vocabulary, stats_table,
)

__all__ = [
    "FINE_SHARE", "VOCABULARIES", "DatasetEntry", "Hierarchy", "OpennessStats", "build_openbench",
    "class_count_curve", "curve_table", "default_pool", "fine_grained", "irrelevant_names", "max_similarity",
    "openness_stats", "parse_dataset", "plot_curve", "run_class_count", "plot_histogram", "read_merge_file", "resolve_vocabulary",
    "semantic_duplicates", "stats_table",
]
