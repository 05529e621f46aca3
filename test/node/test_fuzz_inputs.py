"""Property-based fuzzing of every input handler with mutated real messages (hypothesis; no DDS traffic).

Each case mutates a real message (field values, types, sizes, encodings, steps, nesting) and runs it through the
handler the node itself uses. The property: the handler returns (a result, or a counted drop) or raises
``InputRejected`` (which the node's guard counts under its named reason); no other exception ever escapes.
``derandomize`` makes the cases the same on every run, so CI is reproducible.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header, String

from seg_perception.core.errors import InputRejected
from seg_perception.core.mapping.grid import CostmapConfig
from seg_perception.core.mapping.pipeline import ClassRules
from seg_perception.core.segmentation.class_info import parse_label_info
from seg_perception.datasets import open_sequence
from seg_perception.ros import convert
from seg_perception.ros.assembler import RGBDAssembler

FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True) | st.text(max_size=80),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _set(obj: object, path: tuple, value: object) -> object:
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]  # type: ignore[index]
    parent[path[-1]] = value  # type: ignore[index]
    return obj


def _label_info_case(base: dict, draw: st.DrawFn) -> str:
    d = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(d) if isinstance(d, dict | list) else [()]
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["value", "delete", "int", "string", "nest"]))
        if kind == "delete" and path and isinstance(d, dict | list):
            parent = d
            for k in path[:-1]:
                parent = parent[k]
            del parent[path[-1]]
        elif kind == "int":
            d = _set(d, path, draw(st.integers(-300, 300)))
        elif kind == "string":
            d = _set(d, path, draw(st.text(max_size=300)))
        elif kind == "nest":
            n = draw(st.integers(1, 50))
            d = _set(d, path, json.loads("[" * n + "1" + "]" * n))
        else:
            d = _set(d, path, draw(JSON_VALUES))
    text = json.dumps(d)
    if draw(st.booleans()):  # byte-level damage on top
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.text(max_size=5)) + text[i + draw(st.integers(0, 5)):]
    return text


def test_fuzz_label_info(real_cloud) -> None:  # noqa: ANN001
    base = json.loads(real_cloud[1])
    cfg = CostmapConfig()
    outcomes = {"ok": 0, "rejected": 0}

    @settings(FUZZ, max_examples=3000)
    @given(st.data())
    def case(data: st.DataObject) -> None:
        text = _label_info_case(base, data.draw)
        try:
            ClassRules.from_class_info(parse_label_info(text), cfg)
            outcomes["ok"] += 1
        except InputRejected as e:
            assert e.reason.startswith("label_info_")
            outcomes["rejected"] += 1

    case()
    assert outcomes["rejected"] > 1000 and outcomes["ok"] > 10, outcomes  # both branches really exercised


def _small_cloud(cloud_msg: PointCloud2) -> PointCloud2:
    cloud = convert.msg_to_cloud(cloud_msg)[::8, ::8]
    return convert.cloud_to_msg(np.ascontiguousarray(cloud), cloud_msg.header)


def _mutate_cloud(base: PointCloud2, draw: st.DrawFn) -> PointCloud2:
    fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in base.fields]
    data = bytearray(base.data)
    msg = PointCloud2(header=Header(stamp=base.header.stamp, frame_id=base.header.frame_id), height=base.height,
                      width=base.width, point_step=base.point_step, row_step=base.row_step, fields=fields,
                      is_bigendian=False, is_dense=False)  # fmt: skip
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["height", "width", "point_step", "row_step", "truncate", "extend", "field_offset",
                                     "field_datatype", "field_count", "drop_field", "rename_field", "bigendian",
                                     "frame_id", "values", "labels", "stamp"]))  # fmt: skip
        if what in ("height", "width", "point_step", "row_step"):
            setattr(msg, what, draw(st.integers(0, 2 * getattr(msg, what) + 8)))
        elif what == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif what == "extend":
            data += bytes(draw(st.integers(1, 64)))
        elif what.startswith("field_") and msg.fields:
            f = draw(st.sampled_from(msg.fields))
            if what == "field_offset":
                f.offset = draw(st.integers(0, 64))
            elif what == "field_datatype":
                f.datatype = draw(st.integers(0, 12))
            else:
                f.count = draw(st.integers(0, 4))
        elif what == "drop_field" and msg.fields:
            msg.fields = [f for f in msg.fields if f.name != draw(st.sampled_from([f.name for f in msg.fields]))]
        elif what == "rename_field" and msg.fields:
            draw(st.sampled_from(msg.fields)).name = draw(st.sampled_from(["x", "label", "confidence", "q", ""]))
        elif what == "bigendian":
            msg.is_bigendian = True
        elif what == "frame_id":
            msg.header.frame_id = draw(st.sampled_from(["", "base_link", "x" * 300]))
        elif what in ("values", "labels") and len(data) >= 4:
            value = draw(st.sampled_from([math.nan, math.inf, -math.inf, 1e30, -1e30, 0.0]))
            packed = np.array([value], "<f4").tobytes() if what == "values" else \
                np.array([draw(st.integers(0, 2**32 - 1))], "<u4").tobytes()  # fmt: skip
            for i in draw(st.lists(st.integers(0, len(data) // 4 - 1), max_size=50)):
                data[4 * i:4 * i + 4] = packed
        elif what == "stamp":
            msg.header.stamp = convert.ns_to_stamp(draw(st.integers(0, 2**62)))
    msg.data = bytes(data)
    return msg


def test_fuzz_semantic_cloud(ros, real_cloud, kitti_costmap) -> None:  # noqa: ANN001
    node = kitti_costmap(ros, [Parameter("resolution", value=0.2), Parameter("width", value=30.0),
                               Parameter("height", value=30.0)])  # fmt: skip
    node._on_label_info_json(String(data=real_cloud[1]))
    names = [c["name"] for c in json.loads(real_cloud[1])["classes"]]
    node._on_label_info(convert.label_info_msg(names, Header()))
    base = _small_cloud(real_cloud[0])

    @settings(FUZZ, max_examples=1500)
    @given(st.data())
    def case(data: st.DataObject) -> None:
        msg = _mutate_cloud(base, data.draw)
        before = node.stats.frames_out + sum(node.stats.drops.values())
        try:
            node._on_cloud(msg)
        except InputRejected:
            return
        assert node.stats.frames_out + sum(node.stats.drops.values()) == before + 1  # a result or a counted drop

    case()
    s = node.stats
    assert s.frames_out > 20 and sum(s.drops.values()) > 500, s.as_dict()
    assert "exception" not in s.drops, s.as_dict()


@pytest.fixture(scope="module")
def kitchen_messages(kitchen_dir):  # noqa: ANN001, ANN201
    """Real colour, depth and camera_info of a kitchen frame (every 4th pixel: 160x120, K scaled to match)."""
    seq = open_sequence(kitchen_dir)
    f = seq[0]
    rgb, depth = f.rgb[::4, ::4].copy(), f.depth_mm[::4, ::4].copy()
    k0 = seq.intrinsics
    header = Header(stamp=convert.ns_to_stamp(1_000_000_000), frame_id="camera_color_optical_frame")
    k = [k0.fx / 4, 0.0, k0.cx / 4, 0.0, k0.fy / 4, k0.cy / 4, 0.0, 0.0, 1.0]
    info = CameraInfo(header=header, width=rgb.shape[1], height=rgb.shape[0], k=k)
    return (convert.array_to_image(rgb, "rgb8", header), convert.array_to_image(depth, "16UC1", header), info)


def _mutate_image(base: Image, draw: st.DrawFn) -> Image:
    msg = Image(header=Header(stamp=base.header.stamp, frame_id=base.header.frame_id), height=base.height,
                width=base.width, encoding=base.encoding, is_bigendian=base.is_bigendian, step=base.step,
                data=bytes(base.data))  # fmt: skip
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["height", "width", "step", "encoding", "bigendian", "truncate", "extend",
                                     "frame_id", "stamp", "float_values"]))  # fmt: skip
        if what in ("height", "width", "step"):
            setattr(msg, what, draw(st.integers(0, 2 * getattr(msg, what) + 4)))
        elif what == "encoding":
            msg.encoding = draw(st.sampled_from(["yuv422", "mono16", "mono8", "32FC1", "16UC1", "rgb8", "bgra8",
                                                 "8UC3", "", "rgb16"]))  # fmt: skip
        elif what == "bigendian":
            msg.is_bigendian = 1
        elif what == "truncate":
            msg.data = bytes(msg.data)[: draw(st.integers(0, len(msg.data)))]
        elif what == "extend":
            msg.data = bytes(msg.data) + bytes(draw(st.integers(1, 100)))
        elif what == "frame_id":
            msg.header.frame_id = draw(st.sampled_from(["", "other_frame"]))
        elif what == "stamp":
            msg.header.stamp = convert.ns_to_stamp(draw(st.integers(0, 2**62)))
        elif len(msg.data) >= 4:
            value = np.array([draw(st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0]))], "<f4").tobytes()
            data = bytearray(msg.data)
            for i in draw(st.lists(st.integers(0, len(data) // 4 - 1), max_size=100)):
                data[4 * i:4 * i + 4] = value
            msg.data = bytes(data)
    return msg


def _mutate_info(base: CameraInfo, draw: st.DrawFn) -> CameraInfo:
    k = list(base.k)
    msg = CameraInfo(header=Header(stamp=base.header.stamp, frame_id=base.header.frame_id), width=base.width,
                     height=base.height, k=k)  # fmt: skip
    for _ in range(draw(st.integers(1, 2))):
        what = draw(st.sampled_from(["k", "width", "height", "stamp"]))
        if what == "k":
            k[draw(st.integers(0, 8))] = draw(st.sampled_from([0.0, -1.0, math.nan, math.inf, 1e-30, 1e30]))
            msg.k = k
        elif what in ("width", "height"):
            setattr(msg, what, draw(st.integers(0, 2 * getattr(msg, what))))
        else:
            msg.header.stamp = convert.ns_to_stamp(draw(st.integers(0, 2**62)))
    return msg


def test_fuzz_colour_depth_camera_info(kitchen_messages) -> None:  # noqa: ANN001
    """Mutated colour, depth and camera_info through the segmentation node's assembler; each colour image ends as a
    frame whose arrays agree with each other and with K, a counted drop, or pending."""
    image, depth, info = kitchen_messages
    counts = {"frames": 0, "drops": 0, "rejected": 0, "colour_in": 0, "t": 10**12}
    asm = RGBDAssembler(lambda r, d: counts.update(drops=counts["drops"] + 1), slop_ns=0, queue_depth=3,
                        reject=lambda r, d: counts.update(rejected=counts["rejected"] + 1))  # fmt: skip

    def check(frame) -> None:  # noqa: ANN001
        if frame is not None:
            counts["frames"] += 1
            h, w = frame.rgb.shape[:2]
            assert frame.rgb.dtype == np.uint8 and frame.rgb.shape == (h, w, 3)
            assert frame.depth.shape == (h, w) and (frame.k.height, frame.k.width) == (h, w)
            assert frame.k.fx > 0 and frame.k.fy > 0

    @settings(FUZZ, max_examples=2500)
    @given(st.data())
    def case(data: st.DataObject) -> None:
        which = data.draw(st.sampled_from(["image", "depth", "camera_info", "valid"]))
        counts["t"] += data.draw(st.sampled_from([33_000_000, 0, -10_000_000, -5_000_000_000]))  # on, same, back
        stamp = convert.ns_to_stamp(max(0, counts["t"]))
        img, dep, inf = copy.copy(image), copy.copy(depth), copy.copy(info)
        for m in (img, dep, inf):
            m.header = Header(stamp=stamp, frame_id=image.header.frame_id)
        if which == "image":
            img = _mutate_image(img, data.draw)
        elif which == "depth":
            dep = _mutate_image(dep, data.draw)
        elif which == "camera_info":
            inf = _mutate_info(inf, data.draw)
        order = data.draw(st.permutations(["image", "depth", "camera_info"]))
        for kind in order:
            try:
                if kind == "image":
                    counts["colour_in"] += 1
                    check(asm.add_image(img))
                elif kind == "depth":
                    check(asm.add_depth(dep))
                else:
                    check(asm.add_camera_info(inf))
            except InputRejected:
                pass

    case()
    asm.flush()
    assert counts["frames"] > 100 and counts["drops"] > 100 and counts["rejected"] > 100, counts
    assert counts["colour_in"] == counts["frames"] + counts["drops"], counts  # every colour image accounted for
