"""The control kernel's shared types and the implementation selector.

``ControlKernel`` is the C kernel (``sitebot.control._control_kernel``) when the extension imports,
else the pure-Python reference (:mod:`sitebot.control.kernel_py`);
``SITEBOT_PURE_PYTHON=1`` forces the reference.  ``IMPLEMENTATION`` says which one it is
(``'c'`` or ``'python'``).  Both have exactly the API of ``docs/control.md``.

Units: positions [rad] or [m], velocities [rad/s] or [m/s], accelerations [rad/s^2] or
[m/s^2], efforts [N*m] or [N], times [s].
"""
from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np


__all__ = [
    "Status",
    "Reject",
    "Interface",
    "KernelConfig",
    "KernelOutput",
    "ControlKernel",
    "PyControlKernel",
    "CControlKernel",
    "RtLoop",
    "IMPLEMENTATION",
    "kernel_joint_names",
    "kernel_config_from_description",
    "MAX_JOINTS_C",
]

#: the most joints the C kernel takes (fixed-capacity arrays in ``control_kernel.h``)
MAX_JOINTS_C = 32


class Status(enum.IntEnum):
    """What the kernel did this tick (a higher value takes priority)."""

    OK = 0
    STOPPING = 1          # category 1 stop or heartbeat loss: decelerating
    STOPPED = 2           # held after a stop
    COMMAND_TIMEOUT = 3   # base command stale: wheels braked
    HEARTBEAT_TIMEOUT = 4  # supervisor heartbeat stale: stop (category 1 behaviour)
    INVALID_INPUT = 5     # a non-finite measurement or command this tick: stop
    LIMIT_VIOLATION = 6   # a measured position outside its limits: hold, do not push further


class Reject(enum.IntEnum):
    """Result of ``set_trajectory`` / ``set_base_command``."""

    ACCEPTED = 0
    WRONG_SIZE = 1
    NON_FINITE = 2
    NON_MONOTONIC_TIME = 3
    OUT_OF_LIMITS = 4
    TOO_MANY_POINTS = 5
    EMPTY = 6


class Interface(enum.IntEnum):
    """What the backend takes for the arm joints."""

    POSITION = 0
    VELOCITY = 1
    EFFORT = 2


_PER_JOINT = ("pos_min", "pos_max", "vel_max", "acc_max", "effort_max", "kp", "kd")
_POSITIVE = ("wheel_radius_m", "wheel_separation_m", "wheel_vel_max", "base_lin_acc_max",
             "base_ang_acc_max", "base_lin_vel_max", "base_ang_vel_max", "cmd_timeout_s",
             "heartbeat_timeout_s")


@dataclass(frozen=True)
class KernelConfig:
    """Everything the kernel is built from; validated on construction.

    Per-joint fields are tuples of ``n_joints`` floats, in the kernel's joint order.
    ``pos_min``/``pos_max`` [rad | m] may be infinite (continuous joints); ``vel_max``
    [rad/s | m/s], ``acc_max`` [rad/s^2 | m/s^2] and ``effort_max`` [N*m | N] are finite
    and > 0; ``kp``, ``kd`` >= 0 (velocity interface: kp [1/s]; effort interface: kp
    [N*m/rad], kd [N*m*s/rad]).  Base: ``wheel_radius_m``, ``wheel_separation_m`` [m],
    ``wheel_vel_max`` [rad/s], ``base_lin_vel_max`` [m/s], ``base_ang_vel_max`` [rad/s],
    ``base_lin_acc_max`` [m/s^2], ``base_ang_acc_max`` [rad/s^2], ``cmd_timeout_s``,
    ``heartbeat_timeout_s`` [s], all > 0.  ``max_points``: trajectory capacity.
    ``limit_margin`` [rad | m] (addition to the contract, default 0): a measured position
    counts as outside its limits (LIMIT_VIOLATION) only beyond this margin.

    :raises ValueError: naming the field, what it was and what is accepted.
    """

    n_joints: int
    pos_min: tuple[float, ...]
    pos_max: tuple[float, ...]
    vel_max: tuple[float, ...]
    acc_max: tuple[float, ...]
    effort_max: tuple[float, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    interface: Interface
    wheel_radius_m: float
    wheel_separation_m: float
    wheel_vel_max: float
    base_lin_acc_max: float
    base_ang_acc_max: float
    base_lin_vel_max: float
    base_ang_vel_max: float
    cmd_timeout_s: float
    heartbeat_timeout_s: float
    max_points: int = 256
    limit_margin: float = 0.0

    def __post_init__(self) -> None:
        n = self.n_joints
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"KernelConfig.n_joints must be an integer >= 1, got {n!r}")
        object.__setattr__(self, "n_joints", int(n))
        for name in _PER_JOINT:
            raw = getattr(self, name)
            try:
                values = tuple(float(v) for v in raw)
            except (TypeError, ValueError):
                raise ValueError(f"KernelConfig.{name} must be a sequence of {n} numbers, "
                                 f"got {raw!r}") from None
            if len(values) != n:
                raise ValueError(f"KernelConfig.{name} has {len(values)} values; "
                                 f"n_joints is {n}")
            if any(math.isnan(v) for v in values):
                raise ValueError(f"KernelConfig.{name} contains NaN: {values}")
            object.__setattr__(self, name, values)
        for i, (lo, hi) in enumerate(zip(self.pos_min, self.pos_max)):
            if not lo < hi:
                raise ValueError(f"KernelConfig.pos_min[{i}] ({lo}) must be < pos_max[{i}] ({hi})")
        for name in ("vel_max", "acc_max", "effort_max"):
            for i, v in enumerate(getattr(self, name)):
                if not (math.isfinite(v) and v > 0):
                    raise ValueError(f"KernelConfig.{name}[{i}] must be finite and > 0, got {v}")
        for name in ("kp", "kd"):
            for i, v in enumerate(getattr(self, name)):
                if not (math.isfinite(v) and v >= 0):
                    raise ValueError(f"KernelConfig.{name}[{i}] must be finite and >= 0, got {v}")
        try:
            object.__setattr__(self, "interface", Interface(self.interface))
        except ValueError:
            raise ValueError(f"KernelConfig.interface must be one of "
                             f"{', '.join(m.name for m in Interface)}, "
                             f"got {self.interface!r}") from None
        for name in _POSITIVE:
            raw = getattr(self, name)
            try:
                v = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"KernelConfig.{name} must be a number, got {raw!r}") from None
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"KernelConfig.{name} must be finite and > 0, got {raw!r}")
            object.__setattr__(self, name, v)
        mp = self.max_points
        if isinstance(mp, bool) or not isinstance(mp, (int, np.integer)) or not 1 <= mp <= 100_000:
            raise ValueError(f"KernelConfig.max_points must be an integer in [1, 100000], "
                             f"got {mp!r}")
        object.__setattr__(self, "max_points", int(mp))
        try:
            margin = float(self.limit_margin)
        except (TypeError, ValueError):
            margin = math.nan
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"KernelConfig.limit_margin must be finite and >= 0, "
                             f"got {self.limit_margin!r}")
        object.__setattr__(self, "limit_margin", margin)


