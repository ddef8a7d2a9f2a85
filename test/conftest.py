"""Shared pytest setup: ROS isolation per process, headless plotting, small fixtures.

Environment variables are set at import time, before any test module imports rclpy or
matplotlib, so every pytest process (and each pytest-xdist worker) gets its own ROS domain and
never talks to another process's nodes.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DOMAIN_MIN, DOMAIN_MAX = 1, 100
_domain_lock: int | None = None  # file descriptor held for the life of the process


def _claim_ros_domain() -> int:
    """A ROS_DOMAIN_ID in [1, 100] that no other live pytest process on this machine holds.

    Starts from the pid (so concurrent processes usually pick different ids at once) and takes
    the first id whose lock file it can flock; the lock is released when the process exits.
    """
    global _domain_lock
    lock_dir = Path(tempfile.gettempdir()) / "nav_policy_ros_domains"
    lock_dir.mkdir(exist_ok=True)
    span = DOMAIN_MAX - DOMAIN_MIN + 1
    first = os.getpid() % span
    for k in range(span):
        domain = DOMAIN_MIN + (first + k) % span
        fd = os.open(lock_dir / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _domain_lock = fd
        return domain
    return DOMAIN_MIN + first  # every id taken: fall back to the pid-derived one


os.environ["ROS_DOMAIN_ID"] = str(_claim_ros_domain())
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["MPLBACKEND"] = "Agg"

from nav_policy.sim.robot import RobotSpec, load_robot_spec  # noqa: E402
from nav_policy.sim.world import Box, Cylinder, MovingObstacle, World  # noqa: E402


@pytest.fixture(scope="session")
def robot() -> RobotSpec:
    """The reference robot from config/robot.yaml and sim/robots/diffbot.urdf."""
    return load_robot_spec()


@pytest.fixture()
def tiny_world() -> World:
    """A 6 x 4 m arena: a box and a cylinder between start (left) and goal (right)."""
    return World(
        name="tiny",
        size=(6.0, 4.0),
        obstacles=(
            Box(center=(0.0, 0.8), size=(0.6, 1.2), yaw=0.3),
            Cylinder(center=(0.5, -1.0), radius=0.3),
        ),
        moving=(MovingObstacle(radius=0.2, speed=0.3, waypoints=((1.5, -1.5), (1.5, 1.5))),),
        start=(-2.2, 0.0, 0.0),
        goal=(2.2, 0.0),
    )


@pytest.fixture()
def tmp_yaml(tmp_path: Path) -> Iterator[Path]:
    """A path for a world file inside the test's temporary folder."""
    yield tmp_path / "world.yaml"


# ---- ROS graph fixtures (the ROS test modules; rclpy is imported only when they are used) ----


@pytest.fixture()
def graph() -> Iterator[object]:
    """The test's own rclpy node on this process's domain (test_ros_nodes.Graph)."""
    from test_ros_nodes import Graph

    g = Graph()
    yield g
    g.close()


@pytest.fixture()
def spawn(tmp_path: Path) -> Iterator[object]:
    """Console-script processes, stopped (SIGINT, then SIGKILL) when the test ends."""
    from test_ros_nodes import BIN, Proc

    procs: list[Proc] = []

    def start(executable: str, *args: str) -> Proc:
        p = Proc([str(BIN / executable), *args], tmp_path, f"{len(procs)}_{executable}")
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()
    for p in procs:  # shown only when the test failed
        print(f"--- {p.err.name}\n{p.stderr()[-3000:]}")


# ---- markers: `make test` runs everything; `make test-fast` leaves out ros, e2e and slow ----

# files whose every test starts rclpy nodes over DDS, or runs the whole stack end to end
ROS_FILES = ("test_ros_", "test_reliability_faults", "test_reliability_soak")
E2E_FILES = ("test_demo", "test_ros_launch", "test_ros_mission")
# the tests that took 20 s or more in a full run on this 2-core machine (--durations)
SLOW_TESTS = (
    "test_ebm.py::test_density_term_makes_the_energy_level_separate_data_from_corruptions",
    "test_ebm.py::test_collect_only_writes_the_demonstrations_and_stops",
    "test_train_cli.py::test_resume_extends_or_says_nothing_to_do",
    "test_train_cli.py::test_ctrl_c_saves_and_exits_130",
    "test_train_seeds.py::",
    "test_interrupts.py::",
    "test_export.py::test_curriculum_reaches_the_envs_behind_their_wrappers",
    "test_reliability_fuzz.py::test_fuzz_pool_scan_in_bounds_or_codec_error",
    "test_crowd.py::test_simulator_steps_the_pedestrians_each_tick",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = item.path.name
        if name.startswith(ROS_FILES) or "graph" in getattr(item, "fixturenames", ()) \
                or "spawn" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ros)
        if name.startswith(E2E_FILES):
            item.add_marker(pytest.mark.e2e)
        if any(key in item.nodeid for key in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)
