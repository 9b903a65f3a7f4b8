"""Scenario files of ``sitebot regress``: schema, loading, variations (no ROS).

A scenario is one YAML file (the format is documented in ``docs/regress.md``). Loading
checks every key with :class:`sitebot.config.yamlio.Schema`, so an error names the file and the
key path (``faults[2].sensor``). ``variations`` (a mapping of key paths to lists of values)
expand one file into the cartesian product of runs, each checked on its own.
"""
from __future__ import annotations

import copy
import fnmatch
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sitebot.config.checks import SITE_EXTENT_M
from sitebot.config.yamlio import Schema, key_path, load_yaml
from sitebot.errors import ConfigError, SimulationError
from sitebot.sim.faults import FAULT_KINDS, parse_fault
from sitebot.site.registry import ID_PATTERN
from sitebot.types import Pose2D

__all__ = ["ScenarioError", "Scenario", "Mission", "OUTCOMES", "FaultSpec", "Criteria", "SafetyExpectation",
           "load_scenario", "load_scenarios", "collect_files", "expand", "MISSION_KINDS",
           "RUNNER_FAULTS", "LEVELS", "select"]


class ScenarioError(ConfigError):
    """A scenario file is invalid (names the file and key)."""


MISSION_KINDS = ("none", "goals", "instruction", "plan")
#: Most runs the variations of one scenario file may make.
MAX_VARIANTS = 256
#: nodes whose parameters a scenario may override with ``params`` (the simulator and the
#: supervisor have their own keys ``sim`` and ``supervisor``)
PARAM_NODES = ("localization", "navigation", "camera_perception", "spatial_perception",
               "arm_planner", "task_planner", "task_executor")
#: faults the runner applies itself (the others go to the simulator)
RUNNER_FAULTS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "kill_node": (("node",), ()),
    "estop": (("pressed",), ()),
    "reset": ((), ()),
    "set_mode": (("mode",), ()),
    "deadman": (("pressed",), ()),
}
LEVELS = {"NORMAL": 0, "REDUCED_SPEED": 1, "PROTECTIVE_STOP": 2, "EMERGENCY_STOP": 3}
#: executables each mission kind needs beyond the simulator and the supervisor
MISSION_NODES = {"none": (), "goals": ("navigation",),
                 "instruction": ("task_planner", "task_executor"), "plan": ("task_executor",)}

_TOP = ("scenario", "description", "tags", "world", "seed", "robot", "real_time_factor",
        "camera", "duration", "wall_limit", "requires", "mission", "actors", "bodies", "objects",
        "supervisor", "sim", "params", "faults", "criteria", "variations")
_MISSION = ("kind", "drive", "goals", "text", "role", "steps", "confirm")
_ACTOR = ("id", "path", "speed", "loop", "height", "radius", "start_delay", "yields")
_CRIT = ("mission", "time_limit", "min_separation", "no_keep_out", "no_collision",
         "max_speed", "max_speed_near_people", "slow_zones", "safety_events", "resets",
         "min_travel", "max_travel", "final_speed_below", "max_reading_error",
         "expect_refusal", "max_level", "step_attempts")
_EVENT = ("level", "cause", "after_fault", "after", "within", "forbid")


@dataclass(frozen=True)
class Mission:
    kind: str = "none"
    drive: tuple[tuple[float, float, float, bool], ...] = ()   # (t, v, w, deadman)
    goals: tuple[Any, ...] = ()             # place ids or (x, y, yaw)
    text: str = ""
    role: str = "operator"
    steps: tuple[Mapping[str, Any], ...] = ()
    #: "" = the ExecutePlan goal says confirmed (no question asked); "yes"/"no": the goal is
    #: unconfirmed and the runner answers the executor's confirmation request with this
    confirm: str = ""


#: mission outcomes the runner reports (criteria.mission accepts these and "any")
OUTCOMES = ("succeeded", "failed", "refused", "declined", "aborted", "canceled", "clarify",
            "skipped_ok")


