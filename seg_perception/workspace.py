"""The package as ROS 2 starts it: the environment of its processes, a colcon workspace, ``ros2 launch``.

``launch/seg_perception.launch.py`` runs the executables of a colcon install (``lib/seg_perception``, found
through the ament index); a ``pip install -e .`` does not make one, so tools that start the nodes (the demo, the
e2e tests) build a ``--symlink-install`` workspace of the checkout first (~2 s; the Python sources stay the
checkout's) and run the real ``ros2 launch`` against it. Used by ``tools/`` and the tests; imports no rclpy.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from seg_perception.resources import config_path

PACKAGE = "seg_perception"
LAUNCH_FILE = "seg_perception.launch.py"
#: Input remappings of the launch file's defaults and of the bags written by ``bag-from-frames``.
DEFAULT_REMAPS = {
    "image": "/camera/color/image_raw",
    "depth": "/camera/depth/image_raw",
    "camera_info": "/camera/color/camera_info",
}
#: Namespace of both nodes (the launch file's ``namespace`` default).
DEFAULT_NAMESPACE = "/seg_perception"
#: Node name -> executable, in the launch file's order (``ros2 launch`` names their output ``[<exe>-<n>]``).
NODE_EXECUTABLES = {"segmentation": "segmentation_node", "costmap": "costmap_node"}


def local_ros_env(base: Mapping[str, str] | None = None, domain_id: int | None = None) -> dict[str, str]:
    """Environment for ROS processes confined to this machine.

    Sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (Kilted ignores ROS_LOCALHOST_ONLY), Fast DDS as the RMW with
    the package's shared-memory transport profile (large images and clouds between processes), and a
    ``ROS_LOG_DIR`` in the temp dir when none is set; the interpreter's ``bin`` folder (``ros2``, ``colcon``) goes
    first on ``PATH``. ``domain_id`` isolates parallel runs.
    """
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_path("fastdds_shm_profile.xml")))
    if not env.get("ROS_LOG_DIR"):  # made only when missing: one temp folder per call otherwise
        env["ROS_LOG_DIR"] = tempfile.mkdtemp(prefix="seg_perception_roslog_")
    env.setdefault("PYTHONUNBUFFERED", "1")
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir] + [p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir])
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    return env


def package_source() -> Path:
    """The checkout this package is imported from (the folder with ``setup.py`` and ``package.xml``).

    Raises:
        FileNotFoundError: when the package is not imported from a source checkout (e.g. a wheel install).
    """
    root = Path(__file__).resolve().parents[1]
    if not ((root / "setup.py").is_file() and (root / "package.xml").is_file()):
        raise FileNotFoundError(f"{root} is not a seg_perception checkout (no setup.py / package.xml)")
    return root


def build_workspace(ws: Path, source: Path | None = None, symlink: bool = True, timeout_s: float = 300.0) -> Path:
    """``colcon build`` the package at ``source`` (default: this checkout) into ``ws/{build,install,log}``.

    Args:
        ws: workspace folder (created); a second build is incremental.
        source: folder with the package (``setup.py``, ``package.xml``).
        symlink: ``--symlink-install`` (the install links to the sources; colcon's build folder gets the egg-info,
            the sources stay untouched).
        timeout_s: longest build [s].
    Returns:
        The install folder (source its ``setup.bash``, or see ``install_env``).
    Raises:
        RuntimeError: colcon is missing or the build failed (the end of its output is in the message).
    """
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent)) or shutil.which("colcon")
    if colcon is None:
        raise RuntimeError("colcon is not installed (scripts/setup.sh installs colcon-core and colcon-ros)")
    ws = ws.resolve()  # colcon runs in ws: relative paths would nest
    ws.mkdir(parents=True, exist_ok=True)
    # --paths: exactly this package, no crawl (a checkout holds .venv/ and out/)
    cmd = [colcon, "--log-base", str(ws / "log"), "build", "--paths", str(source or package_source()),
           "--build-base", str(ws / "build"), "--install-base", str(ws / "install")]  # fmt: skip
    cmd += ["--symlink-install"] if symlink else []  # fmt: skip
    proc = subprocess.run(cmd, cwd=ws, env=local_ros_env(), capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or f"Finished <<< {PACKAGE}" not in proc.stdout:
        raise RuntimeError(f"colcon build failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return ws / "install"


def launch_command(install: Path, launch_args: Mapping[str, str] | Sequence[str] = ()) -> list[str]:
    """``bash -c '. <install>/setup.bash && exec ros2 launch seg_perception seg_perception.launch.py ARGS'``.

    ``launch_args``: ``name -> value`` or ``name:=value`` strings (``ros2 launch ... --show-args`` lists them).
    The ``exec`` makes the returned process ``ros2 launch`` itself: SIGINT to it stops the nodes cleanly.
    """
    items = [f"{k}:={v}" for k, v in launch_args.items()] if isinstance(launch_args, Mapping) else list(launch_args)
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in items)
    script = f". '{install}/setup.bash' && exec ros2 launch {PACKAGE} {LAUNCH_FILE} {quoted}"
    return ["bash", "-c", script]


def _deep_update(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _deep_update(dst[key], value)
        else:
            dst[key] = dict(value) if isinstance(value, Mapping) else value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``name:=value`` strings (``-p``) -> dict, values parsed as YAML (``true``, ``0.5``, ``[1, 2]``), as ``ros2 run
    ... -p`` does.

    Raises:
        ValueError: an item without ``:=``.
    """
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep:
            raise ValueError(f"expected name:=value, got {item!r}")
        out[name] = yaml.safe_load(value)
    return out


