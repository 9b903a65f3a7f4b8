"""ControlIO (sitebot.nodes.control_io): validation of what arrives from ROS before it
reaches the kernel, the supervisor path, and the status it publishes.  Real rclpy node, the
callbacks called directly with messages (no DDS round trip), a fake clock, both kernels."""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.context import Context
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sitebot.control import kernel as kmod
from sitebot.control.kernel import (Reject, Status, kernel_config_from_description,
                                    kernel_joint_names)
from sitebot.control.types import Heartbeat, Latch
from sitebot.description.urdf import load_robot_description
from sitebot.nodes.control_io import ControlIO, PeriodStats
from sitebot.nodes.convert import convert_trajectory
from sitebot.types import StopCategory
from sitebot_interfaces.msg import SafetyState

DESC = load_robot_description()
NAMES = list(kernel_joint_names(DESC))          # arm_joint_1..6, gripper_left_finger_joint
CONFIG = kernel_config_from_description(DESC, interface=kmod.Interface.POSITION)
START = np.array([0.1, -0.2, 0.3, 0.0, 0.5, -0.4, 0.01])
DT = 0.01
KERNELS = [kmod.PyControlKernel] + ([kmod.CControlKernel] if kmod.CControlKernel else [])


class FakeLogger:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, text: str, **_: object) -> None:
        self.warnings.append(text)

    def info(self, text: str, **_: object) -> None:
        pass


class Rig:
    """A ControlIO on a real node, a fake clock, and perfect tracking (q = setpoint)."""

    def __init__(self, kernel_cls: type) -> None:
        self.t = 100.0
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("control_io_test", context=self.context)
        self.log = FakeLogger()
        self.node.get_logger = lambda: self.log           # capture the warnings
        self.kernel = kernel_cls(CONFIG)
        # the ROS graph as the loop sees it: the supervisor and one other node
        self.graph = {t: [("/safety_supervisor", SUP_GID), ("/intruder", OTHER_GID)]
                      for t in ("safety/state", "cmd_vel", "arm/joint_trajectory")}
        self.io = ControlIO(self.node, self.kernel, NAMES, DESC.wheel_joints,
                            clock=lambda: self.t,
                            ignored_joint_names=["gripper_right_finger_joint"],
                            publishers=lambda topic: self.graph.get(topic, []))
        self.seq, self.releases = 0, 1
        self.q = START.copy()
        self.wq = np.zeros(2)
        self.heartbeat()
        self.run(0.05)

    def heartbeat(self, scale: float = 1.0, category: int = SafetyState.STOP_NONE,
                  stamp: float | None = None, gid: bytes = b"", seq: int | None = None):
        """A SafetyState from the supervisor (or from ``gid``), as the subscription gives it."""
        self.seq += 1
        m = SafetyState(speed_scale=scale, stop_category=category, session=SESSION,
                        sequence=self.seq if seq is None else seq, releases=self.releases)
        if stamp is not None:
            m.header.stamp = stamp_msg(stamp)
        return self.io.on_safety_state(m, info(gid or SUP_GID))

    def run(self, seconds: float, beat: bool = True) -> Status:
        status = Status.OK
        for i in range(int(round(seconds / DT))):
            self.t += DT
            if beat and i % 10 == 0:
                self.heartbeat()
            status = self.io.step(self.t, DT, self.q, np.zeros(7), self.wq, np.zeros(2))
            self.q = np.array(self.io.out.position)        # the joints follow exactly
        return status

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(params=KERNELS, ids=lambda k: k.__module__.rsplit(".", 1)[-1])
def rig(request) -> Iterator[Rig]:
    r = Rig(request.param)
    yield r
    r.close()


SUP_GID, OTHER_GID, SESSION = b"\x01" * 16, b"\x02" * 16, 0xC0FFEE


def info(gid: bytes) -> dict:
    """rclpy's MessageInfo, as far as ControlIO reads it."""
    return {"publisher_gid": {"implementation_identifier": "test", "data": gid}}


