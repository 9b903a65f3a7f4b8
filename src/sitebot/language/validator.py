"""The plan validator and the canonical form, shared by the offline planner and the LLM
proposer: whatever proposes a plan, this decides whether it may run.

:func:`check_steps` checks a list of steps against the skill schema (closed skill set,
exact argument names), the registry (ids exist and have the right type and kind: read_gauge
needs a gauge, operate_valve a valve), the zones (no destination inside a keep-out zone; no
destination inside a restricted zone unless the caller's role is listed) and the caller's
role (operate_valve needs ``supervisor``) and what the robot can carry (a pick of an object
the registry measures wider, across its narrowest side, than ``max_object_width_m``, the
widest object the gripper closes on, is refused before the robot moves).  Destinations are
every place the plan makes the robot stand at: navigate_to/place arguments, the places of
assets and objects, every route waypoint, and the docks.

:func:`canonical` puts a valid plan into the brief's canonical form:
1. before read_gauge, inspect, operate_valve, pick (and place, as rule 2 shows): a
   navigate_to the asset's/object's place unless the robot is planned to be there already;
   a navigate_to to where the robot is already planned to be is dropped;
3. patrol and dock carry their own motion: no navigate_to is added before them, and after
   them the robot's place is unknown.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sitebot.language.types import HIGH_RISK_SKILLS, SKILLS, VALVE_ACTIONS, Step
from sitebot.site.registry import Asset, AssetKind, Place, Route, SiteObject, SiteRegistry, ZoneKind

__all__ = ["Verdict", "check_steps", "canonical", "zone_verdict", "grip_verdict",
           "steps_from_json",
           "SUPERVISOR_ROLE"]

SUPERVISOR_ROLE = "supervisor"


@dataclass(frozen=True)
class Verdict:
    """``ok``; ``refuse`` (a rule forbids it: zones, role); ``invalid`` (malformed: unknown
    skill, wrong arguments, unknown or wrong-kind ids).  ``reason`` says which step and
    why."""
    status: str
    reason: str = ""


def zone_verdict(reg: SiteRegistry, place_id: str, role: str) -> str | None:
    """Why the robot may not stand at *place_id* with *role*, or None."""
    p = reg.place(place_id)
    for z in reg.zones_at(p.x, p.y):
        if z.kind is ZoneKind.KEEP_OUT:
            return f"{p.name!r} ({p.id}) lies inside keep-out zone {z.name!r} ({z.id})"
        if z.kind is ZoneKind.RESTRICTED and role not in z.roles:
            return (f"{p.name!r} ({p.id}) lies inside restricted zone {z.name!r} ({z.id}), "
                    f"open to roles {', '.join(z.roles)}; the caller's role is {role!r}")
    return None


def _destinations(reg: SiteRegistry, s: Step) -> list[str]:
    a = s.arg
    if s.skill in ("navigate_to", "place"):
        return [a["place"]]
    if s.skill in ("read_gauge", "inspect", "operate_valve"):
        return [reg.asset(a["asset"]).place]
    if s.skill == "pick":
        return [reg.object(a["object"]).place]
    if s.skill == "patrol":
        return list(reg.route(a["route"]).waypoints)
    if s.skill == "dock":
        return [d.place for d in reg.docks]
    return []


def grip_verdict(obj: SiteObject, max_object_width_m: float | None) -> str | None:
    """Why the robot cannot hold *obj* (its registry size against the widest object the
    gripper takes), or None (it can, or either figure is unknown)."""
    narrow = obj.narrowest_m
    if narrow is None or max_object_width_m is None or narrow <= max_object_width_m:
        return None
    return (f"{obj.name!r} ({obj.id}) is {narrow * 1000:.0f} mm across its narrowest side; "
            f"this robot's gripper holds objects up to {max_object_width_m * 1000:.0f} mm "
            "wide: it cannot carry it (ask a person, or fetch it with other equipment)")


def check_steps(reg: SiteRegistry, steps: Sequence[Step], role: str,
                max_object_width_m: float | None = None) -> Verdict:
    """Validate *steps* (see the module docstring); the first problem decides.
    ``max_object_width_m``: the widest object the robot's gripper holds (None: unchecked)."""
    if not steps:
        return Verdict("invalid", "the plan has no steps")
    for i, s in enumerate(steps, 1):
        where = f"step {i} ({s.skill})"
        if s.skill not in SKILLS:
            return Verdict("invalid", f"{where}: unknown skill; skills: {', '.join(SKILLS)}")
        names = tuple(n for n, _ in s.args)
        if sorted(names) != sorted(SKILLS[s.skill]) or len(set(names)) != len(names):
            return Verdict("invalid", f"{where}: arguments {list(names)}, expected "
                           f"{list(SKILLS[s.skill])}")
        a = s.arg
        if any(not isinstance(v, str) or not v for v in a.values()):
            return Verdict("invalid", f"{where}: empty argument")
        e = {n: reg.get(v) for n, v in a.items() if n != "action"}
        if "place" in a and not isinstance(e["place"], Place):
            return Verdict("invalid", f"{where}: {a['place']!r} is not a place of site "
                           f"{reg.site!r}")
        if "asset" in a:
            if not isinstance(e["asset"], Asset):
                return Verdict("invalid", f"{where}: {a['asset']!r} is not an asset")
            kind = e["asset"].kind
            if s.skill == "read_gauge" and kind is not AssetKind.GAUGE:
                return Verdict("invalid", f"{where}: {a['asset']!r} is a {kind.value}, "
                               "not a gauge")
            if s.skill == "operate_valve" and kind is not AssetKind.VALVE:
                return Verdict("invalid", f"{where}: {a['asset']!r} is a {kind.value}, "
                               "not a valve")
        if "object" in a and not isinstance(e["object"], SiteObject):
            return Verdict("invalid", f"{where}: {a['object']!r} is not an object")
        if "route" in a and not isinstance(e["route"], Route):
            return Verdict("invalid", f"{where}: {a['route']!r} is not a route")
        if s.skill == "operate_valve" and a["action"] not in VALVE_ACTIONS:
            return Verdict("invalid", f"{where}: action {a['action']!r}, expected open or "
                           "close")
        if s.skill == "dock" and not reg.docks:
            return Verdict("refuse", f"{where}: site {reg.site!r} has no dock")
    for i, s in enumerate(steps, 1):
        why = (grip_verdict(reg.object(s.arg["object"]), max_object_width_m)
               if s.skill == "pick" else None)
        if why:
            return Verdict("refuse", f"step {i} ({s}): {why}")
    for i, s in enumerate(steps, 1):
        if s.skill in HIGH_RISK_SKILLS and role != SUPERVISOR_ROLE:
            return Verdict("refuse", f"step {i} ({s}) is high risk and needs role "
                           f"'{SUPERVISOR_ROLE}'; the caller's role is {role!r}")
    for i, s in enumerate(steps, 1):
        dests = _destinations(reg, s)
        if s.skill == "dock":
            why = [zone_verdict(reg, p, role) for p in dests]
            if all(why):
                return Verdict("refuse", f"step {i} (dock): {why[0]}")
            continue
        for p in dests:
            why = zone_verdict(reg, p, role)
            if why:
                return Verdict("refuse", f"step {i} ({s}): {why}")
    return Verdict("ok")


