"""ImageSession: the page's engine, tested without gradio or a browser."""
import json

import numpy as np
import pytest
from PIL import Image

from ovss.app import ImageSession, RunSettings, check_image_file, parse_class_text
from ovss.errors import OvssError
from ovss.segment import Segmenter

CLASSES = "sky, snow, pine tree, rock"  # the classes drawn in ShapesWorld 2 scene 7
SW = RunSettings(preset="shapesworld")  # keeps the image size: small images stay fast


@pytest.fixture(scope="module")
def embedded():
    from ovss.model import load_model

    return load_model()


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    from ovss.app.examples import write_examples

    path, classes = write_examples(tmp_path_factory.mktemp("ex"), seeds=(7,))[0]
    assert classes == CLASSES  # the classes drawn in ShapesWorld 2 scene 7
    return path


def _small_image(seed=0, size=(40, 56)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (*size, 3), dtype=np.uint8)


class TestClassText:
    def test_one_line_is_classes_several_lines_are_synonyms(self):
        assert parse_class_text("sky, grass ,boat").synonyms == (("sky",), ("grass",), ("boat",))
        assert parse_class_text("sofa, couch\n\ncat\n").synonyms == (("sofa", "couch"), ("cat",))

    @pytest.mark.parametrize("text,msg", [("", "no classes given"), (" , ", "is empty"), ("cat, cat", "appears twice")])
    def test_mistakes_are_messages(self, text, msg):
        with pytest.raises(OvssError, match=msg):
            parse_class_text(text)


class TestImageChecks:
    def test_large_image_is_refused_from_its_header(self, tmp_path):
        path = tmp_path / "big.png"
        Image.new("RGB", (300, 200)).save(path)
        assert check_image_file(path, max_pixels=60_000) == (300, 200)
        with pytest.raises(OvssError, match=r"300 x 200 = 0.1 megapixels; the page takes up to 0.1"):
            check_image_file(path, max_pixels=59_999)

    def test_not_an_image(self, tmp_path):
        (tmp_path / "notes.png").write_text("hello")
        with pytest.raises(OvssError, match="cannot read notes.png as an image"):
            check_image_file(tmp_path / "notes.png")


class TestEncodeOnce:
    def test_changing_classes_and_thresholds_decodes_the_cached_features(self, tiny_random, tmp_path):
        session = ImageSession(tiny_random, tmp_path, max_pixels=10_000)
        image = _small_image()
        session.set_image(image, "noise.png")
        first = session.run("red, green, blue", RunSettings(preset="shapesworld"))
        assert first.encoded and session.encodes == 1
        second = session.run("red, green, blue, gray", RunSettings(preset="shapesworld", prob_thd=0.3, logit_scale=20.0, pamr=True))
        record = json.loads(second.files.record.read_text())  # every setting that changed a number is recorded
        assert record["settings"]["prob_thd"] == 0.3 and record["settings"]["logit_scale"] == 20.0
        assert record["settings"]["pamr"] is True and record["image"] == "noise.png"
        third = session.run("red, green", RunSettings(preset="shapesworld"))
        assert not second.encoded and not third.encoded and session.encodes == 1
        # a decode of cached features equals a fresh segmenter run with the same settings
        fresh = Segmenter(tiny_random, preset="shapesworld", prob_thd=0.3, logit_scale=20.0, pamr=True).predict(image, "red, green, blue, gray")
        assert np.array_equal(second.labels, fresh.labels.numpy().astype(np.uint8))
        assert second.shares == fresh.shares()
        # the head changes the features: encode again
        fourth = session.run("red, green", RunSettings(preset="shapesworld", head="clip"))
        assert fourth.encoded and session.encodes == 2

    def test_a_new_image_is_encoded_the_same_file_is_not(self, tiny_random, tmp_path):
        path = tmp_path / "a.png"
        Image.fromarray(_small_image(1)).save(path)
        session = ImageSession(tiny_random, tmp_path / "out")
        session.load_image(path)
        session.run("a, b", SW)
        session.load_image(path)  # the page sends the same upload with every click
        session.run("a, b, c", SW)
        assert session.encodes == 1
        session.set_image(_small_image(2), "other.png")
        session.run("a, b", SW)
        assert session.encodes == 2

    def test_bad_settings_are_messages(self, tiny_random, tmp_path):
        session = ImageSession(tiny_random, tmp_path)
        with pytest.raises(OvssError, match="no image yet"):
            session.run("a, b")
        session.set_image(_small_image())
        with pytest.raises(OvssError, match="probability threshold must be between 0 and 1"):
            session.run("a, b", RunSettings(prob_thd=1.5))
        with pytest.raises(OvssError, match="TTA does not work with open-world"):
            session.run("a", RunSettings(open_world=True, tta="tent"))
        with pytest.raises(OvssError, match="unknown head 'nohead'"):
            session.run("a, b", RunSettings(head="nohead"))
        with pytest.raises(OvssError, match="megapixels"):
            ImageSession(tiny_random, tmp_path, max_pixels=100).set_image(_small_image())


