"""ament_python package setup: works with `colcon build` on a ROS machine and `pip install -e .` elsewhere."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "seg_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml") + glob("config/*.rviz")),
        (f"share/{PACKAGE}/config/ontology", glob("config/ontology/*.yaml")),
        (f"share/{PACKAGE}/config/class_maps", glob("config/class_maps/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="seg_perception developers",
    maintainer_email="dev@seg-perception.invalid",
    description="Semantic segmentation, semantic point clouds and Nav2-style costmaps for ROS 2.",
    license="MIT",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "segmentation_node = seg_perception.ros.segmentation_node:main",
            "costmap_node = seg_perception.ros.costmap_node:main",
            "camera_mount_publisher = seg_perception.ros.camera_mount:main",
            "seg-perception = seg_perception.cli:main",
        ],
    },
)
