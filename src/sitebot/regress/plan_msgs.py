"""The regression driver's reading of the task stack's messages (sitebot_interfaces TaskPlan,
StepOutcome, read by attribute: no ROS import here) as plain data for results and reports,
and the digest it signs plans with."""
from __future__ import annotations

from typing import Any

from sitebot.security import plan_digest

__all__ = ["steps_digest", "plan_outcome", "plan_dict", "step_outcome", "OUTCOME_DECLINED"]

#: sitebot_interfaces/StepOutcome's OUTCOME_DECLINED (a test checks they agree)
OUTCOME_DECLINED = 4


def steps_digest(plan: Any) -> str:
    return plan_digest((s.skill, dict(zip(s.arg_names, s.arg_values))) for s in plan.steps)


def plan_outcome(code: int, steps: list[dict]) -> str:
    """The mission outcome of an ExecutePlan result: a declined confirmation is its own
    outcome (the plan is aborted by the executor, on purpose)."""
    if any(s.get("outcome") == OUTCOME_DECLINED for s in steps):
        return "declined"
    return {0: "succeeded", 1: "failed", 2: "aborted", 3: "canceled",
            4: "refused"}.get(code, "failed")


def plan_dict(p: Any) -> dict:
    steps = [{"skill": s.skill, "args": dict(zip(s.arg_names, s.arg_values))} for s in p.steps]
    return {"status": int(p.status), "reason": p.reason, "question": p.question, "steps": steps}


def step_outcome(s: Any) -> dict:
    out = {}
    for k in s.get_fields_and_field_types():
        v = getattr(s, k)
        flat = isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float)) for x in v)
        if flat or isinstance(v, (str, int, float, bool)):
            out[k] = list(v) if flat else v
    out["skill"] = s.step.skill
    out["args"] = dict(zip(s.step.arg_names, s.step.arg_values))
    out["readings"] = [{"asset_id": r.asset_id, "valid": bool(r.valid), "value": float(r.value),
                        "unit": r.unit, "confidence": float(r.confidence),
                        "failure_reason": r.failure_reason} for r in s.readings]
    return out
