"""The language-to-task planner: plain English in, a validated plan in the brief's canonical
form out (or one clarifying question, or a refusal with a reason).  Core: no rclpy.

  >>> from sitebot.language import TaskPlanner, load_site
  >>> tp = TaskPlanner(load_site("substation"))
  >>> tp.plan("read the T1 pressure gauge, then dock").to_dict()["steps"]  # doctest: +SKIP

See docs/language.md.
"""
from __future__ import annotations

import importlib
from typing import Any

#: public names and the module each lives in; imported on first use (PEP 562), so that
#: ``sitebot.language.types`` (the skill table the executor and the console share) costs
#: nothing to import while the planner's models load only where a planner is built
_EXPORTS = {
    "Grounder": "grounding", "GroundingConfig": "grounding", "load_embedder": "grounding",
    "LLMConfig": "llm", "OfflinePlanner": "planner", "PlannerConfig": "planner",
    "Dialogue": "service", "TaskPlanner": "service", "load_site": "service",
    "planner_for": "service", "HIGH_RISK_SKILLS": "types", "SKILLS": "types",
    "Answer": "types", "Clarification": "types", "Step": "types", "canonical": "validator",
    "check_steps": "validator",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sitebot.language' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sitebot.language.{_EXPORTS[name]}"), name)