def stamp_msg(t: float) -> Time:
    return Time(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))


def dur(t: float) -> Duration:
    return Duration(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))


def traj(names, rows, times, velocities=None, stamp: float | None = None) -> JointTrajectory:
    m = JointTrajectory(joint_names=list(names))
    for k, (row, t) in enumerate(zip(rows, times)):
        p = JointTrajectoryPoint(positions=[float(x) for x in row], time_from_start=dur(t))
        if velocities is not None:
            p.velocities = [float(x) for x in velocities[k]]
        m.points.append(p)
    if stamp is not None:
        m.header.stamp = stamp_msg(stamp)
    return m


TARGET = np.array([0.4, 0.3, -0.2, 0.6, 0.1, 0.2, 0.03])


# ---------------------------------------------------------------------------- rejections
@pytest.mark.parametrize("names, rows, times, code, words", [
    (NAMES[:6] + ["arm_joint_9"], [TARGET], [2.0], None, ["'arm_joint_9'", "unknown"]),
    (NAMES, [TARGET[:6]], [2.0], Reject.WRONG_SIZE, ["point 0: 6 positions for 7 joint names"]),
    (NAMES, [TARGET, TARGET], [2.0, 1.5], Reject.NON_MONOTONIC_TIME,
     ["point 1: time_from_start 1.5 s is not after point 0's 2 s"]),
    (NAMES, [TARGET, TARGET], [2.0, 2.0], Reject.NON_MONOTONIC_TIME, ["not after"]),
    (NAMES, [np.where(np.arange(7) == 2, np.nan, TARGET)], [2.0], Reject.NON_FINITE,
     ["arm_joint_3", "nan"]),
    (NAMES, [np.where(np.arange(7) == 1, 2.5, TARGET)], [2.0], Reject.OUT_OF_LIMITS,
     ["position 2.5 of arm_joint_2", "[-2, 2]"]),
    (NAMES, [np.where(np.arange(7) == 6, 0.05, TARGET)], [2.0], Reject.OUT_OF_LIMITS,
     ["gripper_left_finger_joint", "[0, 0.04]"]),
    (NAMES + ["arm_joint_1"], [np.append(TARGET, 0.0)], [2.0], Reject.WRONG_SIZE,
     ["duplicate", "arm_joint_1"]),
    (NAMES, [], [], Reject.EMPTY, ["no points"]),
    # 0.1 -> 3.0 rad in 0.5 s is 5.8 rad/s on average; arm_joint_1's limit is 2 rad/s
    (NAMES, [np.where(np.arange(7) == 0, 3.0, START)], [0.5], Reject.OUT_OF_LIMITS,
     ["arm_joint_1", "from its setpoint 0.1 to 3", "velocity limit 2"]),
    # a first point at time 0 away from the setpoint would be a jump
    (NAMES, [TARGET, TARGET], [0.0, 1.0], Reject.NON_MONOTONIC_TIME,
     ["time_from_start 0", "current setpoint"]),
])
def test_invalid_trajectory_is_rejected_and_the_robot_holds(rig, names, rows, times, code, words):
    assert rig.io.on_trajectory(traj(names, rows, times)) == code
    r = rig.io.last_rejection
    assert r is not None and r.code == code and not r.by_kernel
    for w in words:
        assert w in r.reason, r.reason
    assert len(rig.log.warnings) == 1 and words[0] in rig.log.warnings[0]
    assert "arm/joint_trajectory" in rig.log.warnings[0]
    assert rig.io.counts["trajectories_rejected"] == 1
    rig.run(1.0)
    np.testing.assert_allclose(rig.io.out.position, START, atol=1e-12)   # held


