"""Local planners behind one interface (LocalPlanner): classical baselines (DWA like Nav2 DWB,
MPPI like Nav2 MPPI) and learned policies (rl, ebm) loaded from exported ONNX files.

    planner = make_planner("dwa", robot=robot, seed=0)
    v, w = planner.compute(env.unwrapped.sensors())

Defaults come from config/planners.yaml (one section per classical planner); keyword params
override them.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from nav_policy.errors import ConfigError
from nav_policy.paths import config_path
from nav_policy.planners.base import LocalPlanner
from nav_policy.sim.robot import RobotSpec

# The one registry of local planner names: everything that lists planners (the benchmark, the
# node's parameter, the demo, the scripts) reads these.
LEARNED_PLANNERS: tuple[str, ...] = ("rl", "ebm")  # exported ONNX models (planners/learned.py)
CLASSICAL_PLANNERS: tuple[str, ...] = ("dwa", "mppi")
PLANNERS: tuple[str, ...] = LEARNED_PLANNERS + CLASSICAL_PLANNERS

__all__ = ["CLASSICAL_PLANNERS", "LEARNED_PLANNERS", "PLANNERS", "LocalPlanner", "load_planner_config", "make_planner"]


def load_planner_config(name: str, path: str | Path | None = None) -> dict[str, Any]:
    """The `name:` section of config/planners.yaml (or `path`), {} when the section is absent."""
    cfg_file = Path(path) if path else config_path("planners.yaml")
    try:
        data = yaml.safe_load(cfg_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read planner config {cfg_file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"planner config {cfg_file}: expected a mapping at the top level")
    from nav_policy.yamlcheck import check_keys

    check_keys(data, PLANNERS, f"planner config {cfg_file}")
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"planner config {cfg_file}: '{name}' must be a mapping")
    return dict(section)


def _build_config(config_cls: type, name: str, params: dict[str, Any]) -> Any:
    from nav_policy.yamlcheck import closest

    known = {f.name for f in fields(config_cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        best = closest(unknown[0], known)
        hint = f" (did you mean {best!r}?)" if best else ""
        raise ConfigError(f"unknown {name} parameter(s) {', '.join(unknown)}{hint} (config/"
                          f"planners.yaml or keyword); known: {', '.join(sorted(known))}")
    try:
        return config_cls(**params)
    except TypeError as exc:
        raise ConfigError(f"{name}: {exc}") from exc


def make_planner(name: str, robot: RobotSpec | None = None, model: str | Path | None = None,
                 seed: int = 0, **params: Any) -> LocalPlanner:
    """A LocalPlanner by name: "dwa" and "mppi" (params override config/planners.yaml), or
    "rl" / "ebm" loaded from the exported `model` file."""
    if name in LEARNED_PLANNERS:
        from nav_policy.planners.learned import PolicyPlanner
        known = {"energy_gate", "energy_speed_factor", "steps", "max_steps"} \
            if name == "ebm" else set()
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown {name} parameter(s) {', '.join(unknown)}"
                              + (f"; known: {', '.join(sorted(known))}" if known else ""))
        return PolicyPlanner.from_file(model, robot=robot, expect_kind=name, **params)
    if name == "dwa":
        from nav_policy.planners.dwa import DWAConfig, DWAPlanner

        cfg = _build_config(DWAConfig, name, {**load_planner_config(name), **params})
        return DWAPlanner(robot=robot, config=cfg)
    if name == "mppi":
        from nav_policy.planners.mppi import MPPIConfig, MPPIPlanner

        cfg = _build_config(MPPIConfig, name, {**load_planner_config(name), **params})
        return MPPIPlanner(robot=robot, config=cfg, seed=seed)
    raise ConfigError(f"unknown planner {name!r}; expected one of {', '.join(PLANNERS)}")
