"""Forward kinematics of a URDF tree: the transforms robot_state_publisher would publish.

Pure numpy, no ROS. A joint's transform parent->child is ``origin * motion(q)`` where the
motion is a rotation about the joint axis (revolute/continuous) or a translation along it
(prismatic). Fixed joints give constant transforms (``tf_static``); the others change with
the joint state (``tf``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from sitebot.types import (Pose2D, axis_angle_quaternion, quaternion_matrix, quaternion_multiply,
                           rpy_to_quaternion)

__all__ = ["Transform", "JointTransformer", "fixed_transform", "planar_frame_pose"]

MOVING = ("revolute", "continuous", "prismatic")


@dataclass(frozen=True)
class Transform:
    """A rigid transform: translation [m] and unit quaternion (x, y, z, w)."""

    parent: str
    child: str
    translation: tuple[float, float, float]
    rotation_xyzw: tuple[float, float, float, float]


def _rotate(q: Sequence[float], v: Sequence[float]) -> tuple[float, float, float]:
    x, y, z, w = q
    # v' = v + 2w(q x v) + 2 q x (q x v)
    cx = y * v[2] - z * v[1]
    cy = z * v[0] - x * v[2]
    cz = x * v[1] - y * v[0]
    return (v[0] + 2 * (w * cx + y * cz - z * cy),
            v[1] + 2 * (w * cy + z * cx - x * cz),
            v[2] + 2 * (w * cz + x * cy - y * cx))


class JointTransformer:
    """Computes the per-joint transforms of a robot description.

    ``joints`` is any iterable of objects with ``name, type, parent, child, origin_xyz,
    origin_rpy, axis`` and ``mimic`` (``None`` or an object with ``joint, multiplier,
    offset``), i.e. :class:`sitebot.description.urdf.JointInfo`. ``prefix`` is prepended to frame names.
    """

    def __init__(self, joints: Iterable, prefix: str = "") -> None:
        self._fixed: list[Transform] = []
        self._moving: list[tuple] = []
        for j in joints:
            origin_q = rpy_to_quaternion(*j.origin_rpy)
            entry = (j, prefix + j.parent, prefix + j.child, tuple(j.origin_xyz), origin_q)
            if j.type in MOVING:
                self._moving.append(entry)
            else:
                self._fixed.append(Transform(prefix + j.parent, prefix + j.child,
                                             tuple(j.origin_xyz), origin_q))

    @property
    def moving_joint_names(self) -> tuple[str, ...]:
        return tuple(e[0].name for e in self._moving)

    def static_transforms(self) -> list[Transform]:
        """Transforms of the fixed joints (publish once on ``tf_static``)."""
        return list(self._fixed)

    def transforms(self, positions: Mapping[str, float]) -> list[Transform]:
        """Transforms of the moving joints for ``positions`` [rad or m] by joint name.

        A mimic joint follows its leader (``multiplier * q_leader + offset``); a joint with
        no position (and no leader) is taken at 0.
        """
        out = []
        for j, parent, child, xyz, oq in self._moving:
            q = positions.get(j.name)
            if q is None and j.mimic is not None:
                q = j.mimic.multiplier * positions.get(j.mimic.joint, 0.0) + j.mimic.offset
            q = float(q or 0.0)
            if not math.isfinite(q):
                q = 0.0
            if j.type == "prismatic":
                d = _rotate(oq, tuple(a * q for a in j.axis))
                out.append(Transform(parent, child, (xyz[0] + d[0], xyz[1] + d[1], xyz[2] + d[2]), oq))
            else:
                out.append(Transform(parent, child, xyz,
                                     quaternion_multiply(oq, axis_angle_quaternion(j.axis, q))))
        return out


def transform_matrix(t: Transform) -> np.ndarray:
    """4x4 homogeneous matrix of a :class:`Transform` (for tests and composition)."""
    m = np.eye(4)
    m[:3, :3] = quaternion_matrix(t.rotation_xyzw)
    m[:3, 3] = t.translation
    return m


def fixed_transform(desc: Any, parent: str, child: str) -> np.ndarray:
    """4x4 transform of frame ``child`` in ``parent`` through the description's fixed joints
    (where a laser or camera sits on the base); ValueError when the chain is not fixed."""
    up = {t.child: t for t in JointTransformer(desc.joints.values()).static_transforms()}
    m = np.eye(4)
    f = child
    while f != parent:
        if f not in up:
            raise ValueError(f"frame '{child}' is not fixed to '{parent}' in the URDF "
                             f"{getattr(desc, 'source', '')}".rstrip())
        m = transform_matrix(up[f]) @ m
        f = up[f].parent
    return m


def planar_frame_pose(desc: Any, base: str, frame: str) -> Pose2D:
    """(x, y, yaw) of ``frame`` in ``base`` (:func:`fixed_transform` flattened)."""
    m = fixed_transform(desc, base, frame)
    return Pose2D(float(m[0, 3]), float(m[1, 3]), math.atan2(m[1, 0], m[0, 0]))
