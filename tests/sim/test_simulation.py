"""The site simulation (sitebot.sim.simulation.SiteSimulation) in PyBullet DIRECT: sample
rates, determinism, isolation of simulations, driving, timeout, reset, spawning, camera."""
from __future__ import annotations

import collections
import math
from typing import Iterator

import numpy as np
import pybullet as pb
import pytest

from sitebot.control.kernel import Reject, Status
from sitebot.errors import SimulationError
from sitebot.sim.simulation import (GroundTruth, RobotSpawn, Sample, SampleKind, SensorRates,
                                    SimConfig, SiteSimulation)
from sitebot.sim.world_loader import load_world

# no safety supervisor in these tests: the controller makes its own heartbeat
NO_CAMERA = SimConfig(camera_enabled=False, supervisor_required=False)
DT = 1.0 / 240.0


@pytest.fixture
def sims() -> Iterator:
    """Factory of simulations that are closed after the test."""
    made: list[SiteSimulation] = []

    def make(world: str = "substation", robots=(RobotSpawn(""),),
             config: SimConfig = NO_CAMERA) -> SiteSimulation:
        sim = SiteSimulation(world, robots, config)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


def _drive(sim: SiteSimulation, v: float, w: float, duration_s: float,
           robot: str = "") -> list[Sample]:
    """Command (v, w) afresh every step for ``duration_s`` of simulation time."""
    ctl = sim.robot(robot).controller
    out: list[Sample] = []
    for _ in range(int(round(duration_s / sim.config.time_step_s))):
        assert ctl.set_base_command(v, w, sim.time_s) == Reject.ACCEPTED
        out.extend(sim.step())
    return out


def _speed(gt: GroundTruth) -> float:
    return math.hypot(*gt.linear_velocity_mps[:2])


def _last(samples: list[Sample], kind: SampleKind) -> Sample:
    return [s for s in samples if s.kind is kind][-1]


# ---------------------------------------------------------------------------- rates
@pytest.mark.parametrize("rates", [
    SensorRates(),
    SensorRates(joint_states_hz=30.0, odom_hz=40.0, imu_hz=200.0, scan_hz=7.0,
                camera_hz=5.0, ground_truth_hz=0.0),
], ids=["default", "custom"])
def test_sample_rates(sims, rates: SensorRates) -> None:
    sim = sims(config=SimConfig(camera_enabled=False, rates=rates))
    sim.run_for(0.5)                                     # past the start-up
    samples = sim.run_for(2.0)
    counts = collections.Counter(s.kind for s in samples)
    expected = {SampleKind.JOINT_STATE: rates.joint_states_hz, SampleKind.ODOM: rates.odom_hz,
                SampleKind.IMU: rates.imu_hz, SampleKind.SCAN: rates.scan_hz,
                SampleKind.GROUND_TRUTH: rates.ground_truth_hz,
                SampleKind.CAMERA: 0.0}                  # the camera is disabled
    for kind, hz in expected.items():
        assert counts[kind] == pytest.approx(2.0 * hz, rel=0.02, abs=0), kind
        stamps = np.array([s.stamp_s for s in samples if s.kind is kind])
        if len(stamps) > 1:                              # evenly spaced, to one physics step
            gaps = np.diff(stamps)
            assert np.all(np.abs(gaps - 1.0 / hz) <= DT + 1e-9), kind
    assert all(s.robot == "" for s in samples)
    assert all(0.5 < s.stamp_s <= 2.5 + 1e-9 for s in samples)


def test_zero_rate_stream_never_fires(sims) -> None:
    rates = SensorRates(scan_hz=0.0, odom_hz=0.0, camera_hz=0.0)
    sim = sims(config=SimConfig(camera_enabled=False, rates=rates))
    counts = collections.Counter(s.kind for s in sim.run_for(0.5))
    assert counts[SampleKind.SCAN] == counts[SampleKind.ODOM] == counts[SampleKind.CAMERA] == 0
    assert counts[SampleKind.IMU] == 51                  # t = dt, then every 10 ms to 0.5 s
    sim.reset()
    counts = collections.Counter(s.kind for s in sim.run_for(0.1))
    assert counts[SampleKind.SCAN] == counts[SampleKind.CAMERA] == 0