@dataclass(frozen=True)
class FaultSpec:
    index: int
    kind: str
    at: float | None                 # sim time; None: triggered by ``when``
    when: Mapping[str, Any] | None
    params: Mapping[str, Any]
    runner: bool                     # applied by the runner (else by the simulator)

    def sim_fault(self) -> dict[str, Any]:
        """The mapping the simulator's fault parser takes."""
        return {"kind": self.kind, "at": self.at or 0.0, "label": f"fault{self.index}",
                **dict(self.params)}


@dataclass(frozen=True)
class SafetyExpectation:
    level: int
    cause: str = ""
    after_fault: int | None = None
    after: float | None = None
    within: float = math.inf
    forbid: bool = False


@dataclass(frozen=True)
class Criteria:
    mission: str = "any"
    time_limit: float | None = None
    min_separation: float | None = None
    no_keep_out: bool = True
    no_collision: bool = True
    max_speed: float | None = None
    max_speed_near_people: tuple[float, float] | None = None    # (distance, speed)
    slow_zones: bool = False
    safety_events: tuple[SafetyExpectation, ...] = ()
    resets: tuple[tuple[int, bool, str], ...] = ()               # (fault index, accepted, text)
    min_travel: float | None = None
    max_travel: float | None = None
    final_speed_below: float | None = None
    max_reading_error: float | None = None
    expect_refusal: bool | str = False      # a text: the refusal's reason must contain it
    max_level: int | None = None
    step_attempts: tuple[int, ...] | None = None                # attempts of each plan step


@dataclass(frozen=True)
class Scenario:
    id: str
    file: Path | None
    world: str
    description: str = ""
    tags: tuple[str, ...] = ()
    seed: int = 0
    start: Pose2D | None = None
    real_time_factor: float = 1.0
    camera: bool = False
    duration: float = 60.0
    wall_limit: float = 300.0
    requires: tuple[str, ...] = ()
    mission: Mission = field(default_factory=Mission)
    actors_replace: bool = False
    actors_add: tuple[Mapping[str, Any], ...] = ()
    actors_remove: tuple[str, ...] = ()
    bodies: tuple[Mapping[str, Any], ...] = ()
    #: registry object id -> {"offset": (dx, dy) [m], "turn": [deg]}: the object lies moved
    #: on its furniture (the world file's pose plus these)
    objects: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    supervisor: Mapping[str, Any] = field(default_factory=dict)
    sim: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)   # node -> overrides
    faults: tuple[FaultSpec, ...] = ()
    criteria: Criteria = field(default_factory=Criteria)
    variant: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""                    # id plus the variation values

    @property
    def needed_nodes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(MISSION_NODES[self.mission.kind] + self.requires))

    def as_dict(self) -> dict[str, Any]:
        """The resolved scenario (for run folders and reports)."""
        from dataclasses import asdict
        d = asdict(self)
        d["file"] = str(self.file) if self.file else None
        return d


