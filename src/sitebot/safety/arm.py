"""Arm trajectory validation: joint names, position and velocity limits (from the URDF),
time, non-finite values, and an optional workspace keep-out.

The workspace keep-out is a list of axis-aligned boxes in the base frame
(``arm_keep_out_boxes``).  Forward kinematics of the URDF chain from the root link to the
tool gives the origins of the arm's link frames; those points, the midpoints between
consecutive ones and the tool point (inflated by ``link_radius_m``) must stay out of every
box at every trajectory point and at interpolated steps between points (joint-space
linear, at most ``max_step_rad`` per joint per step).  Link volumes are approximated by
these points: a box thinner than the spacing between checked points can be missed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from sitebot.safety.types import TrajectoryPoint
from sitebot.types import rpy_matrix

__all__ = ["JointLimit", "ArmChain", "WorkspaceKeepOut", "ArmModel", "validate_trajectory",
           "joint_limits_from_description", "MAX_POINTS"]

#: a trajectory with more points is refused
MAX_POINTS = 10_000
#: position tolerance [rad or m] of the limit checks
_TOL = 1e-9


@dataclass(frozen=True)
class JointLimit:
    """Limits of one joint: position [rad or m] (None: unlimited, e.g. continuous) and
    velocity [rad/s or m/s] (None: unlimited)."""

    name: str
    lower: float | None = None
    upper: float | None = None
    velocity: float | None = None


def joint_limits_from_description(desc: Any, names: Sequence[str] | None = None,
                                  velocity_scale: float = 1.0) -> dict[str, JointLimit]:
    """Limits of ``names`` (default: the arm and the gripper joints) from a
    :class:`sitebot.description.urdf.RobotDescription`, velocities times ``velocity_scale``."""
    if names is None:
        names = tuple(desc.arm_joints) + tuple(desc.gripper_joints)
    out: dict[str, JointLimit] = {}
    for n in names:
        j = desc.joint(n)
        vel = None if j.velocity_limit is None else float(j.velocity_limit) * velocity_scale
        out[j.name] = JointLimit(j.name, j.lower, j.upper, vel)
    return out


def _axis_angle(axis: Sequence[float], q: float) -> np.ndarray:
    a = np.asarray(axis, dtype=float)
    n = np.linalg.norm(a)
    if n < 1e-12:
        return np.eye(3)
    x, y, z = a / n
    c, s, t = math.cos(q), math.sin(q), 1.0 - math.cos(q)
    return np.array([[t * x * x + c, t * x * y - s * z, t * x * z + s * y],
                     [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
                     [t * x * z - s * y, t * y * z + s * x, t * z * z + c]])


class ArmChain:
    """The serial chain of joints from the root link to ``tip`` (URDF joints: objects with
    ``name, type, parent, child, origin_xyz, origin_rpy, axis``)."""

    def __init__(self, joints: Sequence[Any]) -> None:
        self.joints = tuple(joints)
        self._origins = []
        for j in self.joints:
            m = np.eye(4)
            m[:3, :3] = rpy_matrix(*j.origin_rpy)
            m[:3, 3] = j.origin_xyz
            self._origins.append(m)

    @classmethod
    def from_description(cls, desc: Any, tip: str | None = None) -> "ArmChain":
        """The chain root -> ``tip`` (default: ``tool0`` with the description's prefix,
        else the last arm joint's child)."""
        by_child = {j.child: j for j in desc.joints.values()}
        if tip is None:
            tip = desc.prefixed("tool0")
            if tip not in by_child:
                tip = desc.joints[desc.arm_joints[-1]].child
        chain = []
        link = tip
        while link in by_child:
            j = by_child[link]
            chain.append(j)
            link = j.parent
        return cls(tuple(reversed(chain)))

    def points(self, positions: Mapping[str, float]) -> np.ndarray:
        """(n, 3) positions [m] in the root frame of every link frame origin along the chain
        (after each joint), the root included."""
        m = np.eye(4)
        out = [m[:3, 3].copy()]
        for j, o in zip(self.joints, self._origins):
            m = m @ o
            kind = getattr(j.type, "value", j.type)
            if kind in ("revolute", "continuous"):
                r = np.eye(4)
                r[:3, :3] = _axis_angle(j.axis, float(positions.get(j.name, 0.0)))
                m = m @ r
            elif kind == "prismatic":
                t = np.eye(4)
                t[:3, 3] = np.asarray(j.axis, float) * float(positions.get(j.name, 0.0))
                m = m @ t
            out.append(m[:3, 3].copy())
        return np.array(out)


@dataclass(frozen=True)
class WorkspaceKeepOut:
    """Boxes (xmin, ymin, zmin, xmax, ymax, zmax) [m] in the chain's root (base) frame
    that the checked arm points, inflated by ``link_radius_m`` [m], must not enter."""

    boxes: tuple[tuple[float, ...], ...]
    chain: ArmChain
    link_radius_m: float = 0.05
    max_step_rad: float = 0.05

    def violation(self, positions: Mapping[str, float]) -> str | None:
        """None when clear; else which point enters which box."""
        p = self.chain.points(positions)
        pts = np.concatenate([p, 0.5 * (p[1:] + p[:-1])])
        r = self.link_radius_m
        for k, b in enumerate(self.boxes):
            lo = np.array(b[:3]) - r
            hi = np.array(b[3:]) + r
            inside = np.all((pts >= lo) & (pts <= hi), axis=1)
            if inside.any():
                q = pts[int(np.argmax(inside))]
                return (f"arm point ({q[0]:.2f}, {q[1]:.2f}, {q[2]:.2f}) m enters workspace "
                        f"keep-out box {k} {list(b)}")
        return None


@dataclass(frozen=True)
class ArmModel:
    """What the supervisor checks trajectories against."""

    limits: Mapping[str, JointLimit]
    keep_out: WorkspaceKeepOut | None = None

    @classmethod
    def from_description(cls, desc: Any, config: Any = None,
                         names: Sequence[str] | None = None) -> "ArmModel":
        """Limits from the URDF (velocity times ``config.arm_velocity_scale``) and the
        keep-out boxes of ``config.arm_keep_out_boxes`` (none: no workspace check)."""
        scale = getattr(config, "arm_velocity_scale", 1.0) if config is not None else 1.0
        limits = joint_limits_from_description(desc, names, scale)
        boxes = config.keep_out_boxes() if config is not None else ()
        keep = WorkspaceKeepOut(tuple(boxes), ArmChain.from_description(desc)) if boxes \
            else None
        return cls(limits, keep)


def validate_trajectory(names: Sequence[str], points: Sequence[TrajectoryPoint],
                        limits: Mapping[str, JointLimit],
                        workspace_keep_out: WorkspaceKeepOut | None = None
                        ) -> tuple[bool, str]:
    """(True, "ok") or (False, the first problem found).

    Checks: names non-empty, unique and known; 1..MAX_POINTS points; every point's positions
    (and velocities, when given) one per joint and finite; ``time_from_start_s`` finite,
    >= 0 and strictly increasing; positions within limits; given velocities and the mean
    velocity between consecutive points within the velocity limits; the workspace keep-out.
    """
    try:
        names = [str(n) for n in names]
        points = list(points)
    except TypeError:
        return False, "names and points must be sequences"
    if not names:
        return False, "no joint names"
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        return False, f"duplicate joint names {dup}"
    unknown = [n for n in names if n not in limits]
    if unknown:
        return False, (f"unknown joint(s) {unknown}; accepted: {sorted(limits)}")
    if not points:
        return False, "no points"
    if len(points) > MAX_POINTS:
        return False, f"{len(points)} points; at most {MAX_POINTS}"
    nj = len(names)
    pos = np.empty((len(points), nj))
    times = np.empty(len(points))
    lim = [limits[n] for n in names]
    for k, p in enumerate(points):
        if not isinstance(p, TrajectoryPoint):
            return False, f"point {k} is not a TrajectoryPoint"
        try:
            q = np.asarray(p.positions, dtype=float).ravel()
            qd = np.asarray(p.velocities, dtype=float).ravel()
            t = float(p.time_from_start_s)
        except (TypeError, ValueError):
            return False, f"point {k}: non-numeric values"
        if q.size != nj:
            return False, f"point {k}: {q.size} positions for {nj} joints"
        if qd.size not in (0, nj):
            return False, f"point {k}: {qd.size} velocities for {nj} joints"
        if not (np.isfinite(q).all() and np.isfinite(qd).all() and math.isfinite(t)):
            return False, f"point {k}: non-finite value"
        if t < 0.0:
            return False, f"point {k}: time_from_start {t:g} s is negative"
        if k and t <= times[k - 1]:
            return False, (f"point {k}: time_from_start {t:g} s is not after point {k - 1} "
                           f"({times[k - 1]:g} s)")
        for i, L in enumerate(lim):
            if L.lower is not None and q[i] < L.lower - _TOL or \
                    L.upper is not None and q[i] > L.upper + _TOL:
                return False, (f"point {k}: {L.name} = {q[i]:g} outside its limits "
                               f"[{L.lower:g}, {L.upper:g}]")
            if qd.size and L.velocity is not None and abs(qd[i]) > L.velocity + _TOL:
                return False, (f"point {k}: {L.name} velocity {qd[i]:g} over its limit "
                               f"{L.velocity:g}")
        pos[k], times[k] = q, t
    for k in range(1, len(points)):
        dt = times[k] - times[k - 1]
        speed = np.abs(pos[k] - pos[k - 1]) / dt
        for i, L in enumerate(lim):
            if L.velocity is not None and speed[i] > L.velocity * (1.0 + 1e-9) + _TOL:
                return False, (f"points {k - 1}->{k}: {L.name} would move at {speed[i]:g} on "
                               f"average, over its limit {L.velocity:g}")
    if workspace_keep_out is not None:
        step = workspace_keep_out.max_step_rad
        for k in range(len(points)):
            if k == 0:
                samples = pos[:1]
            else:
                n = max(1, int(math.ceil(float(np.max(np.abs(pos[k] - pos[k - 1]))) / step)))
                f = (np.arange(1, n + 1) / n)[:, None]
                samples = pos[k - 1] + f * (pos[k] - pos[k - 1])
            for q in samples:
                why = workspace_keep_out.violation(dict(zip(names, q)))
                if why:
                    return False, f"point {k}: {why}"
    return True, "ok"
