"""ShapesWorld-3D (and ShapesWorld 2's rooms, which share its geometry): hand-built rooms render the depths and ids geometry says; rooms are deterministic,
styles change only colours, and the written points carry the labels the frames show."""
import numpy as np
import pytest

from ovss.errors import OvssError
from ovss.scene3d.projection import compute_visibility
from ovss.scene3d.scene import read_masks, read_scene
from ovss.world.rooms import Primitive, Room, look_at, make_room, render_frame, sample_points, write_rooms
from ovss.world.sw2_rooms import make_room2


def hand_room():
    """A 10 m wall 2 m in front of a camera at (0, 0, 1) looking down +y, and a ball 2.5 m away."""
    k = np.array([[16.0, 0, 7.5], [0, 16.0, 7.5], [0, 0, 1]])
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 2] = 220
    wall = Primitive("plane", 1, "wall", red, np.array([-5.0, 2.0, -4.0]), np.array([[10.0, 0, 0], [0, 0, 10.0]]))
    ball = Primitive("sphere", 2, "ball", blue, np.array([0.0, 0.5, 1.0]), radius=0.5, alpha=np.ones((8, 8), bool))
    cam = look_at(np.array([0.0, -1.5, 1.0]), np.array([0.0, 0.0, 1.0]))
    return Room(0, "default", (10, 10, 3), [wall, ball], [{"id": 1, "class": "wall", "kind": "wall"},
                                                          {"id": 2, "class": "ball", "kind": "object"}],
                cam[None], k, (16, 16))


def test_look_at_is_an_opencv_camera():
    pose = look_at(np.array([0.0, 0, 1]), np.array([1.0, 0, 1]))
    assert np.allclose(pose[:3, 2], [1, 0, 0])  # z forward
    assert np.allclose(pose[:3, 0], [0, -1, 0])  # x right of a viewer looking down +x with z up
    assert np.allclose(pose[:3, 1], [0, 0, -1])  # y down


def test_hand_built_room_depths_and_ids():
    room = hand_room()
    color, depth, ids = render_frame(room, room.cameras[0])
    # the wall plane y = 2 is 3.5 m ahead of the camera at y = -1.5: the same depth in every pixel
    assert np.allclose(depth[ids == 1], 3.5)
    assert (color[ids == 1] == [200, 0, 0]).all()
    # the ball's nearest point is 2 m - 0.5 m ahead, at the centre of the image
    assert ids[7, 7] == 2 and ids[8, 8] == 2 and ids[0, 0] == 1
    assert depth[7:9, 7:9].min() == pytest.approx(1.5, abs=0.01)
    assert (color[ids == 2] == [0, 0, 220]).all()
    # f = 16 and 0.5 m radius at 2 m: about 4 pixels of radius, so 40..60 ball pixels
    assert 40 <= int((ids == 2).sum()) <= 60


@pytest.mark.parametrize("maker", [make_room, make_room2], ids=["shapesworld", "shapesworld2"])
def test_rooms_are_deterministic_and_styles_change_only_colours(maker):
    a, b = maker(11, objects=4, frames=3), maker(11, objects=4, frames=3)
    assert a.instances == b.instances and np.array_equal(a.cameras, b.cameras)
    ca, da, ia = render_frame(a, a.cameras[1])
    cb, db, ib = render_frame(b, b.cameras[1])
    assert np.array_equal(ca, cb) and np.array_equal(da, db) and np.array_equal(ia, ib)
    night = maker(11, objects=4, frames=3, style="night")
    cn, dn, i_n = render_frame(night, night.cameras[1])
    assert np.array_equal(dn, da) and np.array_equal(i_n, ia)
    assert cn.mean() < 0.6 * ca.mean()  # night is dark
    assert maker(12, objects=4, frames=3).instances != a.instances or not np.array_equal(
        maker(12, objects=4, frames=3).cameras, a.cameras)
    kinds = [i["kind"] for i in a.instances]
    assert kinds.count("wall") == 4 and kinds.count("object") == 4 and kinds.count("floor") in (1, 2)


def test_points_cover_every_instance():
    room = make_room(3, objects=5, frames=2)
    xyz, rgb, ids = sample_points(room, 4000)
    assert xyz.shape == (4000, 3) and rgb.shape == (4000, 3)
    counts = np.bincount(ids, minlength=len(room.instances) + 1)[1:]
    assert (counts >= 1).all()
    objects = [i["id"] for i in room.instances if i["kind"] == "object"]
    assert all(counts[i - 1] >= 150 for i in objects)
    sx, sy, height = room.size
    assert xyz[:, 0].min() >= -1e-4 and xyz[:, 0].max() <= sx + 1e-4 and xyz[:, 2].max() <= height + 1e-4


def test_written_points_agree_with_the_frames(tmp_path):
    out = write_rooms(tmp_path / "rooms", 1, split="val", seed=2, objects=4, frames=3, points=5000, progress=False)
    folder = next((out / "val").iterdir())
    scene = read_scene(folder)
    assert len(scene) == 3 and scene.depth_scale == 1000.0
    masks, ids = read_masks(folder / "instance_ids.npy", len(scene.points))
    point_ids = np.asarray(ids)[masks.argmax(axis=1)]
    room = make_room(scene.meta["seed"], 4, 3)
    vis = compute_visibility(scene, masks)
    agree = total = 0
    for f in range(3):
        _, _, frame_ids = render_frame(room, room.cameras[f])
        x, y = vis.pixels[f][:, 0], vis.pixels[f][:, 1]
        agree += int((frame_ids[y, x] == point_ids[vis.points[f]]).sum())
        total += len(x)
    assert total > 1000 and agree / total > 0.97  # only points on an edge may land on a neighbour's pixel
    assert [i["class"] for i in scene.meta["instances"]] == [i["class"] for i in room.instances]


def test_write_rooms_resumes_and_refuses_other_settings(tmp_path):
    out = write_rooms(tmp_path / "r", 2, split="train", objects=2, frames=2, points=1000, progress=False)
    names = (out / "train.txt").read_text().split()
    assert len(names) == 2 and all((out / "train" / n / "instances.json").is_file() for n in names)
    stamp = (out / "train" / names[0] / "scene.ply").stat().st_mtime_ns
    write_rooms(out, 2, split="train", objects=2, frames=2, points=1000, progress=False)
    assert (out / "train" / names[0] / "scene.ply").stat().st_mtime_ns == stamp  # finished rooms are kept
    write_rooms(out, 1, split="val", objects=2, frames=2, points=1000, progress=False)  # another split: kept apart
    assert (out / "val.txt").read_text().split() != names and (out / "train.txt").read_text().split() == names
    with pytest.raises(OvssError, match="other settings"):
        write_rooms(out, 2, split="train", objects=3, frames=2, points=1000, progress=False)
    (tmp_path / "mine" / "val").mkdir(parents=True)
    (tmp_path / "mine" / "val" / "x.txt").write_text("not ovss's")
    with pytest.raises(OvssError, match="did not write"):
        write_rooms(tmp_path / "mine", 1, progress=False)
