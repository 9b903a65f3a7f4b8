"""Ros2ControlDouble: a TEST DOUBLE of ros2_control, for machines where ros2_control
cannot run (no ROS install: rclpy from PyPI has no controller_manager).

It is *not* ros2_control.  It mimics, over the same topics and message types, the contracts
the control loop relies on (``sitebot.control.ros2_control``), as the Jazzy controllers
implement them:

* forward_command_controller ``<arm_controller>/commands`` (std_msgs/Float64MultiArray):
  one value per configured joint, in the configured order, for one interface (position or
  velocity); there is no command timeout.  A message of another length is taken by the
  controller and its next ``update()`` fails; the controller manager then **deactivates**
  the controller (recorded in :attr:`dropped` and :attr:`arm_active`): the hardware keeps
  the last command it was given, and later commands are ignored until the controller is
  activated again (:meth:`activate_arm`);
* joint_trajectory_controller ``<arm_controller>/joint_trajectory`` (optional,
  ``arm_type='joint_trajectory_controller'``): a message naming a joint the controller
  does not have, or with mismatched lengths, is dropped; otherwise the arm moves to the
  last point's positions by its ``time_from_start`` (linear, from the current positions);
* diff_drive_controller ``<base_controller>/cmd_vel`` (geometry_msgs/TwistStamped):
  (linear.x, angular.z) through its speed limiter (the acceleration and deceleration
  limits of config/ros2_controllers.yaml) to wheel speeds; a command older than
  ``cmd_vel_timeout`` by its stamp (arrival time if the stamp is zero) makes the target
  zero, reached through the same limiter (a ramp, not a brake);
* joint_state_broadcaster ``joint_states`` (sensor_msgs/JointState) at the update rate,
  in an order of its own (not the controller's), including the mimic finger.

The hardware behind it is a first-order joint model: position commands are followed with
time constant ``time_constant_s``, velocity commands are reached with that lag and
integrated; the wheels take their speed at once.  It runs in its own rclpy context and
executor thread, on wall time.
"""
from __future__ import annotations

import threading
import time
from typing import Sequence

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from sitebot.control.ros2_control import (ControllerType, ForwardCommandContract, controller_topic,
                                          diff_drive_wheel_velocities)
from sitebot.nodes.common import QOS_COMMAND, QOS_STATE

ARM_JOINTS = tuple(f"arm_joint_{i}" for i in range(1, 7)) + ("gripper_left_finger_joint",)
WHEEL_JOINTS = ("left_wheel_joint", "right_wheel_joint")
MIMIC = ("gripper_right_finger_joint", "gripper_left_finger_joint")   # (mimic, of)


def _shipped_base_limits() -> tuple[float, float, float, float]:
    """The diff_drive_controller's limits in config/ros2_controllers.yaml."""
    from sitebot.config.params import load_params_file
    from sitebot.paths import data_path
    p = next(v for k, v in load_params_file(data_path("config", "ros2_controllers.yaml"))
             .items() if k.strip("/").split("/")[-1] == "diff_drive_controller")
    return (p["linear.x.max_acceleration"], -p["linear.x.max_deceleration"],
            p["angular.z.max_acceleration"], -p["angular.z.max_deceleration"])


