"""Scene reading, projection, visibility and top-k views on a hand-built scene: one cube, known cameras.

The cube has side 1 and centre (0, 0, 3). Camera 0 sits at the origin looking down +z; camera 1
looks away (-z); camera 2 sits at (0, 0, 6) looking back at the cube (-z). Every depth frame reads
2.5 m everywhere, so camera 0 sees the front face (z = 2.5) and camera 2 the back face (z = 3.5,
2.5 m from it); the side faces are 3 m away from both, beyond the 0.2 m threshold.
With f = 20 and the principal point at (10, 10), a point at (x, y, 2.5) projects to (8x + 10, 8y + 10).
"""
import numpy as np
import pytest

from ovss.errors import OvssError
from ovss.ply import read_ply, write_ply
from ovss.scene3d.projection import (
    compute_visibility, expand_box, mask_box, project, scaled_intrinsic, top_k_views, view_box, visible_points,
)
from ovss.scene3d.scene import layout_problems, masks_from_ids, read_masks, read_scene
from ovss.world.layout3d import write_frame, write_scene_layout

K = np.array([[20.0, 0, 10], [0, 20.0, 10], [0, 0, 1]])
FRONT = [(0, 0, 2.5), (0.5, 0.5, 2.5), (-0.5, 0.5, 2.5), (0.5, -0.5, 2.5), (-0.5, -0.5, 2.5)]
BACK = [(0, 0, 3.5), (0.5, 0.5, 3.5), (-0.5, 0.5, 3.5), (0.5, -0.5, 3.5), (-0.5, -0.5, 3.5)]
SIDE = [(0.5, 0, 3.0), (-0.5, 0, 3.0)]
POINTS = np.array(FRONT + BACK + SIDE, dtype=np.float32)
IDS = np.array([1] * 5 + [2] * 5 + [3] * 2)  # front, back, sides
FACING = np.eye(4)
AWAY = np.diag([-1.0, 1.0, -1.0, 1.0])  # rotated 180 degrees about y, at the origin
BEHIND = np.diag([-1.0, 1.0, -1.0, 1.0])
BEHIND[2, 3] = 6.0


def cube_scene(root, depth_size=(20, 20)):
    colors = np.zeros((len(POINTS), 3), dtype=np.uint8)
    write_scene_layout(root, POINTS, colors, K, {"depth_scale": 1000.0})
    (root / "intrinsic" / "intrinsic_depth.txt").unlink()  # the depth camera: the colour one, scaled
    for i, pose in enumerate((FACING, AWAY, BEHIND)):
        write_frame(root, i, np.full((20, 20, 3), 128, np.uint8), np.full(depth_size, 2.5), pose)
    return root


def test_project_front_face_by_hand():
    uv, z = project(POINTS[:5], FACING, K)
    assert np.allclose(uv, [[10, 10], [14, 14], [6, 14], [14, 6], [6, 6]])
    assert np.allclose(z, 2.5)
    uv, z = project(POINTS[:1], AWAY, K)  # behind the camera
    assert np.isnan(uv).all() and z[0] == pytest.approx(-2.5)
    uv, z = project(np.array([[0.5, 0.5, 3.5]]), BEHIND, K)  # x flips for the camera looking back
    assert np.allclose(uv, [[6, 14]]) and z[0] == pytest.approx(2.5)


def test_scaled_intrinsic_keeps_pixel_centres():
    k = scaled_intrinsic(K, (20, 20), (10, 10))
    assert k[0, 0] == 10 and k[1, 1] == 10
    assert k[0, 2] == pytest.approx(4.75)  # centre of pixel 10 of 20 -> 4.75 of 10


