"""Simulated sensor models: 2D lidar, RGB-D camera, IMU and wheel odometry.

They return plain numpy arrays and small dataclasses (never ROS messages); the sensor
nodes convert.  Lidar and camera are bound to one PyBullet client id; IMU and odometry
are pure models fed with ground truth by their caller.  Randomness comes only from the
``rng`` passed to each call (``None`` = noise-free), so runs are reproducible.

Conventions: REP-103 frames; REP-117 range values (``+inf`` no return within range_max,
``-inf`` closer than range_min, ``nan`` invalid); depth images hold metric depth along the
optical axis (z of the optical frame) in metres, ``+inf`` where nothing lies before the
far plane; IMU follows ``sensor_msgs/Imu`` (specific force: +g on z at rest).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pybullet as pb

from sitebot.config.checks import check_range, finite_vector
from sitebot.sim.world import Lighting
from sitebot.types import quaternion_matrix, quaternion_multiply, rotvec_quaternion, wrap_angle

__all__ = [
    "LidarConfig",
    "ScanData",
    "Lidar",
    "CameraConfig",
    "CameraFrame",
    "Camera",
    "camera_intrinsics",
    "ImuConfig",
    "ImuData",
    "Imu",
    "OdomConfig",
    "OdomData",
    "WheelOdometry",
    "DEFAULT_ROBOT_COLLISION_GROUP",
    "COLLISION_GROUP_USER_DATA_KEY",
    "robot_collision_group",
]

_log = logging.getLogger(__name__)

#: Lowest collision-filter group a robot takes (bit 6; lower bits are PyBullet's own).
DEFAULT_ROBOT_COLLISION_GROUP = 1 << 6
#: PyBullet user-data key under which a SimRobot body records its collision group.
COLLISION_GROUP_USER_DATA_KEY = "sitebot.collision_group"
_ALL_GROUPS = 0xFFFFFFFF


def robot_collision_group(client_id: int, body: int) -> int | None:
    """The collision group a SimRobot recorded on ``body``, or ``None`` if it has none."""
    uid = pb.getUserDataId(body, COLLISION_GROUP_USER_DATA_KEY, physicsClientId=client_id)
    if uid < 0:
        return None
    raw = pb.getUserData(uid, physicsClientId=client_id)
    try:
        return int(raw.decode() if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError):
        return None


_recorded_group = robot_collision_group  # the Lidar's keyword argument shadows the name


# ======================================================================================
# lidar
# ======================================================================================

@dataclass(frozen=True)
class LidarConfig:
    """A planar scanning lidar.

    :param fov_rad: angular field of view [rad], in (0, 2*pi]; centred on the laser frame's
        x axis.  Default 2*pi (360 deg).
    :param angle_increment_rad: angle between beams [rad], in (0, pi/8]; default 0.5 deg
        (720 beams over 360 deg).
    :param range_min_m: shortest measurable range [m], in (0, 1]; default 0.1.
    :param range_max_m: longest measurable range [m], in (range_min_m, 100]; default 20.
    :param range_noise_sigma_m: 1-sigma Gaussian range noise [m], in [0, 1]; default 0.01.
    :param scan_rate_hz: scans per second, in (0, 100] (reported as scan_time); default 10.
    """

    fov_rad: float = 2.0 * math.pi
    angle_increment_rad: float = math.radians(0.5)
    range_min_m: float = 0.1
    range_max_m: float = 20.0
    range_noise_sigma_m: float = 0.01
    scan_rate_hz: float = 10.0

    def __post_init__(self) -> None:
        check_range("LidarConfig", "fov_rad", self.fov_rad, 0.0, 2.0 * math.pi, lo_open=True)
        check_range("LidarConfig", "angle_increment_rad", self.angle_increment_rad,
                     0.0, math.pi / 8.0, lo_open=True)
        check_range("LidarConfig", "range_min_m", self.range_min_m, 0.0, 1.0, lo_open=True)
        check_range("LidarConfig", "range_max_m", self.range_max_m, self.range_min_m, 100.0,
                     lo_open=True)
        check_range("LidarConfig", "range_noise_sigma_m", self.range_noise_sigma_m, 0.0, 1.0)
        check_range("LidarConfig", "scan_rate_hz", self.scan_rate_hz, 0.0, 100.0, lo_open=True)

    @property
    def full_circle(self) -> bool:
        return self.fov_rad >= 2.0 * math.pi - 1e-9

    @property
    def num_beams(self) -> int:
        if self.full_circle:
            return int(round(2.0 * math.pi / self.angle_increment_rad))
        return int(math.floor(self.fov_rad / self.angle_increment_rad + 1e-9)) + 1

    @property
    def angle_min_rad(self) -> float:
        return -math.pi if self.full_circle else -self.fov_rad / 2.0

    def angles_rad(self) -> np.ndarray:
        """Beam angles [rad] in the laser frame, counter-clockwise from angle_min."""
        return self.angle_min_rad + self.angle_increment_rad * np.arange(self.num_beams)


@dataclass(frozen=True)
class ScanData:
    """One scan, fields as in ``sensor_msgs/LaserScan``.

    Angles [rad], ranges [m] (float32, REP-117 special values), times [s].
    """

    angle_min: float
    angle_max: float
    angle_increment: float
    range_min: float
    range_max: float
    ranges: np.ndarray
    time_increment: float = 0.0
    scan_time: float = 0.0

    def angles(self) -> np.ndarray:
        """The angle [rad] of every beam."""
        return self.angle_min + self.angle_increment * np.arange(len(self.ranges))


class Lidar:
    """A 2D lidar on a robot link, cast with one ``rayTestBatch`` per scan.

    :param client_id: PyBullet client id.
    :param robot_body: body id of the robot carrying the lidar.
    :param link_index: PyBullet link index of the laser frame (``laser_link``).
    :param config: see :class:`LidarConfig`.
    :param robot_collision_group: the robot's collision-filter group
        (``SimRobot.collision_group``); rays ignore every body in that group, so the
        robot does not see itself.  Default: the group the SimRobot recorded on its body.
    """

    def __init__(self, client_id: int, robot_body: int, link_index: int,
                 config: LidarConfig | None = None, *,
                 robot_collision_group: int | None = None) -> None:
        self._cid = int(client_id)
        self._body = int(robot_body)
        self._link = int(link_index)
        self._config = config if config is not None else LidarConfig()
        if robot_collision_group is None:
            recorded = _recorded_group(self._cid, self._body)
            robot_collision_group = recorded if recorded is not None else DEFAULT_ROBOT_COLLISION_GROUP
        if not (isinstance(robot_collision_group, int) and 0 < robot_collision_group <= _ALL_GROUPS):
            raise ValueError(f"robot_collision_group={robot_collision_group!r}: accepted: a "
                             "non-zero 32-bit collision-filter group")
        self._mask = _ALL_GROUPS & ~robot_collision_group
        # PyBullet takes the mask as a C int
        if self._mask >= 1 << 31:
            self._mask -= 1 << 32
        angles = self._config.angles_rad()
        self._directions = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], 1)
        self._warned_self_hit = False

    @property
    def collision_mask(self) -> int:
        """The collision-filter mask its rays use: every group but the robot's own."""
        return self._mask

    @property
    def config(self) -> LidarConfig:
        return self._config

    def scan(self, rng: np.random.Generator | None = None) -> ScanData:
        """Cast all beams from the laser frame's current pose; ``rng=None`` = no noise."""
        cfg = self._config
        state = pb.getLinkState(self._body, self._link, computeForwardKinematics=True,
                                physicsClientId=self._cid)
        origin = np.asarray(state[4])
        rot = quaternion_matrix(state[5])
        dirs = self._directions @ rot.T
        starts = np.broadcast_to(origin, dirs.shape)
        ends = origin + dirs * cfg.range_max_m
        hits = pb.rayTestBatch(starts.tolist(), ends.tolist(), collisionFilterMask=self._mask,
                               physicsClientId=self._cid)
        body = np.fromiter((h[0] for h in hits), dtype=np.int64, count=len(hits))
        frac = np.fromiter((h[2] for h in hits), dtype=np.float64, count=len(hits))
        ranges = frac * cfg.range_max_m
        if rng is not None and cfg.range_noise_sigma_m > 0.0:
            ranges = ranges + rng.normal(0.0, cfg.range_noise_sigma_m, size=ranges.shape)
        out = ranges.copy()
        out[ranges > cfg.range_max_m] = np.inf
        out[ranges < cfg.range_min_m] = -np.inf
        out[body < 0] = np.inf
        self_hit = body == self._body
        if self_hit.any():
            out[self_hit] = np.nan
            if not self._warned_self_hit:
                _log.warning("lidar rays hit their own robot (body %d): is "
                             "robot_collision_group the robot's collision group?", self._body)
                self._warned_self_hit = True
        n = len(out)
        scan_time = 1.0 / cfg.scan_rate_hz
        return ScanData(
            angle_min=cfg.angle_min_rad,
            angle_max=cfg.angle_min_rad + (n - 1) * cfg.angle_increment_rad,
            angle_increment=cfg.angle_increment_rad,
            range_min=cfg.range_min_m,
            range_max=cfg.range_max_m,
            ranges=out.astype(np.float32),
            time_increment=scan_time / n,
            scan_time=scan_time,
        )


