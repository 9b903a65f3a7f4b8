"""Reference resolution for the offline planner: the words that point back into the plan
("it", "there", "its ...", "T1 and T2 ...") and :class:`ReferenceResolver`, the planner's
bottom layer, which grounds one argument phrase to registry entries given the plan so far
and earlier answers, asks the question when it cannot, and records emitted steps.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

from sitebot.language.context import Ctx, PlannerConfig, Stop, join_or
from sitebot.language.grounding import Entry, Grounder, GroundResult
from sitebot.language.text import STOPWORDS, clean, is_designator, tokens
from sitebot.language.types import Clarification, Step
from sitebot.site.registry import SiteRegistry

__all__ = ["ReferenceResolver", "PRONOUNS", "THERE"]

_R = re.compile
PRONOUNS = frozenset({"it", "that", "this", "them", "those", "these", "that one",
                      "this one", "the same", "the same one", "the one", "same", "one",
                      "it up", "them up", "the object", "the item", "the thing",
                      "the tool", "what you picked up", "what you are holding",
                      "what you're holding", "the load"})
_COORD = _R(r"\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*&\s*|\s+as\s+well\s+as\s+|\s+plus\s+|"
            r"\s+along\s+with\s+|\s+together\s+with\s+)\s*")
THERE = _R(r"\s+(?:(?:over|right)\s+)?(?:there|here|at\s+that\s+(?:place|spot|location)|"
           r"at\s+the\s+same\s+(?:place|spot)|on\s+it|on\s+that\s+one)$")
_POSSESSIVE = _R(r"^(?:its|their|the\s+same\s+(?:place's|spot's))\s+")
_NOUNS = {"gauge": "gauge", "valve": "valve", "object": "object", "place": "place",
          "route": "route", "asset": "thing"}


class ReferenceResolver:
    """The layer of :class:`~sitebot.language.planner.OfflinePlanner` that resolves
    argument phrases and keeps the plan context; the planner sets the attributes."""

    registry: SiteRegistry
    config: PlannerConfig
    g: Grounder

    # ===================================================================== emitting
    def _emit(self, ctx: Ctx, steps: list[Step], note: str) -> list[Step]:
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

    def _note(self, ctx: Ctx, r: GroundResult) -> None:
        extra = f" [{r.note}]" if r.note else ""
        ctx.log.append(r.describe() + extra)

    # ===================================================================== references
    def _context_place(self, ctx: Ctx) -> str | None:
        if ctx.last is not None and ctx.last.place:
            return ctx.last.place if ctx.here is None else ctx.here
        return ctx.here

    def _prep(self, phrase: str, ctx: Ctx) -> tuple[str, list[str] | None, bool]:
        """(phrase without context words, hard place filter, is-a-pronoun)."""
        p = clean(phrase).strip(" .,;:!?")
        p = re.sub(r"\s+(?:up|please|for me|now)$", "", p)
        if p in PRONOUNS:
            return p, None, True
        at = None
        m = _POSSESSIVE.match(p)
        if m:
            p = p[m.end():]
            place = ctx.last.place if ctx.last is not None else ctx.here
            at = [place] if place else []
        m = THERE.search(p)
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

    def _resolve(self, i: int, slot: str, phrase: str, ctx: Ctx, bindings: Mapping[str, str],
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
             ctx: Ctx) -> Stop:
        self._note(ctx, r)
        n = self.config.max_listed
        cands = r.entries[:n]
        names = [f"{e.display} ({e.id})" for e in cands]
        more = f" (and {len(r.entries) - n} more)" if len(r.entries) > n else ""
        if r.status == "ambiguous":
            q = f"Which {what} do you mean by '{phrase}': {join_or(names)}{more}?"
        elif cands:
            q = (f"I don't know '{phrase}' on this site. Did you mean {join_or(names)}?")
        else:
            pool = self.g.pool(types)[:n]
            listed = ", ".join(e.display for e in pool)
            q = (f"I don't know '{phrase}' on this site. Which {what} do you mean?"
                 + (f" Known: {listed}." if listed else ""))
        return Stop("clarify", q, Clarification(key, phrase, tuple(types),
                                                tuple(e.id for e in cands)))
