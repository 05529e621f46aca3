"""``seg-perception weights {list,download,verify}`` and ``seg-perception models``.

``models`` / ``weights list`` print per model: class count, default network size / size multiple, the state of
its weights, and the spec's metrics (reference accuracy from the authors' code or papers, and the speed and
accuracy measured on this machine, where measured).

Downloads go to ``--dir`` or the first folder of the search path (``$SEG_PERCEPTION_MODEL_DIR``, else the user
cache); the file is written under a temporary name and kept only when its sha256 matches the model spec (the whole
digest, or the prefix torchvision publishes in its file names, checked as torch hub's ``check_hash`` does).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import urllib.request
from pathlib import Path

from seg_perception.core.segmentation.models import (
    WeightsError,
    default_model_dirs,
    describe_hash,
    find_weights,
    hash_matches,
    sha256_of,
)
from seg_perception.core.segmentation.registry import get_model_spec, list_models


def add_list_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``models`` / ``weights list``."""
    p.add_argument("--dir", help="look in this folder instead of the search path")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception weights``."""
    sub = p.add_subparsers(dest="weights_command", required=True)
    add_list_arguments(sub.add_parser("list", help="models and the state of their weights"))
    d = sub.add_parser("download", help="fetch weights from the upstream URL and check the sha256")
    d.add_argument("names", nargs="+", metavar="NAME", help="model name(s), or 'all'")
    d.add_argument("--dir", help="target folder (default: first folder of the search path)")
    d.add_argument("--force", action="store_true", help="download even if a verified file exists")
    v = sub.add_parser("verify", help="check the sha256 of local weights")
    v.add_argument("names", nargs="+", metavar="NAME")
    v.add_argument("--dir", help="look in this folder instead of the search path")


def _status(name: str, folder: str | None) -> str:
    spec = get_model_spec(name)
    if spec.self_contained:
        return "none    (no weights file: test model)"
    try:
        return f"ok      {find_weights(spec, folder)}"
    except WeightsError as e:
        return "corrupt " + str(e) if "corrupt" in str(e) else f"missing {spec.weights_file}"


def download(name: str, folder: str | None = None, force: bool = False) -> Path:
    """Download the weights of model ``name`` and verify their sha256.

    Returns:
        Path of the verified file.
    Raises:
        WeightsError: the download failed or the digest differs (the partial file is removed).
    """
    spec = get_model_spec(name)
    target_dir = Path(folder).expanduser() if folder else default_model_dirs()[0]
    target = target_dir / spec.weights_file
    if spec.self_contained or not spec.url:
        raise WeightsError(f"model {name!r} has no download URL (a custom model's file is named in its YAML)")
    if target.is_file() and not force and hash_matches(sha256_of(target), spec.sha256):
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target_dir, suffix=".part", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        print(f"downloading {spec.url}", file=sys.stderr)
        urllib.request.urlretrieve(spec.url, tmp_path)  # noqa: S310 - fixed https URL from the spec
        digest = sha256_of(tmp_path)
        if not hash_matches(digest, spec.sha256):
            raise WeightsError(f"{spec.url}: sha256 {digest}, expected {describe_hash(spec.sha256)}")
        tmp_path.replace(target)
    except OSError as e:
        raise WeightsError(f"download of {spec.url} failed: {e}") from e
    finally:
        tmp_path.unlink(missing_ok=True)
    return target


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; returns the process exit status."""
    if args.weights_command == "list":
        for name in list_models():
            spec = get_model_spec(name)
            size = f"{spec.default_hw[1]}x{spec.default_hw[0]}/{spec.size_multiple}"
            print(f"{name:28s} {spec.num_classes:3d} classes  {size:12s} {_status(name, args.dir)}")
            for key, value in spec.metrics.items():
                print(f"{'':32s}{key}: {value:g}")
        return 0
    downloadable = [n for n in list_models() if get_model_spec(n).url]
    names = downloadable if args.names == ["all"] else args.names
    status = 0
    for name in names:
        try:
            if args.weights_command == "download":
                print(f"{name}: ok {download(name, args.dir, args.force)}")
            else:
                print(f"{name}: ok {find_weights(get_model_spec(name), args.dir)}")
        except (WeightsError, KeyError) as e:
            print(f"{name}: {e}", file=sys.stderr)
            status = 1
    return status