def test_mismatched_velocities_are_rejected(rig):
    m = traj(NAMES, [START, TARGET], [1.0, 2.0], velocities=[np.zeros(7), np.zeros(6)])
    assert rig.io.on_trajectory(m) == Reject.WRONG_SIZE
    assert "point 1: 6 velocities for 7 joint names" in rig.io.last_rejection.reason
    m = traj(NAMES, [START], [1.0], velocities=[np.where(np.arange(7) == 4, np.inf, 0.0)])
    assert rig.io.on_trajectory(m) == Reject.NON_FINITE
    assert "velocity of arm_joint_5 is inf" in rig.io.last_rejection.reason


def test_kernel_rejection_names_the_kernel_code(rig):
    # 300 points pass validation; the kernel holds at most max_points (256)
    times = np.linspace(0.1, 30.0, 300)
    rows = [START] * 300
    assert rig.io.on_trajectory(traj(NAMES, rows, times)) == Reject.TOO_MANY_POINTS
    r = rig.io.last_rejection
    assert r.by_kernel and r.code is Reject.TOO_MANY_POINTS
    assert "kernel rejected [TOO_MANY_POINTS]" in rig.log.warnings[-1]
    assert "at most 256 points" in rig.log.warnings[-1]
    # between points 0 and 1 arm_joint_2 would move 1.4 rad in 0.5 s: 2.8 > 1.5 rad/s
    far = START.copy()
    far[1] = 1.2
    assert rig.io.on_trajectory(traj(NAMES, [START, far], [1.0, 1.5])) == Reject.OUT_OF_LIMITS
    assert rig.io.last_rejection.by_kernel
    assert "arm_joint_2" in rig.io.last_rejection.reason
    assert "velocity limit 1.5" in rig.io.last_rejection.reason
    rig.run(0.5)
    np.testing.assert_allclose(rig.io.out.position, START, atol=1e-12)


def test_rejected_trajectory_leaves_the_active_one_running(rig):
    assert rig.io.on_trajectory(traj(NAMES, [TARGET], [1.0])) == Reject.ACCEPTED
    rig.run(0.3)
    bad = traj(NAMES, [np.full(7, np.nan)], [1.0])
    assert rig.io.on_trajectory(bad) == Reject.NON_FINITE
    rig.run(1.2)
    np.testing.assert_allclose(rig.io.out.position, TARGET, atol=1e-9)


def test_warnings_are_throttled_per_kind_of_problem(rig):
    unknown = traj(["arm_joint_9"], [[0.0]], [1.0])
    late = traj(NAMES, [TARGET, TARGET], [2.0, 1.0])
    for _ in range(5):
        rig.io.on_trajectory(unknown)
    rig.io.on_trajectory(late)
    assert len(rig.log.warnings) == 2            # one per kind within the throttle window
    assert "arm_joint_9" in rig.log.warnings[0] and "not after" in rig.log.warnings[1]
    assert rig.io.counts["trajectories_rejected"] == 6


# ---------------------------------------------------------------------------- acceptance
def test_subset_of_joints_holds_the_others_at_their_setpoint(rig):
    m = traj(["arm_joint_2"], [[0.5]], [1.0])               # 0.7 rad in 1 s < 1.5 rad/s
    assert rig.io.on_trajectory(m) == Reject.ACCEPTED
    rig.run(1.5)
    want = START.copy()
    want[1] = 0.5
    np.testing.assert_allclose(rig.io.out.position, want, atol=1e-9)


def test_subset_before_the_first_tick_is_rejected():
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("io_fresh", context=ctx)
        io = ControlIO(node, kmod.ControlKernel(CONFIG), NAMES, DESC.wheel_joints,
                       clock=lambda: 1.0)
        assert io.on_trajectory(traj(["arm_joint_2"], [[0.5]], [1.0])) is None
        assert "no setpoint yet" in io.last_rejection.reason
        # a full trajectory needs no setpoint
        assert io.on_trajectory(traj(NAMES, [TARGET], [5.0])) == Reject.ACCEPTED
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_joint_order_is_the_kernels_whatever_the_message_order(rig):
    order = [6, 3, 0, 5, 1, 4, 2]
    names = [NAMES[i] for i in order] + ["gripper_right_finger_joint"]   # mimic: dropped
    row = [TARGET[i] for i in order] + [0.03]
    assert rig.io.on_trajectory(traj(names, [row], [1.0])) == Reject.ACCEPTED
    rig.run(1.5)
    np.testing.assert_allclose(rig.io.out.position, TARGET, atol=1e-9)


