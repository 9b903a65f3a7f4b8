"""The arm's motion pipeline (core, no ROS): goal -> joint goal (named pose, joint vector or
end-effector pose through IK) -> collision-free path (OMPL + shortcutting + dense
re-check) -> ruckig-timed trajectory.  The ``arm_planner`` node is a thin adapter around
:class:`ArmMotion`; the bench and the tests use it directly.

Goals are refused with a :class:`GoalRejected` carrying a result code (invalid goal, no
IK, no plan) and a reason naming the problem.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from sitebot.arm.collision import (CollisionChecker, Primitive, box_primitive, scene_near,
                                   scene_primitives)
from sitebot.arm.config import param_defaults, parse_named_poses
from sitebot.arm.kinematics import ArmKinematics, pose_matrix
from sitebot.arm.planner import ArmPlanner, PlannerSettings, PlanResult, seed_ompl
from sitebot.arm.timing import TimedTrajectory, time_parameterize
from sitebot.description.urdf import load_robot_description
from sitebot.types import quaternion_matrix

__all__ = ["ArmMotion", "GoalRejected", "MotionPlan", "CODE_SUCCEEDED", "CODE_NO_PLAN",
           "CODE_NO_IK", "CODE_INVALID_GOAL", "CODE_ABORTED", "CODE_CANCELED",
           "gauge_view_target", "grasp_target"]

# the result codes of sitebot_interfaces/action/MoveArm (kept equal; checked by a test)
CODE_SUCCEEDED, CODE_NO_PLAN, CODE_NO_IK, CODE_INVALID_GOAL, CODE_ABORTED, CODE_CANCELED = \
    0, 1, 2, 3, 4, 5


class GoalRejected(Exception):
    """A goal that cannot be planned: ``code`` (a MoveArm result code) and the reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class MotionPlan:
    goal: np.ndarray                  # (6,) joint goal
    path: np.ndarray                  # (N, 6) waypoints
    trajectory: TimedTrajectory
    plan: PlanResult
    planning_time_s: float            # IK + planning + timing


