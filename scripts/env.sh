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
# The ROS pieces built by scripts/ros_deps.sh live in the venv's prefix (Python modules in its site-packages):
# ros2 / ament_index find packages through AMENT_PREFIX_PATH, the C++ libraries (tf2, message typesupports) are in
# $VIRTUAL_ENV/lib. An apt ROS sourced before keeps its entries after ours.
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$VIRTUAL_ENV:"*) ;;
  *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac
case ":${LD_LIBRARY_PATH:-}:" in
  *":$VIRTUAL_ENV/lib:"*) ;;
  *) export LD_LIBRARY_PATH="$VIRTUAL_ENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
esac
unset _sp_repo
