#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (unit, node, end-to-end) on real data in ../shared.
# Extra arguments go to pytest (e.g. -m unit for the fast tier, -k costmap, -x).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
. scripts/env.sh
set +e
python -m pytest -p no:dash -p no:cacheprovider test "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi
exit "$status"
