"""The navigation's parameters: one schema (:data:`SCHEMA`, the part of the ``navigation``
node's parameters the stack takes, checked offline by ``sitebot check``) and one frozen value
(:class:`NavigationConfig`: the configs of the frames, the stack, the costmap, the planner,
the controller and the behaviour).

:func:`navigation_config_from_params` validates a ``{name: value}`` mapping (the node's
declared values, or a parameter file's block; names of other schemas are ignored), fills the
defaults and derives the parts' configs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from sitebot.config.params import ParamSpec, ParamType, validate_params
from sitebot.errors import SitebotError
from sitebot.navigation.behaviour import BehaviourConfig
from sitebot.navigation.controller import ControllerConfig
from sitebot.navigation.costmap import CostmapConfig
from sitebot.navigation.frames import POSE_SOURCES, FrameConfig
from sitebot.navigation.planner import PlannerConfig

__all__ = ["SCHEMA", "StackConfig", "NavigationConfig", "navigation_config_from_params",
           "POSE_ABORT_TIMEOUTS"]

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING

#: the behaviour gives a goal up after no valid pose for at least this many pose timeouts
POSE_ABORT_TIMEOUTS = 10

SCHEMA: tuple[ParamSpec, ...] = (
    ParamSpec("pose_source", S, "dead_reckoning", "'filter': odometry/filtered (map frame); "
              "'dead_reckoning': odom composed with the spawn pose", choices=POSE_SOURCES),
    ParamSpec("role", S, "", "role the robot works for: restricted zones listing it may be "
              "entered, the others are lethal"),
    ParamSpec("map_frame", S, "map", "the map frame (goals, plan, costmap)"),
    ParamSpec("odom_frame", S, "odom", "the odometry frame (local_map)"),
    ParamSpec("base_frame", S, "base_footprint", "the robot's base frame"),
    ParamSpec("pose_timeout_s", F, 0.5, "a pose older than this stops the base", 0.05, 5.0,
              unit="s"),
    ParamSpec("safety_timeout_s", F, 0.5, "safety/state older than this pauses navigation "
              "(the control loop stops without it anyway)", 0.05, 5.0, unit="s"),
    ParamSpec("safety_required", B, True, "pause while no fresh safety/state arrives"),
    ParamSpec("use_scan", B, True, "mark and clear obstacles from the raw scan"),
    ParamSpec("use_local_map", B, True, "mark and clear obstacles from local_map"),
    ParamSpec("people_timeout_s", F, 1.0, "tracked people older than this are not used",
              0.05, 10.0, unit="s"),
    ParamSpec("stop_hold_s", F, 0.5, "zero commands go on this long after a goal ended", 0.0,
              5.0, unit="s"),
    # costmap
    ParamSpec("resolution_m", F, 0.05, "costmap resolution", 0.02, 0.5, unit="m"),
    ParamSpec("footprint_radius_m", F, 0.4, "radius of the circle covering the robot (the "
              "supervisor's footprint_radius_m)", 0.1, 2.0, unit="m"),
    ParamSpec("inflation_radius_m", F, 1.0, "the cost gradient reaches this far from "
              "obstacles", 0.1, 5.0, unit="m"),
    ParamSpec("cost_scaling_factor", F, 3.0, "exponential decay rate of the cost gradient",
              0.1, 50.0, unit="1/m"),
    ParamSpec("zone_margin_m", F, 0.1, "keep-out and forbidden restricted zones grown by "
              "this (the supervisor's zone_margin_m)", 0.0, 2.0, unit="m"),
    ParamSpec("slow_zone_cost", I, 40, "floor cost inside slow zones (0..252)", 0, 252),
    ParamSpec("obstacle_decay_s", F, 5.0, "a perceived obstacle not seen again expires after "
              "this", 0.1, 600.0, unit="s"),
    ParamSpec("obstacle_max_range_m", F, 4.0, "scan hits beyond this are not marked", 0.5,
              30.0, unit="m"),
    ParamSpec("raytrace_max_range_m", F, 5.0, "scan beams clear free space up to this range",
              0.5, 30.0, unit="m"),
    ParamSpec("obstacle_clearance_m", F, 0.6, "perceived obstacles the static map does not "
              "explain get a soft margin (cost 252) this far beyond the footprint (the "
              "supervisor stops short of person-sized ones)", 0.0, 2.0, unit="m"),
    ParamSpec("static_match_m", F, 0.25, "perceived obstacles this close to the static map are "
              "taken as that structure (no soft margin)", 0.0, 1.0, unit="m"),
    ParamSpec("allow_unknown", B, False, "unknown cells of a map topic are free (else lethal)"),
    # planner
    ParamSpec("cost_weight", F, 3.0, "path cost factor 1 + cost_weight * cost/252", 0.0, 50.0),
    ParamSpec("coarse_factor", I, 4, "coarse search every N cells first (<= 1: none)", 0, 16),
    ParamSpec("corridor_m", F, 1.0, "fine search within this of the coarse path", 0.2, 10.0,
              unit="m"),
    ParamSpec("min_turn_radius_m", F, 0.3, "smallest corner arc; below it the base turns on "
              "the spot", 0.05, 5.0, unit="m"),
    ParamSpec("max_turn_radius_m", F, 1.5, "largest corner arc", 0.05, 10.0, unit="m"),
    ParamSpec("escape_margin_m", F, 0.2, "a start in inflated space may leave through the "
              "footprint radius plus this", 0.0, 2.0, unit="m"),
    # controller
    ParamSpec("desired_speed_mps", F, 0.6, "cruise speed", 0.05, 1.5, unit="m/s"),
    ParamSpec("max_angular_radps", F, 1.0, "largest turn rate", 0.1, 3.0, unit="rad/s"),
    ParamSpec("max_accel_mps2", F, 0.5, "largest acceleration", 0.05, 3.0, unit="m/s^2"),
    ParamSpec("lookahead_time_s", F, 1.5, "lookahead = speed * this (clamped)", 0.1, 5.0,
              unit="s"),
    ParamSpec("min_lookahead_m", F, 0.4, "smallest lookahead", 0.1, 3.0, unit="m"),
    ParamSpec("max_lookahead_m", F, 1.2, "largest lookahead", 0.1, 5.0, unit="m"),
    ParamSpec("rotate_to_heading_rad", F, 0.7, "turn on the spot first when the path is more "
              "than this off the heading", 0.1, 3.2, unit="rad"),
    ParamSpec("rotate_speed_radps", F, 0.8, "turn rate on the spot", 0.1, 3.0, unit="rad/s"),
    ParamSpec("regulated_min_radius_m", F, 0.9, "tighter turns than this slow the base", 0.05,
              10.0, unit="m"),
    ParamSpec("proximity_distance_m", F, 0.5, "closer than this (beyond the footprint) to an "
              "obstacle slows the base", 0.0, 3.0, unit="m"),
    ParamSpec("approach_distance_m", F, 0.8, "slow down over this distance to the goal", 0.05,
              5.0, unit="m"),
    ParamSpec("xy_goal_tolerance_m", F, 0.1, "goal position tolerance", 0.01, 2.0, unit="m"),
    ParamSpec("yaw_goal_tolerance_rad", F, 0.1, "goal heading tolerance", 0.01, 3.2, unit="rad"),
    ParamSpec("collision_time_s", F, 1.5, "the commanded arc is checked this far ahead", 0.1,
              10.0, unit="s"),
    ParamSpec("people_slow_distance_m", F, 2.0, "a tracked person closer than this slows the "
              "base", 0.0, 10.0, unit="m"),
    ParamSpec("people_speed_mps", F, 0.25, "speed near people", 0.0, 1.5, unit="m/s"),
    # behaviour
    ParamSpec("wait_s", F, 3.0, "recovery: wait this long", 0.0, 60.0, unit="s"),
    ParamSpec("backup_distance_m", F, 0.3, "recovery: back up this far (checked behind)", 0.0,
              2.0, unit="m"),
    ParamSpec("backup_speed_mps", F, 0.1, "recovery: back-up speed", 0.02, 0.5, unit="m/s"),
    ParamSpec("rotate_angle_rad", F, 1.57, "recovery: turn this far on the spot", 0.0, 6.3,
              unit="rad"),
    ParamSpec("blocked_timeout_s", F, 30.0, "give up (blocked) after being blocked this long",
              1.0, 3600.0, unit="s"),
    ParamSpec("stall_timeout_s", F, 90.0, "give up (blocked) after this long without getting "
              "1 m closer to the goal (detours round obstacles that come and go)", 5.0,
              3600.0, unit="s"),
    ParamSpec("protective_stop_timeout_s", F, 60.0, "give up (blocked) after a protective "
              "stop this long", 1.0, 3600.0, unit="s"),
    ParamSpec("ask_after_s", F, 3.0, "held by a person this long: ask them to let the robot "
              "pass (hri/say)", 0.0, 3600.0, unit="s"),
    ParamSpec("ask_every_s", F, 10.0, "then ask again this often", 1.0, 3600.0, unit="s"),
    ParamSpec("ask_distance_m", F, 2.5, "a person this near holds a robot in recovery (a "
              "narrow passage): ask too", 0.0, 20.0, unit="m"),
    ParamSpec("relocalize_turn_radps", F, 0.25, "localization diverged: turn in place this "
              "fast to find markers (the supervisor allows relocalize_turn_radps)", 0.0, 1.0,
              unit="rad/s"),
    ParamSpec("relocalize_timeout_s", F, 60.0, "give up (blocked) when turning in place has "
              "not re-localized the robot within this", 1.0, 3600.0, unit="s"),
    ParamSpec("pose_abort_s", F, 5.0, "give up (aborted) after no valid pose this long (at "
              "least 10 pose_timeout_s)", 0.0, 3600.0, unit="s"),
    ParamSpec("goal_timeout_s", F, 600.0, "abort a goal not reached within this", 1.0, 86400.0,
              unit="s"),
    ParamSpec("replan_period_s", F, 0.0, "replan periodically while following (0: only when "
              "the path is blocked)", 0.0, 60.0, unit="s"),
)


@dataclass(frozen=True)
class StackConfig:
    """The stack's own settings (seconds)."""
    safety_timeout_s: float = 0.5       # safety/state older than this pauses navigation
    safety_required: bool = True        # pause while no fresh safety/state arrives
    use_scan: bool = True               # mark and clear obstacles from the raw scan
    use_local_map: bool = True          # mark and clear obstacles from local grids
    people_timeout_s: float = 1.0       # tracked people older than this are not used
    stop_hold_s: float = 0.5            # zero commands this long after a goal ended
    base_frame: str = "base_footprint"  # the frame sensor mounts are looked up in

    def __post_init__(self) -> None:
        for name in ("safety_timeout_s", "people_timeout_s", "stop_hold_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise SitebotError(f"navigation: '{name}' must be a finite number >= 0, got "
                                   f"{v!r}")


