"""nav_policy.ros.tf's transform buffer without a ROS graph: composition, inversion, the frame
tree, interpolation and the errors a lookup gives (the nodes' TF_ERROR messages)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from nav_policy.ros.follow_path import remaining_length
from nav_policy.ros.tf import Transform, TransformBuffer, TransformError


def test_compose_inverse_and_apply() -> None:
    a = Transform.from_2d(1.0, 2.0, math.pi / 2)
    b = Transform.from_2d(0.5, 0.0, 0.3)
    p = np.array([[1.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose((a * b).apply(p), a.apply(b.apply(p)), atol=1e-12)
    np.testing.assert_allclose((a * a.inverse()).apply(p), p, atol=1e-12)
    np.testing.assert_allclose(a.apply(np.array([[1.0, 0.0]])), [[1.0, 3.0]], atol=1e-12)
    assert (a * b).yaw == pytest.approx(math.pi / 2 + 0.3)
    x, y, yaw = a.apply_pose_2d(1.0, 0.0, 3.0)
    assert (x, y, yaw) == pytest.approx((1.0, 3.0, 3.0 + math.pi / 2 - 2 * math.pi))
    lidar = Transform((0.1, 0.0, 0.22))  # 3D: a point 1 m ahead of the lidar, in base_link
    np.testing.assert_allclose(lidar.apply(np.array([[1.0, 0.0, 0.0]])), [[1.1, 0.0, 0.22]])


def tree() -> TransformBuffer:
    buf = TransformBuffer(extrapolation=0.2)
    buf.set_transform("map", "odom", 0.0, Transform.from_2d(1.0, -1.0, 0.5), static=True)
    buf.set_transform("odom", "base_link", 1.0, Transform.from_2d(0.0, 0.0, 0.0))
    buf.set_transform("odom", "base_link", 2.0, Transform.from_2d(2.0, 0.0, 1.0))
    buf.set_transform("base_link", "laser", 0.0, Transform((0.0, 0.0, 0.2)), static=True)
    return buf


def test_lookup_through_the_tree_latest_and_interpolated() -> None:
    buf = tree()
    m_l = buf.lookup("map", "laser")  # map <- odom <- base_link <- laser, latest
    expect = Transform.from_2d(1.0, -1.0, 0.5) * Transform.from_2d(2.0, 0.0, 1.0) * \
        Transform((0.0, 0.0, 0.2))
    assert m_l.t == pytest.approx(expect.t) and m_l.yaw == pytest.approx(1.5)
    mid = buf.lookup("odom", "base_link", 1.5)  # linear / slerp halfway
    assert mid.t[0] == pytest.approx(1.0) and mid.yaw == pytest.approx(0.5)
    back = buf.lookup("laser", "map")  # the other way round is the inverse
    np.testing.assert_allclose((back * m_l).apply(np.array([[3.0, 4.0]])), [[3.0, 4.0]],
                               atol=1e-9)
    assert buf.lookup("odom", "odom") == Transform()


@pytest.mark.parametrize("target,source,stamp,needle", [
    ("odom", "nowhere", None, "frame 'nowhere' does not exist"),
    ("odom", "base_link", 2.5, "extrapolate 0.500 s into the future"),
    ("odom", "base_link", 0.5, "extrapolate 0.500 s into the past"),
])
def test_lookup_errors_name_the_problem(target: str, source: str, stamp: float | None,
                                        needle: str) -> None:
    with pytest.raises(TransformError, match=needle):
        tree().lookup(target, source, stamp)


def test_disconnected_trees_and_bad_messages() -> None:
    buf = tree()
    buf.set_transform("world", "other", 0.0, Transform(), static=True)
    with pytest.raises(TransformError, match="not connected"):
        buf.lookup("map", "other")
    with pytest.raises(TransformError, match="bad transform"):
        buf.set_transform("a", "a", 0.0, Transform())
    stamp = SimpleNamespace(sec=3, nanosec=0)
    bad = SimpleNamespace(header=SimpleNamespace(stamp=stamp, frame_id="odom"),
                          child_frame_id="base_link",
                          transform=SimpleNamespace(
                              translation=SimpleNamespace(x=0.0, y=0.0, z=0.0),
                              rotation=SimpleNamespace(x=0.0, y=0.0, z=0.0, w=0.0)))
    buf.add_message(SimpleNamespace(transforms=[bad]))  # a zero quaternion is skipped
    assert buf.lookup("odom", "base_link").t[0] == pytest.approx(2.0)


def test_time_going_back_restarts_the_series() -> None:
    buf = tree()
    buf.set_transform("odom", "base_link", 0.1, Transform.from_2d(-1.0, 0.0, 0.0))
    assert buf.lookup("odom", "base_link").t[0] == pytest.approx(-1.0)


def test_remaining_path_length() -> None:
    path = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert remaining_length(path, 0.0, 0.0) == pytest.approx(2.0)
    assert remaining_length(path, 1.0, 0.1) == pytest.approx(1.1)  # 0.1 to (1, 0), then 1
    assert remaining_length(np.zeros((0, 2)), 1.0, 1.0) == 0.0
