"""The safety supervisor's core (no ROS): see ``docs/safety.md``.

:class:`Supervisor` orchestrates small parts, each behind one interface: data sources with
watchdogs (:mod:`.sources`), speed and separation monitoring (:mod:`.ssm`), zones
(:mod:`.zones`), command limits and modes (:mod:`.limits`), the latched emergency stop
(:mod:`.estop`), arm trajectory checks (:mod:`.arm`) and the audit log (:mod:`.audit`).
Parameters: :data:`.config.SCHEMA` / :class:`.config.SafetyConfig` (the node's own:
:data:`.config.NODE_SCHEMA`). For the node: its inputs as core types (:mod:`.inputs`) and
what it shows (:mod:`.display`).
"""
from __future__ import annotations

from sitebot.safety.arm import ArmModel, JointLimit, validate_trajectory
from sitebot.safety.audit import AuditLog
from sitebot.safety.config import SCHEMA, SafetyConfig, safety_config_from_params
from sitebot.safety.estop import EmergencyStop
from sitebot.safety.ssm import SeparationMonitor, protective_separation
from sitebot.safety.supervisor import Supervisor
from sitebot.safety.types import (BaseCommand, Cause, Obstacle, RobotState, SafetyStatus,
                                  SensorPose, TrajectoryPoint, Verdict, combine)
from sitebot.safety.zones import PathCheck, ZoneRule
from sitebot.types import Mode, SafetyLevel, StopCategory

__all__ = [
    "Supervisor", "SafetyConfig", "SCHEMA", "safety_config_from_params",
    "SafetyLevel", "Mode", "Cause", "Verdict", "combine", "Obstacle", "BaseCommand",
    "RobotState", "SensorPose", "TrajectoryPoint", "SafetyStatus", "StopCategory",
    "AuditLog", "EmergencyStop", "SeparationMonitor", "protective_separation",
    "ZoneRule", "PathCheck", "ArmModel", "JointLimit", "validate_trajectory",
]