def _place_of_step(reg: SiteRegistry, s: Step) -> str | None:
    a = s.arg
    if s.skill in ("read_gauge", "inspect", "operate_valve"):
        return reg.asset(a["asset"]).place
    if s.skill == "pick":
        return reg.object(a["object"]).place
    if s.skill == "place":
        return a["place"]
    return None


def canonical(reg: SiteRegistry, steps: Iterable[Step]) -> tuple[list[Step], list[str]]:
    """The canonical form of valid *steps* and notes on what was inserted or dropped."""
    out: list[Step] = []
    notes: list[str] = []
    here: str | None = None
    for s in steps:
        if s.skill == "navigate_to":
            if s.arg["place"] == here:
                notes.append(f"dropped {s} (already there)")
                continue
            out.append(s)
            here = s.arg["place"]
            continue
        if s.skill in ("patrol", "dock"):
            out.append(s)
            here = None
            continue
        need = _place_of_step(reg, s)
        if need is not None and need != here:
            nav = Step.of("navigate_to", place=need)
            out.append(nav)
            notes.append(f"inserted {nav} before {s}")
            here = need
        out.append(s)
    return out, notes


def steps_from_json(data: Any) -> list[Step]:
    """Steps from ``[{"skill": ..., "args": {...}}, ...]``; raises ValueError naming the
    first malformed item."""
    if not isinstance(data, list):
        raise ValueError("'steps' must be a list")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("skill"), str):
            raise ValueError(f"steps[{i}] must be an object with a 'skill' string")
        args = item.get("args", {}) or {}
        if not isinstance(args, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in args.items()):
            raise ValueError(f"steps[{i}].args must map names to strings")
        out.append(Step.of(item["skill"], **args))
    return out
