"""The embedded ovss-tiny model: it loads by default, and each embedded tag knows its world."""

from ovss.model import DEFAULT_MODEL, embedded_tag_for, load_model
from ovss.tinyclip.quality import zero_shot_accuracy


class TestShippedModel:
    def test_default_model_is_embedded_tiny(self):
        m = load_model()
        assert (m.name, m.pretrained) == DEFAULT_MODEL
        assert "embedded" in m.info["weights"]

    def test_each_world_gets_the_weights_trained_on_it(self):
        assert DEFAULT_MODEL == ("ovss-tiny", "shapesworld2")
        assert embedded_tag_for("shapesworld2") == "shapesworld2"
        assert embedded_tag_for("shapesworld") == "shapesworld"  # the first tag trained on it, not "-levels"
        assert embedded_tag_for(None) is None and embedded_tag_for("ade20k") is None


class TestShapesWorldWeights:
    """The embedded `shapesworld` tag, trained on the 19-class ShapesWorld (the default until ShapesWorld 2)."""

    def test_zero_shot_accuracy_on_fresh_images(self):
        # fresh single-object images (seed 7 is used nowhere else), 12 classes x 30 images;
        # measured 91.9 to 93.9 % over seeds 1, 7, 11 and 13 at this size
        acc = zero_shot_accuracy(load_model(pretrained="shapesworld"), n_per_class=30, seed=7)
        assert acc >= 90.0, acc

    def test_segments_a_scene_better_than_chance(self):
        from ovss import Segmenter
        from ovss.world import make_scene
        from ovss.tinyclip.quality import class_list

        scene = make_scene(123_456, size=224)
        out = Segmenter(load_model(pretrained="shapesworld"), preset="shapesworld").predict(scene.image, class_list())
        keep = scene.labels != 255
        accuracy = (out.labels.numpy()[keep] == scene.labels[keep]).mean()
        assert accuracy > 0.5, accuracy  # 19 classes: chance is about 0.05


class TestShapesWorld2Weights:
    """The embedded `shapesworld2` tag (trained from scratch on ShapesWorld 2; the default)."""

    def test_loads_as_an_embedded_tag_beside_the_default(self):
        from ovss.model import is_embedded

        m = load_model(pretrained="shapesworld2")
        assert (m.name, m.pretrained) == ("ovss-tiny", "shapesworld2") and is_embedded(m)
        assert DEFAULT_MODEL == ("ovss-tiny", "shapesworld2")  # the default

    def test_zero_shot_on_the_default_benchmark_things(self):
        from ovss.tinyclip.quality2 import zero_shot_accuracy2

        # 20 things x 10 fresh single-thing images; measured 96.0 / 97.0 / 95.5 % with seeds
        # 1 / 7 / 11 (chance: 5 %; the first shapesworld2 weights, fine-tuned from
        # shapesworld-levels: 81.5 / 86.5 / 81.0 %)
        acc = zero_shot_accuracy2(load_model(pretrained="shapesworld2"), n_per_class=10, seed=7)
        assert acc >= 90.0, acc

    def test_naclip_segments_the_default_benchmark(self):
        from ovss.tinyclip.quality2 import dense_miou2

        # naclip on 60 validation scenes of seed 7 (not the seed-1 scenes the model card reports),
        # sw2-20's classes queried: measured 54.12 (seeds 11 / 13: 64.12 / 76.57; the first
        # shapesworld2 weights: 49.86 / 45.42 / 50.73; shapesworld-levels: 0.0). 6 of the 20
        # classes never occur in these scenes, so a head that hallucinates them loses their share
        # of the mean; a head or weights that lose the text-aligned value path fall far below.
        miou = dense_miou2(load_model(pretrained="shapesworld2"), n=60, seed=7)["mIoU"]
        assert miou >= 50.0, miou
