"""The control kernel's types: what the selector (:mod:`sitebot.control.kernel`), the
pure-Python reference (:mod:`sitebot.control.kernel_py`), the loop drivers and the ROS side
share.  Contract: ``docs/control.md``.

One source for the numbers: the C header ``native/control_kernel.h``.  When the extension
``sitebot.control._control_kernel`` is built, :class:`Status`, :class:`Reject` and
:class:`Interface` *are* the IntEnums it builds from the header's X-macro lists (its methods
return their members), and :class:`KernelOutput` takes its layout from the extension's
``output_layout(n)`` (the header's ``CK_OUT_*``).  Without the extension (the pure-Python
reference must run on its own) the tables below stand in; the header is not part of an
installed package, so they are not parsed from it: ``tests/control/test_control_kernel.py`` checks
that they equal what the extension exports, and that ``sitebot.types.StopCategory`` equals
the header's stop categories.

Units: positions [rad] or [m], velocities [rad/s] or [m/s], accelerations [rad/s^2] or
[m/s^2], efforts [N*m] or [N], times [s].
"""
from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass

import numpy as np

try:
    from sitebot.control import _control_kernel as _ext
except ImportError:          # extension not built: the fallback tables below
    _ext = None

__all__ = [
    "Status",
    "Reject",
    "Heartbeat",
    "Interface",
    "Latch",
    "KernelConfig",
    "KernelOutput",
    "output_layout",
    "PER_JOINT_FIELDS",
    "MAX_JOINTS_C",
    "MAX_POINTS",
    "SPEED_SLACK",
]

# ---------------------------------------------------------------------------------------
# fallback tables (used only without the extension; tested equal to control_kernel.h)
# ---------------------------------------------------------------------------------------

#: (name, value) of Status, what the kernel did this tick (a higher value takes priority)
FALLBACK_STATUS = (
    ("OK", 0),
    ("STOPPING", 1),           # category 1 stop or heartbeat loss: decelerating
    ("STOPPED", 2),            # held after a stop
    ("COMMAND_TIMEOUT", 3),    # base command stale: wheels braked
    ("HEARTBEAT_TIMEOUT", 4),  # supervisor heartbeat stale: stop (category 1 behaviour)
    ("INVALID_INPUT", 5),      # a non-finite measurement or command this tick: stop
    ("LIMIT_VIOLATION", 6),    # a measured position outside its limits: hold
)
#: (name, value) of Reject, the result of set_trajectory / set_base_command
FALLBACK_REJECT = (("ACCEPTED", 0), ("WRONG_SIZE", 1), ("NON_FINITE", 2),
                   ("NON_MONOTONIC_TIME", 3), ("OUT_OF_LIMITS", 4), ("TOO_MANY_POINTS", 5),
                   ("EMPTY", 6))
#: (name, value) of Interface, what the backend takes for the arm joints
FALLBACK_INTERFACE = (("POSITION", 0), ("VELOCITY", 1), ("EFFORT", 2))
#: (name, value) of Heartbeat, the result of set_supervisor
FALLBACK_HEARTBEAT = (("ACCEPTED", 0), ("RELEASED", 1), ("FOREIGN", 2), ("SEQUENCE", 3))
#: (name, bit) of Latch, why the stop latch is closed (0: open)
FALLBACK_LATCH = (("START", 1), ("STOP", 2), ("HEARTBEAT", 4), ("FOREIGN", 8),
                  ("SEQUENCE", 16))
#: (field, offset = a * n + b, length = c * n + d) of the output buffer, as (a, b, c, d)
FALLBACK_LAYOUT = (
    ("position", (0, 0, 1, 0)),
    ("velocity", (1, 0, 1, 0)),
    ("effort", (2, 0, 1, 0)),
    ("position_error", (3, 0, 1, 0)),
    ("setpoint_velocity", (4, 0, 1, 0)),
    ("wheel_velocity", (5, 0, 0, 2)),
    ("base_velocity", (5, 2, 0, 2)),
    ("odometry", (5, 4, 0, 5)),
    ("trajectory_time_s", (5, 9, 0, 1)),
    ("trajectory_active", (5, 10, 0, 1)),
    ("status", (5, 11, 0, 1)),
    ("latch", (5, 12, 0, 1)),
)
FALLBACK_MAX_JOINTS = 32
FALLBACK_MAX_POINTS = 100_000
FALLBACK_SPEED_SLACK = 1e-9


def _int_enum(name: str, table: tuple[tuple[str, int], ...], doc: str) -> type[enum.IntEnum]:
    cls = enum.IntEnum(name, list(table), module=__name__, qualname=name)  # type: ignore[misc]
    cls.__doc__ = doc
    return cls


if _ext is not None:
    Status = _ext.Status
    Reject = _ext.Reject
    Interface = _ext.Interface
    Heartbeat = _ext.Heartbeat
    Latch = _ext.Latch
    #: the most joints the C kernel takes (fixed-capacity arrays in ``control_kernel.h``)
    MAX_JOINTS_C: int = _ext.MAX_JOINTS
    #: the largest trajectory capacity (``KernelConfig.max_points``)
    MAX_POINTS: int = _ext.MAX_POINTS
    #: relative slack of the kernel's segment speed check (|dp| <= vel_max dt (1 + slack))
    SPEED_SLACK: float = _ext.SPEED_SLACK
