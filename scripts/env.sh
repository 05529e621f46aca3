# Source me: the environment seg_perception's scripts, tests and demo use on this machine.
# - DDS discovery stays on this host (Kilted ignores ROS_LOCALHOST_ONLY; this is its replacement).
# - Fast DDS with the package's shared-memory transport profile (large images and clouds between processes).
# - ROS logs in a temp dir; weights from ../shared/models when that folder exists (else the user cache).
_sp_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE="$_sp_repo/config/fastdds_shm_profile.xml"
export ROS_LOG_DIR="${ROS_LOG_DIR:-$(mktemp -d -t seg_perception_roslog.XXXXXX)}"
if [ -z "${SEG_PERCEPTION_MODEL_DIR:-}" ] && [ -d "$_sp_repo/../shared/models" ]; then
  export SEG_PERCEPTION_MODEL_DIR="$(cd "$_sp_repo/../shared/models" && pwd)"
fi
# shellcheck disable=SC1091
. "${SEG_PERCEPTION_VENV:-$_sp_repo/.venv}/bin/activate"
unset _sp_repo
