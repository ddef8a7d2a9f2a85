"""Build the ROS 2 interface packages nav_policy needs but the kilted wheels do not ship.

    python -m nav_policy.ros.build_interfaces [--force] [--prefix PREFIX]

tf2_msgs (TFMessage) and Nav2 kilted's nav2_msgs (FollowPath, NavigateToPose,
ComputePathToPose) are carried in interfaces/ field for field, with their licences. In a
pip-only ROS 2 kilted venv (the `ros` extra) this script builds them with plain cmake
(ament_cmake + rosidl_generate_interfaces, no colcon) and installs them into the venv's prefix,
where rclpy finds them with no extra environment. It is idempotent: types that already import
are not rebuilt (--force rebuilds). On a system ROS 2 install (/opt/ros/...) nothing is built:
the system's nav2_msgs and tf2_msgs are used, and a missing one is named with its apt package.

What it does in a venv, in order (facts checked on the kilted wheels, Python 3.11):
1. pip-installs the build helpers the wheels' metadata leaves out (ament_package, ament_cmake,
   rosidl_default_generators and friends, catkin_pkg), pinned to the installed kilted series;
2. rewrites the Python and numpy include directories that the wheels' exported CMake targets
   name on the wheel build machine (/opt/python/cp311-cp311/...) to this interpreter's;
3. cmake configure, build and install of each missing package into the prefix;
4. imports the types in a fresh interpreter to check.

Exit codes: 0 built or nothing to do, 2 a clear one-line failure (the build log's path named).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

PACKAGES: dict[str, tuple[str, ...]] = {  # package -> the types that must import
    "tf2_msgs": ("tf2_msgs.msg:TFMessage",),
    "nav2_msgs": ("nav2_msgs.action:FollowPath", "nav2_msgs.action:NavigateToPose",
                  "nav2_msgs.action:ComputePathToPose"),
}
# the helpers a rosidl build needs that the runtime wheels do not pull in
HELPERS = ("ros-kilted-ament-package", "ros-kilted-ament-cmake",
           "ros-kilted-ament-cmake-include-directories", "ros-kilted-rosidl-core-generators",
           "ros-kilted-rosidl-default-generators", "ros-kilted-ament-cmake-ros-core",
           "ros-kilted-action-msgs", "catkin_pkg")
WHEEL_PYTHON = "/opt/python/cp311-cp311"  # the wheel build machine's interpreter prefix


class BuildError(RuntimeError):
    pass


def interfaces_dir() -> Path:
    """interfaces/ of the source tree, or the copy installed under share/nav_policy."""
    here = Path(__file__).resolve().parents[2] / "interfaces"
    if here.is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "nav_policy" / "interfaces"
    if installed.is_dir():
        return installed
    raise BuildError(f"interface definitions not found in {here} or {installed}")


def missing_types(packages: list[str] | None = None) -> dict[str, list[str]]:
    """{package: [types that do not import]} checked in a fresh interpreter."""
    out: dict[str, list[str]] = {}
    for pkg in packages or list(PACKAGES):
        code = "\n".join(f"from {t.split(':')[0]} import {t.split(':')[1]}"
                         for t in PACKAGES[pkg])
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=_env())
        if res.returncode != 0:
            out[pkg] = list(PACKAGES[pkg])
    return out


def system_ros_prefix() -> str | None:
    """The system ROS 2 prefix (/opt/ros/DISTRO) rclpy comes from, or None for the wheels."""
    try:
        import rclpy
    except ImportError:
        return None
    path = Path(rclpy.__file__).resolve()
    if Path(sys.prefix).resolve() in path.parents:
        return None
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix and Path(prefix).resolve() in path.parents:
            return prefix
    return str(path.parents[4]) if len(path.parents) > 4 else str(path.parent)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def _run(argv: list[str], log: Path, cwd: Path | None = None) -> None:
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(argv)}\n")
        f.flush()
        res = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, env=_env())
    if res.returncode != 0:
        raise BuildError(f"`{' '.join(argv[:3])} ...` failed (exit {res.returncode}); "
                         f"see {log}")


def install_helpers(log: Path) -> None:
    ament = Path(sys.prefix) / "share" / "ament_cmake" / "cmake"
    gens = Path(sys.prefix) / "share" / "rosidl_default_generators"
    try:
        import catkin_pkg  # noqa: F401
        have_catkin = True
    except ImportError:
        have_catkin = False
    if ament.is_dir() and gens.is_dir() and have_catkin:
        return
    _run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *HELPERS], log)


def patch_wheel_cmake(prefix: Path) -> int:
    """Point the exported targets' include directories at this interpreter; files changed."""
    py_inc = sysconfig.get_paths()["include"]
    if not (Path(py_inc) / "Python.h").is_file():
        raise BuildError(f"Python headers not found at {py_inc} (Python.h): install the "
                         f"python3.11 development headers")
    try:
        import numpy
    except ImportError as exc:
        raise BuildError("numpy is needed to build the Python type support") from exc
    np_inc = numpy.get_include()
    site = sysconfig.get_paths()["purelib"]
    subs = [
        (re.escape(f"{WHEEL_PYTHON}/include/python3.11"), py_inc),
        (re.escape(f"{WHEEL_PYTHON}/lib/python3.11/site-packages/numpy/_core/include"), np_inc),
        (re.escape(f"{WHEEL_PYTHON}/lib/python3.11/site-packages/numpy/core/include"), np_inc),
        (re.escape(f"{WHEEL_PYTHON}/lib/python3.11/site-packages"), site),
    ]
    changed = 0
    for f in (prefix / "share").glob("*/cmake/*.cmake"):
        try:
            text = f.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if WHEEL_PYTHON not in text:
            continue
        new = text
        for pattern, repl in subs:
            new = re.sub(pattern, repl.replace("\\", "/"), new)
        if new != text:
            f.write_text(new)
            changed += 1
    return changed