else:
    Status = _int_enum("Status", FALLBACK_STATUS,
                       "What the kernel did this tick (a higher value takes priority).")
    Reject = _int_enum("Reject", FALLBACK_REJECT,
                       "Result of ``set_trajectory`` / ``set_base_command``.")
    Interface = _int_enum("Interface", FALLBACK_INTERFACE,
                          "What the backend takes for the arm joints.")
    Heartbeat = _int_enum("Heartbeat", FALLBACK_HEARTBEAT, "Result of ``set_supervisor``.")
    Latch = enum.IntFlag("Latch", list(FALLBACK_LATCH), module=__name__,  # type: ignore[misc]
                         qualname="Latch")
    Latch.__doc__ = "Why the stop latch is closed (bits; 0: open)."
    MAX_JOINTS_C = FALLBACK_MAX_JOINTS
    MAX_POINTS = FALLBACK_MAX_POINTS
    SPEED_SLACK = FALLBACK_SPEED_SLACK


@functools.lru_cache(maxsize=64)
def output_layout(n_joints: int) -> dict[str, tuple[int, int]]:
    """``{field: (offset, length)}`` of :class:`KernelOutput`'s buffer for ``n_joints``, and
    ``'size'``: (0, doubles in the buffer)."""
    n = int(n_joints)
    if _ext is not None:
        layout = dict(_ext.output_layout(n))
        layout["size"] = (0, _ext.output_size(n))
        return layout
    layout = {name: (a * n + b, c * n + d) for name, (a, b, c, d) in FALLBACK_LAYOUT}
    layout["size"] = (0, max(off + length for off, length in layout.values()))
    return layout


#: the per-joint fields of KernelConfig (tuples of n_joints values)
PER_JOINT_FIELDS = ("pos_min", "pos_max", "vel_max", "acc_max", "effort_max", "kp", "kd")
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
        for name in PER_JOINT_FIELDS:
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
        if (isinstance(mp, bool) or not isinstance(mp, (int, np.integer))
                or not 1 <= mp <= MAX_POINTS):
            raise ValueError(f"KernelConfig.max_points must be an integer in [1, {MAX_POINTS}], "
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

    Arrays (float64 views into one buffer, reused every tick; layout :func:`output_layout`):
    ``position``, ``velocity``, ``effort``, ``position_error`` (q_d - q),
    ``setpoint_velocity`` (n,); ``wheel_velocity`` (2,) [rad/s] (left, right);
    ``base_velocity`` (2,) = commanded (v [m/s], w [rad/s]) after limits; ``odometry`` (5,)
    = x [m], y [m], yaw [rad], v [m/s], w [rad/s].  Scalars: ``trajectory_time_s``,
    ``trajectory_active``, ``status``, ``latch`` (:class:`Latch` bits; 0: open).
    """

    __slots__ = ("n_joints", "_buf", "position", "velocity", "effort", "position_error",
                 "setpoint_velocity", "wheel_velocity", "base_velocity", "odometry",
                 "_i_time", "_i_active", "_i_status", "_i_latch")

    def __init__(self, config: KernelConfig | int) -> None:
        n = config.n_joints if isinstance(config, KernelConfig) else int(config)
        if n < 1:
            raise ValueError(f"KernelOutput needs n_joints >= 1, got {n}")
        self.n_joints = n
        layout = output_layout(n)
        self._buf = b = np.zeros(layout["size"][1], dtype=np.float64)
        for name in ("position", "velocity", "effort", "position_error", "setpoint_velocity",
                     "wheel_velocity", "base_velocity", "odometry"):
            off, length = layout[name]
            setattr(self, name, b[off:off + length])
        self._i_time = layout["trajectory_time_s"][0]
        self._i_active = layout["trajectory_active"][0]
        self._i_status = layout["status"][0]
        self._i_latch = layout["latch"][0]

    @property
    def trajectory_time_s(self) -> float:
        """Trajectory time tau [s] of the active trajectory (0 when there is none)."""
        return float(self._buf[self._i_time])

    @property
    def trajectory_active(self) -> bool:
        """True while a trajectory is running or waiting for its start time."""
        return bool(self._buf[self._i_active] != 0.0)

    @property
    def status(self) -> Status:
        return Status(int(self._buf[self._i_status]))

    @property
    def latch(self) -> Latch:
        """Why the stop latch is closed after this tick (0: open)."""
        return Latch(int(self._buf[self._i_latch]))

    def copy(self) -> "KernelOutput":
        other = KernelOutput(self.n_joints)
        other._buf[:] = self._buf
        return other

    def __repr__(self) -> str:
        return (f"KernelOutput(status={self.status.name}, position={self.position.tolist()}, "
                f"wheel_velocity={self.wheel_velocity.tolist()}, "
                f"trajectory_time_s={self.trajectory_time_s:.6f})")