# ---------------------------------------------------------------------------- determinism
def _run_scripted(sim: SiteSimulation):
    samples = _drive(sim, 0.4, 0.3, 1.0)
    return sim.ground_truth(), _last(samples, SampleKind.SCAN).data.ranges


def test_same_seed_is_bit_identical(sims) -> None:
    gt_a, scan_a = _run_scripted(sims(config=SimConfig(camera_enabled=False, supervisor_required=False, seed=7)))
    gt_b, scan_b = _run_scripted(sims(config=SimConfig(camera_enabled=False, supervisor_required=False, seed=7)))
    assert gt_a == gt_b
    assert scan_a.tobytes() == scan_b.tobytes()
    assert math.hypot(gt_a.x_m + 12.0, gt_a.y_m + 12.0) > 0.2   # it did drive
    assert np.isfinite(scan_a).sum() > 100


def test_different_seed_changes_the_noise_only(sims) -> None:
    gt_a, scan_a = _run_scripted(sims(config=SimConfig(camera_enabled=False, supervisor_required=False, seed=1)))
    gt_b, scan_b = _run_scripted(sims(config=SimConfig(camera_enabled=False, supervisor_required=False, seed=2)))
    both = np.isfinite(scan_a) & np.isfinite(scan_b)
    assert both.sum() > 100
    diff = (scan_a[both] - scan_b[both]).astype(np.float64)
    assert np.mean(diff != 0.0) > 0.95
    # difference of two N(0, 0.01 m) draws: std 0.014 m
    assert 0.007 < np.std(diff) < 0.03
    # the physics does not depend on the seed
    assert (gt_a.x_m, gt_a.y_m, gt_a.yaw_rad) == pytest.approx((gt_b.x_m, gt_b.y_m, gt_b.yaw_rad),
                                                               abs=1e-9)


def test_two_simulations_are_independent(sims) -> None:
    a = sims("substation")
    b = sims("datacentre")
    assert a.client_id != b.client_id
    b0 = b.ground_truth()
    ctl = a.robot().controller
    for _ in range(240):                                 # 1 s, interleaved
        ctl.set_base_command(0.5, 0.0, a.time_s)
        a.step()
        b.step()
    ga, gb = a.ground_truth(), b.ground_truth()
    spawn_b = load_world("datacentre").spawn_poses["robot1"]
    assert math.hypot(ga.x_m + 12.0, ga.y_m + 12.0) > 0.35
    assert math.hypot(gb.x_m - b0.x_m, gb.y_m - b0.y_m) < 0.001
    assert math.hypot(gb.x_m - spawn_b.x, gb.y_m - spawn_b.y) < 0.001
    assert _speed(gb) < 0.001
    assert a.time_s == b.time_s == pytest.approx(1.0)


# ---------------------------------------------------------------------------- driving
def test_drive_one_metre_then_stop_on_timeout(sims) -> None:
    sim = sims()
    spawn = sim.ground_truth()
    samples = _drive(sim, 0.5, 0.0, 2.0)
    gt = sim.ground_truth()
    travelled = math.hypot(gt.x_m - spawn.x_m, gt.y_m - spawn.y_m)
    # the control loop ramps up at base_lin_acc_max: 0.5 m/s reached after 0.5 / a seconds
    acc = sim.robot().controller.config.base_lin_acc_max
    assert travelled == pytest.approx(0.5 * 2.0 - 0.5 * 0.5 ** 2 / acc, rel=0.10)
    assert abs(gt.yaw_rad - spawn.yaw_rad) < 0.02
    assert _speed(gt) == pytest.approx(0.5, rel=0.05)
    # odometry (odom frame = spawn pose) agrees with ground truth
    odom = _last(samples, SampleKind.ODOM)
    assert odom.stamp_s == pytest.approx(2.0)
    c, s = math.cos(spawn.yaw_rad), math.sin(spawn.yaw_rad)
    dx, dy = gt.x_m - spawn.x_m, gt.y_m - spawn.y_m
    local = (c * dx + s * dy, -s * dx + c * dy)
    assert math.hypot(odom.data.x_m - local[0], odom.data.y_m - local[1]) < 0.05
    assert odom.data.v_mps == pytest.approx(0.5, abs=0.05)
    # no new command: it keeps going until the timeout (0.5 s), then brakes
    t_last = sim.time_s
    sim.run_for(0.4)
    assert _speed(sim.ground_truth()) > 0.4
    sim.run_for(t_last + sim.config.cmd_timeout_s + 1.0 - sim.time_s)
    stopped = sim.ground_truth()
    assert _speed(stopped) < 0.01
    sim.run_for(0.5)
    still = sim.ground_truth()
    assert _speed(still) < 0.01
    assert math.hypot(still.x_m - stopped.x_m, still.y_m - stopped.y_m) < 0.002


