"""The hardware control loop's decisions (core, no ROS): the part of the ``control_loop``
node (:mod:`sitebot.nodes.control_loop`) that is not message passing.

* :data:`SCHEMA`: the parameters that configure the loop, the kernel and the trajectory
  validation (the node declares them with its own); :func:`kernel_config_from_params`,
  :func:`arm_interface`, :func:`trajectory_check_from_params`, :func:`arm_contract`,
  :func:`controller_topics` build the core configurations from their values;
* :func:`choose_driver`: the C ``RtLoop`` or a timer stepping the kernel in Python, and why;
* :class:`TickClock`: the ``dt`` of a timer-driven tick;
* :class:`Arming`: no arm command before the kernel holds a setpoint taken from a valid
  joint state (a position command before that would be a guess);
* :func:`rt_period_stats`, :func:`joint_state_health`: the figures of the diagnostics.

Safety in the loop (each tick): ``joint_states`` older than ``state_timeout_s``, never
received, or holding a non-finite value -> the kernel's INVALID_INPUT path (arm holds the
last safe setpoint at zero velocity, base command zero); supervisor heartbeat older than
``heartbeat_timeout_s`` -> category-1 stop; base command older than ``cmd_timeout_s`` ->
base ramps to zero.  No arm command is sent before the first valid joint state (the kernel
takes its setpoint from it; a position command before that would be a guess).

Loop driver.  ``use_rt_thread`` true and the C extension built: the C ``RtLoop`` steps the
kernel at ``rate_hz`` on CLOCK_MONOTONIC without the GIL; an rclpy timer at the same rate
writes the latest state into it and publishes its latest output.  Otherwise an rclpy timer
steps the kernel in Python; a log line at start-up says which, and why.

Units: [s], [Hz], [rad | m] and their rates, as in the parameter descriptions.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from sitebot.config.params import ParamSpec, ParamType
from sitebot.control import kernel as kmod
from sitebot.control.kernel import kernel_config_from_description, kernel_joint_names
from sitebot.control.ros2_control import (ContractError, ControllerType, ForwardCommandContract,
                                          TrajectoryCommandContract, controller_topic)
from sitebot.control.trajectory import TrajectoryCheck
from sitebot.control.types import Interface, KernelConfig, Status
from sitebot.errors import ParameterError
from sitebot.types import DiagnosticLevel

__all__ = ["SCHEMA", "Arming", "TickClock", "arm_contract", "arm_interface", "choose_driver",
           "controller_topics",
           "joint_state_health", "kernel_config_from_params", "rt_period_stats",
           "trajectory_check_from_params"]

F, B, FA = ParamType.FLOAT, ParamType.BOOL, ParamType.FLOAT_ARRAY

#: the loop's, the kernel's and the trajectory validation's parameters (read-only)
SCHEMA = (
    ParamSpec("rate_hz", F, 250.0, "kernel tick and controller command rate", 10.0, 1000.0,
              unit="Hz", read_only=True),
    ParamSpec("use_rt_thread", B, True, "step the kernel in the C RtLoop thread if the C "
              "extension is built; otherwise (and when false) an rclpy timer in Python",
              read_only=True),
    ParamSpec("state_timeout_s", F, 0.1, "joint_states older than this (or never received): "
              "invalid input, hold", 0.005, 5.0, unit="s", read_only=True),
    ParamSpec("cmd_timeout_s", F, 0.5, "a base command older than this: the base ramps to "
              "zero", 0.01, 10.0, unit="s", read_only=True),
    ParamSpec("heartbeat_timeout_s", F, 0.5, "supervisor heartbeat (safety/state) older than "
              "this: category-1 stop", 0.01, 10.0, unit="s", read_only=True),
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
    ParamSpec("trajectory_limit_tolerance", F, TrajectoryCheck.limit_tolerance,
              "arm/joint_trajectory: a position this far outside its joint limits still "
              "passes (limits written with rounding)", 0.0, 0.01, unit="rad or m",
              read_only=True),
    ParamSpec("trajectory_start_tolerance", F, TrajectoryCheck.start_tolerance,
              "arm/joint_trajectory: a first point at time_from_start 0 must be this close "
              "to the current setpoint", 0.0, 0.1, unit="rad or m", read_only=True),
    ParamSpec("trajectory_speed_tolerance", F, TrajectoryCheck.speed_tolerance,
              "arm/joint_trajectory: relative slack on the velocity limits for the way from "
              "the setpoint to the first point", 0.0, 0.1, read_only=True),
)


def arm_interface(controller_type: str, interface_name: str) -> Interface:
    """The kernel's arm interface for the arm controller: joint_trajectory_controller is
    driven by positions; forward_command_controller by its ``interface_name``.

    :raises ParameterError: joint_trajectory_controller with another interface.
    """
    jtc = controller_type == ControllerType.JOINT_TRAJECTORY.value
    if jtc and interface_name != "position":
        raise ParameterError("parameter 'arm_interface': joint_trajectory_controller is "
                             "driven by positions; accepted: 'position' with "
                             "arm_controller_type 'joint_trajectory_controller'")
    return Interface.POSITION if jtc or interface_name == "position" else Interface.VELOCITY


def kernel_config_from_params(desc: Any, values: Mapping[str, Any],
                              interface: Interface) -> KernelConfig:
    """The kernel's configuration for ``desc`` from the :data:`SCHEMA` ``values``: joint
    velocity limits = ``velocity_scale`` x the URDF's (1.0 where it has none), ``acc_max``
    twice that per second unless given, ``kp`` the kernel's default unless given.

    :raises ParameterError: an array of the wrong length, or a configuration the kernel
        refuses (the message says why).
    """
    names = kernel_joint_names(desc)
    n = len(names)
    vel = tuple(values["velocity_scale"] * float(desc.joints[j].velocity_limit or 1.0)
                for j in names)
    overrides: dict[str, Any] = dict(
        interface=interface, vel_max=vel, acc_max=tuple(2.0 * v for v in vel),
        cmd_timeout_s=values["cmd_timeout_s"],
        heartbeat_timeout_s=values["heartbeat_timeout_s"],
        base_lin_vel_max=values["base_lin_vel_max"],
        base_ang_vel_max=values["base_ang_vel_max"],
        base_lin_acc_max=values["base_lin_acc_max"],
        base_ang_acc_max=values["base_ang_acc_max"])
    for name in ("kp", "acc_max"):
        if values[name]:
            if len(values[name]) != n:
                raise ParameterError(f"parameter '{name}': has {len(values[name])} values; "
                                     f"accepted: none, or {n} (one per joint: "
                                     f"{', '.join(names)})")
            overrides[name] = tuple(values[name])
    try:
        return kernel_config_from_description(desc, **overrides)
    except ValueError as e:
        raise ParameterError(f"kernel configuration: {e}") from None


def arm_contract(joint_names: Sequence[str], values: Mapping[str, Any],
                 config: KernelConfig) -> ForwardCommandContract | TrajectoryCommandContract:
    """The arm controller's contract for the kernel's ``joint_names`` from the node's
    values (``arm_controller_type``, ``arm_controller_joints`` (empty: the kernel's order),
    ``arm_interface``, ``trajectory_horizon_s``).

    :raises ParameterError: joints that do not fit the controller's.
    """
    ctrl_joints = list(values["arm_controller_joints"]) or list(joint_names)
    try:
        if values["arm_controller_type"] == ControllerType.JOINT_TRAJECTORY.value:
            return TrajectoryCommandContract(joint_names, ctrl_joints,
                                             values["trajectory_horizon_s"],
                                             config.pos_min, config.pos_max)
        return ForwardCommandContract(joint_names, ctrl_joints, values["arm_interface"])
    except ContractError as e:
        raise ParameterError(f"parameter 'arm_controller_joints': {e}") from None


def controller_topics(values: Mapping[str, Any]) -> tuple[str, str]:
    """(arm, base) command topics of the node's ``arm_controller`` (of
    ``arm_controller_type``) and ``base_controller`` (a diff_drive_controller).

    :raises ParameterError: a controller name that cannot make a topic.
    """
    try:
        return (controller_topic(values["arm_controller"], values["arm_controller_type"]),
                controller_topic(values["base_controller"], ControllerType.DIFF_DRIVE))
    except ContractError as e:
        raise ParameterError(f"controller names: {e}") from None


def trajectory_check_from_params(values: Mapping[str, Any]) -> TrajectoryCheck:
    """The trajectory validation's tolerances from the :data:`SCHEMA` ``values``."""
    return TrajectoryCheck(limit_tolerance=values["trajectory_limit_tolerance"],
                           start_tolerance=values["trajectory_start_tolerance"],
                           speed_tolerance=values["trajectory_speed_tolerance"])


