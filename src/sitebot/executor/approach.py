"""Short straight base motions for manipulation: closing in on a work surface before a
grasp, and backing out again.

Navigation stops a place's clearance away from the furniture (0.8 m of free floor round the
robot's centre), which leaves a tool on a bench beyond the arm's top-down workspace (about
0.7 m ahead at bench-trolley height, docs/arm.md).  The pick skill therefore creeps straight
ahead until the object sits where the arm reaches it, and never closer to what the laser
sees in front than a minimum gap; the supervisor still gates every command (it forbids
motion toward a static obstacle inside its protective separation), so this is a second,
softer limit, not the safety function.

Pure functions of the scan and the remaining distance, and :class:`ApproachDrive`, the
closed loop of one straight motion as a function of time, odometry and the latest scan
(:meth:`sitebot.executor.ports.TrackedPorts.approach` runs it with the robot's clock).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from sitebot.executor.config import check_fields
from sitebot.executor.types import MotionResult
from sitebot.types import Pose2D

__all__ = ["ApproachConfig", "FrontScan", "ApproachDrive", "front_gap", "approach_speed",
           "approach_distance"]


@dataclass(frozen=True)
class ApproachConfig:
    speed_mps: float = 0.08          # creeping speed
    decel_mps2: float = 0.3          # slowing down toward the end
    tolerance_m: float = 0.01        # close enough to the requested distance
    min_gap_m: float = 0.2           # never closer than this (chassis front to laser points)
    corridor_half_width_m: float = 0.3   # points within this of the base's x axis count
    front_x_m: float = 0.3           # the chassis front, ahead of the base origin
    rear_x_m: float = -0.3           # the chassis back (for backing out)
    scan_max_age_s: float = 0.5      # an older laser scan stops the approach (blocked)
    stall_s: float = 2.0             # no progress for this long: held by the supervisor
    progress_m: float = 0.005        # motion that counts as progress
    settle_s: float = 0.3            # waited after stopping, before the arm moves
    period_s: float = 0.05           # command period

    def __post_init__(self) -> None:
        check_fields(self, "approach_")      # the node's approach_* parameters' ranges
        for name in ("decel_mps2", "tolerance_m", "corridor_half_width_m", "front_x_m",
                     "rear_x_m"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"ApproachConfig.{name} must be finite")
        if self.decel_mps2 <= 0.0 or self.tolerance_m < 0.0 or \
                self.corridor_half_width_m <= 0.0 or self.rear_x_m >= self.front_x_m:
            raise ValueError("ApproachConfig: decel_mps2 and corridor_half_width_m must be "
                             "> 0, tolerance_m >= 0, rear_x_m < front_x_m")


class FrontScan(NamedTuple):
    """One laser scan as the approach uses it: when it arrived [s], its returns (as in
    sensor_msgs/LaserScan) and the laser's planar pose (x, y, yaw) in the base frame."""
    arrival_s: float
    ranges: Sequence[float]
    angle_min: float
    angle_increment: float
    range_max: float
    laser_pose: Pose2D = Pose2D(0.0, 0.0, 0.0)


def front_gap(ranges: Sequence[float], angle_min: float, angle_increment: float,
              range_max: float, laser_pose: Pose2D,
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


class ApproachDrive:
    """The closed loop of one straight motion by ``distance_m`` (negative: backwards) from
    the odometry pose ``start``: :meth:`step` gives the speed to command now, or None when
    the motion has ended; then :attr:`result` is set when it failed (no fresh scan, timeout)
    and :meth:`finish` gives the result and the distance driven once the base has settled.

    It stops short, with success, when the laser gap is used up or when the base makes no
    progress for ``config.stall_s`` (the supervisor holds it)."""

    def __init__(self, distance_m: float, start: Sequence[float], now: float,
                 timeout_s: float, config: ApproachConfig) -> None:
        self.distance_m = float(distance_m)
        self.config = config
        self.timeout_s = timeout_s
        self._start = (float(start[0]), float(start[1]))
        self._c, self._s = math.cos(start[2]), math.sin(start[2])
        self.t_end = now + timeout_s
        self.travelled = 0.0
        self.why = "reached"
        self.result: MotionResult | None = None
        self._progress_at, self._progress = now, 0.0

    def along(self, odom: Sequence[float]) -> float:
        """Distance [m] from the start along the start heading to ``odom``."""
        return (odom[0] - self._start[0]) * self._c + (odom[1] - self._start[1]) * self._s

    def step(self, now: float, odom: Sequence[float], scan: FrontScan | None) -> float | None:
        """The forward speed [m/s] to command at ``now`` with the base at ``odom``
        (odometry frame) and ``scan`` the latest laser scan; None: stop, the motion ended."""
        cfg = self.config
        self.travelled = self.along(odom)
        if scan is None or now - scan.arrival_s > cfg.scan_max_age_s:
            self.result = MotionResult("blocked", "no fresh laser scan for the approach")
            return None
        gap = front_gap(scan.ranges, scan.angle_min, scan.angle_increment, scan.range_max,
                        scan.laser_pose, cfg, backwards=self.distance_m < 0)
        v = approach_speed(self.distance_m - self.travelled, gap, cfg)
        if v == 0.0:
            if abs(self.distance_m - self.travelled) > cfg.tolerance_m:
                self.why = f"stopped {gap:.2f} m short of what the laser sees"
            return None
        if abs(self.travelled - self._progress) > cfg.progress_m:
            self._progress_at, self._progress = now, self.travelled
        elif now - self._progress_at > cfg.stall_s:
            self.why = "held by the supervisor"
            return None
        if now > self.t_end:
            self.result = MotionResult("timeout", f"approach took longer than "
                                       f"{self.timeout_s:g} s")
            return None
        return v

    def finish(self, odom: Sequence[float]) -> tuple[MotionResult, float]:
        """The result of a motion that ended without failing, and the distance driven, with
        the base (settled) at ``odom``."""
        self.travelled = self.along(odom)
        return (MotionResult("succeeded", f"{self.why} after {self.travelled:+.2f} m"),
                self.travelled)
