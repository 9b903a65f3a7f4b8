"""What the supervisor's node hears, as the core's input types (no ROS).

The node converts each message to plain numbers and calls one of these, then the
:class:`~sitebot.safety.supervisor.Supervisor`:

* :func:`tracked_person`: a person of the people topic (position, velocity, pose covariance)
  as an :class:`~sitebot.safety.types.Obstacle` of radius ``person_radius_m``;
* :func:`dead_reckoning_state`: ``localization_source: dead_reckoning``, the map pose from
  wheel odometry composed with the spawn pose (for runs without the localization filter);
* :func:`position_cov_trace`: xx + yy of a 6x6 pose covariance (the supervisor's divergence
  check);
* :class:`FilterHealth`: the localization filter's own verdict (``localization/status``)
  as the NIS the supervisor checks.
"""
from __future__ import annotations

import math
from typing import Sequence

from sitebot.safety.config import SafetyConfig
from sitebot.safety.types import Obstacle, RobotState
from sitebot.types import Pose2D, se2_compose

__all__ = ["tracked_person", "dead_reckoning_state", "position_cov_trace", "FilterHealth"]


def position_cov_trace(covariance: Sequence[float]) -> float:
    """Trace of the position block, xx + yy [m^2], of a row-major 6x6 pose covariance
    (x, y, z, roll, pitch, yaw)."""
    return covariance[0] + covariance[7]


def tracked_person(x_m: float, y_m: float, vx_mps: float, vy_mps: float,
                   covariance: Sequence[float], config: SafetyConfig,
                   source: str = "people") -> Obstacle:
    """A tracked person: position [m] and measured velocity [m/s] (in the frame of the
    message), ``config.person_radius_m``, and one standard deviation of the position [m]
    from the larger of the covariance's xx and yy (0 when there is no 6x6 covariance)."""
    std = math.sqrt(max(covariance[0], covariance[7], 0.0)) if len(covariance) == 36 else 0.0
    return Obstacle(x_m, y_m, config.person_radius_m, vx_mps, vy_mps, is_person=True,
                    measured_speed=True, source=source, position_std_m=std)


def dead_reckoning_state(spawn: Pose2D, odom: Pose2D, v_mps: float, w_radps: float,
                         stamp_s: float) -> RobotState:
    """The map pose by dead reckoning: the odometry pose ``odom`` (odom frame) composed with
    the ``spawn`` pose (where the odom frame starts in the map), with the body twist."""
    x, y, yaw = se2_compose(spawn, odom)
    return RobotState(x, y, yaw, v_mps, w_radps, stamp_s)


class FilterHealth:
    """The localization filter's latest status, as the NIS to check.

    ``update(diverged, nis_mean, now)`` with each status; ``nis(now, timeout_s)`` is
    ``inf`` when the filter itself says it diverged or its NIS is not finite, else its
    recent mean NIS, and None when no status arrived within ``timeout_s`` [s] before
    ``now`` (then only the covariance is checked)."""

    def __init__(self) -> None:
        self._last: tuple[bool, float, float] | None = None      # (diverged, nis, at [s])

    def update(self, diverged: bool, nis_mean: float, now: float) -> None:
        self._last = (bool(diverged), float(nis_mean), float(now))

    def nis(self, now: float, timeout_s: float) -> float | None:
        if self._last is None:
            return None
        diverged, nis_mean, at = self._last
        if now - at > timeout_s:
            return None
        if diverged:
            return math.inf
        return nis_mean if math.isfinite(nis_mean) else math.inf