def param_sections(node: str) -> tuple[str, ...]:
    """The sections of a ROS 2 parameters file that apply to the node ``node`` of this package (launched in
    ``DEFAULT_NAMESPACE``), lowest priority first: ``/**``, ``/**/<node>``, ``<node>``, ``/<node>`` and the full
    name ``/seg_perception/<node>``."""
    return ("/**", f"/**/{node}", node, f"/{node}", f"{DEFAULT_NAMESPACE}/{node}")


def merged_params(files: Sequence[str | os.PathLike[str]], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """One ROS 2 parameters document for both nodes from several YAML files and ``name:=value`` overrides.

    Per node (``/**/segmentation``, ``/**/costmap``): the ``ros__parameters`` of the node's sections
    (``param_sections``) of each file in order, nested keys merged key by key (as ``--params-file`` given twice
    does), then the overrides (``parse_overrides``: values parsed as YAML, as ``-p`` does) for both
    nodes.

    Raises:
        ValueError: an override is not ``name:=value``.
    """
    parsed: dict[str, Any] = {}
    for name, value in parse_overrides(overrides).items():
        *parents, leaf = name.split(".")  # ground.height_window_m -> {"ground": {"height_window_m": ...}}
        level = parsed
        for key in parents:
            level = level.setdefault(key, {})
        level[leaf] = value
    out: dict[str, Any] = {}
    for node in NODE_EXECUTABLES:
        params: dict[str, Any] = {}
        for f in files:
            data = yaml.safe_load(Path(f).read_text()) or {}
            for key in param_sections(node):
                _deep_update(params, (data.get(key) or {}).get("ros__parameters", {}))
        _deep_update(params, parsed)
        out[f"/**/{node}"] = {"ros__parameters": params}
    return out


def write_params_file(path: Path, files: Sequence[str | os.PathLike[str]], overrides: Sequence[str] = ()) -> Path:
    """``merged_params`` written to ``path`` (the launch file's ``params_file``); returns the absolute path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merged_params(files, overrides), sort_keys=False))
    return path.resolve()


_EXIT = re.compile(r"\[(\w+)-\d+\]: process (?:has finished cleanly|has died \[pid \d+, exit code (-?\d+))")


def node_exit_codes(launch_output: str) -> dict[str, int]:
    """Exit status of each node from ``ros2 launch``'s output (``[costmap_node-2]: process has finished cleanly``
    -> 0, ``process has died [pid N, exit code C, ...]`` -> C); nodes still running are absent."""
    names = {exe: name for name, exe in NODE_EXECUTABLES.items()}
    codes = {}
    for m in _EXIT.finditer(launch_output):
        if m.group(1) in names:
            codes[names[m.group(1)]] = int(m.group(2) or 0)
    return codes


#: ``python -c`` program: SIGINT back to its default disposition, then exec argv[1:].
_DEFAULT_SIGINT_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"
)


class RosLaunch:
    """``ros2 launch seg_perception seg_perception.launch.py`` as a child process, output in a log file.

    Args:
        install: colcon install folder (``build_workspace``).
        launch_args: launch arguments (``launch_command``).
        env: environment (e.g. ``local_ros_env``).
        log: file for ros2 launch's output (the nodes' output is prefixed ``[<executable>-<n>]``).

    A context manager: ``with RosLaunch(...) as launch:`` starts it and stops it (``stop``) on the way out, also on
    an error; calling ``stop`` inside the block first (for the exit statuses) is fine.
    """

    def __init__(self, install: Path, launch_args: Mapping[str, str], env: Mapping[str, str], log: Path):
        self.cmd = launch_command(install, launch_args)
        self.env = dict(env)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RosLaunch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start ``ros2 launch`` in its own session (a Ctrl-C of ours is forwarded by ``stop``, not twice).

        SIGINT is reset to its default first: a process started in the background by a non-interactive shell (CI,
        ``cmd &``) inherits SIGINT ignored, and ros2 launch would then never see ``stop``'s SIGINT (it does not
        install a handler over an ignored signal; SIGTERM makes it exit without stopping the nodes).
        """
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGINT_EXEC, *self.cmd], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def output(self) -> str:
        """What ros2 launch printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def exited(self) -> dict[str, int]:
        """Nodes that exited so far -> exit status; ``{"launch": status}`` too when ros2 launch itself ended."""
        codes = node_exit_codes(self.output())
        if self.proc is not None and self.proc.poll() is not None:
            codes["launch"] = self.proc.returncode
        return codes

    def stop(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGINT to ros2 launch (it stops the nodes: SIGINT, then SIGTERM after its own timeout), SIGKILL of the
        whole process group after ``timeout_s``; returns each node's exit status (None: unknown) and launch's."""
        if self.proc is None:
            return {}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        codes: dict[str, int | None] = {name: None for name in NODE_EXECUTABLES}
        codes.update(node_exit_codes(self.output()))
        codes["launch"] = self.proc.returncode
        return codes