# ---------------------------------------------------------------------------- parsing
class _Parser:
    def __init__(self, s: Schema) -> None:
        self.s = s

    def parse(self, root: Mapping[str, Any], variant: Mapping[str, Any]) -> Scenario:
        s = self.s
        s.keys(root, "", allowed=_TOP, required=("scenario", "world"))
        sid = s.string(root["scenario"], "scenario")
        if not ID_PATTERN.match(sid):
            s.fail(f"scenario id {sid!r} must be snake_case", "scenario")
        world = s.string(root["world"], "world")
        tags = s.string_list(root["tags"], "tags") if root.get("tags") is not None else ()
        seed = s.integer(root.get("seed", 0), "seed", min_value=0, max_value=2**31 - 1)
        start = None
        if root.get("robot") is not None:
            r = s.mapping(root["robot"], "robot")
            s.keys(r, "robot", allowed=("start",))
            if r.get("start") is not None:
                start = s.vector(r["start"], "robot.start", 3, names="[x, y, yaw]")
                s.bounded(start, "robot.start", ("x", "y", "yaw"))
        rtf = s.number(root.get("real_time_factor", 1.0), "real_time_factor", min_value=0.0,
                       max_value=50.0)
        camera = s.check(root.get("camera", False), bool, "camera")
        duration = s.number(root.get("duration", 60.0), "duration", min_value=0.0,
                            min_exclusive=True, max_value=3600.0)
        wall = s.number(root.get("wall_limit", 300.0), "wall_limit", min_value=0.0,
                        min_exclusive=True, max_value=7200.0)
        requires = s.string_list(root["requires"], "requires") if root.get("requires") else ()
        mission = self.mission(root.get("mission"))
        a_rep, a_add, a_rm = self.actors(root.get("actors"))
        bodies = self.bodies(root.get("bodies"))
        objects = self.objects(root.get("objects"))
        sup = dict(s.mapping(root["supervisor"], "supervisor")) if root.get("supervisor") else {}
        sim = dict(s.mapping(root["sim"], "sim")) if root.get("sim") else {}
        for k in ("world", "seed", "fault_schedule", "real_time_factor", "camera_enabled"):
            if k in sim:
                s.fail(f"simulator parameter {k!r} is set by the runner; use the scenario's "
                       "own key", key_path("sim", k))
        for k in ("site", "initial_pose", "audit_log"):
            if k in sup:
                s.fail(f"supervisor parameter {k!r} is set by the runner",
                       key_path("supervisor", k))
        params: dict[str, dict[str, Any]] = {}
        if root.get("params"):
            pm = s.mapping(root["params"], "params")
            for node, over in pm.items():
                w = key_path("params", node)
                if node not in PARAM_NODES:
                    s.fail(f"unknown node {node!r}; accepted: {', '.join(PARAM_NODES)} (the "
                           "simulator and the supervisor: keys 'sim' and 'supervisor')", w)
                om = dict(s.mapping(over, w))
                for k, v in om.items():
                    if not isinstance(v, (bool, int, float, str, list)):
                        s.fail(f"parameter {k!r}: a number, string, boolean or list is "
                               f"needed, got {type(v).__name__}", key_path(w, k))
                params[node] = om
        stack = {"none": (), "goals": ("localization", "navigation")}.get(
            mission.kind, PARAM_NODES)
        for node in params:
            if node not in stack:
                s.fail(f"node {node!r} does not run in a mission of kind {mission.kind!r} "
                       f"(its nodes: {', '.join(stack) or 'simulator and supervisor only'})",
                       key_path("params", node))
        faults = self.faults(root.get("faults"))
        crit = self.criteria(root.get("criteria"), len(faults), faults)
        if mission.kind == "none" and not mission.drive and crit.mission not in ("any",):
            s.fail("a mission of kind 'none' has no outcome; use mission: any",
                   "criteria.mission")
        name = sid + ("[" + ",".join(f"{k}={_fmt(v)}" for k, v in variant.items()) + "]"
                      if variant else "")
        return Scenario(id=sid, file=s.file, world=world,
                        description=s.optional(root, "description", str, "", default=""),
                        tags=tags, seed=seed, start=start, real_time_factor=rtf, camera=camera,
                        duration=duration, wall_limit=wall, requires=requires, mission=mission,
                        actors_replace=a_rep, actors_add=a_add, actors_remove=a_rm,
                        bodies=bodies, objects=objects, supervisor=sup, sim=sim, params=params, faults=faults,
                        criteria=crit,
                        variant=dict(variant), name=name)

    def mission(self, data: Any) -> Mission:
        s = self.s
        if data is None:
            return Mission()
        m = s.mapping(data, "mission")
        s.keys(m, "mission", allowed=_MISSION, required=("kind",))
        kind = s.choice(m["kind"], MISSION_KINDS, "mission.kind", what="mission kind")
        allowed = {"none": ("drive",), "goals": ("goals",),
                   "instruction": ("text", "role", "confirm"),
                   "plan": ("steps", "role", "confirm")}[kind]
        for k in m:
            if k != "kind" and k not in allowed:
                s.fail(f"key {k!r} does not apply to a mission of kind {kind!r} (accepted: "
                       f"{', '.join(allowed)})", key_path("mission", k))
        drive = []
        for i, d in enumerate(s.seq(m.get("drive", []) or [], "mission.drive")):
            w = key_path("mission.drive", i)
            if isinstance(d, list):
                v = s.vector(d, w, (3, 4), names="[t, v, w] or [t, v, w, deadman(0/1)]")
                drive.append((v[0], v[1], v[2], bool(v[3]) if len(v) == 4 else False))
            else:
                dm = s.mapping(d, w)
                s.keys(dm, w, allowed=("t", "v", "w", "deadman"), required=("t",))
                drive.append((s.number(dm["t"], key_path(w, "t"), min_value=0.0),
                              s.number(dm.get("v", 0.0), key_path(w, "v"), min_value=-5.0,
                                       max_value=5.0),
                              s.number(dm.get("w", 0.0), key_path(w, "w"), min_value=-10.0,
                                       max_value=10.0),
                              s.check(dm.get("deadman", False), bool, key_path(w, "deadman"))))
            if i and drive[-1][0] < drive[-2][0]:
                s.fail("drive times must not decrease", key_path(w, 0))
        goals = []
        for i, g in enumerate(s.seq(m.get("goals", []) or [], "mission.goals")):
            w = key_path("mission.goals", i)
            if isinstance(g, str):
                goals.append(s.string(g, w))
            else:
                goals.append(s.vector(g, w, 3, names="[x, y, yaw] or a place id"))
                s.bounded(goals[-1], w, ("x", "y", "yaw"))
        if kind == "goals" and not goals:
            s.fail("a goals mission needs at least one goal", "mission.goals")
        text = s.optional(m, "text", str, "mission", default="")
        if kind == "instruction" and not text.strip():
            s.fail("an instruction mission needs its text", "mission.text")
        steps = []
        for i, st in enumerate(s.seq(m.get("steps", []) or [], "mission.steps")):
            w = key_path("mission.steps", i)
            sm = s.mapping(st, w)
            s.keys(sm, w, allowed=("skill", "args"), required=("skill",))
            s.string(sm["skill"], key_path(w, "skill"))
            if sm.get("args") is not None:
                s.mapping(sm["args"], key_path(w, "args"))
            steps.append(dict(sm))
        if kind == "plan" and not steps:
            s.fail("a plan mission needs its steps", "mission.steps")
        confirm = ""
        if m.get("confirm") is not None:
            v = m["confirm"]
            if isinstance(v, bool):          # YAML 1.1: an unquoted yes/no is a boolean
                s.fail("quote the answer: confirm: \"yes\" or \"no\"", "mission.confirm")
            confirm = s.choice(v, ("yes", "no"), "mission.confirm", what="confirmation answer")
        return Mission(kind=kind, drive=tuple(drive), goals=tuple(goals), text=text,
                       role=s.optional(m, "role", str, "mission", default="operator"),
                       steps=tuple(steps), confirm=confirm)

    def actors(self, data: Any) -> tuple[bool, tuple, tuple]:
        s = self.s
        if data is None:
            return False, (), ()
        a = s.mapping(data, "actors")
        s.keys(a, "actors", allowed=("replace", "add", "remove"))
        rep = s.optional(a, "replace", bool, "actors", default=False)
        add = []
        for i, act in enumerate(s.seq(a.get("add", []) or [], "actors.add")):
            w = key_path("actors.add", i)
            am = s.mapping(act, w)
            s.keys(am, w, allowed=_ACTOR, required=("id", "path", "speed"))
            pts = s.seq(am["path"], key_path(w, "path"), min_len=1)
            for j, p in enumerate(pts):
                pj = key_path(key_path(w, "path"), j)
                s.bounded(s.vector(p, pj, 2, names="[x, y]"), pj, ("x", "y"))
            s.number(am["speed"], key_path(w, "speed"), min_value=0.0, min_exclusive=True,
                     max_value=5.0)
            add.append(dict(am))
        rm = s.string_list(a["remove"], "actors.remove") if a.get("remove") else ()
        return rep, tuple(add), rm

    def bodies(self, data: Any) -> tuple:
        s = self.s
        out = []
        for i, b in enumerate(s.seq(data or [], "bodies")):
            w = key_path("bodies", i)
            bm = s.mapping(b, w)
            s.keys(bm, w, allowed=("id", "pose", "size"), required=("id", "pose", "size"))
            try:
                parse_fault({"kind": "spawn_body", **bm}, w)
            except SimulationError as e:
                s.fail(str(e).split(": ", 1)[-1], w)
            out.append(dict(bm))
        return tuple(out)

    def objects(self, data: Any) -> dict[str, dict[str, Any]]:
        s = self.s
        out: dict[str, dict[str, Any]] = {}
        if data is None:
            return out
        for oid, mv in s.mapping(data, "objects").items():
            w = key_path("objects", oid)
            m = s.mapping(mv, w)
            s.keys(m, w, allowed=("offset", "turn"))
            off = s.vector(m.get("offset", [0.0, 0.0]), key_path(w, "offset"), 2,
                           names="[dx, dy]")
            if math.hypot(*off) > 1.0:
                s.fail("an object is moved at most 1 m on its furniture",
                       key_path(w, "offset"))
            turn = s.number(m.get("turn", 0.0), key_path(w, "turn"), min_value=-180.0,
                            max_value=180.0)
            out[str(oid)] = {"offset": (float(off[0]), float(off[1])), "turn": float(turn)}
        return out

    def faults(self, data: Any) -> tuple[FaultSpec, ...]:
        s = self.s
        out = []
        for i, f in enumerate(s.seq(data or [], "faults")):
            w = key_path("faults", i)
            fm = dict(s.mapping(f, w))
            kind = fm.get("kind")
            if kind not in FAULT_KINDS and kind not in RUNNER_FAULTS:
                s.fail(f"unknown fault kind {kind!r}; accepted: "
                       + ", ".join(list(FAULT_KINDS) + list(RUNNER_FAULTS)), key_path(w, "kind"))
            if ("at" in fm) == ("when" in fm):
                s.fail("give exactly one of 'at' (sim time [s]) or 'when' (a condition)", w)
            at = s.number(fm["at"], key_path(w, "at"), min_value=0.0) if "at" in fm else None
            when = self.when(fm["when"], key_path(w, "when")) if "when" in fm else None
            body = {k: v for k, v in fm.items() if k not in ("at", "when")}
            if kind in RUNNER_FAULTS:
                req, opt = RUNNER_FAULTS[kind]
                s.keys(body, w, allowed=("kind",) + req + opt, required=req)
                if kind in ("estop", "deadman"):
                    s.check(body["pressed"], bool, key_path(w, "pressed"))
                if kind == "set_mode":
                    s.choice(body["mode"], ("automatic", "manual"), key_path(w, "mode"),
                             what="mode")
                if kind == "kill_node":
                    s.string(body["node"], key_path(w, "node"))
                params = {k: v for k, v in body.items() if k != "kind"}
                out.append(FaultSpec(i, kind, at, when, params, True))
            else:
                try:
                    parsed = parse_fault(body, w)
                except SimulationError as e:
                    msg = str(e)
                    m = re.match(r"fault (\S+): (.*)", msg, re.S)
                    s.fail(m.group(2) if m else msg, m.group(1) if m else w)
                out.append(FaultSpec(i, kind, at, when, dict(parsed.params), False))
        return tuple(out)

    def when(self, data: Any, where: str) -> Mapping[str, Any]:
        s = self.s
        m = s.mapping(data, where)
        s.keys(m, where, allowed=("level", "robot_near", "after_fault", "task_status",
                                  "delay"))
        if not any(k in m for k in ("level", "robot_near", "after_fault", "task_status")):
            s.fail("a condition needs 'level', 'robot_near', 'after_fault' or 'task_status'",
                   where)
        out: dict[str, Any] = {}
        if "level" in m:
            out["level"] = LEVELS[s.choice(m["level"], LEVELS, key_path(where, "level"),
                                           what="safety level")]
        if "robot_near" in m:
            rw = key_path(where, "robot_near")
            out["robot_near"] = s.vector(m["robot_near"], rw, 3, names="[x, y, radius]")
            s.bounded(out["robot_near"][:2], rw, ("x", "y"))
            s.number(out["robot_near"][2], key_path(rw, 2), min_value=0.0,
                     max_value=SITE_EXTENT_M)
        if "after_fault" in m:
            out["after_fault"] = s.integer(m["after_fault"], key_path(where, "after_fault"),
                                           min_value=0)
        if "task_status" in m:
            # text the executor's task/status 'state' must contain
            out["task_status"] = s.string(m["task_status"], key_path(where, "task_status"))
        out["delay"] = s.number(m.get("delay", 0.0), key_path(where, "delay"), min_value=0.0)
        return out

    def criteria(self, data: Any, n_faults: int, faults: Sequence[FaultSpec]) -> Criteria:
        s = self.s
        if data is None:
            return Criteria()
        c = s.mapping(data, "criteria")
        s.keys(c, "criteria", allowed=_CRIT)

        def num(k: str, lo: float | None = 0.0) -> float | None:
            return None if c.get(k) is None else s.number(c[k], key_path("criteria", k),
                                                          min_value=lo)
        mission = s.choice(c.get("mission", "any"), ("any",) + OUTCOMES,
                           "criteria.mission", what="mission outcome") \
            if c.get("mission") is not None else "any"
        attempts = None
        if c.get("step_attempts") is not None:
            w = "criteria.step_attempts"
            attempts = tuple(s.integer(v, key_path(w, i), min_value=0, max_value=100)
                             for i, v in enumerate(s.seq(c["step_attempts"], w, min_len=1)))
        near = None
        if c.get("max_speed_near_people") is not None:
            w = "criteria.max_speed_near_people"
            nm = s.mapping(c["max_speed_near_people"], w)
            s.keys(nm, w, allowed=("distance", "speed"), required=("distance", "speed"))
            near = (s.number(nm["distance"], key_path(w, "distance"), min_value=0.0),
                    s.number(nm["speed"], key_path(w, "speed"), min_value=0.0))
        events = []
        for i, e in enumerate(s.seq(c.get("safety_events") or [], "criteria.safety_events")):
            w = key_path("criteria.safety_events", i)
            em = s.mapping(e, w)
            s.keys(em, w, allowed=_EVENT, required=("level",))
            lvl = LEVELS[s.choice(em["level"], LEVELS, key_path(w, "level"), what="safety level")]
            af = None
            if em.get("after_fault") is not None:
                af = s.integer(em["after_fault"], key_path(w, "after_fault"), min_value=0)
                if af >= n_faults:
                    s.fail(f"no fault {af} (the scenario has {n_faults})",
                           key_path(w, "after_fault"))
            events.append(SafetyExpectation(
                lvl, s.optional(em, "cause", str, w, default=""), af,
                None if em.get("after") is None else s.number(em["after"], key_path(w, "after"),
                                                              min_value=0.0),
                math.inf if em.get("within") is None else s.number(
                    em["within"], key_path(w, "within"), min_value=0.0),
                s.optional(em, "forbid", bool, w, default=False)))
        resets = []
        for i, r in enumerate(s.seq(c.get("resets") or [], "criteria.resets")):
            w = key_path("criteria.resets", i)
            rm = s.mapping(r, w)
            s.keys(rm, w, allowed=("fault", "accepted", "reason"), required=("fault", "accepted"))
            fi = s.integer(rm["fault"], key_path(w, "fault"), min_value=0)
            if fi >= n_faults or faults[fi].kind != "reset":
                s.fail(f"fault {fi} is not a 'reset' fault", key_path(w, "fault"))
            resets.append((fi, s.check(rm["accepted"], bool, key_path(w, "accepted")),
                           s.optional(rm, "reason", str, w, default="")))
        max_level = None
        if c.get("max_level") is not None:
            max_level = LEVELS[s.choice(c["max_level"], LEVELS, "criteria.max_level",
                                        what="safety level")]
        return Criteria(
            mission=mission, time_limit=num("time_limit"), min_separation=num("min_separation",
                                                                              None),
            no_keep_out=s.optional(c, "no_keep_out", bool, "criteria", default=True),
            no_collision=s.optional(c, "no_collision", bool, "criteria", default=True),
            max_speed=num("max_speed"), max_speed_near_people=near,
            slow_zones=s.optional(c, "slow_zones", bool, "criteria", default=False),
            safety_events=tuple(events), resets=tuple(resets), min_travel=num("min_travel"),
            max_travel=num("max_travel"), final_speed_below=num("final_speed_below"),
            max_reading_error=num("max_reading_error"),
            expect_refusal=s.optional(c, "expect_refusal", (bool, str), "criteria",
                                      default=False),
            max_level=max_level, step_attempts=attempts)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------------- variations
