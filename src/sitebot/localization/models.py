"""The filter's models: planar motion and the measurement functions, with analytic Jacobians.

State (map frame, REP-103): ``X = [x, y, yaw, v, w, bg]``: position [m], heading [rad],
forward speed [m/s], yaw rate [rad/s], gyro z bias [rad/s].

Motion (constant speed and yaw rate over ``dt``, heading at mid-step)::

    th = yaw + w dt / 2
    x' = x + v cos(th) dt,  y' = y + v sin(th) dt,  yaw' = yaw + w dt
    v' = v, w' = w, bg' = bg          (random walks: process noise)

Measurements (``h(X)``; each input fuses a configured subset of its fields):

* odom   ``[vx, vyaw] = [v, w]``                    (wheel odometry body twist)
* imu    ``[yaw, vyaw] = [yaw, w + bg]``             (AHRS yaw, gyro z)
* fiducial ``[bx, by, byaw]``: the surveyed marker (mx, my, myaw) seen from the robot:
  ``[bx, by] = R(-yaw) [mx - x, my - y]``, ``byaw = myaw - yaw``
* pose   ``[x, y, yaw]``                              (absolute map pose)
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from sitebot.types import Pose2D, wrap_angle

__all__ = ["N", "IX", "IY", "IYAW", "IV", "IW", "IB", "motion", "motion_jacobian",
           "measure", "ANGULAR", "robot_pose_from_fix"]

N = 6
IX, IY, IYAW, IV, IW, IB = range(N)


def motion(x: Sequence[float], dt: float) -> tuple[list, tuple]:
    """Predicted state (a list) and the non-identity entries of the Jacobian F = df/dX:
    ``(f02, f03, f04, f12, f13, f14, f24)`` (row, column); see :func:`motion_jacobian`."""
    px, py, yaw, v, w, b = x
    th = yaw + 0.5 * w * dt
    c, s = math.cos(th), math.sin(th)
    vdt = v * dt
    out = [px + vdt * c, py + vdt * s, wrap_angle(yaw + w * dt), v, w, b]
    f = (-vdt * s, c * dt, -0.5 * vdt * s * dt, vdt * c, s * dt, 0.5 * vdt * c * dt, dt)
    return out, f


def motion_jacobian(x: Sequence[float], dt: float) -> np.ndarray:
    """The dense 6x6 F of :func:`motion` (tests, the filterpy comparison)."""
    _, f = motion(x, dt)
    F = np.eye(N)
    F[IX, IYAW], F[IX, IV], F[IX, IW], F[IY, IYAW], F[IY, IV], F[IY, IW], F[IYAW, IW] = f
    return F


#: which fields of each input are angles (innovations are wrapped)
ANGULAR = {"odom": (False, False), "imu": (True, False), "fiducial": (False, False, True),
           "pose": (False, False, True)}

_ODOM_H = ([0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
_IMU_H = ([0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
_POSE_H = ([1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
           [0.0, 0.0, 1.0, 0.0, 0.0, 0.0])


def measure(source: str, x: Sequence[float],
            marker: Pose2D | None = None) -> tuple[list, tuple]:
    """``h(X)`` for all fields of ``source`` and its Jacobian rows (tuples of 6-lists;
    do not modify them).  ``marker``: (mx, my, myaw), the fiducial's surveyed pose."""
    if source == "odom":
        return [x[IV], x[IW]], _ODOM_H
    if source == "imu":
        return [x[IYAW], x[IW] + x[IB]], _IMU_H
    if source == "pose":
        return [x[IX], x[IY], x[IYAW]], _POSE_H
    if source == "fiducial":
        if marker is None:
            raise ValueError("a fiducial measurement needs the marker's map pose")
        mx, my, myaw = marker
        c, s = math.cos(x[IYAW]), math.sin(x[IYAW])
        dx, dy = mx - x[IX], my - x[IY]
        bx = c * dx + s * dy
        by = -s * dx + c * dy
        return [bx, by, wrap_angle(myaw - x[IYAW])], (
            [-c, -s, by, 0.0, 0.0, 0.0],
            [s, -c, -bx, 0.0, 0.0, 0.0],
            [0.0, 0.0, -1.0, 0.0, 0.0, 0.0])
    raise ValueError(f"unknown input '{source}'; accepted: odom, imu, fiducial, pose")


def robot_pose_from_fix(marker: Pose2D, bx: float, by: float,
                        byaw: float) -> Pose2D:
    """The robot's map pose implied by one fix (inverse of the fiducial model)."""
    mx, my, myaw = marker
    yaw = wrap_angle(myaw - byaw)
    c, s = math.cos(yaw), math.sin(yaw)
    return Pose2D(mx - (c * bx - s * by), my - (s * bx + c * by), yaw)