class Ros2ControlDouble:
    """TEST DOUBLE of joint_state_broadcaster + forward_command_controller (or a minimal
    joint_trajectory_controller) + diff_drive_controller.  See the module docstring."""

    def __init__(self, arm_joints: Sequence[str] = ARM_JOINTS,
                 wheel_joints: Sequence[str] = WHEEL_JOINTS, *,
                 arm_controller: str = "arm_controller",
                 arm_type: str = "forward_command_controller",
                 arm_interface: str = "position",
                 base_controller: str = "diff_drive_controller",
                 update_rate_hz: float = 100.0, time_constant_s: float = 0.03,
                 wheel_radius_m: float = 0.10, wheel_separation_m: float = 0.53,
                 cmd_vel_timeout_s: float = 0.5,
                 base_limits: tuple[float, float, float, float] | None = None,
                 initial_positions: Sequence[float] | None = None,
                 name: str = "ros2_control_double") -> None:
        self.arm_joints = tuple(arm_joints)
        self.wheel_joints = tuple(wheel_joints)
        self.arm_type = ControllerType(arm_type)
        self.interface = arm_interface
        self.rate_hz = float(update_rate_hz)
        self.tau = float(time_constant_s)
        self.wheel_radius_m = wheel_radius_m
        self.wheel_separation_m = wheel_separation_m
        self.cmd_vel_timeout_s = cmd_vel_timeout_s
        # (linear accel, linear decel, angular accel, angular decel) magnitudes
        self.base_limits = base_limits or _shipped_base_limits()
        self._limited = np.zeros(2)                  # the speed limiter's (v, w)
        self.arm_active = True
        n = len(self.arm_joints)
        self.lock = threading.Lock()
        self.q = np.zeros(n) if initial_positions is None else np.array(initial_positions, float)
        self.qd = np.zeros(n)
        self.wheel_q = np.zeros(2)
        self.wheel_qd = np.zeros(2)
        # forward_command_controller: before any command the hardware holds
        self.command = self.q.copy() if arm_interface == "position" else np.zeros(n)
        self._contract = ForwardCommandContract(self.arm_joints, self.arm_joints, arm_interface)
        self._jtc_goal: tuple[np.ndarray, np.ndarray, float, float] | None = None
        self._twist = (0.0, 0.0)
        self._twist_stamp = -1e18
        # what happened, for tests
        self.commands: list[tuple[float, tuple[float, ...]]] = []   # (wall time, data)
        self.trajectories: list[JointTrajectory] = []
        self.dropped: list[str] = []     # why each was refused (or deactivated the controller)
        self.twists: list[tuple[float, float, float]] = []          # (wall time, v, w)
        self.publish_joint_states = True
        self.joint_states_published = 0
        # broadcaster order: its own, not the controller's (consumers must map by name)
        self.state_order = (self.wheel_joints[1],) + tuple(reversed(self.arm_joints)) + (
            MIMIC[0], self.wheel_joints[0])

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        if self.arm_type is ControllerType.FORWARD_COMMAND:
            self.node.create_subscription(
                Float64MultiArray, controller_topic(arm_controller, self.arm_type),
                self._on_commands, QOS_COMMAND)
        elif self.arm_type is ControllerType.JOINT_TRAJECTORY:
            self.node.create_subscription(
                JointTrajectory, controller_topic(arm_controller, self.arm_type),
                self._on_trajectory, QOS_COMMAND)
        else:
            raise ValueError(f"arm_type {arm_type!r}")
        self.node.create_subscription(
            TwistStamped, controller_topic(base_controller, ControllerType.DIFF_DRIVE),
            self._on_cmd_vel, QOS_COMMAND)
        self.js_pub = self.node.create_publisher(JointState, "joint_states", QOS_STATE)
        self._last = time.monotonic()
        self.node.create_timer(1.0 / self.rate_hz, self._update)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True, name=name)
        self._thread.start()

    # ------------------------------------------------------------------ controllers
    def _on_commands(self, msg: Float64MultiArray) -> None:
        data = tuple(msg.data)
        with self.lock:
            if not self.arm_active:                    # an inactive controller takes nothing
                return
            if not self._contract.accepts(data):
                # forward_command_controller stores it; its update() then fails on the size
                # and the controller manager deactivates it: the hardware keeps the last
                # command it was written
                self.dropped.append(f"commands of length {len(data)}, expected "
                                    f"{self._contract.length}: controller deactivated")
                self.arm_active = False
                return
            self.command[:] = data
            self.commands.append((time.monotonic(), data))

    def activate_arm(self) -> None:
        """What ``ros2 control switch_controllers --activate`` does after a deactivation."""
        with self.lock:
            self.arm_active = True

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        names = list(msg.joint_names)
        with self.lock:
            if not msg.points:
                self.dropped.append("empty trajectory")
                return
            last = msg.points[-1]
            if (not set(names) <= set(self.arm_joints) or len(last.positions) != len(names)
                    or len(set(names)) != len(names)):
                self.dropped.append(f"trajectory for {names} with {len(last.positions)} "
                                    "positions")
                return
            idx = [self.arm_joints.index(j) for j in names]
            target = self.q.copy()
            target[idx] = last.positions
            dur = last.time_from_start.sec + last.time_from_start.nanosec * 1e-9
            self._jtc_goal = (self.q.copy(), target, time.monotonic(), max(dur, 1e-6))
            self.trajectories.append(msg)

    def _on_cmd_vel(self, msg: TwistStamped) -> None:
        now = time.monotonic()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        wall = time.time()
        with self.lock:
            self._twist = (msg.twist.linear.x, msg.twist.angular.z)
            # the stamp's age (ROS time = wall time here), arrival if unset
            self._twist_stamp = now - (wall - stamp) if stamp > 0 else now
            self.twists.append((now, msg.twist.linear.x, msg.twist.angular.z))

    # ------------------------------------------------------------------ hardware model
    def _update(self) -> None:
        now = time.monotonic()
        dt = min(now - self._last, 0.1)
        self._last = now
        with self.lock:
            if self.arm_type is ControllerType.JOINT_TRAJECTORY:
                if self._jtc_goal is not None:
                    start, target, t0, dur = self._jtc_goal
                    a = min(1.0, (now - t0) / dur)
                    want = start + a * (target - start)
                    self.qd = (want - self.q) / max(dt, 1e-6)
                    self.q = want
                else:
                    self.qd[:] = 0.0
            elif self.interface == "position":
                self.qd = (self.command - self.q) / self.tau
                self.q = self.q + self.qd * dt
            else:
                self.qd = self.qd + (self.command - self.qd) * min(1.0, dt / self.tau)
                self.q = self.q + self.qd * dt
            target = np.array(self._twist, dtype=float)
            if now - self._twist_stamp > self.cmd_vel_timeout_s:
                target[:] = 0.0
            for i, (acc, dec) in enumerate((self.base_limits[:2], self.base_limits[2:])):
                cur = self._limited[i]
                # speeding up (away from zero): the acceleration limit; else the deceleration
                step = (acc if abs(target[i]) > abs(cur) and target[i] * cur >= 0 else dec) * dt
                self._limited[i] = cur + float(np.clip(target[i] - cur, -step, step))
            v, w = self._limited
            self.wheel_qd[:] = diff_drive_wheel_velocities(v, w, self.wheel_separation_m,
                                                           self.wheel_radius_m)
            self.wheel_q += self.wheel_qd * dt
            if not self.publish_joint_states:
                return
            pos = dict(zip(self.arm_joints, self.q)) | dict(zip(self.wheel_joints, self.wheel_q))
            vel = dict(zip(self.arm_joints, self.qd)) | dict(zip(self.wheel_joints, self.wheel_qd))
            pos[MIMIC[0]], vel[MIMIC[0]] = pos[MIMIC[1]], vel[MIMIC[1]]
            msg = JointState(name=list(self.state_order))
            msg.header.stamp = self.node.get_clock().now().to_msg()
            msg.position = [float(pos[j]) for j in self.state_order]
            msg.velocity = [float(vel[j]) for j in self.state_order]
            msg.effort = [0.0] * len(self.state_order)
        self.js_pub.publish(msg)
        self.joint_states_published += 1

    # ------------------------------------------------------------------ test helpers
    def positions(self) -> np.ndarray:
        with self.lock:
            return self.q.copy()

    def wheel_velocities(self) -> np.ndarray:
        with self.lock:
            return self.wheel_qd.copy()

    def last_twist(self) -> tuple[float, float, float] | None:
        with self.lock:
            return self.twists[-1] if self.twists else None

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
