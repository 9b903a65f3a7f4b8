"""The offline planner: plain English in, a validated plan (or one question, or a refusal)
out.  No network, no rclpy.

Pipeline for one instruction (docs/language.md has the whole story):

1. **screen**: requests to weaken, bypass or disable safety (including injected
   instructions and made-up modes) are refused before anything else is read; conditions and
   loops ("if ...", "until ...", "every hour") are refused, never dropped;
2. **split** into clauses (lark grammar, :mod:`.grammar`);
3. per clause, **recognize the skill** from its verb phrase (patterns below) and
   **ground** its arguments (:mod:`.grounding`), resolving "it", "its", "there" against
   the plan so far;
4. **validate** (:mod:`.validator`: schema, registry, zones, role) and put the plan into
   the **canonical form**.

Every answer carries an explanation: the clauses, the skill each verb gave, which words
grounded to which ids by which method with which score, and what the canonical form
inserted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..registry import SiteRegistry, ZoneKind
from .grammar import split_clauses
from .grounding import Entry, GroundResult, Grounder, GroundingConfig
from .lexicon import NEGATION, base_verb, condition_or_loop, safety_violation, strip_fillers
from .text import STOPWORDS, clean, is_designator, tokens
from .types import HIGH_RISK_SKILLS, SKILLS, Answer, Clarification, Step
from .validator import canonical, check_steps

__all__ = ["OfflinePlanner", "PlannerConfig", "SKILL_LIST"]

SKILL_LIST = ", ".join(SKILLS)

# ---------------------------------------------------------------------------------------
# verb phrases (over cleaned, filler-stripped clauses)
# ---------------------------------------------------------------------------------------
_R = re.compile
_DOCK = _R(r"^(?:dock|redock|re-dock|go\s+(?:and\s+)?(?:dock|charge|recharge)|"
           r"(?:re)?charge(?:\s+(?:yourself|up|your\s+batter(?:y|ies)|the\s+batter(?:y|ies)|"
           r"the\s+robot))?|return\s+(?:to\s+)?(?:base|home)|go\s+(?:back\s+)?home|"
           r"head\s+(?:back\s+)?home|plug\s+(?:yourself\s+)?in|park\s+(?:yourself\s+)?"
           r"(?:at|on|in)\s+(?:the\s+)?(?:dock|charger|charging\s+\w+)|"
           r"go\s+(?:back\s+)?(?:to\s+)?(?:sleep|rest))(?:\s+(?:at|on|in)\s+(?P<d>.+))?$")
_PHOTO = _R(r"^(?:take|snap|grab|get|capture|make|shoot)\s+(?:a\s+|an\s+|some\s+|the\s+)?"
            r"(?:(?:close-?up|quick|clear|new)\s+)?(?:photo|picture|pic|image|snapshot|shot|"
            r"snap|video|thermal\s+image)s?(?:\s+(?:of|at)\s+(?P<a>.+))?$")
_READING = _R(r"^(?:take|get|grab|record|log|note(?:\s+down)?|do|make|capture|report)\s+"
              r"(?:a\s+|the\s+|an\s+)?(?:current\s+|latest\s+)?(?:reading|measurement|value|"
              r"level)s?\s+(?:of|from|on|at|for|off)\s+(?P<a>.+)$")
_WHAT = _R(r"^(?:what(?:'s|\s+is|\s+does|\s+do|s)|tell\s+me\s+(?:what|the)|how\s+(?:high|much)\s+is|"
           r"report\s+(?:what|the))\s+(?P<rest>.+)$")
_BRING = _R(r"^(?:bring|take|deliver|carry|transport|move|haul|fetch|get|return|ferry|drop)\s+"
            r"(?!(?:back|over|yourself|down|up|away|off)\b)(?P<o>.+?)\s+(?:back\s+|over\s+|off\s+)?"
            r"(?:to|into|onto|towards?|over\s+to|across\s+to|up\s+to|down\s+to|at)\s+(?P<d>.+)$")
_BRING_ME = _R(r"^(?:bring|deliver|carry|fetch|get|hand|give)\s+(?:me|us|him|her|them)\s+(?P<o>.+)$|"
               r"^(?:bring|deliver|carry)\s+(?P<o2>.+?)(?:\s+(?:here|over\s+here|to\s+me|to\s+us|"
               r"back|over))?$")
_NEED = _R(r"^(?:i|we)\s+(?:need|want|would\s+like|'d\s+like|require)\s+(?P<o>.+?)\s+"
           r"(?:at|to|in|on|by|brought\s+to|delivered\s+to|taken\s+to)\s+(?P<d>.+)$")
_PLACE_VERB = _R(r"^(?:put\s+down|put|place|set\s+down|set|drop\s+off|drop|leave|deposit|"
                 r"lay\s+down|lay|stow|store|unload|release|hand\s+over|hand\s+off)\b\s*(?P<r>.*)$")
_NAV = _R(r"^(?:go|drive|move|head|navigate|travel|proceed|walk|roll|get|come|return|"
          r"make\s+your\s+way|relocate|reposition|position\s+yourself|get\s+yourself|run|"
          r"hurry|rush|continue|carry\s+on|go\s+on|swing\s+by|stop\s+by|pop\s+over|"
          r"nip|wander|drive\s+over|cruise|advance)\s+(?:(?:back|over|down|up|across|"
          r"straight|on|right|directly|yourself|along|out)\s+)*"
          r"(?P<prep>to|towards|toward|into|inside|in\s+to|in|through|across|via|by|"
          r"to\s+the\s+inside\s+of|onto|up\s+to|next\s+to|near|over\s+to)\s+(?P<d>.+)$")
_VISIT = _R(r"^(?P<v>visit|enter|approach|reach|park\s+(?:at|by|near|in|next\s+to)|"
            r"station\s+yourself\s+(?:at|by)|stand\s+(?:at|by|near)|"
            r"wait\s+at|go\s+see|check\s+in\s+at)\s+(?P<d>.+)$")
_GO_THERE = _R(r"^(?:go|head|drive|move|come|get|return|walk)\s+(?P<d>there|back|here|"
               r"over\s+there|back\s+there|inside|in|home)$")
_VALVE = _R(r"^(?P<v>open|close|shut|turn|rotate|isolate|operate|crack|actuate|cycle)\s+"
            r"(?:(?P<p1>on|off|open|closed|shut|up|down)\s+)?(?P<a>.+?)"
            r"(?:\s+(?P<p2>on|off|open|closed|shut|down|fully\s+open|fully\s+closed|back\s+on))?$")
_READ = _R(r"^(?:read|re-read|reread|read\s+off|read\s+out|record|log|note(?:\s+down)?|"
           r"check\s+the\s+(?:reading|value|level|pressure|temperature)\s+(?:on|of|at|from)|"
           r"get\s+the\s+(?:reading|value|pressure|temperature)\s+(?:on|of|from|at)|"
           r"measure|take\s+(?P<q>pressure|temperature)\s+(?:on|of|at|from))\s+(?P<a>.+)$")
_CHECK = _R(r"^(?:check|verify|look\s+up|check\s+up\s+on|check\s+on|have\s+a\s+check\s+of|"
            r"do\s+a\s+check\s+(?:of|on))\s+(?P<a>.+)$")
_CHECK_FOR = _R(r"^(?:check|look|search|inspect)\s+(?:for|at)\s+(?:signs\s+of\s+)?(?:\w+\s+){0,2}?"
                r"(?:on|at|in|around|near|of)\s+(?P<a>.+)$")
_INSPECT = _R(r"^(?:inspect|examine|photograph|survey|scan|look\s+at|look\s+over|"
              r"have\s+a\s+(?:look|quick\s+look)\s+at|take\s+a\s+(?:look|quick\s+look)\s+at|"
              r"eyeball|check\s+out|look\s+closely\s+at|visually\s+(?:inspect|check)|image|"
              r"film|video|snap|view|assess|audit|(?:do|carry\s+out|perform|run|make)\s+"
              r"(?:an?\s+|the\s+)?(?:visual\s+)?(?:inspection|check|survey)\s+(?:of|on|at))\s+"
              r"(?P<a>.+)$")
_PICK = _R(r"^(?:pick\s+up|pick\s+out|pick|grab|fetch|get|collect|retrieve|lift|take\s+hold\s+of|"
           r"take|gather|obtain|acquire|grasp|go\s+get|go\s+fetch|go\s+grab)\s+(?P<o>.+?)"
           r"(?:\s+up)?(?:\s+from\s+(?P<s>.+))?$")
_PATROL = _R(r"^(?:patrol|do|run|perform|start|begin|carry\s+out|go\s+on|make|complete|"
             r"execute|follow|walk|conduct|undertake)(?:\s+(?P<r>.+))?$")
_PATROL_BARE = _R(r"^(?:patrol|do\s+(?:a|the|your)\s+(?:patrol|round|rounds)|"
                  r"go\s+on\s+(?:a\s+|the\s+)?patrol|make\s+(?:a|the|your)\s+rounds?)$")

KNOWN_VERBS = frozenset("""read reread re-read check verify inspect examine look photograph survey
scan take snap grab get capture go drive move head navigate travel proceed walk roll come
return visit enter approach reach park pick fetch collect retrieve lift bring deliver carry
transport haul put place set drop leave deposit lay stow store open close shut turn rotate
isolate operate crack patrol do run perform start begin make complete execute dock redock
charge recharge plug record log note what tell measure eyeball film view assess audit
gather obtain hand give unload release swing stop pop nip follow conduct undertake ferry
station stand wait relocate reposition position hurry rush continue cruise advance actuate
cycle""".split())

_PRONOUNS = frozenset({"it", "that", "this", "them", "those", "these", "that one",
                       "this one", "the same", "the same one", "the one", "same", "one",
                       "it up", "them up", "the object", "the item", "the thing",
                       "the tool", "what you picked up", "what you are holding",
                       "what you're holding", "the load"})
_COORD = _R(r"\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*&\s*|\s+as\s+well\s+as\s+|\s+plus\s+|"
            r"\s+along\s+with\s+|\s+together\s+with\s+)\s*")
_THERE = _R(r"\s+(?:(?:over|right)\s+)?(?:there|here|at\s+that\s+(?:place|spot|location)|"
            r"at\s+the\s+same\s+(?:place|spot)|on\s+it|on\s+that\s+one)$")
_POSSESSIVE = _R(r"^(?:its|their|the\s+same\s+(?:place's|spot's))\s+")
_HERE = frozenset({"here", "me", "us", "over here", "to me", "where i am", "my location",
                   "my position", "where i'm standing", "the operator"})
_NOUNS = {"gauge": "gauge", "valve": "valve", "object": "object", "place": "place",
          "route": "route", "asset": "thing"}


class _Stop(Exception):
    """A clause decided the answer: clarify (with what it waits for) or refuse."""

    def __init__(self, status: str, text: str, clar: Clarification | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.clar = status, text, clar


@dataclass
class _Ctx:
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


def _join_or(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


class OfflinePlanner:
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
        ctx = _Ctx()
        steps: list[Step] = []
        stops: list[_Stop] = []
        for i, c in enumerate(clauses):
            ctx.log.append(f"clause {i + 1} '{c}'")
            try:
                new = self._clause(i, c, ctx, role, bindings)
            except _Stop as s:
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
        v = check_steps(self.registry, steps, role)
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
            act = _action_word(t)
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
            q = (f"I could not match '{text}'. " + (f"Please choose one of: {_join_or(names)}."
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

    # ===================================================================== clauses
    def _starts_with_verb(self, piece: str) -> bool:
        p = base_verb(strip_fillers(piece))
        if not p:
            return True
        w = p.split(" ", 1)[0]
        if w in KNOWN_VERBS or NEGATION.match(p):
            return True
        if w in STOPWORDS or w in ("the", "a", "an", "all", "both", "its", "their") \
                or is_designator(w) or w in self.g.raw_vocab:
            return False
        return True

    def _clause(self, i: int, c: str, ctx: _Ctx, role: str,
                bindings: Mapping[str, str]) -> list[Step]:
        if NEGATION.match(c):
            raise _Stop("refuse", f"'{c}' is a constraint, not a step; constraints are not "
                        "in the plan language (the safety supervisor enforces zones and "
                        "speeds on its own)")
        # the whole clause names a route ("the transformer round")
        r = self.g.exact.get(re.sub(r"^(?:the|a)\s+", "", c))
        if r is not None and r.type == "route":
            return self._emit(ctx, [Step.of("patrol", route=r.id)], f"'{c}' -> patrol({r.id}) "
                              "(route name)")
        m = _DOCK.match(c)
        if m:
            return self._emit(ctx, [Step.of("dock")], f"'{c}' -> dock")
        m = _PHOTO.match(c)
        if m:
            return self._inspect(i, m["a"] or "it", ctx, bindings, "photo")
        m = _NEED.match(c)
        if m:
            return self._bring(i, m["o"], m["d"], ctx, role, bindings)
        m = _READING.match(c)
        if m:
            return self._read(i, m["a"], ctx, bindings, "reading")
        m = _WHAT.match(c)
        if m:
            return self._what(i, m["rest"], ctx, bindings, c)
        m = _BRING_ME.match(c)
        if m and (m["o"] or (m["o2"] and not _BRING.match(c))):
            obj = m["o"] or m["o2"]
            objs = self._objects(i, "object", obj, ctx, bindings)
            names = ", ".join(o.display for o in objs)
            raise _Stop("clarify", f"Where should I bring the {names}? I do not know where "
                        "'here' or 'me' is; name a place.",
                        Clarification(f"c{i}:destination", "destination", ("place", "dock",
                                                                            "asset", "object")))
        m = _BRING.match(c)
        if m and not _THERE.search(" " + m["o"]):
            return self._bring(i, m["o"], m["d"], ctx, role, bindings)
        m = _PLACE_VERB.match(c)
        if m:
            return self._place(i, m["r"], ctx, role, bindings)
        m = _GO_THERE.match(c)
        if m:
            d = m["d"]
            if d in ("home",):
                return self._emit(ctx, [Step.of("dock")], f"'{c}' -> dock (home)")
            if d in ("there", "over there", "back there") and ctx.here:
                return self._emit(ctx, [Step.of("navigate_to", place=ctx.here)],
                                  f"'{c}' -> navigate_to({ctx.here}) (there)")
            raise _Stop("clarify", f"Where should I go? '{d}' does not name a place; "
                        "name one.", Clarification(f"c{i}:destination", d, ("place", "dock",
                                                                            "asset", "object")))
        m = _NAV.match(c)
        if m:
            prep = m["prep"]
            if prep in ("through", "across", "via"):
                return self._through(i, m["d"], ctx, role, bindings)
            return self._navigate(i, m["d"], ctx, role, bindings,
                                  into=prep in ("into", "inside", "in to", "in",
                                                "to the inside of"))
        m = _VISIT.match(c)
        if m:
            return self._navigate(i, m["d"], ctx, role, bindings, into=m["v"] == "enter")
        m = _CHECK_FOR.match(c)
        if m:
            return self._inspect(i, m["a"], ctx, bindings, "check for")
        m = _VALVE.match(c)
        if m:
            return self._valve(i, m, ctx, role, bindings)
        m = _READ.match(c)
        if m:
            a = m["a"] + (f" {m['q']}" if m["q"] else "")
            return self._read(i, a, ctx, bindings, "read")
        m = _INSPECT.match(c)
        if m:
            return self._inspect(i, m["a"], ctx, bindings, "inspect")
        m = _CHECK.match(c)
        if m:
            return self._check(i, m["a"], ctx, bindings)
        m = _PATROL_BARE.match(c)
        if m:
            return self._patrol(i, "", ctx, bindings)
        m = _PICK.match(c)
        if m:
            o = m["o"] + (f" from {m['s']}" if m["s"] else "")
            return self._pick(i, o, ctx, bindings)
        m = _PATROL.match(c)
        if m and (c.startswith("patrol") or self._is_route_phrase(m["r"] or "")):
            return self._patrol(i, m["r"] or "", ctx, bindings)
        # a bare noun phrase: ask what to do with it; anything else: no skill can do it
        w = c.split(" ", 1)[0]
        if w not in KNOWN_VERBS and not self._starts_with_verb(c):
            r = self.g.ground(c, ("place", "asset", "object", "route"))
            if r.status in ("one", "many"):
                raise _Stop("clarify", f"What should I do with {', '.join(e.display for e in r.entries)}? "
                            f"(skills: {SKILL_LIST})", Clarification("instruction", c, ()))
        raise _Stop("refuse", f"no skill can do '{c}'; the robot's skills are {SKILL_LIST}")

    def _is_route_phrase(self, phrase: str) -> bool:
        r = self.g.ground(phrase, ("route",), allow_relation=False)
        return r.status in ("one", "many", "ambiguous") and r.method in ("exact", "contains",
                                                                          "fuzzy")

    # ===================================================================== emitting
    def _emit(self, ctx: _Ctx, steps: list[Step], note: str) -> list[Step]:
        ctx.log.append(note)
        ctx.steps.extend(steps)
        for s in steps:
            a = s.arg
            if s.skill == "navigate_to":
                ctx.here = a["place"]
                ctx.last = self.g.by_id.get(a["place"])
            elif s.skill in ("read_gauge", "inspect", "operate_valve"):
                en = self.g.by_id[a["asset"]]
                ctx.here, ctx.last = en.place, en
            elif s.skill == "pick":
                en = self.g.by_id[a["object"]]
                ctx.here, ctx.last, ctx.held = en.place, en, en
            elif s.skill == "place":
                ctx.here, ctx.held = a["place"], None
            else:
                ctx.here = None
        return steps

    def _note(self, ctx: _Ctx, r: GroundResult) -> None:
        extra = f" [{r.note}]" if r.note else ""
        ctx.log.append(r.describe() + extra)

    # ===================================================================== references
    def _context_place(self, ctx: _Ctx) -> str | None:
        if ctx.last is not None and ctx.last.place:
            return ctx.last.place if ctx.here is None else ctx.here
        return ctx.here

    def _prep(self, phrase: str, ctx: _Ctx) -> tuple[str, list[str] | None, bool]:
        """(phrase without context words, hard place filter, is-a-pronoun)."""
        p = clean(phrase).strip(" .,;:!?")
        p = re.sub(r"\s+(?:up|please|for me|now)$", "", p)
        if p in _PRONOUNS:
            return p, None, True
        at = None
        m = _POSSESSIVE.match(p)
        if m:
            p = p[m.end():]
            place = ctx.last.place if ctx.last is not None else ctx.here
            at = [place] if place else []
        m = _THERE.search(p)
        if m and m.start() > 0:
            p = p[:m.start()]
            place = self._context_place(ctx)
            at = [place] if place else []
        return p, at, False

    def _bound(self, key: str, bindings: Mapping[str, str]) -> list[Entry] | None:
        v = bindings.get(key)
        if not v:
            return None
        out = [self.g.by_id[x] for x in v.split("|") if x in self.g.by_id]
        return out or None

    def _items(self, phrase: str) -> list[str]:
        """A coordinated noun phrase as items, head words shared ("T1 and T2 pressure
        gauges" -> "T1 pressure gauges", "T2 pressure gauges")."""
        items = [x for x in _COORD.split(phrase) if x and x.strip()]
        if len(items) < 2:
            return [phrase]

        def content(s: str) -> list[str]:
            return [w for w in tokens(s) if w not in STOPWORDS]

        def desig_only(s: str) -> bool:
            c = content(s)
            return bool(c) and all(is_designator(w) or (len(w) == 1) for w in c)

        last, first = items[-1], items[0]
        tail = " ".join(w for w in clean(last).split() if not is_designator(w)
                        and w not in ("the", "a", "an"))
        head = " ".join(w for w in clean(first).split() if not is_designator(w)
                        and w not in ("the", "a", "an"))
        out = []
        for k, it in enumerate(items):
            if desig_only(it):
                if k < len(items) - 1 and not desig_only(last) and tail:
                    it = f"{it} {tail}"
                elif head and not desig_only(first):
                    it = f"{head} {it}"
            out.append(it)
        return out

    def _resolve(self, i: int, slot: str, phrase: str, ctx: _Ctx, bindings: Mapping[str, str],
                 one: Callable[[str, str, list[str] | None, bool], list[Entry]]) -> list[Entry]:
        """Resolve a (possibly coordinated) phrase with *one(key, phrase, at, pronoun)*."""
        key = f"c{i}:{slot}"
        b = self._bound(key, bindings)
        if b is not None:
            ctx.log.append(f"'{phrase}' -> {','.join(e.id for e in b)} (answer to question)")
            return b
        p, at, pron = self._prep(phrase, ctx)
        if not pron and (" and " in p or "," in p or " & " in p or " plus " in p
                         or " as well as " in p or " along with " in p):
            whole = self.g.exact.get(re.sub(r"^(?:the|a|an)\s+", "", p))
            if whole is None:
                out: list[Entry] = []
                for k, item in enumerate(self._items(p)):
                    kb = self._bound(f"{key}:{k}", bindings)
                    if kb is not None:
                        out.extend(kb)
                        continue
                    q, at2, pron2 = self._prep(item, ctx)
                    out.extend(one(f"{key}:{k}", q, at2 if at2 is not None else at, pron2))
                return out
        return one(key, p, at, pron)

    def _ask(self, key: str, phrase: str, what: str, r: GroundResult, types: Sequence[str],
             ctx: _Ctx) -> _Stop:
        self._note(ctx, r)
        n = self.config.max_listed
        cands = r.entries[:n]
        names = [f"{e.display} ({e.id})" for e in cands]
        more = f" (and {len(r.entries) - n} more)" if len(r.entries) > n else ""
        if r.status == "ambiguous":
            q = f"Which {what} do you mean by '{phrase}': {_join_or(names)}{more}?"
        elif cands:
            q = (f"I don't know '{phrase}' on this site. Did you mean {_join_or(names)}?")
        else:
            pool = self.g.pool(types)[:n]
            listed = ", ".join(e.display for e in pool)
            q = (f"I don't know '{phrase}' on this site. Which {what} do you mean?"
                 + (f" Known: {listed}." if listed else ""))
        return _Stop("clarify", q, Clarification(key, phrase, tuple(types),
                                                 tuple(e.id for e in cands)))

    # ===================================================================== skills
    def _gauges_one(self, ctx: _Ctx, key: str, p: str, at: list[str] | None,
                    pron: bool) -> list[Entry]:
        if pron:
            if ctx.last is None:
                raise _Stop("clarify", "Which gauge do you mean by 'it'?",
                            Clarification(key, p, ("asset",)))
            if ctx.last.kind == "gauge":
                return [ctx.last]
            at, p = [ctx.last.place] if ctx.last.place else [], "gauge"
        if not p and at is not None:
            p = "gauge"
        r = self.g.ground(p, ("asset",), ("gauge",), at=at, near=ctx.here)
        if r.status in ("one", "many"):
            self._note(ctx, r)
            return r.entries
        if r.status == "ambiguous":
            raise self._ask(key, p, "gauge", r, ("asset",), ctx)
        r2 = self.g.ground(p, ("asset", "place", "zone", "object"), at=at, near=ctx.here)
        if r2.status in ("one", "many"):
            if all(e.type == "asset" and e.kind == "valve" for e in r2.entries):
                self._note(ctx, r2)
                raise _Stop("refuse", f"'{p}' is a valve, not a gauge: read_gauge reads gauges "
                            "(operate_valve opens or closes valves)")
            places = [pl for e in r2.entries for pl in self.g.places_of(e)]
            gauges = [e for e in self.g.pool(("asset",), ("gauge",), places)]
            self._note(ctx, r2)
            if not gauges:
                raise _Stop("refuse", f"there is no gauge at {', '.join(e.display for e in r2.entries)}"
                            " to read")
            _, plural, _ = self.g.query_tokens(p)
            if len(gauges) == 1 or plural:
                ctx.log.append(f"gauges at {','.join(places)}: {','.join(g.id for g in gauges)}")
                return gauges
            raise self._ask(key, p, "gauge", GroundResult("ambiguous", gauges, phrase=p),
                            ("asset",), ctx)
        if r2.status == "ambiguous":
            raise self._ask(key, p, "one", r2, ("asset", "place"), ctx)
        raise self._ask(key, p, "gauge", self.g.ground(p, ("asset",), ("gauge",)), ("asset",),
                        ctx)

    def _read(self, i: int, phrase: str, ctx: _Ctx, bindings: Mapping[str, str],
              how: str) -> list[Step]:
        gs = self._resolve(i, "gauge", phrase, ctx, bindings,
                           lambda k, p, at, pr: self._gauges_one(ctx, k, p, at, pr))
        return self._emit(ctx, [Step.of("read_gauge", asset=g.id) for g in gs],
                          f"verb '{how}' -> read_gauge")

    def _what(self, i: int, rest: str, ctx: _Ctx, bindings: Mapping[str, str],
              c: str) -> list[Step]:
        rest = rest.strip(" ?")
        m = re.match(r"^(?P<a>.+?)\s+(?:say|show|read|reading|showing|indicate|indicating|"
                     r"display|displaying|say\s+now)$", rest)
        if m:
            return self._read(i, m["a"], ctx, bindings, "what does X read")
        m = re.match(r"^(?:the\s+)?(?:current\s+)?(?P<q>[\w\s]*?(?:pressure|temperature|"
                     r"reading|value|level|temp))\s+(?:on|of|at|in|for|from|by)\s+(?P<a>.+)$",
                     rest)
        if m:
            q = m["q"]
            q = "" if q.strip() in ("reading", "value", "level") else q
            return self._read(i, f"{m['a']} {q}".strip(), ctx, bindings, "what is")
        raise _Stop("refuse", f"no skill can answer '{c}'; the robot's skills are {SKILL_LIST}")

    def _check(self, i: int, phrase: str, ctx: _Ctx, bindings: Mapping[str, str]) -> list[Step]:
        """"check X": read it if X is a gauge, otherwise inspect it."""
        p, at, pron = self._prep(phrase, ctx)
        target = ctx.last if pron else None
        if target is None and not pron:
            r = self.g.ground(p, ("asset",), at=at, near=ctx.here)
            if r.status == "one":
                target = r.entries[0]
            elif r.status == "many" and all(e.kind == "gauge" for e in r.entries):
                target = r.entries[0]
            elif r.status == "ambiguous" and all(e.kind == "gauge" for e in r.entries):
                target = r.entries[0]
        if target is not None and target.kind == "gauge" or re.search(
                r"\b(?:gauges?|gages?|reading|pressure|temperature|thermometer|level)\b", p):
            return self._read(i, phrase, ctx, bindings, "check (gauge)")
        return self._inspect(i, phrase, ctx, bindings, "check")

    def _assets_one(self, ctx: _Ctx, key: str, p: str, at: list[str] | None,
                    pron: bool) -> list[Entry]:
        if pron:
            if ctx.last is not None and ctx.last.type == "asset":
                return [ctx.last]
            if ctx.last is None:
                raise _Stop("clarify", "What should I inspect ('it')?",
                            Clarification(key, p, ("asset",)))
            at, p = [ctx.last.place] if ctx.last.place else [], ""
        r = self.g.ground(p, ("asset",), at=at, near=ctx.here)
        if r.status in ("one", "many"):
            self._note(ctx, r)
            return r.entries
        if r.status == "ambiguous":
            raise self._ask(key, p, "asset", r, ("asset",), ctx)
        r2 = self.g.ground(p, ("place", "zone", "object"), at=at, near=ctx.here)
        if r2.status in ("one", "many"):
            self._note(ctx, r2)
            if all(e.type == "object" for e in r2.entries):
                raise _Stop("refuse", f"'{p}' is a movable object; inspect works on site "
                            "assets (equipment) only")
            places = [pl for e in r2.entries for pl in self.g.places_of(e)]
            assets = self.g.pool(("asset",), None, places)
            if not assets:
                raise _Stop("refuse", f"there is no asset to inspect at "
                            f"{', '.join(e.display for e in r2.entries)}")
            if len(assets) == 1:
                return assets
            raise self._ask(key, p, "asset", GroundResult("ambiguous", assets, phrase=p),
                            ("asset",), ctx)
        if r2.status == "ambiguous":
            raise self._ask(key, p, "one", r2, ("asset", "place"), ctx)
        raise self._ask(key, p, "asset", r, ("asset",), ctx)

    def _inspect(self, i: int, phrase: str, ctx: _Ctx, bindings: Mapping[str, str],
                 how: str) -> list[Step]:
        xs = self._resolve(i, "asset", phrase, ctx, bindings,
                           lambda k, p, at, pr: self._assets_one(ctx, k, p, at, pr))
        return self._emit(ctx, [Step.of("inspect", asset=x.id) for x in xs],
                          f"verb '{how}' -> inspect")

    def _objects_one(self, ctx: _Ctx, key: str, p: str, at: list[str] | None,
                     pron: bool) -> list[Entry]:
        if pron:
            if ctx.held is not None:
                return [ctx.held]
            if ctx.last is not None and ctx.last.type == "object":
                return [ctx.last]
            raise _Stop("clarify", "Which object do you mean by 'it'?",
                        Clarification(key, p, ("object",)))
        r = self.g.ground(p, ("object",), at=at, near=ctx.here)
        if r.status in ("one", "many"):
            self._note(ctx, r)
            return r.entries
        if r.status == "ambiguous":
            raise self._ask(key, p, "object", r, ("object",), ctx)
        r2 = self.g.ground(p, ("asset",), at=at)
        if r2.status in ("one", "many") and r2.method in ("exact", "contains", "fuzzy"):
            self._note(ctx, r2)
            raise _Stop("refuse", f"'{p}' is fixed site equipment "
                        f"({', '.join(e.id for e in r2.entries)}); pick and place work on "
                        "movable objects only")
        raise self._ask(key, p, "object", r, ("object",), ctx)

    def _objects(self, i: int, slot: str, phrase: str, ctx: _Ctx,
                 bindings: Mapping[str, str]) -> list[Entry]:
        return self._resolve(i, slot, phrase, ctx, bindings,
                             lambda k, p, at, pr: self._objects_one(ctx, k, p, at, pr))

    def _pick(self, i: int, phrase: str, ctx: _Ctx, bindings: Mapping[str, str]) -> list[Step]:
        objs = self._objects(i, "object", phrase, ctx, bindings)
        steps = []
        for o in objs:
            steps += [Step.of("navigate_to", place=o.place), Step.of("pick", object=o.id)]
        return self._emit(ctx, steps, "verb -> pick")

    def _dest_one(self, ctx: _Ctx, key: str, p: str, at: list[str] | None, pron: bool,
                  role: str, into: bool = False) -> list[Entry]:
        if pron or p in ("there", "over there", "back there", "the same place"):
            place = self._context_place(ctx)
            if place is None:
                raise _Stop("clarify", "Where do you mean by 'there'? Name a place.",
                            Clarification(key, p, ("place", "dock", "asset", "object")))
            return [self.g.by_id[place]]
        if p in _HERE:
            raise _Stop("clarify", f"Where is '{p}'? I do not know the caller's position; "
                        "name a place.", Clarification(key, p, ("place", "dock", "asset",
                                                                "object")))
        if into:
            z = self.g.ground(p, ("zone",), allow_relation=False)
            if z.status == "one" and z.method in ("exact", "contains", "fuzzy"):
                return [self._zone_place(ctx, key, z, role)]
        types = ("place", "dock", "asset", "object", "zone")
        r = self.g.ground(p, types, at=at, near=ctx.here)
        if r.status == "ambiguous":
            places = {self._place_id(e) for e in r.entries}
            if len(places) == 1 and None not in places:
                self._note(ctx, r)
                return [self.g.by_id[places.pop()]]
            only_places = [e for e in r.entries if e.type == "place"]
            zones = [e for e in r.entries if e.type == "zone"]
            if zones and len(zones) == len(r.entries):
                pass
            raise self._ask(key, p, "place", GroundResult(
                "ambiguous", only_places or r.entries, phrase=p), ("place",), ctx)
        if r.status in ("one", "many"):
            self._note(ctx, r)
            out = []
            for e in r.entries:
                if e.type == "zone":
                    out.append(self._zone_place(ctx, key, GroundResult("one", [e], r.method,
                                                                       r.score, p), role))
                elif e.type == "dock":
                    out.append(e)
                else:
                    pid = self._place_id(e)
                    out.append(self.g.by_id[pid])
            seen: list[Entry] = []
            for e in out:
                if e not in seen:
                    seen.append(e)
            return seen
        raise self._ask(key, p, "place", r, ("place",), ctx)

    def _place_id(self, e: Entry) -> str | None:
        if e.type == "dock":
            return e.place
        return e.place if e.type in ("place", "asset", "object") else None

    def _zone_place(self, ctx: _Ctx, key: str, z: GroundResult, role: str) -> Entry:
        zone = z.entries[0].entity
        self._note(ctx, z)
        if zone.kind is ZoneKind.KEEP_OUT:
            raise _Stop("refuse", f"'{zone.name}' ({zone.id}) is a keep-out zone: the robot "
                        "never enters it")
        if zone.kind is ZoneKind.RESTRICTED and role not in zone.roles:
            raise _Stop("refuse", f"'{zone.name}' ({zone.id}) is a restricted zone open to "
                        f"roles {', '.join(zone.roles)}; the caller's role is {role!r}")
        inside = self.g.places_of(z.entries[0])
        if len(inside) == 1:
            return self.g.by_id[inside[0]]
        if not inside:
            raise _Stop("refuse", f"there is no place to stand at in '{zone.name}'")
        raise self._ask(key, zone.name, "place in " + zone.name,
                        GroundResult("ambiguous", [self.g.by_id[p] for p in inside],
                                     phrase=zone.name), ("place",), ctx)

    def _destinations(self, i: int, slot: str, phrase: str, ctx: _Ctx, role: str,
                      bindings: Mapping[str, str], into: bool = False) -> list[Entry]:
        return self._resolve(i, slot, phrase, ctx, bindings,
                             lambda k, p, at, pr: self._dest_one(ctx, k, p, at, pr, role, into))

    def _is_dock(self, e: Entry) -> bool:
        return e.type == "dock" or (e.type == "place" and any(
            d.place == e.id for d in self.registry.docks))

    def _navigate(self, i: int, phrase: str, ctx: _Ctx, role: str,
                  bindings: Mapping[str, str], into: bool = False) -> list[Step]:
        dests = self._destinations(i, "destination", phrase, ctx, role, bindings, into)
        steps = []
        for e in dests:
            if self._is_dock(e):
                steps.append(Step.of("dock"))
            else:
                steps.append(Step.of("navigate_to", place=e.id))
        return self._emit(ctx, steps, "verb -> navigate_to")

    def _through(self, i: int, phrase: str, ctx: _Ctx, role: str,
                 bindings: Mapping[str, str]) -> list[Step]:
        z = self.g.ground(phrase, ("zone",), allow_relation=False)
        if z.status == "one":
            self._zone_place(ctx, f"c{i}:destination", z, role)
        raise _Stop("refuse", f"paths ('through/via {phrase}') are not in the plan language: "
                    "navigation chooses the path; name the destination")

    def _bring(self, i: int, o_phrase: str, d_phrase: str, ctx: _Ctx, role: str,
               bindings: Mapping[str, str]) -> list[Step]:
        objs = self._objects(i, "object", o_phrase, ctx, bindings)
        dests = self._destinations(i, "destination", d_phrase, ctx, role, bindings)
        if len(dests) != 1:
            raise self._ask(f"c{i}:destination", d_phrase, "place",
                            GroundResult("ambiguous", dests, phrase=d_phrase), ("place",), ctx)
        dest = self._place_id(dests[0]) or dests[0].id
        steps: list[Step] = []
        for o in objs:
            if ctx.held is not None and ctx.held.id == o.id and not steps:
                steps += [Step.of("navigate_to", place=dest), Step.of("place", place=dest)]
            else:
                steps += [Step.of("navigate_to", place=o.place), Step.of("pick", object=o.id),
                          Step.of("navigate_to", place=dest), Step.of("place", place=dest)]
        return self._emit(ctx, steps, f"bring {','.join(o.id for o in objs)} to {dest}")

    def _place(self, i: int, rest: str, ctx: _Ctx, role: str,
               bindings: Mapping[str, str]) -> list[Step]:
        r = rest.strip()
        back = bool(re.search(r"\bback\b", r))
        m = re.search(r"(?:^|\s)(?:on|at|in|onto|into|by|near|next\s+to|beside|inside|to|"
                      r"on\s+top\s+of|in\s+front\s+of)\s+(?P<d>.+)$", r)
        d_phrase = m["d"] if m else ""
        o_part = r[:m.start()] if m else r
        o_part = re.sub(r"\b(?:down|off|back|away|there|here)\b", " ", o_part)
        o_part = " ".join(o_part.split())
        if d_phrase in ("there", "over there", "here", "it"):
            d_phrase = "there" if d_phrase != "here" else "here"
        if o_part and o_part not in _PRONOUNS:
            objs = self._objects(i, "object", o_part, ctx, bindings)
            if len(objs) == 1 and (ctx.held is None or ctx.held.id != objs[0].id):
                if back:
                    raise _Stop("clarify", f"I am not holding the {objs[0].display}; where "
                                "should it go?", Clarification(f"c{i}:destination", "back",
                                                               ("place",)))
                if not d_phrase:
                    raise _Stop("clarify", f"Where should I put the {objs[0].display}?",
                                Clarification(f"c{i}:destination", "", ("place", "dock",
                                                                        "asset", "object")))
                return self._bring(i, o_part, d_phrase, ctx, role, bindings)
            held = objs[0]
        else:
            held = ctx.held
        if back:
            if held is None:
                raise _Stop("clarify", "What should I put back? I do not know what is held.",
                            Clarification(f"c{i}:object", "", ("object",)))
            dest = held.place
        elif d_phrase:
            ds = self._destinations(i, "destination", d_phrase, ctx, role, bindings)
            if len(ds) != 1:
                raise self._ask(f"c{i}:destination", d_phrase, "place",
                                GroundResult("ambiguous", ds, phrase=d_phrase), ("place",), ctx)
            dest = self._place_id(ds[0]) or ds[0].id
        elif ctx.here is not None:
            dest = ctx.here
            if held is None and ctx.steps and ctx.steps[-1] == Step.of("place", place=dest):
                ctx.log.append(f"'{rest or 'put down'}': already put down at {dest}")
                return []
        else:
            key = f"c{i}:destination"
            b = self._bound(key, bindings)
            if b is None:
                raise _Stop("clarify", "Where should I put it down? Name a place.",
                            Clarification(key, "", ("place", "dock", "asset", "object")))
            dest = self._place_id(b[0]) or b[0].id
        return self._emit(ctx, [Step.of("navigate_to", place=dest), Step.of("place", place=dest)],
                          f"verb -> place at {dest}")

    def _valve(self, i: int, m: re.Match, ctx: _Ctx, role: str,
               bindings: Mapping[str, str]) -> list[Step]:
        v, p1, p2, phrase = m["v"], m["p1"] or "", (m["p2"] or ""), m["a"]
        act = {"open": "open", "crack": "open", "close": "close", "shut": "close",
               "isolate": "close"}.get(v)
        part = (p1 + " " + p2).strip()
        if act is None or part:
            pa = _action_word(part) if part else None
            if pa is not None:
                act = pa
            elif v in ("open", "close", "shut") and part in ("up", "down", "off"):
                act = "open" if v == "open" else "close"
        valves = self._resolve(i, "valve", phrase, ctx, bindings,
                               lambda k, p, at, pr: self._valves_one(ctx, k, p, at, pr))
        if act is None:
            key = f"c{i}:action"
            act = bindings.get(key)
            if act not in ("open", "close"):
                names = ", ".join(x.display for x in valves)
                raise _Stop("clarify", f"Should I open or close the {names}?",
                            Clarification(key, f"{v} {phrase}", ()))
        return self._emit(ctx, [Step.of("operate_valve", asset=x.id, action=act)
                                for x in valves], f"verb '{(v + ' ' + part).strip()}' -> operate_valve "
                          f"action={act}")

    def _valves_one(self, ctx: _Ctx, key: str, p: str, at: list[str] | None,
                    pron: bool) -> list[Entry]:
        if pron:
            if ctx.last is not None and ctx.last.kind == "valve":
                return [ctx.last]
            at, p = ([ctx.here] if ctx.here else None), "valve"
        r = self.g.ground(p, ("asset",), ("valve",), at=at, near=ctx.here)
        if r.status in ("one", "many"):
            self._note(ctx, r)
            return r.entries
        if r.status == "ambiguous":
            raise self._ask(key, p, "valve", r, ("asset",), ctx)
        r2 = self.g.ground(p, ("asset", "place", "object", "zone"), at=at, near=ctx.here)
        if r2.status in ("one", "many"):
            self._note(ctx, r2)
            if all(e.type in ("asset", "object") for e in r2.entries):
                kinds = ", ".join(sorted({e.kind for e in r2.entries}))
                raise _Stop("refuse", f"'{p}' is not a valve ({kinds}); no skill can open or "
                            "close it (operate_valve works on valves only)")
            places = [pl for e in r2.entries for pl in self.g.places_of(e)]
            valves = self.g.pool(("asset",), ("valve",), places)
            if len(valves) == 1:
                return valves
            if not valves:
                raise _Stop("refuse", f"there is no valve at {', '.join(e.display for e in r2.entries)}")
            raise self._ask(key, p, "valve", GroundResult("ambiguous", valves, phrase=p),
                            ("asset",), ctx)
        if any(w in ("door", "gate", "hatch", "cabinet", "window", "lid", "panel", "breaker",
                     "switch", "light", "lights", "power") for w in tokens(p)):
            raise _Stop("refuse", f"no skill can operate '{p}' (operate_valve works on "
                        "valves only)")
        raise self._ask(key, p, "valve", r, ("asset",), ctx)

    def _patrol(self, i: int, phrase: str, ctx: _Ctx, bindings: Mapping[str, str]) -> list[Step]:
        key = f"c{i}:route"
        b = self._bound(key, bindings)
        routes = self.registry.routes
        p = re.sub(r"\b(?:the|a|an|your|our)\b", " ", clean(phrase)).strip()
        p = " ".join(p.split())
        generic = p in ("", "patrol", "round", "rounds", "area", "route",
                        "patrol route", "usual patrol", "usual round", "normal patrol",
                        "regular patrol", "standard patrol", "usual route")
        if b is not None:
            rs = b
        elif generic:
            if len(routes) == 1:
                rs = [self.g.by_id[routes[0].id]]
            elif not routes:
                raise _Stop("refuse", "this site has no patrol routes")
            else:
                cands = [self.g.by_id[r.id] for r in routes]
                raise self._ask(key, phrase or "patrol", "route",
                                GroundResult("ambiguous", cands, phrase=phrase or "patrol"),
                                ("route",), ctx)
        else:
            r = self.g.ground(p, ("route",), near=None)
            if r.status in ("one", "many"):
                self._note(ctx, r)
                rs = r.entries
            else:
                if r.status == "unknown" and not r.entries:
                    r = GroundResult("unknown", [self.g.by_id[x.id] for x in routes], phrase=p)
                raise self._ask(key, p, "route", r, ("route",), ctx)
        return self._emit(ctx, [Step.of("patrol", route=x.id) for x in rs], "verb -> patrol")


def _action_word(t: str) -> str | None:
    t = t.strip()
    if re.search(r"\b(?:open|on|opened|up|fully\s+open)\b", t):
        return "open"
    if re.search(r"\b(?:close|closed|shut|off|isolate|down)\b", t):
        return "close"
    return None
