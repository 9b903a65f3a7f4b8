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

Safety in the loop, the loop driver (C ``RtLoop`` or an rclpy timer) and the kernel's
parameters: :mod:`sitebot.control.hardware_loop`.

Arm interface.  ``position`` (default): the controller receives the kernel's position
setpoint.  If this node dies, forward_command_controller keeps the last position, so the
arm holds.  ``velocity``: the kernel's velocity command (setpoint velocity + kp * error).
forward_command_controller has **no command timeout**, so a dead loop would leave the last
velocity applied: use it only with a hardware-side watchdog.

Rate.  ``rate_hz`` 250 by default, in [10, 1000]: a topic backend costs two DDS messages
per tick and its feedback comes from joint_state_broadcaster, which publishes at its own
rate (``config/ros2_controllers.yaml``: 250 Hz); ticking faster than the feedback only
repeats commands, and a Python tick (the fallback driver) takes 0.1-0.5 ms.
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

from sitebot.config.params import ParamSpec, ParamType
from sitebot.control import kernel as kmod
from sitebot.control.hardware_loop import SCHEMA as CORE_SCHEMA
from sitebot.control.hardware_loop import (Arming, TickClock, arm_contract, arm_interface,
                                           choose_driver, controller_topics, joint_state_health,
                                           kernel_config_from_params, rt_period_stats,
                                           trajectory_check_from_params)
from sitebot.control.kernel import kernel_joint_names
from sitebot.control.monitor import PeriodStats
from sitebot.control.ros2_control import (ARM_CONTROLLER_TYPES, ContractError, ControllerType,
                                          DiffDriveContract, ForwardCommandContract,
                                          JointStateMapper)
from sitebot.control.types import KernelOutput, Status
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.nodes.control_io import ControlIO

__all__ = ["SCHEMA", "ControlLoopNode", "main"]

F, S, SA = ParamType.FLOAT, ParamType.STRING, ParamType.STRING_ARRAY

#: the node's own parameters; :data:`SCHEMA` adds the kernel's (hardware_loop.SCHEMA)
NODE_SCHEMA = (
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
    ParamSpec("supervisor_node", S, "safety_supervisor", "the only node whose safety/state, "
              "cmd_vel and arm/joint_trajectory the loop obeys (relative: in this node's "
              "namespace)", read_only=True),
    ParamSpec("status_rate_hz", F, 20.0, "control/state publication rate", 0.5, 100.0,
              unit="Hz", read_only=True),
    ParamSpec("diagnostics_period_s", F, 1.0, "/diagnostics publication period", 0.1, 60.0,
              unit="s", read_only=True),
)
SCHEMA = NODE_SCHEMA + tuple(CORE_SCHEMA)

#: statuses after which a joint_trajectory_controller point is not extrapolated
_HOLD = (Status.INVALID_INPUT, Status.LIMIT_VIOLATION, Status.STOPPED)