def test_turning_in_place(sims) -> None:
    sim = sims()
    spawn = sim.ground_truth()
    _drive(sim, 0.0, 0.5, 1.0)
    gt = sim.ground_truth()
    assert gt.yaw_rad - spawn.yaw_rad == pytest.approx(0.5, rel=0.15)
    assert math.hypot(gt.x_m - spawn.x_m, gt.y_m - spawn.y_m) < 0.02


def test_reset_returns_to_spawn(sims) -> None:
    sim = sims()
    spawn = load_world("substation").spawn_poses["robot1"]
    _drive(sim, 0.5, 0.4, 1.5)
    moved = sim.ground_truth()
    assert math.hypot(moved.x_m - spawn.x, moved.y_m - spawn.y) > 0.3
    sim.reset()
    assert sim.time_s == 0.0 and sim.step_count == 0
    gt = sim.ground_truth()
    assert math.hypot(gt.x_m - spawn.x, gt.y_m - spawn.y) < 0.01
    assert abs(gt.yaw_rad - spawn.yaw) < 0.01
    assert _speed(gt) < 1e-9
    # streams and odometry restart with the clock; the old command is gone
    samples = sim.run_for(0.5)
    assert samples[0].stamp_s == pytest.approx(DT)
    odom = _last(samples, SampleKind.ODOM).data
    assert math.hypot(odom.x_m, odom.y_m) < 0.005
    gt = sim.ground_truth()
    assert math.hypot(gt.x_m - spawn.x, gt.y_m - spawn.y) < 0.01


# ---------------------------------------------------------------------------- spawning
def test_two_robots_spawn_at_the_world_spawn_poses(sims) -> None:
    world = load_world("construction")
    sim = sims("construction", (RobotSpawn("robot1"), RobotSpawn("robot2")))
    assert set(sim.robots) == {"robot1", "robot2"}
    for name in ("robot1", "robot2"):
        p = world.spawn_poses[name]
        gt = sim.ground_truth(name)
        assert math.hypot(gt.x_m - p.x, gt.y_m - p.y) < 0.01, name
        assert abs(math.remainder(gt.yaw_rad - p.yaw, 2 * math.pi)) < 0.01, name
    counts = collections.Counter((s.robot, s.kind) for s in sim.run_for(0.5))
    for name in ("robot1", "robot2"):
        assert counts[(name, SampleKind.SCAN)] == 6 and counts[(name, SampleKind.ODOM)] == 26
    # commanding one leaves the other alone
    r2 = sim.ground_truth("robot2")
    _drive(sim, 0.5, 0.0, 1.0, robot="robot1")
    assert sim.ground_truth("robot1").x_m - world.spawn_poses["robot1"].x > 0.35
    r2_after = sim.ground_truth("robot2")
    assert math.hypot(r2_after.x_m - r2.x_m, r2_after.y_m - r2.y_m) < 0.001
    with pytest.raises(SimulationError, match=r"no robot 'robot3'.*'robot1', 'robot2'"):
        sim.robot("robot3")


def test_explicit_spawn_pose(sims) -> None:
    sim = sims(robots=(RobotSpawn("scout", (-10.0, -12.0, 1.0)),))
    gt = sim.ground_truth("scout")
    assert (gt.x_m, gt.y_m, gt.yaw_rad) == pytest.approx((-10.0, -12.0, 1.0), abs=0.01)


