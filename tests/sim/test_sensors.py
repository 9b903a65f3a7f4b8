"""Sensor models: lidar, RGB-D camera, IMU and wheel odometry."""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import pybullet as pb
import pytest

from sitebot.control.hardware import CommandMode, HardwareCommand
from sitebot.description.urdf import RobotDescription, load_robot_description
from sitebot.sim.robot import SimHardware, SimRobot
from sitebot.sim.sensors import (Camera, CameraConfig, Imu, ImuConfig, Lidar, LidarConfig,
                                 OdomConfig, WheelOdometry, camera_intrinsics)
from sitebot.sim.world import Lighting

STEP_S = 1.0 / 240.0


@pytest.fixture(scope="module")
def desc() -> RobotDescription:
    return load_robot_description()


@pytest.fixture
def world() -> Iterator[int]:
    cid = pb.connect(pb.DIRECT)
    pb.setGravity(0, 0, -9.81, physicsClientId=cid)
    plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=cid)
    pb.createMultiBody(0, plane, physicsClientId=cid)
    yield cid
    pb.disconnect(cid)


@pytest.fixture
def robot(world: int, desc: RobotDescription) -> SimRobot:
    r = SimRobot(world, desc, (0.0, 0.0, 0.0))
    _step(world, 0.5)  # settle on the casters
    return r


def _step(cid: int, seconds: float) -> None:
    for _ in range(int(round(seconds / STEP_S))):
        pb.stepSimulation(physicsClientId=cid)


def _box(cid: int, center: tuple[float, float, float], half: tuple[float, float, float],
         rgba: tuple[float, float, float, float] = (0.7, 0.7, 0.7, 1.0)) -> int:
    col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=cid)
    vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=cid)
    return pb.createMultiBody(0, col, vis, basePosition=center, physicsClientId=cid)


def _lidar(robot: SimRobot, config: LidarConfig | None = None) -> Lidar:
    return Lidar(robot.client_id, robot.body_id, robot.link_index("laser_link"),
                 config or LidarConfig(), robot_collision_group=robot.collision_group)


# ---------------------------------------------------------------- lidar
def test_lidar_sees_a_box_at_its_distance(world: int, robot: SimRobot) -> None:
    _box(world, (3.05, 0.0, 0.5), (0.05, 1.0, 0.5))  # face at x = 3.0
    cfg = LidarConfig(range_noise_sigma_m=0.01)
    lidar = _lidar(robot, cfg)
    scan = lidar.scan(np.random.default_rng(7))
    laser_x = robot.link_pose("laser_link").position_m[0]
    expected = 3.0 - laser_x
    angles = scan.angles()
    assert len(scan.ranges) == 720 and scan.ranges.dtype == np.float32
    assert scan.angle_min == pytest.approx(-math.pi)
    assert scan.angle_max == pytest.approx(math.pi - math.radians(0.5))
    assert scan.angle_increment == pytest.approx(math.radians(0.5))
    assert (scan.range_min, scan.range_max) == (0.1, 20.0)
    ahead = np.abs(angles) < math.radians(5.0)
    truth = expected / np.cos(angles[ahead])
    err = scan.ranges[ahead] - truth
    assert np.abs(err).max() < 3 * cfg.range_noise_sigma_m + 0.005
    assert abs(err.mean()) < 3 * cfg.range_noise_sigma_m / math.sqrt(ahead.sum()) + 0.002
    assert 0.3 * cfg.range_noise_sigma_m < err.std() < 2.0 * cfg.range_noise_sigma_m
    # without rng: exact
    exact = lidar.scan(None)
    assert exact.ranges[np.argmin(np.abs(angles))] == pytest.approx(expected, abs=0.003)
    # nothing behind the robot: out of range is +inf (REP-117), the robot does not see itself
    behind = np.abs(angles) > math.radians(60.0)
    assert np.isposinf(exact.ranges[behind]).all()
    assert not np.isnan(exact.ranges).any()