@dataclass(frozen=True)
class NavigationConfig:
    frames: FrameConfig = FrameConfig()
    stack: StackConfig = StackConfig()
    costmap: CostmapConfig = CostmapConfig()
    planner: PlannerConfig = PlannerConfig()
    controller: ControllerConfig = ControllerConfig()
    behaviour: BehaviourConfig = BehaviourConfig()

    @classmethod
    def from_params(cls, p: Mapping[str, Any]) -> "NavigationConfig":
        """From the navigation node's parameters (the names of its SCHEMA). The inflation
        radius is at least the footprint, the smaller turn radius and lookahead at most the
        larger; a start in inflated space may leave through the footprint plus
        ``escape_margin_m``; the behaviour gives a goal up after ``pose_abort_s`` without a
        pose, and at least :data:`POSE_ABORT_TIMEOUTS` pose timeouts."""
        fp = p["footprint_radius_m"]
        return cls(
            frames=FrameConfig(pose_source=p["pose_source"], map_frame=p["map_frame"],
                               odom_frame=p["odom_frame"], pose_timeout_s=p["pose_timeout_s"]),
            stack=StackConfig(
                safety_timeout_s=p["safety_timeout_s"], safety_required=p["safety_required"],
                use_scan=p["use_scan"], use_local_map=p["use_local_map"],
                people_timeout_s=p["people_timeout_s"], stop_hold_s=p["stop_hold_s"],
                base_frame=p["base_frame"]),
            costmap=CostmapConfig(
                resolution_m=p["resolution_m"], footprint_radius_m=fp,
                inflation_radius_m=max(p["inflation_radius_m"], fp),
                cost_scaling_factor=p["cost_scaling_factor"], zone_margin_m=p["zone_margin_m"],
                slow_zone_cost=p["slow_zone_cost"], obstacle_decay_s=p["obstacle_decay_s"],
                obstacle_max_range_m=p["obstacle_max_range_m"],
                raytrace_max_range_m=p["raytrace_max_range_m"],
                allow_unknown=p["allow_unknown"], obstacle_clearance_m=p["obstacle_clearance_m"],
                static_match_m=p["static_match_m"], role=p["role"]),
            planner=PlannerConfig(
                cost_weight=p["cost_weight"], coarse_factor=p["coarse_factor"],
                corridor_m=p["corridor_m"],
                min_turn_radius_m=min(p["min_turn_radius_m"], p["max_turn_radius_m"]),
                max_turn_radius_m=p["max_turn_radius_m"],
                escape_radius_m=fp + p["escape_margin_m"]),
            controller=ControllerConfig(
                desired_speed_mps=p["desired_speed_mps"], max_angular_radps=p["max_angular_radps"],
                max_accel_mps2=p["max_accel_mps2"], lookahead_time_s=p["lookahead_time_s"],
                min_lookahead_m=min(p["min_lookahead_m"], p["max_lookahead_m"]),
                max_lookahead_m=p["max_lookahead_m"],
                rotate_to_heading_rad=p["rotate_to_heading_rad"],
                rotate_speed_radps=p["rotate_speed_radps"],
                regulated_min_radius_m=p["regulated_min_radius_m"],
                proximity_distance_m=p["proximity_distance_m"],
                approach_distance_m=p["approach_distance_m"],
                xy_goal_tolerance_m=p["xy_goal_tolerance_m"],
                yaw_goal_tolerance_rad=p["yaw_goal_tolerance_rad"],
                collision_time_s=p["collision_time_s"],
                people_slow_distance_m=p["people_slow_distance_m"],
                people_speed_mps=p["people_speed_mps"], footprint_radius_m=fp),
            behaviour=BehaviourConfig(
                wait_s=p["wait_s"], backup_distance_m=p["backup_distance_m"],
                backup_speed_mps=p["backup_speed_mps"], rotate_angle_rad=p["rotate_angle_rad"],
                blocked_timeout_s=p["blocked_timeout_s"], stall_timeout_s=p["stall_timeout_s"],
                protective_stop_timeout_s=p["protective_stop_timeout_s"],
                ask_after_s=p["ask_after_s"], ask_every_s=p["ask_every_s"],
                ask_distance_m=p["ask_distance_m"],
                relocalize_turn_radps=p["relocalize_turn_radps"],
                relocalize_timeout_s=p["relocalize_timeout_s"],
                goal_timeout_s=p["goal_timeout_s"], replan_period_s=p["replan_period_s"],
                pose_timeout_s=max(p["pose_abort_s"],
                                   POSE_ABORT_TIMEOUTS * p["pose_timeout_s"])))


def navigation_config_from_params(params: Mapping[str, Any]) -> NavigationConfig:
    """Validate the names of :data:`SCHEMA` in ``params`` (defaults filled, other names
    ignored) and build the config (:meth:`NavigationConfig.from_params`).

    :raises sitebot.errors.ConfigError: a wrong type or a value out of range.
    """
    known = {s.name for s in SCHEMA}
    return NavigationConfig.from_params(
        validate_params(SCHEMA, {k: v for k, v in params.items() if k in known}))