_PATH_RX = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _set_path(data: Any, path: str, value: Any, s: Schema, where: str) -> None:
    parts: list[str | int] = []
    for name, idx in _PATH_RX.findall(path):
        parts.append(int(idx) if idx else name)
    if not parts:
        s.fail(f"empty key path {path!r}", where)
    cur = data
    for i, p in enumerate(parts[:-1]):
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            s.fail(f"key path {path!r}: {'.'.join(map(str, parts[:i + 1]))} does not exist "
                   "in the scenario", where)
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(cur, list) or last >= len(cur):
            s.fail(f"key path {path!r}: index {last} does not exist", where)
    elif not isinstance(cur, dict):
        s.fail(f"key path {path!r}: {cur!r} is not a mapping", where)
    cur[last] = value


def expand(data: Mapping[str, Any], s: Schema) -> list[tuple[dict, dict]]:
    """(document, variant values) for each combination of ``variations``."""
    var = data.get("variations")
    if var is None:
        return [({k: v for k, v in data.items()}, {})]
    vm = s.mapping(var, "variations")
    keys = list(vm)
    lists = []
    runs = 1
    for k in keys:
        vals = s.seq(vm[k], key_path("variations", k), min_len=1)
        lists.append(vals)
        runs *= len(vals)
        if runs > MAX_VARIANTS:
            s.fail(f"the variations make more than {MAX_VARIANTS} runs (the product of the "
                   "numbers of values)", key_path("variations", k))
    out = []
    for combo in itertools.product(*lists):
        doc = copy.deepcopy({k: v for k, v in data.items() if k != "variations"})
        variant = {}
        for k, v in zip(keys, combo):
            _set_path(doc, k, copy.deepcopy(v), s, key_path("variations", k))
            variant[k] = v
        out.append((doc, variant))
    return out


