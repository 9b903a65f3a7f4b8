"""The ros2_control topic contracts, as pure functions and small classes (no rclpy).

The control loop drives a real robot *from outside* ros2_control, the way the community
does it: it publishes to the topics of the standard controllers and reads the state the
joint_state_broadcaster publishes.  This module states those contracts in plain Python so
that the node (``sitebot.nodes.control_loop``) stays a thin adapter, the test double of
ros2_control (``tests/ros2_control_double.py``) checks against the same rules, and both are
unit-testable without ROS.

Contracts (ros2_controllers, ROS 2 Jazzy):

==============================  =========================================  ===============
controller                      topic (relative to the controller name)    message
==============================  =========================================  ===============
forward_command_controller      ``<ctrl>/commands``                        Float64MultiArray
                                one value per joint of the controller's ``joints``
                                parameter, *in that order*, for its single
                                ``interface_name``; a message of another length is
                                taken, the controller's next update() fails and the
                                controller manager deactivates it (the hardware keeps
                                its last command; later commands do nothing until it is
                                activated again), which is why the loop never sends one.
                                It has **no command timeout**: the last command stays
                                applied until the next one.
joint_trajectory_controller     ``<ctrl>/joint_trajectory``                JointTrajectory
                                joint names must be joints of the controller; a new
                                message replaces the active trajectory (from its
                                ``header.stamp``; zero = now); empty messages are discarded.
diff_drive_controller           ``<ctrl>/cmd_vel``                         TwistStamped
                                Jazzy: stamped is the only form (``use_stamped_vel`` is
                                gone); linear.x and angular.z are used; a command older
                                than ``cmd_vel_timeout`` (by its stamp) makes the target
                                zero, reached through the speed limiter (a ramp at the
                                deceleration limits, not a brake).
joint_state_broadcaster         ``joint_states`` (relative to the          JointState
                                controller manager's namespace)
                                every joint with a position/velocity/effort state
                                interface, in an order of its own: consumers map by name.
==============================  =========================================  ===============

Units: positions [rad] or [m], velocities [rad/s] or [m/s], efforts [N*m] or [N], time [s].
"""
from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sitebot.config.checks import check_name
from sitebot.errors import ConfigError

__all__ = [
    "ControllerType",
    "ARM_CONTROLLER_TYPES",
    "ARM_INTERFACES",
    "controller_topic",
    "JOINT_STATES_TOPIC",
    "ContractError",
    "MissingJointError",
    "ForwardCommandContract",
    "TrajectoryCommandContract",
    "TrajectoryPoint",
    "DiffDriveContract",
    "JointStateMapper",
    "JointStateSample",
    "diff_drive_wheel_velocities",
    "check_controllers_file",
]


class ControllerType(str, enum.Enum):
    """The standard controllers the control loop talks to (their package names)."""

    FORWARD_COMMAND = "forward_command_controller"
    JOINT_TRAJECTORY = "joint_trajectory_controller"
    DIFF_DRIVE = "diff_drive_controller"
    JOINT_STATE_BROADCASTER = "joint_state_broadcaster"

    @property
    def plugin(self) -> str:
        """The pluginlib class name used in a controller_manager parameter file."""
        return {
            ControllerType.FORWARD_COMMAND:
                "forward_command_controller/ForwardCommandController",
            ControllerType.JOINT_TRAJECTORY:
                "joint_trajectory_controller/JointTrajectoryController",
            ControllerType.DIFF_DRIVE: "diff_drive_controller/DiffDriveController",
            ControllerType.JOINT_STATE_BROADCASTER: "joint_state_broadcaster/JointStateBroadcaster",
        }[self]


#: Controller types that can drive the arm.
ARM_CONTROLLER_TYPES: tuple[str, ...] = (ControllerType.FORWARD_COMMAND.value,
                                         ControllerType.JOINT_TRAJECTORY.value)
#: Command interfaces the arm joints offer in urdf/sitebot.ros2_control.xacro.
ARM_INTERFACES: tuple[str, ...] = ("position", "velocity")

#: joint_state_broadcaster's topic, relative (namespaced with the controller manager).
JOINT_STATES_TOPIC = "joint_states"

