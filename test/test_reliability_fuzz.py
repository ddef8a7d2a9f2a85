"""Hypothesis fuzzing of the parsers and loaders not already fuzzed elsewhere (issue 10).

Already fuzzed, not repeated here: the instruction parser
(test_instruct_parser.py::test_fuzz_parser_plan_or_instruction_error) and the landmark loader
(test_instruct_grounding.py::test_fuzz_loader_data, ::test_fuzz_loader_yaml_text).

Every property: a bad input yields the documented error class (CodecError, WorldError,
GraphError, ModelError, InstructionError), never another exception. Bounded example counts and
deadline=None keep the file fast and free of timing flakiness on a loaded machine.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nav_policy.codecs import (
    ActionSpec,
    ObsSpec,
    SensorFrame,
    decode_action,
    encode_action,
    encode_observation,
    pool_scan,
)
from nav_policy.deception.graphs import GraphError, graph_from_dict
from nav_policy.errors import CodecError, ModelError, WorldError
from nav_policy.instruct.errors import InstructionError
from nav_policy.instruct.parser import RawStep
from nav_policy.instruct.schema import plan_from_data
from nav_policy.instruct.vlm import (
    VlmConfig,
    VlmFailure,
    build_request,
    plan_steps_from_content,
    reply_content,
)
from nav_policy.runtime.metadata import REQUIRED, ModelMetadata
from nav_policy.sim.world import World, world_from_dict

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SPEC = ObsSpec()

# floats a sensor or a file can produce: NaN, +-inf, huge, negative, subnormal
ANY_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 0.12,
                     3.5, 1e-9]),
    st.floats(min_value=0.0, max_value=5.0),
)
# JSON/YAML-like values, nested
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), ANY_FLOAT,
                   st.text(max_size=12))
DATA = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=25)


def _scan(length_choice: st.SearchStrategy[int]) -> st.SearchStrategy[np.ndarray]:
    return length_choice.flatmap(
        lambda n: st.lists(ANY_FLOAT, min_size=n, max_size=n).map(np.array))


SCANS = st.one_of(
    _scan(st.just(SPEC.beams)),  # right length, arbitrary values
    _scan(st.sampled_from([0, 1, 359, 361, 720])),  # wrong length
    st.builds(lambda v: np.full(SPEC.beams, v), ANY_FLOAT),  # all one value
    st.builds(lambda v, k: np.where(np.arange(SPEC.beams) % k == 0, v, 2.0), ANY_FLOAT,
              st.integers(1, 5)),  # a fraction of bad beams around the threshold
)


def _in_bounds(obs: np.ndarray) -> bool:
    low, high = SPEC.bounds()
    return obs.shape == (SPEC.size,) and bool(np.all(np.isfinite(obs))) and \
        bool(np.all(obs >= low - 1e-6)) and bool(np.all(obs <= high + 1e-6))


# ---- codec ---------------------------------------------------------------------------------


@FUZZ
@given(SCANS)
def test_fuzz_pool_scan_in_bounds_or_codec_error(ranges: np.ndarray) -> None:
    try:
        pooled = pool_scan(ranges, SPEC)
    except CodecError:
        return
    assert pooled.shape == (SPEC.sectors,) and np.all(np.isfinite(pooled))
    assert np.all(pooled >= SPEC.range_min) and np.all(pooled <= SPEC.range_max)


@FUZZ
@given(SCANS, st.tuples(ANY_FLOAT, ANY_FLOAT, ANY_FLOAT), st.tuples(ANY_FLOAT, ANY_FLOAT),
       st.tuples(ANY_FLOAT, ANY_FLOAT),
       st.one_of(st.lists(ANY_FLOAT, min_size=2, max_size=2), st.lists(ANY_FLOAT, max_size=4)),
       st.sampled_from([(0.12, 3.5), (0.1, 3.5), (0.12, 10.0)]))
def test_fuzz_encode_observation_in_bounds_or_codec_error(ranges, pose, velocity, goal, prev,
                                                           rng) -> None:
    frame = SensorFrame(ranges=ranges, angle_min=-math.pi, angle_increment=0.0175,
                        range_min=rng[0], range_max=rng[1], pose=pose, velocity=velocity,
                        goal=goal)
    try:
        obs = encode_observation(frame, np.array(prev, dtype=np.float64), SPEC)
    except CodecError:
        return
    assert _in_bounds(obs), obs


@FUZZ
@given(st.lists(ANY_FLOAT, min_size=2, max_size=2))
def test_fuzz_decode_action_within_limits(a: list[float]) -> None:
    spec = ActionSpec()
    arr = np.array(a, dtype=np.float64)
    vw = decode_action(arr, spec)
    if np.all(np.isfinite(arr)):
        assert spec.v_min - 1e-9 <= vw[0] <= spec.v_max + 1e-9
        assert abs(vw[1]) <= spec.w_max + 1e-9
    # non-finite input: no exception; NaN passes through clip, and the safety layer's check
    # (SafetyLayer.filter: "non-finite planner command" -> zero) is what stops the robot


@FUZZ
@given(ANY_FLOAT, ANY_FLOAT)
def test_fuzz_encode_action_clipped_and_roundtrips(v: float, w: float) -> None:
    spec = ActionSpec()
    with np.errstate(invalid="ignore", over="ignore"):
        a = encode_action(v, w, spec)
    assert a.shape == (2,)
    finite = a[np.isfinite(a)]
    assert np.all(finite >= -1.0) and np.all(finite <= 1.0)
    if math.isfinite(v) and math.isfinite(w) and 0 <= v <= spec.v_max and abs(w) <= spec.w_max:
        back = decode_action(a.astype(np.float64), spec)
        assert abs(back[0] - v) < 1e-5 and abs(back[1] - w) < 1e-5


@FUZZ
@given(st.one_of(st.text(max_size=60), DATA.map(json.dumps)))
def test_fuzz_spec_json_codec_error(text: str) -> None:
    for cls in (ObsSpec, ActionSpec):
        try:
            cls.from_json(text)
        except CodecError:
            pass


# ---- world files ---------------------------------------------------------------------------
# The generated files are well-typed in shape (lists where lists go, numbers where numbers go)
# with hostile values (NaN, inf, huge, negative, strings inside vectors). Wrongly typed scalars
# (a string yaw, an int start) must give WorldError too (regression tests below).

_NUM = st.one_of(ANY_FLOAT, st.integers(-5, 5))
_VEC = st.one_of(st.lists(st.one_of(_NUM, st.text(max_size=3), st.none()), max_size=4), _NUM,
                 st.none())
_OBSTACLE = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["box", "cylinder", "cone", 3])},
                          optional={"center": _VEC, "size": _VEC, "yaw": _NUM, "radius": _VEC,
                                    "height": _NUM}),
    SCALAR)
_WORLD = st.one_of(
    st.fixed_dictionaries(
        {"size": st.one_of(st.just([6.0, 4.0]), _VEC),
         "start": st.one_of(st.just([-2.0, 0.0]), st.lists(_NUM, max_size=4)),
         "goal": st.one_of(st.just([2.0, 0.0]), _VEC)},
        optional={"obstacles": st.lists(_OBSTACLE, max_size=3),
                  "moving": st.lists(st.one_of(st.fixed_dictionaries(
                      {"waypoints": st.one_of(st.lists(_VEC, max_size=3), SCALAR)},
                      optional={"radius": _VEC, "speed": _NUM}), SCALAR), max_size=2),
                  "shortest_path": _NUM, "name": SCALAR, "tier": SCALAR}),
    SCALAR, st.lists(SCALAR, max_size=3))


@FUZZ
@given(_WORLD)
def test_fuzz_world_from_dict_world_or_world_error(data: object) -> None:
    try:
        world = world_from_dict(data, "fuzz")
    except WorldError as exc:
        assert str(exc).startswith("fuzz")
        return
    assert isinstance(world, World)
    assert all(math.isfinite(v) for v in (*world.size, *world.start, *world.goal))


@FUZZ
@given(st.one_of(st.text(max_size=120), _WORLD.map(lambda d: yaml.safe_dump(d))))
def test_fuzz_load_world_yaml_text(tmp_path_factory, text: str) -> None:
    from nav_policy.sim.world import load_world

    path = tmp_path_factory.mktemp("w") / "world.yaml"
    path.write_text(text)
    try:
        load_world(path)
    except WorldError:
        pass


_W = {"size": [6, 4], "start": [0, 0], "goal": [1, 0]}


@pytest.mark.parametrize("bad", [
    {**_W, "obstacles": [{"type": "box", "center": [0, 1], "size": [1, 1], "yaw": "abc"}]},
    {**_W, "start": 5},
    {**_W, "shortest_path": "x"},
    {**_W, "moving": [{"waypoints": [[0, 0]], "radius": 0.2, "speed": "fast"}]},
    {**_W, "obstacles": 5},
], ids=["yaw_text", "start_int", "shortest_path_text", "speed_text", "obstacles_int"])
def test_world_from_dict_wrong_scalar_types_raise_world_error(bad: dict) -> None:
    with pytest.raises(WorldError):
        world_from_dict(bad, "bad")


# ---- graph files ---------------------------------------------------------------------------
# Link ends are hashable scalars here; unhashable ends and ids beyond int64 are the
# regression tests below.

_ID = st.one_of(st.integers(-3, 6), st.text(max_size=3), ANY_FLOAT, st.none(), st.booleans())
_GRAPH = st.one_of(
    st.fixed_dictionaries(
        {"nodes": st.one_of(st.lists(st.one_of(st.fixed_dictionaries(
            {"id": _ID}, optional={"pos": _VEC}), SCALAR), max_size=6), SCALAR),
         "links": st.one_of(st.lists(st.one_of(st.fixed_dictionaries(
             {"source": _ID, "target": _ID}, optional={"weight": _ID}), SCALAR), max_size=6),
             SCALAR)},
        optional={"directed": SCALAR, "graph": SCALAR}),
    SCALAR, st.lists(SCALAR, max_size=3))


@FUZZ
@given(_GRAPH)
def test_fuzz_graph_from_dict_graph_or_graph_error(data: object) -> None:
    with np.errstate(over="ignore"):
        try:
            graph_from_dict(data, "fuzz")
        except GraphError:
            pass


@pytest.mark.parametrize("bad", [
    {"nodes": [{"id": 0}, {"id": 1}], "links": [{"source": [0], "target": 1}]},
    {"nodes": [{"id": 0}, {"id": 1}], "links": [{"source": {}, "target": 1}]},
    {"nodes": [{"id": 10**20}], "links": []},
], ids=["list_source", "dict_source", "id_overflow"])
def test_graph_from_dict_bad_link_ends_raise_graph_error(bad: dict) -> None:
    with pytest.raises(GraphError):
        graph_from_dict(bad, "bad")


# ---- model metadata ------------------------------------------------------------------------

_PROP_VALUE = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["rl", "ebm", "dpp", "1", "0", "-1", "1e400", "nan"]),
    st.just(ObsSpec().to_json()), st.just(ActionSpec().to_json()),
    DATA.map(json.dumps),
    st.dictionaries(st.sampled_from(["beams", "sectors", "range_min", "range_max", "v_min",
                                     "v_max", "w_max"]), SCALAR).map(json.dumps),
)


@FUZZ
@given(st.dictionaries(st.one_of(st.sampled_from(REQUIRED), st.text(max_size=8)), _PROP_VALUE,
                       max_size=10))
def test_fuzz_model_metadata_from_props(props: dict[str, str]) -> None:
    try:
        meta = ModelMetadata.from_props(props, "fuzz.onnx")
    except ModelError as exc:
        assert str(exc).startswith("fuzz.onnx")
        return
    assert meta.kind in ("rl", "ebm", "dpp")


# ---- plan schema (the parser is fuzzed in test_instruct_parser.py) ----------------------------

_STEP = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(["go_to", "go_past", "go_through", "go_into", "exit",
                                          "turn", "move", "wait", "stop", "drive", "exec"]),
                         SCALAR)},
    optional={"target": SCALAR, "direction": st.one_of(
        st.sampled_from(["left", "right", "around", "forward", "backward"]), SCALAR),
        "distance_m": SCALAR, "angle_deg": SCALAR, "duration_s": SCALAR, "speed": SCALAR,
        "command": SCALAR})


@FUZZ
@given(st.one_of(st.fixed_dictionaries({"steps": st.lists(_STEP, max_size=4)}), DATA))
def test_fuzz_plan_from_data_plan_or_instruction_error(data: object) -> None:
    try:
        plan = plan_from_data(data)
    except InstructionError as exc:
        assert exc.code == "invalid_value"
        return
    dumped = plan.model_dump()
    assert set(dumped) == {"steps"}
    for step in dumped["steps"]:  # nothing outside the schema survives validation
        assert set(step) <= {"action", "target", "direction", "distance_m", "angle_deg",
                             "duration_s"}


# ---- the VLM path: nothing but a schema-validated plan comes out ------------------------------

_TOOLISH = st.sampled_from([
    '{"tool_calls": [{"function": {"name": "shell", "arguments": "rm -rf /"}}]}',
    '{"steps": [{"action": "exec", "target": "__import__(\'os\').system(\'id\')"}]}',
    '{"steps": [{"action": "go_to", "target": "kitchen", "speed": 5.0}]}',
    '{"steps": [{"action": "move", "direction": "forward", "distance_m": 1e9}]}',
    '{"steps": [{"action": "go_to", "target": "kitchen"}], "eval": "1+1"}',
    '[' * 5000, '{"steps": []}', '',
])


@FUZZ
@given(st.one_of(_TOOLISH, st.text(max_size=200), DATA.map(json.dumps),
                 st.fixed_dictionaries({"steps": st.lists(_STEP, max_size=3)}).map(json.dumps)),
       st.one_of(st.none(), st.lists(DATA, max_size=2)))
def test_fuzz_vlm_reply_yields_plan_steps_or_vlm_failure(content: str, tool_calls) -> None:
    reply = {"choices": [{"message": {"content": content, "tool_calls": tool_calls},
                          "finish_reason": "stop"}]}
    try:
        steps = plan_steps_from_content(reply_content(reply))
    except VlmFailure as exc:
        assert "\n" not in str(exc)
        return
    for s in steps:  # the schema's actions only; extra fields ("speed", "eval") are refused
        assert isinstance(s, RawStep)
        assert s.action in ("go_to", "go_past", "go_through", "go_into", "exit", "turn", "move",
                            "wait", "stop")


@pytest.mark.parametrize("content", [
    '{"steps": [{"action": "go_to", "target": "kitchen", "speed": 5.0}]}',
    '{"steps": [{"action": "go_to", "target": "kitchen"}], "eval": "1+1"}',
    '{"steps": [{"action": "exec", "target": "id"}]}',
])
def test_vlm_reply_with_extra_fields_or_actions_is_refused(content: str) -> None:
    with pytest.raises(VlmFailure, match="schema"):
        plan_steps_from_content(content)


def test_vlm_request_offers_no_tools() -> None:
    body = build_request("go to the kitchen", VlmConfig(), None)
    assert not {"tools", "functions", "tool_choice", "function_call"} & set(body)
    assert body["response_format"]["type"] == "json_schema"


def test_instruction_path_has_no_eval_exec_or_shell() -> None:
    """Static check of everything a VLM reply or an instruction passes through."""
    import ast
    from pathlib import Path

    import nav_policy

    root = Path(nav_policy.__file__).parent
    files = [*sorted((root / "instruct").glob("*.py")), root / "ros" / "instruction_node.py",
             root / "ros" / "mission_executor_node.py"]
    banned_calls = {"eval", "exec", "compile", "__import__"}
    banned_modules = {"subprocess", "pickle", "marshal", "shelve", "pty"}
    banned_attrs = {"os.system", "os.popen", "os.execv", "os.execvp", "os.spawnv", "yaml.load",
                    "yaml.unsafe_load", "yaml.full_load", "builtins.eval", "builtins.exec"}
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name):  # builtins (re.compile is fine, compile is not)
                    assert f.id not in banned_calls, f"{path.name}:{node.lineno} calls {f.id}"
                full = ast.unparse(f)
                assert full not in banned_attrs, f"{path.name}:{node.lineno} calls {full}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""]
                for m in mods:
                    assert m.split(".")[0] not in banned_modules, f"{path.name} imports {m}"
