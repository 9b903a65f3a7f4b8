"""Conversions between core value types and ROS messages (no node logic here)."""
from __future__ import annotations

import array
import math
from typing import Iterable, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseArray, Quaternion, TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image, Imu, JointState, LaserScan

from sitebot.description.kinematics import Transform
from sitebot.types import Pose2D, quaternion_to_yaw, yaw_to_quaternion

__all__ = ["to_time", "from_time", "stamp_of", "transform_msg", "joint_state_msg", "odometry_msg",
           "imu_msg", "scan_msg", "image_rgb_msg", "image_depth_msg", "camera_info_msg",
           "ground_truth_msg", "people_pose_array"]


def to_time(t_s: float) -> Time:
    """Seconds (float) to builtin_interfaces/Time."""
    sec = int(math.floor(t_s))
    nsec = int(round((t_s - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return Time(sec=sec, nanosec=nsec)


def from_time(t: Time) -> float:
    return t.sec + t.nanosec * 1e-9


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


def _image_msg(pixels: np.ndarray, dtype: type, encoding: str, stamp: Time,
               frame_id: str) -> Image:
    data = np.ascontiguousarray(pixels, dtype=dtype)
    m = Image()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.height, m.width = int(data.shape[0]), int(data.shape[1])
    m.encoding = encoding
    m.is_bigendian = 0
    m.step = m.width * data[0, 0].nbytes
    m.data = data.tobytes()
    return m


def image_rgb_msg(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """rgb8 image from an HxWx3 uint8 array."""
    return _image_msg(rgb, np.uint8, "rgb8", stamp, frame_id)


def image_depth_msg(depth_m: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """REP-118 depth image: 32FC1 in metres, NaN/inf where there is no return."""
    return _image_msg(depth_m, np.float32, "32FC1", stamp, frame_id)


def camera_info_msg(K: np.ndarray, width: int, height: int, stamp: Time,
                    frame_id: str) -> CameraInfo:
    """A distortion-free pinhole CameraInfo for intrinsics ``K`` (3x3)."""
    m = CameraInfo()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.width, m.height = int(width), int(height)
    m.distortion_model = "plumb_bob"
    m.d = [0.0] * 5
    k = np.asarray(K, dtype=np.float64).reshape(3, 3)
    m.k = k.reshape(9).tolist()
    m.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = np.zeros((3, 4))
    p[:, :3] = k
    m.p = p.reshape(12).tolist()
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


# ---------------------------------------------------------------- images in
ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


class FrameError(ValueError):
    """A frame that cannot be processed (the message says why)."""


def image_to_array(msg: Image) -> tuple[np.ndarray, str]:
    """(uint8 RGB (H, W, 3) or grey (H, W) array, encoding) of an Image message.

    :raises FrameError: empty, truncated, unsupported encoding, inconsistent step.
    """
    enc = msg.encoding.lower()
    if enc not in ENCODINGS:
        raise FrameError(f"unsupported encoding '{msg.encoding}' (accepted: "
                         f"{', '.join(ENCODINGS)})")
    ch = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise FrameError(f"empty image ({w}x{h})")
    if step < w * ch:
        raise FrameError(f"step {step} < width {w} x {ch} bytes")
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray))
                         else msg.data, dtype=np.uint8)
    if data.size < step * h:
        raise FrameError(f"truncated image: {data.size} bytes < step {step} x height {h}")
    rows = data[:step * h].reshape(h, step)[:, :w * ch]
    if ch == 1:
        return np.ascontiguousarray(rows), enc
    arr = rows.reshape(h, w, 3)
    if enc == "bgr8":
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr), enc


def image_to_bgr(msg: Image) -> np.ndarray | None:
    """A BGR (H, W, 3) or grey (H, W) uint8 array of an Image message (for cv2.imwrite and
    encoders), None when the message is malformed (see :func:`image_to_array`)."""
    try:
        arr, enc = image_to_array(msg)
    except FrameError:
        return None
    return arr if arr.ndim == 2 else np.ascontiguousarray(arr[:, :, ::-1])
