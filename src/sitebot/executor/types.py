"""Plain data of the task executor: plans, step outcomes, readings, and the ports contract.

No rclpy here. The node (``sitebot.nodes.task_executor``) converts messages to these types
and implements :class:`RobotPorts` (:class:`sitebot.executor.ports.TrackedPorts` with a ROS
transport: action clients, publishers, subscriptions); tests and the
regression runner can drive :class:`~sitebot.executor.runner.PlanRunner` with any object that
keeps the same contract.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, Sequence

from sitebot.language.types import HIGH_RISK_SKILLS, SKILLS
from sitebot.types import Pose2D, SafetyLevel

__all__ = ["Step", "Plan", "plan_from_fields", "Outcome", "ResultCode", "Reading", "StepResult",
           "ExecutionResult", "MotionResult", "SafetySnapshot", "RobotPorts", "SKILL_ARGS",
           "HIGH_RISK_SKILLS", "SafetyLevel"]

#: The closed skill set with its argument names, and the high-risk skills: one table,
#: shared with the language planner (the design brief's skill table).
SKILL_ARGS = SKILLS


@dataclass(frozen=True)
class Step:
    """One plan step: a skill name and its arguments (registry ids, or open/close)."""
    skill: str
    args: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in sorted(self.args.items()))
        return f"{self.skill}({inner})"


@dataclass(frozen=True)
class Plan:
    """A plan as the planner answers it (status ``ok``), with who asked for it: ``role`` is
    the role it runs with (the executor sets it from the verified ``authority``, the
    planner's signed assertion as received; :mod:`sitebot.executor.authority`), ``who``
    says for the audit whose authority that is."""
    steps: tuple[Step, ...]
    plan_id: str = ""
    role: str = "operator"
    instruction: str = ""
    authority: str = ""
    who: str = ""

    @property
    def needs_confirmation(self) -> bool:
        return any(s.skill in HIGH_RISK_SKILLS for s in self.steps)


def plan_from_fields(steps: Iterable[tuple[str, Sequence[str], Sequence[str]]],
                     plan_id: str = "", role: str = "", instruction: str = "",
                     authority: str = "") -> Plan:
    """A plan from its fields as a TaskPlan message carries them: per step the skill, the
    argument names and the argument values (zipped); an empty id is ``plan``, an empty role
    ``operator``.

    :raises ValueError: a step with more names than values or the other way round.
    """
    out = []
    for i, (skill, names, values) in enumerate(steps):
        if len(names) != len(values):
            raise ValueError(f"step {i + 1} ({skill}): {len(names)} argument names "
                             f"but {len(values)} values")
        out.append(Step(skill, dict(zip(names, values))))
    return Plan(tuple(out), plan_id=plan_id or "plan", role=role or "operator",
                instruction=instruction, authority=authority)


class Outcome(enum.IntEnum):
    """Mirrors sitebot_interfaces/StepOutcome."""
    PENDING = 0
    SUCCEEDED = 1
    FAILED = 2
    SKIPPED = 3
    DECLINED = 4
    CANCELED = 5


class ResultCode(enum.IntEnum):
    """Mirrors sitebot_interfaces/action/ExecutePlan result codes."""
    SUCCEEDED = 0
    FAILED = 1
    ABORTED = 2
    CANCELED = 3
    REJECTED = 4


@dataclass(frozen=True)
class Reading:
    """A gauge reading as the executor reports it."""
    asset_id: str
    value: float
    unit: str
    confidence: float
    valid: bool = True
    failure_reason: str = ""
    stamp_s: float = 0.0
    crop_path: str = ""


@dataclass
class StepResult:
    step: Step
    outcome: Outcome = Outcome.PENDING
    message: str = ""
    attempts: int = 0
    duration_s: float = 0.0
    readings: list[Reading] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)     # inspection anomaly flags


@dataclass
class ExecutionResult:
    code: ResultCode
    reason: str
    steps: list[StepResult]

    @property
    def readings(self) -> list[Reading]:
        return [r for s in self.steps for r in s.readings]


@dataclass(frozen=True)
class MotionResult:
    """Outcome of a navigation or arm request.  ``code``: succeeded, blocked, aborted,
    canceled, rejected (invalid goal: do not retry), timeout, unavailable (no server)."""
    code: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "succeeded"

    @property
    def retryable(self) -> bool:
        return self.code in ("blocked", "aborted", "timeout", "unavailable")


@dataclass(frozen=True)
class SafetySnapshot:
    """The supervisor's latest state as the executor sees it; ``age_s`` since it arrived
    (``inf`` when none has)."""
    level: SafetyLevel
    estop_latched: bool
    reasons: tuple[str, ...]
    age_s: float

    @property
    def stopped(self) -> bool:
        return self.estop_latched or self.level >= SafetyLevel.PROTECTIVE_STOP


class RobotPorts(Protocol):
    """What skills may ask of the robot.  Every call blocks at most its timeout (simulated
    or robot time, as :meth:`now` counts it) and never raises for an ordinary failure: it
    reports it in the returned value."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def safety(self) -> SafetySnapshot: ...

    def robot_pose(self) -> Pose2D | None: ...

    def odometry_pose(self) -> Pose2D | None:
        """The base's pose in the odometry frame: continuous, without the jumps a
        localization fix makes in :meth:`robot_pose` (None: no odometry)."""

    def navigate(self, place_id: str, timeout_s: float) -> MotionResult: ...

    def approach(self, distance_m: float, timeout_s: float) -> tuple[MotionResult, float]:
        """Drive the base straight by ``distance_m`` (negative: backwards) at creeping
        speed, stopping short of what the laser sees; the result and the distance driven."""
        ...

    def move_arm_named(self, name: str, timeout_s: float) -> MotionResult: ...

    def move_arm_pose(self, xyz_map: Sequence[float], rpy: Sequence[float],
                      timeout_s: float) -> MotionResult: ...

    def move_arm_joints(self, positions: Sequence[float], timeout_s: float) -> MotionResult:
        """Move the arm to joint ``positions`` (the arm's joints in its own order)."""
        return MotionResult("rejected", "joint goals not supported")

    def arm_positions(self) -> tuple[float, ...] | None:
        """The arm's joint positions now (its own order), or None when unknown."""
        return None

    def set_gripper(self, opening_m: float, timeout_s: float) -> float | None:
        """Command the gripper opening [m] and return the opening reached (None: no
        joint state)."""
        ...

    def gripper_opening(self) -> float | None:
        """The gripper's opening now [m] (None: no joint state)."""
        ...

    def gauge_readings(self, asset_id: str, since_s: float) -> list[Reading]: ...

    def fiducial_seen(self, tag_id: int, since_s: float) -> bool: ...

    def object_position(self, object_id: str) -> tuple[float, float, float] | None: ...

    def perceive_object(self, object_id: str) -> Any:
        """The object segmented from a depth image taken now, in the map frame
        (:class:`sitebot.perception.object_segment.ObjectSegment`; ``found`` False with the
        reason when it could not be)."""

    def save_image(self, name: str) -> str | None:
        """Save the latest camera image under the run's folder; its path, or None."""
        ...

    def confirm(self, question: str, plan_id: str, timeout_s: float) -> bool | None:
        """Ask a supervisor to confirm; True/False as answered, None on timeout."""
        ...

    def stop_motion(self) -> None: ...

    def log(self, message: str) -> None: ...


def outcome_counts(steps: Sequence[StepResult]) -> dict[str, int]:
    """How many steps ended in each outcome (for reports)."""
    out: dict[str, int] = {}
    for s in steps:
        out[s.outcome.name.lower()] = out.get(s.outcome.name.lower(), 0) + 1
    return out