class TestSameFilesAsTheCommand:
    def test_page_files_equal_ovss_segment_files(self, embedded, scene_file, tmp_path):
        from ovss.cli import main

        session = ImageSession(embedded, tmp_path / "page")
        session.load_image(scene_file)
        run = session.run(CLASSES)
        assert main(["segment", str(scene_file), "--classes", CLASSES, "--out", str(tmp_path / "cli")]) == 0
        cli = tmp_path / "cli"
        for page_file, cli_file in ((run.files.labels, "shapesworld2_7.png"), (run.files.overlay, "shapesworld2_7_overlay.png")):
            with Image.open(page_file) as a, Image.open(cli / cli_file) as b:  # the same pixels; each names its job
                assert np.array_equal(np.asarray(a), np.asarray(b)) and a.mode == b.mode
                assert (a.text["ovss-job"], b.text["ovss-job"]) == ("app", "segment")
        page_json, cli_json = json.loads(run.files.record.read_text()), json.loads((cli / "shapesworld2_7.json").read_text())
        assert page_json.pop("image") == "shapesworld2_7.png" and cli_json.pop("image") == str(scene_file)
        assert page_json.pop("ovss_job")["kind"] == "app" and cli_json.pop("ovss_job")["kind"] == "segment"
        assert page_json == cli_json
        assert list(run.shares) == CLASSES.split(", ") and abs(sum(run.shares.values()) - 1) < 1e-9
        # the scene's sky is the top rows: the read-out names it with its probability
        y, x = np.argwhere(run.labels == 0)[0]
        p = float(run.result.probs[0, y, x])
        assert run.inspect(int(x), int(y)) == f"pixel ({x}, {y}): sky, probability {p:.3f}"
        assert "outside the image" in run.inspect(224, 0)

    def test_open_world_leaves_other_pixels_unlabelled(self, embedded, scene_file, tmp_path):
        from ovss.cli import main

        session = ImageSession(embedded, tmp_path / "page")
        session.load_image(scene_file)
        session.run(CLASSES)
        run = session.run("sun", RunSettings(open_world=True, concepts="background"))
        assert not run.encoded and run.concepts == ["background"]
        assert set(np.unique(run.labels)) <= {0, 255} and list(run.shares) == ["sun", "(unlabelled)"]
        assert abs(sum(run.shares.values()) - 1) < 1e-9
        y, x = np.argwhere(run.labels == 255)[0]
        assert run.inspect(int(x), int(y)).startswith(f"pixel ({x}, {y}): (unlabelled); won by 'background'")
        assert main(["segment", str(scene_file), "--classes", "sun", "--open-world", "--concepts", "background",
                     "--out", str(tmp_path / "cli")]) == 0
        cli = json.loads((tmp_path / "cli" / "shapesworld2_7.json").read_text())
        assert cli["pixel_share"] == run.shares
        assert cli["open_world"] == json.loads(run.files.record.read_text())["open_world"]

    def test_tta_reports_its_time_and_the_next_plain_run_encodes_again(self, tiny_random, tmp_path):
        session = ImageSession(tiny_random, tmp_path)
        session.set_image(_small_image(size=(32, 32)))
        session.run("a, b", RunSettings(preset="shapesworld"))  # no resizing: a 32 px image stays small
        run = session.run("a, b", RunSettings(preset="shapesworld", tta="tent"))
        assert run.tta == "TENT" and run.result is None and set(run.seconds) == {"adapt + segment"}
        assert run.message().startswith("adapted the model on this image with TENT, then segmented: adapt + segment ")
        assert json.loads(run.files.record.read_text())["tta"]["method"] == "tent"
        assert "no score" in run.inspect(0, 0)
        assert session.run("a, b", RunSettings(preset="shapesworld")).encoded and session.encodes == 2


def test_opendas_prompts_from_the_command_line_are_used_and_recorded(tiny_random, tmp_path):
    import torch

    from ovss.opendas import PromptLearner, save_prompts
    from ovss.text import parse_classes

    learner = PromptLearner(tiny_random, seed=1)
    with torch.no_grad():
        learner.text[1].add_(0.5)  # away from CLIP's own text, so prompted embeddings are recognisable
    path = save_prompts(tmp_path / "prompts.safetensors", learner, {"method": "opendas"})
    session = ImageSession(tiny_random, tmp_path / "out", prompts=str(path))
    session.set_image(_small_image(size=(32, 32)))
    run = session.run("sky, boat", SW)
    settings = json.loads(run.files.record.read_text())["settings"]
    assert settings["prompts"]["method"] == "opendas" and settings["prompts"]["file"] == str(path)
    with torch.no_grad():
        torch.testing.assert_close(session.segmenter(None, "shapesworld").class_embeddings(parse_classes("sky, boat")),
                                   learner.encode_names(["sky", "boat"]))


def test_the_page_says_only_the_first_frame_of_an_animation_is_segmented(tiny_random, tmp_path):
    frames = [Image.fromarray(_small_image(s, size=(20, 24))) for s in range(3)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    session = ImageSession(tiny_random, tmp_path / "out")
    session.load_image(path, "holiday.gif")
    run = session.run("a, b", SW)
    assert run.message().endswith("; note: holiday.gif holds 3 frames (an animation or a multi-page file); "
                                  "only the first is segmented")
    assert json.loads(run.files.record.read_text())["frames"] == {"in_file": 3, "segmented": "first"}


def test_set_image_takes_the_input_contract(tiny_random, tmp_path):
    import torch

    session = ImageSession(tiny_random, tmp_path)
    image = _small_image(size=(20, 24))
    session.set_image(torch.from_numpy(image).permute(2, 0, 1), "t.png")
    assert session.image.shape == (20, 24, 3) and np.array_equal(session.image, image)
    session.set_image(image.astype(np.float32) / 255)
    assert session.image.dtype == np.uint8 and np.array_equal(session.image, image)
    with pytest.raises(OvssError, match="image is a bool array"):
        session.set_image(image > 0)
