"""The control_loop node against ros2_control's topic contracts.

ros2_control itself cannot run here (rclpy from PyPI, no controller_manager), so its
controllers are played by :class:`ros2_control_double.Ros2ControlDouble`, a TEST DOUBLE that
mimics joint_state_broadcaster + forward_command_controller (or a minimal
joint_trajectory_controller) + diff_drive_controller over the same topics.  The node, the
double and the test's probe each have their own rclpy context and executor thread, in this
process; traffic goes through DDS.

Also the pure contracts (sitebot.control.ros2_control) with numbers.
"""
from __future__ import annotations

import threading
import time
from functools import partial
from typing import Iterator

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import TwistStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sitebot.control import kernel as kmod
from sitebot.control.kernel import KernelOutput, Status
from sitebot.control.ros2_control import (ContractError, ControllerType, DiffDriveContract,
                                          ForwardCommandContract, JointStateMapper,
                                          MissingJointError, TrajectoryCommandContract,
                                          controller_topic, diff_drive_wheel_velocities)
from sitebot.errors import ParameterError
from sitebot.nodes.common import QOS_COMMAND
from sitebot.nodes.control_loop import ControlLoopNode
from sitebot_interfaces.msg import ControllerStatus

from ros2_control_double import ARM_JOINTS, WHEEL_JOINTS, Ros2ControlDouble
from rosprobe import Probe, SupervisorDouble, spin_until

HAVE_RT = kmod.RtLoop is not None and kmod.IMPLEMENTATION == "c"
START = np.array([0.1, -0.2, 0.3, 0.0, 0.5, -0.4, 0.01])
TARGET = np.array([0.4, 0.1, 0.0, 0.3, 0.3, -0.1, 0.03])
SHUFFLED = tuple(ARM_JOINTS[i] for i in (6, 2, 0, 5, 1, 4, 3))
HEARTBEAT_TIMEOUT = 0.3
STATE_TIMEOUT = 0.1


wait_for = partial(spin_until, step=0.01)     # the nodes spin in their own threads


class Stack:
    """The double, the control_loop node and a probe that plays the supervisor and the
    planners (heartbeats at 20 Hz while :attr:`beating` is set)."""

    def __init__(self, arm_type: str = "forward_command_controller",
                 interface: str = "position", controller_joints=ARM_JOINTS,
                 rt: bool = False) -> None:
        arm_controller = ("arm_trajectory_controller"
                          if arm_type == "joint_trajectory_controller" else "arm_controller")
        self.double = Ros2ControlDouble(
            arm_joints=controller_joints, arm_type=arm_type, arm_interface=interface,
            arm_controller=arm_controller,
            initial_positions=[START[ARM_JOINTS.index(j)] for j in controller_joints])
        self.context = Context()
        rclpy.init(context=self.context)
        params = {"rate_hz": 100.0, "use_rt_thread": rt, "arm_controller_type": arm_type,
                  "arm_controller": arm_controller, "arm_interface": interface,
                  "arm_controller_joints": list(controller_joints),
                  "heartbeat_timeout_s": HEARTBEAT_TIMEOUT, "state_timeout_s": STATE_TIMEOUT,
                  "cmd_timeout_s": 0.5, "diagnostics_period_s": 0.5}
        self.node = ControlLoopNode(context=self.context, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.probe = Probe("backend_probe")
        self.probe.subscribe(ControllerStatus, "control/state")
        # the supervisor the loop obeys (commands from any other node are ignored)
        self.sup = SupervisorDouble(self.probe).start(0.05)
        self.traj, self.cmd, self.beating = self.sup.traj_pub, self.sup.cmd_pub, self.sup.beating
        wait_for(lambda: self.status() == Status.OK, 10.0, "control/state OK")

    def status(self) -> int | None:
        msgs = self.probe.get("control/state")
        return msgs[-1][1].status if msgs else None

    def send_trajectory(self, target, duration: float, names=ARM_JOINTS) -> None:
        p = JointTrajectoryPoint(positions=[float(target[ARM_JOINTS.index(j)]) for j in names])
        p.time_from_start = Duration(sec=int(duration),
                                     nanosec=int((duration - int(duration)) * 1e9))
        self.traj.publish(JointTrajectory(joint_names=list(names), points=[p]))

    def send_cmd_vel(self, v: float, w: float) -> None:
        m = TwistStamped()
        m.header.stamp = self.probe.node.get_clock().now().to_msg()
        m.twist.linear.x, m.twist.angular.z = v, w
        self.cmd.publish(m)

    def arm_error(self, target=TARGET) -> float:
        q = self.double.positions()
        want = np.array([target[ARM_JOINTS.index(j)] for j in self.double.arm_joints])
        return float(np.max(np.abs(q - want)))

    def close(self) -> None:
        self.sup.close()
        self.probe.close()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5.0)
        self.double.close()


