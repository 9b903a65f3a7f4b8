"""control_loop: the control kernel driving real hardware through ros2_control's topics.

Backend ``ros2_control`` (the only one so far): the loop talks to the standard controllers
from outside, as the community does (contracts: :mod:`sitebot.control.ros2_control`):

* reads ``joint_states`` (from joint_state_broadcaster; any joint order, mapped by name;
  topic set by ``joint_states_topic``);
* writes the arm to ``<arm_controller>/commands`` (forward_command_controller,
  std_msgs/Float64MultiArray in the controller's ``joints`` order, one value per joint,
  always: a message of the wrong length cannot be built) or
  ``<arm_controller>/joint_trajectory`` (joint_trajectory_controller: a one-point
  trajectory per tick that reaches the kernel's setpoint ``trajectory_horizon_s`` ahead);
* writes the base to ``<base_controller>/cmd_vel`` (diff_drive_controller,
  geometry_msgs/TwistStamped: Jazzy takes stamped commands only), the kernel's limited,
  scaled and ramped (v, w);
* ROS side shared with the simulator (:class:`~sitebot.nodes.control_io.ControlIO`):
  ``cmd_vel``, ``arm/joint_trajectory``, ``safety/state`` in; ``control/state`` out; and
  ``/diagnostics``.

It does **not** republish ``joint_states``: on hardware joint_state_broadcaster already
publishes that topic, and a second publisher of the same joints would interleave two
sources for robot_state_publisher and every other consumer.

Safety in the loop (each tick): ``joint_states`` older than ``state_timeout_s``, never
received, or holding a non-finite value -> the kernel's INVALID_INPUT path (arm holds the
last safe setpoint at zero velocity, base command zero); supervisor heartbeat older than
``heartbeat_timeout_s`` -> category-1 stop; base command older than ``cmd_timeout_s`` ->
base ramps to zero.  No arm command is sent before the first valid joint state (the kernel
takes its setpoint from it; a position command before that would be a guess).

Arm interface.  ``position`` (default): the controller receives the kernel's position
setpoint.  If this node dies, forward_command_controller keeps the last position, so the
arm holds.  ``velocity``: the kernel's velocity command (setpoint velocity + kp * error).
forward_command_controller has **no command timeout**, so a dead loop would leave the last
velocity applied: use it only with a hardware-side watchdog.

Rate.  ``rate_hz`` 250 by default, in [10, 1000]: a topic backend costs two DDS messages
per tick and its feedback comes from joint_state_broadcaster, which publishes at its own
rate (``config/ros2_controllers.yaml``: 250 Hz); ticking faster than the feedback only
repeats commands, and a Python tick (the fallback driver) takes 0.1-0.5 ms.

Loop driver.  ``use_rt_thread`` true and the C extension built: the C ``RtLoop`` steps the
kernel at ``rate_hz`` on CLOCK_MONOTONIC without the GIL; an rclpy timer at the same rate
writes the latest state into it and publishes its latest output.  Otherwise an rclpy timer
steps the kernel in Python; a log line at start-up says which, and why.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sitebot.control import kernel as kmod
from sitebot.control.kernel import (Interface, KernelOutput, Status, kernel_config_from_description,
                              kernel_joint_names)
from sitebot.control.ros2_control import (ARM_CONTROLLER_TYPES, ContractError, ControllerType,
                                    DiffDriveContract, ForwardCommandContract,
                                    JointStateMapper, TrajectoryCommandContract,
                                    controller_topic)
from sitebot.errors import ParameterError
from sitebot.config.params import ParamSpec, ParamType
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.nodes.control_io import ControlIO, PeriodStats

__all__ = ["SCHEMA", "ControlLoopNode", "main"]

F, B, S = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING
FA, SA = ParamType.FLOAT_ARRAY, ParamType.STRING_ARRAY

SCHEMA = (
    ParamSpec("rate_hz", F, 250.0, "kernel tick and controller command rate", 10.0, 1000.0,
              unit="Hz", read_only=True),
    ParamSpec("backend", S, "ros2_control", "what the loop drives: ros2_control controllers "
              "through their topics", choices=("ros2_control",), read_only=True),
    ParamSpec("arm_controller", S, "arm_controller", "name of the arm controller (commands "
              "go to <name>/commands or <name>/joint_trajectory)", read_only=True),
    ParamSpec("arm_controller_type", S, "forward_command_controller", "type of the arm "
              "controller", choices=ARM_CONTROLLER_TYPES, read_only=True),
    ParamSpec("arm_interface", S, "position", "forward_command_controller: its "
              "interface_name (must be the controller's); joint_trajectory_controller: "
              "position only", choices=("position", "velocity"), read_only=True),
    ParamSpec("arm_controller_joints", SA, [], "the arm controller's 'joints' parameter, in "
              "its order; empty: the kernel's order (arm_joint_1..6, "
              "gripper_left_finger_joint, with joint_prefix)", read_only=True),
    ParamSpec("base_controller", S, "diff_drive_controller", "name of the diff_drive_controller "
              "(commands go to <name>/cmd_vel, TwistStamped)", read_only=True),
    ParamSpec("joint_states_topic", S, "joint_states", "joint_state_broadcaster's topic",
              read_only=True),
    ParamSpec("description_file", S, "", "robot description (URDF or xacro) for joint "
              "limits and wheel geometry; '' = sitebot's urdf/sitebot.urdf.xacro",
              read_only=True),
    ParamSpec("joint_prefix", S, "", "prefix of the joint names (the xacro 'prefix' argument)",
              read_only=True),
    ParamSpec("ignored_joints", SA, ["gripper_right_finger_joint"], "joints a trajectory may "
              "name that the loop does not drive (mimic joints); dropped (joint_prefix "
              "applies)", read_only=True),
    ParamSpec("trajectory_horizon_s", F, 0.05, "joint_trajectory_controller: each tick's "
              "one-point trajectory reaches the kernel's setpoint this far ahead", 0.002, 1.0,
              unit="s", read_only=True),
    ParamSpec("cmd_timeout_s", F, 0.5, "a base command older than this: the base ramps to "
              "zero", 0.01, 10.0, unit="s", read_only=True),
    ParamSpec("heartbeat_timeout_s", F, 0.5, "supervisor heartbeat (safety/state) older than "
              "this: category-1 stop", 0.01, 10.0, unit="s", read_only=True),
    ParamSpec("state_timeout_s", F, 0.1, "joint_states older than this (or never received): "
              "invalid input, hold", 0.005, 5.0, unit="s", read_only=True),
    ParamSpec("use_rt_thread", B, True, "step the kernel in the C RtLoop thread if the C "
              "extension is built; otherwise (and when false) an rclpy timer in Python",
              read_only=True),
    ParamSpec("status_rate_hz", F, 20.0, "control/state publication rate", 0.5, 100.0,
              unit="Hz", read_only=True),
    ParamSpec("diagnostics_period_s", F, 1.0, "/diagnostics publication period", 0.1, 60.0,
              unit="s", read_only=True),
    ParamSpec("kp", FA, [], "per-joint proportional gain of the velocity interface (kernel "
              "order, 7 values); empty: the kernel's default (10)", 0.0, 1000.0,
              unit="1/s", read_only=True),
    ParamSpec("velocity_scale", F, 1.0, "fraction of the URDF joint velocity limits the arm "
              "may use", 0.01, 1.0, read_only=True),
    ParamSpec("acc_max", FA, [], "per-joint acceleration limits (kernel order, 7 values); "
              "empty: twice the (scaled) velocity limit per second", 1e-3, 1000.0,
              unit="rad/s^2 or m/s^2", read_only=True),
    ParamSpec("base_lin_vel_max", F, 1.0, "base speed limit", 0.01, 5.0, unit="m/s",
              read_only=True),
    ParamSpec("base_ang_vel_max", F, 1.5, "base turn rate limit", 0.01, 10.0, unit="rad/s",
              read_only=True),
    ParamSpec("base_lin_acc_max", F, 1.0, "base acceleration limit (also the category-1 "
              "deceleration)", 0.01, 10.0, unit="m/s^2", read_only=True),
    ParamSpec("base_ang_acc_max", F, 2.0, "base angular acceleration limit", 0.01, 20.0,
              unit="rad/s^2", read_only=True),
)

#: statuses after which a joint_trajectory_controller point is not extrapolated
_HOLD = (Status.INVALID_INPUT, Status.LIMIT_VIOLATION, Status.STOPPED)


class ControlLoopNode(Node):
    """The hardware control loop (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("control_loop", **kwargs)
        p = self.p = declare_schema(self, SCHEMA)
        self._closed = False
        self._rt = None
        from sitebot.description.urdf import load_robot_description   # numpy/xacro: keep import cost here

        prefix = p["joint_prefix"]
        desc = load_robot_description(p["description_file"] or None,
                                      {"prefix": prefix} if prefix else None)
        self.joint_names = list(kernel_joint_names(desc))
        self.wheel_names = list(desc.wheel_joints)
        n = len(self.joint_names)
        jtc = p["arm_controller_type"] == ControllerType.JOINT_TRAJECTORY.value
        if jtc and p["arm_interface"] != "position":
            raise ParameterError("parameter 'arm_interface': joint_trajectory_controller is "
                                 "driven by positions; accepted: 'position' with "
                                 "arm_controller_type 'joint_trajectory_controller'")
        self.config = self._kernel_config(desc, n, jtc)

        # the arm and base contracts
        ctrl_joints = list(p["arm_controller_joints"]) or self.joint_names
        try:
            if jtc:
                self.arm = TrajectoryCommandContract(
                    self.joint_names, ctrl_joints, p["trajectory_horizon_s"],
                    self.config.pos_min, self.config.pos_max)
            else:
                self.arm = ForwardCommandContract(self.joint_names, ctrl_joints,
                                                  p["arm_interface"])
        except ContractError as e:
            raise ParameterError(f"parameter 'arm_controller_joints': {e}") from None
        self.base = DiffDriveContract()
        self.mapper = JointStateMapper(self.joint_names, self.wheel_names)
        self._nan_n = np.full(n, np.nan)
        self._nan_2 = np.full(2, np.nan)

        # the loop driver: C RtLoop or an rclpy timer
        kernel, clock, stamp_clock, why = self._make_driver()
        self.kernel = kernel
        self.io = ControlIO(self, kernel, self.joint_names, self.wheel_names, clock=clock,
                            stamp_clock=stamp_clock, config=self.config,
                            ignored_joint_names=[prefix + j for j in p["ignored_joints"]],
                            hardware_id=p["backend"])
        self.out: KernelOutput = self.io.out

        # topics
        try:
            arm_topic = controller_topic(p["arm_controller"], p["arm_controller_type"])
            base_topic = controller_topic(p["base_controller"], ControllerType.DIFF_DRIVE)
        except ContractError as e:
            raise ParameterError(f"controller names: {e}") from None
        self.arm_topic, self.base_topic = arm_topic, base_topic
        self.arm_pub = self.create_publisher(JointTrajectory if jtc else Float64MultiArray,
                                             arm_topic, QOS_COMMAND)
        self.base_pub = self.create_publisher(TwistStamped, base_topic, QOS_COMMAND)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        # joint_state_broadcaster publishes reliable (SystemDefaults); a best-effort
        # subscription matches reliable and best-effort publishers alike
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joint_states,
                                 QOS_SENSOR)

        self._armed = False                 # the kernel has its setpoint from a valid state
        self._armed_tick = None             # RtLoop: tick after which it is armed
        self._last_t: float | None = None
        self._ticks = 0
        self._status_every = max(1, int(round(p["rate_hz"] / p["status_rate_hz"])))
        self.stats = PeriodStats(p["rate_hz"])
        self.commands_sent = 0
        self._state_warned = 0.0
        self._timer = self.create_timer(1.0 / p["rate_hz"], self._tick)
        self._diag_timer = self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics)
        if self._rt is not None:
            self._rt.start()
        self.get_logger().info(
            f"control loop at {p['rate_hz']:g} Hz ({why}); kernel {kmod.IMPLEMENTATION}, "
            f"{n} joints {self.joint_names}, arm -> {arm_topic} "
            f"({p['arm_controller_type']}, {p['arm_interface'] if not jtc else 'position'}), "
            f"base -> {base_topic}, state <- {p['joint_states_topic']}")

    # ------------------------------------------------------------------ set-up
    def _kernel_config(self, desc: Any, n: int, jtc: bool) -> Any:
        p = self.p
        vel = tuple(p["velocity_scale"] * float(desc.joints[j].velocity_limit or 1.0)
                    for j in self.joint_names)
        overrides: dict[str, Any] = dict(
            interface=Interface.POSITION if jtc or p["arm_interface"] == "position"
            else Interface.VELOCITY,
            vel_max=vel, acc_max=tuple(2.0 * v for v in vel),
            cmd_timeout_s=p["cmd_timeout_s"], heartbeat_timeout_s=p["heartbeat_timeout_s"],
            base_lin_vel_max=p["base_lin_vel_max"], base_ang_vel_max=p["base_ang_vel_max"],
            base_lin_acc_max=p["base_lin_acc_max"], base_ang_acc_max=p["base_ang_acc_max"])
        for name in ("kp", "acc_max"):
            if p[name]:
                if len(p[name]) != n:
                    raise ParameterError(f"parameter '{name}': has {len(p[name])} values; "
                                         f"accepted: none, or {n} (one per joint: "
                                         f"{', '.join(self.joint_names)})")
                overrides[name] = tuple(p[name])
        try:
            return kernel_config_from_description(desc, **overrides)
        except ValueError as e:
            raise ParameterError(f"kernel configuration: {e}") from None

    def _make_driver(self) -> tuple[Any, Any, Any, str]:
        """(kernel, clock, stamp_clock, why) for ControlIO."""
        ros_now = self._now
        if self.p["use_rt_thread"]:
            if kmod.RtLoop is None or kmod.CControlKernel is None:
                why = ("C RtLoop not available (the extension sitebot.control._control_kernel is not "
                       "built): the kernel steps in Python from an rclpy timer")
            elif kmod.IMPLEMENTATION != "c":
                why = ("C RtLoop not used: SITEBOT_PURE_PYTHON=1 selects the Python kernel, "
                       "which steps from an rclpy timer")
            else:
                kernel = kmod.CControlKernel(self.config)
                self._rt = kmod.RtLoop(kernel, self.p["rate_hz"])
                # no state yet: NaN keeps the kernel from taking a setpoint from zeros
                self._rt.write_state(self._nan_n, self._nan_n, self._nan_2, self._nan_2)
                return (self._rt, kmod.RtLoop.now, ros_now,
                        "C RtLoop thread steps the kernel on CLOCK_MONOTONIC; an rclpy timer "
                        "exchanges state and commands")
        else:
            why = "use_rt_thread is false: the kernel steps in Python from an rclpy timer"
        return kmod.ControlKernel(self.config), ros_now, None, why

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ state in
    def _on_joint_states(self, msg: JointState) -> None:
        try:
            self.mapper.update(msg.name, msg.position, msg.velocity,
                               convert.from_time(msg.header.stamp), self._now())
        except ContractError as e:
            self.io.warn("joint_states", f"{self.p['joint_states_topic']}: {e}; ignored")

    def _state(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
        s = self.mapper.sample
        if s.is_stale(now, self.p["state_timeout_s"]):
            age = s.age_s(now)
            self.io.warn("stale", f"{self.p['joint_states_topic']}: "
                          + ("never received" if not math.isfinite(age) else
                             f"{age:.3f} s old (state_timeout_s {self.p['state_timeout_s']:g})")
                          + ": holding")
            return self._nan_n, self._nan_n, self._nan_2, self._nan_2, False
        return s.q, s.qd, s.wheel_q, s.wheel_qd, True

    # ------------------------------------------------------------------ the tick
    def _tick(self) -> None:
        if self._closed:
            return
        w0 = time.monotonic()
        now = self._now()
        q, qd, wq, wqd, fresh = self._state(now)
        if self._rt is None:
            nominal = 1.0 / self.p["rate_hz"]
            dt = nominal if self._last_t is None else now - self._last_t
            if not (0.0 < dt <= 5.0 * nominal):
                dt = nominal                # clock jump or first tick
            self._last_t = now
            status = self.io.step(now, dt, q, qd, wq, wqd)
            if not self._armed and fresh and status is not Status.INVALID_INPUT:
                self._armed = True
        else:
            with self.io.lock:
                self._rt.write_state(q, qd, wq, wqd)
                tick = self._rt.read_output(self.out)
                if tick <= 0:
                    return
                status = self.out.status
                self.io.mark_stepped(status)
            if fresh and self._armed_tick is None:
                self._armed_tick = tick         # written now: taken from the next tick on
            elif (not self._armed and self._armed_tick is not None and tick > self._armed_tick
                  and status is not Status.INVALID_INPUT):
                self._armed = True
        self._publish_commands(status)
        self._ticks += 1
        if self._ticks % self._status_every == 0:
            self.io.publish_state(self.out)
        self.stats.tick(w0, time.monotonic())

    def _publish_commands(self, status: Status) -> None:
        if self._armed:
            if isinstance(self.arm, ForwardCommandContract):
                self.arm_pub.publish(Float64MultiArray(data=self.arm.build(self.out).tolist()))
            else:
                pt = self.arm.build(self.out, moving=status not in _HOLD)
                msg = JointTrajectory(joint_names=list(pt.joint_names))   # stamp 0: now
                point = JointTrajectoryPoint(positions=list(pt.positions),
                                             velocities=list(pt.velocities))
                point.time_from_start.sec = int(pt.time_from_start_s)
                point.time_from_start.nanosec = int(round(
                    (pt.time_from_start_s - int(pt.time_from_start_s)) * 1e9))
                msg.points = [point]
                self.arm_pub.publish(msg)
        v, w = self.base.build(self.out) if self.io.stepped else (0.0, 0.0)
        tw = TwistStamped()
        tw.header.stamp = self.get_clock().now().to_msg()
        tw.twist.linear.x = v
        tw.twist.angular.z = w
        self.base_pub.publish(tw)
        self.commands_sent += 1

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        if self._closed:
            return
        if self._rt is not None:
            rs = self._rt.stats()
            stats = {"rate_hz": self.p["rate_hz"], "period_mean_s": rs["mean_period_s"],
                     "period_std_s": rs["std_period_s"],
                     "period_max_error_s": rs["max_error_s"],
                     "period_p99_error_s": rs["p99_error_s"],
                     "overruns_total": float(rs["overruns"]), "ticks": float(rs["ticks"])}
            py = self.stats.snapshot()
            stats["exec_mean_s"], stats["exec_max_s"] = py["exec_mean_s"], py["exec_max_s"]
        else:
            stats = self.stats.snapshot()
        loop = self.io.diagnostic_status(stats)
        now = self._now()
        age = self.mapper.sample.age_s(now)
        stale = age > self.p["state_timeout_s"]
        backend = DiagnosticStatus(name=f"{self.get_name()}: ros2_control backend",
                                   hardware_id=self.p["backend"])
        backend.level = DiagnosticStatus.ERROR if stale else DiagnosticStatus.OK
        backend.message = ("joint_states " + ("never received" if not math.isfinite(age)
                                              else f"{age:.3f} s old") + ": holding"
                           if stale else "joint_states fresh")
        backend.values = [KeyValue(key=k, value=v) for k, v in (
            ("joint_states_topic", self.p["joint_states_topic"]),
            ("joint_states_age_s", f"{age:.4f}"),
            ("arm_topic", self.arm_topic), ("arm_controller_type", self.p["arm_controller_type"]),
            ("base_topic", self.base_topic), ("commands_sent", str(self.commands_sent)),
            ("armed", str(self._armed)),
            ("driver", "C RtLoop" if self._rt is not None else "rclpy timer"))]
        arr = DiagnosticArray(status=[loop, backend])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        self._closed = True
        rt = getattr(self, "_rt", None)
        if rt is not None:
            rt.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(ControlLoopNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
