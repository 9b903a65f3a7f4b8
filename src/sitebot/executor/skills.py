"""The skill library: one small class per skill of the brief's table, behind one interface.

A skill gets its step and a :class:`SkillContext` (the ports to the robot, the registry, the
configuration, the plan) and returns a :class:`~sitebot.executor.types.StepResult`.  Skills do
not loop on failures themselves: the runner decides about retries, pauses and aborts.
A failure says whether a retry could help (``retryable``).
"""
from __future__ import annotations

import math
import statistics
import threading
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

from transforms3d.euler import mat2euler

from sitebot.executor.approach import approach_distance
from sitebot.executor.config import check_fields
from sitebot.executor.types import (MotionResult, Outcome, Plan, Reading, RobotPorts, Step,
                                    StepResult)
from sitebot.perception.object_segment import moved_segment
from sitebot.site.registry import AssetKind, SiteRegistry
from sitebot.types import Pose2D, rpy_matrix

__all__ = ["ExecutorConfig", "SkillContext", "Skill", "SKILLS", "StepFailure"]


@dataclass(frozen=True)
class ExecutorConfig:
    """Limits of the executor (times in robot/simulated seconds)."""
    nav_timeout_s: float = 300.0        # one navigate_to
    arm_timeout_s: float = 60.0         # one arm motion
    gauge_timeout_s: float = 20.0       # waiting for valid readings of a gauge
    gauge_samples: int = 3              # valid readings combined (median) per read_gauge
    gauge_max_spread: float = 0.03      # of full scale: readings disagreeing more -> retry
    gauge_second_view_m: float = 0.4    # not read from the place: look again this much closer
    max_attempts: int = 2               # per step (a retry re-sends the request)
    retry_wait_s: float = 5.0           # pause before a retry (a blocked path may clear)
    pause_limit_s: float = 120.0        # a protective stop longer than this aborts the plan
    safety_stale_s: float = 2.0         # no safety state for this long counts as stopped
    confirm_timeout_s: float = 120.0    # waiting for a supervisor's confirmation
    use_arm: bool = True                # arm motions (viewing pose, stow) around skills
    view_pose: str = "stow"             # named arm pose that keeps the mast camera's view clear
    gripper_open_m: float = 0.04
    gripper_closed_m: float = 0.0
    gripper_holding_min_m: float = 0.004   # fingers stopped wider than this: holding
    pregrasp_height_m: float = 0.15
    # TCP orientation for top-down grasps in the BASE frame (this arm: tool z down, tool x
    # backwards, as in its 'ready' pose); the robot's heading is added for map-frame goals
    grasp_rpy: tuple[float, float, float] = (math.pi, 0.0, math.pi)
    place_forward_m: float = 0.6        # where 'place' puts things, ahead of the base
    place_height_m: float = 0.10        # TCP height when letting go: on the floor
    grasp_forward_m: float = 0.55       # a pick closes in until the object is this far ahead
    grasp_above_centre_m: float = 0.02   # grip this far above the object's centre: the
                                         # fingers clear the surface it lies on
    approach_max_m: float = 0.6         # longest straight approach of a pick
    approach_timeout_s: float = 30.0
    grasp_attempts: int = 3             # grasps closed on nothing before a pick fails

    def __post_init__(self) -> None:
        check_fields(self)                  # the fields the node's parameters set


