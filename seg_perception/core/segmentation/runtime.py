"""Inference runtimes for the network call: torch eager, OpenVINO, ONNX Runtime; export cache.

Only the network call changes: preprocessing (PIL bilinear resize, normalisation) and postprocessing (softmax,
argmax, nearest resize) stay in ``core.segmentation.segment``, so labels agree with torch eager to float rounding.

* ``select_runtime`` maps the ``runtime`` parameter (``auto`` | ``torch`` | ``openvino`` | ``onnxruntime``) and the
  torch device to the runtime that will run: ``auto`` is OpenVINO on the CPU when ``openvino`` imports, else torch;
  CUDA always keeps torch. A requested runtime that does not import falls back to torch with a logged warning.
* ``CompiledNet`` wraps a torch module: per network input size it exports the module once with the libraries' own
  tools (``openvino.convert_model`` for OpenVINO, ``torch.onnx.export(dynamo=True)`` for ONNX Runtime), caches the
  export, and runs it (OpenVINO ``compile_model`` with ``PERFORMANCE_HINT=LATENCY``, f32 precision, denormals
  flushed to zero and the thread count; ONNX Runtime with all graph optimisations, denormals as zero and the thread
  count).
* Denormals: small PReLU slopes (CGNet's are down to 1e-4) make some activations denormal floats, which x86 FPUs
  handle up to 100x slower. CGNet's third stem convolution took 19 ms instead of 3 ms in OpenVINO because of it.
  Flushing them to zero (``CPU_DENORMALS_OPTIMIZATION``, ONNX Runtime's ``session.set_denormal_as_zero``) changes
  values below 1.2e-38 only: the golden labels stay identical (``test_runtime.py``). Both libraries also switch the
  CALLING thread's FPU to flush-to-zero (x86 MXCSR); the runners switch it back after each call
  (``_restore_subnormals``), so only the runtimes' own work flushes and the rest of the process keeps IEEE floats.
* The export cache lives in ``platformdirs.user_cache_dir("seg_perception")/exports`` (beside the ``models``
  weights cache; ``$SEG_PERCEPTION_CACHE_DIR`` replaces the root). One folder per ``ExportKey`` (model, sha256 of
  the weights, input size, runtime and its version, torch version), holding the exported files and a
  ``manifest.json`` with their sha256. Entries are built in a temporary folder and moved in with ``os.replace``
  (atomic); an entry whose files do not match its manifest, or that the runtime cannot load, is rebuilt with a
  logged warning.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import platformdirs
import torch
from torch import nn

from seg_perception.core.segmentation.custom_nets import OnnxModel, TorchScriptModel
from seg_perception.core.segmentation.runners import EXPORTERS, Runner

RUNTIMES = ("auto", "torch", "openvino", "onnxruntime")
CACHE_DIR_ENV = "SEG_PERCEPTION_CACHE_DIR"
EXPORT_FORMAT_VERSION = 1  # bump when the export recipe changes, to invalidate old cache entries
MANIFEST = "manifest.json"
_log = logging.getLogger("seg_perception.runtime")


def _import(name: str) -> ModuleType | None:
    """Import an optional runtime package; ``None`` when it is not installed or fails to load."""
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install is as unusable as a missing one
        return None


def runtime_module(runtime: str) -> ModuleType | None:
    """The Python package behind ``runtime`` (``openvino`` / ``onnxruntime``), or ``None`` when not importable."""
    return _import(runtime)


def runtime_version(runtime: str) -> str:
    """Version string of ``runtime`` (``torch.__version__`` for torch; ``""`` when not importable)."""
    if runtime == "torch":
        return str(torch.__version__)
    mod = runtime_module(runtime)
    return str(getattr(mod, "__version__", "")) if mod is not None else ""


def select_runtime(requested: str, device: torch.device) -> str:
    """The runtime that will run the network for the ``runtime`` parameter ``requested`` on ``device``.

    Args:
        requested: ``auto``, ``torch``, ``openvino`` or ``onnxruntime``.
        device: the torch device (``core.segmentation.segment.resolve_device``).
    Returns:
        ``"torch"``, ``"openvino"`` or ``"onnxruntime"``. ``auto``: OpenVINO on the CPU when it imports, else torch;
        on CUDA always torch. An explicit ``openvino`` / ``onnxruntime`` that does not import, or any of them on
        CUDA, falls back to torch with a logged warning.
    Raises:
        ValueError: ``requested`` is not one of ``RUNTIMES``.
    """
    if requested not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {requested!r}")
    if requested == "torch":
        return "torch"
    if device.type != "cpu":
        if requested != "auto":
            _log.warning("runtime %s runs on the CPU only; device %s keeps torch", requested, device)
        return "torch"
    wanted = "openvino" if requested == "auto" else requested
    if runtime_module(wanted) is None:
        log = _log.info if requested == "auto" else _log.warning
        log("runtime %s: package %r is not importable; falling back to torch", requested, wanted)
        return "torch"
    return wanted


def cache_root() -> Path:
    """Root of the user cache: ``$SEG_PERCEPTION_CACHE_DIR`` or ``platformdirs.user_cache_dir("seg_perception")``."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("seg_perception"))