def test_convert_trajectory_fills_and_reorders():
    m = traj(["arm_joint_3", "arm_joint_1"], [[0.2, -0.1], [0.4, -0.2]], [1.0, 2.0],
             velocities=[[0.1, 0.0], [0.0, 0.0]])
    times, pos, vel, acc = convert_trajectory(m, NAMES, CONFIG.pos_min, CONFIG.pos_max, START)
    np.testing.assert_array_equal(times, [1.0, 2.0])
    want0 = START.copy()
    want0[[2, 0]] = [0.2, -0.1]
    np.testing.assert_array_equal(pos[0], want0)
    assert pos[1, 2] == 0.4 and pos[1, 0] == -0.2 and pos[1, 1] == START[1]
    assert vel[0, 2] == 0.1 and np.count_nonzero(vel) == 1 and acc is None


def test_header_stamp_zero_starts_now_and_a_future_stamp_waits(rig):
    assert rig.io.on_trajectory(traj(NAMES, [TARGET], [1.0])) == Reject.ACCEPTED
    rig.run(0.1)
    assert abs(rig.io.out.position[0] - START[0]) > 1e-4          # moving at once
    rig.run(1.2)
    assert rig.io.on_trajectory(traj(NAMES, [START], [1.0], stamp=rig.t + 0.5)) == Reject.ACCEPTED
    rig.run(0.45)
    np.testing.assert_allclose(rig.io.out.position, TARGET, atol=1e-9)   # still waiting
    rig.run(1.2)
    np.testing.assert_allclose(rig.io.out.position, START, atol=1e-9)


# ---------------------------------------------------------------------------- supervisor
def test_speed_scale_and_stop_category_are_sanitised(rig):
    rig.heartbeat(scale=2.0)
    assert rig.io.speed_scale == 1.0
    rig.heartbeat(scale=math.nan)
    assert rig.io.speed_scale == 0.0 and any("not finite" in w for w in rig.log.warnings)
    rig.heartbeat(category=7)
    assert rig.io.stop_category is StopCategory.CAT1
    assert any("unknown stop_category 7" in w for w in rig.log.warnings)


def test_stop_then_release(rig):
    assert rig.io.on_trajectory(traj(NAMES, [TARGET], [3.0])) == Reject.ACCEPTED
    rig.run(0.5)
    status = None
    for _ in range(10):                      # keep the heartbeat alive, stop requested
        rig.heartbeat(category=SafetyState.STOP_CATEGORY_1)
        status = rig.run(0.1, beat=False)
    assert status is Status.STOPPED
    held = np.array(rig.io.out.position)
    rig.heartbeat()                          # motion allowed, but no release yet
    assert rig.run(0.3) is Status.STOPPED
    rig.releases += 1                        # the supervisor releases
    assert rig.heartbeat() is Heartbeat.RELEASED
    status = rig.run(3.0)
    assert status is Status.OK
    assert not np.allclose(held, TARGET) and np.allclose(rig.io.out.position, TARGET, atol=1e-9)


