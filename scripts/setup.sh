#!/usr/bin/env bash
# Install everything seg_perception needs on a fresh Debian 12 / Python 3.11 machine. Idempotent: a second run
# only checks. Creates .venv (override with SEG_PERCEPTION_VENV) with the pinned requirements and the package.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# Debian packages: cmake, make, g++ and the Python headers build the ROS pieces that PyPI lacks
# (scripts/ros_deps.sh); python3.11-venv gives `python3 -m venv` its ensurepip.
apt_pkgs=(cmake make g++ python3.11-dev python3.11-venv)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "[setup] apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv="${SEG_PERCEPTION_VENV:-$repo/.venv}"
[ -x "$venv/bin/python" ] || { echo "[setup] creating $venv"; python3 -m venv "$venv"; }
stamp="$venv/.seg_perception_requirements"
want="$(sha256sum requirements.txt setup.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] pip install -r requirements.txt (torch comes from this machine's local wheel cache; ~2 min)"
  # (this machine's pip config names local wheel folders that may not exist: drop pip's warnings about them)
  quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
  quiet "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  quiet "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi
"$venv/bin/python" -c "import rclpy, torch, openvino, rosbags, cv2, scipy, seg_perception" \
  || { echo "[setup] import check failed" >&2; rm -f "$stamp"; exit 1; }
# tf2, launch, ros2cli, message_filters, vision_msgs, diagnostic_updater: built from source once (~4 min), cached.
SEG_PERCEPTION_VENV="$venv" bash scripts/ros_deps.sh
echo "[setup] ok: $venv"