def export_dir() -> Path:
    """Folder of the export cache (``cache_root() / "exports"``)."""
    return cache_root() / "exports"


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 of a module's state_dict (names, dtypes, shapes and bytes, in key order): the weights' identity."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class ExportKey:
    """Everything an exported network depends on; any change gives another cache entry.

    Attributes:
        model: model name.
        weights_sha256: ``state_dict_sha256`` of the torch module.
        width: network input width [px].
        height: network input height [px].
        runtime: ``openvino`` or ``onnxruntime``.
        runtime_version: the runtime's ``__version__``.
        torch_version: ``torch.__version__`` (the exporter).
        format_version: ``EXPORT_FORMAT_VERSION``.
        extra: anything else the export depends on (e.g. the int8 calibration data's sha256), else empty.
    """

    model: str
    weights_sha256: str
    width: int
    height: int
    runtime: str
    runtime_version: str
    torch_version: str
    format_version: int = EXPORT_FORMAT_VERSION
    extra: str = ""

    def digest(self) -> str:
        """sha256 of the key's fields (JSON, sorted keys)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def entry_name(self) -> str:
        """Cache folder name: ``<model>_<W>x<H>_<runtime>_<16 hex digits of digest()>``."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.model)
        return f"{safe}_{self.width}x{self.height}_{self.runtime}_{self.digest()[:16]}"


