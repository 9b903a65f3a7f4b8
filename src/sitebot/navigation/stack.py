"""The navigation stack between its messages: inputs, goals, one control tick.

Core only (no ROS; time is an argument). What the ``navigation`` node
(:mod:`sitebot.nodes.navigation`) does with its inputs, without the messages:
:class:`NavigationStack` holds the costmap and the behaviour (a new
:class:`~sitebot.navigation.behaviour.Navigator` with each new map), the robot's pose
(:class:`~sitebot.navigation.frames.PoseTracker`), the supervisor's latest word and the
tracked people; integrates scans (from the laser's mount on the base, looked up in the robot
description) and local occupancy grids into the costmap; turns registry places and poses
into goals; steps the behaviour at the control rate (:meth:`NavigationStack.tick`); keeps the
outcome counts and sums the state up for the diagnostics. Its configuration:
:mod:`sitebot.navigation.config`.

Not thread-safe: the node serialises the calls.
"""
from __future__ import annotations

import array
import copy
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from sitebot.description.kinematics import planar_frame_pose
from sitebot.errors import SitebotError
from sitebot.navigation.behaviour import LOCALIZATION_LOST, Goal, Navigator, Outcome, SafetyInput
from sitebot.navigation.config import NavigationConfig
from sitebot.navigation.controller import RegulatedPurePursuit
from sitebot.navigation.costmap import Costmap
from sitebot.navigation.frames import PoseTracker
from sitebot.navigation.planner import GlobalPlanner, Plan
from sitebot.site.registry import Place
from sitebot.types import (Diagnostic, DiagnosticLevel, Pose2D, SafetyLevel, quaternion_to_yaw,
                           se2_compose)

__all__ = ["Tick", "NavigationStack", "grid_values", "STOPPED_SPEED_MPS",
           "MAX_MAP_ROTATION_RAD"]

#: an allowed speed below this [m/s] is as good as a stop
STOPPED_SPEED_MPS = 1e-3
#: a map whose origin is rotated by more than this [rad] is refused
MAX_MAP_ROTATION_RAD = 1e-3
#: control cycle times kept for the diagnostics
CYCLE_WINDOW = 200


@dataclass(frozen=True)
class Tick:
    """The command of one control step (v [m/s], w [rad/s]); ``plan``: a new plan to show;
    ``outcome``: the goal ended at this step, ``message`` says how."""
    v: float = 0.0
    w: float = 0.0
    plan: Plan | None = None
    outcome: Outcome | None = None
    message: str = ""
    say: str = ""                  # to speak now (``hri/say``: a person holds the robot)


def grid_values(data: Sequence[int], width: int, height: int) -> np.ndarray:
    """The (height, width) int8 cells of a flat, row-major occupancy grid (nav_msgs/
    OccupancyGrid data: 0..100, -1 unknown); ValueError when the count does not match."""
    w, h = int(width), int(height)
    if len(data) != w * h:
        raise ValueError(f"{len(data)} values for {w}x{h} cells")
    return np.frombuffer(bytes(array.array("b", data)), np.int8).reshape(h, w)