def test_reader_and_visibility_of_the_cube(tmp_path):
    scene = read_scene(cube_scene(tmp_path / "cube"))
    assert scene.frame_ids == [0, 1, 2] and len(scene.points) == 12
    assert scene.depth(0)[3, 3] == pytest.approx(2.5)
    assert np.allclose(scene.intrinsic_color, K) and scene.intrinsic_depth is None
    masks, ids = masks_from_ids(IDS)
    assert ids == [1, 2, 3] and masks.sum(axis=0).tolist() == [5, 5, 2]
    vis = compute_visibility(scene, masks)
    assert vis.points[0].tolist() == [0, 1, 2, 3, 4]
    assert vis.pixels[0].tolist() == [[10, 10], [14, 14], [6, 14], [14, 6], [6, 6]]
    assert vis.points[1].tolist() == []
    assert vis.points[2].tolist() == [5, 6, 7, 8, 9]
    assert vis.counts.tolist() == [[5, 0, 0], [0, 0, 0], [0, 5, 0]]
    assert top_k_views(vis.counts, k=5) == [[0], [2], []]
    assert view_box(vis, masks, 0, 0) == (6, 6, 15, 15)
    assert view_box(vis, masks, 0, 1) is None
    assert vis.nbytes() < 1000  # sparse: no views x masks x H x W array


def test_threshold_decides_visibility():
    depth = np.full((20, 20), 2.5)
    index, _ = visible_points(POINTS, FACING, K, (20, 20), depth, threshold=0.6)
    assert index.tolist() == [0, 1, 2, 3, 4, 10, 11]  # the side centres are 0.5 m behind the front face
    depth[10, 10] = 0.0  # no sensor reading: not visible
    index, _ = visible_points(POINTS, FACING, K, (20, 20), depth)
    assert index.tolist() == [1, 2, 3, 4]


def test_depth_at_another_resolution(tmp_path):
    scene = read_scene(cube_scene(tmp_path / "cube", depth_size=(10, 10)))
    masks, _ = masks_from_ids(IDS)
    vis = compute_visibility(scene, masks)
    assert vis.counts[:, 0].tolist() == [5, 0, 0]
    assert vis.pixels[0].tolist() == [[10, 10], [14, 14], [6, 14], [14, 6], [6, 6]]  # colour pixels


def test_top_k_order_ties_and_limit():
    counts = np.array([[3, 0], [7, 1], [7, 0], [1, 0], [5, 0], [2, 0], [9, 0]])
    assert top_k_views(counts, k=5) == [[6, 1, 2, 4, 0], [1]]
    assert top_k_views(counts, k=2) == [[6, 1], [1]]


def test_boxes_and_multi_level_expansion():
    assert mask_box(np.array([[10, 20], [59, 39], [30, 25]])) == (10, 20, 60, 40)
    box = (10, 20, 60, 40)
    assert expand_box(box, 0, 0.1, (50, 100)) == box
    assert expand_box(box, 1, 0.1, (50, 100)) == (5, 18, 65, 42)
    assert expand_box(box, 2, 0.1, (50, 100)) == (0, 16, 70, 44)
    assert expand_box(box, 2, 0.1, (42, 66)) == (0, 16, 66, 42)  # clipped to the frame


def test_masks_files(tmp_path):
    np.save(tmp_path / "ids.npy", IDS)
    masks, ids = read_masks(tmp_path / "ids.npy", 12)
    assert ids == [1, 2, 3] and masks[:, 2].tolist() == [False] * 10 + [True] * 2
    (tmp_path / "ids.txt").write_text("\n".join(str(i) for i in IDS))
    assert read_masks(tmp_path / "ids.txt", 12)[0].tolist() == masks.tolist()
    np.save(tmp_path / "masks.npy", masks.T)  # M x N is turned around
    assert read_masks(tmp_path / "masks.npy", 12)[0].tolist() == masks.tolist()
    with pytest.raises(OvssError, match="scene has 13 points"):
        read_masks(tmp_path / "masks.npy", 13)
    with pytest.raises(OvssError, match="not found"):
        read_masks(tmp_path / "none.npy", 12)


def test_layout_problems_name_the_fix(tmp_path):
    root = cube_scene(tmp_path / "cube")
    assert layout_problems(root) == []
    (root / "depth" / "2.png").unlink()
    problems = layout_problems(root)
    assert problems == ["1 pose(s) have no depth frame (first: depth/2.png)"]
    with pytest.raises(OvssError, match="no depth frame"):
        read_scene(root)
    assert "scene.ply is missing" in layout_problems(tmp_path)[0]


