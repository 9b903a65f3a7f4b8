"""The robot as the skills see it, less the transport (no rclpy).

:class:`TrackedPorts` implements :class:`~sitebot.executor.types.RobotPorts` from what the
robot reports (the ``update_*`` methods, fed by the ``task_executor`` node's
subscriptions in core types) and a few transport hooks that a subclass supplies (the node's
``RosPorts``): the clock (:meth:`now`, :meth:`sleep`), :meth:`log`, the actions
(:meth:`navigate`, :meth:`_arm_named`, :meth:`_arm_pose`), the base speed (:meth:`_drive`),
the gripper command (:meth:`_gripper`), the confirmation request (:meth:`_ask`),
:meth:`save_image` and :meth:`stop_motion`.

What is bookkeeping or waiting lives here: the supervisor's state as a snapshot, gauge
readings and tag sightings, where an object is, arm motions held while the supervisor stops
the robot, the straight approach loop (:class:`~sitebot.executor.approach.ApproachDrive`),
the gripper settling, the wait for a supervisor's answer.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from sitebot.executor.approach import ApproachConfig, ApproachDrive, FrontScan
from sitebot.executor.config import check_fields
from sitebot.executor.locate import Cluster, perceived_position, station_offset
from sitebot.executor.mission import confirmation_answer
from sitebot.executor.types import MotionResult, Reading, SafetySnapshot
from sitebot.perception.object_segment import (ObjectSegment, SegmentConfig, moved_segment,
                                                segment_object)
from sitebot.site.registry import SiteRegistry
from sitebot.types import Pose2D, SafetyLevel

__all__ = ["PortsConfig", "TrackedPorts"]

GAUGE_BUFFER = 200          # gauge readings kept (the newest)


@dataclass(frozen=True)
class PortsConfig:
    """Waits and lookups of the ports (robot/simulated seconds); the ``task_executor``
    parameters of the same names set them."""
    gripper_joint: str = "gripper_left_finger_joint"
    arm_joints: tuple[str, ...] = tuple(f"arm_joint_{i}" for i in range(1, 7))
    gripper_time_s: float = 1.0          # duration of a gripper motion
    gripper_settle_s: float = 0.3        # waited after it before the fingers are looked at
    gripper_still_mps: float = 0.001     # a finger slower than this has stopped
    gripper_wait_s: float = 3.0          # longest wait for the fingers to stop
    arm_stop_wait_s: float = 15.0        # an arm motion waits this long for a stop to clear
    object_match_m: float = 0.15         # a cluster this close to a surveyed object is it
    object_max_size_m: float = 0.6       # larger clusters are not objects
    depth_wait_s: float = 5.0            # longest wait for a depth image taken since asked

    def __post_init__(self) -> None:
        object.__setattr__(self, "arm_joints", tuple(self.arm_joints))
        check_fields(self)


class TrackedPorts:
    """RobotPorts from the robot's reported state; see the module docstring for the hooks.

    ``cancel`` is the running plan's cancel event; ``pause_limit_s`` bounds the wait of an
    arm motion for a protective stop to clear (with ``config.arm_stop_wait_s``)."""

    def __init__(self, registry: SiteRegistry, cancel: threading.Event,
                 config: PortsConfig | None = None, approach: ApproachConfig | None = None,
                 pause_limit_s: float = 120.0) -> None:
        self.registry = registry
        self.cancel = cancel
        self.config = config or PortsConfig()
        self.approach_config = approach or ApproachConfig()
        self.pause_limit_s = pause_limit_s
        self.lock = threading.Lock()
        self._safety: tuple[int, bool, tuple[str, ...], float] | None = None
        self.pose: Pose2D | None = None                    # map frame
        self.odom: Pose2D | None = None                    # odom frame
        self.scan: FrontScan | None = None
        self.obstacles: tuple[bool, list[Cluster]] | None = None     # (in map frame, ...)
        self.gauges: list[tuple[float, Reading]] = []      # (arrival, reading)
        self.tags: dict[int, float] = {}                   # tag -> last seen (arrival)
        self.tag_poses: dict[int, tuple[float, tuple[float, float]]] = {}   # base frame
        self.joints: dict[str, tuple[float, float]] = {}   # name -> (position, velocity)
        self.confirm_answer: tuple[str, bool] | None = None
        #: pose of the depth camera's optical frame in the base frame (4x4), or None
        self.camera_mount: np.ndarray | None = None

    # -- transport hooks ----------------------------------------------------------------
    def now(self) -> float:
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def log(self, message: str) -> None:
        raise NotImplementedError

    def _arm_named(self, name: str, timeout_s: float) -> MotionResult:
        raise NotImplementedError

    def _arm_pose(self, xyz_map: Sequence[float], rpy: Sequence[float],
                  timeout_s: float) -> MotionResult:
        raise NotImplementedError

    def _arm_joints(self, positions: Sequence[float], timeout_s: float) -> MotionResult:
        raise NotImplementedError

    def _drive(self, speed_mps: float) -> None:
        """Command the base straight ahead at ``speed_mps`` (0: stop)."""
        raise NotImplementedError

    def _depth_frame(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The newest depth image: (depth [m] (H, W), K (3, 3), stamp [s]), or None."""
        return None

    def _gripper(self, opening_m: float, duration_s: float) -> None:
        raise NotImplementedError

    def _ask(self, question: str, plan_id: str) -> None:
        """Publish the request for a supervisor's confirmation."""
        raise NotImplementedError

    # -- what the robot reports ---------------------------------------------------------
    def update_safety(self, level: int, estop_latched: bool, reasons: Iterable[str],
                      now: float) -> None:
        with self.lock:
            self._safety = (int(level), bool(estop_latched), tuple(reasons), now)

    def update_pose(self, pose: Sequence[float]) -> bool:
        """The robot's map pose; False (and no pose) when it is not finite."""
        p = Pose2D.of(pose)
        self.pose = p if p.is_finite() else None
        return self.pose is not None

    def update_odom(self, odom: Sequence[float]) -> None:
        p = Pose2D.of(odom)
        if p.is_finite():
            self.odom = p

    def update_scan(self, scan: FrontScan) -> None:
        self.scan = scan

    def update_obstacles(self, in_map: bool, clusters: list[Cluster]) -> None:
        self.obstacles = (in_map, clusters)

    def add_gauge(self, now: float, reading: Reading) -> None:
        with self.lock:
            self.gauges.append((now, reading))
            del self.gauges[:-GAUGE_BUFFER]

    def update_tags(self, now: float,
                    sightings: Iterable[tuple[int, tuple[float, float]]]) -> None:
        """Tags seen at ``now`` with their (x, y) in the base frame ((0, 0): no pose)."""
        for tag, (x, y) in sightings:
            self.tags[tag] = now
            if math.isfinite(x) and math.isfinite(y) and (x, y) != (0.0, 0.0):
                self.tag_poses[tag] = (now, (x, y))

    def update_joints(self, names: Sequence[str], positions: Sequence[float],
                      velocities: Sequence[float]) -> None:
        """Joint states; ignored when the positions do not match the names, missing
        velocities count as 0, non-finite entries are skipped."""
        n = len(names)
        if len(positions) != n:
            return
        vel = list(velocities) if len(velocities) == n else [0.0] * n
        for name, q, v in zip(names, positions, vel):
            if math.isfinite(q) and math.isfinite(v):
                self.joints[name] = (float(q), float(v))

    def receive_answer(self, role: str, in_reply_to: str, text: str) -> str:
        """A reply to a confirmation request, *role* being the role its authority assertion
        proved ('' when none did): a "yes" counts only from a supervisor; a "no" from
        anyone (declining, like stopping, is always allowed).  Returns the event to log."""
        yes = confirmation_answer(text)
        if yes is None:
            return f"confirmation answer {text!r} not understood (yes/no)"
        if yes and role != "supervisor":
            return (f"confirmation 'yes' from role {role or 'unauthenticated'!r} ignored: a "
                    "supervisor must confirm")
        self.confirm_answer = (in_reply_to, yes)
        return f"confirmation for {in_reply_to}: {'yes' if yes else 'no'}"

    # -- RobotPorts ---------------------------------------------------------------------
    def safety(self) -> SafetySnapshot:
        with self.lock:
            s = self._safety
        if s is None:
            return SafetySnapshot(SafetyLevel.PROTECTIVE_STOP, False, ("no safety state",),
                                  math.inf)
        level, estop, reasons, at = s
        return SafetySnapshot(SafetyLevel(min(level, 3)), estop, reasons,
                              max(0.0, self.now() - at))

    def robot_pose(self) -> Pose2D | None:
        return self.pose

    def odometry_pose(self) -> Pose2D | None:
        return self.odom

    def _wait_until_motion_allowed(self) -> MotionResult | None:
        """An arm trajectory sent during a protective stop is refused by the supervisor:
        wait (up to ``arm_stop_wait_s``, at most ``pause_limit_s``) for the stop to clear;
        a result when it does not."""
        t_end = self.now() + min(self.config.arm_stop_wait_s, self.pause_limit_s)
        while self.safety().stopped:
            if self.cancel.is_set():
                return MotionResult("canceled", "plan canceled")
            if self.now() > t_end:
                snap = self.safety()
                return MotionResult("blocked", "protective stop: "
                                    + (", ".join(snap.reasons) or "no reason given"))
            self.sleep(0.1)
        return None

    def move_arm_named(self, name: str, timeout_s: float) -> MotionResult:
        held = self._wait_until_motion_allowed()
        return held if held is not None else self._arm_named(name, timeout_s)

    def move_arm_pose(self, xyz_map: Sequence[float], rpy: Sequence[float],
                      timeout_s: float) -> MotionResult:
        if not all(math.isfinite(v) for v in (*xyz_map, *rpy)):
            return MotionResult("rejected", "non-finite end-effector goal")
        held = self._wait_until_motion_allowed()
        return held if held is not None else self._arm_pose(xyz_map, rpy, timeout_s)

    def move_arm_joints(self, positions: Sequence[float], timeout_s: float) -> MotionResult:
        q = [float(v) for v in positions]
        if len(q) != len(self.config.arm_joints) or not all(math.isfinite(v) for v in q):
            return MotionResult("rejected", f"joint goal {q} is not {len(self.config.arm_joints)}"
                                " finite positions")
        held = self._wait_until_motion_allowed()
        return held if held is not None else self._arm_joints(q, timeout_s)

    def arm_positions(self) -> tuple[float, ...] | None:
        st = [self.joints.get(n) for n in self.config.arm_joints]
        if not st or any(v is None for v in st):
            return None
        return tuple(float(v[0]) for v in st)

    def approach(self, distance_m: float, timeout_s: float) -> tuple[MotionResult, float]:
        """Drive straight by ``distance_m`` (negative: backwards) on odometry, no closer to
        what the laser sees than the configured gap; the result and the distance actually
        driven.  Stops short, with success, when the gap is used up or the supervisor holds
        the base (see :class:`~sitebot.executor.approach.ApproachDrive`)."""
        cfg = self.approach_config
        start = self.odom
        if start is None or not math.isfinite(distance_m):
            return MotionResult("unavailable", "no odometry"), 0.0
        drive = ApproachDrive(distance_m, start, self.now(), timeout_s, cfg)
        try:
            while True:
                if self.cancel.is_set():
                    return MotionResult("canceled", "plan canceled"), drive.travelled
                odom = self.odom
                v = drive.step(self.now(), odom, self.scan)
                if v is None:
                    break
                self._drive(v)
                self.sleep(cfg.period_s)
        finally:
            self._drive(0.0)
        if drive.result is not None:
            return drive.result, drive.travelled
        self.sleep(cfg.settle_s)                 # let the base settle before the arm moves
        return drive.finish(self.odom)

    def set_gripper(self, opening_m: float, timeout_s: float) -> float | None:
        cfg = self.config
        self._gripper(opening_m, cfg.gripper_time_s)
        self.sleep(cfg.gripper_time_s + cfg.gripper_settle_s)
        t_end = self.now() + min(timeout_s, cfg.gripper_wait_s)
        while self.now() < t_end:          # fingers settled (stopped) or timed out
            st = self.joints.get(cfg.gripper_joint)
            if st is not None and abs(st[1]) < cfg.gripper_still_mps:
                break
            self.sleep(0.05)
        st = self.joints.get(cfg.gripper_joint)
        return None if st is None else st[0]

    def gripper_opening(self) -> float | None:
        st = self.joints.get(self.config.gripper_joint)
        return None if st is None else st[0]

    def gauge_readings(self, asset_id: str, since_s: float) -> list[Reading]:
        with self.lock:
            return [r for at, r in self.gauges if r.asset_id == asset_id and at >= since_s]

    def fiducial_seen(self, tag_id: int, since_s: float) -> bool:
        return self.tags.get(tag_id, -math.inf) >= since_s

    def object_position(self, object_id: str) -> tuple[float, float, float] | None:
        """Where the object is: the perceived small obstacle cluster near where the registry
        says it is kept (refined), else that surveyed position, shifted by the pose error
        its station's tag shows; None when the registry has no position for it (objects
        carry no tags)."""
        obj = self.registry.object(object_id)
        if obj.pose is None:
            return None
        obs, pose = self.obstacles, self.pose
        if obs is None or pose is None:
            return obj.pose
        where = perceived_position(obj.pose, obs[1], pose, obs[0], self.config.object_match_m,
                                   self.config.object_max_size_m)
        off = self.station_offset(where[:2])
        if off is None:
            return where
        # the tool lies where it was surveyed relative to the station's tag: shift it by
        # how far off the robot's pose puts that tag (the pose error cancels in the arm's
        # map-to-base transform)
        return (where[0] + off[0], where[1] + off[1], where[2])

    def perceive_object(self, object_id: str) -> ObjectSegment:
        """The object as the depth camera sees it now (the robot standing still): segmented
        near where :meth:`object_position` puts it, in the map frame through the robot's
        pose estimate (the arm's map-to-base transform cancels that pose's error).  Not
        found, with the reason, without a position, camera mount, fresh depth image or
        pose, or when the image shows nothing there."""
        where = self.object_position(object_id)
        if where is None:
            return ObjectSegment(False, f"the registry has no position for {object_id}")
        t0 = self.now()
        frame = self._depth_frame()
        while frame is None or frame[2] < t0 - 0.05:    # a frame taken since it stood still
            if self.now() - t0 >= self.config.depth_wait_s or self.cancel.is_set():
                return ObjectSegment(False, f"no depth image within "
                                            f"{self.config.depth_wait_s:g} s")
            self.sleep(0.1)
            frame = self._depth_frame()
        pose = self.pose
        if pose is None:
            return ObjectSegment(False, "robot pose unknown")
        if self.camera_mount is None:
            return ObjectSegment(False, "the depth camera's mount is unknown")
        exp = pose.inverse().compose((where[0], where[1], 0.0))
        try:
            size = self.config.object_max_size_m      # room round the object for all of it
            seg = segment_object(frame[0], frame[1], self.camera_mount,
                                 (exp.x, exp.y, where[2]), self.config.object_match_m,
                                 SegmentConfig(neighbourhood_m=size, max_size_m=size))
        except ValueError as e:            # a malformed image or calibration
            return ObjectSegment(False, f"depth image unusable: {e}")
        return moved_segment(seg, pose.x, pose.y, pose.yaw)

    def station_offset(self, near: Sequence[float]) -> tuple[float, float] | None:
        """The pose error at a tool station (sitebot.executor.locate.station_offset)."""
        return station_offset(self.pose, near, self.registry.markers, self.tag_poses,
                              self.now())

    def confirm(self, question: str, plan_id: str, timeout_s: float) -> bool | None:
        self.confirm_answer = None
        self._ask(question, plan_id)
        self.log(f"waiting for confirmation: {question}")
        t_end = self.now() + timeout_s
        while self.now() < t_end:
            ans = self.confirm_answer
            if ans is not None and ans[0] == plan_id:
                return ans[1]
            if self.cancel.is_set():
                return False
            self.sleep(0.05)
        return None
