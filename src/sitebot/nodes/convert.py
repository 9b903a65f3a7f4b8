"""Conversions between core value types and ROS messages (no node logic here); images,
camera_info and point clouds are in :mod:`sitebot.nodes.convert_images`."""
from __future__ import annotations

import array
import math
from typing import Any, Iterable, Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import (Pose, PoseArray, PoseStamped, Quaternion, TransformStamped,
                               TwistStamped)
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from sensor_msgs.msg import Imu, JointState, LaserScan
from trajectory_msgs.msg import JointTrajectory

from sitebot.control.trajectory import (KernelTrajectory, TrajectoryCheck, Waypoint,
                                        validate_trajectory)
from sitebot.description.kinematics import Transform
from sitebot.types import (Diagnostic, Pose2D, matrix_quaternion, quaternion_to_yaw,
                           yaw_to_quaternion)

__all__ = ["convert_trajectory", "publisher_gid", "to_time", "to_duration", "from_time", "stamp_of", "msg_yaw", "planar_pose", "transform_msg",
           "joint_state_msg", "odometry_msg", "imu_msg", "scan_msg", "ground_truth_msg",
           "people_pose_array", "pose_from_matrix", "diagnostic_status", "twist_msg",
           "path_msg", "occupancy_grid_msg"]


def _sec_nsec(t_s: float) -> tuple[int, int]:
    """Whole seconds and nanoseconds (rounded; a round-up to a full second carries)."""
    sec = int(math.floor(t_s))
    nsec = int(round((t_s - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return sec, nsec


def to_time(t_s: float) -> Time:
    """Seconds (float) to builtin_interfaces/Time."""
    sec, nsec = _sec_nsec(t_s)
    return Time(sec=sec, nanosec=nsec)


def to_duration(t_s: float) -> Duration:
    """Seconds (float) to builtin_interfaces/Duration (trajectory time_from_start)."""
    sec, nsec = _sec_nsec(t_s)
    return Duration(sec=sec, nanosec=nsec)


def from_time(t: Time) -> float:
    return t.sec + t.nanosec * 1e-9


def to_ns(t: Time) -> int:
    """builtin_interfaces/Time to integer nanoseconds (exact)."""
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def from_ns(ns: int) -> Time:
    """Integer nanoseconds to builtin_interfaces/Time (exact; negative: time 0)."""
    sec, nsec = divmod(max(int(ns), 0), 1_000_000_000)
    return Time(sec=sec, nanosec=nsec)


def stamp_of(msg) -> float:
    """The time [s] a message carries: its header stamp, a Clock's clock, or the first
    transform's stamp of a TFMessage; NaN for a message with none."""
    if hasattr(msg, "header"):
        return from_time(msg.header.stamp)
    if hasattr(msg, "clock"):
        return from_time(msg.clock)
    if getattr(msg, "transforms", None):
        return from_time(msg.transforms[0].header.stamp)
    return float("nan")


def msg_yaw(q: Quaternion) -> float:
    """Heading [rad] of a geometry_msgs/Quaternion."""
    return quaternion_to_yaw((q.x, q.y, q.z, q.w))


def planar_pose(pose: Pose) -> Pose2D:
    """(x, y, yaw) of a geometry_msgs/Pose (yaw from its quaternion)."""
    return Pose2D(pose.position.x, pose.position.y, msg_yaw(pose.orientation))


def pose_from_matrix(T: np.ndarray) -> Pose:
    """geometry_msgs/Pose of a 4x4 homogeneous transform."""
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in T[:3, 3])
    o = p.orientation
    o.x, o.y, o.z, o.w = matrix_quaternion(T[:3, :3])
    return p


def transform_msg(t: Transform, stamp: Time) -> TransformStamped:
    m = TransformStamped()
    m.header.stamp = stamp
    m.header.frame_id = t.parent
    m.child_frame_id = t.child
    m.transform.translation.x, m.transform.translation.y, m.transform.translation.z = t.translation
    r = m.transform.rotation
    r.x, r.y, r.z, r.w = t.rotation_xyzw
    return m


def joint_state_msg(names: Sequence[str], positions: np.ndarray, velocities: np.ndarray,
                    efforts: np.ndarray, stamp: Time) -> JointState:
    m = JointState()
    m.header.stamp = stamp
    m.name = list(names)
    m.position = array.array("d", np.asarray(positions, dtype=np.float64).tobytes())
    m.velocity = array.array("d", np.asarray(velocities, dtype=np.float64).tobytes())
    m.effort = array.array("d", np.asarray(efforts, dtype=np.float64).tobytes())
    return m


def _cov36(cov) -> array.array:
    c = np.asarray(cov, dtype=np.float64).reshape(36)
    return array.array("d", c.tobytes())


def odometry_msg(odom, stamp: Time, frame_id: str, child_frame_id: str) -> Odometry:
    """nav_msgs/Odometry from a :class:`sitebot.sim.sensors.OdomData`."""
    m = Odometry()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.child_frame_id = child_frame_id
    p = m.pose.pose
    p.position.x, p.position.y = float(odom.x_m), float(odom.y_m)
    q = yaw_to_quaternion(float(odom.yaw_rad))
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = q
    m.pose.covariance = _cov36(odom.pose_covariance)
    m.twist.twist.linear.x = float(odom.v_mps)
    m.twist.twist.angular.z = float(odom.w_radps)
    m.twist.covariance = _cov36(odom.twist_covariance)
    return m


def imu_msg(imu, stamp: Time, frame_id: str) -> Imu:
    """sensor_msgs/Imu from a :class:`sitebot.sim.sensors.ImuData`."""
    m = Imu()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    o = m.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in imu.orientation_xyzw)
    av, la = m.angular_velocity, m.linear_acceleration
    av.x, av.y, av.z = (float(v) for v in imu.angular_velocity_radps)
    la.x, la.y, la.z = (float(v) for v in imu.linear_acceleration_mps2)
    m.orientation_covariance = array.array("d", np.asarray(imu.orientation_covariance, dtype=np.float64).reshape(9).tobytes())
    m.angular_velocity_covariance = array.array("d", np.asarray(imu.angular_velocity_covariance, dtype=np.float64).reshape(9).tobytes())
    m.linear_acceleration_covariance = array.array("d", np.asarray(imu.linear_acceleration_covariance, dtype=np.float64).reshape(9).tobytes())
    return m


def scan_msg(scan, stamp: Time, frame_id: str, scan_time_s: float) -> LaserScan:
    """sensor_msgs/LaserScan from a :class:`sitebot.sim.sensors.ScanData`."""
    m = LaserScan()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.angle_min = float(scan.angle_min)
    m.angle_max = float(scan.angle_max)
    m.angle_increment = float(scan.angle_increment)
    m.time_increment = 0.0
    m.scan_time = float(scan_time_s)
    m.range_min = float(scan.range_min)
    m.range_max = float(scan.range_max)
    m.ranges = array.array("f", np.asarray(scan.ranges, dtype=np.float32).tobytes())
    return m


def ground_truth_msg(gt, stamp: Time, frame_id: str, child_frame_id: str) -> Odometry:
    """The true base pose and twist (evaluation only) as nav_msgs/Odometry in ``frame_id``."""
    m = Odometry()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.child_frame_id = child_frame_id
    p = m.pose.pose
    p.position.x, p.position.y, p.position.z = gt.x_m, gt.y_m, gt.z_m
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = gt.orientation_xyzw
    t = m.twist.twist
    t.linear.x, t.linear.y, t.linear.z = gt.linear_velocity_mps
    t.angular.x, t.angular.y, t.angular.z = gt.angular_velocity_radps
    return m


def people_pose_array(people: Iterable, stamp: Time, frame_id: str) -> PoseArray:
    """Ground-truth people positions (heading = walking direction) as a PoseArray."""
    m = PoseArray()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    for person in people:
        pose = Pose()
        pose.position.x, pose.position.y = float(person.x), float(person.y)
        heading = math.atan2(person.vy, person.vx) if (person.vx or person.vy) else 0.0
        q = yaw_to_quaternion(heading)
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = q
        m.poses.append(pose)
    return m


def diagnostic_status(d: Diagnostic, node_name: str, hardware_id: str) -> DiagnosticStatus:
    """A core :class:`~sitebot.types.Diagnostic` as DiagnosticStatus named '<node>: <name>'."""
    return DiagnosticStatus(level=bytes([int(d.level)]), name=f"{node_name}: {d.name}",
                            message=d.message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in d.values])


