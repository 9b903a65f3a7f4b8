"""Validation of a joint trajectory before it reaches the kernel (core, no ROS).

What arrives from outside (a ``trajectory_msgs/JointTrajectory``, converted by the ROS side
into joint names and :class:`Waypoint` s) is checked here and turned into the kernel's
arrays, in its joint order (:func:`validate_trajectory`): unknown joint names, duplicate
names, mismatched array lengths, non-increasing or negative ``time_from_start``, NaN/Inf,
positions outside the joint limits, and an empty trajectory are refused with
:class:`TrajectoryRejected`, whose text names the problem (point index, joint, value,
limits) and whose ``code`` is the kernel's :class:`~sitebot.control.types.Reject` for the
same kind of problem.  When the kernel itself refuses what passed (too many points, ...),
:func:`explain_rejection` says why, as far as the configuration tells.

Decisions:

* **subset of joints**: accepted.  The joints the trajectory does not name *hold their
  current setpoint* (position = the kernel's latest setpoint, velocity and acceleration 0
  at every point), i.e. a trajectory for the gripper alone freezes the arm where it is
  commanded now rather than letting an older arm trajectory continue.  Without a setpoint
  (the loop has not ticked) a subset is refused.
* joint names are reordered to the kernel's order; ``ignored_joint_names`` (e.g. the right
  finger, a URDF mimic of the left one) are dropped without complaint.
* the first point may have ``time_from_start`` 0 only if it equals the current setpoint
  (within :attr:`TrajectoryCheck.start_tolerance`): anything else would be a setpoint jump.
* with a setpoint and velocity limits, the first point must be reachable from the setpoint
  within its ``time_from_start`` (the kernel checks the segments between points, not the
  one from the setpoint, and a position interface would otherwise see the setpoint jump).

Units: positions [rad | m], times [s], velocities [rad/s | m/s].
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple, Sequence

import numpy as np

from sitebot.control.types import SPEED_SLACK, KernelConfig, Reject

__all__ = ["TrajectoryCheck", "TrajectoryRejected", "Waypoint", "KernelTrajectory",
           "validate_trajectory", "explain_rejection"]


@dataclass(frozen=True)
class TrajectoryCheck:
    """The tolerances of :func:`validate_trajectory`.

    ``limit_tolerance`` [rad | m]: a position this far outside its joint limits still
    passes (limits written with rounding); ``start_tolerance`` [rad | m]: how close to the
    current setpoint a first point at ``time_from_start`` 0 must be; ``speed_tolerance``
    (relative): slack on the joints' velocity limits for the way from the setpoint to the
    first point.  All finite and >= 0.

    :raises ValueError: naming the field.
    """

    limit_tolerance: float = 1e-9
    start_tolerance: float = 1e-3
    speed_tolerance: float = 1e-6

    def __post_init__(self) -> None:
        for f in fields(self):
            raw = getattr(self, f.name)
            try:
                v = float(raw)
            except (TypeError, ValueError):
                v = math.nan
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"TrajectoryCheck.{f.name} must be finite and >= 0, got {raw!r}")
            object.__setattr__(self, f.name, v)


class TrajectoryRejected(ValueError):
    """A trajectory refused before it reached the kernel.

    ``code`` is the :class:`Reject` code that names the same kind of problem, or ``None``
    where the kernel has none (unknown joint names, no setpoint yet).
    """

    def __init__(self, reason: str, code: Reject | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Waypoint:
    """One point as it arrived: ``time_s`` (time from start) and one value per named joint
    in ``positions``, ``velocities`` and ``accelerations`` (empty: not given)."""

    time_s: float
    positions: Sequence[float]
    velocities: Sequence[float] = ()
    accelerations: Sequence[float] = ()


class KernelTrajectory(NamedTuple):
    """What ``set_trajectory`` takes, in the kernel's joint order: times (P,), positions
    (P, n), velocities and accelerations (P, n) or None."""

    times_s: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None
    accelerations: np.ndarray | None


_WHAT = {"positions": "position", "velocities": "velocity", "accelerations": "acceleration"}


def validate_trajectory(names: Sequence[str], points: Sequence[Waypoint],
                        joint_names: Sequence[str], pos_min: Sequence[float],
                        pos_max: Sequence[float], setpoint: Sequence[float] | None,
                        ignored_joint_names: Sequence[str] = (),
                        vel_max: Sequence[float] | None = None,
                        check: TrajectoryCheck = TrajectoryCheck()) -> KernelTrajectory:
    """Validate a trajectory for ``names`` through ``points`` and return it in the
    kernel's joint order (``joint_names``).

    :param setpoint: the kernel's current position setpoint (n,), used to fill joints the
        trajectory does not name and to check the way to the first point; None before the
        loop has ticked.
    :param vel_max: the joints' velocity limits (n,): with a setpoint, the first point must
        be reachable from it within its time at these speeds.
    :raises TrajectoryRejected: naming the problem (point index, joint, value, limits).
    """
    kernel = list(joint_names)
    n = len(kernel)
    names = list(names)
    points = list(points)
    if not points:
        raise TrajectoryRejected("no points", Reject.EMPTY)
    if not names:
        raise TrajectoryRejected("no joint_names", Reject.WRONG_SIZE)
    dup = sorted({j for j in names if names.count(j) > 1})
    if dup:
        raise TrajectoryRejected(f"duplicate joint name(s) {', '.join(dup)}", Reject.WRONG_SIZE)
    index = {j: i for i, j in enumerate(kernel)}
    ignored = set(ignored_joint_names)
    unknown = [j for j in names if j not in index and j not in ignored]
    if unknown:
        raise TrajectoryRejected(
            f"unknown joint(s) {', '.join(repr(j) for j in unknown)}; this controller drives "
            f"{', '.join(kernel)}", None)
    cols = [(c, index[j]) for c, j in enumerate(names) if j in index]   # column -> kernel
    if not cols:
        raise TrajectoryRejected("names only ignored joints "
                                 f"({', '.join(names)}); nothing to do", Reject.WRONG_SIZE)
    m = len(names)
    has_vel = len(points[0].velocities) > 0
    has_acc = len(points[0].accelerations) > 0
    times = np.empty(len(points))
    prev = None
    for i, p in enumerate(points):
        if len(p.positions) != m:
            raise TrajectoryRejected(f"point {i}: {len(p.positions)} positions for {m} joint "
                                     "names", Reject.WRONG_SIZE)
        for field, present in (("velocities", has_vel), ("accelerations", has_acc)):
            k = len(getattr(p, field))
            if present and k != m:
                raise TrajectoryRejected(f"point {i}: {k} {field} for {m} joint names"
                                         + (" (point 0 has them: all points or none)"
                                            if k == 0 else ""), Reject.WRONG_SIZE)
            if not present and k != 0:
                raise TrajectoryRejected(f"point {i}: has {field} but point 0 has none "
                                         "(all points or none)", Reject.WRONG_SIZE)
        t = float(p.time_s)
        if not math.isfinite(t):
            raise TrajectoryRejected(f"point {i}: time_from_start is not finite",
                                     Reject.NON_FINITE)
        if t < 0.0:
            raise TrajectoryRejected(f"point {i}: time_from_start {t:g} s is negative",
                                     Reject.NON_MONOTONIC_TIME)
        if prev is not None and t <= prev:
            raise TrajectoryRejected(
                f"point {i}: time_from_start {t:g} s is not after point {i - 1}'s {prev:g} s "
                "(times must increase strictly)", Reject.NON_MONOTONIC_TIME)
        times[i] = prev = t
    if has_acc and not has_vel:
        raise TrajectoryRejected("accelerations without velocities", Reject.WRONG_SIZE)

    def table(field: str) -> np.ndarray:
        raw = np.array([list(getattr(p, field)) for p in points], dtype=np.float64)
        bad = np.argwhere(~np.isfinite(raw))
        if bad.size:
            i, c = (int(x) for x in bad[0])
            raise TrajectoryRejected(f"point {i}: {_WHAT[field]} of {names[c]} is "
                                     f"{float(raw[i, c])}", Reject.NON_FINITE)
        return raw

    pos_raw = table("positions")
    vel_raw = table("velocities") if has_vel else None
    acc_raw = table("accelerations") if has_acc else None

    lo = np.asarray(pos_min, dtype=np.float64)
    hi = np.asarray(pos_max, dtype=np.float64)
    tol = check.limit_tolerance
    for c, k in cols:
        col = pos_raw[:, c]
        off = np.nonzero((col < lo[k] - tol) | (col > hi[k] + tol))[0]
        if off.size:
            i = int(off[0])
            raise TrajectoryRejected(
                f"point {i}: position {col[i]:g} of {names[c]} is outside its limits "
                f"[{lo[k]:g}, {hi[k]:g}]", Reject.OUT_OF_LIMITS)

    P = len(points)
    named = {k for _, k in cols}
    missing = [k for k in range(n) if k not in named]
    if (missing or times[0] == 0.0) and setpoint is None:
        raise TrajectoryRejected(
            "names only " + ", ".join(kernel[k] for k in sorted(named)) + " and the loop has "
            "no setpoint yet to hold the other joints at" if missing else
            "first point at time_from_start 0 and the loop has no setpoint yet", None)
    sp = None if setpoint is None else np.asarray(setpoint, dtype=np.float64)
    positions = np.empty((P, n))
    velocities = np.zeros((P, n)) if has_vel else None
    accelerations = np.zeros((P, n)) if has_acc else None
    if missing:
        positions[:, missing] = sp[missing]
    for c, k in cols:
        positions[:, k] = pos_raw[:, c]
        if velocities is not None:
            velocities[:, k] = vel_raw[:, c]
        if accelerations is not None:
            accelerations[:, k] = acc_raw[:, c]
    if sp is not None and vel_max is not None and times[0] > 0.0:
        speed = np.abs(positions[0] - sp) / times[0]
        vmax = np.asarray(vel_max, dtype=np.float64)
        over = np.nonzero(speed > vmax * (1.0 + check.speed_tolerance))[0]
        if over.size:
            k = int(over[0])
            raise TrajectoryRejected(
                f"point 0: {kernel[k]} would have to move from its setpoint {sp[k]:g} to "
                f"{positions[0, k]:g} in {times[0]:g} s, {speed[k]:g} on average, over its "
                f"velocity limit {vmax[k]:g}", Reject.OUT_OF_LIMITS)
    if times[0] == 0.0:
        gap = np.abs(positions[0] - sp)
        k = int(np.argmax(gap))
        if gap[k] > check.start_tolerance:
            raise TrajectoryRejected(
                f"point 0 at time_from_start 0 puts {kernel[k]} at {positions[0, k]:g}, "
                f"{gap[k]:g} away from its current setpoint {sp[k]:g}: give the first point "
                "time to get there", Reject.NON_MONOTONIC_TIME)
    return KernelTrajectory(times, positions, velocities, accelerations)


def explain_rejection(code: Reject, trajectory: KernelTrajectory, config: KernelConfig,
                      joint_names: Sequence[str]) -> str:
    """Why the kernel refused ``trajectory`` (which passed :func:`validate_trajectory`),
    as far as ``config`` tells: the kernel answers with a code only."""
    times, pos, vel, acc = trajectory
    text = f"{len(times)} points over {times[-1]:g} s"
    if code is Reject.TOO_MANY_POINTS:
        return f"{text}; the kernel takes at most {config.max_points} points"
    if code is not Reject.OUT_OF_LIMITS:
        return text
    vmax = np.asarray(config.vel_max, dtype=np.float64)
    amax = np.asarray(config.acc_max, dtype=np.float64)
    for k in range(len(times)):
        for what, values, limit in (("velocity", vel, vmax), ("acceleration", acc, amax)):
            over = np.nonzero(np.abs(values[k]) > limit)[0] if values is not None else ()
            if len(over):
                i = int(over[0])
                return (f"point {k}: {what} {values[k, i]:g} of {joint_names[i]} "
                        f"exceeds its limit {limit[i]:g}")
        if k > 0:
            dt = times[k] - times[k - 1]
            speed = np.abs(pos[k] - pos[k - 1]) / dt
            over = np.nonzero(speed > vmax * (1.0 + SPEED_SLACK))[0]
            if over.size:
                i = int(over[0])
                return (f"points {k - 1}->{k}: {joint_names[i]} would move at "
                        f"{speed[i]:g} on average, over its velocity limit {vmax[i]:g}")
    return text + "; outside the kernel's limits"
