"""Batched forward kinematics and inverse kinematics of the arm (numpy, no ROS).

:class:`ArmKinematics` reads the chain from the URDF (:class:`sitebot.description.urdf.RobotDescription`):
every link whose pose depends on the six arm joints (the arm links, the gripper palm and
fingers, ``tool0``, ``gripper_tcp``) is expressed in the root frame (``base_footprint``)
for a batch of joint vectors at once, ``(K, 6) -> (K, L, 4, 4)``.  Non-arm movable joints
(the gripper fingers) are held at fixed values (``fixed_positions``).

Inverse kinematics (:meth:`ArmKinematics.ik`): damped least squares on the geometric
Jacobian (computed from the batched FK), with joint limits (clamping) and several seeds
(the given seed first, then seeded random ones); the target is a position plus either a
full orientation or an approach axis (the tool's +z must point along a given direction,
the roll about it is free).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from sitebot.types import rpy_matrix

__all__ = ["ArmKinematics", "IkResult", "rotation_about", "pose_matrix"]


def pose_matrix(xyz: Sequence[float], rot: np.ndarray | None = None) -> np.ndarray:
    """4x4 homogeneous transform from a translation and a 3x3 rotation (identity if None)."""
    m = np.eye(4)
    if rot is not None:
        m[:3, :3] = rot
    m[:3, 3] = xyz
    return m


def rotation_about(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(K, 3, 3) rotations by ``angles`` (K,) about the unit ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    s = np.sin(angles)[:, None, None]
    c = np.cos(angles)[:, None, None]
    return np.eye(3)[None] + s * k[None] + (1.0 - c) * (k @ k)[None]


@dataclass(frozen=True)
class IkResult:
    """``q`` (6,) or None; ``position_error_m``, ``angle_error_rad`` of the best attempt;
    ``iterations`` summed over seeds; ``seeds`` tried."""

    q: np.ndarray | None
    position_error_m: float
    angle_error_rad: float
    iterations: int
    seeds: int

    @property
    def ok(self) -> bool:
        return self.q is not None


class ArmKinematics:
    """Forward/inverse kinematics of the six arm joints from a robot description.

    ``frames`` lists the link names whose poses :meth:`fk` returns (every link moved by the
    arm joints, in tree order); ``static_frames`` maps every other link to its constant
    pose in the root frame.
    """

    def __init__(self, desc: Any, tcp_link: str = "gripper_tcp",
                 fixed_positions: Mapping[str, float] | None = None) -> None:
        self.desc = desc
        self.root = desc.root_link
        self.joint_names: tuple[str, ...] = tuple(desc.arm_joints)
        js = [desc.joints[n] for n in self.joint_names]
        self.lower = np.array([j.lower for j in js], dtype=float)
        self.upper = np.array([j.upper for j in js], dtype=float)
        self.velocity_limits = np.array([j.velocity_limit for j in js], dtype=float)
        self.tcp_link = desc.prefixed(tcp_link) if desc.prefixed(tcp_link) in desc.links \
            else tcp_link
        fixed = dict(fixed_positions or {})
        children: dict[str, list] = {}
        for j in desc.joints.values():
            children.setdefault(j.parent, []).append(j)
        self.parent_link: dict[str, str] = {j.child: j.parent for j in desc.joints.values()}
        arm_index = {n: i for i, n in enumerate(self.joint_names)}
        # walk the tree; static links get a constant pose, moving ones a step list
        self.static_frames: dict[str, np.ndarray] = {self.root: np.eye(4)}
        self._steps: list[tuple[str, str, np.ndarray, int, np.ndarray | None]] = []
        self.frames: list[str] = []
        moving: set[str] = set()
        stack = [self.root]
        while stack:
            link = stack.pop(0)
            for j in children.get(link, []):
                origin = pose_matrix(j.origin_xyz, rpy_matrix(*j.origin_rpy))
                kind = getattr(j.type, "value", j.type)
                if j.name in arm_index:
                    idx, axis = arm_index[j.name], np.asarray(j.axis, float)
                else:
                    idx, axis = -1, None
                    if kind in ("revolute", "continuous", "prismatic"):
                        q = fixed.get(j.name)
                        if q is None and j.mimic is not None:
                            q = j.mimic.multiplier * fixed.get(j.mimic.joint, 0.0) + \
                                j.mimic.offset
                        q = float(q or 0.0)
                        m = np.eye(4)
                        if kind == "prismatic":
                            m[:3, 3] = np.asarray(j.axis, float) * q
                        else:
                            m[:3, :3] = rotation_about(np.asarray(j.axis, float),
                                                       np.array([q]))[0]
                        origin = origin @ m
                if idx < 0 and link not in moving:
                    self.static_frames[j.child] = self.static_frames[link] @ origin
                else:
                    moving.add(j.child)
                    self._steps.append((link, j.child, origin, idx, axis))
                    self.frames.append(j.child)
                stack.append(j.child)
        self.frame_index = {n: i for i, n in enumerate(self.frames)}
        if self.tcp_link not in self.frame_index:
            raise ValueError(f"tcp link '{self.tcp_link}' is not moved by the arm joints")
        # joint axes in their child frames, for the Jacobian
        self._joint_child = [desc.joints[n].child for n in self.joint_names]
        self._joint_axis = [np.asarray(desc.joints[n].axis, float) /
                            np.linalg.norm(desc.joints[n].axis) for n in self.joint_names]

    # ------------------------------------------------------------------ FK
    def fk(self, q: np.ndarray) -> np.ndarray:
        """Poses (K, L, 4, 4) in the root frame of :attr:`frames` for joint vectors (K, 6)
        (or (L, 4, 4) for a single (6,) vector)."""
        q = np.asarray(q, dtype=float)
        single = q.ndim == 1
        Q = q[None] if single else q
        K = Q.shape[0]
        out = np.empty((K, len(self.frames), 4, 4))
        cache: dict[str, np.ndarray] = {}
        for k, (parent, child, origin, idx, axis) in enumerate(self._steps):
            base = cache.get(parent)
            if base is None:
                base = np.broadcast_to(self.static_frames[parent], (K, 4, 4))
            m = base @ origin
            if idx >= 0:
                r = np.zeros((K, 4, 4))
                r[:, :3, :3] = rotation_about(axis, Q[:, idx])
                r[:, 3, 3] = 1.0
                m = m @ r
            cache[child] = m
            out[:, k] = m
        return out[0] if single else out

    def tcp_pose(self, q: np.ndarray) -> np.ndarray:
        """4x4 pose of the TCP in the root frame (or (K, 4, 4))."""
        f = self.fk(q)
        return f[..., self.frame_index[self.tcp_link], :, :]

    def frame_pose(self, q: np.ndarray, link: str) -> np.ndarray:
        """4x4 pose of any link (moving or static) in the root frame for one vector q."""
        if link in self.frame_index:
            return self.fk(np.asarray(q, float))[self.frame_index[link]]
        return self.static_frames[link]

    def jacobian(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(TCP pose 4x4, geometric Jacobian 6x6: rows v (3), w (3)) at q (6,)."""
        f = self.fk(np.asarray(q, float))
        tcp = f[self.frame_index[self.tcp_link]]
        p = tcp[:3, 3]
        J = np.zeros((6, 6))
        for i, (child, axis) in enumerate(zip(self._joint_child, self._joint_axis)):
            m = f[self.frame_index[child]]
            z = m[:3, :3] @ axis
            J[:3, i] = np.cross(z, p - m[:3, 3])
            J[3:, i] = z
        return tcp, J

    def within_limits(self, q: np.ndarray, tol: float = 1e-9) -> bool:
        q = np.asarray(q, float)
        return bool(np.all(q >= self.lower - tol) and np.all(q <= self.upper + tol))

    # ------------------------------------------------------------------ IK
    def ik(self, position: Sequence[float], rotation: np.ndarray | None = None, *,
           approach_axis: Sequence[float] | None = None, seed: np.ndarray | None = None,
           n_seeds: int = 12, max_iterations: int = 150, position_tol_m: float = 1e-3,
           angle_tol_rad: float = 1e-2, damping: float = 0.05, rng_seed: int = 0,
           accept: Any = None) -> IkResult:
        """Joint vector putting the TCP at ``position`` (root frame) with the orientation
        ``rotation`` (3x3), or with its +z along ``approach_axis`` (roll free), or with any
        orientation when both are None.

        Damped least squares ``dq = J^T (J J^T + lambda^2 I)^-1 e`` with step clipping and
        clamping to the joint limits; seeds: ``seed`` (e.g. the current state), then random
        uniform ones from ``rng_seed``.  ``accept(q) -> bool`` (e.g. collision-free) filters
        solutions: a converged but refused one makes the search try the next seed.  The
        first accepted solution is returned (seeded from ``seed`` first, so usually one
        near the current state), which bounds the time.
        """
        target_p = np.asarray(position, dtype=float)
        if target_p.shape != (3,) or not np.isfinite(target_p).all():
            raise ValueError(f"IK target position {position!r} is not 3 finite numbers")
        target_r = None if rotation is None else np.asarray(rotation, float)
        axis = None
        if approach_axis is not None:
            axis = np.asarray(approach_axis, float)
            n = np.linalg.norm(axis)
            if axis.shape != (3,) or not np.isfinite(axis).all() or n < 1e-9:
                raise ValueError(f"approach axis {approach_axis!r} is not a non-zero 3-vector")
            axis = axis / n
        rng = np.random.default_rng(rng_seed)
        seeds = []
        if seed is not None:
            seeds.append(np.clip(np.asarray(seed, float), self.lower, self.upper))
        while len(seeds) < max(1, n_seeds):
            seeds.append(rng.uniform(self.lower, self.upper))
        best = (math.inf, math.inf)
        total = 0
        lam2 = damping * damping
        for s_i, q in enumerate(seeds):
            q = q.copy()
            seed_best, since = math.inf, 0
            for it in range(max_iterations):
                total += 1
                tcp, J = self.jacobian(q)
                e_p = target_p - tcp[:3, 3]
                if target_r is not None:
                    r_err = target_r @ tcp[:3, :3].T
                    e_w = _rotvec(r_err)
                    e = np.concatenate([e_p, e_w])
                    Jr = J
                elif axis is not None:
                    z = tcp[:3, 2]
                    e_w = np.cross(z, axis)       # rotate z toward the axis
                    c = float(np.dot(z, axis))
                    if c < 0:                       # anti-parallel: cross is ~0, push away
                        nrm = np.linalg.norm(e_w)
                        e_w = e_w / nrm * math.pi if nrm > 1e-9 else \
                            np.cross(z, _any_perpendicular(z)) * math.pi
                    e = np.concatenate([e_p, e_w])
                    Jr = J
                else:
                    e = e_p
                    Jr = J[:3]
                ang = _angle_error(tcp[:3, :3], target_r, axis)
                pe = float(np.linalg.norm(e_p))
                if pe < position_tol_m and ang < angle_tol_rad:
                    if accept is None or accept(q):
                        return IkResult(q, pe, ang, total, s_i + 1)
                    break
                if (pe, ang) < best:
                    best = (pe, ang)
                score = pe + 0.1 * ang
                if score < seed_best - 1e-5:
                    seed_best, since = score, 0
                else:
                    since += 1
                    if since >= 12:                  # stalled (a limit or a singularity)
                        break
                e_c = e.copy()
                e_c[:3] = _clip_norm(e_c[:3], 0.1)
                if e_c.size == 6:
                    e_c[3:] = _clip_norm(e_c[3:], 0.5)
                JJt = Jr @ Jr.T
                dq = Jr.T @ np.linalg.solve(JJt + lam2 * np.eye(JJt.shape[0]), e_c)
                dq = _clip_norm(dq, 0.4)
                q = np.clip(q + dq, self.lower, self.upper)
            else:
                tcp = self.tcp_pose(q)
                pe = float(np.linalg.norm(target_p - tcp[:3, 3]))
                ang = _angle_error(tcp[:3, :3], target_r, axis)
                if pe < position_tol_m and ang < angle_tol_rad and (accept is None or
                                                                     accept(q)):
                    return IkResult(q, pe, ang, total, s_i + 1)
                best = min(best, (pe, ang))
        return IkResult(None, best[0], best[1], total, len(seeds))


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v * (limit / n) if n > limit else v


def _any_perpendicular(v: np.ndarray) -> np.ndarray:
    a = np.array([1.0, 0.0, 0.0]) if abs(v[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    p = np.cross(v, a)
    return p / np.linalg.norm(p)


def _rotvec(r: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle) of a 3x3 rotation."""
    c = max(-1.0, min(1.0, (np.trace(r) - 1.0) / 2.0))
    ang = math.acos(c)
    if ang < 1e-9:
        return np.zeros(3)
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    s = math.sin(ang)
    if s > 1e-6:
        return w / (2 * s) * ang
    # ang ~ pi: axis from the diagonal
    d = np.sqrt(np.maximum((np.diag(r) + 1.0) / 2.0, 0.0))
    k = int(np.argmax(d))
    axis = r[:, k] + (np.eye(3)[k])
    axis = axis / np.linalg.norm(axis)
    return axis * ang


def _angle_error(rot: np.ndarray, target_r: np.ndarray | None,
                 axis: np.ndarray | None) -> float:
    if target_r is not None:
        return float(np.linalg.norm(_rotvec(target_r @ rot.T)))
    if axis is not None:
        return float(math.acos(max(-1.0, min(1.0, float(np.dot(rot[:, 2], axis))))))
    return 0.0
