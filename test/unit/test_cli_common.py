"""The helpers every subcommand shares (``tools.common``) and the one argument parser (``cli``)."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from seg_perception import cli
from seg_perception.resources import config_path
from seg_perception.tools.common import ImageSize, StopFlag, load_node_params, parse_overrides, parse_size
from seg_perception.workspace import merged_params

TOOLS = Path(__file__).resolve().parents[2] / "seg_perception" / "tools"


def test_parse_size_is_width_by_height_on_the_command_line_and_height_first_in_code() -> None:
    assert parse_size("640x480") == ImageSize(height=480, width=640)
    assert parse_size("1242X375").hw == (375, 1242)
    for bad in ("640", "640x", "x480", "0x480", "640x-1", "6.5x4"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


def test_param_files_merge_like_a_node_later_files_and_overrides_win(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        "/**:\n  ros__parameters:\n    use_sim_time: false\n"
        "/**/costmap:\n  ros__parameters:\n    resolution: 0.1\n"
        "    fusion:\n      hit_log_odds: 0.85\n      miss_log_odds: -0.4\n"
        "    layers: [drivable, obstacle]\n"
        "segmentation:\n  ros__parameters:\n    model: espnetv2_city\n"
    )
    extra = tmp_path / "extra.yaml"
    extra.write_text("/costmap:\n  ros__parameters:\n    fusion:\n      hit_log_odds: 0.9\n")
    only_seg = tmp_path / "only_seg.yaml"
    only_seg.write_text("/**/segmentation:\n  ros__parameters:\n    fp16: true\n")

    costmap = load_node_params([base, extra, only_seg], "costmap", {"resolution": 0.05})
    # nested keys become dotted names (as rclpy declares them); the second file changes one of them only
    assert costmap == {"use_sim_time": False, "resolution": 0.05, "fusion.hit_log_odds": 0.9,
                       "fusion.miss_log_odds": -0.4, "layers": ["drivable", "obstacle"]}  # fmt: skip
    assert load_node_params([base, only_seg], "segmentation") == {
        "use_sim_time": False, "model": "espnetv2_city", "fp16": True}  # fmt: skip
    with pytest.raises(FileNotFoundError):
        load_node_params([tmp_path / "missing.yaml"], "costmap")


def test_a_section_with_the_nodes_full_name_applies_to_it_offline_and_in_the_launch_file(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("/**/costmap:\n  ros__parameters:\n    resolution: 0.1\n    fusion:\n      hit_log_odds: 0.85\n")
    full = tmp_path / "full.yaml"  # as `ros2 param dump /seg_perception/costmap` writes it
    full.write_text("/seg_perception/costmap:\n  ros__parameters:\n    resolution: 0.2\n"
                    "/seg_perception/segmentation:\n  ros__parameters:\n    fp16: true\n")  # fmt: skip
    assert load_node_params([base, full], "costmap") == {"resolution": 0.2, "fusion.hit_log_odds": 0.85}
    assert load_node_params([full], "segmentation") == {"fp16": True}
    merged = merged_params([base, full], ["fusion.miss_log_odds:=-0.3"])
    assert merged["/**/costmap"]["ros__parameters"] == {"resolution": 0.2,
                                                        "fusion": {"hit_log_odds": 0.85, "miss_log_odds": -0.3}}
    assert merged["/**/segmentation"]["ros__parameters"] == {"fp16": True, "fusion": {"miss_log_odds": -0.3}}
    assert load_node_params([full], "other_node") == {}  # another node's full name does not apply


def test_package_config_has_parameters_for_both_nodes() -> None:
    seg = load_node_params([config_path("seg_perception.yaml")], "segmentation")
    costmap = load_node_params([config_path("seg_perception.yaml")], "costmap")
    assert isinstance(seg["model"], str) and seg["model"]
    assert isinstance(costmap["resolution"], float) and costmap["resolution"] > 0
    assert not any(isinstance(v, dict) for v in costmap.values())  # flattened: fusion.hit_log_odds, ground.max_tilt_deg


def test_parse_overrides_reads_values_as_yaml() -> None:
    assert parse_overrides(["use_fusion:=true", "fusion.hit_log_odds:=0.7", "layers:=[a, b]",
                            "model:=cgnet_camvid"]) == {
        "use_fusion": True, "fusion.hit_log_odds": 0.7, "layers": ["a", "b"], "model": "cgnet_camvid"}  # fmt: skip
    with pytest.raises(ValueError, match="name:=value"):
        parse_overrides(["use_fusion=true"])


def test_stop_flag_turns_sigterm_into_a_flag_and_restores_the_handler() -> None:
    """In a process of its own: a real SIGTERM must not reach handlers other tests' libraries left in this one."""
    code = textwrap.dedent("""
        import os, signal
        from seg_perception.tools.common import StopFlag
        before = signal.getsignal(signal.SIGTERM)
        with StopFlag() as stop:
            assert not stop()
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.event.wait(5.0) and stop()
        assert signal.getsignal(signal.SIGTERM) is before
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def test_stop_flag_outside_the_main_thread_installs_nothing() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen: list[bool] = []

    def body() -> None:
        with StopFlag() as stop:
            seen.append(signal.getsignal(signal.SIGINT) is before)
            stop.set()
            seen.append(stop())

    t = threading.Thread(target=body)
    t.start()
    t.join(5.0)
    assert seen == [True, True]


def test_cli_is_the_only_argument_parser_of_the_tools() -> None:
    parsers = sorted(p.name for p in TOOLS.glob("*.py") if "ArgumentParser(" in p.read_text())
    assert parsers == []
    assert set(cli.COMMANDS) >= {"eval", "bench", "process", "demo", "quantize", "stability", "replay", "record"}


def test_cli_reports_a_bad_size_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["quantize", "cgnet_camvid", "--calibration", ".", "--input-size", "640"])
    assert exc.value.code == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def test_cli_reports_a_malformed_remap_as_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["process", str(tmp_path / "bag"), "-o", str(tmp_path / "out"), "--remap", "image"]) == 2
    assert "remap must look like /from:=/to, got 'image'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_staged_output_renames_on_success_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    from seg_perception.tools.common import staged_output

    with staged_output(tmp_path / "ok") as work:
        work.mkdir()
        (work / "summary.json").write_text("{}")
        assert not (tmp_path / "ok").exists()  # not there before the block completes
    assert (tmp_path / "ok" / "summary.json").read_text() == "{}"
    with pytest.raises(RuntimeError, match="interrupted"), staged_output(tmp_path / "bad") as work:
        work.mkdir()
        (work / "half.mcap").write_bytes(b"x" * 10)
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]  # neither bad/ nor a partial folder
    with pytest.raises(ValueError, match="not empty"), staged_output(tmp_path / "ok"):
        pass
