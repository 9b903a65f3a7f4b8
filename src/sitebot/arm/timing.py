"""Time parameterization of a joint path with ruckig (jerk-limited, time-optimal per segment).

Each straight segment of the path is one ruckig state-to-state motion from rest to rest
with **phase synchronization**: all joints' profiles are scaled copies of one another, so
the arm moves exactly along the straight joint-space segment that the collision checker
validated (a blended path would cut corners that were never checked).  The velocity,
acceleration and jerk limits apply per joint.  The concatenated trajectory is sampled at a
fixed step (enlarged when the trajectory would need more than ``max_points`` samples: the
control kernel's trajectory capacity) into positions, velocities, accelerations and
``time_from_start``.  Point 0 is the first sample after t = 0 (the control loop starts
from its own setpoint; a t = 0 point would have to equal it), the last point is the path's
end at rest.

Community ruckig (the PyPI package) has no intermediate waypoints (those are in
ruckig Pro), hence the segment-by-segment composition.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["TimedTrajectory", "time_parameterize", "TimingError"]


class TimingError(ValueError):
    """The path or the limits cannot be parameterized (names what is wrong)."""


@dataclass(frozen=True)
class TimedTrajectory:
    """Samples of a trajectory: ``times`` (P,) [s] from the start, ``positions``,
    ``velocities``, ``accelerations`` (P, n); ``duration`` [s]; ``segment_durations``."""

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray
    duration: float
    segment_durations: tuple[float, ...]
    step_s: float


def _limits(name: str, v: Sequence[float], n: int) -> np.ndarray:
    a = np.asarray(v, dtype=float).ravel()
    if a.size != n or not np.isfinite(a).all() or (a <= 0).any():
        raise TimingError(f"{name} must be {n} positive finite numbers, got {list(a)}")
    return a


def time_parameterize(path: np.ndarray, max_velocity: Sequence[float],
                      max_acceleration: Sequence[float], max_jerk: Sequence[float], *,
                      step_s: float = 0.02, max_points: int = 200) -> TimedTrajectory:
    """Rest-to-rest, segment-wise ruckig timing of ``path`` (N, n), N >= 2, sampled."""
    from ruckig import InputParameter, Result, Ruckig, Synchronization, Trajectory

    path = np.asarray(path, dtype=float)
    if path.ndim != 2 or path.shape[0] < 1 or not np.isfinite(path).all():
        raise TimingError(f"path must be (N, n) finite numbers, got shape {path.shape}")
    n = path.shape[1]
    vmax = _limits("max_velocity", max_velocity, n)
    amax = _limits("max_acceleration", max_acceleration, n)
    jmax = _limits("max_jerk", max_jerk, n)
    if not (step_s > 0 and math.isfinite(step_s)) or max_points < 2:
        raise TimingError(f"step_s {step_s} must be > 0 and max_points {max_points} >= 2")
    # drop repeated waypoints (zero-length segments)
    keep = [0] + [i for i in range(1, len(path))
                  if np.max(np.abs(path[i] - path[i - 1])) > 1e-9]
    path = path[keep]
    otg = Ruckig(n)
    segs = []
    for i in range(len(path) - 1):
        inp = InputParameter(n)
        inp.current_position = path[i].tolist()
        inp.target_position = path[i + 1].tolist()
        inp.current_velocity = [0.0] * n
        inp.current_acceleration = [0.0] * n
        inp.target_velocity = [0.0] * n
        inp.target_acceleration = [0.0] * n
        inp.max_velocity = vmax.tolist()
        inp.max_acceleration = amax.tolist()
        inp.max_jerk = jmax.tolist()
        inp.synchronization = Synchronization.Phase
        tr = Trajectory(n)
        res = otg.calculate(inp, tr)
        if res not in (Result.Working, Result.Finished):
            raise TimingError(f"ruckig failed on segment {i}: {res}")
        segs.append(tr)
    durations = tuple(float(t.duration) for t in segs)
    total = float(sum(durations))
    if total <= 0.0:
        # nothing to move: one point at the goal, a short hold
        t = np.array([step_s])
        z = np.zeros((1, n))
        return TimedTrajectory(t, path[-1:].copy(), z, z.copy(), 0.0, durations, step_s)
    step = max(step_s, total / (max_points - 1))
    count = int(math.ceil(total / step - 1e-9))
    times = np.minimum(step * np.arange(1, count + 1), total)
    times[-1] = total
    starts = np.concatenate([[0.0], np.cumsum(durations)])
    pos = np.empty((count, n))
    vel = np.empty((count, n))
    acc = np.empty((count, n))
    for k, t in enumerate(times):
        i = min(int(np.searchsorted(starts, t, side="right")) - 1, len(segs) - 1)
        p, v, a = segs[i].at_time(float(min(t - starts[i], durations[i])))
        pos[k], vel[k], acc[k] = p, v, a
    pos[-1] = path[-1]
    vel[-1] = 0.0
    acc[-1] = 0.0
    return TimedTrajectory(times, pos, vel, acc, total, durations, step)
