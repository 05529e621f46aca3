#!/usr/bin/env bash
# Build and install the ROS 2 Kilted pieces that PyPI lacks (tf2, launch, ros2cli, message_filters, vision_msgs,
# diagnostic_updater, ...) into the venv's own prefix, from upstream source tarballs. Called by scripts/setup.sh.
#
#   SEG_PERCEPTION_VENV      the venv (default .venv); its prefix receives everything (lib/, share/, site-packages)
#   SEG_PERCEPTION_ROS_SRC   folder with the source tarballs (default ../shared/ros_src; its README names the
#                            upstream repositories and commits, the same sources on a machine with internet)
#
# Idempotent: cached by a stamp of the tarballs, this script and the pinned ROS wheels. Nothing is built where an
# apt ROS install (e.g. /opt/ros/kilted sourced) already provides `ros2` and tf2_ros. The build wheels (ament_cmake,
# rosidl generators) and the pure-Python dependencies are pinned in requirements.txt, installed by setup.sh first.
set -euo pipefail
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(cd "${SEG_PERCEPTION_VENV:-$repo/.venv}" && pwd)"
src="${SEG_PERCEPTION_ROS_SRC:-$repo/../shared/ros_src}"
py="$venv/bin/python"
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# 1. An apt ROS install that already has the CLI and tf2_ros: use it, build nothing.
ros2_bin="$(command -v ros2 || true)"
if [ -n "$ros2_bin" ] && [ "${ros2_bin#"$venv"/}" = "$ros2_bin" ]; then
  tf2_file="$("$py" -c 'import tf2_ros; print(tf2_ros.__file__)' 2>/dev/null || true)"
  if [ -n "$tf2_file" ] && [ "${tf2_file#"$venv"/}" = "$tf2_file" ]; then
    echo "[ros_deps] ROS found at $(dirname "$(dirname "$ros2_bin")") (ros2 + tf2_ros): nothing to build"
    exit 0
  fi
fi

# 2. Cached: same tarballs, script and ROS wheels, and the modules import.
tarballs=(geometry2 rcl_interfaces vision_msgs launch launch_ros ros2cli rosidl_runtime_py message_filters diagnostics)
for t in "${tarballs[@]}"; do
  [ -f "$src/$t.tar.gz" ] || { echo "[ros_deps] missing $src/$t.tar.gz (set SEG_PERCEPTION_ROS_SRC)" >&2; exit 1; }
done
stamp="$venv/.seg_perception_ros_deps"
# (the pinned ROS wheels count too: the C++ pieces link against them)
want="$( (cd "$src" && sha256sum "${tarballs[@]/%/.tar.gz}"; sha256sum "$self" | cut -d' ' -f1
  grep -E '^ros-' "$repo/requirements.txt") | sha256sum | cut -d' ' -f1)"
check=(import tf2_ros, tf2_py, tf2_msgs.msg, tf2_geometry_msgs, launch, launch_ros, launch_testing, message_filters,
  diagnostic_updater, vision_msgs.msg, composition_interfaces.srv, rosidl_runtime_py, ros2cli)
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && "$py" -c "${check[*]}" 2>/dev/null; then
  exit 0
fi

t0=$SECONDS
echo "[ros_deps] building tf2, launch, ros2cli, message_filters, vision_msgs, diagnostic_updater from $src (~3 min)"
work="$venv/.ros_build"
rm -rf "$work"
mkdir -p "$work/src" "$work/log"
for t in "${tarballs[@]}"; do mkdir -p "$work/src/$t" && tar xzf "$src/$t.tar.gz" -C "$work/src/$t"; done
log="$work/log/build.log"
fail() { wait || true; echo "[ros_deps] FAILED: $1 (log: $log)" >&2; tail -n 30 "$log" >&2; exit 1; }

