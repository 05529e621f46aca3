"""Many bags at once on Ray: one ``process`` task per bag, local by default, on a cluster with an address.

Robots record hours of bags, and every bag is processed again whenever the model changes. ``process_fleet`` runs
``process.process_bag`` once per bag as a Ray task (https://docs.ray.io, ``ray`` from PyPI):

* Local by default: Ray starts in this process with ``workers`` CPUs (default all cores); ``address``
  (``ray://HOST:10001`` or ``auto``) joins a running cluster instead. Each task asks for 1 CPU (or 1 GPU with a
  ``cuda`` device), so Ray runs as many bags at once as there are free slots; the network runs with as many
  threads as its task has CPUs.
* Resumable: a bag whose output folder holds ``summary.json`` is done (``process_bag`` renames its output into
  place only when complete) and is skipped; ``force`` redoes it.
* A bag that fails (unreadable, no input topics) is reported with its error; the others finish. A cut or damaged
  bag is processed up to the damage and its ``input_damage`` shown.
* Outputs: ``OUT/<bag folder name>/`` per bag (as a single ``process`` run writes) and ``OUT/fleet.json`` with one
  row per bag (status, frames, drops, stage medians, wall time, error).

On a cluster every node needs the package and its models: install it in each node's environment (or ship it with a
Ray ``runtime_env``) and set ``SEG_PERCEPTION_MODEL_DIR`` there; the bags and ``OUT`` must be on storage every node
sees (paths are passed as they are).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUMMARY = "summary.json"


@dataclass
class BagRun:
    """One bag's row of a fleet run.

    Attributes:
        bag: the bag folder.
        out: its output folder.
        status: ``done`` (processed now), ``skipped`` (complete output from an earlier run) or ``failed``.
        frames_in, frames_out: colour frames read / fully processed.
        drops: reason -> count.
        stage_ms: stage -> median [ms].
        wall_s: the task's wall time [s] (0 when skipped).
        input_damage: what a damaged bag lost (None when intact).
        error: why it failed ("" otherwise).
    """

    bag: str
    out: str
    status: str
    frames_in: int = 0
    frames_out: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    stage_ms: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    input_damage: str | None = None
    error: str = ""

    @classmethod
    def from_summary(cls, bag: Path, out: Path, status: str, summary: dict[str, Any]) -> BagRun:
        """The row of a ``process_bag`` summary."""
        return cls(str(bag), str(out), status, summary.get("frames_in", 0), summary.get("frames_out", 0),
                   summary.get("drops", {}), summary.get("stage_ms_median", {}), summary.get("wall_s", 0.0),
                   summary.get("input_damage"))  # fmt: skip


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (metadata.yaml or a storage file inside) or a single .mcap / .db3 file."""
    if path.is_file():
        return path.suffix in (".mcap", ".db3")
    return path.is_dir() and (
        (path / "metadata.yaml").is_file() or any(path.glob("*.mcap")) or any(path.glob("*.db3"))
    )


def find_bags(inputs: Sequence[str | Path]) -> list[Path]:
    """Bags named by ``inputs``: bag folders, glob patterns, or folders whose sub-folders are bags; sorted, unique.

    Raises:
        ValueError: an input that matches no bag.
    """
    found: list[Path] = []
    for item in inputs:
        matches = [Path(p) for p in sorted(glob.glob(str(item)))] or [Path(item)]
        bags = [p for p in matches if is_bag(p)]
        for p in matches:
            if not is_bag(p) and p.is_dir():
                bags += [c for c in sorted(p.iterdir()) if is_bag(c)]
        if not bags:
            raise ValueError(f"{item}: no rosbag2 folder there (a folder with metadata.yaml or *.mcap / *.db3)")
        found += bags
    return list(dict.fromkeys(p.resolve() for p in found))


def output_dirs(bags: Sequence[Path], out: Path) -> list[Path]:
    """``out/<bag folder name>`` per bag; repeated names get ``_2``, ``_3``... in order."""
    seen: dict[str, int] = {}
    dirs = []
    for bag in bags:
        name = bag.stem if bag.is_file() else bag.name
        seen[name] = seen.get(name, 0) + 1
        dirs.append(out / (name if seen[name] == 1 else f"{name}_{seen[name]}"))
    return dirs