class NavigationStack:
    """See the module doc. ``registry``: the site's places and zones; ``spawn``: where dead
    reckoning starts; ``description``: the robot description sensor mounts are read from."""

    def __init__(self, registry, spawn: Sequence[float], config: NavigationConfig,
                 description: Any) -> None:
        self.registry = registry
        self.cfg = config
        self.frames = PoseTracker(spawn, config.frames)
        self.planner = GlobalPlanner(config.planner)
        self.description = description
        self.costmap: Costmap | None = None
        self.nav: Navigator | None = None
        self.safety: SafetyInput | None = None
        self.safety_t = -math.inf
        self.people: list[tuple[float, float]] = []
        self.people_t = -math.inf
        self.zero_until = -math.inf
        self.state = "planning"             # the running goal's state (and detail)
        self.remaining_m = math.nan
        self.cycle_ms: list[float] = []
        self.last_plan_ms = math.nan
        self.counts = {"goals": 0, "succeeded": 0, "blocked": 0, "aborted": 0, "canceled": 0,
                       "bad_input": 0}
        self.last_outcome = ""
        self._mounts: dict[str, Pose2D] = {}

    @classmethod
    def for_site(cls, site, initial_pose: Sequence[float], config: NavigationConfig,
                 description: Any, site_map: bool = True) -> "NavigationStack":
        """The stack on a site (a :class:`~sitebot.site.bundle.SiteBundle`: its registry;
        dead reckoning from ``initial_pose``); with ``site_map`` on the site's static
        map, else without a map until :meth:`map_grid` gives one."""
        stack = cls(site.registry, initial_pose, config, description)
        if site_map:
            stack.use_site_map(site)
        return stack

    # ------------------------------------------------------------------ maps
    def set_costmap(self, cm: Costmap) -> None:
        """A new map: a new behaviour, whose site map (for goal checks) is a copy of it."""
        self.costmap = cm
        self.nav = Navigator(self.planner, RegulatedPurePursuit(self.cfg.controller),
                             self.cfg.behaviour, static_costmap=copy.deepcopy(cm))

    def use_site_map(self, site) -> None:
        """The site's static map and its registry's zones."""
        self.set_costmap(Costmap.from_site(site, self.cfg.costmap))

    def map_grid(self, data: Sequence[int], width: int, height: int, origin: Sequence[float],
                 resolution_m: float, frame: str) -> None:
        """A site map (occupancy cells, see :func:`grid_values`; ``origin`` (x, y, yaw) of
        its corner) in the map frame replaces the costmap; a running goal is canceled.
        ValueError for another frame, a rotated origin or a wrong cell count."""
        if frame and frame != self.cfg.frames.map_frame:
            raise ValueError(f"frame '{frame}', expected '{self.cfg.frames.map_frame}'")
        if abs(origin[2]) > MAX_MAP_ROTATION_RAD:
            raise ValueError("rotated map origins are not supported")
        values = grid_values(data, width, height)
        cm = Costmap.from_occupancy(values, origin[0], origin[1], float(resolution_m),
                                    self.cfg.costmap, self.registry.zones)
        if self.nav is not None and self.nav.active:
            self.nav.cancel("the map changed")
        self.set_costmap(cm)

    # ------------------------------------------------------------------ perception
    def mount(self, frame: str) -> Pose2D:
        """The pose of a sensor frame on the base (fixed joints of the description)."""
        if frame not in self._mounts:
            self._mounts[frame] = Pose2D.of(planar_frame_pose(
                self.description, self.cfg.stack.base_frame, frame))
        return self._mounts[frame]

    def scan(self, frame: str, ranges: Sequence[float], angle_min: float,
             angle_increment: float, range_min: float, range_max: float, now: float) -> int:
        """A laser scan taken in ``frame`` at ``now`` marks and clears the costmap (from
        where the laser is at the robot's current pose); returns the cells marked."""
        if not self.cfg.stack.use_scan or self.costmap is None:
            return 0
        pose = self.frames.pose(now)
        if pose is None:
            return 0
        lp = se2_compose(pose, self.mount(frame))
        return self.costmap.integrate_scan(lp, np.asarray(ranges, float), angle_min,
                                           angle_increment, range_min, range_max, now)

    def local_grid(self, data: Sequence[int], width: int, height: int,
                   origin: Sequence[float], resolution_m: float, frame: str, now: float) -> int:
        """A local occupancy grid (spatial perception) in the odom or map frame marks and
        clears the costmap; ignored while map->odom is unknown. Returns the cells marked."""
        if not self.cfg.stack.use_local_map or self.costmap is None:
            return 0
        values = grid_values(data, width, height)
        grid_pose = self.frames.grid_in_map(origin, frame)
        if grid_pose is None:
            return 0
        return self.costmap.integrate_grid(values, grid_pose, float(resolution_m), now)

    def people_seen(self, points: Iterable[tuple[float, float]], frame: str,
                    now: float) -> None:
        """Tracked people (map frame, or the base frame) at ``now``."""
        self.people, self.people_t = self.frames.points_in_map(points, frame, now), now

    def safety_state(self, level: int, speed_cap_mps: float, reasons: Sequence[str],
                     message: str, now: float) -> None:
        """The supervisor's state: a missing or negative speed limit is 0, and an allowed
        speed of (about) 0 counts as a protective stop, except for a lost localization (the
        supervisor then allows turning in place, and the behaviour turns to find markers)."""
        cap = float(speed_cap_mps)
        # an unknown level counts as the nearest known one (above EMERGENCY_STOP: that)
        level = SafetyLevel(min(max(int(level), SafetyLevel.NORMAL), SafetyLevel.EMERGENCY_STOP))
        if not math.isfinite(cap) or cap < 0:
            cap = 0.0
        if cap < STOPPED_SPEED_MPS and level < SafetyLevel.PROTECTIVE_STOP \
                and LOCALIZATION_LOST not in reasons:
            level = SafetyLevel.PROTECTIVE_STOP
        self.safety = SafetyInput(level, cap, tuple(reasons) or (message,))
        self.safety_t = now

    # ------------------------------------------------------------------ goals
    def goal_from_pose(self, position: Sequence[float], orientation_xyzw: Sequence[float],
                       frame: str, label: str = "") -> Goal:
        """A goal pose (position x, y; orientation quaternion) in the map or odom frame;
        SitebotError for non-finite values, a zero quaternion or another frame."""
        x, y = position
        vals = (x, y, *orientation_xyzw)
        if not all(math.isfinite(v) for v in vals):
            raise SitebotError(f"goal pose has non-finite values {vals}")
        if sum(abs(v) for v in orientation_xyzw) < 1e-9:
            raise SitebotError("goal pose has a zero quaternion")
        gx, gy, gyaw = self.frames.goal_in_map((x, y, quaternion_to_yaw(orientation_xyzw)),
                                               frame)
        where = "" if frame == self.cfg.frames.map_frame else f" in {frame}"
        return Goal(gx, gy, gyaw, label or f"pose ({x:.2f}, {y:.2f}){where}")

    def goal_for_place(self, place_id: str) -> Goal:
        """The pose of a registry place; SitebotError naming the places for another id."""
        place = self.registry.get(place_id)
        if not isinstance(place, Place):
            known = ", ".join(pl.id for pl in self.registry.places)
            raise SitebotError(f"unknown place '{place_id}' in site "
                               f"'{self.registry.site}'; places: {known}")
        return Goal(place.x, place.y, place.yaw, place.id)

    def start(self, goal: Goal, now: float) -> Outcome | None:
        """Take a goal (preempting any other): None, or the outcome of a goal refused at
        once; SitebotError while there is no map."""
        if self.nav is None:
            raise SitebotError("no map yet (map_source 'topic': waiting for 'map')")
        self.counts["goals"] += 1
        outcome = self.nav.start(goal, now)
        self.state, self.remaining_m = "planning", math.nan
        if outcome is not None:
            self._count(outcome)
        return outcome

    def cancel(self, reason: str) -> Outcome:
        out = self.nav.cancel(reason)
        self._count(out)
        return out

    def goal_end(self, nav: Navigator, current: bool,
                 cancel_requested: bool) -> tuple[str, Outcome] | None:
        """How the goal ``nav`` took ends now, for an action server: ('abort', outcome)
        when it is no longer the ``current`` goal or the map changed (another behaviour),
        ('canceled', outcome) on a client's request, ('succeed' or 'abort', its outcome)
        when it ended; None while it runs."""
        if not current or self.nav is not nav:
            return "abort", Outcome("aborted", "preempted by a new goal")
        if cancel_requested:      # canceled, whatever the behaviour had come to
            return "canceled", Outcome("canceled", self.cancel("canceled by the client").reason)
        if nav.outcome is not None:
            return ("succeed" if nav.outcome.code == "succeeded" else "abort"), nav.outcome
        return None

    def _count(self, outcome: Outcome) -> None:
        self.counts[outcome.code] = self.counts.get(outcome.code, 0) + 1
        self.last_outcome = f"{outcome.code}: {outcome.reason}"

    # ------------------------------------------------------------------ control
    def tick(self, now: float) -> Tick | None:
        """One control step at ``now``: the command to send, or None to send nothing (no
        map, simulation time not running yet, no goal and no stop to hold)."""
        cfg = self.cfg.stack
        if now <= 0.0:               # simulation time not running yet (no /clock so far)
            return None
        nav, cm = self.nav, self.costmap
        if nav is None or cm is None:
            return None
        cm.update(now)
        if not nav.active:
            return Tick() if now < self.zero_until else None
        safety = self.safety
        if safety is None or now - self.safety_t > cfg.safety_timeout_s:
            safety = SafetyInput(SafetyLevel.PROTECTIVE_STOP, 0.0, ("safety/state stale",)) \
                if cfg.safety_required else SafetyInput()
        people = self.people if now - self.people_t < cfg.people_timeout_s else []
        was = nav.outcome
        step = nav.step(now, self.frames.pose(now), cm, safety, people)
        self.remaining_m = step.distance_remaining_m
        self.state = step.state + (f": {step.detail}" if step.detail else "")
        if step.new_plan is not None:
            self.last_plan_ms = step.new_plan.time_s * 1e3
        if step.outcome is not None and was is None:
            self._count(step.outcome)
            self.zero_until = now + cfg.stop_hold_s
            return Tick(0.0, 0.0, step.new_plan, step.outcome,
                        f"goal {nav.goal.label}: {step.outcome.code}: {step.outcome.reason}")
        return Tick(step.v, step.w, step.new_plan, say=step.say)

    def record_cycle(self, ms: float) -> None:
        """The time one control step took (for the diagnostics)."""
        self.cycle_ms.append(ms)
        del self.cycle_ms[:-CYCLE_WINDOW]

    def status(self, now: float) -> Diagnostic:
        """The state for the diagnostics: a warning without a map, without a pose while a
        goal runs, after a blocked or aborted goal, and while recovering or paused."""
        nav = self.nav
        state = (self.state if nav.active else nav.state) if nav else "waiting for map"
        pose_ok = self.frames.pose(now) is not None
        warn = nav is None or (nav.active and not pose_ok) \
            or (nav is not None and nav.state in ("blocked", "aborted")) \
            or state.split(":")[0] in ("waiting", "backing_up", "rotating", "paused")
        cyc = sorted(self.cycle_ms)
        values = {"goal": nav.goal.label if nav and nav.goal else "",
                  "pose_fresh": pose_ok, "replans": nav.replans if nav else 0,
                  "recoveries": nav.recoveries if nav else 0,
                  "last_plan_ms": f"{self.last_plan_ms:.1f}",
                  "control_cycle_median_ms": f"{cyc[len(cyc) // 2]:.2f}" if cyc else "nan",
                  "control_cycle_max_ms": f"{cyc[-1]:.2f}" if cyc else "nan",
                  "last_outcome": self.last_outcome, **self.counts}
        return Diagnostic("navigation", DiagnosticLevel.WARN if warn else DiagnosticLevel.OK,
                          state, tuple((k, str(v)) for k, v in values.items()))
