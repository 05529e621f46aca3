"""Model specs and weights: a ``ModelSpec`` per pretrained network, in the style of torchvision's ``WeightsEnum``.

A spec carries everything a caller needs to run the model on a raw RGB image and to interpret its output:
the builder, the class list and palette, the normalisation, the input-size rule, the weights file name, its
sha256 and its upstream URL. The registry of names is ``core.segmentation.registry``.

Weights are local files. ``find_weights`` looks, in order, at an explicit path, ``$SEG_PERCEPTION_MODEL_DIR``,
the user cache directory (``platformdirs.user_cache_dir("seg_perception")/models``) and torch hub's checkpoint
cache (``torch.hub.get_dir()/checkpoints``, where torchvision keeps its downloads); it never downloads.
``seg-perception weights download NAME`` (``seg_perception.tools.weights``) fetches a file and checks its hash.

``weights="random"`` builds a registered network with random weights: for plumbing tests only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import torch
from torch import nn

MODEL_DIR_ENV = "SEG_PERCEPTION_MODEL_DIR"
RANDOM_WEIGHTS = "random"  # the `weights` value that builds an untrained network (plumbing tests only)
_log = logging.getLogger("seg_perception.models")


class WeightsError(RuntimeError):
    """A weights file is missing, corrupt (sha256 mismatch) or does not fit its model."""


@dataclass(frozen=True)
class ModelSpec:
    """Static facts about one pretrained segmentation model.

    Attributes:
        name: registry key, e.g. ``"espnetv2_city"``.
        builder: ``builder(num_classes) -> nn.Module`` returning logits ``(N, C, H, W)`` at input size.
        categories: class names; output channel ``i`` is class id ``i``.
        palette: one ``(r, g, b)`` uint8 colour per class.
        mean: per-channel mean subtracted from the RGB input, on the scale given by ``input_scale``.
        std: per-channel divisor applied after the mean.
        input_scale: ``1/255`` when the network expects [0, 1] input, ``1.0`` for the 0-255 scale.
        size_multiple: network input height and width are rounded to a multiple of this.
        default_hw: ``(height, width)`` the model is run at by default (pixels; STYLE.md: height first).
        weights_file: file name of the pretrained checkpoint.
        sha256: hex digest of that file, or a prefix of it (at least 8 hex digits) when only a prefix is
            published, as in torchvision's file names (``lraspp_mobilenet_v3_large-d234d4ea.pth``); checked like
            torch hub's ``check_hash``. Empty = not checked.
        url: upstream download URL (a pinned commit).
        state_dict_key: key of the state_dict inside the checkpoint, or ``None`` for a plain state_dict.
        classifier_key: state_dict key of the last layer's weight, whose first dimension is the class count.
        ignore_classes: class ids the network outputs but that are never a valid prediction (e.g. Cityscapes'
            "background" channel, trained with loss weight 0); they are excluded from the argmax.
        ontology: name of the costmap ontology YAML in ``config/ontology`` for this class list.
        metrics: reference metrics measured with the authors' code (dataset/protocol -> value).
        paper: citation of the architecture.
        channel_order: ``"rgb"`` or ``"bgr"``: channel order of the network input (mean/std are in this order).
        fixed_size: the network only runs at ``default_hw`` (e.g. an ONNX export with static height and width);
            ``input_hw`` then rejects any other size.
        self_contained: the builder loads a complete model file itself (TorchScript / ONNX,
            ``core.segmentation.custom_model``; or no file, ``fake``); ``load_model`` then reads no state_dict and
            ``weights_file`` is the model file.
        size_note: how ``default_hw`` and ``size_multiple`` were chosen (documentation only).
    """

    name: str
    builder: Callable[[int], nn.Module]
    categories: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_scale: float
    size_multiple: int
    default_hw: tuple[int, int]
    weights_file: str
    sha256: str
    url: str
    state_dict_key: str | None = None
    classifier_key: str = ""
    ignore_classes: tuple[int, ...] = ()
    ontology: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    paper: str = ""
    channel_order: str = "rgb"
    fixed_size: bool = False
    self_contained: bool = False
    size_note: str = ""

    @property
    def num_classes(self) -> int:
        """Number of output channels (= ``len(categories)``)."""
        return len(self.categories)

    def input_hw(self, height: int, width: int) -> tuple[int, int]:
        """Round a requested network input size to the model's multiple (nearest, at least one multiple).

        Args:
            height: requested height in pixels (> 0).
            width: requested width in pixels (> 0).
        Returns:
            ``(height, width)`` rounded to ``size_multiple``.
        Raises:
            ValueError: if either value is not positive, or the model has a fixed size and the rounded size differs
                (messages write sizes WIDTHxHEIGHT, as the command line does).
        """
        if width <= 0 or height <= 0:
            raise ValueError(f"input size must be positive, got {width}x{height}")
        m = self.size_multiple
        hw = max(m, int(round(height / m)) * m), max(m, int(round(width / m)) * m)
        if self.fixed_size and hw != tuple(self.default_hw):
            h, w = self.default_hw
            raise ValueError(f"model {self.name!r} only runs at {w}x{h} (fixed-size export), got {hw[1]}x{hw[0]}")
        return hw


def validate_spec(spec: ModelSpec) -> None:
    """Check a spec's internal consistency (palette length, ignore ids, channel order, hash format).

    Raises:
        ValueError: naming the model and the offending values.
    """
    if len(spec.palette) != len(spec.categories):
        raise ValueError(
            f"model {spec.name!r}: palette has {len(spec.palette)} colours for {len(spec.categories)} classes"
        )
    bad = [i for i in spec.ignore_classes if not 0 <= i < len(spec.categories)]
    if bad:
        raise ValueError(f"model {spec.name!r}: ignore_classes {bad} outside 0..{len(spec.categories) - 1}")
    if spec.channel_order not in ("rgb", "bgr"):
        raise ValueError(f"model {spec.name!r}: channel_order must be 'rgb' or 'bgr', got {spec.channel_order!r}")
    if spec.sha256 and (len(spec.sha256) < 8 or any(c not in "0123456789abcdef" for c in spec.sha256)):
        raise ValueError(f"model {spec.name!r}: sha256 must be >= 8 lowercase hex digits, got {spec.sha256!r}")


def default_model_dirs() -> list[Path]:
    """Directories searched for weights, in order: ``$SEG_PERCEPTION_MODEL_DIR``, the user cache, then torch
    hub's checkpoint cache (``torch.hub.get_dir()/checkpoints``: ``$TORCH_HOME/hub/checkpoints``, where
    torchvision's own downloads land). Downloads go to the first one.
    """
    dirs = []
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path(platformdirs.user_cache_dir("seg_perception")) / "models")
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def sha256_of(path: Path) -> str:
    """Hex sha256 digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_matches(digest: str, expected: str) -> bool:
    """Whether a full hex ``digest`` matches ``expected``: equal, or starts with it when ``expected`` is a prefix
    (torch hub's ``check_hash`` rule for the ``-<prefix>.pth`` in torchvision's file names). Empty = no check."""
    return not expected or digest.startswith(expected.lower())


