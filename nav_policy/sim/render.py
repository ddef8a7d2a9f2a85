"""Top-down pictures of a world (OpenCV, RGB uint8): env.render, demo and benchmark PNGs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from nav_policy.sim.world import Box, World

OBSTACLE = (90, 90, 90)
MOVING = (200, 120, 40)
ROBOT = (40, 90, 220)
GOAL = (30, 170, 60)
PATH = (220, 60, 60)
HITS = (240, 40, 200)
REF_PATH = (120, 200, 120)


class TopDown:
    """Pixel mapping for a world; draw calls return self so they chain."""

    def __init__(self, world: World, size: int = 480) -> None:
        self.world = world
        self.scale = size / max(world.size)
        self.w = int(round(world.size[0] * self.scale))
        self.h = int(round(world.size[1] * self.scale))
        self.img = np.full((self.h, self.w, 3), 255, dtype=np.uint8)
        for ob in world.obstacles:
            self._shape(ob, OBSTACLE)
        cv2.rectangle(self.img, (0, 0), (self.w - 1, self.h - 1), OBSTACLE, 3)

    def px(self, x: float, y: float) -> tuple[int, int]:
        hx, hy = self.world.half
        return int(round((x + hx) * self.scale)), int(round((hy - y) * self.scale))

    def _shape(self, ob: Box | object, color: tuple[int, int, int]) -> None:
        if isinstance(ob, Box):
            c, s = math.cos(ob.yaw), math.sin(ob.yaw)
            hx, hy = ob.size[0] / 2, ob.size[1] / 2
            pts = [self.px(ob.center[0] + c * u - s * v, ob.center[1] + s * u + c * v)
                   for u, v in ((hx, hy), (-hx, hy), (-hx, -hy), (hx, -hy))]
            cv2.fillPoly(self.img, [np.array(pts, dtype=np.int32)], color)
        else:
            cx, cy = ob.center  # type: ignore[attr-defined]
            cv2.circle(self.img, self.px(cx, cy), max(1, int(ob.radius * self.scale)),  # type: ignore[attr-defined]
                       color, -1, cv2.LINE_AA)

    def moving(self, positions: Sequence[tuple[float, float]]) -> TopDown:
        for m, (x, y) in zip(self.world.moving, positions):
            cv2.circle(self.img, self.px(x, y), max(1, int(m.radius * self.scale)), MOVING, -1,
                       cv2.LINE_AA)
        return self

    def goal(self, goal: tuple[float, float], tolerance: float = 0.25) -> TopDown:
        cv2.circle(self.img, self.px(*goal), max(2, int(tolerance * self.scale)), GOAL, 2, cv2.LINE_AA)
        cv2.drawMarker(self.img, self.px(*goal), GOAL, cv2.MARKER_CROSS, 10, 2)
        return self

    def polyline(self, pts: np.ndarray | Sequence[Sequence[float]], color: tuple[int, int, int],
                 thickness: int = 2) -> TopDown:
        arr = np.asarray(pts, dtype=float)
        if len(arr) >= 2:
            pix = np.array([self.px(x, y) for x, y in arr[:, :2]], dtype=np.int32)
            cv2.polylines(self.img, [pix], False, color, thickness, cv2.LINE_AA)
        return self

    def speed_path(self, pts: np.ndarray, speeds: np.ndarray, v_max: float) -> TopDown:
        """Driven path coloured by speed (blue slow → red fast)."""
        for k in range(1, len(pts)):
            f = float(np.clip(speeds[k] / max(v_max, 1e-6), 0, 1))
            color = (int(255 * f), 60, int(255 * (1 - f)))
            cv2.line(self.img, self.px(*pts[k - 1][:2]), self.px(*pts[k][:2]), color, 3, cv2.LINE_AA)
        return self

    def robot(self, pose: Sequence[float], radius: float, color: tuple[int, int, int] = ROBOT) -> TopDown:
        x, y, yaw = pose[:3]
        c = self.px(x, y)
        cv2.circle(self.img, c, max(2, int(radius * self.scale)), color, 2, cv2.LINE_AA)
        tip = self.px(x + radius * math.cos(yaw), y + radius * math.sin(yaw))
        cv2.line(self.img, c, tip, color, 2, cv2.LINE_AA)
        return self

    def lidar(self, pose: Sequence[float], ranges: np.ndarray, angles: np.ndarray) -> TopDown:
        x, y, yaw = pose[:3]
        ok = np.isfinite(ranges)
        for r, a in zip(ranges[ok], angles[ok]):
            cv2.circle(self.img, self.px(x + r * math.cos(yaw + a), y + r * math.sin(yaw + a)), 2,
                       HITS, -1)
        return self

    def save(self, path: str) -> None:
        cv2.imwrite(path, cv2.cvtColor(self.img, cv2.COLOR_RGB2BGR))


# ---- annotated PNGs (what a person reads without the docs) ----------------------------------


def speed_rgb(f: float) -> tuple[int, int, int]:
    """The colour of speed_path at fraction f of v_max (blue slow → red fast)."""
    f = float(np.clip(f, 0.0, 1.0))
    return int(255 * f), 60, int(255 * (1 - f))


def legend_marker(label: str, color: tuple[int, int, int], marker: str = "o",
                  line: str = "none", size: float = 8.0, filled: bool = True) -> dict[str, object]:
    """One legend entry (matplotlib Line2D keywords), colours as the picture's RGB."""
    rgb = tuple(c / 255.0 for c in color)
    return {"label": label, "color": rgb, "marker": marker, "linestyle": line,
            "markersize": size, "markerfacecolor": rgb if filled else "none",
            "markeredgecolor": rgb, "linewidth": 2.5}


def save_annotated(view: TopDown, path: str, title: str, legend: Sequence[dict[str, object]],
                   v_max: float | None = None, note: str = "") -> None:
    """`view` as a PNG with a title, axes in metres (the scale), a legend of every mark and,
    with v_max, a colour bar of the driven path's speed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.lines import Line2D

    hx, hy = view.world.half
    fig, ax = plt.subplots(figsize=(12.0, max(6.0, 9.0 * hy / hx)))
    ax.imshow(view.img, extent=(-hx, hx, -hy, hy), interpolation="antialiased")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title, fontsize=11)
    handles = [Line2D([], [], **entry) for entry in legend]  # type: ignore[arg-type]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9,
                  borderaxespad=0.0, frameon=False)
    if v_max:
        cmap = ListedColormap([tuple(c / 255 for c in speed_rgb(f))
                               for f in np.linspace(0, 1, 64)])
        bar = fig.colorbar(ScalarMappable(Normalize(0.0, v_max), cmap), ax=ax, shrink=0.45,
                           location="right", anchor=(0.0, 0.0), pad=0.02)
        bar.set_label("driven path: speed (m/s)")
    if note:
        fig.text(0.01, 0.01, note, fontsize=8, color="0.3")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
