"""Observation and action codecs: pooling rules, invalid input, numpy/torch parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nav_policy.codecs import (
    ActionSpec,
    ObsSpec,
    SensorFrame,
    decode_action,
    encode_action,
    encode_observation,
    goal_features,
    pool_scan,
)
from nav_policy.errors import CodecError

SPEC = ObsSpec(beams=12, sectors=3, range_min=0.1, range_max=4.0)
ACTION = ActionSpec(v_min=0.0, v_max=0.5, w_max=2.0)


def _frame(ranges: np.ndarray, **kw: object) -> SensorFrame:
    args: dict[str, object] = {
        "ranges": ranges, "angle_min": -math.pi, "angle_increment": 2 * math.pi / SPEC.beams,
        "range_min": SPEC.range_min, "range_max": SPEC.range_max, "pose": (0.0, 0.0, 0.0),
        "velocity": (0.2, -0.5), "goal": (3.0, 4.0),
    }
    args.update(kw)
    return SensorFrame(**args)  # type: ignore[arg-type]


# ---- pooling ---------------------------------------------------------------------------------
def test_pool_min_per_sector() -> None:
    r = np.array([3.0, 2.0, 1.5, 2.5, 1.0, 1.1, 0.9, 3.9, 2.2, 2.1, 2.3, 2.4])
    np.testing.assert_allclose(pool_scan(r, SPEC), [1.5, 0.9, 2.1])


def test_pool_inf_reads_range_max() -> None:
    r = np.full(12, np.inf)
    r[4] = 1.0
    np.testing.assert_allclose(pool_scan(r, SPEC), [4.0, 1.0, 4.0])


@pytest.mark.parametrize("invalid", [np.nan, -np.inf, 0.05, -1.0])
def test_pool_ignores_invalid_beams(invalid: float) -> None:
    r = np.full(12, 2.0)
    r[[0, 1, 5]] = invalid  # sector 0: two invalid beams, the rest 2.0; sector 1: one
    r[2] = 1.2
    np.testing.assert_allclose(pool_scan(r, SPEC), [1.2, 2.0, 2.0])


def test_pool_sector_of_only_invalid_reads_range_max() -> None:
    r = np.full(12, 1.0)
    r[:4] = np.nan  # 4 of 12 invalid: under the 0.5 limit
    np.testing.assert_allclose(pool_scan(r, SPEC), [4.0, 1.0, 1.0])


def test_pool_clips_to_range() -> None:
    r = np.full(12, 10.0)
    r[0] = 0.1  # exactly range_min is valid
    np.testing.assert_allclose(pool_scan(r, SPEC), [0.1, 4.0, 4.0])


def test_pool_accepts_float32_and_lists() -> None:
    r = [1.0] * 12
    as_list = pool_scan(r, SPEC)  # type: ignore[arg-type]
    assert pool_scan(np.asarray(r, np.float32), SPEC).tolist() == as_list.tolist()


@pytest.mark.parametrize("ranges, message", [
    (np.full(12, np.nan), r"12 of 12 beams are invalid"),
    (np.r_[np.full(7, np.nan), np.ones(5)], r"7 of 12 beams are invalid"),
    (np.ones(11), r"11 beams, the model expects 12"),
    (np.ones(24), r"24 beams"),
    (np.array([]), r"empty"),
    (np.ones((3, 4)), r"non-1D"),
], ids=["all-nan", "too-many-nan", "short", "long", "empty", "2d"])
def test_pool_rejects_bad_scans(ranges: np.ndarray, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        pool_scan(ranges, SPEC)


@pytest.mark.parametrize("kwargs", [dict(beams=10, sectors=3), dict(range_min=0.0),
                                    dict(range_min=5.0, range_max=4.0), dict(sectors=0)])
def test_obs_spec_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(CodecError):
        ObsSpec(**kwargs)  # type: ignore[arg-type]


def test_obs_spec_json_round_trip() -> None:
    assert ObsSpec.from_json(SPEC.to_json()) == SPEC
    with pytest.raises(CodecError, match="invalid obs_spec"):
        ObsSpec.from_json('{"beams": 12, "colour": 3}')


# ---- observation -----------------------------------------------------------------------------
def test_goal_features() -> None:
    d, c, s = goal_features((1.0, 1.0, math.pi / 2), (1.0, 3.0), SPEC)
    assert (d, c, s) == pytest.approx((2.0, 1.0, 0.0), abs=1e-12)  # straight ahead
    d, c, s = goal_features((0.0, 0.0, 0.0), (0.0, -50.0), SPEC)
    assert (d, c, s) == pytest.approx((SPEC.goal_max, 0.0, -1.0), abs=1e-12)  # to the right


def test_encode_observation_layout() -> None:
    ranges = np.full(12, 2.0)
    obs = encode_observation(_frame(ranges), np.array([0.5, -0.25]), SPEC)
    assert obs.dtype == np.float32 and obs.shape == (SPEC.size,)
    np.testing.assert_allclose(obs[:3], 2.0)
    np.testing.assert_allclose(obs[3:6], [5.0, 0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(obs[6:], [0.2, -0.5, 0.5, -0.25])
    low, high = SPEC.bounds()
    assert np.all(obs >= low) and np.all(obs <= high)


@pytest.mark.parametrize("kw, prev, message", [
    (dict(range_max=3.5), [0.0, 0.0], r"scan range .* differs"),
    (dict(velocity=(math.nan, 0.0)), [0.0, 0.0], r"non-finite odometry"),
    (dict(pose=(math.nan, 0.0, 0.0)), [0.0, 0.0], r"non-finite pose"),
    ({}, [0.0], r"previous action"),
    ({}, [0.0, math.inf], r"previous action"),
])
def test_encode_observation_rejects(kw: dict[str, object], prev: list[float], message: str) -> None:
    with pytest.raises(CodecError, match=message):
        encode_observation(_frame(np.ones(12), **kw), np.array(prev), SPEC)


# ---- action ----------------------------------------------------------------------------------
@pytest.mark.parametrize("v, w", [(0.0, 0.0), (0.5, 2.0), (0.25, -2.0), (0.1, 0.3), (0.49, -1.7)])
def test_action_round_trip(v: float, w: float) -> None:
    a = encode_action(v, w, ACTION)
    assert a.dtype == np.float32 and np.all(np.abs(a) <= 1.0)
    np.testing.assert_allclose(decode_action(a, ACTION), [v, w], atol=1e-6)


def test_encode_action_clips_outside_limits() -> None:
    np.testing.assert_array_equal(encode_action(2.0, -9.0, ACTION), [1.0, -1.0])


def test_decode_action_numpy_and_torch_agree() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(-1.5, 1.5, size=(64, 2)).astype(np.float32)  # includes out-of-range values
    out_np = decode_action(a, ACTION)
    out_t = decode_action(torch.from_numpy(a), ACTION)
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (64, 2)
    np.testing.assert_array_equal(out_np, out_t.numpy())
    assert out_np[:, 0].min() >= ACTION.v_min and out_np[:, 0].max() <= ACTION.v_max
    assert np.abs(out_np[:, 1]).max() <= ACTION.w_max


@pytest.mark.parametrize("a, expected", [([-1.0, 0.0], [0.0, 0.0]), ([1.0, 1.0], [0.5, 2.0]),
                                         ([0.0, -0.5], [0.25, -1.0])])
def test_decode_action_values(a: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(decode_action(np.array(a), ACTION), expected)
    out = decode_action(torch.tensor(a, dtype=torch.float64), ACTION)
    np.testing.assert_allclose(out.numpy(), expected)


def test_action_spec_validates() -> None:
    with pytest.raises(CodecError):
        ActionSpec(v_min=0.5, v_max=0.5)
    with pytest.raises(CodecError):
        ActionSpec(w_max=0.0)
    assert ActionSpec.from_json(ACTION.to_json()) == ACTION