_TOPIC_SUFFIX = {
    ControllerType.FORWARD_COMMAND: "commands",
    ControllerType.JOINT_TRAJECTORY: "joint_trajectory",
    ControllerType.DIFF_DRIVE: "cmd_vel",
}


def controller_topic(controller_name: str, controller_type: str | ControllerType) -> str:
    """The command topic of controller ``controller_name`` of ``controller_type``.

    Relative (``arm_controller/commands``) unless the name is absolute, so a robot
    namespace applies, as it does to the controller's own ``~/commands``.
    """
    ctype = ControllerType(controller_type)
    if ctype is ControllerType.JOINT_STATE_BROADCASTER:
        return JOINT_STATES_TOPIC
    name = controller_name.strip()
    if not name or name.strip("/") == "":
        raise ContractError("a controller name must not be empty")
    return f"{name.rstrip('/')}/{_TOPIC_SUFFIX[ctype]}"


class ContractError(ValueError):
    """A configuration that cannot satisfy a controller's topic contract."""


class MissingJointError(ContractError):
    """A joint the kernel needs is absent from a JointState message."""

    def __init__(self, joint: str, available: Sequence[str]) -> None:
        self.joint = joint
        super().__init__(f"joint_states has no joint '{joint}' (it has: "
                         f"{', '.join(available) or 'none'})")