def _file_hashes(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != MANIFEST:
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def check_entry(folder: Path, key: ExportKey) -> str:
    """Why a cache entry is unusable (``""`` when it is complete and its files match the manifest's sha256)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        return f"unreadable manifest ({e})"
    if not isinstance(manifest, dict) or manifest.get("key") != asdict(key):
        return "manifest is for another key"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return "manifest lists no files"
    try:
        got = _file_hashes(folder)
    except OSError as e:
        return f"unreadable files ({e})"
    if got != files:
        bad = sorted(n for n in set(files) | set(got) if files.get(n) != got.get(n))
        return f"files differ from the manifest: {', '.join(bad)}"
    return ""


def cached_export(key: ExportKey, export: Callable[[Path], None], root: Path | None = None) -> Path:
    """Return the cache folder for ``key``, exporting into it first when it is missing or corrupt.

    Args:
        key: the export's identity.
        export: ``export(folder)`` writes the exported files into an empty ``folder``.
        root: cache folder (default ``export_dir()``).
    Returns:
        The entry folder (holds the exported files and ``manifest.json``).
    Raises:
        OSError: the cache folder cannot be written; anything ``export`` raises.
    """
    root = export_dir() if root is None else root
    final = root / key.entry_name()
    if final.exists():
        problem = check_entry(final, key)
        if not problem:
            return final
        _log.warning("export cache entry %s is corrupt (%s); rebuilding it", final, problem)
        discard_entry(final)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-" + key.entry_name()))
    try:
        export(tmp)
        manifest = {"key": asdict(key), "files": _file_hashes(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.is_dir() or check_entry(final, key):  # not another process's complete entry
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def discard_entry(folder: Path) -> None:
    """Remove a cache entry (first renamed aside, so a concurrent reader never sees it half deleted)."""
    aside = folder.with_name(f".del-{folder.name}-{os.getpid()}")
    try:
        os.replace(folder, aside)
    except OSError:
        aside = folder
    shutil.rmtree(aside, ignore_errors=True)



class CompiledNet(nn.Module):
    """A torch segmentation module run by OpenVINO or ONNX Runtime, one cached export per input size.

    Behaves like the wrapped module: ``forward`` maps a (1, 3, H, W) float32 CPU tensor to float32 logits
    (1, C, H, W). The first call at a new size exports (or loads from the cache) and compiles that size.

    Args:
        module: the torch network in eval mode on the CPU (not modified).
        name: model name (part of the cache key).
        runtime: ``openvino`` or ``onnxruntime``.
        num_threads: inference threads; 0 = the runtime's choice.
        root: export cache folder (default ``export_dir()``).
    Raises:
        ValueError: unknown runtime, or (at call time) an input that is not (1, 3, H, W).
    """

    def __init__(self, module: nn.Module, name: str, runtime: str, num_threads: int = 0,
                 root: Path | None = None) -> None:  # fmt: skip
        super().__init__()
        if runtime not in EXPORTERS:
            raise ValueError(f"CompiledNet runs openvino or onnxruntime, got {runtime!r}")
        self.source = module.eval()
        self.name, self.runtime, self.num_threads, self.root = name, runtime, int(num_threads), root
        self.weights_sha256 = state_dict_sha256(module)
        self.runners: dict[tuple[int, int], Runner] = {}
        self.entries: dict[tuple[int, int], Path] = {}

    def key(self, width: int, height: int) -> ExportKey:
        """The cache key of this network at ``width`` x ``height``."""
        return ExportKey(self.name, self.weights_sha256, width, height, self.runtime, runtime_version(self.runtime),
                         str(torch.__version__))  # fmt: skip

    def runner(self, width: int, height: int) -> Runner:
        """The compiled network for one input size (exported, cached and compiled on first use)."""
        size = (width, height)
        if size not in self.runners:
            export, filename, runner_cls = EXPORTERS[self.runtime]
            key = self.key(width, height)

            def do_export(folder: Path) -> None:
                _log.info("exporting %s at %dx%d for %s (once; cached)", self.name, width, height, self.runtime)
                export(self.source, width, height, folder)

            entry = cached_export(key, do_export, self.root)
            try:
                runner = runner_cls(entry / filename, self.num_threads)
            except Exception as e:  # noqa: BLE001 - a cache entry the runtime cannot read is rebuilt once
                _log.warning("export cache entry %s does not load (%s); rebuilding it", entry, e)
                discard_entry(entry)
                entry = cached_export(key, do_export, self.root)
                runner = runner_cls(entry / filename, self.num_threads)
            self.runners[size], self.entries[size] = runner, entry
        return self.runners[size]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) float32 input -> (1, C, H, W) float32 logits (CPU tensors)."""
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise ValueError(f"expected input (1, 3, H, W), got {tuple(x.shape)}")
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        y = self.runner(int(x.shape[-1]), int(x.shape[-2]))(arr)
        return torch.from_numpy(y)


def accelerate(module: nn.Module, name: str, runtime: str, device: torch.device, num_threads: int = 0) -> nn.Module:
    """``module`` ready to run on ``runtime`` (already chosen with ``select_runtime``).

    Torch modules get a ``CompiledNet``; a bring-your-own ONNX model (``core.segmentation.custom_nets.OnnxModel``)
    switches its own session to OpenVINO or ONNX Runtime (no export needed); a TorchScript file stays on torch.

    Args:
        module: the network (``core.segmentation.models.load_model``), eval mode, on the CPU.
        name: model name (cache key).
        runtime: ``torch``, ``openvino`` or ``onnxruntime``.
        device: torch device; anything but the CPU keeps torch.
        num_threads: inference threads (0 = the runtime's choice).
    Returns:
        The module to call in place of ``module``.
    """
    if isinstance(module, OnnxModel):
        if device.type == "cpu":
            module.use_runtime("onnxruntime" if runtime == "torch" else runtime, num_threads)
        return module
    if runtime == "torch" or device.type != "cpu":
        return module
    if isinstance(module, TorchScriptModel):
        _log.info("model %s is a TorchScript file: it runs on torch (runtime %s applies to ONNX files)", name, runtime)
        return module
    return CompiledNet(module, name, runtime, num_threads)
