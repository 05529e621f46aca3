"""The bad-input matrix (README "Bad input"): one row per kind of bad message, each sent to a running node on real
KITTI frames. Every row: no exception, the bad frame gives no output and is counted under its reason (or processed
correctly where the input is legal but unusual), and the next valid frame is processed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from seg_perception.ros import convert
from seg_perception.ros.segmentation_node import SegmentationNode

Triple = tuple[Image | None, Image | None, CameraInfo | None]
T0 = 1_317_000_000_000_000_000
STRIDE = 4  # cloud_stride of the node: cloud row i is image row STRIDE * i


@pytest.fixture
def seg(ros, model_dir):  # noqa: ANN001, ANN201
    node = ros.add(SegmentationNode(namespace=ros.ns, context=ros.context, parameter_overrides=[
        Parameter("weights", value=str(model_dir)), Parameter("device", value="cpu"),
        Parameter("input_width", value=320), Parameter("input_height", value=96),
        Parameter("cloud_stride", value=STRIDE),
        Parameter("max_image_pixels", value=4_000_000),
    ]))  # fmt: skip
    pubs = {"image": ros.publisher(Image, "image"), "depth": ros.publisher(Image, "depth"),
            "camera_info": ros.publisher(CameraInfo, "camera_info")}  # fmt: skip
    clouds = ros.subscribe(PointCloud2, "semantic_points")
    ros.wait_for_subscribers(list(pubs.values()))
    ros.spin_until(lambda: ros.helper.count_subscribers(f"{ros.ns}/semantic_points") > 0, 5.0)
    return node, pubs, clouds


def _frame(f, stamp_ns: int) -> Triple:  # noqa: ANN001
    """A real KITTI frame (colour, 16UC1 depth, camera_info) restamped."""
    img, depth, info = f.image(), f.depth(), f.camera_info()
    for m in (img, depth, info):
        m.header.stamp = convert.ns_to_stamp(stamp_ns)
    return img, depth, info


def _send(pubs: dict, triple: Triple) -> None:
    img, depth, info = triple
    for key, msg in (("camera_info", info), ("depth", depth), ("image", img)):
        if msg is not None:
            pubs[key].publish(msg)


def _image(msg: Image, **changes: object) -> Image:
    for k, v in changes.items():
        setattr(msg, k, v)
    return msg


def _sized(stamp: Triple, h: int, w: int) -> Triple:
    """Colour, depth and camera_info of an h x w frame (mid-grey, 5 m everywhere)."""
    img, depth, info = stamp
    hdr = img.header
    big = convert.array_to_image(np.full((h, w, 3), 128, np.uint8), "rgb8", hdr)
    d = convert.array_to_image(np.full((h, w), 5000, np.uint16), "16UC1", hdr)
    info.width, info.height = w, h
    return big, d, info


def _float_depth(t: Triple, value: float) -> Triple:
    img, depth, info = t
    d = convert.image_to_array(depth).astype(np.float32) / 1000.0
    d[: d.shape[0] // 2] = value
    return img, convert.array_to_image(d, "32FC1", depth.header), info


def _bigendian_depth(t: Triple) -> Triple:
    img, depth, info = t
    d = convert.image_to_array(depth)
    msg = convert.array_to_image(d, "16UC1", depth.header)
    msg.is_bigendian = 1
    msg.data = d.astype(">u2").tobytes()  # the same millimetres, most significant byte first
    return img, msg, info


def _k(t: Triple, **k: float) -> Triple:
    img, depth, info = t
    kk = list(info.k)
    for key, v in k.items():
        kk[{"fx": 0, "fy": 4}[key]] = v
    info.k = kk
    return img, depth, info


# row id -> (make the bad input from a restamped good triple, reason counted (drops or rejected; "a|b": either) or
# None when the input is legal and must be processed)
ROWS: dict[str, tuple[Callable[[Triple], Triple], str | None]] = {
    "encoding_yuv422": (lambda t: (_image(t[0], encoding="yuv422"), t[1], t[2]), "encoding"),
    "mono16_colour": (lambda t: (_image(t[0], encoding="mono16"), t[1], t[2]), "encoding"),
    "step_too_small": (lambda t: (_image(t[0], step=t[0].step - 3), t[1], t[2]), "step"),
    "data_short": (lambda t: (_image(t[0], data=bytes(t[0].data)[:-10]), t[1], t[2]), "data_length"),
    "data_long": (lambda t: (_image(t[0], data=bytes(t[0].data) + b"\0" * 10), t[1], t[2]), "data_length"),
    "image_0x0": (lambda t: (_image(t[0], width=0, height=0, step=0, data=b""), t[1], t[2]), "empty"),
    "image_1x1": (lambda t: _sized(t, 1, 1), None),
    "image_over_max_image_pixels": (lambda t: _sized(t, 2000, 2500), "too_large"),  # 5 Mpx > 4 Mpx set above
    "depth_size_differs": (lambda t: (t[0], convert.array_to_image(np.zeros((10, 10), np.uint16), "16UC1",
                                                                   t[1].header), t[2]), "size_mismatch"),
    "depth_32fc1_nan": (lambda t: _float_depth(t, float("nan")), None),
    "depth_32fc1_inf": (lambda t: _float_depth(t, float("inf")), None),
    "depth_32fc1_negative": (lambda t: _float_depth(t, -2.0), None),
    "depth_16uc1_bigendian": (_bigendian_depth, None),
    "depth_all_invalid": (lambda t: (t[0], _image(t[1], data=bytes(len(t[1].data))), t[2]), None),
    "camera_info_zero_focal": (lambda t: _k(t, fx=0.0), "camera_info_focal"),
    "camera_info_negative_focal": (lambda t: _k(t, fy=-700.0), "camera_info_focal"),
    "camera_info_nan_focal": (lambda t: _k(t, fx=float("nan")), "camera_info_k"),
    "camera_info_zero_size": (lambda t: (t[0], t[1], _image(t[2], width=0, height=0)), "camera_info_size"),
    "camera_info_size_differs": (lambda t: (t[0], t[1], _image(t[2], width=640)), "camera_info_size"),
    # the waiting pair goes when another stamp's camera_info comes, or when that stamp's pair is complete first
    "colour_without_camera_info": (lambda t: (t[0], t[1], None), "no_camera_info|superseded"),
    "empty_frame_id": (lambda t: (_image(t[0], header=_with_frame(t[0], "")), t[1], t[2]), "frame_id"),
}


def _with_frame(msg: Image, frame_id: str):  # noqa: ANN202
    h = msg.header
    h.frame_id = frame_id
    return h


def _xyz(msg: PointCloud2) -> np.ndarray:
    """(H, W, 3) float32 x, y, z of an organized cloud."""
    cloud = convert.msg_to_cloud(msg, ["x", "y", "z"])
    return np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=-1).astype(np.float32)


def _check_legal_cloud(row: str, xyz: np.ndarray, reference: np.ndarray, depth_height: int) -> None:
    """The cloud of a legal-but-unusual row against the cloud of the unmodified KITTI frame (``reference``)."""
    if row == "image_1x1":  # one pixel at 5 m (``_sized``)
        assert xyz.shape == (1, 1, 3)
        assert xyz[0, 0, 2] == pytest.approx(5.0, abs=1e-3)
        return
    assert xyz.shape == reference.shape, row
    assert np.isfinite(reference).all(axis=-1).sum() > 500  # KITTI frame 0: 970 LiDAR pixels on the stride-4 grid
    if row == "depth_16uc1_bigendian":  # the same millimetres: exactly the same cloud
        np.testing.assert_array_equal(xyz, reference)
    elif row == "depth_all_invalid":
        assert np.isnan(xyz).all()
    else:  # 32FC1 with NaN / +Inf / negative depth in the upper half (``_float_depth``), metres elsewhere
        top = np.arange(xyz.shape[0]) * STRIDE < depth_height // 2
        # both halves have LiDAR depth in the unmodified frame, so both checks below see real points
        assert np.isfinite(reference[top]).any() and np.isfinite(reference[~top]).any()
        assert np.isnan(xyz[top]).all(), row
        # float32 mm / 1000 here against mm * 0.001 for 16UC1: equal to float32 rounding, NaN where the LiDAR has none
        np.testing.assert_allclose(xyz[~top], reference[~top], rtol=1e-6, atol=0, equal_nan=True, err_msg=row)


@pytest.mark.parametrize("row", list(ROWS))
def test_segmentation_node_row(ros, seg, kitti_frames, row: str) -> None:  # noqa: ANN001
    node, pubs, clouds = seg
    make_bad, reason = ROWS[row]
    stats = node.stats
    reference = None
    if reason is None:  # legal input: the cloud of the unmodified frame first, to compare with
        _send(pubs, _frame(kitti_frames[0], T0 - 100_000_000))
        assert ros.spin_until(lambda: clouds, 60.0), (row, stats.as_dict())
        reference = _xyz(clouds[-1])
    bad = make_bad(_frame(kitti_frames[0], T0))
    _send(pubs, bad)
    if reference is not None:  # legal input: processed, with the xyz the row's depth gives
        assert ros.spin_until(lambda: len(clouds) > 1, 60.0), (row, stats.as_dict())
        assert clouds[-1].header.stamp == bad[0].header.stamp
        _check_legal_cloud(row, _xyz(clouds[-1]), reference, bad[1].height)
    else:
        reasons = reason.split("|")
        counted = lambda: sum(stats.drops[r] + stats.rejected[r] for r in reasons) >= 1  # noqa: E731
        if "no_camera_info" in reasons:  # the pair waits for a camera_info with its stamp: another stamp's drops it
            assert ros.spin_until(lambda: stats.pending >= 1, 20.0), stats.as_dict()
            _send(pubs, _frame(kitti_frames[1], T0 + 100_000_000))
        assert ros.spin_until(counted, 20.0), (row, dict(stats.drops), dict(stats.rejected), stats.frames_out)
    n_before = len(clouds)
    good = _frame(kitti_frames[2], T0 + 200_000_000)
    _send(pubs, good)
    assert ros.spin_until(lambda: len(clouds) > n_before, 60.0), (row, stats.as_dict())
    assert clouds[-1].header.stamp == good[0].header.stamp
    assert node.worker.wait_idle(10.0)
    assert stats.frames_in == stats.frames_out + sum(stats.drops.values()) + stats.pending, stats.as_dict()
    assert stats.drops["exception"] == 0 and stats.rejected["exception"] == 0
