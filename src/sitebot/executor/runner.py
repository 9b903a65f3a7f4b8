"""Runs a validated plan step by step through the skills (no rclpy; time from the ports).

For each step the runner

1. re-checks the step against the registry, the zones and the caller's role
   (:func:`check_step`): the plan may be old, the registry or role may have changed;
2. waits while the supervisor holds a protective or emergency stop (or its state is stale):
   the plan pauses and resumes when the stop is released; a pause longer than
   ``pause_limit_s`` aborts the plan;
3. runs the skill; a retryable failure is tried again (after waiting out a stop) up to
   ``max_attempts``; a failure that cannot be retried, or the last attempt, ends the plan;
4. on failure, cancel or abort leaves the robot in a safe state: motion stopped, the arm
   stowed (best effort: a stowing failure is reported, not hidden).

The result lists every step with its outcome; steps never started are SKIPPED (or CANCELED).
"""
from __future__ import annotations

import threading
from typing import Callable

from sitebot.executor.skills import SKILLS, ExecutorConfig, SkillContext, StepFailure
from sitebot.executor.types import (SKILL_ARGS, ExecutionResult, Outcome, Plan, ResultCode, Step,
                                    StepResult)
from sitebot.site.registry import AssetKind, SiteRegistry, ZoneKind

__all__ = ["PlanRunner", "check_step", "check_plan"]

Feedback = Callable[[int, int, str, StepResult], None]


def _zone_problem(registry: SiteRegistry, place_id: str, role: str) -> str | None:
    p = registry.place(place_id).pose
    for z in registry.zones:
        if not z.contains(p.x, p.y):
            continue
        if z.kind is ZoneKind.KEEP_OUT:
            return f"place {place_id!r} lies in keep-out zone {z.id!r}"
        if z.kind is ZoneKind.RESTRICTED and role not in z.roles:
            return (f"place {place_id!r} lies in restricted zone {z.id!r} (roles allowed: "
                    f"{', '.join(z.roles)}; caller: {role})")
    return None


def check_step(step: Step, registry: SiteRegistry, role: str) -> str | None:
    """Why *step* may not run for *role* on this site, or None when it may."""
    want = SKILL_ARGS.get(step.skill)
    if want is None:
        return f"unknown skill {step.skill!r} (skills: {', '.join(SKILL_ARGS)})"
    if set(step.args) != set(want):
        return (f"{step.skill} takes arguments {list(want)}, got {sorted(step.args)}")
    a = step.args
    try:
        if step.skill in ("navigate_to", "place"):
            return _zone_problem(registry, registry.place(a["place"]).id, role)
        if step.skill in ("read_gauge", "inspect", "operate_valve"):
            asset = registry.asset(a["asset"])
            if step.skill == "read_gauge" and asset.kind is not AssetKind.GAUGE:
                return f"asset {asset.id!r} is a {asset.kind.value}, not a gauge"
            if step.skill == "operate_valve":
                if asset.kind is not AssetKind.VALVE:
                    return f"asset {asset.id!r} is a {asset.kind.value}, not a valve"
                if a["action"] not in ("open", "close"):
                    return f"valve action must be open or close, got {a['action']!r}"
                if role != "supervisor":
                    return "operate_valve needs the role 'supervisor'"
            return _zone_problem(registry, asset.place, role)
        if step.skill == "pick":
            return _zone_problem(registry, registry.object(a["object"]).place, role)
        if step.skill == "patrol":
            for wp in registry.route(a["route"]).waypoints:
                problem = _zone_problem(registry, wp, role)
                if problem:
                    return problem
            return None
        if step.skill == "dock":
            return None if registry.docks else "the site has no dock"
    except KeyError as e:
        return str(e.args[0]) if e.args else str(e)
    return None


def check_plan(plan: Plan, registry: SiteRegistry) -> str | None:
    """The first reason the whole plan may not start, or None."""
    if not plan.steps:
        return "the plan has no steps"
    if plan.role not in ("operator", "supervisor"):
        return f"unknown role {plan.role!r} (operator or supervisor)"
    for i, s in enumerate(plan.steps):
        problem = check_step(s, registry, plan.role)
        if problem:
            return f"step {i + 1} {s.describe()}: {problem}"
    return None


