"""Grasp candidates for the parallel gripper from a perceived object (core, no ROS).

Input: an :class:`~sitebot.perception.object_segment.ObjectSegment` (the object's footprint
rectangle, long-axis yaw, support height, top height and points, all in the robot's base
frame ``base_footprint``, metres and radians) and the perceived scene around it (boxes in
the base frame).  Output: a :class:`GraspPlan`, every candidate ranked best first, each with
its score terms or the reason it was rejected, so that an executor can try the next one
when a motion to one fails.

Conventions (as the executor's top-down grasp, ``SkillConfig.grasp_rpy`` = (pi, 0, pi)):
the TCP frame (``gripper_tcp``, between the finger pads) has its +z along the approach
(the direction the gripper moves to close in: (0, 0, -1) from above), the fingers close
along its +-y, and +x completes the frame.  A candidate's ``closing_yaw`` is the heading of
the line the fingers close along (mod pi); a top-down grasp across an object whose long
axis heads ``yaw`` has ``closing_yaw`` = yaw + pi/2 and TCP rpy (pi, 0, yaw) or its twin
(pi, 0, yaw + pi) (the wrist can turn either way; the executor's ``_grasp_yaws``).

Candidate families (:class:`GraspConfig`):

* ``top``: approach straight down; fingers across the footprint (``yaw_offset`` 0) and at
  ``yaw_offsets_deg`` from that, each with its 180-deg twin;
* ``tilted``: approach tilted by ``tilts_deg`` from vertical, about the closing line (the
  fingers stay level), leaning away from the shoulder: they reach higher surfaces than a
  vertical approach (this arm: see docs, "Grasp planning from depth");
* ``side``: approach horizontal from the robot's side (the direction from the shoulder
  and the object's axes within ``side_max_angle_deg`` of it), fingers closing
  horizontally.

The TCP goes as deep as the fingers may: their lowest point ``support_clearance_m`` above
the support, the palm ``palm_clearance_m`` above the object's top (for side grasps: the
palm that far before the object's near face).  Each candidate is checked, in order: the
object fits between the open fingers with ``margin_m`` per side (measured on the object's
points in the fingers' band, or on its footprint rectangle); the fingers overlap it by
``min_grip_depth_m``; the TCP lies within the arm's reach; IK finds the grasp
(:meth:`ArmKinematics.ik`) and it is collision-free against the perceived scene (the
support slab under the object and the given boxes; :class:`CollisionChecker` with
``grasp_padding_m``, the fingers being meant to come close to the support); the pre-grasp,
``pregrasp_m`` back along the approach, has a collision-free IK solution with
``approach_padding_m``, and the joint motion from it to the grasp is collision-free.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from transforms3d.euler import mat2euler

from sitebot.arm.collision import CollisionChecker, Primitive, box_primitive
from sitebot.arm.kinematics import ArmKinematics
from sitebot.config.checks import check_ranges
from sitebot.types import rpy_matrix, wrap_angle

__all__ = ["GripperGeometry", "GraspConfig", "GraspCandidate", "GraspPlan", "GraspPlanner",
           "grasp_rotation", "max_object_width"]

_Z = np.array([0.0, 0.0, 1.0])


def grasp_rotation(approach: Sequence[float], closing: Sequence[float]) -> np.ndarray:
    """3x3 TCP rotation in the base frame: tool +z along ``approach``, +y along
    ``closing`` (made perpendicular to the approach), +x = y cross z."""
    a = np.asarray(approach, float)
    a = a / np.linalg.norm(a)
    c = np.asarray(closing, float)
    c = c - a * float(a @ c)
    c = c / np.linalg.norm(c)
    return np.column_stack([np.cross(c, a), c, a])


def _box_corners(g: Any) -> np.ndarray:
    """(8, 3) corners of a URDF box geometry in its link frame."""
    half = np.asarray(g.size, float) / 2
    sign = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    return (sign * half) @ rpy_matrix(*g.origin.rpy).T + np.asarray(g.origin.xyz, float)


@dataclass(frozen=True)
class GripperGeometry:
    """The gripper in its TCP frame (metres): ``finger_corners`` (8 per finger, fully
    open) and ``palm_corners`` (8) of the collision boxes; ``max_opening_m`` the gap
    between the finger pads fully open, ``closed_gap_m`` at joint position 0; ``joint``
    the driven finger joint (position = (gap - closed_gap) / 2 per finger, as
    ``gripper_open_m`` in the executor's config)."""

    finger_corners: np.ndarray
    palm_corners: np.ndarray
    max_opening_m: float
    closed_gap_m: float
    joint: str

    @property
    def tip_m(self) -> float:
        """How far the fingertips reach beyond the TCP along the approach."""
        return float(self.finger_corners[:, 2].max())

    @property
    def palm_m(self) -> float:
        """How far behind the TCP the palm's face lies (positive)."""
        return float(-self.palm_corners[:, 2].max())

    @property
    def finger_width_m(self) -> float:
        """Finger extent along the tool's x."""
        return float(np.ptp(self.finger_corners[:8, 0]))

    @classmethod
    def from_description(cls, desc: Any, tcp_link: str = "gripper_tcp") -> "GripperGeometry":
        """Read the finger and palm collision boxes of a robot description."""
        grip = [j for j in desc.gripper_joints if desc.joints[j].mimic is None][0]
        fingers = [desc.joints[j].child for j in desc.gripper_joints]
        palm = desc.joints[grip].parent

        def corners_at(opening: float) -> tuple[np.ndarray, np.ndarray]:
            kin = ArmKinematics(desc, tcp_link, fixed_positions={grip: opening})
            F = kin.fk(np.zeros(6))
            inv_tcp = np.linalg.inv(F[kin.frame_index[kin.tcp_link]])

            def boxes(link: str) -> np.ndarray:
                m = inv_tcp @ F[kin.frame_index[link]]
                out = [_box_corners(g) @ m[:3, :3].T + m[:3, 3]
                       for g in desc.link_infos[link].collisions if g.kind == "box"]
                if not out:
                    raise ValueError(f"gripper link '{link}' has no box collision geometry")
                return np.concatenate(out)
            return np.concatenate([boxes(f) for f in fingers]), boxes(palm)

        def gap(fc: np.ndarray) -> float:
            y = [fc[8 * i:8 * i + 8, 1] for i in range(len(fingers))]
            pos = [v for v in y if v.mean() > 0]
            neg = [v for v in y if v.mean() <= 0]
            return float(min(v.min() for v in pos) - max(v.max() for v in neg))
        upper = float(desc.joints[grip].upper)
        fc, pc = corners_at(upper)
        closed = gap(corners_at(0.0)[0])
        return cls(fc, pc, gap(fc), closed, grip)


@dataclass(frozen=True)
class GraspConfig:
    """Parameters of :class:`GraspPlanner` (units in the names; weights are relative).

    :param margin_m: least free gap per side between a fully open finger and the object.
    :param pregrasp_m: the pre-grasp lies this far back along the approach.
    :param yaw_offsets_deg: extra top-down closing directions, +- these from across.
    :param tilts_deg: tilts from vertical of the ``tilted`` family (empty: none).
    :param side: generate side grasps.
    :param side_max_angle_deg: side approaches within this of the shoulder's direction.
    :param support_clearance_m: the fingers' lowest point stays this far above the support.
    :param palm_clearance_m: the palm stays this far from the object.
    :param min_grip_depth_m: the fingers overlap the object by at least this.
    :param grasp_padding_m: arm-to-scene clearance checked at the grasp and on the final
        approach (the fingers come close to the support there).
    :param approach_padding_m: arm-to-scene clearance checked at the pre-grasp.
    :param ik_seeds: IK seeds per candidate (the first from the candidate's group).
    :param good_margin_m: a free gap per side this large scores fully.
    :param good_clearance_m: fingers this far above the support score fully.
    """

    margin_m: float = 0.01
    pregrasp_m: float = 0.10
    yaw_offsets_deg: tuple[float, ...] = (15.0, 30.0)
    tilts_deg: tuple[float, ...] = (30.0, 45.0)
    side: bool = True
    side_max_angle_deg: float = 45.0
    support_clearance_m: float = 0.02
    palm_clearance_m: float = 0.005
    min_grip_depth_m: float = 0.008
    grasp_padding_m: float = 0.005
    approach_padding_m: float = 0.02
    ik_seeds: int = 8
    good_margin_m: float = 0.02
    good_clearance_m: float = 0.04
    w_margin: float = 1.0
    w_clearance: float = 1.0
    w_depth: float = 1.0
    w_yaw: float = 4.0
    w_tilt: float = 4.0
    w_limits: float = 0.5
    w_travel: float = 0.5

    def __post_init__(self) -> None:
        check_ranges(self, (
            ("margin_m", 0.0, 0.1), ("pregrasp_m", 0.0, 0.5), ("side_max_angle_deg", 0.0, 90.0),
            ("support_clearance_m", 0.0, 0.2), ("palm_clearance_m", 0.0, 0.1),
            ("min_grip_depth_m", 0.0, 0.1), ("grasp_padding_m", 0.0, 0.1),
            ("approach_padding_m", 0.0, 0.2), ("ik_seeds", 1, 100),
            ("good_margin_m", 1e-4, 0.1), ("good_clearance_m", 1e-4, 0.5)))
        for name in ("yaw_offsets_deg", "tilts_deg"):
            for v in getattr(self, name):
                if not 0.0 < float(v) < 90.0:
                    raise ValueError(f"GraspConfig.{name} = {getattr(self, name)!r}: each "
                                     "must lie in (0, 90) deg")


#: how far a candidate got through the checks (rejections rank by it)
STAGES = ("geometry", "reach", "ik", "collision", "pregrasp", "approach", "ok")


@dataclass
class GraspCandidate:
    """One grasp, base frame: ``position`` (3,) of the TCP [m], ``rotation`` (3x3) of the TCP,
    ``approach`` (3,) unit direction of the final straight motion, ``pregrasp`` (3,) the TCP
    position ``pregrasp_m`` back along it; ``closing_yaw`` heading of the fingers' closing
    line [rad, mod pi]; ``yaw_offset`` from across the object [rad]; ``tilt`` of the
    approach from vertical [rad]; ``width_m`` the object's extent between the fingers;
    ``opening_m`` the gap to open the fingers to (``finger_joint_m`` per finger, the
    gripper joint's command); ``grip_depth_m`` how far the fingers overlap the object
    (vertically), of ``grip_possible_m`` (its height, at most the fingers' span);
    ``clearance_m`` from the fingers' lowest point down to the support plane;
    ``q``/``q_pregrasp`` (6,) IK solutions or None; ``terms``
    the score terms in [0, 1]; ``score`` their weighted mean (0 when rejected); ``reason``
    why it was rejected ("" when feasible); ``stage`` how far it got (:data:`STAGES`)."""

    kind: str
    position: np.ndarray
    rotation: np.ndarray
    approach: np.ndarray
    pregrasp: np.ndarray
    closing_yaw: float
    yaw_offset: float
    tilt: float
    width_m: float
    opening_m: float
    finger_joint_m: float
    grip_depth_m: float
    clearance_m: float
    grip_possible_m: float = 0.0
    q: np.ndarray | None = None
    q_pregrasp: np.ndarray | None = None
    terms: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    reason: str = ""
    stage: str = "geometry"

    @property
    def ok(self) -> bool:
        return not self.reason

    @property
    def rpy(self) -> tuple[float, float, float]:
        """TCP orientation as fixed-axis roll, pitch, yaw [rad] (``move_arm_pose``'s)."""
        return tuple(float(v) for v in mat2euler(self.rotation, "sxyz"))

    def reject(self, stage: str, reason: str) -> "GraspCandidate":
        self.stage, self.reason, self.score = stage, reason, 0.0
        return self


@dataclass
class GraspPlan:
    """Candidates ranked best first (feasible ones by score, then the rejected ones by how
    far they got); ``reason`` says why there is no feasible one ("" when there is)."""

    candidates: list[GraspCandidate]
    reason: str = ""

    @property
    def feasible(self) -> list[GraspCandidate]:
        return [c for c in self.candidates if c.ok]

    @property
    def best(self) -> GraspCandidate | None:
        f = self.feasible
        return f[0] if f else None


def _line_heading(v: np.ndarray) -> float:
    """Heading of a horizontal line (mod pi) in (-pi/2, pi/2]."""
    y = math.atan2(float(v[1]), float(v[0]))
    y = math.remainder(y, math.pi)
    return y if y > -math.pi / 2 else y + math.pi


def _rot2(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], 0.0])