class KernelOutput:
    """The kernel's outputs, preallocated once and rewritten by every ``step``.

    Arrays (float64 views into one buffer, reused every tick): ``position``, ``velocity``,
    ``effort``, ``position_error`` (q_d - q), ``setpoint_velocity`` (n,); ``wheel_velocity``
    (2,) [rad/s] (left, right); ``base_velocity`` (2,) = commanded (v [m/s], w [rad/s]) after
    limits; ``odometry`` (5,) = x [m], y [m], yaw [rad], v [m/s], w [rad/s].  Scalars:
    ``trajectory_time_s``, ``trajectory_active``, ``status``.
    """

    __slots__ = ("n_joints", "_buf", "position", "velocity", "effort", "position_error",
                 "setpoint_velocity", "wheel_velocity", "base_velocity", "odometry")

    def __init__(self, config: KernelConfig | int) -> None:
        n = config.n_joints if isinstance(config, KernelConfig) else int(config)
        if n < 1:
            raise ValueError(f"KernelOutput needs n_joints >= 1, got {n}")
        self.n_joints = n
        # layout shared with the C kernel (control_kernel.h, CK_OUT_*)
        self._buf = np.zeros(5 * n + 12, dtype=np.float64)
        b = self._buf
        self.position = b[0:n]
        self.velocity = b[n:2 * n]
        self.effort = b[2 * n:3 * n]
        self.position_error = b[3 * n:4 * n]
        self.setpoint_velocity = b[4 * n:5 * n]
        self.wheel_velocity = b[5 * n:5 * n + 2]
        self.base_velocity = b[5 * n + 2:5 * n + 4]
        self.odometry = b[5 * n + 4:5 * n + 9]

    @property
    def trajectory_time_s(self) -> float:
        """Trajectory time tau [s] of the active trajectory (0 when there is none)."""
        return float(self._buf[5 * self.n_joints + 9])

    @property
    def trajectory_active(self) -> bool:
        """True while a trajectory is running or waiting for its start time."""
        return bool(self._buf[5 * self.n_joints + 10] != 0.0)

    @property
    def status(self) -> Status:
        return Status(int(self._buf[5 * self.n_joints + 11]))

    def copy(self) -> "KernelOutput":
        other = KernelOutput(self.n_joints)
        other._buf[:] = self._buf
        return other

    def __repr__(self) -> str:
        return (f"KernelOutput(status={self.status.name}, position={self.position.tolist()}, "
                f"wheel_velocity={self.wheel_velocity.tolist()}, "
                f"trajectory_time_s={self.trajectory_time_s:.6f})")


# ---------------------------------------------------------------------------------------
# configuration from the robot description
# ---------------------------------------------------------------------------------------