def test_lidar_too_close_is_minus_inf_and_other_robots_are_seen(world: int, robot: SimRobot,
                                                                desc: RobotDescription) -> None:
    laser = robot.link_pose("laser_link").position_m
    _box(world, (laser[0] + 0.08, 0.0, laser[2]), (0.01, 0.01, 0.02))  # 7 cm ahead
    other = SimRobot(world, desc, (0.0, 2.0, 0.0))  # takes the next free collision group
    assert (robot.collision_group, other.collision_group) == (1 << 6, 1 << 7)
    scan = _lidar(robot).scan(None)
    angles = scan.angles()
    assert np.isneginf(scan.ranges[np.argmin(np.abs(angles))])
    assert not np.isnan(scan.ranges).any()

    def bearing_and_distance(frm: SimRobot, to: SimRobot) -> tuple[float, float]:
        a = frm.link_pose("laser_link").position_m
        b = to.link_pose("arm_base_link").position_m  # a 7 cm radius drum in the scan plane
        return math.atan2(b[1] - a[1], b[0] - a[0]), math.hypot(b[0] - a[0], b[1] - a[1])

    bearing, dist = bearing_and_distance(robot, other)
    beam = np.argmin(np.abs(angles - bearing))
    assert scan.ranges[beam] == pytest.approx(dist - 0.07, abs=0.01)
    # and the second robot's lidar (its group read off the body) sees the first, not itself
    back = Lidar(world, other.body_id, other.link_index("laser_link")).scan(None)
    bearing, dist = bearing_and_distance(other, robot)
    beam = np.argmin(np.abs(back.angles() - bearing))
    assert back.ranges[beam] == pytest.approx(dist - 0.07, abs=0.01)


def test_lidar_270_config_and_single_batch(world: int, robot: SimRobot,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = LidarConfig(fov_rad=math.radians(270.0), angle_increment_rad=math.radians(1.0))
    assert cfg.num_beams == 271
    calls = []
    real = pb.rayTestBatch

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(pb, "rayTestBatch", counting)
    scan = _lidar(robot, cfg).scan(np.random.default_rng(0))
    assert calls == [271]
    assert scan.angle_min == pytest.approx(-math.radians(135.0))
    assert scan.angle_max == pytest.approx(math.radians(135.0))
    assert scan.scan_time == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs,field", [
    ({"fov_rad": 7.0}, "fov_rad"), ({"range_min_m": 0.0}, "range_min_m"),
    ({"range_max_m": 0.05}, "range_max_m"), ({"range_noise_sigma_m": -0.1}, "range_noise"),
    ({"angle_increment_rad": math.nan}, "angle_increment_rad"),
])
def test_lidar_config_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"LidarConfig.{field}.*accepted range"):
        LidarConfig(**kwargs)


# ---------------------------------------------------------------- camera
def _camera(robot: SimRobot, config: CameraConfig | None = None) -> Camera:
    return Camera(robot.client_id, robot.body_id,
                  robot.link_index("camera_color_optical_frame"), config)