# ======================================================================================
# camera
# ======================================================================================

@dataclass(frozen=True)
class CameraConfig:
    """A pinhole RGB-D camera (square pixels, principal point at the image centre).

    :param width: image width [px], in [8, 4096]; default 320.
    :param height: image height [px], in [8, 4096]; default 240.
    :param horizontal_fov_rad: horizontal field of view [rad], in (0, pi); default 70 deg.
    :param near_m: near clipping plane [m], in (0, 10]; default 0.1.
    :param far_m: far clipping plane [m], in (near_m, 1000]; default 20.
    """

    width: int = 320
    height: int = 240
    horizontal_fov_rad: float = math.radians(70.0)
    near_m: float = 0.1
    far_m: float = 20.0

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 4096):
                raise ValueError(f"CameraConfig.{name}={v!r}: accepted: an integer in [8, 4096]")
        check_range("CameraConfig", "horizontal_fov_rad", self.horizontal_fov_rad, 0.0,
                     math.pi, lo_open=True, hi_open=True)
        check_range("CameraConfig", "near_m", self.near_m, 0.0, 10.0, lo_open=True)
        check_range("CameraConfig", "far_m", self.far_m, self.near_m, 1000.0, lo_open=True)

    @property
    def focal_length_px(self) -> float:
        """fx = fy [px] = (width / 2) / tan(hfov / 2)."""
        return (self.width / 2.0) / math.tan(self.horizontal_fov_rad / 2.0)

    @property
    def vertical_fov_rad(self) -> float:
        return 2.0 * math.atan((self.height / 2.0) / self.focal_length_px)


