"""The control kernel: the implementation selector, and the configuration of a robot's kernel.

``ControlKernel`` is the C kernel (``sitebot.control._control_kernel``) when the extension imports,
else the pure-Python reference (:mod:`sitebot.control.kernel_py`);
``SITEBOT_PURE_PYTHON=1`` forces the reference.  ``IMPLEMENTATION`` says which one it is
(``'c'`` or ``'python'``).  Both have exactly the API of ``docs/control.md``.  The shared
types live in :mod:`sitebot.control.types` (re-exported here); this module imports both
implementations, neither imports it.

Units: positions [rad] or [m], velocities [rad/s] or [m/s], accelerations [rad/s^2] or
[m/s^2], efforts [N*m] or [N], times [s].
"""
from __future__ import annotations

import math
import os
from dataclasses import fields
from typing import Any, Sequence

import numpy as np

from sitebot.control.kernel_py import ControlKernel as PyControlKernel
from sitebot.control.types import (MAX_JOINTS_C, PER_JOINT_FIELDS, Interface, KernelConfig,
                                   KernelOutput, Reject, Status, _ext)

__all__ = ["ControlKernel", "PyControlKernel", "CControlKernel", "RtLoop", "IMPLEMENTATION",
           "kernel_joint_names", "kernel_config_from_description",
           # re-exported from sitebot.control.types
           "Status", "Reject", "Interface", "KernelConfig", "KernelOutput", "MAX_JOINTS_C"]


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
        if key in PER_JOINT_FIELDS and np.isscalar(value):
            value = (float(value),) * int(overrides.get("n_joints", n))
        values[key] = value
    return KernelConfig(**values)


# ---------------------------------------------------------------------------------------
# implementation selection
# ---------------------------------------------------------------------------------------

def _as_f64(name: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        return np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"argument '{name}' must be an array of numbers, "
                        f"got {type(value).__name__}") from None


class _ArrayLikeTrajectory:
    """``set_trajectory`` taking array-likes: converted to contiguous float64 here (the
    binding takes float64 buffers only), then the C method, which calls the core."""

    __slots__ = ()

    def set_trajectory(self, times_s: Any, positions: Any, velocities: Any = None,
                       accelerations: Any = None, start_time_s: float | None = None) -> Reject:
        return super().set_trajectory(  # type: ignore[misc]
            _as_f64("times_s", times_s), _as_f64("positions", positions),
            _as_f64("velocities", velocities), _as_f64("accelerations", accelerations),
            start_time_s)


if _ext is not None:
    class CControlKernel(_ArrayLikeTrajectory, _ext.ControlKernel):
        """The C kernel (``sitebot.control._control_kernel``) with array-like arguments converted
        to contiguous float64 for the non-periodic calls; ``step`` goes straight to C."""

        __slots__ = ()

        def reset(self, positions: Sequence[float] | np.ndarray) -> None:
            super().reset(_as_f64("positions", positions))

    class RtLoop(_ArrayLikeTrajectory, _ext.RtLoop):
        """The C fixed-rate loop (``sitebot.control._control_kernel.RtLoop``): its setpoint
        calls go to the kernel's C core under the kernel's lock (array-likes converted as
        for :class:`CControlKernel`)."""

        __slots__ = ()
else:
    CControlKernel = None  # type: ignore[assignment,misc]
    RtLoop = None  # type: ignore[assignment,misc]

if _ext is not None and os.environ.get("SITEBOT_PURE_PYTHON", "") != "1":
    ControlKernel = CControlKernel
    IMPLEMENTATION = "c"
else:
    ControlKernel = PyControlKernel  # type: ignore[misc]
    IMPLEMENTATION = "python"