def gauge_view_target(face_pose: np.ndarray, distance_m: float = 0.25
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(TCP position, approach axis) to look at a dial: ``distance_m`` in front of the face
    (``face_pose`` 4x4 in the base frame, the face looking along its local +x), the tool's
    +z pointing at the dial centre."""
    n = face_pose[:3, 0] / np.linalg.norm(face_pose[:3, 0])
    return face_pose[:3, 3] + distance_m * n, -n


def grasp_target(object_pose: np.ndarray, approach: Sequence[float] = (0.0, 0.0, -1.0),
                 standoff_m: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(TCP position, approach axis) to grasp an object at ``object_pose`` (4x4, base
    frame) moving along ``approach`` (default: from above); ``standoff_m`` > 0 gives the
    pre-grasp point that far back along the approach."""
    a = np.asarray(approach, float)
    a = a / np.linalg.norm(a)
    return object_pose[:3, 3] - standoff_m * a, a


class ArmMotion:
    """Kinematics, collision model, planner and timing built from the parameters
    (``sitebot.arm.config.SCHEMA``; missing keys take their defaults)."""

    def __init__(self, params: Mapping[str, Any] | None = None, desc: Any = None,
                 scene: Sequence[Any] = ()) -> None:
        p = param_defaults()
        p.update(dict(params or {}))
        self.p = p
        self.desc = desc or load_robot_description()
        grip = self.desc.gripper_joints[0]
        self.kin = ArmKinematics(self.desc, fixed_positions={grip: p["gripper_opening_m"]})
        self.checker = CollisionChecker(self.kin, p["padding_m"], p["self_padding_m"],
                                        p["max_step_m"], seed=int(p["seed"]))
        seed_ompl(int(p["seed"]))
        self.planner = ArmPlanner(self.checker, PlannerSettings(
            planner=p["planner"], timeout_s=p["planning_timeout_s"],
            simplifier=p["simplifier"], recheck_step_m=p["recheck_step_m"]))
        self.named = parse_named_poses(p["named_poses"], self.kin.lower, self.kin.upper)
        self.site_prims = scene_primitives(scene)     # map frame
        self.world_prims: list[Primitive] = []
        self.obstacle_prims: list[Primitive] = []
        self.exempt: list[str] = []          # obstacles left out for the current ee goal
        self.exempt_at: np.ndarray | None = None
        self.base_pose: tuple[float, float, float] | None = None
        self.vmax = self.kin.velocity_limits.copy()
        self.amax = np.asarray(p["max_acceleration"], float)
        self.jmax = np.asarray(p["max_jerk"], float)

    # ------------------------------------------------------------------ scene
    def set_base_pose(self, pose: Sequence[float] | None, force: bool = False) -> None:
        """The robot's map pose (x, y, yaw); the site's static objects near it become
        obstacles.
        Rebuilt only when the pose moved (> 1 cm or 0.5 deg) unless ``force``."""
        if pose is None or not self.site_prims:
            self.world_prims = []
            self.base_pose = None if pose is None else tuple(float(v) for v in pose)
            self._update_scene()
            return
        pose = tuple(float(v) for v in pose)
        if not force and self.base_pose is not None and \
                math.hypot(pose[0] - self.base_pose[0], pose[1] - self.base_pose[1]) < 0.01 \
                and abs(math.remainder(pose[2] - self.base_pose[2], math.tau)) < 0.009:
            return
        self.base_pose = pose
        self.world_prims = scene_near(self.site_prims, pose, self.p["scene_radius_m"])
        self._update_scene()

    def set_obstacles(self, boxes: Sequence[tuple], current_q: Sequence[float] | None = None
                      ) -> int:
        """Perceived obstacles: boxes (centre, size[, yaw]) in the base frame.  Boxes
        that overlap the arm at ``current_q`` or the robot body (the robot seeing itself)
        are dropped (MoveIt's self-filter); returns how many were kept."""
        kept = []
        for i, box in enumerate(boxes):
            c, s = box[0], box[1]
            yaw = float(box[2]) if len(box) > 2 else 0.0
            c = np.asarray(c, float)
            s = np.asarray(s, float)
            if c.shape != (3,) or s.shape != (3,) or not (np.isfinite(c).all() and
                                                          np.isfinite(s).all()):
                continue
            if not math.isfinite(yaw):
                continue
            prim = box_primitive(c, np.abs(s), yaw, f"obstacle:{i}")
            if self._overlaps_robot(prim, current_q) or self._is_mapped_structure(prim):
                continue
            kept.append(prim)
        self.obstacle_prims = kept
        self._update_scene()
        return len(kept)

    #: perceived boxes with a half extent above this that touch mapped static bodies are
    #: the structure itself (a wall, a bench with its tools) as one cluster's bounding box
    LARGE_CLUSTER_HALF_M = 0.5

    def _is_mapped_structure(self, prim: Primitive) -> bool:
        """A large perceived box that touches the world's static bodies: that structure is
        in the scene exactly already, and its axis-aligned bounding box (a wall plus the
        bench in front of it, 0.8 x 2.4 x 1.3 m) would wall off the whole workspace."""
        if max(prim.size) <= self.LARGE_CLUSTER_HALF_M or not self.world_prims:
            return False
        from sitebot.arm.collision import _PrimitiveTable
        half = np.asarray(prim.size, float)
        corners = np.array([[sx, sy, sz] for sx in (-1, 0, 1) for sy in (-1, 0, 1)
                            for sz in (-1, 0, 1)], float) * half
        pts = corners @ prim.pose[:3, :3].T + prim.pose[:3, 3]
        return bool((_PrimitiveTable(self.world_prims).distances(pts) < 0.05).any())

    def _overlaps_robot(self, prim: Primitive, q: Sequence[float] | None) -> bool:
        from sitebot.arm.collision import _PrimitiveTable
        table = _PrimitiveTable([prim])
        body = [b for b in self.checker.body if b.name != "ground"]
        for b in body:
            c, r = _covering(b)
            if (table.distances(c)[:, 0] < r + 0.02).any():
                return True
        if q is not None and np.isfinite(np.asarray(q, float)).all():
            cen = self.checker._centres(np.asarray(q, float)[None])[0]
            if (table.distances(cen)[:, 0] < self.checker.sphere_radius + 0.05).any():
                return True
        return False

    def _update_scene(self) -> None:
        """Rebuild the checker's scene.  While an end-effector goal is planned
        (``exempt_at``, set by :meth:`joint_goal`), a small perceived box within 3 cm of
        the goal position is the object about to be grasped and is left out (MoveIt's
        allowed-collision entry for the target)."""
        obstacles = list(self.obstacle_prims)
        exempt_at = self.exempt_at
        self.exempt = []
        if exempt_at is not None and obstacles:
            from sitebot.arm.collision import _PrimitiveTable
            table = _PrimitiveTable(obstacles)
            d = table.distances(np.asarray(exempt_at, float)[None])[0]
            keep = []
            for idx, di in zip(table.order, d):
                prim = obstacles[idx]
                if di < 0.03 and prim.bounding_radius() < 0.3:
                    self.exempt.append(prim.name)
                else:
                    keep.append(prim)
            obstacles = keep
        self.checker.set_scene(list(self.world_prims) + obstacles)

    # ------------------------------------------------------------------ goals
    def joint_goal(self, *, named_pose: str = "", joint_positions: Sequence[float] = (),
                   ee_position: Sequence[float] | None = None,
                   ee_orientation: Sequence[float] | None = None,
                   approach_axis: Sequence[float] | None = None,
                   current_q: Sequence[float] | None = None) -> np.ndarray:
        """The joint vector for one kind of goal (exactly one must be given).

        ``ee_position`` [m] and ``ee_orientation`` (quaternion x, y, z, w; None or all
        zeros: position only) or ``approach_axis`` are in the base frame, for the TCP."""
        kinds = [bool(named_pose), len(joint_positions) > 0, ee_position is not None]
        if sum(kinds) != 1:
            raise GoalRejected(CODE_INVALID_GOAL, "give exactly one of named_pose, "
                               f"joint_positions, ee_pose (got {sum(kinds)})")
        exempt_at = None
        if ee_position is not None and np.isfinite(np.asarray(ee_position, float)).all():
            exempt_at = np.asarray(ee_position, float).reshape(-1)[:3]
        if exempt_at is not None or self.exempt_at is not None:
            self.exempt_at = exempt_at
            self._update_scene()
        if named_pose:
            if named_pose not in self.named:
                raise GoalRejected(CODE_INVALID_GOAL, f"unknown named pose {named_pose!r}; "
                                   f"known: {', '.join(sorted(self.named))}")
            q = self.named[named_pose].copy()
        elif len(joint_positions):
            q = np.asarray(list(joint_positions), dtype=float)
            if q.shape != (6,):
                raise GoalRejected(CODE_INVALID_GOAL, f"joint_positions has {q.size} values; "
                                   f"the arm has 6 ({', '.join(self.kin.joint_names)})")
            if not np.isfinite(q).all():
                raise GoalRejected(CODE_INVALID_GOAL, f"joint_positions {q.tolist()} "
                                   "contains NaN or infinity")
            if not self.kin.within_limits(q):
                bad = [f"{n} = {v:g} not in [{lo:g}, {hi:g}]" for n, v, lo, hi in
                       zip(self.kin.joint_names, q, self.kin.lower, self.kin.upper)
                       if not lo - 1e-9 <= v <= hi + 1e-9]
                raise GoalRejected(CODE_INVALID_GOAL, "joint goal outside the limits: "
                                   + "; ".join(bad))
        else:
            q = self._ik(ee_position, ee_orientation, approach_axis, current_q)
        why = self.checker.explain(q)
        if why:
            raise GoalRejected(CODE_INVALID_GOAL, f"goal in collision: {why}")
        return q

    def _ik(self, position, orientation, approach_axis, current_q) -> np.ndarray:
        pos = np.asarray(position, dtype=float)
        if pos.shape != (3,) or not np.isfinite(pos).all():
            raise GoalRejected(CODE_INVALID_GOAL, f"end-effector position {list(position)} "
                               "is not 3 finite numbers")
        rot = None
        if orientation is not None:
            quat = np.asarray(orientation, dtype=float)
            if quat.shape != (4,) or not np.isfinite(quat).all():
                raise GoalRejected(CODE_INVALID_GOAL, f"orientation {list(orientation)} is "
                                   "not a finite quaternion")
            n = float(np.linalg.norm(quat))
            if n > 1e-9:
                if abs(n - 1.0) > 0.05:
                    raise GoalRejected(CODE_INVALID_GOAL, f"orientation quaternion norm "
                                       f"{n:.3f} is not 1")
                rot = quaternion_matrix(quat)
        reach = float(np.linalg.norm(pos - self.checker._shoulder))
        if reach > float(self.checker._lever[1]) + 0.05:
            raise GoalRejected(CODE_NO_IK, f"end-effector target {np.round(pos, 3).tolist()} "
                               f"is {reach:.2f} m from the shoulder, beyond the arm's reach")
        seed = None if current_q is None else np.asarray(current_q, float)
        res = self.kin.ik(pos, rot, approach_axis=approach_axis, seed=seed,
                          n_seeds=int(self.p["ik_seeds"]),
                          position_tol_m=self.p["goal_position_tolerance_m"],
                          angle_tol_rad=self.p["goal_angle_tolerance_rad"],
                          rng_seed=int(self.p["seed"]), accept=self.checker.is_valid)
        if not res.ok:
            # what stands in the way: the nearest solution that ignores collisions
            free = self.kin.ik(pos, rot, approach_axis=approach_axis, seed=seed,
                               n_seeds=int(self.p["ik_seeds"]),
                               position_tol_m=self.p["goal_position_tolerance_m"],
                               angle_tol_rad=self.p["goal_angle_tolerance_rad"],
                               rng_seed=int(self.p["seed"]))
            why = self.checker.explain(free.q) if free.ok else None
            raise GoalRejected(CODE_NO_IK, "no collision-free IK solution within tolerance "
                               f"(best: {res.position_error_m * 1000:.1f} mm, "
                               f"{math.degrees(res.angle_error_rad):.1f} deg after "
                               f"{res.seeds} seeds)"
                               + (f"; without collisions: {why}" if why else ""))
        return res.q

    # ------------------------------------------------------------------ plan
    def plan(self, current_q: Sequence[float], goal_q: Sequence[float],
             velocity_scale: float = 0.0, timeout_s: float | None = None) -> MotionPlan:
        """Plan and time a motion from ``current_q`` to ``goal_q``.

        ``velocity_scale`` in (0, 1] (0: the configured default) scales the velocity and
        acceleration limits."""
        t0 = time.perf_counter()
        q0 = np.asarray(current_q, dtype=float)
        if q0.shape != (6,) or not np.isfinite(q0).all():
            raise GoalRejected(CODE_ABORTED, f"current joint state {q0.tolist()} is not 6 "
                               "finite values")
        s = float(velocity_scale)
        if not math.isfinite(s) or s < 0.0 or s > 1.0:
            raise GoalRejected(CODE_INVALID_GOAL, f"max_velocity_scale {velocity_scale} not "
                               "in (0, 1] (0 = default)")
        if s == 0.0:
            s = float(self.p["velocity_scale"])
        res = self.planner.plan(q0, goal_q, timeout_s=timeout_s)
        if not res.ok:
            code = CODE_INVALID_GOAL if res.reason.startswith("goal") else CODE_NO_PLAN
            raise GoalRejected(code, res.reason)
        traj = time_parameterize(res.path, self.vmax * s, self.amax * s, self.jmax,
                                 step_s=self.p["trajectory_step_s"],
                                 max_points=int(self.p["max_points"]))
        return MotionPlan(np.asarray(goal_q, float), res.path, traj, res,
                          time.perf_counter() - t0)


def _covering(prim: Primitive) -> tuple[np.ndarray, np.ndarray]:
    from sitebot.arm.collision import covering_spheres
    return covering_spheres(prim)


def pose_from_xyz_quat(xyz: Sequence[float], quat: Sequence[float]) -> np.ndarray:
    """4x4 from a translation and a quaternion (x, y, z, w)."""
    return pose_matrix(xyz, quaternion_matrix(quat))