def describe_hash(expected: str) -> str:
    """``"<hex>"`` for a whole digest, ``"sha256 prefix <hex>"`` for a prefix, for messages."""
    return expected if len(expected) == 64 else f"sha256 prefix {expected}"


def find_weights(spec: ModelSpec, explicit: str | os.PathLike[str] | None = None, verify: bool = True) -> Path:
    """Locate and verify the weights file of ``spec``; never downloads.

    Args:
        spec: the model.
        explicit: a file path, or a directory that holds ``spec.weights_file``; wins over the search path.
        verify: check the file's sha256 against ``spec.sha256`` (the whole digest or its published prefix).
    Returns:
        Path of the verified file.
    Raises:
        WeightsError: if no file is found (the message names the download command and the places searched) or
            the sha256 differs (the message gives both digests).
    """
    if explicit:
        p = Path(explicit).expanduser()
        candidates = [p / spec.weights_file] if p.is_dir() else [p]
    else:
        candidates = [d / spec.weights_file for d in default_model_dirs()]
    for path in candidates:
        if path.is_file():
            if verify and spec.sha256:
                digest = sha256_of(path)
                if not hash_matches(digest, spec.sha256):
                    raise WeightsError(
                        f"weights file {path} is corrupt: sha256 {digest}, expected {describe_hash(spec.sha256)}; "
                        f"delete it and run `seg-perception weights download {spec.name}`"
                    )
            return path
    searched = ", ".join(str(c) for c in candidates)
    raise WeightsError(
        f"weights for model {spec.name!r} not found (looked for {searched}); run "
        f"`seg-perception weights download {spec.name}`, or set the `weights` parameter or ${MODEL_DIR_ENV}"
    )


