"""TF for the nodes: a small transform buffer and its listener, for installs without tf2_ros.

The pip-only ROS 2 kilted wheels ship neither tf2 nor tf2_ros (C++ libraries with a Python
binding); nav_policy builds only tf2_msgs (build_interfaces.py). So this module carries what
the nodes need from tf2_ros, in pure Python:

- `Transform` (translation + unit quaternion x, y, z, w): compose, inverse, apply to points;
- `TransformBuffer`: a frame tree fed with geometry_msgs/TransformStamped fields, static
  (/tf_static) and timed (/tf) edges, lookups at the latest common data or at a time
  (linear/slerp interpolation, no extrapolation beyond `extrapolation` s), with a TransformError
  naming the frames and what is missing;
- `TfClient(node)`: subscribes /tf and /tf_static (tf2_ros' QoS) and answers lookups; where
  tf2_ros imports (a system ROS 2) it uses tf2_ros' Buffer and TransformListener instead.

Lookups never block: a node that needs a transform retries on its next tick and gives up with
a clear error after its own timeout (the FollowPath and NavigateToPose TF_ERROR results).
Everything above TfClient is importable without ROS.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nav_policy.errors import NavPolicyError


class TransformError(NavPolicyError):
    """A transform between two frames is not (yet) available."""


@dataclass(frozen=True)
class Transform:
    """Maps points in the child frame to the parent frame: p_parent = R(q) p_child + t."""

    t: tuple[float, float, float] = (0.0, 0.0, 0.0)
    q: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # x, y, z, w

    @staticmethod
    def from_2d(x: float, y: float, yaw: float) -> Transform:
        return Transform((float(x), float(y), 0.0), (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)))

    @staticmethod
    def from_msg(tf: Any) -> Transform:
        """geometry_msgs/Transform (or anything with translation and rotation fields)."""
        tr, r = tf.translation, tf.rotation
        return Transform((float(tr.x), float(tr.y), float(tr.z)),
                         _normalize((float(r.x), float(r.y), float(r.z), float(r.w))))

    @property
    def yaw(self) -> float:
        x, y, z, w = self.q
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))

    def __mul__(self, other: Transform) -> Transform:
        """self * other: first other, then self (parent<-mid * mid<-child = parent<-child)."""
        t = np.asarray(self.t) + _rotate(self.q, np.asarray(other.t))
        return Transform(tuple(float(v) for v in t), _qmul(self.q, other.q))  # type: ignore[arg-type]

    def inverse(self) -> Transform:
        qi = (-self.q[0], -self.q[1], -self.q[2], self.q[3])
        t = -_rotate(qi, np.asarray(self.t))
        return Transform(tuple(float(v) for v in t), qi)  # type: ignore[arg-type]

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) or (N, 3) points in the child frame -> the parent frame (z = 0 for 2D)."""
        pts = np.asarray(points, dtype=np.float64)
        two_d = pts.ndim == 2 and pts.shape[1] == 2
        p3 = np.c_[pts, np.zeros(len(pts))] if two_d else pts.reshape(-1, 3)
        out = _rotate_many(self.q, p3) + np.asarray(self.t)
        return out[:, :2] if two_d else out

    def apply_pose_2d(self, x: float, y: float, yaw: float) -> tuple[float, float, float]:
        px, py = self.apply(np.array([[x, y]]))[0]
        return float(px), float(py), _wrap(yaw + self.yaw)