class StepFailure(Exception):
    """A skill could not do its step; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool = True,
                 outcome: Outcome = Outcome.FAILED) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.outcome = outcome


@dataclass
class SkillContext:
    ports: RobotPorts
    registry: SiteRegistry
    config: ExecutorConfig
    plan: Plan
    confirmed: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    holding: str | None = None          # object id in the gripper
    # ((x, y, z), rpy, opening, lift to (x, y, z), joints at the lift-to or None) while
    # not yet lifted
    grasp_pose: tuple | None = None
    approached_m: float = 0.0           # driven in by a pick's approach, not yet backed out
    arm_stowed: bool = True
    notes: list[str] = field(default_factory=list)
    authorised: Callable[[Plan, Step], None] | None = None   # a high-risk step goes ahead
    #: the site's static collision primitives (map frame; the bundle's scene.yaml), the
    #: same the arm node plans around: grasp candidates are checked against them too
    scene: tuple = ()


def _grasp_yaws(ctx: SkillContext, long_axis_yaw: float | None = None) -> list[float]:
    """Candidate yaws (map frame) of the top-down grasp, best first: the configured one at
    the robot's heading, or, for an object whose long axis heads ``long_axis_yaw``, the two
    yaws that put the tool's x along that axis (the fingers, closing along the tool's y,
    grip across it), the one nearer the configured wrist orientation first."""
    pose = ctx.ports.robot_pose()
    if pose is None:
        raise StepFailure("robot pose unknown")
    yaw = ctx.config.grasp_rpy[2] + pose[2]
    if long_axis_yaw is None:
        return [math.remainder(yaw, math.tau)]
    cands = sorted((long_axis_yaw, long_axis_yaw + math.pi),
                   key=lambda a: abs(math.remainder(a - yaw, math.tau)))
    return [math.remainder(a, math.tau) for a in cands]


def _grasp_rpy(ctx: SkillContext) -> tuple[float, float, float]:
    """The top-down orientation (map frame) at the robot's current heading."""
    r, p, _ = ctx.config.grasp_rpy
    return (r, p, _grasp_yaws(ctx)[0])


def _check_cancel(ctx: SkillContext) -> None:
    if ctx.cancel.is_set():
        raise StepFailure("canceled", retryable=False, outcome=Outcome.CANCELED)


def _motion(result: MotionResult, what: str) -> None:
    if result.code == "canceled":
        raise StepFailure(f"{what}: canceled", retryable=False, outcome=Outcome.CANCELED)
    if not result.ok:
        raise StepFailure(f"{what}: {result.code}" + (f" ({result.reason})" if result.reason
                                                      else ""), retryable=result.retryable)


class Skill:
    name: ClassVar[str] = ""

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        """Do *step*; fill *result* (readings, images, flags, message).  Raise
        :class:`StepFailure` when it cannot be done."""
        raise NotImplementedError


class NavigateTo(Skill):
    name = "navigate_to"

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        place = ctx.registry.place(step.args["place"])
        _motion(ctx.ports.navigate(place.id, ctx.config.nav_timeout_s), f"navigate to {place.id}")
        result.message = f"at {place.id}"


class _ArmAside:
    """Mixin: move the arm to a named pose when the arm is in use; a missing arm planner is
    noted, not fatal, for skills that only need the mast camera."""

    @staticmethod
    def arm_to(ctx: SkillContext, name: str, required: bool) -> None:
        if not ctx.config.use_arm:
            return
        r = ctx.ports.move_arm_named(name, ctx.config.arm_timeout_s)
        if r.ok:
            ctx.arm_stowed = name == "stow"
            return
        if required or r.code not in ("unavailable",):
            _motion(r, f"arm to '{name}'")
        ctx.notes.append(f"arm to '{name}' skipped: {r.code}")