# 3. Correct the one defect of the PyPI message wheels: their rosidl_generator_py cmake exports name the wheel
#    builder's Python and numpy include folders (/opt/python/cp311-cp311/...); point them at this machine's.
py_inc="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$py" -c 'import numpy; print(numpy.get_include())')"
[ -f "$py_inc/Python.h" ] || fail "Python.h not in $py_inc (apt-get install python3.11-dev)"
for f in "$venv"/share/*/cmake/export_*__rosidl_generator_pyExport.cmake; do
  grep -q /opt/python/cp311-cp311 "$f" || continue
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g" "$f"
done

# 4. Pure-Python packages with a setup.py (their ament index entries and the `ros2` entry point come with them),
#    installed in the background while CMake builds.
s="$work/src"
(
  t=$SECONDS
  "$py" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    "$s/geometry2/tf2_ros_py" "$s/rosidl_runtime_py" "$s/message_filters" \
    "$s/launch/launch" "$s/launch/launch_xml" "$s/launch/launch_yaml" "$s/launch/launch_testing" \
    "$s/launch/launch_pytest" "$s/launch_ros/launch_ros" "$s/launch_ros/ros2launch" \
    "$s/launch_ros/launch_testing_ros" "$s/ros2cli/ros2cli" "$s/ros2cli/ros2topic" "$s/ros2cli/ros2param" \
    "$s/ros2cli/ros2node" "$s/ros2cli/ros2run" "$s/ros2cli/ros2pkg" "$s/ros2cli/ros2interface" \
    "$s/ros2cli/ros2service" "$s/ros2cli/ros2lifecycle"
  echo "[ros_deps] pip install: $((SECONDS - t)) s"
) >"$work/log/pip.log" 2>&1 &
pip_pid=$!

# 5. CMake packages (messages, tf2 C++, tf2_py C extension), installed into the venv prefix.
cmake_pkg() {  # name source-folder
  local b="$work/build/$1" t=$SECONDS
  mkdir -p "$b"
  { AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" cmake -S "$2" -B "$b" -DCMAKE_INSTALL_PREFIX="$venv" \
      -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
      && cmake --build "$b" -j "$(nproc)" && cmake --install "$b"; } >>"$log" 2>&1 || fail "cmake $1"
  echo "[ros_deps] $1: $((SECONDS - t)) s" >>"$log"
}
cmake_pkg tf2_msgs "$s/geometry2/tf2_msgs"
cmake_pkg composition_interfaces "$s/rcl_interfaces/composition_interfaces"
cmake_pkg vision_msgs "$s/vision_msgs/vision_msgs"
cmake_pkg tf2 "$s/geometry2/tf2"
cmake_pkg tf2_py "$s/geometry2/tf2_py"
wait "$pip_pid" || { log="$work/log/pip.log"; fail "pip install of the pure-Python packages"; }
cat "$work/log/pip.log" >>"$log"

# 6. Python halves of C++ packages whose C++ half needs rclcpp (not on PyPI): install the Python package and the
#    ament index entry, as their ament_python_install_package() would. (tf2_sensor_msgs also needs sensor_msgs_py.)
py_half() {  # name python-package-folder package.xml
  rm -rf "${site:?}/$1"
  cp -r "$2" "$site/$1"
  mkdir -p "$venv/share/$1" "$venv/share/ament_index/resource_index/packages"
  cp "$3" "$venv/share/$1/package.xml"
  : >"$venv/share/ament_index/resource_index/packages/$1"
}
py_half tf2_geometry_msgs "$s/geometry2/tf2_geometry_msgs/src/tf2_geometry_msgs" \
  "$s/geometry2/tf2_geometry_msgs/package.xml"
py_half tf2_sensor_msgs "$s/geometry2/tf2_sensor_msgs/tf2_sensor_msgs" "$s/geometry2/tf2_sensor_msgs/package.xml"
py_half diagnostic_updater "$s/diagnostics/diagnostic_updater/diagnostic_updater" \
  "$s/diagnostics/diagnostic_updater/package.xml"
# message_filters' setup.py installs the module but no index entry.
mkdir -p "$venv/share/message_filters" && cp "$s/message_filters/package.xml" "$venv/share/message_filters/"
: >"$venv/share/ament_index/resource_index/packages/message_filters"

"$py" -m compileall -q "$site/tf2_geometry_msgs" "$site/tf2_sensor_msgs" "$site/diagnostic_updater" >/dev/null || true
"$py" -c "${check[*]}" >>"$log" 2>&1 || fail "import check"
rm -rf "$work/build" "$work/src"
echo "$want" >"$stamp"
echo "[ros_deps] done in $((SECONDS - t0)) s"
