"""task_planner: plain-English commands in, validated task plans out (thin adapter over
:mod:`sitebot.language`, which has the algorithm and no ROS).

Subscribes ``task/command`` (sitebot_interfaces/TaskCommand: text, role, request_id,
in_reply_to, authority) and publishes ``task/plan`` (sitebot_interfaces/TaskPlan) with
``plan_id = request_id``.  The role planned for is the one the command's signed assertion
proves (scope ``command``, subject request_id, bound to text and in_reply_to; issued by the
console after a login; :mod:`sitebot.security`); a command without a valid one is planned
for the lowest role, ``operator``, whatever its ``role`` field claims, and the explanation
says why.  An ``ok`` plan for an authenticated command carries the planner's own assertion
(scope ``plan``, subject plan_id, bound to the steps, same user and role), which the
executor checks before high-risk steps and restricted zones.

A clarify answer keeps the question pending (bounded), so that a command with
``in_reply_to`` = that plan_id answers it ("which gauge?" -> "the pressure one"), and the
original instruction is planned again with the answer bound (for the role the reply proves).
Plans holding operate_valve carry ``needs_confirmation=true`` in their explanation; the
executor asks a supervisor before running that step (ExecutePlan's ``confirmed`` with a
signed confirmation carries one given in advance).  Publishes /diagnostics (site, pending
questions, answers by status, last latency, LLM fallbacks, the authority key).
"""
from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import replace

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from sitebot.arm.grasp_planning import max_object_width
from sitebot.config.params import ParamSpec, ParamType
from sitebot.language import Answer, Dialogue, LLMConfig, PlannerConfig, TaskPlanner, load_site
from sitebot.language.grounding import GroundingConfig
from sitebot.nodes.common import QOS_COMMAND, QOS_STATE, declare_schema, run_node
from sitebot.security import (KEY_PARAM, LOWEST_ROLE, Authority, AuthorityError, ReplayGuard,
                              command_digest, plan_digest)
from sitebot.site.params import SITE_PARAM
from sitebot_interfaces.msg import TaskCommand, TaskPlan, TaskStep

F, B, S, I = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING, ParamType.INT

SCHEMA = (
    replace(SITE_PARAM, read_only=True),
    ParamSpec("default_role", S, LOWEST_ROLE, "role of a command without a valid authority "
              "assertion: always the lowest (a claimed role is never trusted)",
              choices=(LOWEST_ROLE,)),
    KEY_PARAM,
    ParamSpec("plan_authority_s", F, 7200.0, "lifetime of the assertion a plan carries (as "
              "long as a mission may run)", 60.0, 86400.0, unit="s"),
    ParamSpec("llm_url", S, "", "OpenAI-compatible chat-completions endpoint used as a "
              "proposer ('' = $SITEBOT_LLM_URL, none: offline only)", read_only=True),
    ParamSpec("llm_model", S, "", "model name for the endpoint ('' = $SITEBOT_LLM_MODEL)",
              read_only=True),
    ParamSpec("llm_timeout_s", F, 10.0, "endpoint timeout; then the offline answer", 0.5,
              120.0, unit="s", read_only=True),
    ParamSpec("max_pending_questions", I, 64, "clarify questions kept for replies (oldest "
              "dropped)", 1, 10000),
    ParamSpec("warm_on_start", B, True, "load the embedding model and embed the site's "
              "names at start (else on the first instruction that needs them)",
              read_only=True),
    ParamSpec("use_embeddings", B, True, "ground by sentence embeddings after exact and "
              "fuzzy matching", read_only=True),
    ParamSpec("embed_min", F, 0.72, "cosine similarity needed to accept an embedding match",
              0.0, 1.0, read_only=True),
    ParamSpec("embed_margin", F, 0.08, "best minus second-best entity similarity needed, "
              "else the planner asks", 0.0, 1.0, read_only=True),
    ParamSpec("max_object_width_m", F, 0.0, "widest object the gripper holds: a fetch of a "
              "wider one (by the registry's size) is refused; 0 = from the robot's "
              "description (its gripper's opening)", 0.0, 2.0, unit="m"),
    ParamSpec("diagnostics_period_s", F, 1.0, "/diagnostics period", 0.1, 60.0, unit="s"),
)

_STATUS = {"ok": TaskPlan.STATUS_OK, "clarify": TaskPlan.STATUS_CLARIFY,
           "refuse": TaskPlan.STATUS_REFUSE}


def answer_to_msg(ans: Answer, plan_id: str, text: str, role: str, stamp) -> TaskPlan:
    """A planner answer as a TaskPlan message."""
    m = TaskPlan()
    m.header.stamp = stamp
    m.header.frame_id = "map"
    m.plan_id = plan_id
    m.status = _STATUS[ans.status]
    for s in ans.steps:
        ts = TaskStep()
        ts.skill = s.skill
        ts.arg_names = [n for n, _ in s.args]
        ts.arg_values = [v for _, v in s.args]
        m.steps.append(ts)
    m.question, m.reason = ans.question, ans.reason
    m.instruction, m.role, m.explanation = text, role, ans.explanation
    return m


class TaskPlannerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("task_planner", **kwargs)
        self.p = declare_schema(self, SCHEMA)
        p = self.p
        reg = load_site(p["site"])
        llm = LLMConfig.from_env(p["llm_url"], p["llm_model"], timeout_s=p["llm_timeout_s"])
        cfg = PlannerConfig(grounding=GroundingConfig(
            use_embeddings=p["use_embeddings"], embed_min=p["embed_min"],
            embed_margin=p["embed_margin"]),
            max_object_width_m=p["max_object_width_m"] or max_object_width())
        self.planner = TaskPlanner(reg, cfg, llm)
        self.dialogue = Dialogue(self.planner, p["max_pending_questions"])
        t0 = time.perf_counter()
        warm = self.planner.warm() if p["warm_on_start"] and p["use_embeddings"] else False
        self.load_s = time.perf_counter() - t0
        self.counts: Counter[str] = Counter()
        self.last_latency_ms = 0.0
        self.errors = 0
        self.authority = Authority.open(p["authority_key_file"], self.get_logger().error)
        self.replay = ReplayGuard()
        self.pub = self.create_publisher(TaskPlan, "task/plan", QOS_COMMAND)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(TaskCommand, "task/command", self.on_command, QOS_COMMAND)
        self.create_timer(p["diagnostics_period_s"], self.on_diagnostics)
        self.get_logger().info(
            f"planning for site '{reg.site}' ({sum(1 for _ in reg.entities())} entities); "
            f"embeddings {'ready' if warm else 'lazy/off'} in {self.load_s:.1f} s; "
            f"llm {'on: ' + llm.endpoint if self.planner.llm else 'off'}")

    def on_command(self, msg: TaskCommand) -> None:
        plan_id = msg.request_id or f"plan-{uuid.uuid4().hex[:12]}"
        grant = self.authority.grant(msg.authority, time.time(), "command", msg.request_id,
                                     command_digest(msg.text, msg.in_reply_to),
                                     claimed_role=msg.role, replay=self.replay)
        role = grant.role
        t0 = time.perf_counter()
        try:
            ans = self.dialogue.handle(msg.text, role, plan_id, msg.in_reply_to)
        except Exception as e:  # noqa: BLE001 - a bad command never takes the node down
            self.errors += 1
            self.get_logger().error(f"task/command {plan_id!r}: {type(e).__name__}: {e}",
                                    throttle_duration_sec=1.0)
            ans = Answer("refuse", reason=f"planner error: {type(e).__name__}: {e}",
                         explanation="internal error")
        self.last_latency_ms = 1e3 * (time.perf_counter() - t0)
        self.counts[ans.status] += 1
        out = answer_to_msg(ans, plan_id, msg.text, role, self.get_clock().now().to_msg())
        out.explanation += f"; authority: {grant.who()}"
        if grant.authenticated and ans.status == "ok":
            try:
                out.authority = self.authority.sign(
                    "plan", plan_id, grant.user, role, time.time(), self.p["plan_authority_s"],
                    plan_digest((s.skill, dict(s.args)) for s in ans.steps))
            except AuthorityError as e:           # not expected: the key verified the command
                out.explanation += f"; plan not signed: {e}"
        if not grant.authenticated and grant.claimed_role not in ("", LOWEST_ROLE):
            self.get_logger().warning(f"task/command {plan_id!r}: {grant.who()}; planned for "
                                      f"role {role!r}", throttle_duration_sec=1.0)
        self.pub.publish(out)
        self.get_logger().info(f"{plan_id}: {ans.status} " + (
            "; ".join(str(s) for s in ans.steps) or ans.question or ans.reason))

    def on_diagnostics(self) -> None:
        st = DiagnosticStatus()
        st.name = "task_planner"
        st.hardware_id = self.planner.registry.site
        st.level = DiagnosticStatus.OK if not self.errors else DiagnosticStatus.WARN
        st.message = "ok" if not self.errors else f"{self.errors} planner errors"
        if not self.authority.key:
            st.level, st.message = DiagnosticStatus.ERROR, self.authority.problem
        kv = {"site": self.planner.registry.site, "pending_questions": len(self.dialogue.pending),
              "ok": self.counts["ok"], "clarify": self.counts["clarify"],
              "refuse": self.counts["refuse"], "last_latency_ms": f"{self.last_latency_ms:.1f}",
              "load_s": f"{self.load_s:.2f}", "llm": "on" if self.planner.llm else "off",
              "authority": self.authority.status}
        st.values = [KeyValue(key=k, value=str(v)) for k, v in kv.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [st]
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: TaskPlannerNode(), args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
