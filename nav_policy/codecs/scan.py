"""The one scan-validity rule, for every planner (learned and classical), the node and the
benchmark.

Beams follow sensor_msgs/LaserScan (REP 117): a finite reading at or above range_min is a
return, +inf is "no return" (free space, valid), NaN, -inf and readings below range_min are
invalid. A scan is unusable, and the robot must stop, when it is empty, has the wrong number of
beams, or has more than MAX_INVALID_FRACTION of its beams invalid (or all of them).
"""

from __future__ import annotations

import numpy as np

# more invalid beams than this fraction: stop (the node's max_invalid_fraction default)
MAX_INVALID_FRACTION = 0.5


def invalid_beams(ranges: np.ndarray, range_min: float) -> np.ndarray:
    """Mask of the invalid beams (NaN, -inf, below range_min); +inf is valid."""
    r = np.asarray(ranges, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        valid = (np.isfinite(r) & (r >= range_min)) | np.isposinf(r)
    return ~valid


def scan_problem(ranges: np.ndarray, range_min: float, expected_beams: int | None = None,
                 max_invalid_fraction: float = MAX_INVALID_FRACTION) -> str | None:
    """Why a scan cannot be driven on, or None when it can."""
    r = np.asarray(ranges, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        return "empty scan"
    if expected_beams is not None and r.size != expected_beams:
        return f"scan has {r.size} beams, expected {expected_beams}"
    bad = int(np.count_nonzero(invalid_beams(r, range_min)))
    if bad > max_invalid_fraction * r.size or bad == r.size:
        return (f"{bad} of {r.size} beams are invalid (NaN, -inf or below range_min; at most "
                f"{max_invalid_fraction:.0%} may be)")
    return None
