"""The task executor's core parameters (no rclpy): one schema, declared by the
``task_executor`` node together with its ROS-side parameters, and the core configurations
built from it.

Each parameter sets one field of a core configuration:
:class:`~sitebot.executor.skills.ExecutorConfig` (skills and the step protocol; same
names), :class:`~sitebot.executor.approach.ApproachConfig` (``approach_`` + field name) and
:class:`~sitebot.executor.ports.PortsConfig` (same names).  Those dataclasses check their
fields against these specs (:func:`check_fields`), so a configuration made in code is held
to the ranges of the node's parameters, and their defaults are the specs' defaults (a test
compares them).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from sitebot.config.params import ParamSpec, ParamType, validate_value

__all__ = ["CORE_SCHEMA", "check_fields"]

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING
SA = ParamType.STRING_ARRAY

CORE_SCHEMA: tuple[ParamSpec, ...] = (
    ParamSpec("use_arm", B, True, "use the arm (camera view, stow, pick/place, valves)"),
    ParamSpec("nav_timeout_s", F, 300.0, "limit of one navigate_to", 1.0, 3600.0, unit="s"),
    ParamSpec("arm_timeout_s", F, 60.0, "limit of one arm motion", 1.0, 600.0, unit="s"),
    ParamSpec("gauge_timeout_s", F, 20.0, "waiting for valid gauge readings", 0.5, 300.0,
              unit="s"),
    ParamSpec("gauge_samples", I, 3, "valid readings combined per read_gauge", 1, 20),
    ParamSpec("gauge_second_view_m", F, 0.4, "a gauge not read from the place is looked at "
              "again from this much closer (0: no second view)", 0.0, 1.0, unit="m"),
    ParamSpec("max_attempts", I, 2, "attempts per step", 1, 10),
    ParamSpec("retry_wait_s", F, 5.0, "pause before retrying a failed step (a blocked path "
              "may clear)", 0.0, 600.0, unit="s"),
    ParamSpec("pause_limit_s", F, 120.0, "a protective stop longer than this aborts the plan",
              1.0, 3600.0, unit="s"),
    ParamSpec("safety_stale_s", F, 2.0, "no safety state for this long counts as stopped",
              0.1, 60.0, unit="s"),
    ParamSpec("confirm_timeout_s", F, 120.0, "waiting for a supervisor's confirmation", 1.0,
              3600.0, unit="s"),
    ParamSpec("gripper_joint", S, "gripper_left_finger_joint", "the gripper's driven joint"),
    ParamSpec("arm_joints", SA, [f"arm_joint_{i}" for i in range(1, 7)], "the arm's joints, in "
              "the arm planner's order (joint goals: a lift back to the pre-grasp reached)"),
    ParamSpec("gripper_time_s", F, 1.0, "duration of a gripper motion", 0.1, 10.0, unit="s"),
    ParamSpec("gripper_settle_s", F, 0.3, "wait after a gripper motion's duration before "
              "the fingers are looked at", 0.0, 5.0, unit="s"),
    ParamSpec("gripper_still_mps", F, 0.001, "a finger slower than this has stopped (at its "
              "target, or closed on something)", 1e-5, 0.1, unit="m/s"),
    ParamSpec("gripper_wait_s", F, 3.0, "longest wait for the fingers to stop after a "
              "gripper motion", 0.1, 60.0, unit="s"),
    ParamSpec("arm_stop_wait_s", F, 15.0, "an arm motion waits this long for a protective "
              "stop to clear (at most pause_limit_s) instead of sending a trajectory the "
              "supervisor would refuse", 0.0, 600.0, unit="s"),
    ParamSpec("approach_speed_mps", F, 0.08, "creeping speed of the short straight motions "
              "before a grasp and after it", 0.01, 0.3, unit="m/s"),
    ParamSpec("approach_min_gap_m", F, 0.2, "closest the chassis front comes to what the "
              "laser sees while closing in on a work surface", 0.05, 1.0, unit="m"),
    ParamSpec("approach_scan_max_age_s", F, 0.5, "a straight approach stops (blocked) when "
              "the latest laser scan is older than this", 0.05, 5.0, unit="s"),
    ParamSpec("approach_stall_s", F, 2.0, "a straight approach without progress for this "
              "long stops short (the supervisor holds the base)", 0.2, 30.0, unit="s"),
    ParamSpec("approach_progress_m", F, 0.005, "motion that counts as progress of a straight "
              "approach", 0.0005, 0.1, unit="m"),
    ParamSpec("approach_settle_s", F, 0.3, "wait after a straight approach before the arm "
              "moves (the base settles)", 0.0, 5.0, unit="s"),
    ParamSpec("approach_period_s", F, 0.05, "command period of a straight approach", 0.01,
              0.5, unit="s"),
    ParamSpec("grasp_forward_m", F, 0.55, "where a pick wants the object, ahead of the base "
              "origin (inside the arm's top-down workspace)", 0.3, 0.8, unit="m"),
    ParamSpec("approach_max_m", F, 0.6, "longest straight approach of a pick", 0.0, 1.5,
              unit="m"),
    ParamSpec("object_match_m", F, 0.15, "a perceived cluster this close to an object's "
              "surveyed position refines where the object is", 0.01, 1.0, unit="m"),
    ParamSpec("object_max_size_m", F, 0.6, "a perceived cluster with a side longer than "
              "this is not an object to pick (a torque wrench is 0.5 m)", 0.05, 2.0,
              unit="m"),
    ParamSpec("depth_wait_s", F, 5.0, "a pick waits this long for a depth image taken "
              "after it stopped to look", 0.1, 60.0, unit="s"),
    ParamSpec("grasp_attempts", I, 3, "grasp candidates a pick closes on before it fails "
              "(a missed grasp opens, backs off and tries the next)", 1, 10),
)

_SPECS = {s.name: s for s in CORE_SCHEMA}


def check_fields(config: Any, prefix: str = "") -> None:
    """Check every field of the dataclass ``config`` that a parameter sets (named
    ``prefix`` + field name) against that parameter's type and range.

    :raises sitebot.errors.ParameterError: naming the parameter and what it accepts.
    """
    for f in dataclasses.fields(config):
        spec = _SPECS.get(prefix + f.name)
        if spec is not None:
            validate_value(spec, getattr(config, f.name))


