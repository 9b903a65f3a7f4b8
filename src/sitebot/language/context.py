"""What the offline planner's layers share: its settings (:class:`PlannerConfig`), the
skill list its answers name, the plan so far threaded through the clauses of one
instruction (:class:`Ctx`), and :class:`Stop`, by which a clause ends planning with a
question or a refusal.  No rclpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from sitebot.language.grounding import Entry, GroundingConfig
from sitebot.language.types import SKILLS, Clarification, Step

__all__ = ["PlannerConfig", "SKILL_LIST", "Ctx", "Stop", "join_or"]

SKILL_LIST = ", ".join(SKILLS)


class Stop(Exception):
    """A clause decided the answer: clarify (with what it waits for) or refuse."""

    def __init__(self, status: str, text: str, clar: Clarification | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.clar = status, text, clar


@dataclass
class Ctx:
    """The plan so far, as the next clause sees it."""

    here: str | None = None          # place the plan is at
    last: Entry | None = None        # last entity referred to
    held: Entry | None = None        # object picked and not yet placed
    steps: list[Step] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlannerConfig:
    """Offline planner settings."""
    grounding: GroundingConfig = GroundingConfig()
    max_steps: int = 60              # a plan longer than this is refused (runaway plural)
    max_listed: int = 8              # candidates named in one question
    #: the widest object the robot's gripper holds [m]; a pick of a wider one (by the
    #: registry's size) is refused.  None: not checked
    max_object_width_m: float | None = None


def join_or(names: Sequence[str]) -> str:
    """*names* as "a", "a or b", "a, b or c"."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]
