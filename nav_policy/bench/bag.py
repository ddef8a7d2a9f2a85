"""MCAP bags (ROS 2, CDR): write runs (BagWriter) and score recorded runs (score_bag).

Scoring reads nav_msgs/msg/Odometry from a topic ending in "odom" (required), and, when
present, sensor_msgs/msg/LaserScan from a topic ending in "scan" and geometry_msgs Twist or
TwistStamped from a topic ending in "cmd_vel". The run starts at the first non-zero cmd_vel
(else at the first odometry message) and ends at the first arrival within the goal tolerance
or the first collision (world clearance <= 0 with --world, or a scan return closer than the
robot radius); the metrics are then computed by nav_policy.bench.metrics exactly as for a
simulated episode. Odometry is taken to be in the goal's (and the world file's) frame.

Message definitions are read from the .msg files of the installed ROS 2 interface packages
(<prefix>/share/<pkg>/msg/) and concatenated with their dependencies as rosbag2 does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from nav_policy.bench.metrics import (
    Track,
    clearance_along,
    episode_metrics,
    judge_run,
    summarize,
)
from nav_policy.errors import ConfigError
from nav_policy.sim.world import World

if TYPE_CHECKING:  # typing.Self is Python >= 3.11
    from typing_extensions import Self  # noqa: UP035

PRIMITIVES = frozenset({"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16",
                        "uint16", "int32", "uint32", "int64", "uint64", "string", "wstring"})
SEPARATOR = "=" * 80
ODOM_TYPES = ("nav_msgs/msg/Odometry", "nav_msgs/Odometry")
SCAN_TYPES = ("sensor_msgs/msg/LaserScan", "sensor_msgs/LaserScan")
TWIST_TYPES = ("geometry_msgs/msg/Twist", "geometry_msgs/Twist")
TWIST_STAMPED_TYPES = ("geometry_msgs/msg/TwistStamped", "geometry_msgs/TwistStamped")


# ---- message definitions ----------------------------------------------------------------------


def share_dirs() -> list[Path]:
    """Folders holding <pkg>/msg/*.msg: this Python's prefix, then $AMENT_PREFIX_PATH."""
    dirs = [Path(sys.prefix) / "share"]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            dirs.append(Path(prefix) / "share")
    return dirs


def _split_type(type_name: str) -> tuple[str, str]:
    parts = type_name.split("/")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[1] != "msg"):
        raise ConfigError(f"message type {type_name!r} must look like pkg/msg/Name or pkg/Name")
    return parts[0], parts[-1]


def msg_text(pkg: str, name: str) -> str:
    """The .msg file text of pkg/name from the installed interface packages."""
    for share in share_dirs():
        path = share / pkg / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text()
    raise ConfigError(f"message definition {pkg}/msg/{name} not found under "
                      f"{', '.join(str(d) for d in share_dirs())}")


def msg_dependencies(pkg: str, text: str) -> list[str]:
    """Complex field types ('pkg/Name') used in a .msg text, in order of first use."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"[A-Za-z0-9_/]+", line)
        base = match.group(0) if match else ""
        if not base or base in PRIMITIVES:
            continue
        dep_pkg, dep_name = _split_type(base) if "/" in base else (pkg, base)
        dep = f"{dep_pkg}/{dep_name}"
        if dep not in out:
            out.append(dep)
    return out


def message_definition(type_name: str) -> str:
    """Full definition of a ROS 2 message type, dependencies appended (rosbag2 'ros2msg')."""
    pkg, name = _split_type(type_name)
    root = msg_text(pkg, name)
    parts = [root.rstrip()]
    seen = {f"{pkg}/{name}"}
    queue = msg_dependencies(pkg, root)
    while queue:
        dep = queue.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        dep_pkg, dep_name = dep.split("/")
        text = msg_text(dep_pkg, dep_name)
        parts.append(f"{SEPARATOR}\nMSG: {dep}\n{text.rstrip()}")
        queue.extend(d for d in msg_dependencies(dep_pkg, text) if d not in seen)
    return "\n".join(parts) + "\n"


# ---- writing ----------------------------------------------------------------------------------


def _stamp(t: float) -> dict[str, int]:
    ns = round(t * 1e9)
    return {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}


def yaw_quaternion(yaw: float) -> dict[str, float]:
    return {"x": 0.0, "y": 0.0, "z": math.sin(yaw / 2), "w": math.cos(yaw / 2)}


class BagWriter:
    """Record a run as an MCAP (ROS 2 profile, CDR): odometry, scans, velocity commands.

    Use as a context manager; stamps are seconds (header stamp and log time alike).
    """

    def __init__(self, path: str | Path, odom_topic: str = "/odom", scan_topic: str = "/scan",
                 cmd_topic: str = "/cmd_vel") -> None:
        from mcap_ros2.writer import Writer

        self.path = Path(path)
        self.topics = {"odom": odom_topic, "scan": scan_topic, "cmd": cmd_topic}
        self._fh: IO[bytes] = self.path.open("wb")
        self._writer = Writer(self._fh)
        self._schemas: dict[str, Any] = {}

    def write(self, topic: str, type_name: str, message: dict[str, Any], stamp: float) -> None:
        """Any message given as a dict, with log time = `stamp` (seconds)."""
        if type_name not in self._schemas:
            self._schemas[type_name] = self._writer.register_msgdef(
                type_name, message_definition(type_name))
        ns = round(stamp * 1e9)
        self._writer.write_message(topic, self._schemas[type_name], message, log_time=ns,
                                   publish_time=ns)

    def odometry(self, stamp: float, pose: Sequence[float], velocity: Sequence[float],
                 frame_id: str = "odom", child_frame_id: str = "base_link") -> None:
        x, y, yaw = (float(v) for v in pose[:3])
        msg = {"header": {"stamp": _stamp(stamp), "frame_id": frame_id},
               "child_frame_id": child_frame_id,
               "pose": {"pose": {"position": {"x": x, "y": y, "z": 0.0},
                                 "orientation": yaw_quaternion(yaw)}, "covariance": [0.0] * 36},
               "twist": {"twist": {"linear": {"x": float(velocity[0]), "y": 0.0, "z": 0.0},
                                   "angular": {"x": 0.0, "y": 0.0, "z": float(velocity[1])}},
                         "covariance": [0.0] * 36}}
        self.write(self.topics["odom"], "nav_msgs/msg/Odometry", msg, stamp)

    def scan(self, stamp: float, ranges: Sequence[float], angle_min: float,
             angle_increment: float, range_min: float, range_max: float,
             frame_id: str = "base_scan", scan_time: float = 0.1) -> None:
        r = [float(v) for v in ranges]
        msg = {"header": {"stamp": _stamp(stamp), "frame_id": frame_id},
               "angle_min": float(angle_min),
               "angle_max": float(angle_min + angle_increment * max(len(r) - 1, 0)),
               "angle_increment": float(angle_increment), "time_increment": 0.0,
               "scan_time": float(scan_time), "range_min": float(range_min),
               "range_max": float(range_max), "ranges": r, "intensities": []}
        self.write(self.topics["scan"], "sensor_msgs/msg/LaserScan", msg, stamp)

    def cmd_vel(self, stamp: float, v: float, w: float) -> None:
        msg = {"linear": {"x": float(v), "y": 0.0, "z": 0.0},
               "angular": {"x": 0.0, "y": 0.0, "z": float(w)}}
        self.write(self.topics["cmd"], "geometry_msgs/msg/Twist", msg, stamp)

    def close(self) -> None:
        if not self._fh.closed:
            self._writer.finish()
            self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- reading ----------------------------------------------------------------------------------


@dataclass
class BagData:
    """What scoring needs from a bag, as arrays (times in seconds)."""

    odom_topic: str
    odom: np.ndarray  # (N, 6): t, x, y, yaw, v, w
    scan_topic: str | None = None
    scan: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))  # t, min range
    cmd_topic: str | None = None
    cmd: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))  # t, v, w


def _last_name(topic: str) -> str:
    return topic.rstrip("/").rsplit("/", 1)[-1]


def _pick(channels: dict[str, str], counts: dict[str, int], types: Sequence[str],
          suffix: str) -> str | None:
    """The topic of one of `types` ending in `suffix`: exact name first, then most messages."""
    cands = [t for t, s in channels.items() if s in types and t.rstrip("/").endswith(suffix)]
    if not cands:
        return None
    return min(cands, key=lambda t: (_last_name(t) != suffix, -counts.get(t, 0), t))


def _header_time(msg: Any, log_time: int) -> float:
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if stamp is not None and (stamp.sec or stamp.nanosec):
        return float(stamp.sec) + float(stamp.nanosec) * 1e-9
    return log_time * 1e-9


def _yaw(q: Any) -> float:
    return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))


def _scan_min(msg: Any) -> float:
    r = np.asarray(msg.ranges, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(r) & (r >= msg.range_min) & (r <= msg.range_max)
    return float(r[ok].min()) if ok.any() else math.inf


def _open_reader(path: Path) -> tuple[Any, IO[bytes]]:
    from mcap.exceptions import McapError
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read bag {path}: {exc.strerror or exc}") from exc
    try:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        reader.get_header()
    except (McapError, ValueError, OSError) as exc:
        fh.close()
        raise ConfigError(f"{path} is not a readable MCAP file ({type(exc).__name__})") from exc
    return reader, fh


def _channels(reader: Any, path: Path) -> tuple[dict[str, str], dict[str, int]]:
    from mcap.exceptions import McapError

    try:
        summary = reader.get_summary()
    except (McapError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the MCAP summary ({type(exc).__name__})") from exc
    if summary is None:
        raise ConfigError(f"{path}: MCAP file has no summary section (re-index it with "
                          "`mcap recover`)")
    channels = {c.topic: summary.schemas[c.schema_id].name if c.schema_id in summary.schemas
                else "" for c in summary.channels.values()}
    stats = summary.statistics
    counts = {summary.channels[cid].topic: n
              for cid, n in (stats.channel_message_counts.items() if stats else ())}
    return channels, counts


def read_bag(path: str | Path, odom_topic: str | None = None) -> BagData:
    """Odometry (required), scan and cmd_vel arrays from an MCAP bag."""
    path = Path(path)
    reader, fh = _open_reader(path)
    with fh:
        channels, counts = _channels(reader, path)
        topics = ", ".join(sorted(channels)) or "none"
        if odom_topic and odom_topic not in channels:
            raise ConfigError(f"{path}: no topic {odom_topic!r} (topics: {topics})")
        odom = odom_topic or _pick(channels, counts, ODOM_TYPES, "odom")
        if odom is not None and channels.get(odom) not in ODOM_TYPES:
            raise ConfigError(f"{path}: topic {odom!r} carries {channels.get(odom)}, "
                              "not nav_msgs/msg/Odometry")
        if odom is None or counts.get(odom, 1) == 0:
            raise ConfigError(f"{path}: no nav_msgs/msg/Odometry messages on a topic ending in "
                              f"'odom' (topics: {topics})")
        scan = _pick(channels, counts, SCAN_TYPES, "scan")
        cmd = _pick(channels, counts, TWIST_TYPES + TWIST_STAMPED_TYPES, "cmd_vel")
        rows: dict[str, list[list[float]]] = {"odom": [], "scan": [], "cmd": []}
        wanted = [t for t in (odom, scan, cmd) if t]
        for _, channel, message, msg in reader.iter_decoded_messages(topics=wanted):
            if channel.topic == odom:
                p, tw = msg.pose.pose, msg.twist.twist
                rows["odom"].append([_header_time(msg, message.log_time), p.position.x,
                                     p.position.y, _yaw(p.orientation), tw.linear.x,
                                     tw.angular.z])
            elif channel.topic == scan:
                rows["scan"].append([_header_time(msg, message.log_time), _scan_min(msg)])
            else:
                tw = msg.twist if hasattr(msg, "twist") else msg
                rows["cmd"].append([_header_time(msg, message.log_time), tw.linear.x,
                                    tw.angular.z])
    if not rows["odom"]:
        raise ConfigError(f"{path}: no nav_msgs/msg/Odometry messages on topic {odom!r}")
    arr = {k: np.asarray(v, dtype=np.float64).reshape(-1, n)
           for (k, v), n in zip(rows.items(), (6, 2, 3))}
    return BagData(odom, arr["odom"][np.argsort(arr["odom"][:, 0], kind="stable")],
                   scan, arr["scan"], cmd, arr["cmd"])


# ---- the mission a bag recorded ----------------------------------------------------------------

MISSION_STATUS_TOPIC = "/mission_status"


def read_mission(path: str | Path) -> dict[str, Any] | None:
    """What the mission executor said during the recording (std_msgs/String JSON on
    /mission_status): the last step goal it drove to and the tolerance it judged arrival by,
    and its last state. None when the bag holds no mission status."""
    path = Path(path)
    reader, fh = _open_reader(path)
    goal: list[float] | None = None
    tolerance: float | None = None
    state: str | None = None
    with fh:
        channels, _ = _channels(reader, path)
        if channels.get(MISSION_STATUS_TOPIC) != "std_msgs/msg/String":
            return None
        for _, _, _, msg in reader.iter_decoded_messages(topics=[MISSION_STATUS_TOPIC]):
            try:
                ev = json.loads(msg.data)
            except (ValueError, AttributeError):
                continue
            if not isinstance(ev, dict):
                continue
            state = str(ev.get("state")) if ev.get("state") else state
            g = ev.get("goal")
            if isinstance(g, list) and len(g) == 2:
                goal = [float(g[0]), float(g[1])]
                tol = ev.get("tolerance")
                tolerance = float(tol) if isinstance(tol, (int, float)) else tolerance
    if goal is None:
        return None
    return {"goal": goal, "tolerance": tolerance, "state": state}


# ---- scoring ----------------------------------------------------------------------------------


def start_index(data: BagData) -> tuple[int, str]:
    """First odometry row of the run: the last one at or before the first non-zero command."""
    moving = data.cmd[(np.abs(data.cmd[:, 1]) > 1e-6) | (np.abs(data.cmd[:, 2]) > 1e-6)]
    if not len(moving):
        return 0, "first odometry message"
    k = int(np.searchsorted(data.odom[:, 0], moving[0, 0], side="right")) - 1
    return max(k, 0), "first non-zero cmd_vel"


def shortest_from(world: World | None, start: tuple[float, float, float],
                  goal: tuple[float, float], radius: float) -> tuple[float, str]:
    """l for SPL/BARN: grid A* in the world from the run's start, else the straight line."""
    if world is None:
        return float(math.hypot(goal[0] - start[0], goal[1] - start[1])), "euclidean"
    from nav_policy.sim.generate import analyse_world

    maps = analyse_world(dataclasses.replace(world, start=start, goal=goal), radius)
    return maps.length, "world"


def score_bag(path: str | Path, goal: tuple[float, float], radius: float, v_ref: float,
              world: World | None = None, tolerance: float = 0.25,
              odom_topic: str | None = None) -> dict[str, Any]:
    """Metrics of a recorded run (same keys as a one-episode benchmark, plus bag details)."""
    data = read_bag(path, odom_topic)
    k0, start_source = start_index(data)
    rows = data.odom[k0:]
    track = Track(t=rows[:, 0], xy=rows[:, 1:3], v=rows[:, 4])
    start = (float(rows[0, 1]), float(rows[0, 2]), float(rows[0, 3]))
    shortest, source = shortest_from(world, start, goal, radius)
    clearance = clearance_along(world, track, radius, moving=False) if world else None
    scans = data.scan[data.scan[:, 0] >= rows[0, 0]]
    verdict = judge_run(track, goal, tolerance, clearance, scans[:, 0], scans[:, 1], radius)
    ended = not verdict.success and not verdict.collision  # the recording just stops
    run = track.head(verdict.end)
    if clearance is not None:
        clr = clearance[:verdict.end]
    else:
        clr = scans[scans[:, 0] <= run.t[-1], 1] - radius
        clr = clr[np.isfinite(clr)]
    episode = episode_metrics(run, success=verdict.success, collision=verdict.collision,
                              shortest_path=shortest, clearance=clr, v_ref=v_ref)
    if ended:  # no time limit was running: not a timeout, the bag ends before the goal
        episode.update(outcome="ended before the goal", timeout=False, ended=True)
    return {**summarize([episode], [], v_ref), "per_episode": [episode],
            "shortest_path_source": source, "clearance_source":
            "world" if clearance is not None else ("scan" if len(clr) else None),
            "start_time_source": start_source, "odom_topic": data.odom_topic,
            "scan_topic": data.scan_topic, "cmd_vel_topic": data.cmd_topic,
            "odom_messages": len(data.odom)}
