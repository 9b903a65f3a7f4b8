"""Goal handling, replanning and recovery: the navigation behaviour state machine.

Core only (no ROS; time is an argument). One goal at a time::

    planning -> following -> succeeded
       |  ^         |  (path blocked ahead / arc would collide: replan at once)
       v  |         v  (replan failed)
     recovery: waiting -> backing_up -> rotating -> waiting ...   (replan after each)
       |  gives up after ``blocked_timeout_s`` blocked -> blocked (with the reason)
    paused: the supervisor's protective stop (any state); not counted as blocked; after
            ``protective_stop_timeout_s`` -> blocked.
    held by a person (a protective stop for a person, or recovering with a person within
            ``ask_distance_m``) for ``ask_after_s``: the robot asks them to let it pass
            (:attr:`NavStep.say`, spoken on ``hri/say``), again every ``ask_every_s``
    relocalizing: the supervisor says localization diverged (``localization_diverged``; it
            then allows turning in place only): turn on the spot at
            ``relocalize_turn_radps`` so that the camera sweeps for markers; when the
            filter has re-localized, replan from the new pose; still lost after
            ``relocalize_timeout_s`` -> blocked. Not counted as blocked or stalled.
    emergency stop, no pose for ``pose_timeout_s``, goal older than ``goal_timeout_s``,
    an invalid or forbidden goal, a goal unreachable on the site map itself -> aborted

Backing up is checked behind (the reverse straight line on the costmap); a back-up that
would collide is skipped. Rotating on the spot cannot touch anything with a circular
footprint. Progress of ``progress_reset_m`` after a recovery clears the blocked clock.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sitebot.errors import SitebotError
from sitebot.navigation.controller import ControlOutput, RegulatedPurePursuit
from sitebot.navigation.costmap import INSCRIBED, Costmap
from sitebot.navigation.planner import GlobalPlanner, Plan, PlanError
from sitebot.types import Pose2D, SafetyLevel, wrap_angle

__all__ = ["BehaviourConfig", "Goal", "SafetyInput", "Outcome", "NavStep", "Navigator",
           "TERMINAL", "PASS_REQUEST", "PERSON_STOP_CODES", "LOCALIZATION_LOST"]

TERMINAL = ("succeeded", "blocked", "aborted", "canceled")
RECOVERIES = ("waiting", "backing_up", "rotating")


@dataclass(frozen=True)
class BehaviourConfig:
    path_check_period_s: float = 0.3
    replan_period_s: float = 0.0          # periodic replanning while following (0: off)
    replan_cooldown_s: float = 1.0        # a collision within this of a replan: recovery
    wait_s: float = 3.0
    backup_distance_m: float = 0.3
    backup_speed_mps: float = 0.1
    rotate_angle_rad: float = 1.57
    rotate_speed_radps: float = 0.5
    blocked_timeout_s: float = 30.0
    # no approach to the goal by progress_reset_m for this long (detours, recoveries and
    # replans round obstacles that expire and reappear): give up (blocked)
    stall_timeout_s: float = 90.0
    protective_stop_timeout_s: float = 60.0
    # held by a person this long: ask them to let the robot pass, and again this often
    ask_after_s: float = 3.0
    ask_every_s: float = 10.0
    ask_distance_m: float = 2.5           # a person this near holds a recovering robot
    # localization diverged: turn in place this fast to find markers, for at most this long
    relocalize_turn_radps: float = 0.25
    relocalize_timeout_s: float = 60.0
    pose_timeout_s: float = 5.0
    goal_timeout_s: float = 600.0
    progress_reset_m: float = 1.0

    def __post_init__(self) -> None:
        for k, v in self.__dict__.items():
            if not math.isfinite(v) or v < 0:
                raise SitebotError(f"behaviour: '{k}' must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class Goal:
    x: float
    y: float
    yaw: float
    label: str = ""


@dataclass(frozen=True)
class SafetyInput:
    """The supervisor's latest word: ``level`` (SafetyState levels), its current speed limit
    [m/s] and reason codes."""
    level: SafetyLevel = SafetyLevel.NORMAL
    speed_cap: float = math.inf
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    code: str        # succeeded | blocked | aborted | canceled
    reason: str


@dataclass(frozen=True)
class NavStep:
    v: float
    w: float
    state: str
    distance_remaining_m: float
    detail: str = ""
    outcome: Outcome | None = None
    new_plan: Plan | None = None
    say: str = ""        # to speak now (the robot's speaker, ``hri/say``)


#: what the robot says to a person who holds it (PASS_REQUEST's words are what people hear)
PASS_REQUEST = "Excuse me, please step aside and let me pass."
#: the supervisor's reason codes that name a person holding the robot
PERSON_STOP_CODES = ("person_in_protective_field", "person_restart_delay")
#: the supervisor's reason code for a localization it no longer trusts (turning in place only)
LOCALIZATION_LOST = "localization_diverged"


class Navigator:
    """Drives one goal to an :class:`Outcome`; call :meth:`step` at the control rate."""

    def __init__(self, planner: GlobalPlanner, controller: RegulatedPurePursuit,
                 config: BehaviourConfig = BehaviourConfig(),
                 static_costmap: Costmap | None = None) -> None:
        self.planner = planner
        self.ctrl = controller
        self.cfg = config
        self.static = static_costmap
        self.goal: Goal | None = None
        self.state = "idle"
        self.outcome: Outcome | None = None
        self.plan: Plan | None = None
        self.replans = 0
        self.recoveries = 0
        self.last_detail = ""
        self._reset_timers(0.0)

    def _reset_timers(self, t: float) -> None:
        self.t_start = t
        self.last_pose_t = t
        self.paused_since: float | None = None
        self.relocalizing_since: float | None = None
        self.held_by_person_since: float | None = None
        self.next_ask_t = math.inf
        self.blocked_since: float | None = None
        self.blocked_pose: tuple[float, float] | None = None
        self.block_reason = ""
        self.recovery_index = 0
        self.rec_start_t = t
        self.rec_start_pose: Pose2D | None = None
        self.rec_turned = 0.0
        self.rec_last_yaw = 0.0
        self.rec_dir = 1.0
        self.next_check_t = t
        self.next_replan_t = math.inf
        self.last_replan_t = -math.inf
        self.last_t: float | None = None
        self.best_goal_d = math.inf            # closest straight-line approach to the goal
        self.best_goal_t = t

    def _resume(self, held: float) -> None:
        """A hold of ``held`` seconds (a pause, re-localizing) counts for no other clock."""
        if self.blocked_since is not None:
            self.blocked_since += held
        self.rec_start_t += held
        self.best_goal_t += held

    def _relocalize(self, t: float, pose) -> NavStep:
        """Turn on the spot while the supervisor says localization diverged."""
        cfg = self.cfg
        if self.relocalizing_since is None:
            self.relocalizing_since = t
        lost = t - self.relocalizing_since
        if lost > cfg.relocalize_timeout_s:
            self._finish("blocked", f"localization lost: turned in place for {lost:.0f} s "
                         "and no marker re-localized the robot")
            return self._zero(self.state, self._remaining(pose), self.outcome.reason)
        self.last_detail = "localization lost: turning in place to find markers"
        return NavStep(0.0, cfg.relocalize_turn_radps, "relocalizing", self._remaining(pose),
                       self.last_detail)

    # ------------------------------------------------------------------ goal
    def start(self, goal: Goal, t: float) -> Outcome | None:
        """Take a new goal (preempting any other). Returns an ``aborted`` outcome at once for
        a goal that is invalid, forbidden or unreachable on the site map; else None."""
        self.goal = goal
        self.plan = None
        self.outcome = None
        self.replans = self.recoveries = 0
        self.ctrl.plan = None
        self._reset_timers(t)
        self.state = "planning"
        try:
            GlobalPlanner.check_pose(goal.x, goal.y, goal.yaw, "goal")
            if self.static is not None:
                self.planner.check_goal(self.static, goal.x, goal.y, goal.yaw)
        except PlanError as e:
            return self._finish("aborted", str(e))
        return None

    def cancel(self, reason: str = "canceled") -> Outcome:
        if self.outcome is None:
            self._finish("canceled", reason)
        return self.outcome

    def _finish(self, code: str, reason: str) -> Outcome:
        self.outcome = Outcome(code, reason)
        self.state = code
        self.ctrl.reset_speed()
        return self.outcome

    @property
    def active(self) -> bool:
        return self.goal is not None and self.outcome is None

    # ------------------------------------------------------------------ helpers
    def _zero(self, state: str, remaining: float, detail: str = "", new_plan=None) -> NavStep:
        self.ctrl.reset_speed()
        self.last_detail = detail
        return NavStep(0.0, 0.0, state, remaining, detail, self.outcome, new_plan)

    def _remaining(self, pose) -> float:
        if self.ctrl.plan is not None and self.state == "following":
            return self.ctrl.remaining(pose[0], pose[1])
        g = self.goal
        return math.hypot(g.x - pose[0], g.y - pose[1]) if pose is not None else math.nan

    def _replan(self, t: float, pose, costmap: Costmap) -> tuple[Plan | None, str]:
        g = self.goal
        self.last_replan_t = t
        try:
            plan = self.planner.plan(costmap, pose, (g.x, g.y, g.yaw))
        except PlanError as e:
            if e.code == "invalid_pose":
                self._finish("aborted", str(e))
            elif e.code == "unreachable" and self.static is not None and self.plan is None \
                    and self.replans == 0:
                # unreachable at the first attempt: is it the site itself?
                try:
                    self.planner.plan(self.static, pose, (g.x, g.y, g.yaw))
                except PlanError as e2:
                    if e2.code == "unreachable":
                        self._finish("aborted", f"goal unreachable: {e2}")
            return None, str(e)
        self.plan = plan
        self.replans += 1
        self.ctrl.set_plan(plan, g.yaw)
        self.next_check_t = t + self.cfg.path_check_period_s
        if self.cfg.replan_period_s > 0:
            self.next_replan_t = t + self.cfg.replan_period_s
        return plan, ""

    def path_blocked(self, pose, costmap: Costmap) -> tuple[float, float] | None:
        """The first point of the remaining path (beyond the footprint) on which the
        footprint would touch an obstacle, or None."""
        if self.ctrl.plan is None:
            return None
        xy = self.ctrl.plan.xy[self.ctrl._idx:]
        if len(xy) == 0:
            return None
        far = np.hypot(xy[:, 0] - pose[0], xy[:, 1] - pose[1]) > self.ctrl.cfg.footprint_radius_m
        c = costmap.cost_at(xy[:, 0], xy[:, 1])
        bad = np.flatnonzero((c >= INSCRIBED) & far)
        return (float(xy[bad[0], 0]), float(xy[bad[0], 1])) if bad.size else None

    def _ask_if_held(self, t: float, pose, safety: SafetyInput,
                     people: Sequence[tuple[float, float]], step: NavStep) -> NavStep:
        """While a person holds the robot (a protective stop for a person, or a recovery
        with a person within ``ask_distance_m``: standing in the way of a narrow passage):
        after ``ask_after_s``, and every ``ask_every_s`` after that, ask them to let it pass."""
        held = step.outcome is None and (
            (step.state == "paused" and any(c in PERSON_STOP_CODES for c in safety.reasons))
            or (step.state in RECOVERIES and pose is not None and any(
                math.hypot(px - pose[0], py - pose[1]) < self.cfg.ask_distance_m
                for px, py in people)))
        if not held:
            self.held_by_person_since = None
            return step
        if self.held_by_person_since is None:
            self.held_by_person_since = t
            self.next_ask_t = t + self.cfg.ask_after_s
        if t < self.next_ask_t:
            return step
        self.next_ask_t = t + self.cfg.ask_every_s
        return NavStep(step.v, step.w, step.state, step.distance_remaining_m, step.detail,
                       say=PASS_REQUEST)

    def _enter_recovery(self, t: float, pose, reason: str) -> None:
        if self.blocked_since is None:
            self.blocked_since = t
            self.blocked_pose = (pose[0], pose[1])
            self.recovery_index = 0
        self.block_reason = reason
        self._begin_recovery(t, pose)

    def _begin_recovery(self, t: float, pose) -> None:
        self.state = RECOVERIES[self.recovery_index % len(RECOVERIES)]
        self.recovery_index += 1
        self.recoveries += 1
        self.rec_start_t = t
        self.rec_start_pose = tuple(pose)
        self.rec_turned = 0.0
        self.rec_last_yaw = pose[2]
        self.ctrl.reset_speed()

    def _after_recovery(self, t: float, pose, costmap: Costmap) -> NavStep:
        plan, why = self._replan(t, pose, costmap)
        if self.outcome is not None:
            return self._zero(self.state, self._remaining(pose), self.outcome.reason)
        if plan is not None:
            self.state = "following"
            return self._zero("following", self._remaining(pose), "replanned after recovery",
                              plan)
        self.block_reason = why
        self._begin_recovery(t, pose)
        return self._zero(self.state, self._remaining(pose), why)

    # ------------------------------------------------------------------ step
    def step(self, t: float, pose: Pose2D | None, costmap: Costmap,
             safety: SafetyInput = SafetyInput(), people: Sequence[tuple[float, float]] = ()
             ) -> NavStep:
        """One tick at time ``t`` [s]; ``pose`` None when no fresh pose is available."""
        out = self._step(t, pose, costmap, safety, people)
        return self._ask_if_held(t, pose, safety, people, out)

    def _step(self, t: float, pose: Pose2D | None, costmap: Costmap, safety: SafetyInput,
              people: Sequence[tuple[float, float]]) -> NavStep:
        cfg = self.cfg
        if self.goal is None:
            return NavStep(0.0, 0.0, "idle", 0.0)
        if self.outcome is not None:
            return NavStep(0.0, 0.0, self.state, 0.0, self.outcome.reason, self.outcome)
        if self.last_t is None or t < self.last_t:
            # the clocks start at the first step (a node may take a goal before its clock
            # runs, e.g. before the first /clock in simulation), and a clock that jumped
            # back (a simulation reset) restarts them
            paused = self.paused_since is not None
            self._reset_timers(t)
            if paused:
                self.paused_since = t
        dt = 0.0 if self.last_t is None else max(0.0, t - self.last_t)
        self.last_t = t
        if t - self.t_start > cfg.goal_timeout_s:
            self._finish("aborted", f"goal not reached within {cfg.goal_timeout_s:g} s")
            return self._zero(self.state, math.nan, self.outcome.reason)
        if pose is None or not all(math.isfinite(v) for v in pose):
            if t - self.last_pose_t > cfg.pose_timeout_s:
                self._finish("aborted", f"no valid pose for {cfg.pose_timeout_s:g} s")
            return self._zero(self.state, math.nan, "waiting for a valid pose")
        self.last_pose_t = t
        # ---------------------------------------------------------------- the supervisor
        if safety.level >= SafetyLevel.EMERGENCY_STOP:
            self._finish("aborted", "emergency stop: " + (", ".join(safety.reasons) or "latched"))
            return self._zero(self.state, self._remaining(pose), self.outcome.reason)
        if safety.level >= SafetyLevel.PROTECTIVE_STOP:
            if self.paused_since is None:
                self.paused_since = t
            if t - self.paused_since > cfg.protective_stop_timeout_s:
                self._finish("blocked", f"protective stop for more than "
                             f"{cfg.protective_stop_timeout_s:g} s: "
                             + (", ".join(safety.reasons) or "no reason given"))
                return self._zero(self.state, self._remaining(pose), self.outcome.reason)
            return self._zero("paused", self._remaining(pose),
                              "protective stop: " + ", ".join(safety.reasons))
        if self.paused_since is not None:
            self._resume(t - self.paused_since)
            self.paused_since = None
        if LOCALIZATION_LOST in safety.reasons:
            return self._relocalize(t, pose)
        if self.relocalizing_since is not None:      # re-localized: plan from the new pose
            self._resume(t - self.relocalizing_since)
            self.relocalizing_since = None
            self.state = "planning"
        # ---------------------------------------------------------------- progress clock
        d_goal = math.hypot(self.goal.x - pose[0], self.goal.y - pose[1])
        if d_goal < self.best_goal_d - cfg.progress_reset_m or not math.isfinite(
                self.best_goal_d):
            self.best_goal_d, self.best_goal_t = d_goal, t
        elif t - self.best_goal_t > cfg.stall_timeout_s:
            self._finish("blocked", f"no progress toward the goal for more than "
                         f"{cfg.stall_timeout_s:g} s (closest {self.best_goal_d:.1f} m): "
                         + (self.block_reason or "detours and recoveries"))
            return self._zero(self.state, self._remaining(pose), self.outcome.reason)
        # ---------------------------------------------------------------- blocked clock
        if self.blocked_since is not None:
            if t - self.blocked_since > cfg.blocked_timeout_s:
                self._finish("blocked", f"blocked for more than {cfg.blocked_timeout_s:g} s "
                             f"(tried wait, back up, rotate and replanning): {self.block_reason}")
                return self._zero(self.state, self._remaining(pose), self.outcome.reason)
            if self.state == "following" and math.hypot(
                    pose[0] - self.blocked_pose[0], pose[1] - self.blocked_pose[1]) \
                    > cfg.progress_reset_m:
                self.blocked_since = None
        # ---------------------------------------------------------------- states
        if self.state == "planning":
            plan, why = self._replan(t, pose, costmap)
            if self.outcome is not None:
                return self._zero(self.state, self._remaining(pose), self.outcome.reason)
            if plan is None:
                self._enter_recovery(t, pose, why)
                return self._zero(self.state, self._remaining(pose), why)
            self.state = "following"
            return self._zero("following", self._remaining(pose), "planned", plan)
        if self.state == "following":
            return self._follow(t, dt, pose, costmap, safety, people)
        if self.state == "waiting":
            if t - self.rec_start_t >= cfg.wait_s:
                return self._after_recovery(t, pose, costmap)
            return self._zero("waiting", self._remaining(pose), self.block_reason)
        if self.state == "backing_up":
            sx, sy, _ = self.rec_start_pose
            moved = math.hypot(pose[0] - sx, pose[1] - sy)
            left = cfg.backup_distance_m - moved
            too_long = t - self.rec_start_t > 3.0 * cfg.backup_distance_m / max(
                cfg.backup_speed_mps, 1e-3) + 1.0
            if left <= 0.01 or too_long:
                return self._after_recovery(t, pose, costmap)
            hit, _ = self.ctrl.arc_collides(costmap, pose, -cfg.backup_speed_mps, 0.0,
                                            max(left, 0.05) + 0.05)
            if hit:
                return self._after_recovery(t, pose, costmap)   # nothing free behind: skip
            self.last_detail = "backing up: " + self.block_reason
            return NavStep(-cfg.backup_speed_mps, 0.0, "backing_up", self._remaining(pose),
                           self.last_detail)
        if self.state == "rotating":
            self.rec_turned += abs(wrap_angle(pose[2] - self.rec_last_yaw))
            self.rec_last_yaw = pose[2]
            too_long = t - self.rec_start_t > 3.0 * cfg.rotate_angle_rad / max(
                cfg.rotate_speed_radps, 1e-3) + 1.0
            if self.rec_turned >= cfg.rotate_angle_rad or too_long:
                return self._after_recovery(t, pose, costmap)
            self.last_detail = "rotating: " + self.block_reason
            return NavStep(0.0, cfg.rotate_speed_radps, "rotating", self._remaining(pose),
                           self.last_detail)
        raise SitebotError(f"navigator: unknown state {self.state!r}")  # pragma: no cover

    def _follow(self, t, dt, pose, costmap, safety, people) -> NavStep:
        cfg = self.cfg
        new_plan = None
        if t >= self.next_check_t:
            self.next_check_t = t + cfg.path_check_period_s
            where = self.path_blocked(pose, costmap)
            due = t >= self.next_replan_t
            if where is not None or due:
                why = f"path blocked at ({where[0]:.2f}, {where[1]:.2f})" if where else ""
                plan, err = self._replan(t, pose, costmap)
                if self.outcome is not None:
                    return self._zero(self.state, self._remaining(pose), self.outcome.reason)
                if plan is None:
                    self._enter_recovery(t, pose, f"{why or 'replanning failed'}: {err}")
                    return self._zero(self.state, self._remaining(pose), self.block_reason)
                new_plan = plan
        out: ControlOutput = self.ctrl.compute(pose, dt, costmap, people, safety.speed_cap)
        if out.status == "goal_reached":
            label = self.goal.label or "the goal"
            at = f"({self.goal.x:.2f}, {self.goal.y:.2f})"
            self._finish("succeeded", f"reached {label}" + ("" if at in label else f" {at}"))
            return NavStep(0.0, 0.0, self.state, out.distance_remaining_m, self.outcome.reason,
                           self.outcome, new_plan)
        if out.status == "collision_ahead":
            if t - self.last_replan_t >= cfg.replan_cooldown_s:
                plan, err = self._replan(t, pose, costmap)
                if self.outcome is not None:
                    return self._zero(self.state, self._remaining(pose), self.outcome.reason)
                if plan is not None:
                    return self._zero("following", self._remaining(pose),
                                      f"replanned: {out.detail}", plan)
                self._enter_recovery(t, pose, f"{out.detail}: {err}")
            else:
                self._enter_recovery(t, pose, f"{out.detail} (also after replanning)")
            return self._zero(self.state, self._remaining(pose), self.block_reason, new_plan)
        self.last_detail = out.detail
        return NavStep(out.v, out.w, "following", out.distance_remaining_m, out.detail,
                       None, new_plan)
