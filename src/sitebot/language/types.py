"""Value types of the language planner: plan steps, answers and the skill schema.

The skill table is the design brief's closed skill library; argument values are registry
ids (``action`` is ``open`` or ``close``).  An :class:`Answer` is what every planner
entry point returns: ``ok`` with steps in canonical form, ``clarify`` with one question,
or ``refuse`` with a reason; it always carries an explanation for the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["SKILLS", "HIGH_RISK_SKILLS", "VALVE_ACTIONS", "STATUSES", "Step", "Answer",
           "Clarification"]

#: skill -> its argument names, in order (the brief's skill table).
SKILLS: Mapping[str, tuple[str, ...]] = {
    "navigate_to": ("place",),
    "read_gauge": ("asset",),
    "inspect": ("asset",),
    "pick": ("object",),
    "place": ("place",),
    "operate_valve": ("asset", "action"),
    "patrol": ("route",),
    "dock": (),
}
#: skills that need role ``supervisor`` and an operator's confirmation before they run.
HIGH_RISK_SKILLS = frozenset({"operate_valve"})
VALVE_ACTIONS = ("open", "close")
STATUSES = ("ok", "clarify", "refuse")


@dataclass(frozen=True)
class Step:
    """One plan step: a skill and its arguments (registry ids, or the valve action)."""
    skill: str
    args: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def of(skill: str, **args: str) -> "Step":
        """``Step.of("read_gauge", asset="t1_gauge")``; arguments kept in schema order."""
        order = SKILLS.get(skill, tuple(sorted(args)))
        names = [n for n in order if n in args] + sorted(n for n in args if n not in order)
        return Step(skill, tuple((n, str(args[n])) for n in names))

    @property
    def arg(self) -> dict[str, str]:
        """The arguments as a dict."""
        return dict(self.args)

    def to_dict(self) -> dict[str, Any]:
        """``{"skill": ..., "args": {...}}`` (the JSON contract)."""
        return {"skill": self.skill, "args": dict(self.args)}

    def __str__(self) -> str:
        return f"{self.skill}({', '.join(v for _, v in self.args)})"


@dataclass(frozen=True)
class Clarification:
    """What a clarify answer is waiting for, so that the reply can be bound: the phrase
    that could not be grounded (its binding key), the accepted entity types, and the
    candidate ids named in the question (empty: any entity of those types)."""
    key: str
    phrase: str
    types: tuple[str, ...]
    candidates: tuple[str, ...] = ()
    instruction: str = ""
    role: str = "operator"
    bindings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Answer:
    """The planner's answer.  ``needs_confirmation`` is set when the plan holds a
    high-risk step (operate_valve): the executor asks the operator before running it."""
    status: str
    steps: tuple[Step, ...] = ()
    question: str = ""
    reason: str = ""
    explanation: str = ""
    needs_confirmation: bool = False
    clarification: Clarification | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer of the CLI contract, exactly these five keys."""
        return {"status": self.status, "steps": [s.to_dict() for s in self.steps],
                "question": self.question, "reason": self.reason,
                "explanation": self.explanation}

    def human(self) -> str:
        """A few readable lines for a terminal."""
        if self.status == "ok":
            lines = ["ok: plan of %d step%s" % (len(self.steps), "" if len(self.steps) == 1
                                                  else "s")]
            lines += [f"  {i + 1}. {s}" for i, s in enumerate(self.steps)]
            if self.needs_confirmation:
                lines.append("  (needs confirmation before the high-risk step)")
        elif self.status == "clarify":
            lines = [f"clarify: {self.question}"]
        else:
            lines = [f"refuse: {self.reason}"]
        lines.append(f"explanation: {self.explanation}")
        return "\n".join(lines)