def _process_task(bag: str, out: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """One bag, in a Ray worker: the summary, or {"error": ...} (the worker never raises, so the run goes on)."""
    from seg_perception.tools.process import process_bag

    try:
        return process_bag(Path(bag), Path(out), progress=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one bad bag is reported, the others finish
        return {"error": f"{type(exc).__name__}: {exc}"}


def process_fleet(
    bags: Sequence[Path], out: Path, params_files: list[Path], seg_overrides: dict[str, Any] | None = None,
    costmap_overrides: dict[str, Any] | None = None, topics: dict[str, str] | None = None,
    address: str | None = None, workers: int = 0, force: bool = False, render_every: int = 0,
    progress: bool = True,
) -> list[BagRun]:  # fmt: skip
    """Process ``bags`` as Ray tasks into ``out/<bag name>/``; writes ``out/fleet.json``; returns one row per bag.

    Args:
        bags: bag folders (``find_bags``).
        out: output root (created).
        params_files, seg_overrides, costmap_overrides, topics, render_every: as ``process_bag``.
        address: a Ray cluster to join (``ray://HOST:10001``, ``auto``); None = start Ray here.
        workers: CPUs of the local Ray (bags processed at once); 0 = all cores. Ignored with ``address``.
        force: process bags whose output is already complete.
        progress: a progress bar over bags.
    Raises:
        ImportError: ``ray`` is not installed.
    """
    import ray
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    seg = dict(seg_overrides or {})
    gpu = str(seg.get("device", "cpu")).startswith("cuda")
    seg.setdefault("num_threads", 1)  # one CPU per task: one inference thread
    kwargs = {"params_files": params_files, "seg_overrides": seg, "costmap_overrides": costmap_overrides,
              "topics": topics, "render_every": render_every}  # fmt: skip
    rows: dict[int, BagRun] = {}
    todo: list[int] = []
    for i, (bag, dest) in enumerate(zip(bags, output_dirs(bags, out), strict=True)):
        if (dest / SUMMARY).is_file() and not force:
            rows[i] = BagRun.from_summary(bag, dest, "skipped", json.loads((dest / SUMMARY).read_text()))
        else:
            if force and dest.exists():
                shutil.rmtree(dest)
            _remove_partials(dest)
            todo.append(i)
    dests = output_dirs(bags, out)
    started = not ray.is_initialized()
    # Ray installs SIGINT/SIGTERM handlers into its core; they outlive ray.shutdown(): put the process's back after
    handlers = _signal_handlers()
    if todo and started:
        init: dict[str, Any] = {"address": address} if address else {"num_cpus": workers or os.cpu_count()}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **init)
    try:
        # a crashed worker (killed, out of memory) is not retried: the bag is reported failed, the others go on
        task = ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0, max_retries=0)(_process_task)
        pending = {task.remote(str(bags[i]), str(dests[i]), kwargs): i for i in todo}
        t0 = {ref: time.perf_counter() for ref in pending}
        with tqdm(total=len(todo), unit="bag", disable=not progress) as bar:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died: its half-written output goes too
                    _remove_partials(dests[i])
                    res = {"error": (str(exc).strip().splitlines() or [""])[0] or type(exc).__name__}
                if "error" in res:
                    rows[i] = BagRun(str(bags[i]), str(dests[i]), "failed", error=res["error"],
                                     wall_s=round(time.perf_counter() - t0[ref], 2))  # fmt: skip
                else:
                    rows[i] = BagRun.from_summary(bags[i], dests[i], "done", res)
                bar.update(1)
    finally:
        if todo and started:
            ray.shutdown()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    result = [rows[i] for i in range(len(bags))]
    (out / "fleet.json").write_text(json.dumps([asdict(r) for r in result], indent=2))
    return result


def _remove_partials(dest: Path) -> None:
    """Remove ``.NAME.partial-*`` work folders of ``dest`` left by a crashed or killed run (``process_bag``)."""
    for work in dest.parent.glob(f".{glob.escape(dest.name)}.partial-*"):
        shutil.rmtree(work, ignore_errors=True)


def _signal_handlers() -> dict[int, Any]:
    """The Python handlers of SIGINT and SIGTERM (main thread only: elsewhere they cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: h for sig in (signal.SIGINT, signal.SIGTERM) if (h := signal.getsignal(sig)) is not None}


def fleet_table(rows: Sequence[BagRun]) -> str:
    """A markdown table: bag, status, frames in/out, drops, segment / grids median [ms], wall [s], damage or error."""
    lines = ["| bag | status | frames in / out | drops | segment ms | grids ms | wall s | note |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(r.drops.items())) or "-"
        note = r.error or r.input_damage or ""
        lines.append(f"| {Path(r.bag).name} | {r.status} | {r.frames_in} / {r.frames_out} | {drops} | "
                     f"{r.stage_ms.get('segment', '-')} | {r.stage_ms.get('grids', '-')} | {r.wall_s} | {note} |")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception fleet``."""
    p.add_argument("bags", nargs="+", help="bag folders, globs, or folders of bag folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="output root: OUT/<bag name>/ per bag")
    p.add_argument("--params-file", type=Path, action="append", default=[], help="ROS 2 params YAML (repeatable)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="parameter override for both nodes")  # fmt: skip
    p.add_argument("--weights", help="weights file or folder")
    p.add_argument("--model", help="model name")
    p.add_argument("--device", help="auto | cpu | cuda[:N]: one CPU (or one GPU with cuda) per bag")
    p.add_argument("--address", help="a Ray cluster to join (ray://HOST:10001 or auto); default: Ray starts here")
    p.add_argument("--workers", type=int, default=0, help="local Ray CPUs = bags at once (default: all cores)")
    p.add_argument("--force", action="store_true", help="process bags whose output is already complete")
    p.add_argument("--render-every", type=int, default=0, help="render every N-th frame (0 = none)")


def run(args: argparse.Namespace) -> int:
    """Process the bags and print the table; status 1 when a bag failed."""
    from seg_perception.resources import config_path
    from seg_perception.tools.common import parse_overrides

    overrides = parse_overrides(args.param)
    seg: dict[str, Any] = dict(overrides)
    for key in ("weights", "model", "device"):
        if getattr(args, key):
            seg[key] = getattr(args, key)
    rows = process_fleet(find_bags(args.bags), args.output, args.params_file or [config_path("seg_perception.yaml")],
                         seg, overrides, address=args.address, workers=args.workers, force=args.force,
                         render_every=args.render_every)  # fmt: skip
    print(fleet_table(rows))
    print(f"fleet: {sum(r.status == 'done' for r in rows)} done, {sum(r.status == 'skipped' for r in rows)} "
          f"skipped, {sum(r.status == 'failed' for r in rows)} failed; {args.output / 'fleet.json'}")  # fmt: skip
    return 1 if any(r.status == "failed" for r in rows) else 0
