"""Where the package's data lives: share/nav_policy when installed, the repo root when not."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]


def share_dir() -> Path:
    """Folder holding launch/, config/, models/ and sim/.

    Order: $NAV_POLICY_SHARE, the source checkout (editable install), ament's share folder,
    then <prefix>/share/nav_policy (where setup.py's data_files land on `pip install .`).
    """
    env = os.environ.get("NAV_POLICY_SHARE")
    if env:
        return Path(env)
    if (_REPO_ROOT / "sim" / "robots").is_dir() and (_REPO_ROOT / "config").is_dir():
        return _REPO_ROOT
    try:  # a system ROS 2 install
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("nav_policy"))
    except Exception:  # noqa: BLE001 - ament missing or package not indexed
        pass
    return Path(sys.prefix) / "share" / "nav_policy"


def config_path(name: str) -> Path:
    return share_dir() / "config" / name


def sim_path(name: str) -> Path:
    return share_dir() / "sim" / name


def model_path(name: str) -> Path:
    return share_dir() / "models" / name


def input_file_problem(path: str | Path) -> str | None:
    """What is wrong with a file to read (None when it is a readable file)."""
    p = Path(path)
    if p.is_dir():
        return f"{p} is a folder, not a file"
    if not p.exists():
        return f"{p} does not exist" + ("" if p.parent.is_dir() else
                                        f" (no folder {p.parent})")
    if not os.access(p, os.R_OK):
        return f"{p} is not readable"
    return None


def output_file_problem(path: str | Path) -> str | None:
    """What is wrong with a file to write (None when it can be written; missing parent folders
    are created by the writers)."""
    p = Path(path)
    if p.is_dir():
        return f"{p} is a folder; give a file name inside it, e.g. {p / 'model.onnx'}"
    for parent in [p.parent, *p.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, so {p} cannot be created"
            if not os.access(parent, os.W_OK):
                return f"{parent} is not writable"
            break
    return None
