"""Task executor core: runs validated plans through the skill library (no rclpy).

See :mod:`sitebot.executor.runner` for the step protocol (re-check, pause on stops,
retries, safe state) and :mod:`sitebot.executor.skills` for the skills.
"""
from sitebot.executor.runner import PlanRunner, check_plan, check_step
from sitebot.executor.skills import SKILLS, ExecutorConfig
from sitebot.executor.types import (ExecutionResult, MotionResult, Outcome, Plan, Reading,
                                    ResultCode, SafetySnapshot, Step, StepResult)
from sitebot.types import SafetyLevel

__all__ = ["PlanRunner", "check_plan", "check_step", "SKILLS", "ExecutorConfig",
           "ExecutionResult", "MotionResult", "Outcome", "Plan", "Reading", "ResultCode",
           "SafetyLevel", "SafetySnapshot", "Step", "StepResult"]
