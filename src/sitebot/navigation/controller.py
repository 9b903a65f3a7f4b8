"""Local controller: regulated pure pursuit with a collision check of the commanded arc.

Core only (no ROS). Follows a :class:`~sitebot.navigation.planner.Plan` the way Nav2's
Regulated Pure Pursuit does:

* the carrot is the first path point at least the lookahead ``L = clamp(v * lookahead_time_s,
  min_lookahead_m, max_lookahead_m)`` ahead of the closest path point; curvature
  ``k = 2 y / L^2`` (carrot in the robot frame), ``w = v k``;
* rotate to heading: when the carrot (or a flagged turn-in-place corner right ahead, or the
  start of the path) is more than ``rotate_to_heading_rad`` off the heading, the base turns on
  the spot first; at the goal it turns to the goal heading;
* regulation of the linear speed: by curvature (radius below ``regulated_min_radius_m``), by
  proximity (closer than ``proximity_distance_m`` to an obstacle), on approach to the goal,
  by slow zones (ahead along the path, so the base has slowed before it enters), near people
  (``people_speed_mps`` within ``people_slow_distance_m``) and by the supervisor's current
  limit; acceleration-limited;
* collision check: the arc the command would drive for ``collision_time_s`` (at least
  ``min_collision_distance_m``) is sampled on the costmap; an INSCRIBED or LETHAL cell on it
  (only LETHAL when the base already stands in inflated space) stops the base and reports
  ``collision_ahead`` so the behaviour layer replans.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sitebot.errors import SitebotError
from sitebot.navigation.costmap import INSCRIBED, LETHAL, Costmap
from sitebot.navigation.planner import Plan
from sitebot.types import Pose2D, wrap_angle

__all__ = ["ControllerConfig", "ControlOutput", "RegulatedPurePursuit", "arc_poses"]


@dataclass(frozen=True)
class ControllerConfig:
    desired_speed_mps: float = 0.6
    max_angular_radps: float = 1.0
    max_accel_mps2: float = 0.5
    max_decel_mps2: float = 1.0
    max_angular_accel_radps2: float = 2.0
    lookahead_time_s: float = 1.5
    min_lookahead_m: float = 0.4
    max_lookahead_m: float = 1.2
    rotate_to_heading_rad: float = 0.7
    rotate_speed_radps: float = 0.8
    regulated_min_radius_m: float = 0.9
    min_regulated_speed_mps: float = 0.08
    proximity_distance_m: float = 0.5       # clearance beyond the footprint radius
    approach_distance_m: float = 0.8
    min_approach_speed_mps: float = 0.05
    xy_goal_tolerance_m: float = 0.1
    yaw_goal_tolerance_rad: float = 0.1
    collision_time_s: float = 1.5
    min_collision_distance_m: float = 0.3
    people_slow_distance_m: float = 2.0
    people_speed_mps: float = 0.25
    slow_zone_factor: float = 0.9           # drive at this fraction of a slow zone's limit
    footprint_radius_m: float = 0.4

    def __post_init__(self) -> None:
        for k, v in self.__dict__.items():
            if not math.isfinite(v) or v < 0:
                raise SitebotError(f"controller: '{k}' must be a finite number >= 0, got {v!r}")
        if self.min_lookahead_m > self.max_lookahead_m:
            raise SitebotError("controller: min_lookahead_m > max_lookahead_m")


@dataclass(frozen=True)
class ControlOutput:
    """A command (v [m/s], w [rad/s]) and what the controller is doing: ``following``,
    ``rotating`` (to the path), ``final_rotation``, ``goal_reached``, ``collision_ahead``."""
    v: float
    w: float
    status: str
    detail: str = ""
    distance_remaining_m: float = 0.0


def arc_poses(x: float, y: float, yaw: float, v: float, w: float, distance: float,
              step: float) -> np.ndarray:
    """Poses (N, 3) along the arc of (v, w) for a path length ``distance`` (sign of v sets
    the direction), every ``step`` metres; a pure rotation gives the start pose."""
    n = max(2, int(math.ceil(distance / step)) + 1)
    s = np.linspace(0.0, distance, n) * (1.0 if v >= 0 else -1.0)
    if abs(v) < 1e-6:
        return np.array([[x, y, yaw]])
    k = w / v if abs(v) > 1e-6 else 0.0
    if abs(k) < 1e-6:
        return np.stack([x + s * math.cos(yaw), y + s * math.sin(yaw), np.full(n, yaw)], axis=1)
    th = yaw + k * s
    return np.stack([x + (np.sin(th) - math.sin(yaw)) / k, y - (np.cos(th) - math.cos(yaw)) / k,
                     th], axis=1)


class RegulatedPurePursuit:
    """Follows one plan at a time; :meth:`set_plan` swaps it (keeps the current speed)."""

    def __init__(self, config: ControllerConfig = ControllerConfig()) -> None:
        self.cfg = config
        self.plan: Plan | None = None
        self.goal_yaw = 0.0
        self._idx = 0
        self._v = 0.0
        self._w = 0.0
        self._at_goal = False
        self._rotating = False
        self._corner_done = -1     # index of the last turn-in-place corner turned at

    def set_plan(self, plan: Plan, goal_yaw: float) -> None:
        self.plan = plan
        self.goal_yaw = goal_yaw
        self._idx = 0
        self._at_goal = False
        self._rotating = False
        self._corner_done = -1

    def reset_speed(self) -> None:
        self._v = self._w = 0.0

    @property
    def last_command(self) -> tuple[float, float]:
        return self._v, self._w

    # ------------------------------------------------------------------ helpers
    def _closest(self, x: float, y: float) -> int:
        xy = self.plan.xy
        lo = self._idx
        hi = min(len(xy), lo + 80)           # search a window ahead (no jumping back)
        d = np.hypot(xy[lo:hi, 0] - x, xy[lo:hi, 1] - y)
        self._idx = lo + int(np.argmin(d))
        return self._idx

    def remaining(self, x: float, y: float) -> float:
        if self.plan is None:
            return 0.0
        xy = self.plan.xy[self._idx:]
        if len(xy) == 0:
            return 0.0
        seg = float(np.hypot(*np.diff(xy, axis=0).T).sum()) if len(xy) > 1 else 0.0
        return seg + math.hypot(xy[0, 0] - x, xy[0, 1] - y)

    def _limit(self, v_target: float, w_target: float, dt: float) -> tuple[float, float]:
        cfg = self.cfg
        dv_up, dv_dn = cfg.max_accel_mps2 * dt, cfg.max_decel_mps2 * dt
        v = self._v
        if abs(v_target) > abs(v) and v_target * v >= 0:
            v = v + max(-dv_up, min(dv_up, v_target - v))
        else:
            v = v + max(-dv_dn, min(dv_dn, v_target - v))
        dw = cfg.max_angular_accel_radps2 * dt
        w = self._w + max(-dw, min(dw, w_target - self._w))
        w = max(-cfg.max_angular_radps, min(cfg.max_angular_radps, w))
        self._v, self._w = v, w
        return v, w

    def arc_collides(self, costmap: Costmap, pose: Pose2D, v: float,
                     w: float, distance: float) -> tuple[bool, tuple[float, float] | None]:
        """True (and the first bad point) when driving (v, w) for ``distance`` metres would put
        the footprint on an obstacle."""
        x, y, yaw = pose
        here = int(costmap.cost_at(x, y)[0])
        threshold = INSCRIBED if here < INSCRIBED else LETHAL
        poses = arc_poses(x, y, yaw, v, w, distance, costmap.res)
        c = costmap.cost_at(poses[1:, 0], poses[1:, 1]) if len(poses) > 1 else np.zeros(0)
        bad = np.flatnonzero(c >= threshold)
        if bad.size:
            p = poses[1 + bad[0]]
            return True, (float(p[0]), float(p[1]))
        return False, None

    # ------------------------------------------------------------------ control
    def compute(self, pose: Pose2D, dt: float, costmap: Costmap,
                people: Sequence[tuple[float, float]] = (), speed_cap: float = math.inf
                ) -> ControlOutput:
        """One control step from ``pose`` (x, y, yaw, map frame), ``dt`` [s] since the last."""
        cfg = self.cfg
        if self.plan is None:
            raise SitebotError("controller: no plan")
        x, y, yaw = pose
        dt = max(0.0, min(dt, 0.5))
        xy = self.plan.xy
        gx, gy = xy[-1]
        dist_goal = math.hypot(gx - x, gy - y)
        i = self._closest(x, y)
        remaining = self.remaining(x, y)
        # ---------------------------------------------------------------- goal
        if dist_goal <= cfg.xy_goal_tolerance_m or (self._at_goal and dist_goal
                                                    <= 2 * cfg.xy_goal_tolerance_m + 0.05):
            self._at_goal = True
            err = wrap_angle(self.goal_yaw - yaw)
            if abs(err) <= cfg.yaw_goal_tolerance_rad:
                v, w = self._limit(0.0, 0.0, dt)
                return ControlOutput(v, w, "goal_reached", distance_remaining_m=dist_goal)
            w_t = math.copysign(min(cfg.rotate_speed_radps, max(0.15, 1.5 * abs(err))), err)
            v, w = self._limit(0.0, w_t, dt)
            return ControlOutput(v, w, "final_rotation", distance_remaining_m=dist_goal)
        self._at_goal = False
        # ---------------------------------------------------------------- carrot
        L = min(cfg.max_lookahead_m, max(cfg.min_lookahead_m, abs(self._v) * cfg.lookahead_time_s))
        d_from = np.hypot(xy[i:, 0] - x, xy[i:, 1] - y)
        beyond = np.flatnonzero(d_from >= L)
        j = i + int(beyond[0]) if beyond.size else len(xy) - 1
        enter = cfg.rotate_to_heading_rad
        leave = 0.5 * enter                   # hysteresis: turn until well aligned
        # a sharp corner before the carrot: aim at the corner, turn there on the spot.  Once
        # turned to the next leg there, the corner is done: the carrot moves on along that
        # leg (aiming at a corner a few centimetres beside the base would swing it away
        # again, and it would turn back and forth there)
        j_look = j
        while True:
            turns = np.flatnonzero(self.plan.turn_in_place[i + 1:j_look + 1])
            turns = turns[i + 1 + turns > self._corner_done]
            j = i + 1 + int(turns[0]) if turns.size else j_look
            tx, ty = xy[j]
            dx, dy = tx - x, ty - y
            lx = math.cos(yaw) * dx + math.sin(yaw) * dy
            ly = -math.sin(yaw) * dx + math.cos(yaw) * dy
            heading_err = math.atan2(ly, lx)
            near_corner = turns.size and math.hypot(dx, dy) < 0.5 * cfg.min_lookahead_m
            if near_corner and j + 1 < len(xy):
                # at the corner: the next leg's direction decides the turn
                heading_err = wrap_angle(self.plan.yaw[j] - yaw)
                if abs(heading_err) <= leave:
                    self._corner_done = j
                    self._rotating = False
                    continue
            break
        if abs(heading_err) > enter or (self._rotating and abs(heading_err) > leave) or (
                near_corner and abs(heading_err) > leave):
            self._rotating = True
            w_t = math.copysign(min(cfg.rotate_speed_radps, max(0.2, 1.5 * abs(heading_err))),
                                heading_err)
            v, w = self._limit(0.0, w_t, dt)
            return ControlOutput(v, w, "rotating", f"heading error {heading_err:.2f} rad",
                                 remaining)
        self._rotating = False
        dist2 = max(lx * lx + ly * ly, 1e-6)
        kappa = 2.0 * ly / dist2
        # ---------------------------------------------------------------- regulation
        v_t = cfg.desired_speed_mps
        why = "cruise"
        radius = 1.0 / abs(kappa) if abs(kappa) > 1e-9 else math.inf
        if radius < cfg.regulated_min_radius_m:
            v_t *= radius / cfg.regulated_min_radius_m
            why = "curvature"
        clearance = float(costmap.distance_at(x, y)[0]) - cfg.footprint_radius_m
        if clearance < cfg.proximity_distance_m:
            v_prox = cfg.desired_speed_mps * max(clearance, 0.0) / max(cfg.proximity_distance_m, 1e-6)
            if v_prox < v_t:
                v_t, why = v_prox, "proximity"
        v_t = max(v_t, cfg.min_regulated_speed_mps)
        if remaining < cfg.approach_distance_m:
            v_app = max(cfg.min_approach_speed_mps,
                        cfg.desired_speed_mps * remaining / cfg.approach_distance_m)
            if v_app < v_t:
                v_t, why = v_app, "approach"
        # slow zones ahead: be at the limit by the time the zone starts
        horizon = abs(self._v) ** 2 / (2 * max(cfg.max_decel_mps2, 1e-3)) + 0.6
        k_end = min(len(xy), i + 1 + int(horizon / max(costmap.res, 1e-3)))
        ahead = xy[i:k_end]
        lim = costmap.speed_limit_at(np.r_[x, ahead[:, 0]], np.r_[y, ahead[:, 1]])
        if np.isfinite(lim).any():
            s = np.r_[0.0, np.cumsum(np.hypot(*np.diff(np.vstack([[x, y], ahead]), axis=0).T))]
            # half the braking capacity, and the zone taken 0.1 m early (its first sample may lie
            # a cell inside it; the base moves on while braking)
            allowed = np.sqrt((cfg.slow_zone_factor * lim) ** 2
                              + cfg.max_decel_mps2 * np.maximum(s - 0.1, 0.0))
            v_zone = float(np.min(allowed))
            if v_zone < v_t:
                v_t, why = v_zone, "slow zone"
        for px, py in people:
            if math.hypot(px - x, py - y) - cfg.footprint_radius_m < cfg.people_slow_distance_m:
                if cfg.people_speed_mps < v_t:
                    v_t, why = cfg.people_speed_mps, "person near"
                break
        if speed_cap < v_t:
            v_t, why = max(0.0, speed_cap), "supervisor limit"
        w_t = v_t * kappa
        if abs(w_t) > cfg.max_angular_radps:          # keep the arc: slow down instead
            v_t *= cfg.max_angular_radps / abs(w_t)
            w_t = math.copysign(cfg.max_angular_radps, w_t)
        # ---------------------------------------------------------------- collision check
        check_v = max(v_t, abs(self._v), cfg.min_regulated_speed_mps)
        dist = max(cfg.min_collision_distance_m, check_v * cfg.collision_time_s)
        dist = min(dist, remaining + 0.05)
        hit, where = self.arc_collides(costmap, pose, check_v, check_v * kappa, dist)
        if hit:
            self._v = self._w = 0.0          # brake at once (braking is never rate-limited)
            return ControlOutput(self._v, self._w, "collision_ahead",
                                 f"obstacle on the arc at ({where[0]:.2f}, {where[1]:.2f})",
                                 remaining)
        v, w = self._limit(v_t, w_t, dt)
        # keep w consistent with the curvature while v ramps
        if v > 1e-3:
            w = max(-cfg.max_angular_radps, min(cfg.max_angular_radps, v * kappa))
            self._w = w
        return ControlOutput(v, w, "following", why, remaining)