class ControlLoopNode(Node):
    """The hardware control loop (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("control_loop", **kwargs)
        p = self.p = declare_schema(self, SCHEMA)
        self._closed = False
        self._rt = None
        from sitebot.description.urdf import \
            load_robot_description  # numpy/xacro: keep import cost here

        prefix = p["joint_prefix"]
        desc = load_robot_description(p["description_file"] or None,
                                      {"prefix": prefix} if prefix else None)
        self.joint_names = list(kernel_joint_names(desc))
        self.wheel_names = list(desc.wheel_joints)
        n = len(self.joint_names)
        jtc = p["arm_controller_type"] == ControllerType.JOINT_TRAJECTORY.value
        interface = arm_interface(p["arm_controller_type"], p["arm_interface"])
        self.config = kernel_config_from_params(desc, p, interface)

        # the arm and base contracts
        self.arm = arm_contract(self.joint_names, p, self.config)
        self.base = DiffDriveContract()
        self.mapper = JointStateMapper(self.joint_names, self.wheel_names)
        self._nan_n = np.full(n, np.nan)
        self._nan_2 = np.full(2, np.nan)

        # the loop driver: C RtLoop or an rclpy timer
        use_rt, why = choose_driver(p["use_rt_thread"])
        if use_rt:
            self._rt = kmod.RtLoop(kmod.CControlKernel(self.config), p["rate_hz"])
            # no state yet: NaN keeps the kernel from taking a setpoint from zeros
            self._rt.write_state(self._nan_n, self._nan_n, self._nan_2, self._nan_2)
            kernel, clock, stamp_clock = self._rt, kmod.RtLoop.now, self._now
        else:
            kernel, clock, stamp_clock = kmod.ControlKernel(self.config), self._now, None
        self.kernel = kernel
        self.io = ControlIO(self, kernel, self.joint_names, self.wheel_names, clock=clock,
                            stamp_clock=stamp_clock, config=self.config,
                            ignored_joint_names=[prefix + j for j in p["ignored_joints"]],
                            hardware_id=p["backend"], supervisor_node=p["supervisor_node"],
                            trajectory_check=trajectory_check_from_params(p))
        self.out: KernelOutput = self.io.out

        # topics
        self.arm_topic, self.base_topic = arm_topic, base_topic = controller_topics(p)
        self.arm_pub = self.create_publisher(JointTrajectory if jtc else Float64MultiArray,
                                             arm_topic, QOS_COMMAND)
        self.base_pub = self.create_publisher(TwistStamped, base_topic, QOS_COMMAND)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        # joint_state_broadcaster publishes reliable (SystemDefaults); a best-effort
        # subscription matches reliable and best-effort publishers alike
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joint_states,
                                 QOS_SENSOR)

        self.arming = Arming()
        self._tick_clock = TickClock(p["rate_hz"])
        self._ticks = 0
        self._status_every = max(1, int(round(p["rate_hz"] / p["status_rate_hz"])))
        self.stats = PeriodStats(p["rate_hz"])
        self.commands_sent = 0
        self._timer = self.create_timer(1.0 / p["rate_hz"], self._tick)
        self._diag_timer = self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics)
        if self._rt is not None:
            self._rt.start()
        self.get_logger().info(
            f"control loop at {p['rate_hz']:g} Hz ({why}); kernel {kmod.IMPLEMENTATION}, "
            f"{n} joints {self.joint_names}, arm -> {arm_topic} "
            f"({p['arm_controller_type']}, {p['arm_interface'] if not jtc else 'position'}), "
            f"base -> {base_topic}, state <- {p['joint_states_topic']}")

    # ------------------------------------------------------------------ state in
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

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
            status = self.io.step(now, self._tick_clock.dt(now), q, qd, wq, wqd)
            self.arming.stepped(fresh, status)
        else:
            with self.io.lock:
                self._rt.write_state(q, qd, wq, wqd)
                tick = self._rt.read_output(self.out)
                if tick <= 0:
                    return
                status = self.out.status
                self.io.mark_stepped(status)
            self.arming.rt_read(fresh, tick, status)
        self._publish_commands(status)
        self._ticks += 1
        if self._ticks % self._status_every == 0:
            self.io.publish_state(self.out)
        self.stats.tick(w0, time.monotonic())

    def _publish_commands(self, status: Status) -> None:
        if self.arming.armed:
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
            stats = rt_period_stats(self._rt.stats(), self.p["rate_hz"], self.stats.snapshot())
        else:
            stats = self.stats.snapshot()
        loop = self.io.diagnostic_status(stats)
        age = self.mapper.sample.age_s(self._now())
        level, message = joint_state_health(age, self.p["state_timeout_s"])
        backend = DiagnosticStatus(name=f"{self.get_name()}: ros2_control backend",
                                   hardware_id=self.p["backend"], level=bytes([int(level)]),
                                   message=message)
        backend.values = [KeyValue(key=k, value=v) for k, v in (
            ("joint_states_topic", self.p["joint_states_topic"]),
            ("joint_states_age_s", f"{age:.4f}"),
            ("arm_topic", self.arm_topic), ("arm_controller_type", self.p["arm_controller_type"]),
            ("base_topic", self.base_topic), ("commands_sent", str(self.commands_sent)),
            ("armed", str(self.arming.armed)),
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
