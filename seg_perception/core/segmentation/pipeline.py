"""The segmentation node's work on one RGB-D frame, without ROS: segment, colourize, fuse with depth.

``SegmentationPipeline`` is shared by the ROS node (``ros/segmentation_node.py``) and the offline tools
(``tools/process.py``, benchmarks), so the bag processor and the live node compute exactly the same thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from seg_perception.core.config import check_declared_ranges, param
from seg_perception.core.geometry.camera import Intrinsics, depth_to_meters
from seg_perception.core.geometry.cloud import semantic_cloud
from seg_perception.core.segmentation.models import RANDOM_WEIGHTS, load_model
from seg_perception.core.segmentation.overlay import blend, palette_array
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.runtime import RUNTIMES
from seg_perception.core.segmentation.segment import Segmenter


@dataclass(frozen=True)
class SegmentationConfig:
    """Parameters of the segmentation node (names are the ROS parameter names; units in the descriptions)."""

    model: str = param(
        "espnetv2_city",
        "registered model name (seg-perception models lists them), or the path of a custom-model YAML "
        "(TorchScript/ONNX file + classes + preprocessing; README 'Bring your own model')",
        read_only=True,
    )
    weights: str = param(
        "",
        "weights file or folder; empty = $SEG_PERCEPTION_MODEL_DIR, the user cache, then torch hub's cache; "
        "'random' = untrained network, for plumbing tests only (meaningless labels)",
        read_only=True,
    )
    device: str = param("auto", "auto (CUDA when available, else CPU), cpu, cuda or cuda:N", read_only=True)
    fp16: bool = param(False, "half precision inference (CUDA only; ignored on the CPU)", read_only=True)
    runtime: str = param(
        "auto",
        "network runtime: auto (OpenVINO on the CPU when installed, torch on CUDA), torch, openvino or onnxruntime; "
        "built-in models are exported once per input size and cached; a missing runtime falls back to torch",
        read_only=True,
    )
    num_threads: int = param(0, "inference threads; 0 = the runtime's default (all cores)", read_only=True, lo=0,
                             hi=256)  # fmt: skip
    input_width: int = param(0, "network input width [px], rounded to the model's multiple; 0 (with input_height "
                              "0) = the camera's aspect, as large as fits in the model's default size",
                              read_only=True, lo=0, hi=4096)  # fmt: skip
    input_height: int = param(0, "network input height [px], rounded to the model's multiple; 0 = see input_width",
                               read_only=True, lo=0, hi=4096)  # fmt: skip
    tta_flip: bool = param(False, "test-time augmentation: also segment the mirrored image and average the class "
                            "probabilities (2x the inference time)", read_only=True)  # fmt: skip
    tta_scales: tuple[float, ...] = param(
        (1.0,),
        "test-time augmentation: network input scales relative to input_width/height, e.g. [0.75, 1.0, 1.25]; "
        "class probabilities averaged at the base size; [1.0] = off (one run per scale, per flip)",
        read_only=True,
    )
    cloud_stride: int = param(2, "keep every N-th row and column in semantic_points [px]", lo=1, hi=32)
    sync_slop_s: float = param(0.0, "max stamp difference to pair colour and depth [s]; 0 = exact", lo=0.0, hi=1.0)
    max_image_pixels: int = param(16_777_216, "colour and depth images with more pixels are dropped before decoding "
                                  "(too_large) [px]; the default is 4096 x 4096", read_only=True, lo=1,
                                  hi=2_147_483_647)  # fmt: skip
    min_depth_m: float = param(0.1, "depth below this is invalid [m]", lo=0.0, hi=100.0)
    max_depth_m: float = param(80.0, "depth above this is invalid [m]", lo=0.0, hi=1000.0)
    overlay_alpha: float = param(0.5, "weight of the class colour in the overlay [0-1]", lo=0.0, hi=1.0)
    publish_overlay: bool = param(True, "publish the colour overlay image")
    publish_cloud: bool = param(True, "publish semantic_points (needs depth)")
    cloud_color: str = param("image", "rgb field of semantic_points: image (camera colour) or class (palette)")

    def __post_init__(self) -> None:
        if self.min_depth_m >= self.max_depth_m:
            raise ValueError(f"min_depth_m {self.min_depth_m} must be < max_depth_m {self.max_depth_m}")
        if self.cloud_color not in ("image", "class"):
            raise ValueError(f"cloud_color must be 'image' or 'class', got {self.cloud_color!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.cloud_stride < 1:
            raise ValueError(f"cloud_stride must be >= 1, got {self.cloud_stride}")
        if len(self.tta_scales) == 0 or not all(0.0 < float(s) <= 8.0 for s in self.tta_scales):
            raise ValueError(f"tta_scales must be a non-empty list of values in (0, 8], got {list(self.tta_scales)}")
        check_declared_ranges(self)


@dataclass
class FrameResult:
    """Outputs for one frame, all at the colour image's resolution (cloud: decimated by ``cloud_stride``).

    Attributes:
        labels: (H, W) uint8 class ids.
        confidence: (H, W) float32 max softmax in [0, 1].
        overlay: (H, W, 3) uint8 RGB blend, or None when disabled.
        cloud: (ceil(H/s), ceil(W/s)) ``CLOUD_DTYPE`` points in the camera optical frame, or None without depth.
        timings_ms: stage name -> wall time in milliseconds.
    """

    labels: np.ndarray
    confidence: np.ndarray
    overlay: np.ndarray | None
    cloud: np.ndarray | None
    timings_ms: dict[str, float]


class SegmentationPipeline:
    """Model + fusion for one camera. Loads and verifies weights in ``__init__`` (fails fast).

    ``cfg.weights == "random"`` (or ``pretrained=False``) runs an untrained network with a loud warning: it
    exercises the plumbing (shapes, encodings, headers) without weight files, nothing more.

    With a runtime other than torch and an explicit network size, the network is exported (or loaded from the
    cache) and compiled here; with the aspect-kept default size that happens on the first image.

    Raises:
        KeyError: unknown model name.
        seg_perception.core.segmentation.models.WeightsError: missing / corrupt / mismatched weights.
        ValueError: bad device, input size, TTA scales or custom-model YAML.
    """

    def __init__(self, cfg: SegmentationConfig, pretrained: bool = True) -> None:
        self.cfg = cfg
        self.spec = get_model_spec(cfg.model)
        model = load_model(self.spec, cfg.weights or None, pretrained=pretrained)
        hw = (cfg.input_height, cfg.input_width) if cfg.input_width and cfg.input_height else None
        random_weights = not pretrained or cfg.weights == RANDOM_WEIGHTS
        # an untrained network is not worth an export (and would fill the cache with one entry per run)
        runtime = "torch" if random_weights and cfg.runtime == "auto" else cfg.runtime
        self.segmenter = Segmenter(
            self.spec, model, device=cfg.device, fp16=cfg.fp16, input_hw=hw, tta_flip=cfg.tta_flip,
            tta_scales=cfg.tta_scales, runtime=runtime, num_threads=cfg.num_threads, keep_aspect=hw is None,
        )  # fmt: skip
        if self.segmenter.runtime != "torch":
            self.segmenter.warm_up()  # export / compile at start-up when the network size is already known
        self.lut = palette_array(self.spec.palette)

    def process(
        self, rgb: np.ndarray, depth: np.ndarray | None = None, k: Intrinsics | None = None
    ) -> FrameResult:
        """Segment one frame and, with depth, fuse it into a semantic cloud.

        Args:
            rgb: (H, W, 3) uint8 RGB.
            depth: (H, W) uint16 mm (16UC1) or float32 m (32FC1), registered to ``rgb``; or None.
            k: intrinsics of the (H, W) image; required with depth.
        Raises:
            ValueError: on mismatched sizes or a missing ``k``.
        """
        t = {}
        t0 = time.perf_counter()
        if depth is not None:
            if depth.shape[:2] != rgb.shape[:2]:
                raise ValueError(f"depth {depth.shape[:2]} does not match rgb {rgb.shape[:2]}")
            if k is None:
                raise ValueError("intrinsics are required to fuse depth")
        seg = self.segmenter(rgb)
        t1 = time.perf_counter()
        t["segment"] = (t1 - t0) * 1e3
        overlay = blend(rgb, seg.labels, self.lut, self.cfg.overlay_alpha) if self.cfg.publish_overlay else None
        t2 = time.perf_counter()
        t["overlay"] = (t2 - t1) * 1e3
        cloud = None
        if depth is not None and k is not None and self.cfg.publish_cloud:
            depth_m = depth_to_meters(depth, self.cfg.min_depth_m, self.cfg.max_depth_m)
            colors = rgb if self.cfg.cloud_color == "image" else self.lut[seg.labels]
            cloud = semantic_cloud(depth_m, k, colors, seg.labels, seg.confidence, self.cfg.cloud_stride)
        t["cloud"] = (time.perf_counter() - t2) * 1e3
        return FrameResult(seg.labels, seg.confidence, overlay, cloud, t)