class ReadGauge(Skill, _ArmAside):
    """Collect ``gauge_samples`` valid readings of the gauge (within ``gauge_timeout_s``) and
    report their median.  A gauge not read from the place (its tag too small to decode from
    there, glare, a person in the line of sight) is looked at a second time from
    ``gauge_second_view_m`` closer (a straight approach, no nearer to what the laser sees
    than the approach's gap), and the robot backs out again either way."""
    name = "read_gauge"

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        asset = ctx.registry.asset(step.args["asset"])
        if asset.kind is not AssetKind.GAUGE or asset.gauge is None:
            raise StepFailure(f"asset {asset.id!r} is a {asset.kind.value}, not a gauge",
                              retryable=False)
        cfg, ports = ctx.config, ctx.ports
        self.arm_to(ctx, cfg.view_pose, required=False)
        valid, why = self._collect(asset.id, ctx)
        if len(valid) < cfg.gauge_samples and cfg.gauge_second_view_m > 0.0:
            r, driven = ports.approach(cfg.gauge_second_view_m, cfg.approach_timeout_s)
            ports.log(f"read_gauge {asset.id}: {why}; second view from {driven:.2f} m closer")
            try:
                if r.ok and driven > 0.05:
                    valid, why = self._collect(asset.id, ctx)
            finally:
                if abs(driven) > 0.01:
                    back, _ = ports.approach(-driven, cfg.approach_timeout_s)
                    if not back.ok:
                        ctx.notes.append(f"backing out after a second view of {asset.id}: "
                                         f"{back.code} ({back.reason})")
        if len(valid) < cfg.gauge_samples:
            raise StepFailure(f"no confident reading of {asset.id} within "
                              f"{cfg.gauge_timeout_s:g} s ({len(valid)} of "
                              f"{cfg.gauge_samples} valid; last problem: {why})")
        span = asset.gauge.max_value - asset.gauge.min_value
        values = [r.value for r in valid[-cfg.gauge_samples:]]
        if (max(values) - min(values)) > cfg.gauge_max_spread * span:
            raise StepFailure(f"readings of {asset.id} disagree: {min(values):g}.."
                              f"{max(values):g} {asset.gauge.unit}")
        med = statistics.median(values)
        best = min(valid[-cfg.gauge_samples:], key=lambda r: abs(r.value - med))
        reading = Reading(asset.id, float(med), asset.gauge.unit,
                          float(min(r.confidence for r in valid[-cfg.gauge_samples:])),
                          True, "", best.stamp_s, best.crop_path)
        result.readings.append(reading)
        if best.crop_path:
            result.images.append(best.crop_path)
        if not asset.gauge.contains(reading.value):
            result.flags.append("out_of_range")
        result.message = f"{asset.id} = {reading.value:.3g} {reading.unit}"

    @staticmethod
    def _collect(asset_id: str, ctx: SkillContext) -> tuple[list[Reading], str]:
        """Valid readings arriving within ``gauge_timeout_s`` from now (stops at
        ``gauge_samples``) and the last problem reported."""
        cfg, ports = ctx.config, ctx.ports
        t0 = ports.now()
        valid: list[Reading] = []
        why = "no reading of this gauge arrived"
        while ports.now() - t0 < cfg.gauge_timeout_s:
            readings = ports.gauge_readings(asset_id, since_s=t0)
            valid = [r for r in readings if r.valid and math.isfinite(r.value)]
            bad = [r for r in readings if not r.valid]
            if bad:
                why = bad[-1].failure_reason or "invalid reading"
            if len(valid) >= cfg.gauge_samples:
                break
            _check_cancel(ctx)
            ports.sleep(0.1)
        return valid, why


class Inspect(Skill, _ArmAside):
    name = "inspect"

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        asset = ctx.registry.asset(step.args["asset"])
        self.arm_to(ctx, ctx.config.view_pose, required=False)
        ports = ctx.ports
        t0 = ports.now()
        ports.sleep(1.0)                       # let a few frames arrive at the viewing pose
        path = ports.save_image(f"inspect_{asset.id}")
        if path is None:
            raise StepFailure("no camera image to save")
        result.images.append(path)
        if asset.fiducial is not None:
            deadline = t0 + 5.0
            seen = ports.fiducial_seen(asset.fiducial, since_s=t0)
            while not seen and ports.now() < deadline:
                ports.sleep(0.2)
                seen = ports.fiducial_seen(asset.fiducial, since_s=t0)
            if not seen:
                result.flags.append("tag_not_seen")
        result.message = f"inspected {asset.id}" + (
            f" (flags: {', '.join(result.flags)})" if result.flags else "")


