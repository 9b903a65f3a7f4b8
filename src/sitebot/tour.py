"""A scripted site tour: the main job's driver until navigation and skills exist.

Core only (no ROS): an A* path on the world's static occupancy grid with a clearance cost,
line-of-sight shortcutting, and a path follower for a differential-drive base. The
navigation issue replaces the planner and follower; the tour keeps only its script (which
places to visit, what to record there).
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from sitebot.errors import SitebotError
from sitebot.site.registry import ZoneKind
from sitebot.sim.world import OccupancyGrid, WorldSpec

__all__ = ["TourStop", "tour_stops", "GridPlanner", "FollowerConfig", "PathFollower",
           "wrap_angle", "planning_grid"]


def wrap_angle(a: float) -> float:
    """Angle wrapped to (-pi, pi] [rad]."""
    return math.atan2(math.sin(a), math.cos(a))


@dataclass(frozen=True)
class TourStop:
    """A place to visit: id, name, map pose (x [m], y [m], yaw [rad]), assets there."""

    place_id: str
    name: str
    pose: tuple[float, float, float]
    assets: tuple[str, ...]


def tour_stops(world: WorldSpec, route_id: str | None = None, dock: bool = True) -> list[TourStop]:
    """The stops of ``route_id`` (default: the world's longest route), then the dock."""
    reg = world.registry
    if not reg.routes:
        raise SitebotError(f"world '{world.id}' has no routes to tour")
    if route_id is None:
        route = max(reg.routes, key=lambda r: len(r.waypoints))
    else:
        try:
            route = reg.route(route_id)
        except KeyError as e:
            raise SitebotError(str(e).strip('"')) from None
    place_ids = list(route.waypoints)
    if dock and reg.docks:
        place_ids.append(reg.docks[0].place)
    stops = []
    for pid in place_ids:
        pl = reg.place(pid)
        assets = tuple(a.id for a in reg.assets if a.place == pid)
        stops.append(TourStop(pid, pl.name, (pl.pose.x, pl.pose.y, pl.pose.yaw), assets))
    return stops


def planning_grid(world: WorldSpec, resolution_m: float, robot_radius_m: float,
                  zone_margin_m: float = 0.15, role: str = "") -> OccupancyGrid:
    """The static map inflated by the robot radius, with keep-out zones and the restricted
    zones ``role`` may not enter as lethal, inflated by the radius plus ``zone_margin_m``
    (the safety supervisor cuts any command that would take the footprint into them, so a
    path must not graze them)."""
    grid = world.occupancy_grid(resolution_m, robot_radius_m, keep_out=False)
    zones = np.zeros(grid.occupied.shape, np.uint8)
    for z in world.registry.zones:
        if z.kind is ZoneKind.KEEP_OUT or (z.kind is ZoneKind.RESTRICTED and role not in z.roles):
            pts = np.array([[(x - grid.origin_x) / resolution_m, (y - grid.origin_y) / resolution_m]
                            for x, y in z.polygon], np.int32)
            cv2.fillPoly(zones, [pts], 1)
    r = int(math.ceil((robot_radius_m + zone_margin_m) / resolution_m))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    occupied = grid.occupied | cv2.dilate(zones, kernel).astype(bool)
    return OccupancyGrid(grid.origin_x, grid.origin_y, resolution_m, occupied)


class GridPlanner:
    """A* over an occupancy grid (8-connected) with a cost that keeps away from obstacles.

    ``grid`` should already be inflated by the robot's radius; cells within
    ``clearance_m`` of an occupied cell cost up to ``clearance_weight`` extra per metre.
    """

    def __init__(self, grid: OccupancyGrid, clearance_m: float = 1.0,
                 clearance_weight: float = 4.0, shortcut_margin_m: float = 0.2) -> None:
        self.grid = grid
        free = (~grid.occupied).astype(np.uint8)
        dist_m = cv2.distanceTransform(free, cv2.DIST_L2, 5) * grid.resolution_m
        self.penalty = clearance_weight * np.clip(1.0 - dist_m / clearance_m, 0.0, 1.0)
        # shortcuts must keep this much more than the inflation from obstacles: a straight
        # line grazing the inflated map leaves no room for tracking error (a low plinth the
        # lidar cannot see caught the base that way)
        self._shortcut_blocked = grid.occupied | (dist_m < shortcut_margin_m)

    def _nearest_free(self, r: int, c: int, max_cells: int = 10) -> tuple[int, int] | None:
        occ = self.grid.occupied
        rows, cols = occ.shape
        for rad in range(max_cells + 1):
            for dr in range(-rad, rad + 1):
                for dc in range(-rad, rad + 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < rows and 0 <= cc < cols and not occ[rr, cc]:
                        return rr, cc
        return None

    def plan(self, start_xy: tuple[float, float], goal_xy: tuple[float, float]
             ) -> list[tuple[float, float]]:
        """Waypoints [m] from start to goal (both included), shortcut where line of sight
        allows. Raises :class:`SitebotError` if no path exists."""
        g = self.grid
        occ = g.occupied
        rows, cols = occ.shape
        s = self._nearest_free(*g.cell(*start_xy))
        t = self._nearest_free(*g.cell(*goal_xy))
        if s is None or t is None:
            raise SitebotError(f"start {start_xy} or goal {goal_xy} is not in free space")
        res = g.resolution_m
        steps = [(-1, 0, 1.0), (1, 0, 1.0), (0, -1, 1.0), (0, 1, 1.0),
                 (-1, -1, math.sqrt(2)), (-1, 1, math.sqrt(2)), (1, -1, math.sqrt(2)),
                 (1, 1, math.sqrt(2))]
        cost = np.full(occ.shape, np.inf)
        parent = -np.ones(occ.shape + (2,), dtype=np.int64)
        cost[s] = 0.0
        heap = [(0.0, s)]
        tr, tc = t
        while heap:
            _, (r, c) = heapq.heappop(heap)
            if (r, c) == t:
                break
            base = cost[r, c]
            for dr, dc, d in steps:
                rr, cc = r + dr, c + dc
                if not (0 <= rr < rows and 0 <= cc < cols) or occ[rr, cc]:
                    continue
                nc = base + d * res * (1.0 + self.penalty[rr, cc])
                if nc < cost[rr, cc]:
                    cost[rr, cc] = nc
                    parent[rr, cc] = (r, c)
                    h = math.hypot(rr - tr, cc - tc) * res
                    heapq.heappush(heap, (nc + h, (rr, cc)))
        if not math.isfinite(cost[t]):
            raise SitebotError(f"no path from {start_xy} to {goal_xy} on the static map")
        cells = [t]
        while cells[-1] != s:
            cells.append(tuple(int(v) for v in parent[cells[-1]]))
        cells.reverse()
        pts = [(g.origin_x + (c + 0.5) * res, g.origin_y + (r + 0.5) * res) for r, c in cells]
        pts[0], pts[-1] = tuple(start_xy), tuple(goal_xy)
        return self._shortcut(pts)

    def line_free(self, a: tuple[float, float], b: tuple[float, float],
                  blocked: np.ndarray | None = None) -> bool:
        """True if the segment a-b crosses no blocked cell (default: occupied cells)."""
        grid = self.grid.occupied if blocked is None else blocked
        n = max(2, int(math.hypot(b[0] - a[0], b[1] - a[1]) / (0.5 * self.grid.resolution_m)))
        rows, cols = grid.shape
        for i in range(1, n):
            x = a[0] + (b[0] - a[0]) * i / n
            y = a[1] + (b[1] - a[1]) * i / n
            r, c = self.grid.cell(x, y)
            if 0 <= r < rows and 0 <= c < cols and grid[r, c]:
                return False
        return True

    def _shortcut(self, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out = [pts[0]]
        i = 0
        while i < len(pts) - 1:
            j = len(pts) - 1
            while j > i + 1 and not self.line_free(pts[i], pts[j], self._shortcut_blocked):
                j -= 1
            out.append(pts[j])
            i = j
        return out


@dataclass(frozen=True)
class FollowerConfig:
    max_speed_mps: float = 0.6
    max_turn_rate_radps: float = 1.0
    max_accel_mps2: float = 0.5
    lookahead_m: float = 0.6
    goal_tolerance_m: float = 0.12
    yaw_tolerance_rad: float = 0.1
    rotate_in_place_rad: float = 0.5      # heading error above which the base turns on the spot
    slow_down_radius_m: float = 1.0
    stop_distance_m: float = 0.55         # obstacle this close ahead: stop and wait


class PathFollower:
    """Pure pursuit on a polyline, then a final turn to the goal heading.

    ``update(pose, dt_s, min_range_ahead_m)`` returns (v [m/s], w [rad/s], done). Speed is
    rate-limited by ``max_accel_mps2``; an obstacle closer than ``stop_distance_m`` in
    front stops the base (it waits; the tour does not drive around it).
    """

    def __init__(self, path: Sequence[tuple[float, float]], goal_yaw: float,
                 config: FollowerConfig = FollowerConfig()) -> None:
        if len(path) < 2:
            path = list(path) * 2
        self.path = [tuple(p) for p in path]
        self.goal_yaw = goal_yaw
        self.cfg = config
        self._seg = 0
        self._v = 0.0
        self.blocked = False
        # latched once within goal tolerance: the final turn on the spot scrubs the wheels
        # and moves the base a few cm; without the latch it would flip back to driving
        self._at_goal = False

    def _lookahead_point(self, x: float, y: float) -> tuple[float, float]:
        p = self.path
        # advance the segment index while the robot is past the segment's end
        while self._seg < len(p) - 2:
            ax, ay = p[self._seg + 1]
            if math.hypot(ax - x, ay - y) < self.cfg.lookahead_m:
                self._seg += 1
            else:
                break
        return p[self._seg + 1]

    def update(self, pose: tuple[float, float, float], dt_s: float,
               min_range_ahead_m: float = math.inf) -> tuple[float, float, bool]:
        x, y, yaw = pose
        cfg = self.cfg
        gx, gy = self.path[-1]
        dist = math.hypot(gx - x, gy - y)
        v_cmd, w_cmd, done = 0.0, 0.0, False
        if dist <= cfg.goal_tolerance_m:
            self._at_goal = True
        elif dist > 2.0 * cfg.goal_tolerance_m + 0.1:
            self._at_goal = False
        if self._at_goal:
            err = wrap_angle(self.goal_yaw - yaw)
            if abs(err) <= cfg.yaw_tolerance_rad:
                done = True
            else:
                w_cmd = max(-cfg.max_turn_rate_radps, min(cfg.max_turn_rate_radps, 1.5 * err))
        else:
            tx, ty = self._lookahead_point(x, y)
            heading_err = wrap_angle(math.atan2(ty - y, tx - x) - yaw)
            w_cmd = max(-cfg.max_turn_rate_radps, min(cfg.max_turn_rate_radps, 2.0 * heading_err))
            if abs(heading_err) < cfg.rotate_in_place_rad:
                v_cmd = cfg.max_speed_mps * math.cos(heading_err)
                v_cmd *= min(1.0, dist / cfg.slow_down_radius_m) if self._seg >= len(self.path) - 2 else 1.0
                v_cmd = max(v_cmd, 0.05)
        # an obstacle counts only if it is closer than where the base is going
        self.blocked = v_cmd > 0 and min_range_ahead_m < min(cfg.stop_distance_m, dist + 0.25)
        if self.blocked:
            v_cmd = 0.0
        dv = cfg.max_accel_mps2 * max(dt_s, 0.0)
        self._v = max(self._v - dv, min(self._v + dv, v_cmd)) if not self.blocked else 0.0
        return self._v, w_cmd, done