def build_package(src: Path, prefix: Path, work: Path, log: Path) -> None:
    build = work / src.name
    jobs = str(max(1, min(os.cpu_count() or 1, 4)))
    _run(["cmake", "-S", str(src), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}",
          f"-DCMAKE_PREFIX_PATH={prefix}", f"-DPython3_EXECUTABLE={sys.executable}",
          "-DBUILD_TESTING=OFF", "-DCMAKE_BUILD_TYPE=Release"], log)
    _run(["cmake", "--build", str(build), "-j", jobs], log)
    _run(["cmake", "--install", str(build)], log)


def ensure(force: bool = False, prefix: Path | None = None, quiet: bool = False) -> list[str]:
    """Build what is missing; returns the packages built. Raises BuildError."""

    def say(text: str) -> None:
        if not quiet:
            print(f"build_interfaces: {text}", file=sys.stderr)

    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        raise BuildError("rclpy does not import: install the ros extra "
                         "(pip install -e '.[ros]') or source a ROS 2 setup") from exc
    todo = list(PACKAGES) if force else list(missing_types())
    if not todo:
        say("tf2_msgs and nav2_msgs import: nothing to build")
        return []
    system = system_ros_prefix()
    if system is not None:
        distro = os.environ.get("ROS_DISTRO", "<distro>")
        apt = " ".join(f"ros-{distro}-{p.replace('_', '-')}" for p in todo)
        raise BuildError(f"system ROS 2 at {system} lacks {', '.join(todo)}: install them "
                         f"(apt install {apt}); nothing is built into a system install")
    if shutil.which("cmake") is None:
        raise BuildError("cmake is not on PATH (apt install cmake, or pip install cmake)")
    prefix = Path(prefix or sys.prefix).resolve()
    src_root = interfaces_dir()
    work = Path(tempfile.mkdtemp(prefix="nav_policy_interfaces_"))
    log = work / "build.log"
    t0 = time.monotonic()
    say(f"building {', '.join(todo)} into {prefix} (log {log})")
    install_helpers(log)
    n = patch_wheel_cmake(prefix)
    if n:
        say(f"include paths of {n} exported CMake files pointed at this interpreter")
    for pkg in todo:
        build_package(src_root / pkg, prefix, work, log)
    still = missing_types(todo)
    if still:
        raise BuildError(f"built but {', '.join(still)} still do not import; see {log}")
    shutil.rmtree(work, ignore_errors=True)
    say(f"built {', '.join(todo)} in {time.monotonic() - t0:.0f} s")
    return todo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nav_policy.ros.build_interfaces",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even if the types import")
    ap.add_argument("--prefix", type=Path, default=None,
                    help="install prefix (default: this interpreter's venv, sys.prefix)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        ensure(a.force, a.prefix, a.quiet)
    except BuildError as exc:
        print(f"build_interfaces: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
