"""The offline planner's skill layer: for each skill, ground the argument phrases of a
recognized verb (gauges, assets, objects, destinations, valves, routes) and emit the
skill's steps, or stop with a question or a refusal.
"""
from __future__ import annotations

import re
from typing import Mapping

from sitebot.language.context import SKILL_LIST, Ctx, Stop
from sitebot.language.grounding import Entry, GroundResult
from sitebot.language.references import PRONOUNS, ReferenceResolver
from sitebot.language.text import clean, tokens
from sitebot.language.types import Clarification, Step
from sitebot.site.registry import ZoneKind

__all__ = ["SkillBuilder", "action_word"]

_HERE = frozenset({"here", "me", "us", "over here", "to me", "where i am", "my location",
                   "my position", "where i'm standing", "the operator"})


class SkillBuilder(ReferenceResolver):
    """The layer of :class:`~sitebot.language.planner.OfflinePlanner` that turns a
    skill's argument phrases into steps."""

    # ===================================================================== skills
    def _gauges_one(self, ctx: Ctx, key: str, p: str, at: list[str] | None,
                    pron: bool) -> list[Entry]:
        if pron:
            if ctx.last is None:
                raise Stop("clarify", "Which gauge do you mean by 'it'?",
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
                raise Stop("refuse", f"'{p}' is a valve, not a gauge: read_gauge reads gauges "
                           "(operate_valve opens or closes valves)")
            places = [pl for e in r2.entries for pl in self.g.places_of(e)]
            gauges = [e for e in self.g.pool(("asset",), ("gauge",), places)]
            self._note(ctx, r2)
            if not gauges:
                raise Stop("refuse", f"there is no gauge at {', '.join(e.display for e in r2.entries)}"
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

    def _read(self, i: int, phrase: str, ctx: Ctx, bindings: Mapping[str, str],
              how: str) -> list[Step]:
        gs = self._resolve(i, "gauge", phrase, ctx, bindings,
                           lambda k, p, at, pr: self._gauges_one(ctx, k, p, at, pr))
        return self._emit(ctx, [Step.of("read_gauge", asset=g.id) for g in gs],
                          f"verb '{how}' -> read_gauge")

    def _what(self, i: int, rest: str, ctx: Ctx, bindings: Mapping[str, str],
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
        raise Stop("refuse", f"no skill can answer '{c}'; the robot's skills are {SKILL_LIST}")

    def _check(self, i: int, phrase: str, ctx: Ctx, bindings: Mapping[str, str]) -> list[Step]:
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

    def _assets_one(self, ctx: Ctx, key: str, p: str, at: list[str] | None,
                    pron: bool) -> list[Entry]:
        if pron:
            if ctx.last is not None and ctx.last.type == "asset":
                return [ctx.last]
            if ctx.last is None:
                raise Stop("clarify", "What should I inspect ('it')?",
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
                raise Stop("refuse", f"'{p}' is a movable object; inspect works on site "
                           "assets (equipment) only")
            places = [pl for e in r2.entries for pl in self.g.places_of(e)]
            assets = self.g.pool(("asset",), None, places)
            if not assets:
                raise Stop("refuse", f"there is no asset to inspect at "
                           f"{', '.join(e.display for e in r2.entries)}")
            if len(assets) == 1:
                return assets
            raise self._ask(key, p, "asset", GroundResult("ambiguous", assets, phrase=p),
                            ("asset",), ctx)
        if r2.status == "ambiguous":
            raise self._ask(key, p, "one", r2, ("asset", "place"), ctx)
        raise self._ask(key, p, "asset", r, ("asset",), ctx)

    def _inspect(self, i: int, phrase: str, ctx: Ctx, bindings: Mapping[str, str],
                 how: str) -> list[Step]:
        xs = self._resolve(i, "asset", phrase, ctx, bindings,
                           lambda k, p, at, pr: self._assets_one(ctx, k, p, at, pr))
        return self._emit(ctx, [Step.of("inspect", asset=x.id) for x in xs],
                          f"verb '{how}' -> inspect")

    def _objects_one(self, ctx: Ctx, key: str, p: str, at: list[str] | None,
                     pron: bool) -> list[Entry]:
        if pron:
            if ctx.held is not None:
                return [ctx.held]
            if ctx.last is not None and ctx.last.type == "object":
                return [ctx.last]
            raise Stop("clarify", "Which object do you mean by 'it'?",
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
            raise Stop("refuse", f"'{p}' is fixed site equipment "
                       f"({', '.join(e.id for e in r2.entries)}); pick and place work on "
                       "movable objects only")
        raise self._ask(key, p, "object", r, ("object",), ctx)

    def _objects(self, i: int, slot: str, phrase: str, ctx: Ctx,
                 bindings: Mapping[str, str]) -> list[Entry]:
        return self._resolve(i, slot, phrase, ctx, bindings,
                             lambda k, p, at, pr: self._objects_one(ctx, k, p, at, pr))

    def _pick(self, i: int, phrase: str, ctx: Ctx, bindings: Mapping[str, str]) -> list[Step]:
        objs = self._objects(i, "object", phrase, ctx, bindings)
        steps = []
        for o in objs:
            steps += [Step.of("navigate_to", place=o.place), Step.of("pick", object=o.id)]
        return self._emit(ctx, steps, "verb -> pick")

    def _dest_one(self, ctx: Ctx, key: str, p: str, at: list[str] | None, pron: bool,
                  role: str, into: bool = False) -> list[Entry]:
        if pron or p in ("there", "over there", "back there", "the same place"):
            place = self._context_place(ctx)
            if place is None:
                raise Stop("clarify", "Where do you mean by 'there'? Name a place.",
                           Clarification(key, p, ("place", "dock", "asset", "object")))
            return [self.g.by_id[place]]
        if p in _HERE:
            raise Stop("clarify", f"Where is '{p}'? I do not know the caller's position; "
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

    def _zone_place(self, ctx: Ctx, key: str, z: GroundResult, role: str) -> Entry:
        zone = z.entries[0].entity
        self._note(ctx, z)
        if zone.kind is ZoneKind.KEEP_OUT:
            raise Stop("refuse", f"'{zone.name}' ({zone.id}) is a keep-out zone: the robot "
                       "never enters it")
        if zone.kind is ZoneKind.RESTRICTED and role not in zone.roles:
            raise Stop("refuse", f"'{zone.name}' ({zone.id}) is a restricted zone open to "
                       f"roles {', '.join(zone.roles)}; the caller's role is {role!r}")
        inside = self.g.places_of(z.entries[0])
        if len(inside) == 1:
            return self.g.by_id[inside[0]]
        if not inside:
            raise Stop("refuse", f"there is no place to stand at in '{zone.name}'")
        raise self._ask(key, zone.name, "place in " + zone.name,
                        GroundResult("ambiguous", [self.g.by_id[p] for p in inside],
                                     phrase=zone.name), ("place",), ctx)

    def _destinations(self, i: int, slot: str, phrase: str, ctx: Ctx, role: str,
                      bindings: Mapping[str, str], into: bool = False) -> list[Entry]:
        return self._resolve(i, slot, phrase, ctx, bindings,
                             lambda k, p, at, pr: self._dest_one(ctx, k, p, at, pr, role, into))

    def _is_dock(self, e: Entry) -> bool:
        return e.type == "dock" or (e.type == "place" and any(
            d.place == e.id for d in self.registry.docks))

    def _navigate(self, i: int, phrase: str, ctx: Ctx, role: str,
                  bindings: Mapping[str, str], into: bool = False) -> list[Step]:
        dests = self._destinations(i, "destination", phrase, ctx, role, bindings, into)
        steps = []
        for e in dests:
            if self._is_dock(e):
                steps.append(Step.of("dock"))
            else:
                steps.append(Step.of("navigate_to", place=e.id))
        return self._emit(ctx, steps, "verb -> navigate_to")

    def _through(self, i: int, phrase: str, ctx: Ctx, role: str,
                 bindings: Mapping[str, str]) -> list[Step]:
        z = self.g.ground(phrase, ("zone",), allow_relation=False)
        if z.status == "one":
            self._zone_place(ctx, f"c{i}:destination", z, role)
        raise Stop("refuse", f"paths ('through/via {phrase}') are not in the plan language: "
                   "navigation chooses the path; name the destination")

    def _bring(self, i: int, o_phrase: str, d_phrase: str, ctx: Ctx, role: str,
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

    def _place(self, i: int, rest: str, ctx: Ctx, role: str,
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
        if o_part and o_part not in PRONOUNS:
            objs = self._objects(i, "object", o_part, ctx, bindings)
            if len(objs) == 1 and (ctx.held is None or ctx.held.id != objs[0].id):
                if back:
                    raise Stop("clarify", f"I am not holding the {objs[0].display}; where "
                               "should it go?", Clarification(f"c{i}:destination", "back",
                                                              ("place",)))
                if not d_phrase:
                    raise Stop("clarify", f"Where should I put the {objs[0].display}?",
                               Clarification(f"c{i}:destination", "", ("place", "dock",
                                                                       "asset", "object")))
                return self._bring(i, o_part, d_phrase, ctx, role, bindings)
            held = objs[0]
        else:
            held = ctx.held
        if back:
            if held is None:
                raise Stop("clarify", "What should I put back? I do not know what is held.",
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
                raise Stop("clarify", "Where should I put it down? Name a place.",
                           Clarification(key, "", ("place", "dock", "asset", "object")))
            dest = self._place_id(b[0]) or b[0].id
        return self._emit(ctx, [Step.of("navigate_to", place=dest), Step.of("place", place=dest)],
                          f"verb -> place at {dest}")

    def _valve(self, i: int, m: re.Match, ctx: Ctx, role: str,
               bindings: Mapping[str, str]) -> list[Step]:
        v, p1, p2, phrase = m["v"], m["p1"] or "", (m["p2"] or ""), m["a"]
        act = {"open": "open", "crack": "open", "close": "close", "shut": "close",
               "isolate": "close"}.get(v)
        part = (p1 + " " + p2).strip()
        if act is None or part:
            pa = action_word(part) if part else None
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
                raise Stop("clarify", f"Should I open or close the {names}?",
                           Clarification(key, f"{v} {phrase}", ()))
        return self._emit(ctx, [Step.of("operate_valve", asset=x.id, action=act)
                                for x in valves], f"verb '{(v + ' ' + part).strip()}' -> operate_valve "
                          f"action={act}")

    def _valves_one(self, ctx: Ctx, key: str, p: str, at: list[str] | None,
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
                raise Stop("refuse", f"'{p}' is not a valve ({kinds}); no skill can open or "
                           "close it (operate_valve works on valves only)")
            places = [pl for e in r2.entries for pl in self.g.places_of(e)]
            valves = self.g.pool(("asset",), ("valve",), places)
            if len(valves) == 1:
                return valves
            if not valves:
                raise Stop("refuse", f"there is no valve at {', '.join(e.display for e in r2.entries)}")
            raise self._ask(key, p, "valve", GroundResult("ambiguous", valves, phrase=p),
                            ("asset",), ctx)
        if any(w in ("door", "gate", "hatch", "cabinet", "window", "lid", "panel", "breaker",
                     "switch", "light", "lights", "power") for w in tokens(p)):
            raise Stop("refuse", f"no skill can operate '{p}' (operate_valve works on "
                       "valves only)")
        raise self._ask(key, p, "valve", r, ("asset",), ctx)

    def _patrol(self, i: int, phrase: str, ctx: Ctx, bindings: Mapping[str, str]) -> list[Step]:
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
                raise Stop("refuse", "this site has no patrol routes")
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


def action_word(t: str) -> str | None:
    """The valve action that the words of *t* name ("open" or "close"), or None."""
    t = t.strip()
    if re.search(r"\b(?:open|on|opened|up|fully\s+open)\b", t):
        return "open"
    if re.search(r"\b(?:close|closed|shut|off|isolate|down)\b", t):
        return "close"
    return None