def _expected_wall_depth(robot: SimRobot, K: np.ndarray, width: int, height: int,
                         wall_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth along the optical axis of the plane x = wall_x, per pixel, from the true pose."""
    pose = robot.link_pose("camera_color_optical_frame")
    rot = np.array(pb.getMatrixFromQuaternion(pose.orientation_xyzw)).reshape(3, 3)
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(u.shape)], -1)
    world = rays @ rot.T  # optical z = 1 per pixel
    z = (wall_x - pose.position_m[0]) / world[..., 0]
    height_at_wall = pose.position_m[2] + z * world[..., 2]
    return z, height_at_wall


def test_camera_depth_of_a_wall(world: int, robot: SimRobot) -> None:
    _box(world, (3.05, 0.0, 2.0), (0.05, 5.0, 2.0))  # wall face at x = 3.0, 4 m tall
    cam = _camera(robot)
    frame = cam.render(Lighting())
    assert frame.rgb.shape == (240, 320, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth_m.shape == (240, 320) and frame.depth_m.dtype == np.float32
    assert (frame.width, frame.height) == (320, 240)
    z, h = _expected_wall_depth(robot, frame.K, 320, 240, 3.0)
    on_wall = (h > 0.05) & (h < 3.9)
    assert on_wall.sum() > 0.5 * on_wall.size
    rel = np.abs(frame.depth_m[on_wall] - z[on_wall]) / z[on_wall]
    assert rel.max() < 0.02
    assert np.median(rel) < 0.005
    centre = frame.depth_m[120, 160]
    cam_x = robot.link_pose("camera_color_optical_frame").position_m[0]
    pitch = math.radians(15.0)
    assert centre == pytest.approx((3.0 - cam_x) / math.cos(pitch), rel=0.02)


def test_camera_on_camera_link_gives_the_same_view(world: int, robot: SimRobot) -> None:
    _box(world, (3.05, 0.5, 1.0), (0.05, 1.0, 1.0))
    cfg = CameraConfig(width=80, height=60)
    optical = _camera(robot, cfg).render()
    body = Camera(world, robot.body_id, robot.link_index("camera_link"), cfg).render()
    np.testing.assert_allclose(body.depth_m, optical.depth_m, rtol=1e-5)
    assert np.abs(body.rgb.astype(int) - optical.rgb.astype(int)).max() <= 1


def test_camera_intrinsics_match_the_field_of_view(world: int, robot: SimRobot) -> None:
    cfg = CameraConfig()
    K = camera_intrinsics(cfg)
    fx = 160.0 / math.tan(math.radians(35.0))
    np.testing.assert_allclose(K, [[fx, 0, 159.5], [0, fx, 119.5], [0, 0, 1]])
    assert math.degrees(cfg.vertical_fov_rad) == pytest.approx(55.4, abs=0.1)
    # a red marker at a known point lands on the pixel K predicts
    pose = robot.link_pose("camera_color_optical_frame")
    rot = np.array(pb.getMatrixFromQuaternion(pose.orientation_xyzw)).reshape(3, 3)
    p_opt = np.array([0.6, -0.3, 4.0])  # right and up of the axis, 4 m ahead
    p_world = np.asarray(pose.position_m) + rot @ p_opt
    _box(world, tuple(p_world), (0.05, 0.05, 0.05), rgba=(1.0, 0.0, 0.0, 1.0))
    frame = _camera(robot, cfg).render(Lighting(ambient=1.0, diffuse=0.0, specular=0.0))
    red = (frame.rgb[..., 0] > 150) & (frame.rgb[..., 1] < 80) & (frame.rgb[..., 2] < 80)
    assert red.sum() > 10
    vs, us = np.nonzero(red)
    u_exp = K[0, 0] * p_opt[0] / p_opt[2] + K[0, 2]
    v_exp = K[1, 1] * p_opt[1] / p_opt[2] + K[1, 2]
    assert us.mean() == pytest.approx(u_exp, abs=1.0)
    assert vs.mean() == pytest.approx(v_exp, abs=1.0)


def test_camera_sky_is_inf_and_lighting_matters(world: int, robot: SimRobot) -> None:
    cam = _camera(robot, CameraConfig(width=64, height=48))
    bright = cam.render(Lighting(ambient=0.9, diffuse=0.3))
    dark = cam.render(Lighting(ambient=0.1, diffuse=0.1, color=(0.5, 0.5, 0.5)))
    assert np.isposinf(bright.depth_m[0]).all()  # top row looks above the horizon
    floor = np.isfinite(bright.depth_m)
    assert floor[-1].all()
    assert bright.rgb[floor].mean() > dark.rgb[floor].mean() + 40


def test_lighting_and_camera_config_validation() -> None:
    with pytest.raises(ValueError, match="Lighting.ambient"):
        Lighting(ambient=2.0)
    with pytest.raises(ValueError, match="Lighting.direction"):
        Lighting(direction=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="CameraConfig.width"):
        CameraConfig(width=0)
    with pytest.raises(ValueError, match="CameraConfig.far_m"):
        CameraConfig(near_m=1.0, far_m=0.5)
    with pytest.raises(ValueError, match="horizontal_fov_rad"):
        CameraConfig(horizontal_fov_rad=math.pi)


# ---------------------------------------------------------------- IMU
def test_imu_at_rest_measures_gravity_up() -> None:
    imu = Imu(ImuConfig())
    ident = (0.0, 0.0, 0.0, 1.0)
    exact = imu.sample(ident, (0, 0, 0), (0, 0, 0), 0.01, None)
    np.testing.assert_allclose(exact.linear_acceleration_mps2, [0, 0, 9.81], atol=1e-12)
    np.testing.assert_allclose(exact.angular_velocity_radps, 0.0, atol=1e-12)
    rng = np.random.default_rng(3)
    acc = np.array([imu.sample(ident, (0, 0, 0), (0, 0, 0), 0.01, rng).linear_acceleration_mps2
                    for _ in range(400)])
    assert acc[:, 2].mean() == pytest.approx(9.81, abs=0.01)
    assert np.abs(acc[:, :2].mean(0)).max() < 0.01
    assert acc[:, 2].std() == pytest.approx(0.02, rel=0.2)
    data = imu.sample(ident, (0, 0, 0), (0, 0, 0), 0.01, rng)
    np.testing.assert_allclose(np.diag(data.linear_acceleration_covariance), 0.02 ** 2)
    assert np.linalg.norm(data.orientation_xyzw) == pytest.approx(1.0)


def test_imu_frame_transform() -> None:
    imu = Imu(ImuConfig())
    # IMU rolled +90 deg about x: its y axis points world up, its z axis world -y
    q = (math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4))
    d = imu.sample(q, (0.0, 0.0, 0.3), (1.0, 0.0, 0.0), 0.01, None)
    np.testing.assert_allclose(d.linear_acceleration_mps2, [1.0, 9.81, 0.0], atol=1e-9)
    np.testing.assert_allclose(d.angular_velocity_radps, [0.0, 0.3, 0.0], atol=1e-9)
    np.testing.assert_allclose(d.orientation_xyzw, q)
    with pytest.raises(ValueError, match="dt_s"):
        imu.sample(q, (0, 0, 0), (0, 0, 0), 0.0, None)
    with pytest.raises(ValueError, match="angular_velocity_world"):
        imu.sample(q, (0, math.nan, 0), (0, 0, 0), 0.01, None)


def test_imu_bias_random_walk_grows_like_sqrt_time() -> None:
    cfg = ImuConfig(gyro_bias_walk_radps_per_sqrt_s=0.01)
    finals = []
    for seed in range(200):
        imu = Imu(cfg)
        rng = np.random.default_rng(seed)
        for _ in range(100):  # 1 s
            imu.sample((0, 0, 0, 1), (0, 0, 0), (0, 0, 0), 0.01, rng)
        finals.append(imu.gyro_bias_radps[0])
    assert np.std(finals) == pytest.approx(0.01, rel=0.2)


def test_imu_on_the_standing_robot(world: int, robot: SimRobot) -> None:
    pose = robot.link_pose("imu_link")
    vel = robot.link_velocity("imu_link")
    d = Imu().sample(pose.orientation_xyzw, vel.angular_radps, (0.0, 0.0, 0.0), 1 / 240, None)
    assert d.linear_acceleration_mps2[2] == pytest.approx(9.81, abs=0.01)
    assert np.abs(d.linear_acceleration_mps2[:2]).max() < 0.1  # tilt under 0.6 deg


# ---------------------------------------------------------------- odometry
def test_odometry_of_known_wheel_motions() -> None:
    r, b = 0.1, 0.5
    odom = WheelOdometry(r, b, OdomConfig(slip_sigma=0.0))
    odom.update(0.0, 0.0, 0.01)
    for k in range(1, 101):  # both wheels 10 rad in 1 s: 1 m straight
        d = odom.update(0.1 * k, 0.1 * k, 0.01)
    assert (d.x_m, d.y_m, d.yaw_rad) == pytest.approx((1.0, 0.0, 0.0), abs=1e-12)
    assert d.v_mps == pytest.approx(1.0) and d.w_radps == pytest.approx(0.0)
    # turn in place: wheels +-a rad give yaw = 2 r a / b
    odom.reset()
    odom.update(0.0, 0.0, 0.01)
    for k in range(1, 51):
        d = odom.update(-0.05 * k, 0.05 * k, 0.01)
    assert d.yaw_rad == pytest.approx(2 * r * 2.5 / b)
    assert math.hypot(d.x_m, d.y_m) < 1e-12
    assert d.w_radps == pytest.approx(2 * r * 5.0 / b)
    # a quarter circle of radius R = 1 m: left/right travel (R -+ b/2) * pi/2
    odom.reset(1.0, 2.0, 0.0)
    odom.update(0.0, 0.0, 0.01)
    n = 200
    for k in range(1, n + 1):
        s = k / n * math.pi / 2
        d = odom.update((1.0 - b / 2) * s / r, (1.0 + b / 2) * s / r, 0.01)
    assert (d.x_m, d.y_m, d.yaw_rad) == pytest.approx((2.0, 3.0, math.pi / 2), abs=1e-9)


def test_odometry_noise_and_covariance() -> None:
    cfg = OdomConfig(slip_sigma=0.05, right_scale_error=0.02)
    odom = WheelOdometry(0.1, 0.5, cfg)
    first = odom.update(0.0, 0.0, 0.01)
    assert first.pose_covariance.shape == first.twist_covariance.shape == (6, 6)
    assert first.pose_covariance[0, 0] == pytest.approx(cfg.variance_floor)
    assert first.pose_covariance[2, 2] == pytest.approx(cfg.unobserved_variance)
    # systematic right-wheel error alone (rng=None) curves the path left
    for k in range(1, 101):
        d = odom.update(0.1 * k, 0.1 * k, 0.01)
    assert d.yaw_rad == pytest.approx(0.1 * 10 * 0.02 / 0.5, rel=1e-6)
    assert d.pose_covariance[5, 5] > 10 * cfg.variance_floor
    cov = np.diag(d.pose_covariance)
    assert (cov > 0).all() and np.allclose(d.pose_covariance, np.diag(cov))
    # random slip: spread of the final x over seeds matches the reported variance
    xs, var_x = [], []
    for seed in range(100):
        o = WheelOdometry(0.1, 0.5, OdomConfig(slip_sigma=0.05))
        o.update(0.0, 0.0, 0.01)
        rng = np.random.default_rng(seed)
        for k in range(1, 101):
            d = o.update(0.1 * k, 0.1 * k, 0.01, rng)
        xs.append(d.x_m)
        var_x.append(d.pose_covariance[0, 0])
    assert np.std(xs) == pytest.approx(math.sqrt(np.mean(var_x)), rel=0.3)
    with pytest.raises(ValueError, match="dt_s"):
        odom.update(0.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="OdomConfig.slip_sigma"):
        OdomConfig(slip_sigma=1.0)


def test_odometry_follows_the_simulated_robot(world: int, desc: RobotDescription) -> None:
    robot = SimRobot(world, desc, (0.0, 0.0, 0.0))
    hw = SimHardware(robot, desc.wheel_joints)
    odom = WheelOdometry(desc.wheel_radius_m, desc.wheel_separation_m, OdomConfig())
    dt = 4 * STEP_S  # a 60 Hz loop
    odom.update(*hw.read(0.0).positions, dt)
    path_m = 0.0
    for k in range(1, 241):  # 4 s on an arc to the left; the speed ramps up over 1 s as a
        ramp = min(1.0, k / 60)  # controller with acceleration limits would (a step slips)
        hw.write(HardwareCommand(CommandMode.VELOCITY, [4.0 * ramp, 6.0 * ramp]))
        _step(world, dt)
        d = odom.update(*hw.read(dt * k).positions, dt)
        path_m += abs(d.v_mps) * dt
    truth = robot.base_pose()
    assert path_m > 1.5
    # the 5 cm wide wheels touch the ground at both rims and scrub in arcs: ~2 % slower
    assert math.hypot(d.x_m - truth.x_m, d.y_m - truth.y_m) < 0.02 * path_m
    assert d.yaw_rad == pytest.approx(truth.yaw_rad, abs=0.01)
    w_expected = (6.0 - 4.0) * desc.wheel_radius_m / desc.wheel_separation_m
    assert d.w_radps == pytest.approx(w_expected, rel=0.05)