def _state_dict_mismatch(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> str:
    """A short description of how ``got`` differs from ``expected`` (keys and shapes); empty when they fit."""

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shapes = sorted(k for k in set(expected) & set(got) if tuple(expected[k].shape) != tuple(got[k].shape))
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) ({some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) ({some(unexpected)})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} shape mismatch(es) (e.g. {k}: checkpoint {tuple(got[k].shape)}, "
                     f"model {tuple(expected[k].shape)})")  # fmt: skip
    return "; ".join(parts)


def load_model(
    spec: ModelSpec, weights: str | os.PathLike[str] | None = None, pretrained: bool = True
) -> nn.Module:
    """Build ``spec``'s network and load its weights strictly, on the CPU, in eval mode.

    Args:
        spec: the model.
        weights: explicit weights file or directory (see ``find_weights``); ``"random"`` (``RANDOM_WEIGHTS``)
            is ``pretrained=False``.
        pretrained: ``False`` builds the network with random weights (tests of the plumbing only; logs a warning
            and emits a ``UserWarning``, since every label it gives is meaningless).
    Returns:
        The ``nn.Module`` in ``eval()`` mode.
    Raises:
        WeightsError: missing/corrupt file, or a checkpoint whose keys or shapes do not match (e.g. a class
            count that differs from ``spec.num_classes``; the message names both); ``weights`` given for a
            self-contained (custom) model, whose file is named in its YAML.
    """
    if weights is not None and str(weights) == RANDOM_WEIGHTS:
        pretrained = False
    if spec.self_contained:
        if weights or not pretrained:
            raise WeightsError(
                f"model {spec.name!r} loads its own file ({spec.weights_file}); leave `weights` empty "
                f"(got {str(weights) if weights else 'pretrained=False'!r})"
            )
        return spec.builder(spec.num_classes).eval()
    if not pretrained:
        msg = (
            f"model {spec.name!r} runs with RANDOM weights: its labels are meaningless "
            "(weights='random' is for plumbing tests only)"
        )
        _log.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
    model = spec.builder(spec.num_classes)
    if pretrained:
        path = find_weights(spec, weights)
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = ckpt[spec.state_dict_key] if spec.state_dict_key else ckpt
        if not isinstance(state, dict):
            raise WeightsError(f"{path}: expected a state_dict, got {type(state).__name__}")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        if spec.classifier_key in state and state[spec.classifier_key].shape[0] != spec.num_classes:
            raise WeightsError(
                f"{path} has {state[spec.classifier_key].shape[0]} output classes but model {spec.name!r} has "
                f"{spec.num_classes} ({spec.classifier_key} {tuple(state[spec.classifier_key].shape)})"
            )
        problems = _state_dict_mismatch(model.state_dict(), state)
        if problems:
            raise WeightsError(f"{path} does not fit model {spec.name!r}: {problems}")
        model.load_state_dict(state, strict=True)
        flushed = flush_denormals(model)
        if flushed:
            _log.info("model %s: %d weights below %g set to 0 (they slow CPU convolutions)", spec.name, flushed,
                      NEGLIGIBLE_WEIGHT)  # fmt: skip
    return model.eval()


#: Weights smaller than this in magnitude are set to 0 at load (``flush_denormals``).
NEGLIGIBLE_WEIGHT = 1e-20


def flush_denormals(module: nn.Module, threshold: float = NEGLIGIBLE_WEIGHT) -> int:
    """Set float parameters and buffers with 0 < |x| < ``threshold`` (default 1e-20) to 0, in place.

    Their products with any activation (|a| < 1e6) are below 1e-14, under float32 rounding of the O(1) outputs, but
    they make CPU arithmetic slow: values below ``finfo.tiny`` (1.2e-38, subnormal) are slow themselves, and tiny
    normal weights (1e-38 to 1e-20) produce subnormal products and partial sums. 41 % of CGNet CamVid's checkpoint
    values are subnormal (torch eager ~25x slower at 640x480 with them: 4.4 s instead of 0.16 s); zeroing the 13,661
    values below 1e-20 as well took its OpenVINO forward pass at 480x360 from 62 to 29 ms and torch eager from 95 to
    73 ms, with identical labels on the golden images (``test_cgnet.py``, ``test_runtime.py``).

    Returns:
        How many values were set to 0.
    """
    count = 0
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                mask = (t.abs() < threshold) & (t != 0)
                n = int(mask.sum())
                if n:
                    t[mask] = 0
                    count += n
    return count
