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
