"""The language-to-task planner: plain English in, a validated plan in the brief's canonical
form out (or one clarifying question, or a refusal with a reason).  Core: no rclpy.

  >>> from sitebot.language import TaskPlanner, load_site
  >>> tp = TaskPlanner(load_site("substation"))
  >>> tp.plan("read the T1 pressure gauge, then dock").to_dict()["steps"]  # doctest: +SKIP

See docs/language.md.
"""
from __future__ import annotations

from sitebot.language.grounding import Grounder, GroundingConfig, load_embedder
from sitebot.language.llm import LLMConfig
from sitebot.language.planner import OfflinePlanner, PlannerConfig
from sitebot.language.service import Dialogue, TaskPlanner, load_site, planner_for
from sitebot.language.types import HIGH_RISK_SKILLS, SKILLS, Answer, Clarification, Step
from sitebot.language.validator import canonical, check_steps

__all__ = ["TaskPlanner", "Dialogue", "OfflinePlanner", "PlannerConfig", "Grounder",
           "GroundingConfig", "LLMConfig", "Answer", "Step", "Clarification", "SKILLS",
           "HIGH_RISK_SKILLS", "load_site", "planner_for", "load_embedder", "check_steps", "canonical"]
