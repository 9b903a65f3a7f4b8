"""Failure labels of campaign runs, from what each run recorded (no ROS).

Every run that did not pass gets one label from :data:`LABELS`, with the evidence it was
read from, by the first rule that matches, in this order:

1. no verdict: ``infrastructure_error`` (the worker died, the stack did not come up);
2. a process of the stack died: ``node_died``;
3. a safety check failed: ``safety_violation`` (zero tolerance, ``campaign.gate``);
4. the localization filter diverged during the run (the supervisor's
   ``localization_diverged`` cause): ``localization_diverged``, a cause that shows
   downstream as held or blocked motion, so it is read before them;
5. the reason the mission ended (the executor's failed step, ``mission_done`` event), by
   the wording of the skills (``sitebot.executor.skills``): ``grasp_missed``,
   ``grasp_unreachable``, ``arm_motion_rejected`` (the arm planner refused a motion: out
   of reach, in collision), ``object_not_found``, ``object_dropped``, ``gauge_unreadable``,
   ``supervisor_hold_timeout``, ``navigation_blocked``, ``skill_timeout``,
   ``planner_clarify`` (the planner asked back), ``planner_refused`` (it refused: a
   restricted place for the role, no skill);
6. the run's wall-clock or simulated time limit: ``time_limit``;
7. any other failed check: ``criteria`` (the check named in the evidence);
8. else ``unlabelled``: a rule is missing, and the evidence says what the run recorded.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from sitebot.campaign.gate import safety_violations

__all__ = ["LABELS", "label_run"]

_REASON_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(rx, re.IGNORECASE)) for label, rx in (
        ("grasp_missed", r"grasp of \S+ missed|gripper did not open"
                         r"|grasp of \S+ failed after .*fingers closed"),
        ("grasp_unreachable",
         r"arm to the (grasp|pre-grasp|lift)\w*: rejected|no collision-free IK"
         r"|no grasp of \S+:|grasp of \S+ failed after"),
        ("arm_motion_rejected", r"arm (to|over) [^:]*: rejected"),
        ("object_not_found", r"\bnot found near\b"),
        ("object_dropped",
         r"\bdropped\b|no longer holding|lost the object|nothing in the gripper to put down"
         r"|slipped out while lifting"),
        ("gauge_unreadable", r"no confident reading|readings of \S+ disagree"),
        ("supervisor_hold_timeout", r"held by the supervisor|robot stopped for more than"),
        ("navigation_blocked", r"(navigate to|dock|patrol)[^:]*: (blocked|aborted)"),
        ("skill_timeout", r": timeout\b|took longer than"),
        ("planner_clarify", r"^clarify\b"),
        ("planner_refused", r"^refused\b"),
    ))

#: every label a failed run can get
LABELS = ("infrastructure_error", "node_died", "safety_violation", "localization_diverged",
          *(label for label, _ in _REASON_RULES), "time_limit", "criteria", "unlabelled")


def _mission_reason(result: Mapping[str, Any]) -> str:
    """How the mission ended: the outcome, unless it is a plain failure, then the reason
    (``clarify: Which ... do you mean?``, ``step 2/4 pick(...): ...``)."""
    for e in reversed(result.get("events") or []):
        if e.get("kind") == "mission_done":
            outcome, reason = str(e.get("outcome") or ""), str(e.get("reason") or "")
            if outcome in ("", "failed"):
                return reason or outcome
            return f"{outcome}: {reason}" if reason else outcome
    return str(result.get("reason") or "")


def _diverged(result: Mapping[str, Any]) -> bool:
    timeline = (result.get("metrics") or {}).get("safety_timeline") or []
    return any("localization_diverged" in " ".join(map(str, seg.get("reasons") or []))
               for seg in timeline)


def label_run(result: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(label, evidence)`` for a run that did not pass; None for one that passed or was
    skipped."""
    status = result.get("status")
    if status in ("passed", "skipped"):
        return None
    if status != "failed":
        return "infrastructure_error", str(result.get("reason") or f"status {status}")
    checks = result.get("checks") or []
    dead = result.get("failed_processes") or [c["value"] for c in checks
                                              if c.get("name") == "processes" and not c["ok"]]
    if dead:
        return "node_died", f"processes: {dead}"
    unsafe = safety_violations(checks)
    if unsafe:
        return "safety_violation", ", ".join(unsafe)
    reason = _mission_reason(result)
    if _diverged(result):
        return "localization_diverged", "the supervisor held the robot for " \
            "localization_diverged" + (f"; the mission: {reason}" if reason else "")
    for label, rx in _REASON_RULES:
        if rx.search(reason):
            return label, reason
    failed = [c for c in checks if not c.get("ok")]
    if any(c.get("name") == "time_limit" for c in failed):
        return "time_limit", reason or "time_limit"
    if failed:
        c = failed[0]
        return "criteria", f"{c['name']}: {c.get('value')} (limit {c.get('limit')})"
    return "unlabelled", reason or "no failed check and no reason recorded"