CONFIGS = {
    "fcc-position-timer": dict(),
    "fcc-velocity-shuffled-rt": dict(interface="velocity", controller_joints=SHUFFLED,
                                     rt=HAVE_RT),
    "jtc": dict(arm_type="joint_trajectory_controller"),
}


@pytest.fixture
def stack(request) -> Iterator[Stack]:
    s = Stack(**CONFIGS[getattr(request, "param", "fcc-position-timer")])
    yield s
    s.close()


# ------------------------------------------------------------------------------ the loop
@pytest.mark.parametrize("stack", list(CONFIGS), indirect=True)
def test_joints_follow_and_commands_fit_the_controller(stack: Stack) -> None:
    stack.send_trajectory(TARGET, 1.0)
    wait_for(lambda: stack.arm_error() < 0.005, 8.0, "the double's joints at the target")
    d = stack.double
    # every command had the controller's length; the double never had to drop one
    assert d.dropped == []
    if d.arm_type is ControllerType.FORWARD_COMMAND:
        assert len(d.commands) > 50
        assert {len(data) for _, data in d.commands} == {len(d.arm_joints)}
        if d.interface == "position":       # the commands end at the target, in order
            want = [TARGET[ARM_JOINTS.index(j)] for j in d.arm_joints]
            wait_for(lambda: np.allclose(d.commands[-1][1], want, atol=1e-9, rtol=0), 3.0,
                     "position commands at the target")
    else:
        assert len(d.trajectories) > 50
        assert all(list(m.joint_names) == list(d.arm_joints) for m in d.trajectories)
    # the base: 0.2 m/s and 0.4 rad/s -> wheels (0.2 -+ 0.4 * 0.265) / 0.1
    for _ in range(15):
        stack.send_cmd_vel(0.2, 0.4)
        time.sleep(0.05)
    want = diff_drive_wheel_velocities(0.2, 0.4, 0.53, 0.10)
    assert want == pytest.approx((0.94, 3.06))
    np.testing.assert_allclose(d.wheel_velocities(), want, atol=0.02)
    assert stack.status() in (Status.OK, Status.COMMAND_TIMEOUT)


@pytest.mark.parametrize("stack", ["fcc-velocity-shuffled-rt"], indirect=True)
def test_lost_heartbeat_stops_the_commands(stack: Stack) -> None:
    stack.send_trajectory(TARGET, 4.0)           # slow: still moving when the beat stops
    for _ in range(12):
        stack.send_cmd_vel(0.3, 0.0)
        time.sleep(0.05)
    d = stack.double
    wait_for(lambda: (d.last_twist() or (0, 0, 0))[1] > 0.25, 3.0, "base moving")
    assert np.max(np.abs(d.commands[-1][1])) > 0.01          # arm moving
    stack.beating.clear()
    t_stop = time.monotonic()
    keep = threading.Event()

    def keep_driving() -> None:                               # the planner goes on
        while not keep.is_set():
            stack.send_cmd_vel(0.3, 0.0)
            time.sleep(0.05)
    driver = threading.Thread(target=keep_driving, daemon=True)
    driver.start()
    try:
        # zero within the heartbeat timeout + braking (0.3 m/s at 1 m/s^2) + margin.  The
        # arm's velocity commands are the held setpoint's position feedback: ~0, not 0.
        budget = HEARTBEAT_TIMEOUT + 0.3 + 0.6
        wait_for(lambda: d.last_twist()[1] == 0.0 and d.last_twist()[0] > t_stop
                 and np.max(np.abs(d.commands[-1][1])) < 1e-3, budget + 1.0, "zero commands")
        took = time.monotonic() - t_stop
        assert HEARTBEAT_TIMEOUT * 0.8 < took < budget, took
        wait_for(lambda: stack.status() == Status.HEARTBEAT_TIMEOUT, 2.0, "HEARTBEAT_TIMEOUT")
        # and it stays stopped: commands keep coming, all ~zero, the joints still
        n = len(d.commands)
        q = d.positions()
        time.sleep(0.3)
        assert len(d.commands) > n + 10
        assert max(np.max(np.abs(data)) for _, data in d.commands[n:]) < 1e-3
        assert np.max(np.abs(d.positions() - q)) < 1e-3
        assert all(v == 0.0 and w == 0.0 for t, v, w in list(d.twists) if t > t_stop + budget)
    finally:
        keep.set()
        driver.join(timeout=1.0)
    assert d.dropped == []