def max_object_width(desc: Any = None, config: GraspConfig | None = None) -> float:
    """The widest object [m] the gripper of ``desc`` (default: this robot's description)
    closes on: its full opening less ``margin_m`` free on each side (the planner's rule)."""
    if desc is None:
        from sitebot.description.urdf import load_robot_description
        desc = load_robot_description()
    cfg = config or GraspConfig()
    return GripperGeometry.from_description(desc).max_opening_m - 2.0 * cfg.margin_m


class GraspPlanner:
    """Builds, checks and ranks grasp candidates (see the module docstring).

    :param desc: the robot description (:func:`sitebot.description.urdf.
        load_robot_description`); default: the package's URDF.
    :param config: see :class:`GraspConfig`.
    :param kin: kinematics for IK and collision (default: built from ``desc`` with the
        fingers fully open, the widest collision model).
    :param checker: collision checker over ``kin`` (default: ``grasp_padding_m``); its
        scene is replaced by every :meth:`plan` (one planner per thread).
    """

    def __init__(self, desc: Any = None, config: GraspConfig | None = None,
                 kin: ArmKinematics | None = None,
                 checker: CollisionChecker | None = None) -> None:
        if desc is None:
            desc = kin.desc if kin is not None else None
        if desc is None:
            from sitebot.description.urdf import load_robot_description
            desc = load_robot_description()
        self.config = config or GraspConfig()
        self.gripper = GripperGeometry.from_description(desc)
        joint = desc.joints[self.gripper.joint]
        self.kin = kin or ArmKinematics(desc, fixed_positions={self.gripper.joint:
                                                               float(joint.upper)})
        self.checker = checker or CollisionChecker(self.kin, self.config.grasp_padding_m,
                                                   0.005, 0.02)
        F0 = self.kin.fk(np.zeros(6))
        shoulder_link = desc.joints[self.kin.joint_names[1]].child
        self.shoulder = F0[self.kin.frame_index[shoulder_link], :3, 3].copy()
        #: farthest TCP distance from the shoulder (the arm stretched out)
        self.reach_m = float(np.linalg.norm(F0[self.kin.frame_index[self.kin.tcp_link],
                                               :3, 3] - self.shoulder))

    # ------------------------------------------------------------------ scene
    def scene(self, segment: Any, obstacles: Iterable[Any] = ()) -> list[Primitive]:
        """The perceived scene (base frame): the support slab under the object (named
        ``support``) and ``obstacles``: :class:`Primitive` or (centre, size[, yaw]) boxes."""
        prims: list[Primitive] = []
        if segment.support_box is not None:
            c, s, yaw = segment.support_box
            prims.append(box_primitive(c, s, yaw, "support"))
        for i, o in enumerate(obstacles):
            if isinstance(o, Primitive):
                prims.append(o)
            else:
                prims.append(box_primitive(o[0], o[1], float(o[2]) if len(o) > 2 else 0.0,
                                           f"obstacle:{i}"))
        return prims

    # ------------------------------------------------------------------ geometry
    def _extent(self, seg: Any, centre: np.ndarray, axis: np.ndarray, band_axis: np.ndarray,
                lo: float, hi: float) -> float:
        """The object's extent along ``axis`` (horizontal unit) over the band where the
        coordinate along ``band_axis`` relative to ``centre`` lies in [lo, hi]: from its
        points when enough fall in the band, else from its footprint rectangle."""
        pts = np.asarray(seg.points, float).reshape(-1, 3)
        if len(pts) >= 10:
            rel = pts[:, :2] - centre[:2]
            b = rel @ band_axis[:2]
            inb = (b >= lo) & (b <= hi)
            if inb.sum() >= 10:
                s = rel[inb] @ axis[:2]
                return float(s.max() - s.min())
        # rectangle: the chord along `axis` through a band of the footprint
        u = np.array([math.cos(seg.yaw), math.sin(seg.yaw)])
        L, W = float(seg.length_m), float(seg.width_m)
        full = L * abs(float(axis[:2] @ u)) + W * math.sqrt(max(0.0, 1 - float(axis[:2] @ u)
                                                               ** 2))
        ca = abs(float(axis[:2] @ np.array([-u[1], u[0]])))       # cos to across
        sa = math.sqrt(max(0.0, 1.0 - ca * ca))
        chord = (W / ca if ca > 1e-6 else math.inf) + (hi - lo) * (sa / ca if ca > 1e-6
                                                                   else math.inf)
        return float(min(full, chord))

    def _depth_along(self, seg: Any, a: np.ndarray) -> float:
        pts = np.asarray(seg.points, float).reshape(-1, 3)
        if len(pts) >= 10:
            s = (pts[:, :2] - seg.centroid[:2]) @ a[:2]
            return float(2 * max(s.max(), -s.min()))
        u = np.array([math.cos(seg.yaw), math.sin(seg.yaw)])
        cu = abs(float(a[:2] @ u))
        return float(seg.length_m * cu + seg.width_m * math.sqrt(max(0.0, 1 - cu * cu)))

    def _make(self, seg: Any, kind: str, a: np.ndarray, c: np.ndarray, yaw_offset: float,
              tilt: float) -> GraspCandidate:
        cfg, g = self.config, self.gripper
        R = grasp_rotation(a, c)
        a, c = R[:, 2], R[:, 1]
        fz = (g.finger_corners @ R.T)[:, 2]
        pz = (g.palm_corners @ R.T)[:, 2]
        sup, top = float(seg.support_z), float(seg.top_z)
        centre = np.asarray(seg.centroid, float).copy()
        if kind == "side":
            depth = self._depth_along(seg, a)
            s = min(0.0, -depth / 2 + g.palm_m - cfg.palm_clearance_m)
            centre[:2] += s * a[:2]
            tcp_z = max(0.5 * (sup + top), sup + cfg.support_clearance_m - fz.min())
            band = (-g.palm_m, g.tip_m)
            band_axis = a
        else:
            tcp_z = max(sup + cfg.support_clearance_m - fz.min(),
                        top + cfg.palm_clearance_m - pz.min())
            half = 0.5 * g.finger_width_m + 0.005
            band = (-half, half)
            band_axis = R[:, 0] / max(np.linalg.norm(R[:2, 0]), 1e-9)
        pos = np.array([centre[0], centre[1], tcp_z])
        width = self._extent(seg, pos, c, band_axis, *band)
        opening = min(g.max_opening_m, width + 2 * cfg.good_margin_m)
        grip_depth = min(top, tcp_z + fz.max()) - max(sup, tcp_z + fz.min())
        return GraspCandidate(
            kind=kind, position=pos, rotation=R, approach=a.copy(),
            pregrasp=pos - cfg.pregrasp_m * a, closing_yaw=_line_heading(c),
            yaw_offset=yaw_offset, tilt=tilt, width_m=width, opening_m=opening,
            finger_joint_m=max(0.0, (opening - g.closed_gap_m) / 2),
            grip_depth_m=float(grip_depth), clearance_m=float(tcp_z + fz.min() - sup),
            grip_possible_m=float(min(top - sup, np.ptp(fz) if kind != "side" else
                                      g.finger_width_m)))

    def candidates(self, segment: Any) -> list[GraspCandidate]:
        """Every candidate's geometry (unchecked), top-down antipodal ones first."""
        cfg = self.config
        yaw = float(segment.yaw)
        u = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        v = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        down = -_Z
        out: list[GraspCandidate] = []
        for off in [0.0] + [s * math.radians(d) for d in cfg.yaw_offsets_deg for s in (1, -1)]:
            c = _rot2(v, off)
            out += [self._make(segment, "top", down, sign * c, off, 0.0) for sign in (1, -1)]
        radial = np.asarray(segment.centroid, float)[:2] - self.shoulder[:2]
        nr = float(np.linalg.norm(radial))
        radial = np.r_[radial / nr, 0.0] if nr > 1e-6 else np.array([1.0, 0.0, 0.0])
        lean = [u] if u @ radial >= 0 else [-u]
        if abs(float(u @ radial)) < 0.3:
            lean = [u, -u]
        for t in (math.radians(d) for d in cfg.tilts_deg):
            for w in lean:
                a = -math.cos(t) * _Z + math.sin(t) * w
                out += [self._make(segment, "tilted", a, sign * v, 0.0, t) for sign in (1, -1)]
        if cfg.side:
            dirs: list[np.ndarray] = [radial]
            lim = math.cos(math.radians(cfg.side_max_angle_deg))
            for d in (u, -u, v, -v):
                if d @ radial >= lim and all(float(d @ e) < math.cos(math.radians(5))
                                             for e in dirs):
                    dirs.append(d)
            for a in dirs:
                c = np.cross(_Z, a)
                off = abs(math.remainder(_line_heading(c) - _line_heading(v), math.pi))
                out += [self._make(segment, "side", a, sign * c, off, math.pi / 2)
                        for sign in (1, -1)]
        return out

    # ------------------------------------------------------------------ checks
    def _valid(self, q: np.ndarray, padding: float) -> bool:
        return bool(self.checker.check_batch(np.asarray(q, float)[None], padding)[0])

    def _roll_seed(self, q: np.ndarray, closing: np.ndarray) -> np.ndarray:
        """``q`` with the flange roll (last joint, about the tool's z) turned so that the
        tool's y points along ``closing``."""
        T = self.kin.tcp_pose(q)
        y0, z = T[:3, 1], T[:3, 2]
        phi = math.atan2(float(np.cross(y0, closing) @ z), float(y0 @ closing))
        out = q.copy()
        out[5] = wrap_angle(out[5] + phi)
        return np.clip(out, self.kin.lower, self.kin.upper)

    def _check(self, cands: list[GraspCandidate], current_q: np.ndarray | None) -> None:
        cfg, g, kin = self.config, self.gripper, self.kin
        groups: dict[tuple, np.ndarray | str] = {}
        for cand in cands:
            need = cand.width_m + 2 * cfg.margin_m
            if need > g.max_opening_m + 1e-9:
                cand.reject("geometry", f"too wide: the object is {cand.width_m * 1000:.0f} mm "
                            f"across the fingers, the gripper opens {g.max_opening_m * 1000:.0f}"
                            f" mm ({cfg.margin_m * 1000:.0f} mm margin per side)")
                continue
            if cand.grip_depth_m < cfg.min_grip_depth_m:
                cand.reject("geometry", f"too low to grip: the fingers would overlap the object "
                            f"by {cand.grip_depth_m * 1000:.1f} mm (at least "
                            f"{cfg.min_grip_depth_m * 1000:.0f} mm) while staying "
                            f"{cfg.support_clearance_m * 1000:.0f} mm above the support")
                continue
            dist = float(np.linalg.norm(cand.position - self.shoulder))
            if dist > self.reach_m:
                cand.reject("reach", f"beyond reach: the grasp is {dist:.2f} m from the "
                            f"shoulder, the arm reaches {self.reach_m:.2f} m")
                continue
            key = (tuple(np.round(cand.position, 3)), tuple(np.round(cand.approach, 3)))
            if key not in groups:
                seed = None if current_q is None else np.asarray(current_q, float)
                r = kin.ik(cand.position, approach_axis=cand.approach, seed=seed,
                           n_seeds=cfg.ik_seeds)
                groups[key] = r.q if r.ok else (
                    f"no IK solution: best {r.position_error_m * 1000:.0f} mm, "
                    f"{math.degrees(r.angle_error_rad):.0f} deg from the "
                    f"{cand.kind} grasp at {np.round(cand.position, 3).tolist()}")
            got = groups[key]
            if isinstance(got, str):
                cand.reject("ik", got)
                continue
            seed = self._roll_seed(got, cand.rotation[:, 1])
            r = kin.ik(cand.position, cand.rotation, seed=seed, n_seeds=cfg.ik_seeds,
                       accept=lambda q: self._valid(q, cfg.grasp_padding_m))
            if not r.ok:
                free = kin.ik(cand.position, cand.rotation, seed=seed, n_seeds=2)
                if not free.ok:
                    cand.reject("ik", "no IK solution for this orientation (best "
                                f"{free.position_error_m * 1000:.0f} mm, "
                                f"{math.degrees(free.angle_error_rad):.0f} deg)")
                else:
                    why = self.checker.explain(free.q) or "in collision"
                    cand.reject("collision", f"grasp in collision: {why}")
                continue
            cand.q = r.q
            pre = kin.ik(cand.pregrasp, cand.rotation, seed=r.q, n_seeds=cfg.ik_seeds,
                         accept=lambda q: self._valid(q, cfg.approach_padding_m))
            if not pre.ok:
                free = kin.ik(cand.pregrasp, cand.rotation, seed=r.q, n_seeds=2)
                why = "no IK solution" if not free.ok else \
                    f"in collision ({self.checker.explain(free.q) or 'within padding'})"
                cand.reject("pregrasp", f"pre-grasp {cfg.pregrasp_m:.2f} m back: {why}")
                continue
            cand.q_pregrasp = pre.q
            if not self.checker.check_motion(pre.q, r.q, padding_m=cfg.grasp_padding_m):
                cand.reject("approach", "the approach from the pre-grasp to the grasp "
                            "collides with the scene")
                continue
            cand.stage = "ok"
            self._score(cand, current_q)

    def _score(self, cand: GraspCandidate, current_q: np.ndarray | None) -> None:
        cfg, kin = self.config, self.kin
        half = 0.5 * (kin.upper - kin.lower)
        lim = np.minimum(cand.q - kin.lower, kin.upper - cand.q) / np.maximum(half, 1e-9)
        t = {
            "margin": min(1.0, (self.gripper.max_opening_m - cand.width_m) / 2
                          / cfg.good_margin_m),
            "clearance": max(0.0, min(1.0, cand.clearance_m / cfg.good_clearance_m)),
            "depth": max(0.0, min(1.0, cand.grip_depth_m / max(1e-6, cand.grip_possible_m))),
            "yaw": 1.0 - min(1.0, abs(cand.yaw_offset) / (math.pi / 2)),
            "tilt": 1.0 - min(1.0, cand.tilt / (math.pi / 2)),
            "limits": float(np.clip(lim.min(), 0.0, 1.0)),
        }
        w = {"margin": cfg.w_margin, "clearance": cfg.w_clearance, "depth": cfg.w_depth,
             "yaw": cfg.w_yaw, "tilt": cfg.w_tilt, "limits": cfg.w_limits}
        if current_q is not None:
            t["travel"] = 1.0 - min(1.0, float(np.max(np.abs(cand.q_pregrasp - np.asarray(
                current_q, float)))) / math.pi)
            w["travel"] = cfg.w_travel
        cand.terms = t
        cand.score = sum(w[k] * t[k] for k in t) / sum(w.values())

    # ------------------------------------------------------------------ plan
    def plan(self, segment: Any, obstacles: Iterable[Any] = (),
             current_q: Sequence[float] | None = None) -> GraspPlan:
        """Candidates for a found ``segment`` (base frame), checked against the perceived
        scene (:meth:`scene`) and ranked.  ``current_q`` (6,): the arm's joint state (IK
        seed, and a score term preferring short motions)."""
        if not segment.found:
            return GraspPlan([], f"no object to grasp: {segment.reason}")
        vals = [*np.asarray(segment.centroid, float), segment.yaw, segment.width_m,
                segment.length_m, segment.support_z, segment.top_z]
        if not all(math.isfinite(float(x)) for x in vals):
            raise ValueError(f"segment has non-finite geometry: {vals}")
        cfg, g = self.config, self.gripper
        if segment.width_m + 2 * cfg.margin_m > g.max_opening_m:
            return GraspPlan([], f"object too wide for the gripper: {segment.width_m * 1000:.0f}"
                             f" mm across its long axis, the fingers open "
                             f"{g.max_opening_m * 1000:.0f} mm and need "
                             f"{cfg.margin_m * 1000:.0f} mm free per side")
        q0 = None if current_q is None else np.asarray(current_q, float)
        if q0 is not None and (q0.shape != (6,) or not np.isfinite(q0).all()):
            raise ValueError(f"current_q {q0.tolist()} is not 6 finite joint positions")
        self.checker.set_scene(self.scene(segment, obstacles))
        cands = self.candidates(segment)
        self._check(cands, q0)
        order = {s: i for i, s in enumerate(STAGES)}
        # twins tie: the wrist roll nearer its centre first
        cands.sort(key=lambda c: (-order[c.stage], -round(c.score, 6),
                                  abs(c.q[5]) if c.q is not None else 0.0))
        if any(c.ok for c in cands):
            return GraspPlan(cands)
        why = Counter(c.reason.split(":")[0] for c in cands)
        first = {}
        for c in cands:
            first.setdefault(c.reason.split(":")[0], c.reason)
        return GraspPlan(cands, f"no feasible grasp among {len(cands)} candidates: " + "; ".join(
            f"{n} x {first[k]}" for k, n in why.most_common()))