def test_commands_and_heartbeats_from_another_node_are_not_obeyed(rig):
    m = TwistStamped()
    m.twist.linear.x = 0.5
    rig.io._cmd_vel_in(m, info(OTHER_GID))
    rig.io._trajectory_in(traj(NAMES, [TARGET], [1.0]), info(OTHER_GID))
    rig.io._cmd_vel_in(m, info(b"\x03" * 16))              # not in the graph
    rig.io._cmd_vel_in(m, {"publisher_gid": None})         # no gid from the middleware
    rig.run(1.0)
    assert not rig.io.out.base_velocity.any()
    np.testing.assert_allclose(rig.io.out.position, START, atol=1e-12)
    assert rig.io.counts["foreign_messages"] == 2 and rig.io.counts["unverified_messages"] == 2
    assert rig.io.counts["cmd_vel_accepted"] == 0 and rig.io.counts["trajectories_accepted"] == 0
    # a forged "no stop" heartbeat latches a stop; the supervisor's own beats do not release it
    assert rig.heartbeat(gid=OTHER_GID, seq=10**9) is Heartbeat.FOREIGN
    assert rig.io.counts["heartbeat_faults"] == 1
    rig.io._cmd_vel_in(m, info(SUP_GID))
    assert rig.run(0.6) is not Status.OK and not rig.io.out.base_velocity.any()
    assert rig.io.publish_state().latch == Latch.FOREIGN
    assert "stop latched (foreign)" in rig.io.publish_state().message
    rig.releases += 1                                       # quiet for 0.6 s: released
    assert rig.heartbeat() is Heartbeat.RELEASED
    rig.io._cmd_vel_in(m, info(SUP_GID))
    rig.run(0.3)
    assert rig.io.out.base_velocity[0] > 0.2


def test_heartbeat_time_is_the_older_of_stamp_and_arrival(rig):
    # a (re-delivered, latched) state stamped 2 s ago is not a fresh heartbeat
    for _ in range(5):
        rig.heartbeat(stamp=rig.t - 2.0)
        status = rig.run(0.1, beat=False)
    assert status is Status.HEARTBEAT_TIMEOUT
    rig.heartbeat(stamp=rig.t + 50.0)        # a clock ahead of ours: its arrival counts
    assert rig.run(0.01, beat=False) is not Status.HEARTBEAT_TIMEOUT


def test_non_finite_cmd_vel_is_rejected_and_the_base_brakes(rig):
    m = TwistStamped()
    m.twist.linear.x = 0.5
    rig.io.on_cmd_vel(m)
    rig.run(0.4)                                     # ramping up at 1 m/s^2
    v = rig.io.out.base_velocity[0]
    assert v == pytest.approx(0.4, abs=0.015)
    m.twist.angular.z = math.inf
    rig.io.on_cmd_vel(m)
    assert rig.io.last_rejection.code is Reject.NON_FINITE
    assert "cmd_vel" in rig.log.warnings[-1] and "base brakes" in rig.log.warnings[-1]
    rig.run(0.1)
    assert rig.io.out.base_velocity[0] < v - 0.05    # braking, not holding 0.4 m/s


# ---------------------------------------------------------------------------- status
def test_publish_state_and_diagnostics(rig):
    assert rig.io.on_trajectory(traj(["nope"], [[0.0]], [1.0])) is None
    msg = rig.io.publish_state()
    assert msg.joint_names == NAMES and len(msg.position_error) == 7
    assert msg.status == Status.OK and msg.speed_scale == 1.0
    assert "last rejected" in msg.message and "nope" in msg.message
    stats = PeriodStats(100.0)
    for k in range(11):
        stats.tick(k * 0.01 + (0.02 if k == 10 else 0.0), k * 0.01 + 0.0002)
    snap = stats.snapshot()
    assert snap["overruns"] == 1 and snap["ticks"] == 11
    assert snap["period_max_s"] == pytest.approx(0.03)
    assert snap["exec_max_s"] == pytest.approx(0.0002)
    d = rig.io.diagnostic_status(snap)
    assert d.level == DiagnosticStatus.WARN and "overrun" in d.message
    keys = {kv.key: kv.value for kv in d.values}
    assert keys["status"] == "OK" and keys["overruns"] == "1"
    assert keys["period_max_ms"] == "30.000" and keys["rate_hz"] == "100"
    rig.run(1.0, beat=False)                                  # heartbeat lost
    d = rig.io.diagnostic_status()
    assert d.level == DiagnosticStatus.ERROR and "heartbeat" in d.message