def choose_driver(use_rt_thread: bool) -> tuple[bool, str]:
    """(whether the C ``RtLoop`` steps the kernel, why): it does when asked for and the
    extension is built and selected; otherwise a timer steps the kernel in Python."""
    if not use_rt_thread:
        return False, "use_rt_thread is false: the kernel steps in Python from an rclpy timer"
    if kmod.RtLoop is None or kmod.CControlKernel is None:
        return False, ("C RtLoop not available (the extension sitebot.control._control_kernel "
                       "is not built): the kernel steps in Python from an rclpy timer")
    if kmod.IMPLEMENTATION != "c":
        return False, ("C RtLoop not used: SITEBOT_PURE_PYTHON=1 selects the Python kernel, "
                       "which steps from an rclpy timer")
    return True, ("C RtLoop thread steps the kernel on CLOCK_MONOTONIC; an rclpy timer "
                  "exchanges state and commands")


class TickClock:
    """The ``dt`` [s] of a timer-driven tick at ``rate_hz``: the time since the previous
    tick, or the nominal period on the first tick and after a clock jump (``dt`` <= 0 or
    over ``max_gap_periods`` nominal periods).

    :raises ValueError: ``rate_hz`` or ``max_gap_periods`` not finite and > 0 (the latter
        >= 1).
    """

    def __init__(self, rate_hz: float, max_gap_periods: float = 5.0) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0.0):
            raise ValueError(f"TickClock.rate_hz must be finite and > 0, got {rate_hz!r}")
        if not (math.isfinite(max_gap_periods) and max_gap_periods >= 1.0):
            raise ValueError(f"TickClock.max_gap_periods must be finite and >= 1, "
                             f"got {max_gap_periods!r}")
        self.nominal_s = 1.0 / rate_hz
        self.max_gap_periods = float(max_gap_periods)
        self._last: float | None = None

    def dt(self, now_s: float) -> float:
        nominal = self.nominal_s
        dt = nominal if self._last is None else now_s - self._last
        if not (0.0 < dt <= self.max_gap_periods * nominal):
            dt = nominal                # clock jump or first tick
        self._last = now_s
        return dt