def _normalize(q: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    n = math.sqrt(sum(c * c for c in q))
    if not math.isfinite(n) or n < 1e-9:
        raise TransformError(f"quaternion {q} is not a rotation")
    return (q[0] / n, q[1] / n, q[2] / n, q[3] / n)


def _wrap(a: float) -> float:
    return math.atan2(math.sin(a), math.cos(a))


def _qmul(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


def _rotate(q: tuple[float, ...], v: np.ndarray) -> np.ndarray:
    return _rotate_many(q, v.reshape(1, 3))[0]


def _rotate_many(q: tuple[float, ...], v: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    u = np.array([x, y, z])
    uv = np.cross(u, v)
    return v + 2.0 * (w * uv + np.cross(u, uv))


def _interpolate(a: Transform, b: Transform, s: float) -> Transform:
    t = tuple(float(p + s * (q - p)) for p, q in zip(a.t, b.t))
    qa, qb = np.asarray(a.q), np.asarray(b.q)
    dot = float(qa @ qb)
    if dot < 0.0:
        qb, dot = -qb, -dot
    if dot > 0.9995:
        q = qa + s * (qb - qa)
    else:
        th = math.acos(min(dot, 1.0))
        q = (math.sin((1 - s) * th) * qa + math.sin(s * th) * qb) / math.sin(th)
    return Transform(t, _normalize(tuple(float(c) for c in q)))  # type: ignore[arg-type]


class _Edge:
    """child -> parent: a static transform or a time series of them."""

    def __init__(self, parent: str, static: bool, cache_time: float) -> None:
        self.parent = parent
        self.static = static
        self.cache_time = cache_time
        self.stamps: list[float] = []
        self.values: list[Transform] = []

    def add(self, stamp: float, tf: Transform) -> None:
        if self.static:
            self.stamps, self.values = [stamp], [tf]
            return
        if self.stamps and stamp < self.stamps[-1] - self.cache_time:
            return  # far older than what we have
        if self.stamps and stamp < self.stamps[0]:  # time went back (a sim reset): start over
            self.stamps, self.values = [], []
        k = bisect.bisect_right(self.stamps, stamp)
        if k and self.stamps[k - 1] == stamp:
            self.values[k - 1] = tf
        else:
            self.stamps.insert(k, stamp)
            self.values.insert(k, tf)
        cut = bisect.bisect_left(self.stamps, self.stamps[-1] - self.cache_time)
        if cut:
            del self.stamps[:cut], self.values[:cut]

    def at(self, stamp: float | None, extrapolation: float) -> Transform:
        if self.static or stamp is None:
            return self.values[-1]
        s = self.stamps
        if stamp >= s[-1]:
            if stamp - s[-1] > extrapolation:
                raise TransformError(f"would extrapolate {stamp - s[-1]:.3f} s into the future")
            return self.values[-1]
        if stamp <= s[0]:
            if s[0] - stamp > extrapolation:
                raise TransformError(f"would extrapolate {s[0] - stamp:.3f} s into the past")
            return self.values[0]
        k = bisect.bisect_right(s, stamp)
        a, b = s[k - 1], s[k]
        return _interpolate(self.values[k - 1], self.values[k], (stamp - a) / (b - a))


class TransformBuffer:
    """A tf tree. Frames are names without a leading slash; each child has one parent."""

    def __init__(self, cache_time: float = 10.0, extrapolation: float = 0.2) -> None:
        self.cache_time = cache_time
        self.extrapolation = extrapolation
        self.edges: dict[str, _Edge] = {}

    def set_transform(self, parent: str, child: str, stamp: float, tf: Transform,
                      static: bool = False) -> None:
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child or parent == child:
            raise TransformError(f"bad transform {parent!r} -> {child!r}")
        edge = self.edges.get(child)
        if edge is None or edge.static != static or edge.parent != parent:
            edge = self.edges[child] = _Edge(parent, static, self.cache_time)
        edge.add(stamp, tf)

    def add_message(self, msg: Any, static: bool = False) -> None:
        """A tf2_msgs/TFMessage (its `transforms`); bad entries are skipped."""
        for ts in msg.transforms:
            try:
                stamp = float(ts.header.stamp.sec) + 1e-9 * float(ts.header.stamp.nanosec)
                self.set_transform(ts.header.frame_id, ts.child_frame_id, stamp,
                                   Transform.from_msg(ts.transform), static)
            except TransformError:
                continue

    def frames(self) -> set[str]:
        return set(self.edges) | {e.parent for e in self.edges.values()}

    def _chain(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self.edges and len(chain) <= len(self.edges) + 1:
            chain.append(self.edges[chain[-1]].parent)
        return chain

    def lookup(self, target: str, source: str, stamp: float | None = None) -> Transform:
        """The transform that maps points in `source` to `target` (tf2's lookupTransform
        argument order); `stamp` None = the latest data of each edge."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return Transform()
        known = self.frames()
        for f in (target, source):
            if f not in known:
                raise TransformError(f"frame {f!r} does not exist (known frames: "
                                     f"{', '.join(sorted(known)) or 'none'})")
        up_s, up_t = self._chain(source), self._chain(target)
        common = next((f for f in up_s if f in up_t), None)
        if common is None:
            raise TransformError(f"frames {source!r} and {target!r} are not connected "
                                 f"({source!r} -> {up_s[-1]!r}, {target!r} -> {up_t[-1]!r})")
        try:
            src_to_common = self._to_ancestor(up_s, common, stamp)
            tgt_to_common = self._to_ancestor(up_t, common, stamp)
        except TransformError as exc:
            raise TransformError(f"{source!r} -> {target!r}: {exc}") from None
        return tgt_to_common.inverse() * src_to_common

    def _to_ancestor(self, chain: list[str], ancestor: str, stamp: float | None) -> Transform:
        out = Transform()
        for frame in chain:
            if frame == ancestor:
                return out
            edge = self.edges[frame]
            out = edge.at(stamp, self.extrapolation) * out
        return out

    def can_transform(self, target: str, source: str, stamp: float | None = None) -> bool:
        try:
            self.lookup(target, source, stamp)
        except TransformError:
            return False
        return True


def transform_points(tf: Transform, points: Iterable[Iterable[float]]) -> np.ndarray:
    return tf.apply(np.asarray(list(points), dtype=np.float64).reshape(-1, 2))


# ---- rclpy glue ----------------------------------------------------------------------------

def tf_qos() -> tuple[Any, Any]:
    """(dynamic /tf, static /tf_static) QoS profiles as tf2_ros uses them."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    dynamic = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
    static = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return dynamic, static


def static_broadcast_qos() -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


class TfClient:
    """Lookups for an rclpy node: tf2_ros where it imports, else TransformBuffer + /tf and
    /tf_static subscriptions. `backend` says which."""

    def __init__(self, node: Any, prefer_tf2_ros: bool = True) -> None:
        self.node = node
        self._tf2 = None
        if prefer_tf2_ros:
            try:
                import tf2_ros

                self._tf2 = tf2_ros
                self.buffer: Any = tf2_ros.Buffer()
                self.listener = tf2_ros.TransformListener(self.buffer, node)
                self.backend = "tf2_ros"
                return
            except ImportError:
                self._tf2 = None
        from tf2_msgs.msg import TFMessage

        self.buffer = TransformBuffer()
        self.backend = "nav_policy.ros.tf"
        dynamic, static = tf_qos()
        self._subs = [
            node.create_subscription(TFMessage, "/tf", self.buffer.add_message, dynamic),
            node.create_subscription(TFMessage, "/tf_static",
                                     lambda m: self.buffer.add_message(m, static=True), static),
        ]

    def lookup(self, target: str, source: str) -> Transform:
        """Latest transform source -> target; raises TransformError."""
        if self._tf2 is None:
            return self.buffer.lookup(target, source)
        from rclpy.time import Time

        try:
            ts = self.buffer.lookup_transform(target, source, Time())
        except self._tf2.TransformException as exc:  # type: ignore[attr-defined]
            raise TransformError(str(exc)) from exc
        return Transform.from_msg(ts.transform)

    def close(self) -> None:
        if self._tf2 is None:
            for s in self._subs:
                self.node.destroy_subscription(s)
            self._subs = []


def transform_stamped(parent: str, child: str, tf: Transform, t: float) -> Any:
    """A geometry_msgs/TransformStamped."""
    from geometry_msgs.msg import TransformStamped

    from nav_policy.ros.convert import sec_to_stamp

    ts = TransformStamped()
    ts.header.stamp.sec, ts.header.stamp.nanosec = sec_to_stamp(t)
    ts.header.frame_id = parent
    ts.child_frame_id = child
    tr = ts.transform.translation
    tr.x, tr.y, tr.z = tf.t
    r = ts.transform.rotation
    r.x, r.y, r.z, r.w = tf.q
    return ts
