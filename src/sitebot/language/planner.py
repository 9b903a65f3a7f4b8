"""The offline planner: plain English in, a validated plan (or one question, or a refusal)
out.  No network, no rclpy.

Pipeline for one instruction (docs/language.md has the whole story):

1. **screen**: requests to weaken, bypass or disable safety (including injected
   instructions and made-up modes) are refused before anything else is read; conditions and
   loops ("if ...", "until ...", "every hour") are refused, never dropped;
2. **split** into clauses (lark grammar, :mod:`.grammar`);
3. per clause, **recognize the skill** from its verb phrase (:mod:`.clauses`) and
   **ground** its arguments (:mod:`.grounding`), resolving "it", "its", "there" against
   the plan so far (:mod:`.references`, :mod:`.skills`);
4. **validate** (:mod:`.validator`: schema, registry, zones, role) and put the plan into
   the **canonical form**.

Every answer carries an explanation: the clauses, the skill each verb gave, which words
grounded to which ids by which method with which score, and what the canonical form
inserted.

:class:`OfflinePlanner` is built in layers, each module importing only the ones before it:
:mod:`.context` (settings, plan state) -> :mod:`.references` (phrases to entities,
questions) -> :mod:`.skills` (steps per skill) -> :mod:`.clauses` (verb patterns, skill
per clause) -> this module (screening, splitting, replies, validation, answers).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from sitebot.language.clauses import KNOWN_VERBS, ClauseReader
from sitebot.language.context import SKILL_LIST, Ctx, PlannerConfig, Stop, join_or
from sitebot.language.grammar import split_clauses
from sitebot.language.grounding import Grounder
from sitebot.language.lexicon import base_verb, condition_or_loop, safety_violation, strip_fillers
from sitebot.language.skills import action_word
from sitebot.language.text import clean
from sitebot.language.types import HIGH_RISK_SKILLS, Answer, Clarification, Step
from sitebot.language.validator import canonical, check_steps
from sitebot.site.registry import SiteRegistry

__all__ = ["OfflinePlanner", "PlannerConfig", "SKILL_LIST"]


class OfflinePlanner(ClauseReader):
    """The offline planner for one site registry (grounding indexes and embeddings are
    built once and cached in the instance)."""

    def __init__(self, registry: SiteRegistry, config: PlannerConfig | None = None,
                 grounder: Grounder | None = None) -> None:
        self.registry = registry
        self.config = config or PlannerConfig()
        self.g = grounder or Grounder(registry, self.config.grounding)

    # ===================================================================== entry points
    def plan(self, text: str, role: str = "operator",
             bindings: Mapping[str, str] | None = None) -> Answer:
        """Answer one instruction for a caller with *role*.  *bindings* (from a clarify
        round) fix the grounding of phrases the planner asked about."""
        role = (role or "operator").strip().lower()
        bindings = dict(bindings or {})
        src = text if isinstance(text, str) else ""
        t = clean(src)
        expl = [f"backend=offline site={self.registry.site} role={role}"]
        if not t.strip(" .,;:!?"):
            return self._clarify("What should I do? Give an instruction, e.g. 'read the "
                                 "pressure gauge at T1' (skills: " + SKILL_LIST + ").", expl,
                                 Clarification("instruction", "", (), (), src, role))
        why = safety_violation(t)
        if why:
            return self._refuse("refused: the request would weaken, bypass or disable "
                                f"safety ({why}); safety settings cannot be changed by "
                                "instruction", expl + ["screen=safety"])
        why = condition_or_loop(t)
        if why:
            return self._refuse("conditions and loops are not in the plan language "
                                f"({why}); the condition is not dropped: give the steps "
                                "without it, and decide on the readings yourself",
                                expl + ["screen=condition"])
        clauses = [base_verb(strip_fillers(c)) for c in
                   split_clauses(t, self._starts_with_verb)]
        # "go and read ...", "come and get ...": the motion verb alone is not a step
        clauses = [c for k, c in enumerate(clauses) if c and not (
            c in ("go", "come", "go ahead", "try", "go on", "hurry", "then")
            and k + 1 < len(clauses))]
        if not clauses:
            return self._clarify("What should I do? (skills: " + SKILL_LIST + ")", expl,
                                 Clarification("instruction", "", (), (), src, role))
        ctx = Ctx()
        steps: list[Step] = []
        stops: list[Stop] = []
        for i, c in enumerate(clauses):
            ctx.log.append(f"clause {i + 1} '{c}'")
            try:
                new = self._clause(i, c, ctx, role, bindings)
            except Stop as s:
                stops.append(s)
                ctx.here = None
                continue
            steps.extend(new)
        expl.extend(ctx.log)
        refusals = [s for s in stops if s.status == "refuse"]
        if refusals:
            return self._refuse(refusals[0].text, expl)
        if stops:
            s = stops[0]
            clar = s.clar
            if clar is not None:
                clar = Clarification(clar.key, clar.phrase, clar.types, clar.candidates, src,
                                     role, tuple(sorted(bindings.items())))
            return self._clarify(s.text, expl, clar)
        return self.finish(steps, role, expl)

    def finish(self, steps: Sequence[Step], role: str, expl: list[str]) -> Answer:
        """Validate *steps*, put them in canonical form, and answer."""
        if len(steps) > self.config.max_steps:
            return self._refuse(f"the plan would have {len(steps)} steps, more than "
                                f"{self.config.max_steps}; split the request", expl)
        v = check_steps(self.registry, steps, role, self.config.max_object_width_m)
        if v.status != "ok":
            return self._refuse(v.reason, expl + [f"validator={v.status}"])
        out, notes = canonical(self.registry, steps)
        expl = expl + [f"canonical: {n}" for n in notes]
        confirm = any(s.skill in HIGH_RISK_SKILLS for s in out)
        if confirm:
            expl.append("needs_confirmation=true (operate_valve: the executor asks the "
                        "operator before the step runs)")
        return Answer("ok", tuple(out), explanation="; ".join(expl),
                      needs_confirmation=confirm)

    def reply(self, clar: Clarification, text: str) -> Answer:
        """Answer the reply *text* to the question that left *clar* pending: bind the
        reply to the phrase asked about and plan the original instruction again.  A reply
        that is itself an instruction starts over; "cancel" cancels."""
        role = clar.role
        t = strip_fillers(clean(text))
        expl = [f"reply to question about '{clar.phrase}' ({clar.key})"]
        if re.fullmatch(r"(?:no|nope|cancel|abort|stop|never\s*mind|nevermind|forget\s+it|"
                        r"none(?:\s+of\s+them)?)(?:\s*,?\s*thanks?)?", t):
            return self._refuse("cancelled by the caller in reply to the question", expl)
        if clar.key == "instruction":
            return self.plan(text, role)
        bindings = dict(clar.bindings)
        if clar.key.endswith(":action"):
            act = action_word(t)
            if act is None:
                return self._clarify(f"Please answer 'open' or 'close' ({clar.phrase}).", expl,
                                     clar)
            bindings[clar.key] = act
            return self._rebind(clar, bindings, expl)
        chosen = self._pick_reply(clar, t)
        if chosen is None:
            if self._starts_with_verb(t) and t.split(" ", 1)[0] in KNOWN_VERBS:
                return self.plan(text, role)
            names = [self.g.by_id[c].display for c in clar.candidates if c in self.g.by_id]
            q = (f"I could not match '{text}'. " + (f"Please choose one of: {join_or(names)}."
                                                     if names else "Please name it exactly."))
            return self._clarify(q, expl, clar)
        bindings[clar.key] = "|".join(chosen)
        expl.append(f"'{t}' -> {','.join(chosen)}")
        return self._rebind(clar, bindings, expl)

    def _rebind(self, clar: Clarification, bindings: dict[str, str],
                expl: list[str]) -> Answer:
        a = self.plan(clar.instruction, clar.role, bindings)
        return Answer(a.status, a.steps, a.question, a.reason,
                      "; ".join(expl) + "; " + a.explanation, a.needs_confirmation,
                      a.clarification)

    def _pick_reply(self, clar: Clarification, t: str) -> list[str] | None:
        cands = [c for c in clar.candidates if c in self.g.by_id]
        m = re.fullmatch(r"(?:the\s+)?(first|second|third|fourth|last|1st|2nd|3rd|4th|"
                         r"number\s+\d|option\s+\d|\d)(?:\s+one)?", t)
        if m and cands:
            w = m.group(1)
            idx = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2,
                   "fourth": 3, "4th": 3, "last": len(cands) - 1}.get(w)
            if idx is None:
                idx = int(re.sub(r"\D", "", w)) - 1
            return [cands[idx]] if 0 <= idx < len(cands) else None
        if cands and re.fullmatch(r"(?:both(?:\s+of\s+them)?|all(?:\s+of\s+them)?|"
                                  r"(?:all|both)\s+\w+|each|every\s+one|all\s+the\s+\w+)", t):
            return cands
        types = clar.types or ("place", "asset", "object", "route", "zone", "dock")
        if cands:
            pool_ids = set(cands)
            r = self.g.ground(t, types, at=None)
            if r.status in ("one", "many") and set(r.ids) <= pool_ids:
                return r.ids
            # ground against the candidates only
            sub = [self.g.by_id[c] for c in cands]
            q, plural, unknown = self.g.query_tokens(t)
            q = [w for w in q if w not in ("1",) or len(q) == 1]
            hits = self.g._contains(q, sub) if q else []
            if not hits and unknown:
                fixed, _ = self.g._correct(q, sub)
                hits = self.g._contains(fixed, sub)
            if len(hits) == 1 or (hits and plural):
                return [h.id for h in hits]
            return None
        r = self.g.ground(t, types)
        return r.ids if r.status in ("one", "many") else None

    # ===================================================================== answers
    @staticmethod
    def _refuse(reason: str, expl: list[str]) -> Answer:
        return Answer("refuse", (), reason=reason, explanation="; ".join(expl))

    @staticmethod
    def _clarify(question: str, expl: list[str], clar: Clarification | None) -> Answer:
        return Answer("clarify", (), question=question, explanation="; ".join(expl),
                      clarification=clar)