def load_scenario(path: str | Path) -> list[Scenario]:
    """Every run of one scenario file (one per variation)."""
    p = Path(path)
    data = load_yaml(p, error=ScenarioError)
    s = Schema(p, ScenarioError)
    if data is None:
        s.fail("the file is empty; expected a mapping with 'scenario' and 'world'", "")
    root = s.mapping(data, "")
    if "random" in root:
        s.fail("this is a scenario template (it draws its runs from 'random'): run it with "
               "`sitebot campaign` (docs/campaigns.md)", "random")
    out = []
    for doc, variant in expand(root, s):
        out.append(_Parser(s).parse(doc, variant))
    return out


def collect_files(targets: Iterable[str | Path]) -> list[Path]:
    """Scenario files from files and directories (``*.yaml`` below a directory)."""
    files: list[Path] = []
    for t in targets:
        p = Path(t)
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.y*ml") if q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise ScenarioError("no such file or directory", file=p)
    return files


def load_scenarios(targets: Iterable[str | Path]) -> list[Scenario]:
    out: list[Scenario] = []
    for f in collect_files(targets):
        out += load_scenario(f)
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ScenarioError(f"scenario names repeated across files: {', '.join(dup)}")
    return out


def select(scenarios: Sequence[Scenario], pattern: str | None = None,
           tags: Sequence[str] = ()) -> list[Scenario]:
    """Scenarios whose name matches the glob ``pattern`` (or contains it) and that carry
    every tag in ``tags``."""
    out = []
    for sc in scenarios:
        if pattern and not (fnmatch.fnmatch(sc.name, pattern) or pattern in sc.name):
            continue
        if any(t not in sc.tags for t in tags):
            continue
        out.append(sc)
    return out