def test_stale_joint_states_hold(stack: Stack) -> None:
    d = stack.double
    stack.send_trajectory(TARGET, 3.0)
    for _ in range(6):
        stack.send_cmd_vel(0.2, 0.0)
        time.sleep(0.05)
    d.publish_joint_states = False               # the broadcaster goes silent
    t_stale = time.monotonic()
    wait_for(lambda: stack.status() == Status.INVALID_INPUT, 2.0, "INVALID_INPUT")
    assert time.monotonic() - t_stale < STATE_TIMEOUT + 0.5
    n = len(d.commands)
    time.sleep(0.3)
    held = [data for _, data in d.commands[n:]]
    assert len(held) > 10 and all(h == held[0] for h in held)          # position held
    assert all(v == 0.0 for t, v, _ in d.twists if t > t_stale + STATE_TIMEOUT + 0.1)
    # the state comes back: the trajectory goes on to its end
    d.publish_joint_states = True
    wait_for(lambda: stack.arm_error() < 0.005, 8.0, "target after the state returned")
    assert d.dropped == []


def test_no_arm_command_before_the_first_joint_state() -> None:
    double = Ros2ControlDouble(initial_positions=START)
    double.publish_joint_states = False
    ctx = Context()
    rclpy.init(context=ctx)
    node = ControlLoopNode(context=ctx, parameter_overrides=[
        Parameter("rate_hz", value=100.0), Parameter("use_rt_thread", value=False)])
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    try:
        wait_for(lambda: len(double.twists) > 20, 5.0, "base commands")
        assert double.commands == []                 # no guess at a position
        assert all(v == 0.0 and w == 0.0 for _, v, w in double.twists)
        double.publish_joint_states = True
        wait_for(lambda: len(double.commands) > 5, 5.0, "arm commands")
        np.testing.assert_allclose(double.commands[-1][1], START, atol=1e-3)   # hold here
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        th.join(timeout=5.0)
        double.close()


def test_the_double_deactivates_the_controller_on_a_wrong_length_command() -> None:
    """As the controller manager does when forward_command_controller's update() fails."""
    double = Ros2ControlDouble(initial_positions=START)
    probe = Probe("wrong_length")
    pub = probe.publisher(Float64MultiArray, "arm_controller/commands", QOS_COMMAND)
    try:
        wait_for(lambda: pub.get_subscription_count() > 0, 5.0, "the double's subscription")
        pub.publish(Float64MultiArray(data=[0.0] * 6))
        wait_for(lambda: bool(double.dropped), 5.0, "the deactivation")
        assert double.dropped == ["commands of length 6, expected 7: controller deactivated"]
        assert not double.arm_active
        np.testing.assert_allclose(double.command, START)          # the hardware holds
        pub.publish(Float64MultiArray(data=[0.3] * 7))             # ignored while inactive
        spin_until(lambda: False, 0.3, must=False)
        np.testing.assert_allclose(double.command, START)
    finally:
        probe.close()
        double.close()