def test_unknown_spawn_name_lists_the_available_ones() -> None:
    probe = pb.connect(pb.DIRECT)
    pb.disconnect(probe)
    with pytest.raises(SimulationError) as e:
        SiteSimulation("substation", (RobotSpawn("robot7"),), NO_CAMERA)
    msg = str(e.value)
    assert "'robot7'" in msg and "'substation'" in msg and "robot1, robot2" in msg
    # and no PyBullet client was left connected: the same slot is free again
    again = pb.connect(pb.DIRECT)
    pb.disconnect(again)
    assert again == probe


def test_bad_robot_lists_are_refused() -> None:
    with pytest.raises(SimulationError, match="at least one robot"):
        SiteSimulation("substation", (), NO_CAMERA)
    with pytest.raises(SimulationError, match="unique"):
        SiteSimulation("substation", (RobotSpawn("robot1"), RobotSpawn("robot1")), NO_CAMERA)


# ---------------------------------------------------------------------------- camera
def test_camera_sample(sims) -> None:
    sim = sims(config=SimConfig())
    cams = [s for s in sim.run_for(0.25) if s.kind is SampleKind.CAMERA]
    assert [round(s.stamp_s, 6) for s in cams] == [round(DT, 6), 0.2]
    frame = cams[-1].data
    assert frame.rgb.shape == (240, 320, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth_m.shape == (240, 320) and frame.depth_m.dtype == np.float32
    assert (frame.width, frame.height) == (320, 240)
    cfg = sim.config.camera
    # the lower half of the image sees the ground: finite, within the clip planes
    lower = frame.depth_m[120:]
    assert np.all(np.isfinite(lower))
    assert lower.min() >= cfg.near_m - 1e-3 and lower.max() <= cfg.far_m + 1e-3
    # nearer ground at the bottom of the image than at the middle
    assert np.median(frame.depth_m[-1]) < np.median(frame.depth_m[125])
    finite = np.isfinite(frame.depth_m)
    assert finite.mean() > 0.5
    assert not np.any(np.isnan(frame.depth_m))
    assert frame.rgb.reshape(-1, 3).std(axis=0).max() > 5.0       # not a blank image
    assert frame.K[0, 0] == pytest.approx(cfg.focal_length_px)


def test_without_supervisor_heartbeat_the_robot_does_not_move(sims) -> None:
    """The default: a supervisor is required; no heartbeat means no motion whatever cmd_vel says."""
    sim = sims(config=SimConfig(camera_enabled=False))
    start = sim.ground_truth()
    ctl = sim.robot().controller
    for _ in range(480):                                  # 2 s of fresh commands
        ctl.set_base_command(0.5, 0.0, sim.time_s)
        sim.step()
    end = sim.ground_truth()
    assert math.hypot(end.x_m - start.x_m, end.y_m - start.y_m) < 0.005
    assert ctl.status is Status.HEARTBEAT_TIMEOUT


def test_people_are_seen_but_never_shove_the_robot(sims) -> None:
    """People are kinematic: they must not push the robot (unbounded force), yet the lidar
    must see them. A person placed 1.5 m ahead: the first scan sees them 1.5 m - laser
    offset - body radius ahead; the robot driving on is not deflected sideways."""
    sim = sims()
    sim.scene.update = lambda *a, **k: None            # keep the person where we put them
    actor = sim.scene.actor_body_ids["worker1"]
    start = sim.ground_truth()
    pb.resetBasePositionAndOrientation(actor, [start.x_m + 1.5, start.y_m, 0.8], [0, 0, 0, 1],
                                       physicsClientId=sim.client_id)
    first_scan = None
    for _ in range(int(5.0 / DT)):
        sim.robot().controller.set_base_command(0.5, 0.0, sim.time_s)
        for s in sim.step():
            if s.kind is SampleKind.SCAN and first_scan is None:
                first_scan = s.data
    a = first_scan.angle_min + np.arange(len(first_scan.ranges)) * first_scan.angle_increment
    ahead = np.abs(np.arctan2(np.sin(a), np.cos(a))) < 0.1
    assert 0.8 < float(np.min(first_scan.ranges[ahead])) < 1.3
    end = sim.ground_truth()
    assert abs(end.y_m - start.y_m) < 0.01
    assert end.x_m - start.x_m == pytest.approx(0.5 * 5.0 - 0.5 * 0.5 ** 2 / 1.0, rel=0.1)