class Pick(Skill, _ArmAside):
    """Close in on the object (a short straight approach when navigation left it beyond
    the arm's top-down workspace), grasp it from above, lift, fold the arm to 'carry' and
    back out the way the base came."""
    name = "pick"

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        obj = ctx.registry.object(step.args["object"])
        cfg, ports = ctx.config, ctx.ports
        if ctx.holding == obj.id and ctx.grasp_pose is not None:
            # an earlier attempt closed on it and then failed to lift or fold: go on from there
            self._lift(ctx, result)
            self._back_out(ctx)
            return
        if ctx.holding is not None:
            raise StepFailure(f"already holding {ctx.holding}", retryable=False)
        where = ports.object_position(obj.id)
        pose = ports.robot_pose()
        if where is None:
            raise StepFailure(f"{obj.id} not found near {obj.place}", retryable=True)
        if pose is None:
            raise StepFailure("robot pose unknown")
        self.arm_to(ctx, "stow", required=False)
        seen = self._look(obj, ctx)
        if seen is not None:
            where = tuple(float(v) for v in seen[0].centroid)
        dx, dy = where[0] - pose[0], where[1] - pose[1]
        ahead = (dx * math.cos(pose[2]) + dy * math.sin(pose[2]),
                 -dx * math.sin(pose[2]) + dy * math.cos(pose[2]))
        want = approach_distance(ahead, cfg.grasp_forward_m, cfg.approach_max_m)
        if want > 0.0:
            r, driven = ports.approach(want, cfg.approach_timeout_s)
            ctx.approached_m += driven
            _motion(r, f"approach to {obj.id}")
            ports.log(f"pick {obj.id}: approached {driven:.2f} of {want:.2f} m ({r.reason})")
            if seen is None:
                where = ports.object_position(obj.id) or where     # refined from closer
        if seen is not None:
            try:
                self._grasp_seen(obj.id, seen[1], ctx, result)
            except StepFailure:
                if ctx.grasp_pose is None:
                    self._back_out(ctx)
                raise
            self._back_out(ctx)
            return
        if obj.pose is not None:
            off = math.dist(where[:2], obj.pose[:2])
            ports.log(f"pick {obj.id}: grasping at ({where[0]:.3f}, {where[1]:.3f}, "
                      f"{where[2]:.3f}), {100 * off:.1f} cm from its surveyed position")
        try:
            self._grasp(obj.id, where, obj.grasp_yaw, ctx, result)
        except StepFailure:
            if ctx.grasp_pose is None:     # not left gripping it on the table: back out
                self._back_out(ctx)
            raise
        self._back_out(ctx)

    @staticmethod
    def _look(obj, ctx: SkillContext):
        """The object segmented from a depth image while the robot stands, in the map frame
        and in the odometry frame (what the grasp is planned from after the approach: a
        localization fix during the approach moves the map pose, not the odometry; a
        station tag's fix moved a seen torque wrench 5 cm and three grasps missed it), or
        None (logged why: the pick then grasps where the registry and the obstacle clusters
        put it, across the registry's long axis)."""
        ports = ctx.ports
        seg = ports.perceive_object(obj.id)
        pose, odom = ports.robot_pose(), ports.odometry_pose()
        if seg.found and (pose is None or odom is None):
            seg = type(seg)(False, "robot pose or odometry unknown")
        if not seg.found:
            ctx.ports.log(f"pick {obj.id}: not seen in depth ({seg.reason}); grasping at "
                          "its surveyed position")
            return None
        off = "" if obj.pose is None else \
            f", {100 * math.dist(seg.centroid[:2], obj.pose[:2]):.1f} cm from its surveyed position"
        ctx.ports.log(f"pick {obj.id}: seen at ({seg.centroid[0]:.3f}, {seg.centroid[1]:.3f}, "
                      f"{seg.centroid[2]:.3f}), long axis {math.degrees(seg.yaw):.0f} deg, "
                      f"{1000 * seg.width_m:.0f} mm wide{off}")
        inv = Pose2D.of(pose).inverse()
        return seg, moved_segment(seg, *Pose2D.of(odom).compose(inv))

    def _grasp_seen(self, obj_id: str, seen_odom, ctx: SkillContext,
                    result: StepResult) -> None:
        """Grasp candidates planned from what the camera saw (odometry frame), from where
        the base stands now, tried best first: one the arm cannot reach is skipped, a grasp
        that closes on nothing opens, backs off to its pre-grasp and tries the next, up to
        ``grasp_attempts``.  The arm's goals go out in the map frame through the current
        pose estimate (the arm node's map-to-base transform cancels it)."""
        cfg, ports = ctx.config, ctx.ports
        pose, odom = ports.robot_pose(), ports.odometry_pose()
        if pose is None or odom is None:
            raise StepFailure("robot pose or odometry unknown")
        plan = grasp_planner().plan(moved_segment(seen_odom, *Pose2D.of(odom).inverse()),
                                    _scene_near(ctx.scene, pose))
        if plan.best is None:
            # an object wider than the fingers open stays so: no retry from the same place
            raise StepFailure(f"no grasp of {obj_id}: {plan.reason}",
                              retryable=not plan.reason.startswith("object too wide"))
        opened = ports.set_gripper(cfg.gripper_open_m, cfg.arm_timeout_s)
        if opened is None or opened < cfg.gripper_open_m - 0.005:
            raise StepFailure(f"gripper did not open (at {(opened or 0.0) * 1000:.1f} mm of "
                              f"{cfg.gripper_open_m * 1000:.0f} mm)")
        robot, rz = Pose2D.of(pose), rpy_matrix(0.0, 0.0, pose[2])
        closed, tried, last = 0, 0, "no candidate reachable"
        for cand in plan.feasible:
            rpy = tuple(float(v) for v in mat2euler(rz @ cand.rotation, "sxyz"))
            at = (*robot.compose((cand.position[0], cand.position[1], 0.0))[:2],
                  float(cand.position[2]))
            pre = (*robot.compose((cand.pregrasp[0], cand.pregrasp[1], 0.0))[:2],
                   float(cand.pregrasp[2]))
            tried += 1
            reached = ports.move_arm_pose(pre, rpy, cfg.arm_timeout_s)
            ctx.arm_stowed = False
            q_pre = ports.arm_positions() if reached.ok else None
            if reached.ok:
                reached = ports.move_arm_pose(at, rpy, cfg.arm_timeout_s)
            if reached.code == "rejected":
                last = f"{cand.kind} grasp: {reached.reason}"
                continue
            _motion(reached, "arm to the grasp")
            opening = ports.set_gripper(cfg.gripper_closed_m, cfg.arm_timeout_s)
            if opening is not None and opening >= cfg.gripper_holding_min_m:
                ports.log(f"pick {obj_id}: {cand.kind} grasp {tried} of "
                          f"{len(plan.feasible)} closed at {opening * 1000:.1f} mm")
                ctx.holding = obj_id
                ctx.grasp_pose = (at, rpy, opening, pre, q_pre)   # lift back out the way in
                self._lift(ctx, result)
                return
            closed += 1
            last = f"fingers closed to {(opening or 0.0) * 1000:.1f} mm"
            ports.log(f"pick {obj_id}: {cand.kind} grasp {tried} missed ({last})")
            ports.set_gripper(cfg.gripper_open_m, cfg.arm_timeout_s)
            _motion(ports.move_arm_pose(pre, rpy, cfg.arm_timeout_s), "back off a missed grasp")
            if closed >= cfg.grasp_attempts:
                break
        self.arm_to(ctx, "stow", required=False)
        raise StepFailure(f"grasp of {obj_id} failed after {tried} of {len(plan.feasible)} "
                          f"candidates (last: {last})")

    @staticmethod
    def _back_out(ctx: SkillContext) -> None:
        """Drive back the way the approach came (the arm is folded or above the table)."""
        if abs(ctx.approached_m) <= 0.01:
            return
        r, back = ctx.ports.approach(-ctx.approached_m, ctx.config.approach_timeout_s)
        ctx.approached_m += back
        if not r.ok:
            ctx.notes.append(f"backing out after the pick: {r.code} ({r.reason})")

    def _grasp(self, obj_id: str, where: tuple[float, float, float],
               long_axis_yaw: float | None, ctx: SkillContext, result: StepResult) -> None:
        cfg, ports = ctx.config, ctx.ports
        x, y, z = where
        z += cfg.grasp_above_centre_m
        opened = ports.set_gripper(cfg.gripper_open_m, cfg.arm_timeout_s)
        if opened is None or opened < cfg.gripper_open_m - 0.005:
            # closed fingers would land on the object (a refused or stopped command)
            raise StepFailure(f"gripper did not open (at {(opened or 0.0) * 1000:.1f} mm of "
                              f"{cfg.gripper_open_m * 1000:.0f} mm)")
        reached = MotionResult("rejected", "no grasp orientation")
        for yaw in _grasp_yaws(ctx, long_axis_yaw):
            rpy = (cfg.grasp_rpy[0], cfg.grasp_rpy[1], yaw)
            reached = ports.move_arm_pose((x, y, z + cfg.pregrasp_height_m), rpy,
                                          cfg.arm_timeout_s)
            ctx.arm_stowed = False
            if reached.ok:
                reached = ports.move_arm_pose((x, y, z), rpy, cfg.arm_timeout_s)
            if reached.code != "rejected":  # there, or failed in a way no other yaw mends
                break
        _motion(reached, "arm to the grasp")
        opening = ports.set_gripper(cfg.gripper_closed_m, cfg.arm_timeout_s)
        if opening is None or opening < cfg.gripper_holding_min_m:
            ports.set_gripper(cfg.gripper_open_m, cfg.arm_timeout_s)
            self.arm_to(ctx, "stow", required=False)
            raise StepFailure(f"grasp of {obj_id} missed (fingers closed to "
                              f"{(opening or 0.0) * 1000:.1f} mm)")
        ctx.holding = obj_id
        ctx.grasp_pose = ((x, y, z), rpy, opening, (x, y, z + cfg.pregrasp_height_m), None)
        self._lift(ctx, result)

    def _lift(self, ctx: SkillContext, result: StepResult) -> None:
        """Back out of the grasp (to the pre-grasp the arm reached on the way in: its joint
        positions then, else the pose; straight up from a grasp at the surveyed position),
        then fold to 'carry'.  The joint positions first: the arm planner's IK for the same
        pose, seeded from the grasp, can miss the configuration it came in by (seen at the
        construction tool crib: 'no collision-free IK solution' for a pre-grasp reached
        seconds before)."""
        cfg, ports = ctx.config, ctx.ports
        _, rpy, opening, lift_to, q_pre = ctx.grasp_pose
        lifted = None
        if q_pre is not None:
            lifted = ports.move_arm_joints(q_pre, cfg.arm_timeout_s)
            if lifted.code == "rejected":
                ports.log(f"lift to the pre-grasp's joints refused ({lifted.reason}): "
                          "to its pose")
                lifted = None
        if lifted is None:
            lifted = ports.move_arm_pose(lift_to, rpy, cfg.arm_timeout_s)
        _motion(lifted, "lift")
        held = ports.gripper_opening()
        if held is not None and held < cfg.gripper_holding_min_m:
            # the fingers closed further while lifting: the object slipped out
            obj_id, ctx.holding, ctx.grasp_pose = ctx.holding, None, None
            ports.set_gripper(cfg.gripper_open_m, cfg.arm_timeout_s)
            self.arm_to(ctx, "stow", required=False)
            raise StepFailure(f"{obj_id} slipped out while lifting (fingers at "
                              f"{held * 1000:.1f} mm, were {opening * 1000:.1f} mm)")
        # fold without turning the wrist much: a tool gripped across the robot (its long
        # axis sideways) is carried across it, one gripped lengthwise lengthwise
        pose = ports.robot_pose()
        across = pose is not None and \
            abs(math.sin(rpy[2] - (cfg.grasp_rpy[2] + pose[2]))) > math.sqrt(0.5)
        self.arm_to(ctx, "carry_across" if across else "carry", required=True)
        ctx.grasp_pose = None
        result.message = f"holding {ctx.holding} ({opening * 1000:.1f} mm)"