def test_bad_configuration_is_one_clear_error() -> None:
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        with pytest.raises(ParameterError) as e:
            ControlLoopNode(context=ctx, parameter_overrides=[
                Parameter("arm_controller_joints", value=["arm_joint_1", "wheel_x"])])
        assert "arm_controller_joints" in str(e.value) and "wheel_x" in str(e.value)
        with pytest.raises(ParameterError) as e:
            ControlLoopNode(context=ctx, parameter_overrides=[
                Parameter("arm_controller_type", value="joint_trajectory_controller"),
                Parameter("arm_interface", value="velocity")])
        assert "arm_interface" in str(e.value)
        with pytest.raises(ParameterError) as e:
            ControlLoopNode(context=ctx, parameter_overrides=[Parameter("rate_hz", value=5000.0)])
        assert "rate_hz" in str(e.value)
        with pytest.raises(ParameterError) as e:
            ControlLoopNode(context=ctx, parameter_overrides=[Parameter("kp", value=[1.0, 2.0])])
        assert "'kp': has 2 values" in str(e.value)
    finally:
        rclpy.shutdown(context=ctx)


# ------------------------------------------------------------------------------ contracts
def _out(values: dict) -> KernelOutput:
    out = KernelOutput(7)
    for k, v in values.items():
        getattr(out, k)[:] = v
    return out


def test_forward_command_contract_order_and_length() -> None:
    c = ForwardCommandContract(ARM_JOINTS, SHUFFLED, "velocity")
    out = _out({"velocity": np.arange(7.0), "position": -np.arange(7.0)})
    np.testing.assert_array_equal(c.build(out), [ARM_JOINTS.index(j) for j in SHUFFLED])
    assert c.length == 7 and c.accepts([0.0] * 7) and not c.accepts([0.0] * 6)
    np.testing.assert_array_equal(ForwardCommandContract(ARM_JOINTS, ARM_JOINTS[:3],
                                                         "position").build(out), [0, -1, -2])
    with pytest.raises(ContractError, match="arm_joint_9"):
        ForwardCommandContract(ARM_JOINTS, ("arm_joint_1", "arm_joint_9"), "position")
    with pytest.raises(ContractError, match="duplicate"):
        ForwardCommandContract(ARM_JOINTS, ("arm_joint_1", "arm_joint_1"), "position")
    with pytest.raises(ContractError, match="interface_name 'torque'"):
        ForwardCommandContract(ARM_JOINTS, ARM_JOINTS, "torque")


def test_trajectory_contract_extrapolates_within_limits() -> None:
    c = TrajectoryCommandContract(ARM_JOINTS, SHUFFLED, 0.1, [-1.0] * 7, [1.0] * 7)
    out = _out({"position": [0.0, 0.5, 0.95, 0, 0, 0, 0],
                "setpoint_velocity": [1.0, 1.0, 1.0, 0, 0, 0, 0]})
    pt = c.build(out)
    assert pt.joint_names == SHUFFLED and pt.time_from_start_s == 0.1
    got = dict(zip(pt.joint_names, pt.positions))
    assert got["arm_joint_1"] == pytest.approx(0.1) and got["arm_joint_2"] == pytest.approx(0.6)
    assert got["arm_joint_3"] == 1.0                        # clamped to the limit
    assert dict(zip(pt.joint_names, c.build(out, moving=False).positions))["arm_joint_1"] == 0.0
    assert c.accepts(SHUFFLED[:2], 2) and not c.accepts(["x"], 1)


def test_diff_drive_contract_never_forwards_non_finite() -> None:
    assert DiffDriveContract().build(_out({"base_velocity": [0.3, -0.2]})) == (0.3, -0.2)
    assert DiffDriveContract().build(_out({"base_velocity": [np.nan, 0.1]})) == (0.0, 0.0)


