"""The package's structure, checked: no module of a lower layer imports a higher one, and no
private name is imported from another package. A layer may import any layer below it.

Layers, lowest first (the pipeline, then what builds on it):
  foundation   errors, outputs, files, viz, ply, images
  sources      model, data, corruptions, world (ShapesWorld generation)
  dense        the ViT block by block and its heads
  text         class lists, templates, text embeddings
  segment      the Segmenter and presets
  adaptation   test-time adaptation
  evaluation   metrics, benchmark runner and report
  tinyclip     training and checking the embedded model
  papers       concepts < openbench < ovsnet < opendas < scene3d (each may use the ones before it)
  reproduce    published tables beside ovss's own runs of them
  app          the local page
  cli          the command line
"""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ovss"

LAYERS = [
    {"errors", "outputs", "files", "viz", "ply", "images", "__init__"},
    {"model", "data", "corruptions", "world"},
    {"dense"},
    {"text"},
    {"segment"},
    {"adaptation"},
    {"evaluation"},
    {"tinyclip"},
    {"concepts"},
    {"openbench"},
    {"ovsnet"},
    {"opendas"},
    {"scene3d"},
    {"reproduce"},
    {"app"},
    {"cli", "__main__"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}
# a package or module added later must be placed in LAYERS; an unplaced one fails here
OPTIONAL_TOP: set[str] = set()


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path):
    """(imported package, imported names) of every ovss-internal import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = list(path.relative_to(SRC).parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
            target = base + (node.module.split(".") if node.module else [])
            if target:
                yield target[0], [a.name for a in node.names], target
            else:  # from .. import x: x is a package or module of ovss (or a name of ovss/__init__)
                for a in node.names:
                    yield a.name, [], [a.name]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ovss."):
            parts = node.module.split(".")[1:]
            yield parts[0], [a.name for a in node.names], parts


MODULES = sorted(SRC.rglob("*.py"))


def test_every_package_has_a_layer():
    packages = {_package(p) for p in MODULES}
    missing = packages - set(LEVEL) - OPTIONAL_TOP
    assert not missing, f"place these in LAYERS: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_higher_layer_or_a_private_name(path):
    here = _package(path)
    level = LEVEL.get(here, len(LAYERS) - 1 if here in OPTIONAL_TOP else None)
    for target, names, parts in _imports(path):
        if target == here or target not in LEVEL and target not in OPTIONAL_TOP:
            continue
        there = LEVEL.get(target, len(LAYERS) - 1)
        assert there <= level, f"{path.relative_to(SRC)} ({here}) imports {'.'.join(parts)} from a higher layer"
        private = [n for n in names if n.startswith("_") and n != "__version__"] + [p for p in parts if p.startswith("_") and p != "__init__"]
        assert not private, f"{path.relative_to(SRC)} imports private {private} from {'.'.join(parts)}"
