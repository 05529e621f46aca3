"""tools.bag_from_frames: 5-frame bags from the real KITTI and 7-Scenes folders, read back with rosbags."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from seg_perception import cli
from seg_perception.bag import read_topics
from seg_perception.core.geometry.transforms import quaternion_from_matrix
from seg_perception.datasets import open_sequence
from seg_perception.ros.convert import stamp_to_ns
from seg_perception.tools.bag_from_frames import MOUNTS

TS = get_typestore(Stores.ROS2_KILTED)
FRAME = "camera_color_optical_frame"


def _read(bag: Path) -> dict[str, list[tuple[int, Any]]]:
    out: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    with Reader(bag) as reader:
        for conn, t_ns, raw in reader.messages():
            out[conn.topic].append((t_ns, TS.deserialize_cdr(raw, conn.msgtype)))
            assert len(raw) % 4 == 0  # padded like DDS wire data
    return out


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("dataset", ["kitti", "kitchen"])
def test_bag_contents(dataset: str, storage: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue(f"{dataset}_dir")
    seq = open_sequence(folder)
    bag = tmp_path / "bag"
    rc = cli.main(["bag-from-frames", str(folder), "-o", str(bag), "--storage", storage, "--start", "2", "--limit", "5",
                               "--no-progress"])
    assert rc == 0
    assert len(list(bag.glob("*.mcap" if storage == "mcap" else "*.db3"))) == 1
    msgs = _read(bag)
    expected = {"/camera/color/image_raw", "/camera/depth/image_raw", "/camera/color/camera_info"}
    if dataset == "kitchen":
        expected.add("/tf")
    assert set(msgs) == expected | {"/tf_static"}
    (static_t, static_msg), = msgs.pop("/tf_static")  # the mount, once, latched, at the first frame's stamp
    assert static_t == seq[2].stamp_ns and read_topics(bag)["/tf_static"].transient_local
    _check_mount(static_msg, MOUNTS[seq.layout])
    assert all(len(v) == 5 for v in msgs.values())
    period_ns = 100_000_000 if dataset == "kitti" else 1e9 / 30
    k = seq.intrinsics
    for i in range(5):
        frame = seq[2 + i]
        stamps = {topic: stamp_to_ns((v[i][1] if topic != "/tf" else v[i][1].transforms[0]).header.stamp)
                  for topic, v in msgs.items()}  # fmt: skip
        assert set(stamps.values()) == {frame.stamp_ns}
        assert {v[i][0] for v in msgs.values()} == {frame.stamp_ns}  # bag time = header stamp
        if i:
            assert frame.stamp_ns - seq[1 + i].stamp_ns == pytest.approx(period_ns, abs=1)
        color = msgs["/camera/color/image_raw"][i][1]
        assert (color.encoding, color.height, color.width, color.step, color.is_bigendian) == (
            "rgb8", k.height, k.width, 3 * k.width, 0)
        assert color.header.frame_id == FRAME
        np.testing.assert_array_equal(color.data.reshape(k.height, k.width, 3), frame.rgb)
        depth = msgs["/camera/depth/image_raw"][i][1]
        assert (depth.encoding, depth.height, depth.width, depth.step, depth.is_bigendian) == (
            "16UC1", k.height, k.width, 2 * k.width, 0)
        assert depth.header.frame_id == FRAME
        np.testing.assert_array_equal(depth.data.view("<u2").reshape(k.height, k.width), frame.depth_mm)
        info = msgs["/camera/color/camera_info"][i][1]
        assert (info.height, info.width, info.distortion_model) == (k.height, k.width, "plumb_bob")
        np.testing.assert_array_equal(info.k, k.k())
        np.testing.assert_array_equal(info.d, np.zeros(5))
        np.testing.assert_array_equal(info.r, np.eye(3).ravel())
        np.testing.assert_array_equal(info.p, [k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1, 0])
        assert info.header.frame_id == FRAME
        if dataset == "kitchen":
            assert frame.pose is not None
            (odom,) = msgs["/tf"][i][1].transforms
            assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
            link, optical = static_msg.transforms
            t_odom_cam = _matrix(odom) @ _matrix(link) @ _matrix(optical)  # TF's chain, as tf2 composes it
            p = t_odom_cam[:3, 3]
            # odom is z-up on the floor: a hand-held Kinect 1.2-1.7 m above it, looking down (optical z has z < 0)
            assert 1.2 < p[2] < 1.7 and t_odom_cam[2, 2] < -0.2
            if i == 0:
                assert abs(p[0]) < 0.05 and abs(p[1]) < 0.05  # origin below the sequence's first camera (frame 0)
                first = (t_odom_cam, frame.pose)
            else:  # a rigid re-alignment: relative motion between frames is the dataset's
                rel_odom = np.linalg.inv(first[0]) @ t_odom_cam
                rel_world = np.linalg.inv(first[1]) @ frame.pose
                np.testing.assert_allclose(rel_odom, rel_world, atol=2e-3)  # pose files orthonormal to ~2e-4
    if dataset == "kitti":
        np.testing.assert_array_equal(msgs["/camera/color/camera_info"][0][1].k,
                                      [721.5377, 0, 609.5593, 0, 721.5377, 172.854, 0, 0, 1])
    else:
        np.testing.assert_array_equal(msgs["/camera/color/camera_info"][0][1].k, [585, 0, 320, 0, 585, 240, 0, 0, 1])


def _matrix(t: Any) -> np.ndarray:
    """(4, 4) of a rosbags TransformStamped, with a unit quaternion."""
    q = t.transform.rotation
    quat = np.array([q.x, q.y, q.z, q.w])
    assert np.linalg.norm(quat) == pytest.approx(1.0, abs=1e-12)
    out = np.eye(4)
    tr = t.transform.translation
    out[:3, :3], out[:3, 3] = _rotation(quat), [tr.x, tr.y, tr.z]
    return out


def _pitched_optical_axes(xyz: tuple, pitch: float) -> np.ndarray:
    """Known answer, by hand: where 1 m along optical x (image right), y (image down) and z (viewing axis) lands in
    base_link for a camera at ``xyz`` pitched ``pitch`` rad down (roll = yaw = 0; REP-103: x forward, y left, z up).
    The viewing axis is forward tipped down, (cos p, 0, -sin p); image right is base -y; image down is
    perpendicular to both, (-sin p, 0, -cos p). KITTI (p = 0, 1.65 m up): 1 m along the viewing axis is (1, 0, 1.65).
    Rows: the three points [m]."""
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array(xyz, float) + np.array([[0.0, -1.0, 0.0], [-s, 0.0, -c], [c, 0.0, -s]])


def _check_mount(msg: Any, mount: tuple) -> None:
    """base_link -> camera_link (the mount) -> optical frame (REP-103 rotation) puts the optical axes where
    ``_pitched_optical_axes`` says."""
    link, optical = msg.transforms
    assert (link.header.frame_id, link.child_frame_id) == ("base_link", "camera_link")
    assert (optical.header.frame_id, optical.child_frame_id) == ("camera_link", FRAME)
    np.testing.assert_allclose(_matrix(link)[:3, 3], mount[0])
    np.testing.assert_allclose(_matrix(optical)[:3, 3], 0.0)
    np.testing.assert_allclose(_matrix(optical)[:3, :3] @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # optical z = body x
    t_base_optical = _matrix(link) @ _matrix(optical)
    assert mount[1][0] == mount[1][2] == 0.0  # both datasets' mounts are pitched only
    np.testing.assert_allclose((t_base_optical @ np.c_[np.eye(3), np.ones(3)].T).T[:, :3],
                               _pitched_optical_axes(mount[0], mount[1][1]), atol=1e-12)  # fmt: skip


def test_mount_override_and_direct_optical_frame(tmp_path: Path, kitti_dir: Path) -> None:
    bag = tmp_path / "bag"
    assert cli.main(["bag-from-frames", str(kitti_dir), "-o", str(bag), "--limit", "1", "--no-progress", "--mount",
                     "0.5", "0", "1.2", "0", "0.2", "0", "--camera-link", ""]) == 0  # fmt: skip
    (msg,) = [m for _, m in _read(bag)["/tf_static"]]
    (t,) = msg.transforms
    assert (t.header.frame_id, t.child_frame_id) == ("base_link", FRAME)
    axes = (_matrix(t) @ np.c_[np.eye(3), np.ones(3)].T).T[:, :3]
    np.testing.assert_allclose(axes, _pitched_optical_axes((0.5, 0.0, 1.2), 0.2), atol=1e-12)


def _rotation(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@pytest.mark.parametrize(
    "rotation",
    [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])],
    ids=["identity", "pi-about-x", "pi-about-y", "pi-about-z"],
)
def test_quaternion_branches(rotation: np.ndarray) -> None:
    q = quaternion_from_matrix(rotation)
    assert np.linalg.norm(q) == pytest.approx(1.0)
    np.testing.assert_allclose(_rotation(q), rotation, atol=1e-12)


def test_quaternion_random_rotations() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        u, _, vt = np.linalg.svd(rng.normal(size=(3, 3)))
        r = u @ vt
        if np.linalg.det(r) < 0:
            r[:, 0] *= -1
        q = quaternion_from_matrix(r)
        assert q[3] >= 0
        np.testing.assert_allclose(_rotation(q), r, atol=1e-12)
    with pytest.raises(ValueError, match="reflection"):
        quaternion_from_matrix(np.diag([1.0, 1.0, -1.0]))


def test_errors(tmp_path: Path, kitti_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bag-from-frames", str(tmp_path), "-o", str(tmp_path / "bag")]) == 2
    assert "no known RGB-D layout" in capsys.readouterr().err
    (tmp_path / "exists").mkdir()
    assert cli.main(["bag-from-frames", str(kitti_dir), "-o", str(tmp_path / "exists")]) == 2
    assert "exists already" in capsys.readouterr().err
    assert cli.main(["bag-from-frames", str(kitti_dir), "-o", str(tmp_path / "b2"), "--start", "60"]) == 2
    assert "outside" in capsys.readouterr().err


def test_a_failed_write_leaves_no_bag(tmp_path: Path, kitti_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame that cannot be read half-way (here: the 3rd) leaves nothing at the output path, so the next run (the
    demo's, which refuses an existing bag) starts clean."""
    import seg_perception.tools.bag_from_frames as bff

    seq = open_sequence(kitti_dir)
    real_getitem = type(seq).__getitem__

    def third_frame_breaks(self, i: int):  # noqa: ANN001, ANN202
        if i == 2:
            raise OSError("depth_02/0000000002.png: truncated file")
        return real_getitem(self, i)

    monkeypatch.setattr(type(seq), "__getitem__", third_frame_breaks)
    with pytest.raises(OSError, match="truncated"):
        bff.write_bag(seq, tmp_path / "bag", limit=5, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    summary = bff.write_bag(open_sequence(kitti_dir), tmp_path / "bag", limit=3, progress=False)
    assert summary.frames == 3 and read_topics(tmp_path / "bag")["/camera/color/image_raw"].count == 3
