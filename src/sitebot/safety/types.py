"""Value types at the boundaries of the safety supervisor core (see ``docs/safety.md``).

Small immutable dataclasses and enums; no ROS.  Units: metres, seconds, radians, m/s,
rad/s; every pose is planar.  Frames: ``base`` is the robot's base frame (REP-105
``base_footprint``/``base_link``: x forward, y left); ``map`` is the registry's frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from sitebot.types import Mode, SafetyLevel, StopCategory

__all__ = [
    "SafetyLevel", "Mode", "Cause", "Verdict", "combine", "Obstacle", "BaseCommand",
    "RobotState", "SensorPose", "TrajectoryPoint", "SafetyStatus", "INF", "StopCategory",
    "ZERO_VERDICT",
]

INF = math.inf


@dataclass(frozen=True)
class Cause:
    """One active reason: machine-readable ``code``, the ``level`` it asks for, text for
    operators and the part (``source``) that raised it."""

    code: str
    level: SafetyLevel
    message: str
    source: str = ""


@dataclass(frozen=True)
class Verdict:
    """What one rule says this cycle: a level and limits on the base.

    ``speed_limit_mps`` bounds |v| [m/s]; ``turn_limit_radps`` bounds |w| [rad/s].  When the
    linear limit is 0 but the level is below PROTECTIVE_STOP, turning in place is allowed
    (the footprint is a circle about the base origin, so a rotation brings it nowhere).
    """

    level: SafetyLevel = SafetyLevel.NORMAL
    speed_limit_mps: float = INF
    turn_limit_radps: float = INF
    causes: tuple[Cause, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        """The cause codes, in order."""
        return tuple(c.code for c in self.causes)

    @property
    def stops(self) -> bool:
        """True when this verdict forbids all motion (PROTECTIVE_STOP or worse)."""
        return self.level >= SafetyLevel.PROTECTIVE_STOP


#: the verdict of a rule with nothing to say
ZERO_VERDICT = Verdict()


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """The most restrictive wins: the highest level, the lowest limits, every cause (in
    order, duplicates by (code, source) dropped)."""
    level = SafetyLevel.NORMAL
    v_lim = INF
    w_lim = INF
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for v in verdicts:
        if v.level > level:
            level = v.level
        # a NaN limit is treated as 0 (fail safe)
        sl = v.speed_limit_mps
        if not sl >= 0.0:
            sl = 0.0
        tl = v.turn_limit_radps
        if not tl >= 0.0:
            tl = 0.0
        if sl < v_lim:
            v_lim = sl
        if tl < w_lim:
            w_lim = tl
        for c in v.causes:
            key = (c.code, c.source)
            if key not in seen:
                seen.add(key)
                causes.append(c)
    if level >= SafetyLevel.PROTECTIVE_STOP:
        v_lim = 0.0
        w_lim = 0.0
    return Verdict(SafetyLevel(level), v_lim, w_lim, tuple(causes))


@dataclass(frozen=True)
class Obstacle:
    """A person or an obstacle (point or cluster) in the base frame.

    Position [m], ``radius_m`` [m] (0 for a point), velocity [m/s] in the base frame when
    ``measured_speed`` is true; ``position_std_m`` [m] one standard deviation of the position
    (a tracker's covariance), added to the position uncertainty of the separation check.
    """

    x_m: float
    y_m: float
    radius_m: float = 0.0
    vx_mps: float = 0.0
    vy_mps: float = 0.0
    is_person: bool = False
    measured_speed: bool = False
    source: str = ""
    position_std_m: float = 0.0

    @property
    def distance_m(self) -> float:
        """Centre distance from the base origin [m]."""
        return math.hypot(self.x_m, self.y_m)


@dataclass(frozen=True)
class BaseCommand:
    """A base velocity command: forward speed ``v_mps`` [m/s], yaw rate ``w_radps`` [rad/s],
    its stamp [s] (the command's header time, the supervisor's clock) and, for manual
    hold-to-run, whether the deadman (enabling) switch was held when it was sent."""

    v_mps: float
    w_radps: float
    stamp_s: float
    deadman: bool = False

    def is_zero(self) -> bool:
        """True for a standstill command."""
        return self.v_mps == 0.0 and self.w_radps == 0.0


@dataclass(frozen=True)
class RobotState:
    """Map-frame pose (x, y [m], yaw [rad]), body twist (v [m/s], w [rad/s]) and its stamp
    [s]."""

    x_m: float
    y_m: float
    yaw_rad: float
    v_mps: float = 0.0
    w_radps: float = 0.0
    stamp_s: float = 0.0


@dataclass(frozen=True)
class SensorPose:
    """Planar pose of a sensor in the base frame: position [m] and yaw [rad]
    (the transform base <- sensor)."""

    x_m: float = 0.0
    y_m: float = 0.0
    yaw_rad: float = 0.0


@dataclass(frozen=True)
class TrajectoryPoint:
    """One point of a joint trajectory: positions [rad or m] in the order of the
    trajectory's joint names, optional velocities [rad/s or m/s] (empty: not given) and the
    time from the trajectory's start [s]."""

    positions: tuple[float, ...]
    time_from_start_s: float
    velocities: tuple[float, ...] = ()


@dataclass(frozen=True)
class SafetyStatus:
    """The supervisor's decision after one cycle (published as ``safety/state``).

    ``speed_scale`` = ``max_linear_speed_mps`` / the nominal (automatic-mode) speed, in
    [0, 1]; ``stop_category`` is ``StopCategory.NONE`` while motion is allowed.
    ``closest_separation_m`` is the clearance [m] between the footprint and the closest
    person/obstacle (inf: none), ``required_separation_m`` the protective separation distance
    S_p [m] for that obstacle at the current speed (inf: none).  ``return_requested`` asks the
    executor to go to the dock (battery policy ``return``).
    """

    stamp_s: float
    level: SafetyLevel
    mode: Mode
    stop_category: StopCategory
    speed_scale: float
    max_linear_speed_mps: float
    max_angular_speed_radps: float = 0.0
    causes: tuple[Cause, ...] = ()
    closest_separation_m: float = INF
    required_separation_m: float = INF
    estop_latched: bool = False
    return_requested: bool = False
    requested_mode: Mode = Mode.AUTOMATIC
    message: str = ""

    @property
    def reasons(self) -> tuple[str, ...]:
        """The cause codes (SafetyState.msg ``reasons``)."""
        return tuple(c.code for c in self.causes)

    @property
    def moving_allowed(self) -> bool:
        """True below PROTECTIVE_STOP."""
        return self.level < SafetyLevel.PROTECTIVE_STOP
