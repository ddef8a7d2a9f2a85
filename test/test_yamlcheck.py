"""A typo in any YAML file the project reads is an error naming the key, the file and the closest
known key (nav_policy.yamlcheck), at every level: worlds, landmarks, robot profiles, planner
defaults, node parameters, training configs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nav_policy.errors import NavPolicyError
from nav_policy.yamlcheck import check_keys, closest

REPO = Path(__file__).resolve().parents[1]


def _world(path: Path) -> Any:
    from nav_policy.sim.world import load_world

    return load_world(path)


def _landmarks(path: Path) -> Any:
    from nav_policy.instruct import load_landmarks

    return load_landmarks(path)


def _robot(path: Path) -> Any:
    from nav_policy.sim.robot import load_robot_spec

    return load_robot_spec(path)


def _planners(path: Path) -> Any:
    from nav_policy.planners import _build_config, load_planner_config
    from nav_policy.planners.dwa import DWAConfig

    return _build_config(DWAConfig, "dwa", load_planner_config("dwa", path))


def _params(path: Path) -> Any:
    from nav_policy.ros.params import load_param_file

    return load_param_file(path)


def _train_local(path: Path) -> Any:
    from nav_policy.training.config import load_config

    return load_config(path)


def _train_ebm(path: Path) -> Any:
    from nav_policy.training.ebm_config import load_ebm_config

    return load_ebm_config(path)


def _train_dpp(path: Path) -> Any:
    from nav_policy.deception.config import load_dpp_config

    return load_dpp_config(path)


# (shipped file, loader, original text, typo, the key the message must suggest)
CASES: dict[str, tuple[str, Callable[[Path], Any], str, str, str]] = {
    "world top level": ("sim/worlds/corridor.yaml", _world, "obstacles:", "obstacels:",
                        "obstacles"),
    "world obstacle": ("sim/worlds/crossing.yaml", _world, "center: [-1.5", "centre: [-1.5",
                       "center"),
    "world moving": ("sim/worlds/crossing.yaml", _world, "speed: 0.4", "sped: 0.4", "speed"),
    "landmarks top level": ("config/landmarks_demo.yaml", _landmarks, "\nlandmarks:",
                            "\nlandmark:", "landmarks"),
    "landmark entry": ("config/landmarks_demo.yaml", _landmarks, "    aliases: [kitchenette",
                       "    alias: [kitchenette", "aliases"),
    "robot section": ("config/robot.yaml", _robot, "v_max:", "vmax:", "v_max"),
    "robot lidar": ("config/robot.yaml", _robot, "range_max:", "rangemax:", "range_max"),
    "robot top level": ("config/robot.yaml", _robot, "lidar:", "lidr:", "lidar"),
    "planners top level": ("config/planners.yaml", _planners, "mppi:", "mpi:", "mppi"),
    "planners dwa": ("config/planners.yaml", _planners, "sim_time:", "simtime:", "sim_time"),
    "node name": ("config/nav_policy.yaml", _params, "local_planner_node:",
                  "local_planer_node:", "local_planner_node"),
    "node parameter": ("config/nav_policy.yaml", _params, "watchdog_timeout:",
                       "watchdog_timout:", "watchdog_timeout"),
    "train local top": ("config/train_local.yaml", _train_local, "n_envs:", "n_env:", "n_envs"),
    "train local nested": ("config/train_local.yaml", _train_local, "  every_steps:",
                           "  every_step:", "every_steps"),
    "train ebm nested": ("config/train_ebm.yaml", _train_ebm, "noise_std_max:",
                         "noise_sdt_max:", "noise_std_max"),
    "train local env": ("config/train_local.yaml", _train_local, "lidar_noise:", "lidar_nosie:",
                        "lidar_noise"),
    "train ebm env": ("config/train_ebm.yaml", _train_ebm, "odom_drift:", "odom_drfit:",
                      "odom_drift"),
    "train dpp": ("config/train_dpp.yaml", _train_dpp, "n_epochs:", "n_epoch:", "n_epochs"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unknown_key_names_file_key_and_closest(tmp_path: Path, case: str) -> None:
    src, loader, old, new, suggest = CASES[case]
    text = (REPO / src).read_text()
    assert old in text, f"{src} no longer holds {old!r}"
    loader(REPO / src)  # the shipped file loads
    bad = tmp_path / Path(src).name
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(NavPolicyError) as err:
        loader(bad)
    msg = str(err.value)
    typo = new.strip().split(":")[0]
    assert str(bad) in msg and repr(typo) in msg or typo in msg, msg
    assert f"did you mean {suggest!r}?" in msg or f"did you mean {suggest}?" in msg, msg
    assert "\n" not in msg


def test_closest_and_check_keys() -> None:
    assert closest("obstacels", ["obstacles", "moving", "goal"]) == "obstacles"
    assert closest("Goal", ["goal"]) == "goal"
    assert closest("zzz", ["obstacles"]) is None
    check_keys({"goal": 1}, ("goal",), "w")
    with pytest.raises(NavPolicyError, match=r"w: unknown key 'zzz'; known: goal"):
        check_keys({"zzz": 1}, ("goal",), "w")


def test_bench_refuses_a_typo_world(tmp_path: Path) -> None:
    """The reported defect: `obstacels:` loaded an empty world and the benchmark said 1.00."""
    bad = tmp_path / "typo.yaml"
    bad.write_text((REPO / "sim/worlds/corridor.yaml").read_text().replace("obstacles:",
                                                                            "obstacels:"))
    exe = str(Path(sys.executable).parent / "nav-policy")
    done = subprocess.run([exe, "bench", "--planner", "dwa", "--world", str(bad), "--episodes",
                           "1", "--out", str(tmp_path / "b")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "unknown key 'obstacels' (did you mean 'obstacles'?)" in done.stderr
    assert "Traceback" not in done.stderr
