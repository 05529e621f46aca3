"""ROS 2 launch file: the segmentation and costmap nodes with config/*.yaml (after `colcon build`, see README).

    ros2 launch seg_perception seg_perception.launch.py \
        image:=/camera/color/image_raw depth:=/camera/aligned_depth_to_color/image_raw \
        camera_info:=/camera/color/camera_info params_file:=/path/to/my_params.yaml

``ros2 launch seg_perception seg_perception.launch.py --show-args`` lists the arguments.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    """Both nodes in one namespace; inputs remapped from launch arguments."""
    share = get_package_share_directory("seg_perception")
    default_params = os.path.join(share, "config", "seg_perception.yaml")
    args = [
        DeclareLaunchArgument("namespace", default_value="seg_perception", description="namespace of both nodes"),
        DeclareLaunchArgument(
            "params_file", default_value=default_params, description="ROS 2 parameters YAML for both nodes"
        ),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false", description="use /clock (true when replaying a bag with --clock)"
        ),
        DeclareLaunchArgument("image", default_value="/camera/color/image_raw", description="colour image topic"),
        DeclareLaunchArgument(
            "depth", default_value="/camera/depth/image_raw", description="depth image topic, registered to the colour"
        ),
        DeclareLaunchArgument(
            "camera_info", default_value="/camera/color/camera_info", description="CameraInfo of the colour image"
        ),
    ]
    ns = LaunchConfiguration("namespace")
    params = [LaunchConfiguration("params_file"), {"use_sim_time": LaunchConfiguration("use_sim_time")}]
    segmentation = Node(
        package="seg_perception",
        executable="segmentation_node",
        name="segmentation",
        namespace=ns,
        parameters=params,
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("depth", LaunchConfiguration("depth")),
            ("camera_info", LaunchConfiguration("camera_info")),
        ],
        output="screen",
    )
    costmap = Node(
        package="seg_perception",
        executable="costmap_node",
        name="costmap",
        namespace=ns,
        parameters=params,
        output="screen",
    )
    return LaunchDescription(args + [segmentation, costmap])