_PLANNER = None
_PLANNER_LOCK = threading.Lock()
def _scene_near(scene: tuple, pose: Sequence[float]) -> list:
    """The site's static primitives near the robot at map ``pose``, in its base frame (as
    the arm node builds its planning scene, within its default ``scene_radius_m``)."""
    if not scene:
        return []
    from sitebot.arm.collision import scene_near
    return scene_near(scene, pose, 2.0)


def grasp_planner():
    """The grasp planner for this robot's arm (built once: it parses the description)."""
    global _PLANNER
    with _PLANNER_LOCK:
        if _PLANNER is None:
            from sitebot.arm.grasp_planning import GraspPlanner
            _PLANNER = GraspPlanner()
        return _PLANNER


class Place(Skill, _ArmAside):
    name = "place"

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        place = ctx.registry.place(step.args["place"])
        if ctx.holding is None:
            raise StepFailure("nothing in the gripper to put down", retryable=False)
        cfg, ports = ctx.config, ctx.ports
        pose = ports.robot_pose()
        if pose is None:
            raise StepFailure("robot pose unknown")
        x, y, yaw = pose
        tx = x + cfg.place_forward_m * math.cos(yaw)
        ty = y + cfg.place_forward_m * math.sin(yaw)
        rpy = _grasp_rpy(ctx)
        _motion(ports.move_arm_pose((tx, ty, cfg.place_height_m + cfg.pregrasp_height_m),
                                    rpy, cfg.arm_timeout_s), "arm over the drop point")
        _motion(ports.move_arm_pose((tx, ty, cfg.place_height_m), rpy, cfg.arm_timeout_s),
                "arm down")
        ports.set_gripper(cfg.gripper_open_m, cfg.arm_timeout_s)
        held, ctx.holding = ctx.holding, None
        self.arm_to(ctx, "stow", required=False)
        result.message = f"put {held} down at {place.id}"


