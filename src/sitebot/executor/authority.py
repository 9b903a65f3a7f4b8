"""The executor's authority checks (no rclpy; docs/security.md).

A plan runs with the role its *verified* assertion names: the planner's signed assertion
(scope ``plan``, subject the plan id, bound to the steps) that arrives in ``TaskPlan.authority``.
Without a valid one the plan runs with the lowest role (``operator``), whatever its ``role``
field claims, so that :func:`~sitebot.executor.runner.check_plan` refuses its high-risk steps
and the restricted zones closed to operators before anything moves.  A high-risk step also
needs a supervisor's confirmation: ``ExecutePlan.confirmed`` counts only with a valid
assertion in the goal's ``authority`` (scope ``confirm``, subject the plan id, bound to the
steps, role supervisor); otherwise the executor asks on ``task/confirmation_request`` and an
answer on ``task/confirm`` counts as "yes" only with such an assertion (a "no" counts from
anyone).  Confirmations work once (a replayed one is refused).

Every refusal, every confirmation and every high-risk step that goes ahead is audited with
who asked (user and role from the assertion, or "unauthenticated" with the claimed role) and
why.  Times come from the two clocks given: ``clock`` (the node's, for the audit) and ``wall``
(the wall clock: expiry is wall time, since assertions cross machines and simulated time).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from sitebot.executor.runner import check_plan
from sitebot.executor.types import HIGH_RISK_SKILLS, Plan, Step
from sitebot.safety.audit import AuditLog
from sitebot.security import KEY_PARAM, Authority, Grant, ReplayGuard, plan_digest
from sitebot.site.registry import SiteRegistry

__all__ = ["ExecutorAuthority", "steps_digest", "KEY_PARAM"]

SUPERVISOR = "supervisor"


def steps_digest(plan: Plan) -> str:
    """The digest an assertion about *plan* must carry (its steps)."""
    return plan_digest((s.skill, s.args) for s in plan.steps)


class ExecutorAuthority:
    """Decides with which role a plan runs and whether it is confirmed, and audits it."""

    def __init__(self, authority: Authority, registry: SiteRegistry, audit: AuditLog,
                 clock: Callable[[], float], wall: Callable[[], float],
                 log: Callable[[str], None] | None = None) -> None:
        self.authority, self.registry, self.audit = authority, registry, audit
        self.clock, self.wall = clock, wall
        self.log = log or (lambda _text: None)
        self.replay = ReplayGuard()
        self.current: Plan | None = None           # the plan admitted last (running)
        self.confirmed_by: dict[str, str] = {}      # plan id -> who confirmed (last plan)

    def _write(self, event: str, plan: Plan, grant: Grant | None = None, **fields) -> None:
        rec = {"plan_id": plan.plan_id, **(grant.fields() if grant else {}), **fields}
        self.audit.write(event, self.clock(), **rec)
        self.log(f"authority: {event} plan {plan.plan_id}: "
                 + (grant.who() if grant else "") + "".join(
                     f"; {k}={v}" for k, v in fields.items()))

    def admit(self, plan: Plan, confirmed: bool, confirm_token: str) -> tuple[Plan, bool]:
        """(the plan with the role it runs with, whether it counts as confirmed)."""
        digest, wall_s = steps_digest(plan), self.wall()
        g = self.authority.grant(plan.authority, wall_s, "plan", plan.plan_id, digest,
                                 claimed_role=plan.role)
        run = replace(plan, role=g.role, who=g.who())
        self.current, self.confirmed_by = run, {}
        ok = False
        if confirmed and plan.needs_confirmation:
            c = self.authority.grant(confirm_token, wall_s, "confirm", plan.plan_id, digest,
                                     claimed_role=SUPERVISOR, replay=self.replay)
            ok = c.authenticated and c.role == SUPERVISOR
            if ok:
                self.confirmed_by[plan.plan_id] = c.who()
                self._write("confirmation_accepted", plan, c, source="goal")
            else:
                self._write("confirmation_refused", plan, c, source="goal",
                            why=c.why or f"role {c.role!r} is not {SUPERVISOR!r}; the step "
                            "will be asked for")
        problem = check_plan(run, self.registry)
        if problem:
            self._write("plan_refused", plan, g, why=problem)
        elif plan.needs_confirmation or (not g.authenticated and plan.role != g.role):
            self._write("plan_admitted", plan, g, confirmed=ok,
                        high_risk=[s.describe() for s in plan.steps
                                   if s.skill in HIGH_RISK_SKILLS])
        return run, ok

    def answer_role(self, in_reply_to: str, text: str, token: str, claimed_role: str) -> str:
        """The role an answer on ``task/confirm`` proved ('' when none): a supervisor's
        assertion for the running plan (its id and steps)."""
        plan = self.current
        if plan is None or plan.plan_id != in_reply_to:
            plan = Plan((), plan_id=in_reply_to)
            g = Grant("", "unauthenticated", False, claimed_role, "no plan of that id running")
        else:
            g = self.authority.grant(token, self.wall(), "confirm", in_reply_to,
                                     steps_digest(plan), claimed_role=claimed_role,
                                     replay=self.replay)
        if g.authenticated and g.role == SUPERVISOR:
            self.confirmed_by[in_reply_to] = g.who()
        self._write("confirmation_answer", plan, g, answer=text[:32])
        return g.role if g.authenticated else ""

    def authorised(self, plan: Plan, step: Step) -> None:
        """A high-risk step goes ahead (audit)."""
        self._write("high_risk_step", plan, None, step=step.describe(),
                    authority=plan.who, confirmed_by=self.confirmed_by.get(plan.plan_id, ""))