def test_joint_state_mapping_by_name_missing_and_stale() -> None:
    m = JointStateMapper(ARM_JOINTS, WHEEL_JOINTS)
    names = ["right_wheel_joint", "gripper_right_finger_joint"] + list(reversed(ARM_JOINTS)) \
        + ["left_wheel_joint"]
    pos = [10.0, 99.0] + [float(i) for i in reversed(range(7))] + [20.0]
    vel = [1.0, 99.0] + [0.1 * i for i in reversed(range(7))] + [2.0]
    s = m.update(names, pos, vel, stamp_s=5.0, received_s=5.01)
    np.testing.assert_array_equal(s.q, np.arange(7.0))
    np.testing.assert_allclose(s.qd, 0.1 * np.arange(7.0))
    np.testing.assert_array_equal(s.wheel_q, [20.0, 10.0])
    np.testing.assert_array_equal(s.wheel_qd, [2.0, 1.0])
    # age from the earlier of stamp and arrival
    assert s.age_s(5.05) == pytest.approx(0.05)
    assert not s.is_stale(5.05, 0.1) and s.is_stale(5.2, 0.1)
    with pytest.raises(MissingJointError, match="no joint 'arm_joint_4'"):
        m.update([n for n in names if n != "arm_joint_4"], pos[:-1], vel[:-1], 6.0, 6.0)
    with pytest.raises(ContractError, match="10 names but 9 velocities"):
        m.update(names, pos, vel[:-1], 6.0, 6.0)
    assert m.sample.stamp_s == 5.0                           # a bad message changes nothing
    fresh = JointStateMapper(ARM_JOINTS, WHEEL_JOINTS).sample
    assert fresh.is_stale(0.0, 1e9)                          # never received: stale


def test_controller_topics() -> None:
    assert controller_topic("arm_controller", "forward_command_controller") == \
        "arm_controller/commands"
    assert controller_topic("arm_trajectory_controller", ControllerType.JOINT_TRAJECTORY) == \
        "arm_trajectory_controller/joint_trajectory"
    assert controller_topic("/robot1/diff_drive_controller/", "diff_drive_controller") == \
        "/robot1/diff_drive_controller/cmd_vel"
    assert controller_topic("x", "joint_state_broadcaster") == "joint_states"
    with pytest.raises(ContractError):
        controller_topic(" ", "diff_drive_controller")


# ------------------------------------------------------------------------------ config files
def test_shipped_controller_config_matches_the_urdf_and_control_yaml() -> None:
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from sitebot.config.params import load_params_file
    from sitebot.description.urdf import load_robot_description

    root = Path(__file__).resolve().parents[2]
    desc = load_robot_description()
    tag = ET.fromstring(desc.xml).find("ros2_control")
    command = {j.get("name"): {c.get("name") for c in j.findall("command_interface")}
               for j in tag.findall("joint")}
    state = {j.get("name"): {c.get("name") for c in j.findall("state_interface")}
             for j in tag.findall("joint")}
    ctrl = load_params_file(root / "config" / "ros2_controllers.yaml")
    arm, jtc, dd = (ctrl[k] for k in ("arm_controller", "arm_trajectory_controller",
                                      "diff_drive_controller"))
    for j in arm["joints"]:
        assert arm["interface_name"] in command[j], j
    for j in jtc["joints"]:
        assert set(jtc["command_interfaces"]) <= command[j]
        assert set(jtc["state_interfaces"]) <= state[j]
    for j in dd["left_wheel_names"] + dd["right_wheel_names"]:
        assert "velocity" in command[j] and "position" in state[j]
    assert dd["wheel_radius"] == pytest.approx(desc.wheel_radius_m)
    assert dd["wheel_separation"] == pytest.approx(desc.wheel_separation_m)
    assert "use_stamped_vel" not in dd                        # gone in Jazzy
    loop = load_params_file(root / "config" / "control.yaml")["control_loop"]
    assert loop["arm_controller_joints"] == arm["joints"] == jtc["joints"]
    assert loop["arm_interface"] == arm["interface_name"]
    assert ctrl["controller_manager"][f"{loop['arm_controller']}.type"] == \
        ControllerType(loop["arm_controller_type"]).plugin
    assert loop["rate_hz"] == ctrl["joint_state_broadcaster"]["update_rate"]
