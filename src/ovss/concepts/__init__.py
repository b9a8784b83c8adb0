"""Test-time contrastive concepts for open-world segmentation (the contrastive-concepts paper).

A user asks for "boat" and nothing else; ovss contrasts the query with concepts chosen for it
(``contrastive_concepts``) from one of the sources in ``SOURCES`` (background, cooc, llm, oracle)
or a file, segments query plus concepts, and leaves every pixel a concept wins unlabelled
(``segment_open_world``). ``evaluate_iou_single`` measures that ability.

    from ovss import Segmenter
    from ovss.concepts import ClipTextSimilarity, contrastive_concepts, make_source, segment_open_world
    seg = Segmenter()
    cc = contrastive_concepts("boat", make_source("cooc"), ClipTextSimilarity.from_segmenter(seg))
    labels = segment_open_world(seg, image, "boat", cc)   # 0 = boat, 255 = anything else
"""
# Public names are imported on first use (PEP 562): the command line reads the defaults in
# ``sources`` while it builds its help, without importing torch through ``openworld``.
_LAZY = {
    **dict.fromkeys(['CooccurrenceDictionary', 'build_dictionary', 'build_from_file', 'load_dictionary', 'save_dictionary'], 'cooccurrence'),
    **dict.fromkeys(['ABSTRACT_FILTERS', 'WordNet', 'find_wordnet', 'make_abstract_filter'], 'filters'),
    **dict.fromkeys(['CONTRASTIVE_PROMPT', 'LLMClient', 'VISIBLE_PROMPT', 'parse_concept_list', 'parse_yes_no'], 'llm'),
    **dict.fromkeys(['OpenWorldQuery', 'evaluate_iou_single', 'open_world_classes', 'open_world_result', 'segment_open_world'], 'openworld'),
    **dict.fromkeys(['ClipTextSimilarity', 'TextSimilarity'], 'similarity'),
    **dict.fromkeys(['BETA', 'BackgroundSource', 'ConceptSet', 'CooccurrenceSource', 'DELTA', 'Decision', 'FileSource', 'GAMMA', 'LLMSource', 'OracleSource', 'SOURCES', 'Source', 'contrastive_concepts', 'make_source'], 'sources'),
    **dict.fromkeys(['UNINFORMATIVE', 'extract_concepts', 'singular'], 'vocabulary'),
}

__all__ = [
    "ABSTRACT_FILTERS", "BETA", "CONTRASTIVE_PROMPT", "DELTA", "GAMMA", "SOURCES", "UNINFORMATIVE",
    "VISIBLE_PROMPT", "BackgroundSource", "ClipTextSimilarity", "ConceptSet", "CooccurrenceDictionary",
    "CooccurrenceSource", "Decision", "FileSource", "LLMClient", "LLMSource", "OracleSource", "Source",
    "TextSimilarity", "WordNet", "build_dictionary", "build_from_file", "contrastive_concepts",
    "evaluate_iou_single", "extract_concepts", "find_wordnet", "load_dictionary", "make_abstract_filter",
    "make_source", "OpenWorldQuery", "open_world_classes", "open_world_result", "parse_concept_list", "parse_yes_no", "save_dictionary",
    "segment_open_world", "singular",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ovss.concepts' has no attribute '{name}'")
