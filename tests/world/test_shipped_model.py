"""The embedded ovss-tiny model: it loads by default and knows ShapesWorld."""

from ovss.model import DEFAULT_MODEL, load_model
from ovss.tinyclip.quality import zero_shot_accuracy


class TestShippedModel:
    def test_default_model_is_embedded_tiny(self):
        m = load_model()
        assert (m.name, m.pretrained) == DEFAULT_MODEL
        assert "embedded" in m.info["weights"]

    def test_zero_shot_accuracy_on_fresh_images(self):
        # fresh single-object images (seed 7 is used nowhere else), 12 classes x 30 images;
        # measured 91.9 to 93.9 % over seeds 1, 7, 11 and 13 at this size
        acc = zero_shot_accuracy(load_model(), n_per_class=30, seed=7)
        assert acc >= 90.0, acc

    def test_segments_a_scene_better_than_chance(self):
        from ovss import Segmenter
        from ovss.world import make_scene
        from ovss.tinyclip.quality import class_list

        scene = make_scene(123_456, size=224)
        out = Segmenter(load_model(), preset="shapesworld").predict(scene.image, class_list())
        keep = scene.labels != 255
        accuracy = (out.labels.numpy()[keep] == scene.labels[keep]).mean()
        assert accuracy > 0.5, accuracy  # 19 classes: chance is about 0.05