def twist_msg(v: float, w: float, stamp: Time, frame_id: str) -> TwistStamped:
    """A base command: linear x ``v`` [m/s], angular z ``w`` [rad/s]."""
    m = TwistStamped()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.twist.linear.x, m.twist.angular.z = float(v), float(w)
    return m


def path_msg(xy: Iterable[Sequence[float]], yaw: Iterable[float], stamp: Time,
             frame_id: str) -> Path:
    """nav_msgs/Path through the points ``xy`` [m] with the headings ``yaw`` [rad]."""
    m = Path()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    for (x, y), a in zip(xy, yaw):
        ps = PoseStamped()
        ps.header = m.header
        ps.pose.position.x, ps.pose.position.y = float(x), float(y)
        o = ps.pose.orientation
        o.x, o.y, o.z, o.w = yaw_to_quaternion(float(a))
        m.poses.append(ps)
    return m


def occupancy_grid_msg(values: np.ndarray, origin_x: float, origin_y: float,
                       resolution_m: float, stamp: Time, frame_id: str) -> OccupancyGrid:
    """nav_msgs/OccupancyGrid of the int8 cells ``values`` (rows = y; 0..100, -1 unknown)
    whose corner cell lies at (origin_x, origin_y), not rotated."""
    m = OccupancyGrid()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.info.map_load_time = stamp
    m.info.resolution = float(resolution_m)
    m.info.height, m.info.width = (int(n) for n in values.shape)
    m.info.origin.position.x, m.info.origin.position.y = float(origin_x), float(origin_y)
    m.info.origin.orientation.w = 1.0
    m.data = array.array("b", np.ascontiguousarray(values, dtype=np.int8).tobytes())
    return m


def convert_trajectory(msg: JointTrajectory, joint_names: Sequence[str],
                       pos_min: Sequence[float], pos_max: Sequence[float],
                       setpoint: Sequence[float] | None,
                       ignored_joint_names: Sequence[str] = (),
                       vel_max: Sequence[float] | None = None,
                       check: TrajectoryCheck = TrajectoryCheck()) -> KernelTrajectory:
    """``msg`` validated into ``(times_s, positions, velocities, accelerations)`` in the
    kernel's joint order (:func:`sitebot.control.trajectory.validate_trajectory`).

    :raises TrajectoryRejected: naming the problem (point index, joint, value, limits).
    """
    points = [Waypoint(from_time(p.time_from_start), p.positions, p.velocities,
                       p.accelerations) for p in msg.points]
    return validate_trajectory(msg.joint_names, points, joint_names, pos_min, pos_max,
                               setpoint, ignored_joint_names, vel_max, check)


def publisher_gid(info: Any) -> bytes | None:
    """The 16-byte publisher GID of a message's info (rclpy MessageInfo), None if absent."""
    try:
        data = info["publisher_gid"]["data"]
    except (KeyError, TypeError):
        return None
    return bytes(data) if data else None
