"""Task executor core: runs validated plans through the skill library (no rclpy).

See :mod:`sitebot.executor.runner` for the step protocol (re-check, pause on stops,
retries, safe state) and :mod:`sitebot.executor.skills` for the skills.
"""
from .runner import PlanRunner, check_plan, check_step
from .skills import SKILLS, ExecutorConfig
from .types import (ExecutionResult, MotionResult, Outcome, Plan, Reading, ResultCode,
                    SafetyLevel, SafetySnapshot, Step, StepResult)

__all__ = ["PlanRunner", "check_plan", "check_step", "SKILLS", "ExecutorConfig",
           "ExecutionResult", "MotionResult", "Outcome", "Plan", "Reading", "ResultCode",
           "SafetyLevel", "SafetySnapshot", "Step", "StepResult"]
