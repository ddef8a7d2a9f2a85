"""The carried interface packages (interfaces/): Nav2 kilted's and tf2_msgs' types, hash for hash.

The RIHS01 hashes are Nav2 kilted's (nav2_msgs 1.4.2) and tf2_msgs'; equal hashes mean a Nav2
client (bt_navigator, nav2_simple_commander, RViz) and our nodes match types over DDS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")

HASHES = {
    "nav2_msgs/action/FollowPath":
        "RIHS01_9d95513552fb578cfb933d7e0160273911269cbdf4b348f1acb87d8a903b13cf",
    "nav2_msgs/action/NavigateToPose":
        "RIHS01_a56dba8a3234a1215e610180dc703ae25bbf406dded8b54887891c9732857eab",
    "tf2_msgs/msg/TFMessage":
        "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087",
}
REPO = Path(__file__).resolve().parents[1]
BUILD_HINT = "run `python -m nav_policy.ros.build_interfaces` (the Makefile's install step)"


def share_dir(pkg: str) -> Path:
    """share/<pkg> of an ament prefix: AMENT_PREFIX_PATH (a system ROS 2) or the venv."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in [*prefixes, sys.prefix]:
        if (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / pkg
                ).is_file():
            return Path(prefix) / "share" / pkg
    raise LookupError(f"package {pkg} not in the ament index of {[*prefixes, sys.prefix]}")


def type_description(type_name: str) -> dict:
    pkg, kind, name = type_name.split("/")
    return json.loads((share_dir(pkg) / kind / f"{name}.json").read_text())


@pytest.mark.parametrize("type_name", sorted(HASHES))
def test_installed_type_hashes_equal_nav2_kilted(type_name: str) -> None:
    try:
        desc = type_description(type_name)
    except (LookupError, OSError) as exc:
        pytest.fail(f"{type_name} is not installed: {exc}; {BUILD_HINT}")
    hashes = {h["type_name"]: h["hash_string"] for h in desc["type_hashes"]}
    assert hashes[type_name] == HASHES[type_name]


def test_types_import_and_carry_nav2_fields() -> None:
    from nav2_msgs.action import ComputePathToPose, FollowPath, NavigateToPose
    from tf2_msgs.msg import TFMessage

    g = FollowPath.Goal()
    assert (g.controller_id, g.goal_checker_id, g.progress_checker_id) == ("", "", "")
    r = FollowPath.Result()
    assert r.error_code == 0 and FollowPath.Result.NO_VALID_CONTROL == 106
    assert FollowPath.Result.TF_ERROR == 102 and FollowPath.Result.INVALID_PATH == 103
    assert {"distance_to_goal", "speed"} <= set(FollowPath.Feedback.get_fields_and_field_types())
    assert NavigateToPose.Result.TF_ERROR == 9002
    assert ComputePathToPose.Result.NO_VALID_PATH == 208
    assert TFMessage.get_fields_and_field_types() == {
        "transforms": "sequence<geometry_msgs/TransformStamped>"}


def test_tfmessage_hash_over_dds() -> None:
    """A TFMessage publisher's endpoint info (what DDS peers see) carries the same hash."""
    from rclpy.signals import SignalHandlerOptions
    from tf2_msgs.msg import TFMessage

    ctx = rclpy.Context()
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = rclpy.create_node("hash_probe", context=ctx)
        node.create_publisher(TFMessage, "/tf_hash_probe", 1)
        infos = node.get_publishers_info_by_topic("/tf_hash_probe")
        assert len(infos) == 1
        assert str(infos[0].topic_type_hash) == HASHES["tf2_msgs/msg/TFMessage"]
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_carried_definitions_are_the_installed_ones() -> None:
    """interfaces/ is what got built (the build copies each .action/.msg into share/)."""
    for rel in ("nav2_msgs/action/FollowPath.action", "nav2_msgs/action/NavigateToPose.action",
                "nav2_msgs/action/ComputePathToPose.action", "tf2_msgs/msg/TFMessage.msg"):
        pkg, rest = rel.split("/", 1)
        installed = share_dir(pkg) / rest
        assert installed.read_text() == (REPO / "interfaces" / rel).read_text(), rel
    for lic in ("nav2_msgs/LICENSE", "tf2_msgs/LICENSE"):
        assert (REPO / "interfaces" / lic).is_file()


def test_build_is_idempotent() -> None:
    out = subprocess.run([sys.executable, "-m", "nav_policy.ros.build_interfaces"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "nothing to build" in out.stderr