def camera_intrinsics(config: CameraConfig) -> np.ndarray:
    """The 3x3 camera matrix K (pixel centres at integer coordinates, OpenCV/ROS)."""
    f = config.focal_length_px
    return np.array([[f, 0.0, (config.width - 1) / 2.0],
                     [0.0, f, (config.height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CameraFrame:
    """One RGB-D frame: ``rgb`` uint8 (H, W, 3); ``depth_m`` float32 (H, W) metric depth
    along the optical axis [m] (``+inf`` where nothing is closer than the far plane);
    ``K`` the 3x3 intrinsics; image size [px]."""

    rgb: np.ndarray
    depth_m: np.ndarray
    K: np.ndarray
    width: int
    height: int


class Camera:
    """An RGB-D camera rendered with PyBullet's CPU tiny renderer.

    :param client_id: PyBullet client id.
    :param robot_body: body id of the robot carrying the camera.
    :param link_index: PyBullet link index of the camera frame.  A link whose name
        contains ``optical`` (``camera_color_optical_frame``) is taken as an optical frame
        (z forward, x right, y down); any other (``camera_link``) as a REP-103 body frame
        (x forward, y left, z up).  Either way the image is the same view.
    :param config: see :class:`CameraConfig`.
    """

    def __init__(self, client_id: int, robot_body: int, link_index: int,
                 config: CameraConfig | None = None) -> None:
        self._cid = int(client_id)
        self._body = int(robot_body)
        self._link = int(link_index)
        self._config = config if config is not None else CameraConfig()
        cfg = self._config
        self._projection = pb.computeProjectionMatrixFOV(
            fov=math.degrees(cfg.vertical_fov_rad), aspect=cfg.width / cfg.height,
            nearVal=cfg.near_m, farVal=cfg.far_m)
        self._K = camera_intrinsics(cfg)
        self._K.flags.writeable = False
        self._optical = self._link >= 0 and b"optical" in pb.getJointInfo(
            self._body, self._link, physicsClientId=self._cid)[12]

    @property
    def config(self) -> CameraConfig:
        return self._config

    @property
    def K(self) -> np.ndarray:
        return self._K

    def render(self, lighting: Any = None) -> CameraFrame:
        """Render the current view.

        :param lighting: any object with ``direction``, ``color``, ``ambient``,
            ``diffuse``, ``specular`` and ``shadow`` (e.g.
            :class:`sitebot.sim.world.Lighting`); default ``Lighting()``.
        """
        cfg = self._config
        light = lighting if lighting is not None else Lighting()
        if self._link < 0:
            pos, orn = pb.getBasePositionAndOrientation(self._body, physicsClientId=self._cid)
        else:
            state = pb.getLinkState(self._body, self._link, computeForwardKinematics=True,
                                    physicsClientId=self._cid)
            pos, orn = state[4], state[5]
        eye = np.asarray(pos)
        rot = quaternion_matrix(orn)
        if self._optical:
            forward, down = rot[:, 2], rot[:, 1]
        else:
            forward, down = rot[:, 0], -rot[:, 2]
        view = pb.computeViewMatrix(cameraEyePosition=eye.tolist(),
                                    cameraTargetPosition=(eye + forward).tolist(),
                                    cameraUpVector=(-down).tolist())
        _, _, rgba, depth_buf, _ = pb.getCameraImage(
            cfg.width, cfg.height, viewMatrix=view, projectionMatrix=self._projection,
            lightDirection=list(light.direction), lightColor=list(light.color),
            lightAmbientCoeff=float(light.ambient), lightDiffuseCoeff=float(light.diffuse),
            lightSpecularCoeff=float(light.specular), shadow=int(bool(light.shadow)),
            renderer=pb.ER_TINY_RENDERER, flags=pb.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self._cid)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(cfg.height, cfg.width, 4)[:, :, :3].copy()
        d = np.asarray(depth_buf, dtype=np.float64).reshape(cfg.height, cfg.width)
        near, far = cfg.near_m, cfg.far_m
        depth = far * near / (far - (far - near) * d)
        depth[d >= 1.0 - 1e-7] = np.inf
        return CameraFrame(rgb=rgb, depth_m=depth.astype(np.float32), K=self._K.copy(),
                           width=cfg.width, height=cfg.height)


# ======================================================================================
# IMU
# ======================================================================================

@dataclass(frozen=True)
class ImuConfig:
    """A 6-axis IMU with an orientation estimate (AHRS-style).

    Noise is given per sample (discrete white noise); biases follow a random walk.

    :param gyro_noise_sigma_radps: white noise of each gyro sample [rad/s], in [0, 1].
    :param accel_noise_sigma_mps2: white noise of each accelerometer sample [m/s^2], in [0, 10].
    :param gyro_bias_walk_radps_per_sqrt_s: gyro bias random walk [rad/s/sqrt(s)], in [0, 1].
    :param accel_bias_walk_mps2_per_sqrt_s: accelerometer bias random walk
        [m/s^2/sqrt(s)], in [0, 1].
    :param orientation_noise_sigma_rad: 1-sigma error of the reported orientation [rad],
        in [0, 1].
    :param gravity_mps2: magnitude of gravity [m/s^2], in [0, 20]; must match the
        simulation's.
    """

    gyro_noise_sigma_radps: float = 0.002
    accel_noise_sigma_mps2: float = 0.02
    gyro_bias_walk_radps_per_sqrt_s: float = 1e-4
    accel_bias_walk_mps2_per_sqrt_s: float = 1e-3
    orientation_noise_sigma_rad: float = 0.002
    gravity_mps2: float = 9.81

    def __post_init__(self) -> None:
        for name, hi in (("gyro_noise_sigma_radps", 1.0), ("accel_noise_sigma_mps2", 10.0),
                         ("gyro_bias_walk_radps_per_sqrt_s", 1.0),
                         ("accel_bias_walk_mps2_per_sqrt_s", 1.0),
                         ("orientation_noise_sigma_rad", 1.0), ("gravity_mps2", 20.0)):
            check_range("ImuConfig", name, getattr(self, name), 0.0, hi)


@dataclass(frozen=True)
class ImuData:
    """One IMU sample in the IMU frame, fields as in ``sensor_msgs/Imu``.

    ``orientation_xyzw``: IMU frame in the world; ``angular_velocity_radps`` [rad/s];
    ``linear_acceleration_mps2`` [m/s^2] (specific force, +g on z at rest); 3x3 covariances.
    """

    orientation_xyzw: np.ndarray
    angular_velocity_radps: np.ndarray
    linear_acceleration_mps2: np.ndarray
    orientation_covariance: np.ndarray
    angular_velocity_covariance: np.ndarray
    linear_acceleration_covariance: np.ndarray


class Imu:
    """IMU model: ground-truth kinematics in, noisy body-frame measurements out.

    Biases start at zero and random-walk with every noisy sample.
    """

    def __init__(self, config: ImuConfig | None = None) -> None:
        self._config = config if config is not None else ImuConfig()
        self._gyro_bias = np.zeros(3)
        self._accel_bias = np.zeros(3)

    @property
    def config(self) -> ImuConfig:
        return self._config

    @property
    def gyro_bias_radps(self) -> np.ndarray:
        return self._gyro_bias.copy()

    @property
    def accel_bias_mps2(self) -> np.ndarray:
        return self._accel_bias.copy()

    def reset(self) -> None:
        """Zero the biases."""
        self._gyro_bias[:] = 0.0
        self._accel_bias[:] = 0.0

    def sample(self, orientation_xyzw: Sequence[float], angular_velocity_world: Sequence[float],
               linear_acceleration_world: Sequence[float], dt_s: float,
               rng: np.random.Generator | None = None) -> ImuData:
        """Measure.

        :param orientation_xyzw: true orientation of the IMU frame in the world.
        :param angular_velocity_world: true angular velocity [rad/s], world frame.
        :param linear_acceleration_world: true acceleration [m/s^2], world frame
            (without gravity: zero at rest).
        :param dt_s: time since the previous sample [s], > 0 (drives the bias walk).
        :param rng: noise source; ``None`` = perfect sensor (biases unchanged).
        """
        cfg = self._config
        q = finite_vector("orientation_xyzw", orientation_xyzw, 4)
        norm = float(np.linalg.norm(q))
        if norm < 1e-9:
            raise ValueError("orientation_xyzw is the zero quaternion")
        q = q / norm
        w_world = finite_vector("angular_velocity_world", angular_velocity_world, 3)
        a_world = finite_vector("linear_acceleration_world", linear_acceleration_world, 3)
        if not (math.isfinite(dt_s) and dt_s > 0.0):
            raise ValueError(f"dt_s={dt_s!r}: accepted: a finite time step > 0 s")
        rot = quaternion_matrix(q)  # imu -> world
        gyro = rot.T @ w_world
        accel = rot.T @ (a_world + np.array([0.0, 0.0, cfg.gravity_mps2]))
        q_out = q
        if rng is not None:
            sq = math.sqrt(dt_s)
            self._gyro_bias += rng.normal(0.0, cfg.gyro_bias_walk_radps_per_sqrt_s * sq, 3)
            self._accel_bias += rng.normal(0.0, cfg.accel_bias_walk_mps2_per_sqrt_s * sq, 3)
            gyro = gyro + self._gyro_bias + rng.normal(0.0, cfg.gyro_noise_sigma_radps, 3)
            accel = accel + self._accel_bias + rng.normal(0.0, cfg.accel_noise_sigma_mps2, 3)
            if cfg.orientation_noise_sigma_rad > 0.0:
                err = rng.normal(0.0, cfg.orientation_noise_sigma_rad, 3)
                q_out = np.array(quaternion_multiply(q, rotvec_quaternion(err)))
                q_out /= np.linalg.norm(q_out)
        eye = np.eye(3)
        return ImuData(
            orientation_xyzw=q_out,
            angular_velocity_radps=gyro,
            linear_acceleration_mps2=accel,
            orientation_covariance=eye * cfg.orientation_noise_sigma_rad ** 2,
            angular_velocity_covariance=eye * cfg.gyro_noise_sigma_radps ** 2,
            linear_acceleration_covariance=eye * cfg.accel_noise_sigma_mps2 ** 2,
        )


# ======================================================================================
# wheel odometry
# ======================================================================================

@dataclass(frozen=True)
class OdomConfig:
    """Wheel-odometry error model.

    :param slip_sigma: 1-sigma multiplicative noise of each wheel's travel per update [-],
        in [0, 0.5] (slip, tyre deformation).  Default 0.01.
    :param left_scale_error: systematic relative error of the left wheel's travel [-], in
        [-0.2, 0.2] (e.g. a worn tyre: -0.01).  Default 0.
    :param right_scale_error: the same for the right wheel.
    :param variance_floor: smallest variance reported for observed quantities
        [m^2, rad^2, (m/s)^2, (rad/s)^2], in (0, 1].  Default 1e-6.
    :param unobserved_variance: variance reported for what planar odometry does not
        measure (z, roll, pitch and their rates), in [1, 1e12].  Default 1e6.
    """

    slip_sigma: float = 0.01
    left_scale_error: float = 0.0
    right_scale_error: float = 0.0
    variance_floor: float = 1e-6
    unobserved_variance: float = 1e6

    def __post_init__(self) -> None:
        check_range("OdomConfig", "slip_sigma", self.slip_sigma, 0.0, 0.5)
        check_range("OdomConfig", "left_scale_error", self.left_scale_error, -0.2, 0.2)
        check_range("OdomConfig", "right_scale_error", self.right_scale_error, -0.2, 0.2)
        check_range("OdomConfig", "variance_floor", self.variance_floor, 0.0, 1.0, lo_open=True)
        check_range("OdomConfig", "unobserved_variance", self.unobserved_variance, 1.0, 1e12)


@dataclass(frozen=True)
class OdomData:
    """Planar odometry in the odom frame.

    Pose (``x_m``, ``y_m``, ``yaw_rad``), body twist (``v_mps`` forward, ``w_radps`` about z),
    and 6x6 covariances ordered (x, y, z, roll, pitch, yaw) as in ``nav_msgs/Odometry``.
    """

    x_m: float
    y_m: float
    yaw_rad: float
    v_mps: float
    w_radps: float
    pose_covariance: np.ndarray = field(repr=False)
    twist_covariance: np.ndarray = field(repr=False)


class WheelOdometry:
    """Dead reckoning from the two drive wheels' joint positions.

    :param wheel_radius_m: drive wheel radius [m] (``RobotDescription.wheel_radius_m``).
    :param wheel_separation_m: distance between the wheels [m]
        (``RobotDescription.wheel_separation_m``).
    :param config: see :class:`OdomConfig`.
    """

    def __init__(self, wheel_radius_m: float, wheel_separation_m: float,
                 config: OdomConfig | None = None) -> None:
        check_range("WheelOdometry", "wheel_radius_m", wheel_radius_m, 0.0, 10.0, lo_open=True)
        check_range("WheelOdometry", "wheel_separation_m", wheel_separation_m, 0.0, 10.0,
                     lo_open=True)
        self._r = float(wheel_radius_m)
        self._b = float(wheel_separation_m)
        self._config = config if config is not None else OdomConfig()
        self.reset()

    @property
    def config(self) -> OdomConfig:
        return self._config

    def reset(self, x_m: float = 0.0, y_m: float = 0.0, yaw_rad: float = 0.0) -> None:
        """Restart at the given pose; the next update only records the wheel positions."""
        self._x, self._y, self._yaw = float(x_m), float(y_m), wrap_angle(float(yaw_rad))
        self._prev: tuple[float, float] | None = None
        self._var = np.zeros(3)  # x, y, yaw accumulated
        self._v = self._w = 0.0
        self._twist_var = np.zeros(2)

    def update(self, left_pos_rad: float, right_pos_rad: float, dt_s: float,
               rng: np.random.Generator | None = None) -> OdomData:
        """Integrate the wheels' travel since the previous call.

        :param left_pos_rad: left wheel joint position [rad] (unwrapped).
        :param right_pos_rad: right wheel joint position [rad] (unwrapped).
        :param dt_s: time since the previous call [s], > 0.
        :param rng: noise source for the slip model; ``None`` = no random slip (the
            systematic scale errors still apply).
        """
        if not (math.isfinite(left_pos_rad) and math.isfinite(right_pos_rad)):
            raise ValueError(f"wheel positions ({left_pos_rad!r}, {right_pos_rad!r}) must be "
                             "finite [rad]")
        if not (math.isfinite(dt_s) and dt_s > 0.0):
            raise ValueError(f"dt_s={dt_s!r}: accepted: a finite time step > 0 s")
        cfg = self._config
        if self._prev is None:
            self._prev = (float(left_pos_rad), float(right_pos_rad))
            return self._data()
        dl = (left_pos_rad - self._prev[0]) * self._r * (1.0 + cfg.left_scale_error)
        dr = (right_pos_rad - self._prev[1]) * self._r * (1.0 + cfg.right_scale_error)
        self._prev = (float(left_pos_rad), float(right_pos_rad))
        if rng is not None and cfg.slip_sigma > 0.0:
            dl *= 1.0 + cfg.slip_sigma * rng.standard_normal()
            dr *= 1.0 + cfg.slip_sigma * rng.standard_normal()
        ds = 0.5 * (dl + dr)
        dth = (dr - dl) / self._b
        if abs(dth) < 1e-9:
            mid = self._yaw + 0.5 * dth
            self._x += ds * math.cos(mid)
            self._y += ds * math.sin(mid)
        else:
            radius = ds / dth
            self._x += radius * (math.sin(self._yaw + dth) - math.sin(self._yaw))
            self._y -= radius * (math.cos(self._yaw + dth) - math.cos(self._yaw))
        self._yaw = wrap_angle(self._yaw + dth)
        self._v = ds / dt_s
        self._w = dth / dt_s
        # variances from the slip model, accumulated without cross terms
        var_l = (cfg.slip_sigma * dl) ** 2
        var_r = (cfg.slip_sigma * dr) ** 2
        var_s = 0.25 * (var_l + var_r)
        var_th = (var_l + var_r) / self._b ** 2
        c, s = math.cos(self._yaw), math.sin(self._yaw)
        self._var += (var_s * c * c + (ds * s) ** 2 * var_th,
                      var_s * s * s + (ds * c) ** 2 * var_th,
                      var_th)
        self._twist_var[:] = (var_s / dt_s ** 2, var_th / dt_s ** 2)
        return self._data()

    def _data(self) -> OdomData:
        cfg = self._config
        floor, big = cfg.variance_floor, cfg.unobserved_variance
        pose = np.diag([self._var[0] + floor, self._var[1] + floor, big, big, big,
                        self._var[2] + floor])
        twist = np.diag([self._twist_var[0] + floor, floor, big, big, big,
                         self._twist_var[1] + floor])
        return OdomData(self._x, self._y, self._yaw, self._v, self._w, pose, twist)
