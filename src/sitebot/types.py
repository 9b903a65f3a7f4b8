"""Value types and geometry shared by every layer: the one home of these concepts.

* :class:`Pose2D` (x, y, yaw) and SE(2) composition/inversion; :func:`wrap_angle`.
* Quaternion and rotation conversions in the ROS order (x, y, z, w). General rotations go
  through transforms3d (which orders quaternions w, x, y, z); the planar yaw <-> quaternion
  pair is written out because it runs for every odometry and pose message (see
  ``docs/architecture.md``: transforms3d took about 7x longer per call there).
* :class:`SafetyLevel`, :class:`Mode`, :class:`StopCategory`: the supervisor's state as
  carried by ``sitebot_interfaces/SafetyState`` (levels, modes) and IEC 60204-1 stop
  categories as the control kernel enforces them.

No ROS import here: core and nodes alike use these types.
"""
from __future__ import annotations

import enum
import math
from typing import NamedTuple, Sequence

import numpy as np
from transforms3d import euler as _euler
from transforms3d import quaternions as _quat

__all__ = [
    "Pose2D", "wrap_angle", "se2_compose", "se2_inverse", "se2_apply",
    "yaw_to_quaternion", "quaternion_to_yaw", "rpy_to_quaternion", "quaternion_multiply",
    "axis_angle_quaternion", "rotvec_quaternion", "quaternion_matrix", "matrix_quaternion",
    "rpy_matrix",
    "SafetyLevel", "Mode", "StopCategory", "DiagnosticLevel", "Diagnostic",
]

TWO_PI = 2.0 * math.pi


# ------------------------------------------------------------------------------ angles, SE(2)
def wrap_angle(a: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (a + math.pi) % TWO_PI - math.pi


class Pose2D(NamedTuple):
    """A planar pose: position [m] and heading [rad] of a frame in its parent.

    A NamedTuple, so ``x, y, yaw = pose`` and ``pose[2]`` keep working where a bare 3-tuple
    used to cross a module boundary."""

    x: float
    y: float
    yaw: float

    @classmethod
    def of(cls, pose: Sequence[float]) -> "Pose2D":
        """Any (x, y, yaw) sequence as a Pose2D (floats)."""
        x, y, yaw = pose
        return cls(float(x), float(y), float(yaw))

    def compose(self, other: Sequence[float]) -> "Pose2D":
        """self (+) other: ``other`` given in this pose's frame, expressed in the parent."""
        return se2_compose(self, other)

    def inverse(self) -> "Pose2D":
        return se2_inverse(self)

    def relative(self, other: Sequence[float]) -> "Pose2D":
        """``other`` (in the parent frame) expressed in this pose's frame."""
        return se2_compose(se2_inverse(self), other)

    def distance_to(self, x: float, y: float) -> float:
        """Euclidean distance [m] from this pose's position to (x, y)."""
        return math.hypot(self.x - x, self.y - y)

    def is_finite(self) -> bool:
        return math.isfinite(self.x) and math.isfinite(self.y) and math.isfinite(self.yaw)


def se2_compose(a: Sequence[float], b: Sequence[float]) -> Pose2D:
    """Planar pose composition a (+) b (b given in a's frame); heading wrapped."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return Pose2D(a[0] + c * b[0] - s * b[1], a[1] + s * b[0] + c * b[1], wrap_angle(a[2] + b[2]))


def se2_inverse(a: Sequence[float]) -> Pose2D:
    """The inverse of pose ``a``: a (+) inverse(a) is the identity."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return Pose2D(-c * a[0] - s * a[1], s * a[0] - c * a[1], wrap_angle(-a[2]))


def se2_apply(pose: Sequence[float], xy: np.ndarray) -> np.ndarray:
    """Points (N, 2) given in the frame at ``pose`` -> the parent frame."""
    x, y, th = pose
    c, s = math.cos(th), math.sin(th)
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([x + c * p[:, 0] - s * p[:, 1], y + s * p[:, 0] + c * p[:, 1]])


# ------------------------------------------------------------------------------ rotations
def yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """Rotation about z by ``yaw`` [rad] as (x, y, z, w)."""
    return (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))


def quaternion_to_yaw(q: Sequence[float]) -> float:
    """Heading [rad] of a quaternion (x, y, z, w): the z of its Z-Y-X Euler angles."""
    x, y, z, w = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _ros(q_wxyz) -> tuple[float, float, float, float]:
    w, x, y, z = (float(v) for v in q_wxyz)
    return (x, y, z, w)


