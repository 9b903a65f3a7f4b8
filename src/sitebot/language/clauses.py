"""Clause recognition for the offline planner: the verb-phrase patterns, the verbs that
start a clause (:data:`KNOWN_VERBS`), and :class:`ClauseReader`, the layer that maps one
clause to a skill and hands its argument phrases to the skill layer.
"""
from __future__ import annotations

import re
from typing import Mapping

from sitebot.language.context import SKILL_LIST, Ctx, Stop
from sitebot.language.lexicon import NEGATION, base_verb, strip_fillers
from sitebot.language.references import THERE
from sitebot.language.skills import SkillBuilder
from sitebot.language.text import STOPWORDS, is_designator
from sitebot.language.types import Clarification, Step

__all__ = ["ClauseReader", "KNOWN_VERBS"]

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


class ClauseReader(SkillBuilder):
    """The layer of :class:`~sitebot.language.planner.OfflinePlanner` that recognizes the
    skill of each clause."""

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

    def _clause(self, i: int, c: str, ctx: Ctx, role: str,
                bindings: Mapping[str, str]) -> list[Step]:
        if NEGATION.match(c):
            raise Stop("refuse", f"'{c}' is a constraint, not a step; constraints are not "
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
            raise Stop("clarify", f"Where should I bring the {names}? I do not know where "
                       "'here' or 'me' is; name a place.",
                       Clarification(f"c{i}:destination", "destination", ("place", "dock",
                                                                            "asset", "object")))
        m = _BRING.match(c)
        if m and not THERE.search(" " + m["o"]):
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
            raise Stop("clarify", f"Where should I go? '{d}' does not name a place; "
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
                raise Stop("clarify", f"What should I do with {', '.join(e.display for e in r.entries)}? "
                           f"(skills: {SKILL_LIST})", Clarification("instruction", c, ()))
        raise Stop("refuse", f"no skill can do '{c}'; the robot's skills are {SKILL_LIST}")

    def _is_route_phrase(self, phrase: str) -> bool:
        r = self.g.ground(phrase, ("route",), allow_relation=False)
        return r.status in ("one", "many", "ambiguous") and r.method in ("exact", "contains",
                                                                          "fuzzy")