class PlanRunner:
    """Executes plans with *ports* (see :class:`~sitebot.executor.types.RobotPorts`)."""

    def __init__(self, registry: SiteRegistry, ports, config: ExecutorConfig | None = None,
                 authorised: Callable[[Plan, Step], None] | None = None,
                 scene: tuple = ()) -> None:
        self.registry = registry
        #: the site's static collision objects (map frame) as primitives, for grasp
        #: planning (converted once here, not at every pick)
        if scene:
            from sitebot.arm.collision import scene_primitives
            scene = scene_primitives(scene)
        self.scene = tuple(scene)
        self.ports = ports
        self.config = config or ExecutorConfig()
        #: called as a high-risk step is about to act, after its confirmation (the audit)
        self.authorised = authorised

    # -- safety -------------------------------------------------------------------------
    def _wait_until_safe(self, index: int, n: int, result: StepResult,
                         feedback: Feedback | None, cancel: threading.Event) -> str | None:
        """Block while the robot is stopped; None when it may go on, else why not."""
        ports, cfg = self.ports, self.config
        started = None
        while True:
            s = ports.safety()
            stale = s.age_s > cfg.safety_stale_s
            if not (s.stopped or stale):
                return None
            now = ports.now()
            if started is None:
                started = now
                why = "safety state stale" if stale else (
                    "emergency stop" if s.estop_latched else "protective stop")
                detail = "; ".join(s.reasons[:3])
                ports.log(f"plan paused before/at step {index + 1}: {why}"
                          + (f" ({detail})" if detail else ""))
                if feedback:
                    feedback(index, n, f"paused: {why}", result)
            if cancel.is_set():
                return "canceled"
            if now - started > cfg.pause_limit_s:
                return (f"robot stopped for more than {cfg.pause_limit_s:g} s "
                        f"({'; '.join(s.reasons[:3]) or 'no safety state'})")
            ports.sleep(0.1)

    def _safe_state(self, ctx: SkillContext, notes: list[str]) -> None:
        self.ports.stop_motion()
        if ctx.config.use_arm and not ctx.arm_stowed:
            r = self.ports.move_arm_named("stow", ctx.config.arm_timeout_s)
            if r.ok:
                ctx.arm_stowed = True
            else:
                notes.append(f"stowing the arm failed: {r.code} {r.reason}".strip())

    # -- run ----------------------------------------------------------------------------
    def run(self, plan: Plan, confirmed: bool = False, feedback: Feedback | None = None,
            cancel: threading.Event | None = None) -> ExecutionResult:
        cancel = cancel or threading.Event()
        results = [StepResult(step=s) for s in plan.steps]
        problem = check_plan(plan, self.registry)
        if problem:
            for r in results:
                r.outcome = Outcome.SKIPPED
            return ExecutionResult(ResultCode.REJECTED, problem + (
                f" [authority: {plan.who}]" if plan.who else ""), results)
        ctx = SkillContext(self.ports, self.registry, self.config, plan, confirmed=confirmed,
                           cancel=cancel, authorised=self.authorised, scene=self.scene)
        n = len(plan.steps)
        for i, (step, res) in enumerate(zip(plan.steps, results)):
            outcome = self._run_step(i, n, step, res, ctx, feedback, cancel)
            if outcome is not None:
                code, reason = outcome
                for later in results[i + 1:]:
                    later.outcome = (Outcome.CANCELED if code is ResultCode.CANCELED
                                     else Outcome.SKIPPED)
                notes: list[str] = []
                self._safe_state(ctx, notes)
                if notes:
                    reason += "; " + "; ".join(notes)
                return ExecutionResult(code, reason, results)
        return ExecutionResult(ResultCode.SUCCEEDED, f"{n} steps done", results)

    def _run_step(self, i: int, n: int, step: Step, res: StepResult, ctx: SkillContext,
                  feedback: Feedback | None, cancel: threading.Event
                  ) -> tuple[ResultCode, str] | None:
        ports, cfg = self.ports, self.config
        t0 = ports.now()
        label = f"step {i + 1}/{n} {step.describe()}"
        problem = check_step(step, self.registry, ctx.plan.role)
        if problem:
            res.outcome, res.message = Outcome.FAILED, f"re-check refused: {problem}"
            return ResultCode.ABORTED, f"{label}: {res.message}"
        skill = SKILLS[step.skill]
        while True:
            if cancel.is_set():
                res.outcome, res.message = Outcome.CANCELED, "canceled"
                return ResultCode.CANCELED, f"{label}: canceled"
            why = self._wait_until_safe(i, n, res, feedback, cancel)
            if why is not None:
                res.outcome = Outcome.CANCELED if why == "canceled" else Outcome.FAILED
                res.message = why
                res.duration_s = ports.now() - t0
                code = ResultCode.CANCELED if why == "canceled" else ResultCode.ABORTED
                return code, f"{label}: {why}"
            res.attempts += 1
            if feedback:
                feedback(i, n, f"running {step.skill} (attempt {res.attempts})", res)
            try:
                skill.run(step, ctx, res)
            except StepFailure as f:
                res.message = str(f)
                ports.log(f"{label} attempt {res.attempts} failed: {f}")
                if cancel.is_set():
                    res.outcome = Outcome.CANCELED
                    return ResultCode.CANCELED, f"{label}: canceled"
                if f.retryable and res.attempts < cfg.max_attempts:
                    # a blocked path or a missed grasp may clear: wait before trying again
                    if feedback:
                        feedback(i, n, f"attempt {res.attempts} failed, retrying in "
                                 f"{cfg.retry_wait_s:g} s", res)
                    t_retry = ports.now() + cfg.retry_wait_s
                    while ports.now() < t_retry and not cancel.is_set():
                        ports.sleep(min(0.1, cfg.retry_wait_s))
                    continue
                res.outcome = f.outcome
                res.duration_s = ports.now() - t0
                if f.outcome is Outcome.CANCELED:
                    return ResultCode.CANCELED, f"{label}: canceled"
                if f.outcome is Outcome.DECLINED:
                    return ResultCode.ABORTED, f"{label}: {f}"
                return ResultCode.FAILED, f"{label}: {f} (after {res.attempts} attempts)"
            res.outcome = Outcome.SUCCEEDED
            res.duration_s = ports.now() - t0
            if ctx.notes:
                res.message += " [" + "; ".join(ctx.notes) + "]"
                ctx.notes.clear()
            if feedback:
                feedback(i, n, f"done {step.skill}", res)
            return None