def test_ply_round_trip_and_ascii(tmp_path):
    xyz = np.array([[0, 1, 2], [3.5, -4, 5]], dtype=np.float32)
    rgb = np.array([[1, 2, 3], [250, 251, 252]], dtype=np.uint8)
    write_ply(tmp_path / "a.ply", xyz, rgb)
    got_xyz, got_rgb = read_ply(tmp_path / "a.ply")
    assert got_xyz.tolist() == xyz.tolist() and got_rgb.tolist() == rgb.tolist()
    (tmp_path / "b.ply").write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                                    "property float z\nelement face 0\nproperty list uchar int vertex_indices\n"
                                    "end_header\n0 1 2\n3.5 -4 5\n")
    got_xyz, got_rgb = read_ply(tmp_path / "b.ply")
    assert got_xyz.tolist() == xyz.tolist() and got_rgb is None
    (tmp_path / "c.ply").write_bytes((tmp_path / "a.ply").read_bytes()[:-5])
    with pytest.raises(OvssError, match="truncated"):
        read_ply(tmp_path / "c.ply")


def test_a_ply_header_announcing_more_vertices_than_the_file_holds_is_one_line(tmp_path):
    # issue 22: a header announcing 10^12 vertices ended in a MemoryError traceback
    for fmt, body in (("binary_little_endian", b"\x00" * 24), ("ascii", b"0 1 2\n3 4 5\n")):
        path = tmp_path / f"{fmt}.ply"
        path.write_bytes(f"ply\nformat {fmt} 1.0\nelement vertex 1000000000000\nproperty float x\nproperty float y\n"
                         "property float z\nend_header\n".encode() + body)
        with pytest.raises(OvssError) as e:
            read_ply(path)
        assert str(e.value) == (f"{path}: the header announces 1000000000000 vertices, the file has room for at most 2: "
                                "it is truncated or its header is wrong")


def test_world_sizes_beyond_the_largest_side_are_one_line(tmp_path, capsys):
    # issue 22: world make --size 99999999 ended in a MemoryError traceback
    from ovss.cli import main
    from ovss.world import write_dataset
    from ovss.world.rooms import write_rooms

    assert main(["world", "make", "--out", str(tmp_path / "w"), "--n", "1", "--size", "99999999"]) == 2
    assert capsys.readouterr().err.strip() == ("ovss: error: --size 99999999 is too large; ShapesWorld draws at most "
                                               "8192 pixels a side")
    assert main(["world", "make3d", "--out", str(tmp_path / "r"), "--n", "1", "--size", "16x99999"]) == 2
    assert "--size 16x99999 is too large" in capsys.readouterr().err
    with pytest.raises(OvssError, match=r"^image size 99999x99999 is too large; ShapesWorld draws at most 8192"):
        write_dataset(tmp_path / "w2", n=1, size=99999, progress=False)
    with pytest.raises(OvssError, match=r"^image size 16x99999 is too large") as e:
        write_rooms(tmp_path / "r2", 1, frame_size=(16, 99999))
    assert e.value.param == "frame_size"
    assert not (tmp_path / "w").exists() and not (tmp_path / "w2").exists()


@pytest.mark.parametrize("matrix, message", [
    (np.zeros((3, 3)), "not a camera matrix: the focal lengths fx (row 1, column 1) and fy (row 2, column 2) "
                       "must be above 0, got 0 and 0; write the camera's intrinsic matrix"),
    (np.zeros((4, 4)), "must be above 0, got 0 and 0"),
    (np.array([[20.0, 0, 10], [0, 20.0, 10], [0, 0, 0]]), "not a camera matrix: its third row must be 0 0 1, got 0 0 0"),
    (np.array([[np.nan, 0, 10], [0, 20.0, 10], [0, 0, 1]]), "the camera matrix has NaN or infinite entries"),
])
def test_a_camera_matrix_that_cannot_project_is_refused(tmp_path, matrix, message):
    # issue 22: an all-zero camera matrix was accepted
    root = cube_scene(tmp_path / "scene")
    path = root / "intrinsic" / "intrinsic_color.txt"
    np.savetxt(path, matrix)
    with pytest.raises(OvssError) as e:
        read_scene(root)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)
