"""ROS 2 launch file: the segmentation and costmap nodes with config/*.yaml (after `colcon build`, see README).

    ros2 launch seg_perception seg_perception.launch.py \
        image:=/camera/color/image_raw depth:=/camera/aligned_depth_to_color/image_raw \
        camera_info:=/camera/color/camera_info params_file:=/path/to/my_params.yaml

The costmap node takes the camera pose from TF: the images' frame in ``base_link`` (a URDF's robot_state_publisher)
and ``odom -> base_link`` (odometry). A robot without a URDF gets its camera mount on /tf_static from the launch
arguments (``camera_mount_publisher``, this package's Python ``static_transform_publisher``):

    ros2 launch seg_perception seg_perception.launch.py publish_mount:=true \
        mount_xyz:="[0.2, 0.0, 1.1]" mount_rpy:="[0.0, 0.3, 0.0]"

Both nodes are managed (lifecycle) nodes that bring themselves up; ``autostart:=false`` leaves them unconfigured for
Nav2's lifecycle_manager (or ``ros2 lifecycle set <ns>/segmentation configure``).

``ros2 launch seg_perception seg_perception.launch.py --show-args`` lists the arguments.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

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
        DeclareLaunchArgument(
            "autostart", default_value="true",
            description="configure and activate both (managed) nodes at start; false = leave the lifecycle "
                        "transitions to Nav2's lifecycle_manager (node names segmentation, costmap)",
        ),
        DeclareLaunchArgument("image", default_value="/camera/color/image_raw", description="colour image topic"),
        DeclareLaunchArgument(
            "depth", default_value="/camera/depth/image_raw", description="depth image topic, registered to the colour"
        ),
        DeclareLaunchArgument(
            "camera_info", default_value="/camera/color/camera_info", description="CameraInfo of the colour image"
        ),
        DeclareLaunchArgument(
            "publish_mount", default_value="false",
            description="publish the camera mount on /tf_static from the mount_* arguments (robots without a URDF)",
        ),
        DeclareLaunchArgument("mount_parent", default_value="base_link", description="robot frame of the mount"),
        DeclareLaunchArgument(
            "mount_camera_link", default_value="camera_link", description='camera body frame; "" = none'
        ),
        DeclareLaunchArgument(
            "mount_optical_frame", default_value="camera_color_optical_frame",
            description="optical frame the images are stamped with",
        ),
        DeclareLaunchArgument("mount_xyz", default_value="[0.0, 0.0, 1.65]", description="camera origin [m]"),
        DeclareLaunchArgument(
            "mount_rpy", default_value="[0.0, 0.0, 0.0]",
            description="roll, pitch, yaw of the camera body frame [rad]; pitch > 0 looks down",
        ),
    ]  # fmt: skip
    ns = LaunchConfiguration("namespace")
    params = [LaunchConfiguration("params_file"), {
        "use_sim_time": LaunchConfiguration("use_sim_time"),
        "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool),
    }]  # fmt: skip
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
        remappings=[("camera_info", LaunchConfiguration("camera_info"))],  # ground projection rays
        output="screen",
    )
    mount = Node(
        package="seg_perception",
        executable="camera_mount_publisher",
        name="camera_mount_publisher",
        namespace=ns,
        parameters=[{
            "frame_id": LaunchConfiguration("mount_parent"),
            "camera_link": ParameterValue(LaunchConfiguration("mount_camera_link"), value_type=str),
            "child_frame_id": LaunchConfiguration("mount_optical_frame"),
            "translation": ParameterValue(LaunchConfiguration("mount_xyz"), value_type=list[float]),
            "rpy": ParameterValue(LaunchConfiguration("mount_rpy"), value_type=list[float]),
        }],  # fmt: skip
        condition=IfCondition(LaunchConfiguration("publish_mount")),
        output="screen",
    )
    return LaunchDescription(args + [segmentation, costmap, mount])
