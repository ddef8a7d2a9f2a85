"""launch/*.py: checked by AST against setup.py's console scripts and config/nav_policy.yaml,
then run against stand-in `launch` / `launch_ros` modules (neither is installable here), so
the nodes, parameters and remaps they would start are checked too."""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from nav_policy.ros import params

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*_launch.py"))
NAV_ARGS = {"namespace", "params_file", "use_sim_time", "model"}


def console_scripts() -> set[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = " in node.value \
                and ":" in node.value:
            out.add(node.value.split(" = ")[0].strip())
    return out


def config_nodes() -> set[str]:
    return set(yaml.safe_load((REPO / "config" / "nav_policy.yaml").read_text()))


def node_calls(tree: ast.Module) -> list[dict[str, Any]]:
    """Constant keyword arguments of every Node(...) call (module-level str constants resolved)."""
    consts = {n.targets[0].id: n.value.value for n in tree.body
              if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
              and isinstance(n.value, ast.Constant)}
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Node":
            kw = {}
            for k in node.keywords:
                if isinstance(k.value, ast.Constant):
                    kw[k.arg] = k.value.value
                elif isinstance(k.value, ast.Name) and k.value.id in consts:
                    kw[k.arg] = consts[k.value.id]
            calls.append(kw)
    return calls


def test_both_launch_files_exist() -> None:
    assert {p.name for p in LAUNCH_FILES} >= {"navigation_launch.py", "sim_launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_ast(path: Path) -> None:
    tree = ast.parse(path.read_text())
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    calls = node_calls(tree)
    assert calls, "no launch_ros Node in the file"
    for call in calls:
        assert call["package"] == "nav_policy"
        assert call["executable"] in console_scripts(), call
        assert call["name"] in config_nodes(), call
        assert call["name"] == call["executable"]
    args_dict = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                     and getattr(n.targets[0], "id", "") == "ARGUMENTS")
    names = {k.value for k in args_dict.keys}
    assert NAV_ARGS <= names


# ---- stand-in launch modules ---------------------------------------------------------------


class Recorder:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration(Recorder):
    def perform(self, context: Any) -> str:
        return context.launch_configurations[self.args[0]]


def fake_launch_modules() -> dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.substitutions", "launch.launch_description_sources",
        "launch_ros", "launch_ros.actions")}
    mods["launch"].LaunchDescription = Recorder
    for cls in ("DeclareLaunchArgument", "OpaqueFunction", "IncludeLaunchDescription"):
        setattr(mods["launch.actions"], cls, type(cls, (Recorder,), {}))
    mods["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    mods["launch.launch_description_sources"].PythonLaunchDescriptionSource = Recorder
    mods["launch_ros.actions"].Node = type("Node", (Recorder,), {})
    return mods


def run_launch(path: Path, overrides: dict[str, str]) -> list[Recorder]:
    """Nodes the launch file would start with default arguments plus `overrides`."""
    spec = importlib.util.spec_from_file_location(f"launch_under_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ld = module.generate_launch_description()
    entities = ld.args[0]
    defaults = {e.args[0]: e.kwargs["default_value"] for e in entities
                if type(e).__name__ == "DeclareLaunchArgument"}
    context = types.SimpleNamespace(launch_configurations={**defaults, **overrides})
    nodes: list[Recorder] = []
    for e in entities:
        if type(e).__name__ == "OpaqueFunction":
            nodes += e.kwargs["function"](context)
        elif type(e).__name__ == "IncludeLaunchDescription":
            included = Path(e.args[0].args[0])
            forwarded = {k: v.perform(context) for k, v in e.kwargs["launch_arguments"]}
            nodes += run_launch(included, forwarded)
    return nodes


@pytest.fixture()
def launch_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, mod in fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)


def check_nodes(nodes: list[Recorder]) -> dict[str, Recorder]:
    by_name = {n.kwargs["name"]: n for n in nodes}
    assert len(by_name) == len(nodes)
    for name, node in by_name.items():
        assert node.kwargs["executable"] in console_scripts()
        (values,) = node.kwargs["parameters"]
        values = dict(values)
        if name == "deceptive_planner_node" and "decoys" in values:
            decoys = values.pop("decoys")  # a double array the node declares itself
            assert len(decoys) % 2 == 0 and all(type(v) is float for v in decoys), decoys
        assert params.check_values(name, values) is None, name
    return by_name


def test_navigation_launch_nodes(launch_modules: None) -> None:
    nodes = check_nodes(run_launch(REPO / "launch" / "navigation_launch.py",
                                   {"namespace": "robot1", "model": "/m/x.onnx"}))
    assert set(nodes) == {"sensor_fusion_node", "local_planner_node", "instruction_node",
                          "mission_executor_node"}
    planner = nodes["local_planner_node"]
    assert planner.kwargs["remappings"] == [("scan", "scan_fused")]
    assert planner.kwargs["namespace"] == "robot1"
    values = planner.kwargs["parameters"][0]
    assert values["model"] == "/m/x.onnx" and values["use_sim_time"] is False
    assert values["control_rate"] == 20.0  # read from config/nav_policy.yaml


def test_sim_launch_adds_the_bridge_and_sim_time(launch_modules: None) -> None:
    nodes = check_nodes(run_launch(REPO / "launch" / "sim_launch.py",
                                   {"tier": "medium", "seed": "7", "planner": "dwa"}))
    assert set(nodes) == {"sim_bridge_node", "sensor_fusion_node", "local_planner_node",
                          "instruction_node", "mission_executor_node"}
    bridge = nodes["sim_bridge_node"].kwargs["parameters"][0]
    assert (bridge["tier"], bridge["seed"]) == ("medium", 7)
    planner = nodes["local_planner_node"].kwargs["parameters"][0]
    assert planner["use_sim_time"] is True and planner["planner"] == "dwa"


def test_navigation_launch_adds_the_deceptive_planner_on_request(launch_modules: None) -> None:
    nodes = check_nodes(run_launch(REPO / "launch" / "navigation_launch.py",
                                   {"deceptive": "true", "decoys": "1.5, -2.0,3,4",
                                    "namespace": "robot1"}))
    assert set(nodes) == {"sensor_fusion_node", "local_planner_node", "instruction_node",
                          "mission_executor_node", "deceptive_planner_node"}
    dpp = nodes["deceptive_planner_node"]
    values = dpp.kwargs["parameters"][0]
    assert dpp.kwargs["namespace"] == "robot1" and values["use_sim_time"] is False
    assert values["decoys"] == [1.5, -2.0, 3.0, 4.0]
    assert values["world"] == "" and values["budget"] == 1.5  # the params file's: map topic
    assert nodes["mission_executor_node"].kwargs["parameters"][0]["publish_plan"] is False
    with pytest.raises(ValueError, match="pairs"):
        run_launch(REPO / "launch" / "navigation_launch.py",
                   {"deceptive": "true", "decoys": "1.0,2.0,3.0"})
    with pytest.raises(ValueError, match="numbers"):
        run_launch(REPO / "launch" / "navigation_launch.py",
                   {"deceptive": "true", "decoys": "1.0,a"})


def test_sim_launch_deceptive_planner_uses_the_sim_world(launch_modules: None) -> None:
    world = str(REPO / "sim" / "worlds" / "home.yaml")
    nodes = check_nodes(run_launch(REPO / "launch" / "sim_launch.py",
                                   {"world": world, "deceptive": "true", "decoys": "-3,2.2"}))
    assert "deceptive_planner_node" in nodes and "sim_bridge_node" in nodes
    values = nodes["deceptive_planner_node"].kwargs["parameters"][0]
    assert values["world"] == world and values["use_sim_time"] is True
    assert values["decoys"] == [-3.0, 2.2]
    assert nodes["sim_bridge_node"].kwargs["parameters"][0]["world"] == world
    plain = check_nodes(run_launch(REPO / "launch" / "sim_launch.py", {"world": world}))
    assert "deceptive_planner_node" not in plain  # off by default
    assert plain["mission_executor_node"].kwargs["parameters"][0]["publish_plan"] is True
