"""Fleet processing on Ray (issue 10 item 5): real kitchen and KITTI bags plus one broken bag as local Ray tasks;
the broken one is reported and the others finish; a second run resumes without redoing the finished bags."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import pytest

from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.tools.fleet import find_bags, fleet_table, process_fleet

FILES = [config_path("seg_perception.yaml")]


@pytest.fixture(scope="module")
def bags(tmp_path_factory, kitchen_dir, kitti_dir) -> Path:  # noqa: ANN001
    root = tmp_path_factory.mktemp("fleet") / "bags"
    write_bag(open_sequence(kitchen_dir), root / "kitchen_a", limit=3, progress=False)
    write_bag(open_sequence(kitchen_dir), root / "kitchen_b", start=100, limit=3, progress=False)
    write_bag(open_sequence(kitti_dir), root / "kitti", limit=3, progress=False)
    broken = root / "broken"
    broken.mkdir()
    (broken / "broken.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 100)  # a recording that never got a message
    return root


def test_ray_runs_every_bag_reports_the_broken_one_and_resumes(bags: Path, tmp_path: Path, model_dir: Path) -> None:
    found = find_bags([bags])
    assert [p.name for p in found] == ["broken", "kitchen_a", "kitchen_b", "kitti"]
    seg = {"weights": str(model_dir), "device": "cpu", "model": "espnetv2_pascal", "input_width": 256,
           "input_height": 192}  # fmt: skip
    out = tmp_path / "out"
    cost = {"global_frame": ""}  # KITTI has only its camera mount on TF: robot-centred grids for every bag
    rows = {Path(r.bag).name: r for r in process_fleet(found, out, FILES, seg, cost, workers=2, progress=False)}
    assert rows["broken"].status == "failed" and "no message could be read" in rows["broken"].error
    for name in ("kitchen_a", "kitchen_b", "kitti"):
        assert rows[name].status == "done", rows[name]
        assert rows[name].frames_in == 3 and rows[name].frames_out >= 2
        assert json.loads((out / name / "summary.json").read_text())["frames_out"] == rows[name].frames_out
    assert not (out / "broken").exists()  # a failed bag leaves no output folder
    table = fleet_table(list(rows.values()))
    assert "| kitti | done | 3 /" in table and "| broken | failed |" in table
    # a second run: the finished bags are skipped, the broken one is tried again (after its leftovers of a killed
    # run are removed; a skipped bag's are not touched)
    (out / ".broken.partial-killed").mkdir()
    (out / ".kitti.partial-killed").mkdir()
    again = {Path(r.bag).name: r for r in process_fleet(found, out, FILES, seg, cost, workers=2, progress=False)}
    assert {n: r.status for n, r in again.items()} == {"broken": "failed", "kitchen_a": "skipped",
                                                       "kitchen_b": "skipped", "kitti": "skipped"}  # fmt: skip
    assert again["kitti"].frames_out == rows["kitti"].frames_out
    assert len(json.loads((out / "fleet.json").read_text())) == 4
    assert not (out / ".broken.partial-killed").exists() and (out / ".kitti.partial-killed").is_dir()


def test_a_killed_worker_fails_its_bag_only_and_is_not_retried(bags: Path, tmp_path: Path, model_dir: Path) -> None:
    """A worker killed mid-bag (SIGKILL: out of memory, a node lost) fails that bag; the run still writes fleet.json
    and leaves no half-written output."""
    import psutil

    found = [b for b in find_bags([bags]) if b.name in ("kitchen_a", "kitti")]
    seg = {"weights": str(model_dir), "device": "cpu", "model": "espnetv2_pascal", "input_width": 256,
           "input_height": 192}  # fmt: skip
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_first_task() -> None:  # the first worker that runs a bag (Ray names it ray::_process_task)
        deadline = time.monotonic() + 120.0
        while not killed and time.monotonic() < deadline:
            for p in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if "ray::_process_task" in " ".join(p.cmdline()) and any(out.glob(".*.partial-*")):
                        p.kill()
                        killed.append(p.pid)
                        return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_task)
    killer.start()
    rows = process_fleet(found, out, FILES, seg, {"global_frame": ""}, workers=1, progress=False)
    killer.join()
    assert killed
    status = {Path(r.bag).name: r.status for r in rows}
    assert sorted(status.values()) == ["done", "failed"], rows  # the killed bag is not retried, the other runs
    (failed,) = [r for r in rows if r.status == "failed"]
    assert failed.error and not Path(failed.out).exists() and not list(out.glob(".*.partial-*"))
    assert len(json.loads((out / "fleet.json").read_text())) == 2
