"""What one plan run leaves behind besides its result (no rclpy): the mission log (events,
the supervisor's level changes, the path at 1 Hz), the run's folder, ``report.json`` and
the progress messages for consoles; and how a supervisor's answer is read.

The ``task_executor`` node feeds the log from its subscriptions and publishes the status
dictionaries on ``task/status`` (as JSON); times are node time, passed in.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from sitebot.executor.types import ExecutionResult, Plan, StepResult, outcome_counts

__all__ = ["MissionLog", "mission_report", "step_status", "final_status",
           "confirmation_answer", "safe_name"]

#: answers of a supervisor that confirm / decline a high-risk step
YES = frozenset({"yes", "y", "confirm", "confirmed", "approve", "approved", "ok", "go",
                 "go ahead"})
NO = frozenset({"no", "n", "decline", "declined", "deny", "denied", "cancel", "stop",
                "abort"})


def confirmation_answer(text: str) -> bool | None:
    """True (yes), False (no) or None (not understood) for an answer such as "Yes." or
    "go ahead"."""
    t = text.strip().lower().rstrip(".!")
    return True if t in YES else False if t in NO else None


def safe_name(name: str) -> str:
    """``name`` as a file name: characters other than letters, digits and ``-_.`` become
    ``_``; at most 120 characters."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


class MissionLog:
    """The bookkeeping of the current run: :meth:`begin` starts it (and empties the log),
    :meth:`end` writes ``<out_dir>/<plan id>/report.json``."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.run_dir = Path(".")
        self.events: list[dict] = []
        self.path: list[tuple[float, float, float]] = []
        self.safety_log: list[dict] = []
        self._last_level: int | None = None
        self._last_path_t = -math.inf
        self._t0 = self._w0 = 0.0

    def event(self, now: float, text: str) -> None:
        self.events.append({"t": round(now, 3), "event": text})

    def safety_level(self, now: float, level: int, reasons: list[str]) -> None:
        """The supervisor's state arrived: logged when its level changed."""
        if level != self._last_level:
            self._last_level = level
            self.safety_log.append({"t": round(now, 3), "level": int(level),
                                    "reasons": list(reasons)[:4]})

    def record_path(self, now: float, x: float, y: float) -> None:
        """The robot's position while a plan runs, kept once a second."""
        if now - self._last_path_t >= 1.0:
            self._last_path_t = now
            self.path.append((round(now, 2), round(x, 3), round(y, 3)))

    def begin(self, plan: Plan, now: float, wall: float) -> Path:
        """A new run: the log emptied, its folder made; returns the folder."""
        self.path.clear()
        self.safety_log.clear()
        self.events.clear()
        self._last_level = None
        self.run_dir = self.out_dir / safe_name(plan.plan_id or "plan")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._t0, self._w0 = now, wall
        self.event(now, f"plan {plan.plan_id} started: "
                   + ", ".join(s.describe() for s in plan.steps))
        return self.run_dir

    def end(self, plan: Plan, res: ExecutionResult, now: float, wall: float) -> Path:
        """The run ended: the report written; returns its path."""
        self.event(now, f"plan {plan.plan_id} ended: {res.code.name} ({res.reason})")
        report = mission_report(plan, res, self._t0, now, wall - self._w0, self.path,
                                self.safety_log, self.events)
        path = self.run_dir / "report.json"
        path.write_text(json.dumps(report, indent=2))
        return path

    def image_path(self, name: str) -> Path:
        """Where the run keeps the camera image ``name`` (its folder made)."""
        folder = self.run_dir / "images"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{safe_name(name)}.png"

    def crop_path(self, asset_id: str, now: float) -> Path:
        """Where the run keeps the dial crop of a reading of ``asset_id`` at ``now``."""
        folder = self.run_dir / "readings"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{safe_name(asset_id)}_{now:.2f}.png"


def mission_report(plan: Plan, res: ExecutionResult, t0: float, t1: float, wall_s: float,
                   path: list, safety_log: list, events: list) -> dict:
    """The mission report (JSON-able): outcome, per-step results, readings, safety events,
    path and timings."""
    return {
        "plan_id": plan.plan_id, "instruction": plan.instruction, "role": plan.role,
        "authority": plan.who, "result": res.code.name.lower(), "reason": res.reason,
        "duration_s": round(t1 - t0, 2), "wall_s": round(wall_s, 2),
        "outcomes": outcome_counts(res.steps),
        "steps": [{"skill": s.step.skill, "args": dict(s.step.args),
                   "outcome": s.outcome.name.lower(), "message": s.message,
                   "attempts": s.attempts, "duration_s": round(s.duration_s, 2),
                   "images": s.images, "flags": s.flags,
                   "readings": [{"asset": r.asset_id, "value": r.value, "unit": r.unit,
                                 "confidence": r.confidence, "crop": r.crop_path}
                                for r in s.readings]} for s in res.steps],
        "readings": [{"asset": r.asset_id, "value": r.value, "unit": r.unit,
                      "confidence": r.confidence} for r in res.readings],
        "safety_events": safety_log, "events": events, "path": path,
    }


def step_status(plan: Plan, index: int, count: int, state: str, result: StepResult) -> dict:
    """``task/status`` while a step runs."""
    return {"plan_id": plan.plan_id, "step": index + 1, "steps": count, "state": state,
            "skill": result.step.skill, "message": result.message}


def final_status(plan: Plan, res: ExecutionResult, report: Path) -> dict:
    """``task/status`` when the plan has ended."""
    return {"plan_id": plan.plan_id, "state": "finished", "code": res.code.name,
            "reason": res.reason, "report": str(report)}
