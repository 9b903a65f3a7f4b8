"""The ``arm_planner`` node's request handling without ROS (core, no rclpy).

:class:`ArmService` keeps what the node receives, with the (node) time it arrived: the
arm's joint state, the robot's map pose from its sources (:class:`PoseSources`), the
perceived boxes (moved into the base frame, :meth:`ArmService.obstacles`).  It turns a
goal (:class:`ArmRequest`, the MoveArm goal in core types) into a checked joint goal and a
timed plan, or a :class:`Refusal` with the result code, the reason and the line to log;
:class:`ExecutionWatch` follows a published trajectory until the joints reach its goal; the
counters and :meth:`ArmService.diagnostics` feed ``/diagnostics``.  Times are arguments.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from sitebot.arm.motion import (CODE_ABORTED, CODE_CANCELED, CODE_INVALID_GOAL, CODE_SUCCEEDED,
                                ArmMotion, GoalRejected, MotionPlan)
from sitebot.types import (Pose2D, quaternion_multiply, quaternion_to_yaw, se2_compose,
                           yaw_to_quaternion)

__all__ = ["ArmRequest", "Refusal", "Frames", "PoseSources", "ExecutionWatch", "ArmService",
           "ee_goal_in_base", "planar_pose"]


@dataclass(frozen=True)
class ArmRequest:
    """A MoveArm goal: one of ``named_pose``, ``joint_positions`` or an end-effector pose
    (``ee_frame`` non-empty; ``ee_orientation`` x, y, z, w, all zeros = position only);
    ``max_velocity_scale`` in (0, 1], 0 = the configured default."""
    named_pose: str = ""
    joint_positions: tuple[float, ...] = ()
    ee_frame: str = ""
    ee_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ee_orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    max_velocity_scale: float = 0.0


@dataclass(frozen=True)
class Refusal:
    """A goal not planned: the MoveArm result code, the reason, and what the node logs
    (as an error when ``error``: an unexpected failure, else a warning)."""
    code: int
    reason: str
    log: str
    error: bool = False


@dataclass(frozen=True)
class Frames:
    """The frames goals and obstacles may come in: the base frame, ``base_link``
    (``base_link_z`` above it) and the map frame."""
    base: str = "base_footprint"
    map: str = "map"
    base_link_z: float = 0.0

    @property
    def accepted(self) -> str:
        return f"{self.base}, base_link, {self.map}"


def planar_pose(x: float, y: float, quaternion: Sequence[float]) -> Pose2D | None:
    """(x, y, yaw) from a position and an orientation (x, y, z, w); None when any of
    them is not finite."""
    if not all(math.isfinite(v) for v in (x, y, *quaternion)):
        return None
    return Pose2D(float(x), float(y), float(quaternion_to_yaw(quaternion)))


class PoseSources:
    """The robot's map pose from the source ``source``: ``parameter`` (``fixed``),
    ``filter`` (odometry/filtered), ``odom`` (odom composed with the ``spawn`` pose) or
    ``auto`` (filter when fresh, else odom); a pose older than ``timeout_s`` is stale."""

    def __init__(self, source: str, timeout_s: float, spawn: Sequence[float],
                 fixed: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self.source = source
        self.timeout_s = timeout_s
        self.spawn = Pose2D.of(spawn)
        self.fixed = Pose2D.of(fixed)
        self.latest: dict[str, tuple[Pose2D, float]] = {}     # "filter"/"odom" -> (pose, t)

    def update(self, which: str, pose: Pose2D, now: float) -> None:
        self.latest[which] = (pose, now)

    def _fresh(self, which: str, now: float) -> Pose2D | None:
        got = self.latest.get(which)
        return got[0] if got is not None and now - got[1] <= self.timeout_s else None

    def pose(self, now: float) -> tuple[Pose2D | None, str]:
        """(x, y, yaw) of the base in the map at ``now``, or None; and where it came from
        (or why there is none)."""
        if self.source == "parameter":
            return self.fixed, "parameter"
        filtered = self._fresh("filter", now)
        if self.source in ("filter", "auto") and filtered is not None:
            return filtered, "odometry/filtered"
        if self.source == "filter":
            return None, "no fresh odometry/filtered"
        odom = self._fresh("odom", now)
        if odom is not None:
            return se2_compose(self.spawn, odom), "odom+spawn"
        return None, "no fresh odometry (odometry/filtered or odom)"


def ee_goal_in_base(frame: str, position: Sequence[float], orientation: Sequence[float],
                    frames: Frames, pose: Sequence[float]) -> dict[str, Any]:
    """The end-effector goal's ``ee_position`` and ``ee_orientation`` in the base frame
    (:meth:`ArmMotion.joint_goal` arguments) from ``frame``; ``pose``: the robot's map pose.

    :raises GoalRejected: non-finite values, an unknown frame.
    """
    pos = np.asarray(position, dtype=float)
    quat = np.asarray(orientation, dtype=float)
    if not (np.isfinite(pos).all() and np.isfinite(quat).all()):
        raise GoalRejected(CODE_INVALID_GOAL, "ee_pose contains NaN or infinity")
    if frame == frames.base:
        return {"ee_position": pos, "ee_orientation": quat}
    if frame == "base_link":
        return {"ee_position": pos + np.array([0.0, 0.0, frames.base_link_z]),
                "ee_orientation": quat}
    if frame == frames.map:
        x, y, _ = Pose2D.of(pose).relative((pos[0], pos[1], 0.0))
        q_b = quat
        if np.linalg.norm(quat) > 1e-9:
            q_b = np.array(quaternion_multiply(yaw_to_quaternion(-pose[2]), quat))
        return {"ee_position": np.array([x, y, pos[2]]), "ee_orientation": q_b}
    raise GoalRejected(CODE_INVALID_GOAL, f"ee_pose in unknown frame '{frame}'; accepted: "
                       f"{frames.accepted}")


@dataclass
class ExecutionWatch:
    """Follows a published trajectory of ``duration`` [s] from ``start`` until the joints
    are within ``tolerance_rad`` of ``goal``, or ``limit_s`` has passed."""
    goal: np.ndarray
    start: float
    duration: float
    limit_s: float
    tolerance_rad: float
    joint_timeout_s: float

    def tick(self, now: float, q: np.ndarray | None, q_time: float
             ) -> tuple[tuple[str, float], tuple[int, str] | None]:
        """((feedback state, progress 0..1), (result code, reason) once it has ended)."""
        el = now - self.start
        fresh = q is not None and now - q_time <= self.joint_timeout_s
        err = float(np.max(np.abs(q - self.goal))) if q is not None else math.inf
        feedback = ("executing" if el < self.duration else "settling",
                    float(min(1.0, el / self.duration)) if self.duration > 0 else 1.0)
        if fresh and err <= self.tolerance_rad and el >= 0.0:
            return feedback, (CODE_SUCCEEDED, f"reached (largest joint error {err:.4f} rad)")
        if el > self.limit_s:
            return feedback, (CODE_ABORTED, f"not reached after {el:.1f} s (largest joint "
                              f"error {err:.3f} rad; joint_states "
                              f"{'fresh' if fresh else 'stale'}): the supervisor may have "
                              "refused or stopped the trajectory")
        return feedback, None


class ArmService:
    """The arm planner's state and decisions; ``params``: the node's parameters
    (``sitebot.arm.config.SCHEMA``), ``site``: the site bundle (its static collision objects
    are obstacles; its initial pose composes odometry), or None (no scene, odometry from the
    origin)."""

    def __init__(self, params: Mapping[str, Any], site: Any = None,
                 motion: ArmMotion | None = None) -> None:
        self.p = params
        self.motion = motion or ArmMotion(params, scene=site.scene if site else ())
        spawn = (tuple(site.initial_pose(params["initial_pose"])) if site is not None
                 else (0.0, 0.0, 0.0))
        self.poses = PoseSources(params["pose_source"], params["pose_timeout_s"], spawn,
                                 params["robot_pose"])
        self.frames = Frames(params["base_frame"], params["map_frame"],
                             float(self.motion.kin.static_frames.get(
                                 "base_link", np.eye(4))[2, 3]))
        self.joint_names = self.motion.kin.joint_names
        self.q: np.ndarray | None = None
        self.q_time = -math.inf
        self.obstacles_time = -math.inf
        self.obstacle_count = 0
        self.counts = {"goals": 0, "succeeded": 0, "rejected": 0, "aborted": 0,
                       "canceled": 0, "trajectories": 0, "bad_messages": 0}
        self.last_planning_ms = math.nan
        self.last_reason = ""

    # ------------------------------------------------------------------ inputs
    def bad_message(self, what: str, why: str) -> str:
        """Count a message that was ignored; the warning to log."""
        self.counts["bad_messages"] += 1
        return f"{what}: {why}; ignored"

    def joint_states(self, names: Sequence[str], positions: Sequence[float], now: float
                     ) -> str | None:
        """The arm's state from a joint state message; why it was ignored, or None (a
        message without all arm joints is another group's and silently skipped)."""
        index = {n: i for i, n in enumerate(names)}
        if not all(n in index for n in self.joint_names):
            return None
        if len(positions) != len(names):
            return f"{len(positions)} positions for {len(names)} names"
        q = np.array([positions[index[n]] for n in self.joint_names], dtype=float)
        if not np.isfinite(q).all():
            return "non-finite arm position"
        self.q, self.q_time = q, now
        return None

    def obstacles(self, frame: str, boxes: Iterable[tuple[Any, Sequence[float],
                                                          Sequence[float]]],
                  now: float) -> list[str]:
        """Perceived boxes (id, centre, size) in ``frame`` become the scene's obstacles
        (in the base frame; see :meth:`ArmMotion.set_obstacles`); the problems found, each
        a warning (the message, or the box, was ignored)."""
        if frame in (self.frames.base, "base_link"):
            dz = 0.0 if frame == self.frames.base else self.frames.base_link_z
            pose = None
        elif frame == self.frames.map:
            pose, why = self.poses.pose(now)
            if pose is None:
                return [f"in frame '{frame}' but {why}"]
        else:
            return [f"unknown frame '{frame}' (accepted: {self.frames.accepted})"]
        out, problems = [], []
        for oid, centre, size in boxes:
            c = np.array(centre, dtype=float)
            s = np.array(size, dtype=float)
            if not (np.isfinite(c).all() and np.isfinite(s).all()):
                problems.append(f"obstacle {oid} has non-finite values")
                continue
            if pose is None:
                out.append((c + np.array([0.0, 0.0, dz]), s, 0.0))
            else:                                           # map -> base
                x, y, _ = pose.relative((c[0], c[1], 0.0))
                out.append((np.array([x, y, c[2]]), s, -pose.yaw))
        self.obstacle_count = self.motion.set_obstacles(out, self.q)
        self.obstacles_time = now
        return problems

    # ------------------------------------------------------------------ goals
    def joint_goal(self, req: ArmRequest, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(current q, joint goal) for ``req`` at ``now``.

        :raises GoalRejected: stale inputs, an invalid goal, no IK, a goal in collision.
        """
        p = self.p
        if self.q is None or now - self.q_time > p["joint_state_timeout_s"]:
            raise GoalRejected(CODE_ABORTED, "no fresh joint_states for the arm joints "
                               f"(last {now - self.q_time:.2f} s ago)" if self.q is not None
                               else "no joint_states received for the arm joints")
        pose, why = self.poses.pose(now)
        if pose is None:
            raise GoalRejected(CODE_ABORTED, f"robot map pose unknown: {why}; the site's "
                               "static objects cannot be placed around the arm")
        if p["obstacles_required"] and now - self.obstacles_time > p["obstacle_timeout_s"]:
            raise GoalRejected(CODE_ABORTED, "no fresh obstacles (obstacles_required)")
        self.motion.set_base_pose(pose)
        q = self.q.copy()
        kwargs: dict[str, Any] = {"named_pose": req.named_pose,
                                  "joint_positions": list(req.joint_positions),
                                  "current_q": q}
        if req.ee_frame:
            kwargs.update(ee_goal_in_base(req.ee_frame, req.ee_position, req.ee_orientation,
                                          self.frames, pose))
        elif any(v != 0.0 for v in req.ee_position):
            raise GoalRejected(CODE_INVALID_GOAL, "ee_pose has a position but no "
                               "header.frame_id")
        return q, self.motion.joint_goal(**kwargs)

    def plan(self, req: ArmRequest, now: float) -> MotionPlan | Refusal:
        """A new goal: its timed plan, or why not (counted either way)."""
        self.counts["goals"] += 1
        try:
            q0, qg = self.joint_goal(req, now)
            plan = self.motion.plan(q0, qg, float(req.max_velocity_scale))
        except GoalRejected as e:
            self.counts["rejected"] += 1
            self.last_reason = e.reason
            boxes = "; ".join(
                f"{o.name} at {np.round(o.pose[:3, 3], 2).tolist()} half "
                f"{np.round(o.size, 2).tolist()}" for o in self.motion.obstacle_prims[:12])
            return Refusal(e.code, e.reason, f"move_arm refused: {e.reason} (perceived boxes, "
                           f"base frame: {boxes or 'none'})")
        except Exception as e:  # noqa: BLE001 - report, never crash
            self.counts["aborted"] += 1
            self.last_reason = f"{type(e).__name__}: {e}"
            return Refusal(CODE_ABORTED, self.last_reason, f"move_arm failed: {self.last_reason}",
                           error=True)
        self.last_planning_ms = plan.planning_time_s * 1000.0
        return plan

    def watch(self, plan: MotionPlan, now: float) -> ExecutionWatch:
        """The watch of ``plan``'s trajectory, published at ``now``."""
        dur = float(plan.trajectory.duration)
        return ExecutionWatch(plan.goal, now, dur, dur * self.p["execution_timeout_factor"]
                              + self.p["settle_timeout_s"], self.p["reached_tolerance_rad"],
                              self.p["joint_state_timeout_s"])

    def ended(self, code: int, reason: str | None = None) -> None:
        """A goal ended with ``code`` (counted; ``reason`` kept for the diagnostics)."""
        key = {CODE_SUCCEEDED: "succeeded", CODE_CANCELED: "canceled"}.get(code, "aborted")
        self.counts[key] += 1
        if reason is not None:
            self.last_reason = reason

    def hold_position(self) -> np.ndarray | None:
        """Where to hold the arm (the measured state within the limits), None unknown."""
        if self.q is None:
            return None
        return np.clip(self.q, self.motion.kin.lower, self.motion.kin.upper)

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self, now: float) -> tuple[list[str], list[tuple[str, str]]]:
        """(problems (none: ready), key/value pairs) for ``/diagnostics``."""
        pose, why = self.poses.pose(now)
        problems = []
        if self.q is None or now - self.q_time > self.p["joint_state_timeout_s"]:
            problems.append("joint_states stale or missing")
        if pose is None:
            problems.append(f"map pose: {why}")
        if self.p["obstacles_required"] and now - self.obstacles_time > \
                self.p["obstacle_timeout_s"]:
            problems.append("obstacles stale or missing")
        checker = self.motion.checker
        values = [(k, str(v)) for k, v in self.counts.items()]
        values += [("last_planning_ms", f"{self.last_planning_ms:.1f}"),
                   ("last_reason", self.last_reason),
                   ("collision_checks", str(checker.checks)),
                   ("obstacles", str(self.obstacle_count)),
                   ("scene_primitives", str(len(checker.scene)))]
        return problems, values
