"""The planner as used by the CLI and the ROS node: the offline planner by default, the
optional LLM proposer in front of it, and the dialogue state of clarify rounds.

LLM policy: the offline planner always answers first (it is fast).  Its safety and
condition screens are final, and so is any offline refusal except "no skill can do it"
(an unknown verb phrase may be a paraphrase the LLM understands).  Otherwise, with an endpoint
configured, the LLM's proposal is used only if it passes the same validator (schema,
registry, zones, role) and is put into the same canonical form; an unreachable endpoint or
an invalid proposal gives the offline answer, with the reason noted in the explanation.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from sitebot.errors import SitebotError
from sitebot.language.llm import LLMConfig, LLMError, propose
from sitebot.language.planner import OfflinePlanner, PlannerConfig
from sitebot.language.types import HIGH_RISK_SKILLS, Answer, Clarification
from sitebot.language.validator import canonical, check_steps
from sitebot.site.bundle import load_bundle
from sitebot.site.loader import load_registry
from sitebot.site.registry import SiteRegistry

__all__ = ["TaskPlanner", "Dialogue", "load_site", "planner_for"]


def load_site(site: str | Path) -> SiteRegistry:
    """A site registry from a site bundle (a folder or an installed site's name, e.g.
    substation) or a registry file (``*.yaml``); raises a ConfigError naming the file."""
    text = str(site)
    if text.endswith((".yaml", ".yml")):
        if not Path(site).is_file():
            raise SitebotError(f"site registry file {text!r} does not exist")
        return load_registry(site)
    return load_bundle(site).registry


class TaskPlanner:
    """Offline planner + optional LLM proposer for one site."""

    def __init__(self, registry: SiteRegistry, config: PlannerConfig | None = None,
                 llm: LLMConfig | None = None) -> None:
        self.registry = registry
        self.offline = OfflinePlanner(registry, config)
        self.llm = llm if llm is not None and llm.enabled else None

    def warm(self) -> bool:
        """Load the embedding model and embed the site's names now."""
        return self.offline.g.warm()

    def plan(self, text: str, role: str = "operator") -> Answer:
        off = self.offline.plan(text, role)
        if self.llm is None:
            return off
        if off.status == "refuse" and not off.reason.startswith("no skill can"):
            return replace(off, explanation=off.explanation + "; llm not asked (offline "
                           "refusal is final)")
        try:
            prop = propose(self.llm, self.registry, text, (role or "operator").lower())
        except LLMError as e:
            return replace(off, explanation=off.explanation + f"; llm fallback: {e}")
        role = (role or "operator").strip().lower()
        head = f"backend=llm({self.llm.model or 'default'}) site={self.registry.site} role={role}"
        if prop.status == "clarify":
            return Answer("clarify", (), question=prop.question,
                          explanation=head + "; proposal=clarify", clarification=Clarification(
                              "instruction", "", (), (), text, role))
        if prop.status == "refuse":
            return Answer("refuse", (), reason=prop.reason, explanation=head + "; proposal=refuse")
        v = check_steps(self.registry, prop.steps, role,
                        self.offline.config.max_object_width_m)
        if v.status == "invalid":
            return replace(off, explanation=off.explanation
                           + f"; llm fallback: invalid proposal ({v.reason})")
        if v.status == "refuse":
            return Answer("refuse", (), reason=v.reason,
                          explanation=head + "; proposal=ok; validator=refuse")
        steps, notes = canonical(self.registry, prop.steps)
        confirm = any(s.skill in HIGH_RISK_SKILLS for s in steps)
        expl = [head, "proposal=ok; validator=ok"] + [f"canonical: {n}" for n in notes]
        if confirm:
            expl.append("needs_confirmation=true (operate_valve: the executor asks the "
                        "operator before the step runs)")
        return Answer("ok", tuple(steps), explanation="; ".join(expl), needs_confirmation=confirm)

    def reply(self, clar: Clarification, text: str, role: str | None = None) -> Answer:
        """The answer to a clarify question (offline: binding the reply is deterministic)."""
        if role and role.strip().lower() != clar.role:
            clar = replace(clar, role=role.strip().lower())
        return self.offline.reply(clar, text)


class Dialogue:
    """Pending clarify questions by plan id (bounded, oldest dropped), so that a command
    with ``in_reply_to`` = a question's plan id answers that question."""

    def __init__(self, planner: TaskPlanner, max_pending: int = 64) -> None:
        self.planner = planner
        self.max_pending = max_pending
        self._pending: OrderedDict[str, Clarification] = OrderedDict()
        self._lock = threading.Lock()

    def handle(self, text: str, role: str = "operator", request_id: str = "",
               in_reply_to: str = "") -> Answer:
        clar = None
        if in_reply_to:
            with self._lock:
                clar = self._pending.pop(in_reply_to, None)
        if clar is not None:
            ans = self.planner.reply(clar, text, role)
        else:
            ans = self.planner.plan(text, role)
            if in_reply_to:
                ans = replace(ans, explanation=ans.explanation + f"; in_reply_to "
                              f"{in_reply_to!r}: no pending question, planned as new")
        if ans.status == "clarify" and ans.clarification is not None and request_id:
            with self._lock:
                self._pending[request_id] = ans.clarification
                while len(self._pending) > self.max_pending:
                    self._pending.popitem(last=False)
        return ans

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)


_CACHE: dict[str, TaskPlanner] = {}
_CACHE_LOCK = threading.Lock()


def planner_for(site: str | Path) -> TaskPlanner:
    """An offline TaskPlanner for *site* (file or world name), built once per process and
    cached (grounding indexes and name embeddings are per registry)."""
    key = str(Path(site).resolve()) if Path(site).exists() else str(site)
    with _CACHE_LOCK:
        tp = _CACHE.get(key)
        if tp is None:
            tp = _CACHE[key] = TaskPlanner(load_site(site))
        return tp