class OperateValve(Skill, _ArmAside):
    name = "operate_valve"

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        asset = ctx.registry.asset(step.args["asset"])
        action = step.args.get("action", "")
        if asset.kind is not AssetKind.VALVE:
            raise StepFailure(f"asset {asset.id!r} is a {asset.kind.value}, not a valve",
                              retryable=False)
        if action not in ("open", "close"):
            raise StepFailure(f"valve action must be open or close, got {action!r}",
                              retryable=False)
        if ctx.plan.role != "supervisor":
            raise StepFailure("operating a valve needs the role 'supervisor'",
                              retryable=False)
        if not ctx.confirmed:
            answer = ctx.ports.confirm(f"Confirm: {action} {asset.name} ({asset.id})?",
                                       ctx.plan.plan_id, ctx.config.confirm_timeout_s)
            if answer is None:
                raise StepFailure("no confirmation arrived", retryable=False,
                                  outcome=Outcome.DECLINED)
            if not answer:
                raise StepFailure("confirmation declined", retryable=False,
                                  outcome=Outcome.DECLINED)
            ctx.confirmed = True
        if ctx.authorised is not None:
            ctx.authorised(ctx.plan, step)
        self.arm_to(ctx, f"valve_{action}", required=True)
        self.arm_to(ctx, "stow", required=False)
        result.message = f"{action} {asset.id}"