def kernel_joint_names(desc: Any) -> tuple[str, ...]:
    """The kernel's joint order for ``desc``: the arm joints, then the gripper joints that
    mimic nothing (sitebot: 6 + 1 = 7)."""
    grip = tuple(j for j in desc.gripper_joints if desc.joints[j].mimic is None)
    return tuple(desc.arm_joints) + grip


def kernel_config_from_description(desc: Any, **overrides: Any) -> KernelConfig:
    """A :class:`KernelConfig` for a :class:`sitebot.description.urdf.RobotDescription`.

    Joints: :func:`kernel_joint_names`; position, velocity and effort limits from the URDF
    (continuous joints: infinite position limits); ``acc_max`` = 2 * vel_max per second;
    velocity interface with kp = 10 1/s (effort interface, if overridden: kp = 2 *
    effort_max per rad, kd = 0.2 * effort_max per rad/s).  Base: wheel geometry from the
    description, 1.0 m/s, 1.5 rad/s, 1.0 m/s^2, 2.0 rad/s^2, wheel speed limit from the wheel
    joints; command and heartbeat timeouts 0.5 s; limit margin 0.005 rad|m.

    ``overrides`` replace any field; per-joint fields take a scalar (broadcast) or a
    sequence of n_joints values.

    :raises ValueError: an unknown override (the valid names are listed) or a bad value.
    """
    names = kernel_joint_names(desc)
    infos = [desc.joints[j] for j in names]
    n = len(names)
    valid = {f.name for f in fields(KernelConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"unknown KernelConfig field(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(sorted(valid))}")

    def lim(v: float | None, default: float) -> float:
        return float(v) if v is not None else default

    vel = tuple(lim(j.velocity_limit, 1.0) for j in infos)
    eff = tuple(lim(j.effort_limit, 10.0) for j in infos)
    interface = Interface(overrides.get("interface", Interface.VELOCITY))
    if interface is Interface.EFFORT:
        kp = tuple(2.0 * e for e in eff)
        kd = tuple(0.2 * e for e in eff)
    else:
        kp = (10.0,) * n
        kd = (0.0,) * n
    wheel_limits = [desc.joints[w].velocity_limit for w in desc.wheel_joints]
    wheel_vel_max = min((float(w) for w in wheel_limits if w), default=20.0)
    values: dict[str, Any] = dict(
        n_joints=n,
        pos_min=tuple(lim(j.lower, -math.inf) for j in infos),
        pos_max=tuple(lim(j.upper, math.inf) for j in infos),
        vel_max=vel,
        acc_max=tuple(2.0 * v for v in vel),
        effort_max=eff,
        kp=kp,
        kd=kd,
        interface=interface,
        wheel_radius_m=float(desc.wheel_radius_m),
        wheel_separation_m=float(desc.wheel_separation_m),
        wheel_vel_max=wheel_vel_max,
        base_lin_acc_max=1.0,
        base_ang_acc_max=2.0,
        base_lin_vel_max=1.0,
        base_ang_vel_max=1.5,
        cmd_timeout_s=0.5,
        heartbeat_timeout_s=0.5,
        max_points=256,
        limit_margin=0.005,
    )
    for key, value in overrides.items():
        if key in _PER_JOINT and np.isscalar(value):
            value = (float(value),) * int(overrides.get("n_joints", n))
        values[key] = value
    return KernelConfig(**values)


# ---------------------------------------------------------------------------------------
# implementation selection (kernel_py imports the types above, so this comes last)
# ---------------------------------------------------------------------------------------

from sitebot.control.kernel_py import ControlKernel as PyControlKernel  # noqa: E402

try:
    from sitebot.control import _control_kernel as _ext
except ImportError:          # extension not built: the reference is the kernel
    _ext = None


def _as_f64(name: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        return np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"argument '{name}' must be an array of numbers, "
                        f"got {type(value).__name__}") from None


if _ext is not None:
    class CControlKernel(_ext.ControlKernel):
        """The C kernel (``sitebot.control._control_kernel``) with array-like arguments converted
        to contiguous float64 for the non-periodic calls; ``step`` goes straight to C."""

        __slots__ = ()

        def set_trajectory(self, times_s: Any, positions: Any, velocities: Any = None,
                           accelerations: Any = None, start_time_s: float | None = None
                           ) -> Reject:
            return super().set_trajectory(
                _as_f64("times_s", times_s), _as_f64("positions", positions),
                _as_f64("velocities", velocities), _as_f64("accelerations", accelerations),
                start_time_s)

        def reset(self, positions: Sequence[float] | np.ndarray) -> None:
            super().reset(_as_f64("positions", positions))

    RtLoop = _ext.RtLoop
else:
    CControlKernel = None  # type: ignore[assignment,misc]
    RtLoop = None  # type: ignore[assignment,misc]

if _ext is not None and os.environ.get("SITEBOT_PURE_PYTHON", "") != "1":
    ControlKernel = CControlKernel
    IMPLEMENTATION = "c"
else:
    ControlKernel = PyControlKernel  # type: ignore[misc]
    IMPLEMENTATION = "python"
