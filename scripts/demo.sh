#!/usr/bin/env bash
# README command 1: set up, then run real KITTI frames through the two ROS 2 nodes (renders + summary in out/demo).
# Extra arguments go to `seg-perception demo` (e.g. --frames 20 --rate 0.5 -o out/demo2).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
. scripts/env.sh
out="out/demo"
rm -rf "$out/input_bag" "$out/output_bag" "$out/renders" "$out/logs"
exec seg-perception demo --data ../shared/data/kitti_2011_09_26_seq -o "$out" "$@"