class Arming:
    """Whether the loop may command the arm (:attr:`armed`): once the kernel has taken its
    setpoint from a valid joint state."""

    def __init__(self) -> None:
        self.armed = False
        self._tick: int | None = None      # RtLoop: tick after which the state was written

    def stepped(self, fresh: bool, status: Status) -> None:
        """The kernel stepped here on a ``fresh`` (or a NaN) state with ``status``."""
        if not self.armed and fresh and status is not Status.INVALID_INPUT:
            self.armed = True

    def rt_read(self, fresh: bool, tick: int, status: Status) -> None:
        """A ``fresh`` state was (or was not) written into the RtLoop, whose latest output
        (``status``) comes from ``tick``: the state is taken from the next tick on."""
        if fresh and self._tick is None:
            self._tick = tick
        elif (not self.armed and self._tick is not None and tick > self._tick
              and status is not Status.INVALID_INPUT):
            self.armed = True


def rt_period_stats(rt_stats: Mapping[str, Any], rate_hz: float,
                    timer: Mapping[str, float]) -> dict[str, float]:
    """The :class:`~sitebot.control.monitor.PeriodStats`-style figures of an RtLoop
    (its ``stats()``), with the execution times of the timer that feeds it (``timer``: a
    ``PeriodStats.snapshot()``)."""
    stats = {"rate_hz": rate_hz, "period_mean_s": rt_stats["mean_period_s"],
             "period_std_s": rt_stats["std_period_s"],
             "period_max_error_s": rt_stats["max_error_s"],
             "period_p99_error_s": rt_stats["p99_error_s"],
             "overruns_total": float(rt_stats["overruns"]), "ticks": float(rt_stats["ticks"])}
    stats["exec_mean_s"], stats["exec_max_s"] = timer["exec_mean_s"], timer["exec_max_s"]
    return stats


def joint_state_health(age_s: float, timeout_s: float) -> tuple[DiagnosticLevel, str]:
    """(level, message) of the joint state feed whose latest sample is ``age_s`` old."""
    if age_s > timeout_s:
        return DiagnosticLevel.ERROR, ("joint_states " + ("never received"
                                                          if not math.isfinite(age_s)
                                                          else f"{age_s:.3f} s old")
                                       + ": holding")
    return DiagnosticLevel.OK, "joint_states fresh"
