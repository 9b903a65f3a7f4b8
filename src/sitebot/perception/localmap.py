"""Rolling local occupancy grid in the odom frame, from lidar scans and depth obstacle points.

No ROS here; time is an argument. The grid is a square window (``size_m``, ``resolution_m``)
that follows the robot: when the robot moves more than ``recentre_m`` from the window's
centre the window shifts by whole cells (what falls off is forgotten, what comes in is
unknown). Each cell holds a log-odds value and the time it was last observed:

* lidar: cells along each beam (up to the hit, or ``max_free_range_m`` for a beam with no
  return) get ``free`` evidence, the hit cell ``occupied`` evidence (vectorised: every beam
  is sampled at half-cell steps in one array operation);
* depth: obstacle points between ``min_obstacle_height_m`` and ``max_obstacle_height_m``
  (the robot's height) add ``occupied`` evidence (the lidar at 0.35 m does not see a pallet
  or a low pipe; the camera does);
* decay: a cell not observed for ``decay_s`` returns to unknown.

Output (:meth:`LocalMap.grid`): int8 cells -1 unknown, 0 free, 100 occupied (row-major,
row = y), as nav_msgs/OccupancyGrid wants.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sitebot.config.checks import check_ranges
from sitebot.types import Pose2D

__all__ = ["LocalMapConfig", "LocalMap"]


@dataclass(frozen=True)
class LocalMapConfig:
    size_m: float = 10.0
    resolution_m: float = 0.05
    recentre_m: float = 1.0
    hit_logodds: float = 0.85
    free_logodds: float = -0.4
    min_logodds: float = -2.0
    max_logodds: float = 2.0
    occupied_threshold: float = 0.8
    free_threshold: float = -0.3
    decay_s: float = 5.0
    max_free_range_m: float = 6.0
    min_obstacle_height_m: float = 0.05
    max_obstacle_height_m: float = 1.9

    def __post_init__(self) -> None:
        check_ranges(self, (("size_m", 1.0, 100.0), ("resolution_m", 0.01, 1.0),
                            ("recentre_m", 0.0, 50.0), ("decay_s", 0.1, 3600.0),
                            ("max_free_range_m", 0.1, 100.0)))
        if self.size_m / self.resolution_m > 4000:
            raise ValueError("LocalMapConfig: more than 4000 cells across")


class LocalMap:
    """The rolling window. ``origin`` is the odom-frame (x, y) of cell (0, 0)'s corner."""

    def __init__(self, config: LocalMapConfig | None = None) -> None:
        self.config = c = config or LocalMapConfig()
        self.n = int(round(c.size_m / c.resolution_m))
        self.logodds = np.zeros((self.n, self.n), np.float32)
        self.seen = np.full((self.n, self.n), -np.inf, np.float64)
        self.origin = (-self.n * c.resolution_m / 2, -self.n * c.resolution_m / 2)
        self.t_s = -math.inf

    # -------------------------------------------------------------- window
    @property
    def center(self) -> tuple[float, float]:
        half = self.n * self.config.resolution_m / 2
        return self.origin[0] + half, self.origin[1] + half

    def follow(self, x: float, y: float) -> None:
        """Shift the window (whole cells) so that it stays centred near (x, y)."""
        c = self.config
        cx, cy = self.center
        if math.hypot(x - cx, y - cy) <= c.recentre_m:
            return
        res = c.resolution_m
        dc = int(round((x - cx) / res))
        dr = int(round((y - cy) / res))
        self.logodds = _shift(self.logodds, dr, dc, 0.0)
        self.seen = _shift(self.seen, dr, dc, -np.inf)
        self.origin = (self.origin[0] + dc * res, self.origin[1] + dr * res)

    def _cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        res = self.config.resolution_m
        c = np.floor((xy[:, 0] - self.origin[0]) / res).astype(np.int64)
        r = np.floor((xy[:, 1] - self.origin[1]) / res).astype(np.int64)
        ok = (r >= 0) & (r < self.n) & (c >= 0) & (c < self.n)
        return r, c, ok

    # -------------------------------------------------------------- updates
    def update_scan(self, laser_pose: Pose2D, ranges: np.ndarray,
                    angles: np.ndarray, range_min: float, range_max: float, t_s: float) -> None:
        """One scan from the laser at ``laser_pose`` (odom x, y, yaw)."""
        c = self.config
        self.t_s = max(self.t_s, t_s)
        r = np.asarray(ranges, dtype=np.float64)
        a = np.asarray(angles, dtype=np.float64) + laser_pose[2]
        with np.errstate(invalid="ignore"):
            hit = np.isfinite(r) & (r >= range_min) & (r <= range_max)
            nohit = np.isposinf(r) | (np.isfinite(r) & (r > range_max))
        free_len = np.where(hit, np.minimum(r, c.max_free_range_m),
                            np.where(nohit, c.max_free_range_m, 0.0))
        step = c.resolution_m * 0.75
        k = int(math.ceil(c.max_free_range_m / step))
        s = np.arange(k) * step                                     # samples along a beam
        use = free_len > 0
        if use.any():
            ca, sa = np.cos(a[use]), np.sin(a[use])
            L = free_len[use]
            # stop one half cell before the hit so the hit cell is not cleared
            m = s[None, :] < (L[:, None] - np.where(hit[use], c.resolution_m, 0.0)[:, None])
            xs = laser_pose[0] + ca[:, None] * s[None, :]
            ys = laser_pose[1] + sa[:, None] * s[None, :]
            pts = np.column_stack([xs[m], ys[m]])
            self._add(pts, c.free_logodds, t_s, unique=True)
        if hit.any():
            ends = np.column_stack([laser_pose[0] + r[hit] * np.cos(a[hit]),
                                    laser_pose[1] + r[hit] * np.sin(a[hit])])
            self._add(ends, c.hit_logodds, t_s, unique=True)

    def update_points(self, points_odom: np.ndarray, t_s: float) -> None:
        """Depth obstacle points (N, 3) in the odom frame (z = height above the floor)."""
        c = self.config
        self.t_s = max(self.t_s, t_s)
        p = np.asarray(points_odom, dtype=np.float64).reshape(-1, 3)
        p = p[(p[:, 2] >= c.min_obstacle_height_m) & (p[:, 2] <= c.max_obstacle_height_m)]
        if len(p):
            self._add(p[:, :2], c.hit_logodds, t_s, unique=True)

    def _add(self, xy: np.ndarray, delta: float, t_s: float, unique: bool) -> None:
        """Add ``delta`` once to every cell holding at least one of the points."""
        r, cc, ok = self._cells(xy)
        if not ok.any():
            return
        flat = r[ok] * self.n + cc[ok]
        if unique:                       # a mask instead of np.unique: no sort
            mask = np.zeros(self.n * self.n, bool)
            mask[flat] = True
            flat = mask
        c = self.config
        lo = self.logodds.reshape(-1)
        lo[flat] = np.clip(lo[flat] + delta, c.min_logodds, c.max_logodds)
        self.seen.reshape(-1)[flat] = t_s

    # -------------------------------------------------------------- output
    def grid(self, t_s: float | None = None) -> np.ndarray:
        """int8 (n, n): -1 unknown (or not seen for decay_s), 0 free, 100 occupied."""
        c = self.config
        now = self.t_s if t_s is None else t_s
        out = np.full((self.n, self.n), -1, np.int8)
        fresh = (now - self.seen) <= c.decay_s
        out[fresh & (self.logodds <= c.free_threshold)] = 0
        out[fresh & (self.logodds >= c.occupied_threshold)] = 100
        stale = ~fresh & np.isfinite(self.seen)
        if stale.any():                   # forget decayed evidence entirely
            self.logodds[stale] = 0.0
            self.seen[stale] = -np.inf
        return out

    def value_at(self, x: float, y: float, t_s: float | None = None) -> int:
        """The cell value (-1, 0, 100) at odom (x, y); -1 outside the window."""
        r, c, ok = self._cells(np.array([[x, y]]))
        if not ok[0]:
            return -1
        return int(self.grid(t_s)[r[0], c[0]])


def _shift(a: np.ndarray, dr: int, dc: int, fill: float) -> np.ndarray:
    """Contents moved so that cell (r, c) of the new array is (r + dr, c + dc) of the old."""
    n0, n1 = a.shape
    out = np.full_like(a, fill)
    if abs(dr) >= n0 or abs(dc) >= n1:
        return out
    src_r = slice(max(dr, 0), n0 + min(dr, 0))
    dst_r = slice(max(-dr, 0), n0 + min(-dr, 0))
    src_c = slice(max(dc, 0), n1 + min(dc, 0))
    dst_c = slice(max(-dc, 0), n1 + min(-dc, 0))
    out[dst_r, dst_c] = a[src_r, src_c]
    return out
