"""From the contents of the localization node's input messages to filter measurements.

No ROS here: the node unpacks a message into numbers (stamps in seconds, quaternions as
(x, y, z, w), covariances as the flat row-major arrays the messages carry) and one of these
functions makes the :class:`~sitebot.localization.ekf.Measurement` (or, for a pose reset,
the standard deviations). Fiducial detections:
:func:`sitebot.localization.fixes.detection_measurement`.
"""
from __future__ import annotations

import math
from typing import Sequence

from sitebot.localization.ekf import Measurement
from sitebot.types import quaternion_to_yaw

__all__ = ["covariance_block", "odom_measurement", "imu_measurement", "pose_measurement",
           "reset_pose_std", "IMU_NO_ORIENTATION", "TWIST_VX_WZ", "POSE_X_Y_YAW"]

#: sensor_msgs/Imu: an orientation_covariance[0] of -1 means "no orientation estimate"
IMU_NO_ORIENTATION = -1.0

#: rows/columns of vx and wz in a 6x6 twist covariance, of x, y and yaw in a pose's
TWIST_VX_WZ = (0, 5)
POSE_X_Y_YAW = (0, 1, 5)


def covariance_block(cov: Sequence[float], idx: Sequence[int]) -> list[list[float]]:
    """Rows and columns ``idx`` of a square covariance given row-major (flat).

    :raises ValueError: when ``cov`` has a number of elements that is not a square.
    """
    n = int(round(math.sqrt(len(cov))))
    if n * n != len(cov):
        raise ValueError(f"covariance of {len(cov)} elements is not square")
    return [[float(cov[i * n + j]) for j in idx] for i in idx]


def odom_measurement(stamp: float, vx: float, wz: float,
                     twist_cov: Sequence[float]) -> Measurement:
    """Wheel odometry's body twist (nav_msgs/Odometry ``twist``) as the ``odom`` input."""
    return Measurement("odom", stamp, [vx, wz], covariance_block(twist_cov, TWIST_VX_WZ))


def imu_measurement(stamp: float, orientation: Sequence[float],
                    orientation_cov: Sequence[float], gyro_z: float,
                    gyro_cov: Sequence[float]) -> Measurement:
    """An IMU sample (sensor_msgs/Imu, level and aligned with the base) as the ``imu`` input:
    the orientation's yaw (NaN when the message says it has none) and the gyro's z rate,
    with the zz variances of their 3x3 covariances."""
    has_orientation = orientation_cov[0] != IMU_NO_ORIENTATION
    yaw = quaternion_to_yaw(orientation) if has_orientation else math.nan
    oc = orientation_cov[8] if has_orientation else math.nan
    return Measurement("imu", stamp, [yaw, gyro_z], [[oc, 0.0], [0.0, gyro_cov[8]]])


def pose_measurement(stamp: float, pose: Sequence[float],
                     pose_cov: Sequence[float]) -> Measurement:
    """An absolute map pose (x, y, yaw) with its 6x6 covariance as the ``pose`` input."""
    x, y, yaw = pose
    return Measurement("pose", stamp, [x, y, yaw], covariance_block(pose_cov, POSE_X_Y_YAW))


def reset_pose_std(pose_cov: Sequence[float], default_std: Sequence[float]) -> list[float]:
    """Standard deviations of x, y and yaw for a pose reset (``initialpose``): from the
    6x6 covariance's diagonal where it is finite and positive, else ``default_std``."""
    return [math.sqrt(pose_cov[i]) if math.isfinite(pose_cov[i]) and pose_cov[i] > 0 else s
            for i, s in zip((0, 7, 35), default_std[:3])]