def _check_names(names: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    if not names:
        raise ContractError(f"{what}: no joints")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ContractError(f"{what}: duplicate joint(s) {', '.join(dup)}")
    return names


def _permutation(source: Sequence[str], target: Sequence[str], what: str) -> np.ndarray:
    """``idx`` such that ``values_in_source_order[idx]`` is in ``target`` order."""
    index = {n: i for i, n in enumerate(source)}
    missing = [n for n in target if n not in index]
    if missing:
        raise ContractError(f"{what}: joint(s) {', '.join(missing)} are not driven by the "
                            f"control loop (its joints: {', '.join(source)})")
    return np.array([index[n] for n in target], dtype=np.intp)


# ====================================================================== arm commands


class ForwardCommandContract:
    """Commands for a ``forward_command_controller`` with ``joints`` and ``interface_name``.

    :param kernel_joints: the kernel's joint order (the order of ``KernelOutput`` arrays).
    :param controller_joints: the controller's ``joints`` parameter, in its order; each must
        be a kernel joint (a controller joint the loop does not drive would need a value the
        loop does not have: refused here, at configuration, not dropped at run time).
    :param interface: ``position`` or ``velocity`` (``effort`` is accepted for completeness;
        sitebot's URDF offers no effort command interface).

    :meth:`build` always returns exactly ``len(controller_joints)`` values, so the loop can
    never send a message the controller would drop.
    """

    FIELDS = {"position": "position", "velocity": "velocity", "effort": "effort"}

    def __init__(self, kernel_joints: Sequence[str], controller_joints: Sequence[str],
                 interface: str) -> None:
        self.kernel_joints = _check_names(kernel_joints, "kernel joints")
        self.joints = _check_names(controller_joints, "forward_command_controller joints")
        if interface not in self.FIELDS:
            raise ContractError(f"forward_command_controller interface_name '{interface}' "
                                f"is not supported; accepted: {', '.join(self.FIELDS)}")
        self.interface = interface
        self._field = self.FIELDS[interface]
        self._idx = _permutation(self.kernel_joints, self.joints,
                                 "forward_command_controller joints")
        self._buf = np.zeros(len(self.joints))

    @property
    def length(self) -> int:
        """The only message length the controller accepts."""
        return len(self.joints)

    def build(self, out: Any) -> np.ndarray:
        """The command values (controller order) from a ``KernelOutput`` (reused buffer)."""
        src = np.asarray(getattr(out, self._field), dtype=np.float64)
        np.take(src, self._idx, out=self._buf)
        return self._buf

    def accepts(self, data: Sequence[float]) -> bool:
        """What the real controller checks before applying a message: its length."""
        return len(data) == len(self.joints)


@dataclass(frozen=True)
class TrajectoryPoint:
    """One JointTrajectory point in a controller's joint order."""

    joint_names: tuple[str, ...]
    positions: tuple[float, ...]
    velocities: tuple[float, ...]
    time_from_start_s: float


class TrajectoryCommandContract:
    """Streaming commands for a ``joint_trajectory_controller``.

    The kernel stays the authority on timing, limits, speed scale and stops; each tick the
    loop sends a one-point trajectory that reaches the kernel's setpoint ``horizon_s``
    ahead (header stamp zero: start now).  Each message replaces the previous one, so when
    the loop stops publishing the controller settles on the last point and holds it
    (Jazzy: ``allow_nonzero_velocity_at_trajectory_end`` is false by default, so the point
    velocity is zero at the end of the horizon).

    The point is the kernel's position setpoint extrapolated by its setpoint velocity
    over the horizon, so the controller's interpolation from its current state lands
    where the kernel will be at the end of the horizon.
    """

    def __init__(self, kernel_joints: Sequence[str], controller_joints: Sequence[str],
                 horizon_s: float, pos_min: Sequence[float] | None = None,
                 pos_max: Sequence[float] | None = None) -> None:
        self.kernel_joints = _check_names(kernel_joints, "kernel joints")
        self.joints = _check_names(controller_joints, "joint_trajectory_controller joints")
        if not (math.isfinite(horizon_s) and horizon_s > 0.0):
            raise ContractError(f"trajectory horizon {horizon_s!r} s must be > 0")
        self.horizon_s = float(horizon_s)
        self._idx = _permutation(self.kernel_joints, self.joints,
                                 "joint_trajectory_controller joints")
        n = len(self.kernel_joints)
        self._lo = np.full(n, -np.inf) if pos_min is None else np.asarray(pos_min, float)
        self._hi = np.full(n, np.inf) if pos_max is None else np.asarray(pos_max, float)

    def build(self, out: Any, moving: bool = True) -> TrajectoryPoint:
        """The point to send for this tick.  ``moving`` False (a stop, invalid input):
        the setpoint itself, no extrapolation."""
        q = np.asarray(out.position, dtype=np.float64)
        if moving:
            qd = np.asarray(out.setpoint_velocity, dtype=np.float64)
            q = np.clip(q + qd * self.horizon_s, self._lo, self._hi)
        q = q[self._idx]
        return TrajectoryPoint(self.joints, tuple(q.tolist()), (0.0,) * len(self.joints),
                               self.horizon_s)

    def accepts(self, joint_names: Sequence[str], n_positions: int) -> bool:
        """What the real controller checks: known joint names, matching lengths, a point."""
        return (n_positions == len(joint_names) and len(joint_names) > 0
                and set(joint_names) <= set(self.joints))


# ====================================================================== base commands


class DiffDriveContract:
    """Commands for a ``diff_drive_controller``: (v [m/s], w [rad/s]) from the kernel's
    ``base_velocity`` (already limited, scaled and ramped by the kernel)."""

    def build(self, out: Any) -> tuple[float, float]:
        v, w = (float(x) for x in np.asarray(out.base_velocity, dtype=np.float64)[:2])
        if not (math.isfinite(v) and math.isfinite(w)):
            return 0.0, 0.0          # never forward a non-finite command
        return v, w


def diff_drive_wheel_velocities(v_mps: float, w_radps: float, wheel_separation_m: float,
                                wheel_radius_m: float) -> tuple[float, float]:
    """(left, right) wheel speeds [rad/s] for a body twist, as diff_drive_controller
    computes them (multipliers 1)."""
    half = 0.5 * wheel_separation_m
    return (v_mps - w_radps * half) / wheel_radius_m, (v_mps + w_radps * half) / wheel_radius_m


# ====================================================================== state


@dataclass
class JointStateSample:
    """The latest joint state in the kernel's order (arrays reused between messages).

    ``stamp_s`` is the message's header stamp (0 when unset), ``received_s`` the time it
    arrived on the loop's clock.
    """

    q: np.ndarray
    qd: np.ndarray
    wheel_q: np.ndarray
    wheel_qd: np.ndarray
    stamp_s: float = 0.0
    received_s: float = -math.inf
    valid: bool = False

    def age_s(self, now_s: float) -> float:
        """Age at ``now_s``, from the earlier of stamp and arrival when the stamp is set:
        a delayed message counts as old as its stamp, and a stamp from a clock ahead of
        ours cannot make it look fresher than its arrival.  (A loop and a controller
        manager on different clocks, one with ``use_sim_time`` and one without, therefore
        see every state as stale: the robot holds, and the diagnostics show the age.)"""
        if not self.valid:
            return math.inf
        t = self.received_s
        if self.stamp_s > 0.0:
            t = min(t, self.stamp_s)
        return now_s - t

    def is_stale(self, now_s: float, max_age_s: float) -> bool:
        return not self.valid or self.age_s(now_s) > max_age_s


class JointStateMapper:
    """Maps JointState messages (any joint order, extra joints allowed) to the kernel's
    arm order and the (left, right) wheel order.

    The index permutation is cached per distinct name list, so a broadcaster that always
    sends the same order costs one tuple comparison per message.

    :meth:`update` raises :class:`MissingJointError` naming the first missing joint, and
    :class:`ContractError` for arrays shorter than the name list; the sample then stays
    as it was (and grows stale).
    """

    def __init__(self, arm_joints: Sequence[str], wheel_joints: Sequence[str]) -> None:
        self.arm_joints = _check_names(arm_joints, "kernel joints")
        self.wheel_joints = _check_names(wheel_joints, "wheel joints")
        if len(self.wheel_joints) != 2:
            raise ContractError(f"expected 2 wheel joints (left, right), got "
                                f"{len(self.wheel_joints)}")
        n = len(self.arm_joints)
        self.sample = JointStateSample(np.full(n, np.nan), np.full(n, np.nan),
                                       np.full(2, np.nan), np.full(2, np.nan))
        self._names: tuple[str, ...] | None = None
        self._arm_idx = np.zeros(n, dtype=np.intp)
        self._wheel_idx = np.zeros(2, dtype=np.intp)

    def _index(self, names: Sequence[str]) -> None:
        names = tuple(names)
        if names == self._names:
            return
        index = {n: i for i, n in enumerate(names)}
        for j in self.arm_joints + self.wheel_joints:
            if j not in index:
                raise MissingJointError(j, names)
        self._arm_idx = np.array([index[j] for j in self.arm_joints], dtype=np.intp)
        self._wheel_idx = np.array([index[j] for j in self.wheel_joints], dtype=np.intp)
        self._names = names

    def update(self, names: Sequence[str], position: Sequence[float],
               velocity: Sequence[float], stamp_s: float, received_s: float) -> JointStateSample:
        """Take one message's content; non-finite values are kept (the kernel's
        INVALID_INPUT path handles them) but a missing velocity array is an error."""
        self._index(names)
        n = len(self._names or ())
        pos = np.asarray(position, dtype=np.float64)
        vel = np.asarray(velocity, dtype=np.float64)
        if pos.shape[0] != n:
            raise ContractError(f"joint_states has {n} names but {pos.shape[0]} positions")
        if vel.shape[0] != n:
            raise ContractError(f"joint_states has {n} names but {vel.shape[0]} velocities "
                                "(the control loop needs measured velocities)")
        s = self.sample
        np.take(pos, self._arm_idx, out=s.q)
        np.take(vel, self._arm_idx, out=s.qd)
        np.take(pos, self._wheel_idx, out=s.wheel_q)
        np.take(vel, self._wheel_idx, out=s.wheel_qd)
        s.stamp_s = float(stamp_s)
        s.received_s = float(received_s)
        s.valid = True
        return s


# ====================================================================== controllers file

#: A controller is a node: its name follows the ROS node-name rule.
_NODE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Parameter names (last component) that are limits, > 0 (``.nan``: no limit, as in
#: ros2_controllers' speed limiter), and lower limits, <= 0 (``.nan`` likewise).  The
#: diff_drive_controller's signs (Jazzy 4.42, its parameter validators): max_deceleration
#: and max_acceleration_reverse <= 0, max_deceleration_reverse >= 0.
_UPPER_LIMITS = ("max_velocity", "max_acceleration", "max_deceleration_reverse", "max_jerk",
                 "max_effort", "effort")
_LOWER_LIMITS = ("min_velocity", "min_acceleration", "min_deceleration", "min_jerk",
                 "max_deceleration", "max_acceleration_reverse")
#: Parameters that are finite and > 0.
_POSITIVE = ("wheel_separation", "wheel_radius", "wheel_separation_multiplier",
             "left_wheel_radius_multiplier", "right_wheel_radius_multiplier",
             "publish_rate", "cmd_vel_timeout", "state_publish_rate", "action_monitor_rate",
             "update_rate")
#: Parameters holding names (joints, frames, interfaces): each a printable name.
_NAMES = ("joints", "left_wheel_names", "right_wheel_names", "odom_frame_id",
          "base_frame_id", "interface_name", "command_interfaces", "state_interfaces",
          "command_joints", "tf_frame_prefix")


def check_controllers_file(entries: Mapping[str, Mapping[str, Any]],
                           file: str | Path | None = None) -> tuple[str, ...]:
    """Check a ros2_control controllers file (``{section: {parameter: value}}`` as
    :func:`sitebot.config.params.load_params_file` returns it, with a
    ``controller_manager`` section) and return the controller names it declares.

    Checked: ``update_rate`` a positive integer; every declared controller
    (``<name>.type``) has a ROS node name and a type like ``pkg/Class``; every other
    section configures a declared controller; every number is finite (``.nan`` only as
    "no limit" on a velocity, acceleration or jerk limit); upper limits (``max_velocity``,
    ``max_acceleration``, ``effort``, ...) are > 0 and lower limits <= 0; wheel geometry,
    rates and timeouts are > 0; joint, frame and interface names are printable names.

    :raises ConfigError: naming *file* and the key (``section.ros__parameters.name``).
    """
    def where(section: str, key: str) -> str:
        return f"{section}.ros__parameters.{key}"

    def node_of(section: str) -> str:
        return section.strip("/").split("/")[-1] if section.strip("/") else section

    cm_section = next(s for s in entries if node_of(s) == "controller_manager")
    declared: dict[str, str] = {}
    for key, value in entries[cm_section].items():
        if key == "update_rate" and (isinstance(value, bool) or not isinstance(value, int)
                                     or value <= 0):
            raise ConfigError(f"update_rate must be a positive integer [Hz], got {value!r}",
                              file, where(cm_section, key))
        if key.endswith(".type"):
            name = key[: -len(".type")]
            if not _NODE_NAME_RE.match(name):
                raise ConfigError(f"controller name {name!r} is not a ROS node name "
                                  "(a letter or '_', then letters, digits or '_')", file,
                                  where(cm_section, key))
            if not isinstance(value, str) or "/" not in value or not value.isprintable():
                raise ConfigError(f"controller '{name}' needs a type like "
                                  f"'diff_drive_controller/DiffDriveController', got {value!r}",
                                  file, where(cm_section, key))
            declared[name] = value
    for section, params in entries.items():
        node = node_of(section)
        if node != "controller_manager" and node not in declared:
            raise ConfigError(f"section '{node}' configures no controller the "
                              f"controller_manager declares; declared: "
                              f"{', '.join(sorted(declared)) or 'none'}", file, section)
        for key, value in params.items():
            _check_controller_param(key, value, file, where(section, key))
    return tuple(sorted(declared))


def _check_controller_param(key: str, value: Any, file: str | Path | None,
                            where: str) -> None:
    last = key.rsplit(".", 1)[-1]
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            if math.isnan(v) and last in _UPPER_LIMITS + _LOWER_LIMITS and last != "effort":
                continue                          # .nan: no limit
            raise ConfigError(f"{last} must be a finite number, got {v!r}", file, where)
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        if last in _UPPER_LIMITS + _POSITIVE and not (number and v > 0):
            raise ConfigError(f"{last} must be a number > 0, got {v!r}", file, where)
        if last in _LOWER_LIMITS and not (number and v <= 0):
            raise ConfigError(f"{last} must be a number <= 0 (a lower limit), got {v!r}",
                              file, where)
        if last in _NAMES:
            try:
                check_name(where, last, v)
            except ValueError:
                raise ConfigError(f"{v!r} must be a non-empty printable name (no NUL or "
                                  "control characters)", file, where) from None
        elif isinstance(v, str) and not v.isprintable():
            raise ConfigError(f"{v[:40]!r} must not contain NUL or control characters",
                              file, where)
