"""Short straight base motions for manipulation: closing in on a work surface before a
grasp, and backing out again.

Navigation stops a place's clearance away from the furniture (0.8 m of free floor round the
robot's centre), which leaves a tool on a bench beyond the arm's top-down workspace (about
0.7 m ahead at bench-trolley height, docs/arm.md).  The pick skill therefore creeps straight
ahead until the object sits where the arm reaches it, and never closer to what the laser
sees in front than a minimum gap; the supervisor still gates every command (it forbids
motion toward a static obstacle inside its protective separation), so this is a second,
softer limit, not the safety function.

Pure functions of the scan and the remaining distance; the node runs the loop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["ApproachConfig", "front_gap", "approach_speed", "approach_distance"]


@dataclass(frozen=True)
class ApproachConfig:
    speed_mps: float = 0.08          # creeping speed
    decel_mps2: float = 0.3          # slowing down toward the end
    tolerance_m: float = 0.01        # close enough to the requested distance
    min_gap_m: float = 0.2           # never closer than this (chassis front to laser points)
    corridor_half_width_m: float = 0.3   # points within this of the base's x axis count
    front_x_m: float = 0.3           # the chassis front, ahead of the base origin
    rear_x_m: float = -0.3           # the chassis back (for backing out)


def front_gap(ranges: Sequence[float], angle_min: float, angle_increment: float,
              range_max: float, laser_pose: tuple[float, float, float],
              config: ApproachConfig, backwards: bool = False) -> float:
    """Free distance [m] ahead of the chassis front (or behind its back when
    ``backwards``) inside a corridor as wide as the robot, from one laser scan; ``inf``
    when the corridor is clear as far as the laser sees.  Non-finite and out-of-range
    returns are no return, except ``-inf`` (REP 117: closer than range_min) which is an
    obstacle at the laser itself."""
    r = np.asarray(ranges, dtype=float)
    if r.size == 0:
        return math.inf
    a = angle_min + angle_increment * np.arange(r.size)
    r = np.where(np.isneginf(r), 0.0, r)
    ok = np.isfinite(r) & (r <= range_max)
    lx, ly, lyaw = laser_pose
    x = lx + r * np.cos(a + lyaw)
    y = ly + r * np.sin(a + lyaw)
    inside = ok & (np.abs(y) <= config.corridor_half_width_m)
    if backwards:
        d = config.rear_x_m - x[inside & (x < config.rear_x_m)]
    else:
        d = x[inside & (x > config.front_x_m)] - config.front_x_m
    return float(d.min()) if d.size else math.inf


def approach_speed(remaining_m: float, gap_m: float, config: ApproachConfig) -> float:
    """Signed forward speed [m/s] for ``remaining_m`` still to go (negative: backwards) with
    ``gap_m`` free in that direction; 0 when done, when the gap is used up, or when any
    input is not finite (fail safe)."""
    if not (math.isfinite(remaining_m) and (math.isfinite(gap_m) or gap_m == math.inf)):
        return 0.0
    if abs(remaining_m) <= config.tolerance_m:
        return 0.0
    room = min(abs(remaining_m), gap_m - config.min_gap_m)
    if room <= 0.0:
        return 0.0
    v = min(config.speed_mps, math.sqrt(2.0 * config.decel_mps2 * room))
    return math.copysign(max(v, 0.02), remaining_m)


def approach_distance(object_xy_base: tuple[float, float], grasp_forward_m: float,
                      max_m: float) -> float:
    """How far to drive straight ahead so that an object at ``object_xy_base`` (base
    frame) ends ``grasp_forward_m`` ahead of the base origin: 0 when it already is that
    close, at most ``max_m``."""
    x, y = object_xy_base
    if not (math.isfinite(x) and math.isfinite(y)):
        return 0.0
    return float(min(max(x - grasp_forward_m, 0.0), max_m))