class Patrol(Skill):
    name = "patrol"

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        route = ctx.registry.route(step.args["route"])
        stops = list(route.waypoints) + ([route.waypoints[0]] if route.loop else [])
        for i, wp in enumerate(stops):
            _check_cancel(ctx)
            _motion(ctx.ports.navigate(wp, ctx.config.nav_timeout_s),
                    f"patrol {route.id} waypoint {i + 1}/{len(stops)} ({wp})")
            path = ctx.ports.save_image(f"patrol_{route.id}_{i + 1:02d}_{wp}")
            if path:
                result.images.append(path)
        result.message = f"patrolled {route.id} ({len(stops)} stops)"


class Dock(Skill, _ArmAside):
    name = "dock"

    def run(self, step: Step, ctx: SkillContext, result: StepResult) -> None:
        if not ctx.registry.docks:
            raise StepFailure("the site has no dock", retryable=False)
        pose = ctx.ports.robot_pose()
        docks = list(ctx.registry.docks)
        if pose is not None:
            docks.sort(key=lambda d: ctx.registry.place(d.place).pose.distance_to(pose[0],
                                                                                   pose[1]))
        self.arm_to(ctx, "stow", required=False)
        dock = docks[0]
        _motion(ctx.ports.navigate(dock.place, ctx.config.nav_timeout_s), f"dock {dock.id}")
        result.message = f"docked at {dock.id}"


SKILLS: dict[str, Skill] = {cls.name: cls() for cls in
                            (NavigateTo, ReadGauge, Inspect, Pick, Place, OperateValve,
                             Patrol, Dock)}