def _t3d(q_xyzw: Sequence[float]) -> np.ndarray:
    x, y, z, w = q_xyzw
    return np.array([w, x, y, z], dtype=np.float64)


def rpy_to_quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """Fixed-axis roll, pitch, yaw [rad] (URDF and REP-103 convention) to (x, y, z, w)."""
    return _ros(_euler.euler2quat(roll, pitch, yaw, "sxyz"))


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """3x3 rotation matrix of fixed-axis roll, pitch, yaw [rad]."""
    return _euler.euler2mat(roll, pitch, yaw, "sxyz")


def quaternion_multiply(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    """Hamilton product a*b of quaternions (x, y, z, w)."""
    return _ros(_quat.qmult(_t3d(a), _t3d(b)))


def axis_angle_quaternion(axis: Sequence[float], angle: float) -> tuple[float, float, float, float]:
    """Rotation by ``angle`` [rad] about ``axis`` (normalised here; a zero axis is the identity)."""
    n = math.sqrt(sum(float(a) * float(a) for a in axis))
    if n == 0.0:
        return (0.0, 0.0, 0.0, 1.0)
    return _ros(_quat.axangle2quat(axis, angle, is_normalized=False))


def rotvec_quaternion(v: Sequence[float]) -> tuple[float, float, float, float]:
    """Rotation vector (axis times angle [rad]) to (x, y, z, w)."""
    angle = math.sqrt(sum(float(a) * float(a) for a in v))
    return axis_angle_quaternion(v, angle) if angle > 0.0 else (0.0, 0.0, 0.0, 1.0)


def quaternion_matrix(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (x, y, z, w); normalised first.

    :raises ValueError: for a zero-length or non-finite quaternion (not a rotation).
    """
    x, y, z, w = (float(v) for v in q)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion {tuple(q)} is not a rotation (norm {n:g})")
    return _quat.quat2mat(np.array([w, x, y, z]) / n)


def matrix_quaternion(m: np.ndarray) -> tuple[float, float, float, float]:
    """3x3 rotation matrix -> unit quaternion (x, y, z, w) with w >= 0."""
    q = _quat.mat2quat(np.asarray(m, dtype=np.float64))
    if q[0] < 0:
        q = -q
    return _ros(q)


# ------------------------------------------------------------------------------ diagnostics
class DiagnosticLevel(enum.IntEnum):
    """Levels of a diagnostic_msgs/DiagnosticStatus, for core code reporting its health."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


class Diagnostic(NamedTuple):
    """One /diagnostics status as core code reports it (the node converts it): ``name``
    (appended to the node's name), level, message and (key, value) pairs."""

    name: str
    level: DiagnosticLevel
    message: str
    values: tuple[tuple[str, str], ...] = ()


# ------------------------------------------------------------------------------ safety state
class SafetyLevel(enum.IntEnum):
    """The supervisor's state machine, most restrictive last (as SafetyState.msg LEVEL_*)."""

    NORMAL = 0
    REDUCED_SPEED = 1
    PROTECTIVE_STOP = 2      # category 2 by default (power kept); clears with its causes
    EMERGENCY_STOP = 3       # latched; category 0 or 1 per config; reset by service only


class Mode(enum.IntEnum):
    """Operating mode (as SafetyState.msg MODE_*)."""

    AUTOMATIC = 0
    MANUAL = 1               # teleop, hold-to-run: the deadman flag must keep arriving
    REDUCED_SPEED = 2        # forced near people (T1-like, 0.25 m/s by default)

    @classmethod
    def parse(cls, text: "str | int | Mode") -> "Mode":
        """``'automatic'``/``'manual'``/``'reduced_speed'`` (any case), an int or a Mode.

        :raises ValueError: naming the accepted values.
        """
        if isinstance(text, Mode):
            return text
        if isinstance(text, int) and not isinstance(text, bool):
            try:
                return cls(text)
            except ValueError:
                pass
        elif isinstance(text, str):
            key = text.strip().upper()
            if key in cls.__members__:
                return cls[key]
        raise ValueError(f"unknown mode {text!r}; accepted: "
                         + ", ".join(m.name.lower() for m in cls))


class StopCategory(enum.IntEnum):
    """IEC 60204-1 stop categories, as in SafetyState.msg (NONE: no stop requested)."""

    NONE = 255
    CAT0 = 0      # zero effort / brake at once
    CAT1 = 1      # decelerate at the configured maximum, then hold
    CAT2 = 2      # like CAT1 (power kept)
