"""Parameters of the arm planner (the ``arm_planner`` node's schema; core, no ROS) and the
named poses.

Named poses are strings ``"name: q1 q2 q3 q4 q5 q6"`` (radians, arm joints 1..6) in the
``named_poses`` parameter (config/arm.yaml); :func:`parse_named_poses` checks them
(six finite numbers within the joint limits, unique names) with errors naming the entry.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from sitebot.config.params import ParamSpec, ParamType
from sitebot.errors import ConfigError
from sitebot.site.params import SITE_PARAMS

__all__ = ["SCHEMA", "DEFAULT_NAMED_POSES", "parse_named_poses"]

F, I, S, B = ParamType.FLOAT, ParamType.INT, ParamType.STRING, ParamType.BOOL
FA, SA = ParamType.FLOAT_ARRAY, ParamType.STRING_ARRAY

DEFAULT_NAMED_POSES = (
    "stow: 0.0 -0.3 2.5 0.0 1.2 0.0",
    "ready: 0.0 0.3 1.2 0.0 1.6 0.0",
    "camera_view: 0.0 0.0 0.9 0.0 0.9 0.0",
    "reach: 0.0 1.3 0.3 0.0 0.0 0.0",
    "upright: 0.0 0.0 0.0 0.0 0.0 0.0",
)

SCHEMA: tuple[ParamSpec, ...] = (
    *SITE_PARAMS,
    ParamSpec("pose_source", S, "auto", "robot map pose: 'filter' (odometry/filtered), "
              "'odom' (odom composed with the initial pose), 'parameter' (robot_pose), "
              "'auto' (filter when it has arrived, else odom)",
              choices=("auto", "filter", "odom", "parameter")),
    ParamSpec("robot_pose", FA, [0.0, 0.0, 0.0], "map pose x, y, yaw of base_footprint when "
              "pose_source is 'parameter'", length=3),
    ParamSpec("pose_timeout_s", F, 1.0, "a map pose older than this is stale: goals are "
              "refused", 0.05, 60.0, unit="s"),
    ParamSpec("joint_state_timeout_s", F, 0.5, "joint_states older than this are stale: "
              "goals are refused", 0.05, 10.0, unit="s"),
    ParamSpec("obstacles_required", B, False, "refuse goals while no fresh obstacles "
              "message has arrived (perception running)"),
    ParamSpec("obstacle_timeout_s", F, 2.0, "obstacles older than this count as stale",
              0.1, 60.0, unit="s"),
    ParamSpec("base_frame", S, "base_footprint", "the robot's root frame (arm planning frame)"),
    ParamSpec("map_frame", S, "map", "the map frame"),
    ParamSpec("odom_frame", S, "odom", "the odometry frame"),
    ParamSpec("planner", S, "RRTConnect", "OMPL planner", choices=("RRTConnect", "RRT",
                                                                   "RRTstar")),
    ParamSpec("planning_timeout_s", F, 2.0, "OMPL solve time limit", 0.01, 30.0, unit="s"),
    ParamSpec("simplifier", S, "shortcut", "path shortcutting after a solution",
              choices=("shortcut", "ompl", "shortcut+ompl", "none")),
    ParamSpec("padding_m", F, 0.02, "clearance kept from the scene and the robot body while "
              "planning", 0.0, 0.2, unit="m"),
    ParamSpec("self_padding_m", F, 0.005, "clearance kept between arm links", 0.0, 0.1,
              unit="m"),
    ParamSpec("max_step_m", F, 0.04, "largest motion of any arm point between checked "
              "states while planning (<= 2 x padding_m keeps the swept volume covered)",
              0.001, 0.2, unit="m"),
    ParamSpec("recheck_step_m", F, 0.01, "dense re-check of the final path (unpadded "
              "model): largest motion of any arm point between checked states", 0.001, 0.1,
              unit="m"),
    ParamSpec("scene_radius_m", F, 2.0, "world bodies within this distance of the robot are "
              "obstacles", 0.5, 20.0, unit="m"),
    ParamSpec("gripper_opening_m", F, 0.04, "finger opening assumed by the collision model "
              "(the largest = the widest gripper)", 0.0, 0.04, unit="m"),
    ParamSpec("max_acceleration", FA, [3.0, 2.25, 3.0, 3.75, 3.75, 4.5],
              "joint acceleration limits for ruckig (the control kernel refuses more than "
              "2 x the URDF velocity limit)", 0.01, 100.0, length=6, unit="rad/s^2"),
    ParamSpec("max_jerk", FA, [15.0, 12.0, 15.0, 20.0, 20.0, 25.0], "joint jerk limits for "
              "ruckig", 0.1, 10000.0, length=6, unit="rad/s^3"),
    ParamSpec("velocity_scale", F, 0.5, "fraction of the URDF velocity limits used when the "
              "goal gives no max_velocity_scale (also scales the acceleration limits)",
              0.01, 1.0),
    ParamSpec("trajectory_step_s", F, 0.02, "sampling step of the published trajectory "
              "(enlarged for long ones to stay within max_points)", 0.001, 1.0, unit="s"),
    ParamSpec("max_points", I, 200, "most points in a published trajectory (the control "
              "kernel holds 256)", 2, 10000),
    ParamSpec("goal_position_tolerance_m", F, 0.002, "IK: TCP position tolerance", 1e-5, 0.05,
              unit="m"),
    ParamSpec("goal_angle_tolerance_rad", F, 0.01, "IK: TCP orientation tolerance", 1e-5, 0.5,
              unit="rad"),
    ParamSpec("ik_seeds", I, 16, "IK: seeds tried (the current state first)", 1, 500),
    ParamSpec("execution_timeout_factor", F, 3.0, "a goal is aborted when the joints have "
              "not reached the goal after this many times the trajectory's duration (the "
              "supervisor may slow it) plus settle_timeout_s", 1.0, 100.0),
    ParamSpec("settle_timeout_s", F, 2.0, "extra time for the joints to settle at the goal",
              0.0, 60.0, unit="s"),
    ParamSpec("reached_tolerance_rad", F, 0.03, "joint_states within this of the goal "
              "(every joint) count as reached", 1e-4, 0.5, unit="rad"),
    ParamSpec("wait_for_execution", B, True, "wait until joint_states reach the goal before "
              "the result (false: succeed once the trajectory is published)"),
    ParamSpec("named_poses", SA, list(DEFAULT_NAMED_POSES), "named joint poses, each "
              "'name: q1 q2 q3 q4 q5 q6' [rad]"),
    ParamSpec("diagnostics_period_s", F, 1.0, "/diagnostics period", 0.1, 60.0, unit="s"),
    ParamSpec("seed", I, 0, "seed of OMPL's random number generator (set once per process) "
              "and of the IK seeds", 0, 2**31 - 1),
)

_ENTRY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$")


def parse_named_poses(entries: Sequence[str], lower: Sequence[float],
                      upper: Sequence[float], where: str = "named_poses"
                      ) -> dict[str, np.ndarray]:
    """``{"name": q (6,)}`` from ``"name: q1 .. q6"`` strings.

    :raises ConfigError: naming the entry (index and text) and what is wrong.
    """
    out: dict[str, np.ndarray] = {}
    lo = np.asarray(lower, float)
    hi = np.asarray(upper, float)
    for i, e in enumerate(entries):
        m = _ENTRY.match(str(e))
        if not m:
            raise ConfigError(f"{where}[{i}] {e!r}: expected 'name: q1 q2 q3 q4 q5 q6'")
        name, rest = m.group(1), m.group(2).replace(",", " ").split()
        try:
            q = np.array([float(v) for v in rest])
        except ValueError:
            raise ConfigError(f"{where}[{i}] {e!r}: joint values must be numbers") from None
        if q.size != len(lo):
            raise ConfigError(f"{where}[{i}] {e!r}: {q.size} values, expected {len(lo)}")
        if not np.isfinite(q).all():
            raise ConfigError(f"{where}[{i}] {e!r}: non-finite value")
        bad = [k for k in range(q.size) if not lo[k] - 1e-9 <= q[k] <= hi[k] + 1e-9]
        if bad:
            k = bad[0]
            raise ConfigError(f"{where}[{i}] {e!r}: joint {k + 1} = {q[k]:g} outside its "
                              f"limits [{lo[k]:g}, {hi[k]:g}]")
        if name in out:
            raise ConfigError(f"{where}[{i}]: duplicate name {name!r}")
        out[name] = q
    return out


def param_defaults() -> dict[str, Any]:
    """The schema's defaults by name (the bench and tests build the core from these)."""
    return {s.name: s.default for s in SCHEMA}
