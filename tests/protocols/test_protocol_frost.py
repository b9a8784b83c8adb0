"""Frost on ImageNet-C's pictures (from the installed imagecorruptions package) equals the
reference maths for the same draws; without the package the procedural textures run, and
results say which."""
import numpy as np
import pytest

from ovss.corruptions import imagenet_c
from ovss.corruptions.frost import frost_source, reference_source

needs_pictures = pytest.mark.skipif(reference_source() is None, reason="no package with the frost pictures")


class _Draws:
    """A generator stand-in that returns fixed draws: (picture, top, left)."""

    def __init__(self, values):
        self.values = list(values)

    def integers(self, *args):
        return self.values.pop(0)


@needs_pictures
@pytest.mark.parametrize("shape,draws", [((60, 90, 3), (2, 17, 40)), ((900, 700, 3), (4, 31, 5))])
def test_frost_equals_reference_for_the_same_draws(monkeypatch, shape, draws):
    import importlib
    import sys
    import types
    from pathlib import Path

    if importlib.util.find_spec("pkg_resources") is None:  # imagecorruptions 1.1.2 imports it; setuptools >= 81 dropped it
        fake = types.ModuleType("pkg_resources")
        fake.resource_filename = lambda module, name: str(Path(sys.modules[module].__file__).parent / name)
        monkeypatch.setitem(sys.modules, "pkg_resources", fake)
    ref = importlib.import_module("imagecorruptions.corruptions")
    folder = Path(ref.__file__).parent  # another test module may have stubbed the lookup already
    monkeypatch.setattr(ref, "resource_filename", lambda module, name: str(folder / name), raising=False)

    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    given = iter(draws)
    monkeypatch.setattr(ref.np.random, "randint", lambda *a, **k: next(given))
    expected = np.uint8(ref.frost(image, severity=5))  # the reference returns floats; its callers cast
    ours = imagenet_c.frost(image, 5, _Draws(draws))
    assert np.array_equal(ours, expected)


def test_source_is_named():
    text = frost_source()
    if reference_source() is None:
        assert text.startswith("procedural textures")
    else:
        assert text.startswith("pictures from imagecorruptions")

