"""Metrics of one run and its verdict against the scenario's criteria (no ROS).

Inputs are plain records (``driver.decode_records``): ground truth ``truth`` as
(t, x, y, yaw, speed), ``people`` as (t, [(x, y), ..]) in the world's actor order,
``safety`` as (t, level, reasons, closest, required, scale, mode, latched), commands
(t, v, w), simulator fault events and the runner's events. Everything is judged from
ground truth (evaluation only; the stack never sees it).

Geometry: the robot's footprint is the supervisor's circle (``footprint_radius_m``, 0.4 m)
for separation to people and keep-out entry; contact with static structure is judged with
the chassis half-length (0.30 m) from the base centre (the 0.60 x 0.46 m chassis: a centre
closer than that to an obstacle's footprint means the chassis touches it when facing it).
The separation to people is also reported by who closed the gap: its minimum over the
samples where the robot moved toward the person (faster than ``APPROACH_MPS``), and over the
others (a person walking into a robot at rest, or one moving away).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from sitebot.regress.scenario import LEVELS, Scenario
from sitebot.sim.world import WorldSpec
from sitebot.site.geometry import point_in_polygon
from sitebot.site.registry import ZoneKind

__all__ = ["compute_metrics", "judge", "Check", "FOOTPRINT_RADIUS_M", "CONTACT_RADIUS_M",
           "SETTLE_S", "LEVEL_NAMES", "timeline"]

FOOTPRINT_RADIUS_M = 0.4
CONTACT_RADIUS_M = 0.30
#: the supervisor reports stale sources for the first instants after start: level checks
#: ignore the first second of sim time
SETTLE_S = 1.0
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
#: StepOutcome.outcome values (sitebot_interfaces/msg/StepOutcome.msg)
_OUTCOME_NAMES = {0: "pending", 1: "succeeded", 2: "failed", 3: "skipped", 4: "declined",
                  5: "canceled"}
_JUMP_M = 0.5          # a ground-truth step longer than this is a teleport, not travel
#: the robot closes in on a person when its speed toward them is above this [m/s]; a contact
#: below it is a person walking into a robot at rest or moving away (reported apart)
APPROACH_MPS = 0.05


@dataclass
class Check:
    name: str
    ok: bool
    value: Any
    limit: Any
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "value": _clean(self.value),
                "limit": _clean(self.limit), "detail": self.detail}


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 4)
    return v


def _seg_dist(px: float, py: float, a: Sequence[float], b: Sequence[float]) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    L = dx * dx + dy * dy
    u = 0.0 if L == 0 else max(0.0, min(1.0, ((px - a[0]) * dx + (py - a[1]) * dy) / L))
    return math.hypot(px - a[0] - u * dx, py - a[1] - u * dy)


def polygon_signed_distance(x: float, y: float, poly: Sequence[Sequence[float]]) -> float:
    """Distance [m] from (x, y) to the polygon's boundary; negative inside."""
    d = min(_seg_dist(x, y, poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly)))
    return -d if point_in_polygon(x, y, poly) else d


def _box_distance(x: float, y: float, box: Mapping[str, Any]) -> float:
    bx, by, yaw = box["pose"]
    sx, sy = box["size"][0] / 2, box["size"][1] / 2
    c, s = math.cos(-yaw), math.sin(-yaw)
    lx, ly = c * (x - bx) - s * (y - by), s * (x - bx) + c * (y - by)
    dx, dy = abs(lx) - sx, abs(ly) - sy
    if dx <= 0 and dy <= 0:
        return max(dx, dy)
    return math.hypot(max(dx, 0.0), max(dy, 0.0))


def timeline(safety: Sequence[tuple]) -> list[dict[str, Any]]:
    """Safety states merged into segments of equal level and reasons."""
    segs: list[dict[str, Any]] = []
    for rec in safety:
        t, level, reasons = rec[0], rec[1], sorted(rec[2])
        if segs and segs[-1]["level"] == level and segs[-1]["reasons"] == reasons:
            segs[-1]["t1"] = t
        else:
            if segs:
                segs[-1]["t1"] = t
            segs.append({"t0": t, "t1": t, "level": level, "reasons": reasons})
    return segs


def _body_windows(sc: Scenario, rec: Mapping[str, Any]) -> list[tuple[dict, float, float]]:
    """(box, t_from, t_to) of every spawned body: from its spawn to its removal, as the
    simulator reported them on ``sim/fault_events``; a body without events (none recorded)
    counts as present throughout."""
    boxes = list(sc.bodies) + [dict(f.params) for f in sc.faults if f.kind == "spawn_body"]
    spawned: dict[str, float] = {}
    removed: dict[str, float] = {}
    for ev in rec.get("sim_faults", []):
        if ev.get("phase") != "start" or "id" not in ev:
            continue
        t = float(ev.get("t") or 0.0)
        if ev.get("kind") == "spawn_body":
            spawned.setdefault(str(ev["id"]), t)
        elif ev.get("kind") == "remove_body":
            removed.setdefault(str(ev["id"]), t)
    have_events = bool(rec.get("sim_faults"))
    out = []
    for b in boxes:
        bid = str(b.get("id"))
        if have_events and bid not in spawned:
            continue                                   # never appeared
        t0 = spawned.get(bid, 0.0) if have_events else 0.0
        t1 = removed.get(bid, math.inf)
        out.append((b, t0, t1))
    return out


def _forbidden_zones(world: WorldSpec, role: str) -> list:
    out = []
    for z in world.registry.zones:
        if z.kind is ZoneKind.KEEP_OUT or (z.kind is ZoneKind.RESTRICTED and role not in z.roles):
            out.append(z)
    return out


def compute_metrics(sc: Scenario, world: WorldSpec, rec: Mapping[str, Any],
                    run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's metrics (JSON-ready), over the scenario's ``duration``: a run that
    overshoots it under load (the stop arrives some steps late) measures the same."""
    truth = [r for r in rec.get("truth", []) if r[0] <= sc.duration + 1e-6]
    people = {round(t, 4): ps for t, ps in rec.get("people", [])}
    radii = [a.radius_m for a in world.actors]
    role = str(sc.supervisor.get("role", ""))
    forbidden = _forbidden_zones(world, role)
    slow = [z for z in world.registry.zones if z.kind is ZoneKind.SLOW]
    boxes = _body_windows(sc, rec)
    near_d = sc.criteria.max_speed_near_people[0] if sc.criteria.max_speed_near_people else 1.5
    m: dict[str, Any] = {}
    path = 0.0
    min_sep, t_min_sep = math.inf, math.nan
    min_by = {"moving": (math.inf, math.nan), "still": (math.inf, math.nan)}
    max_near = 0.0
    ko_clear, t_ko = math.inf, math.nan
    static_clear, t_static = math.inf, math.nan
    slow_excess = -math.inf
    series = []                 # (t, speed, separation) for the report
    x0 = y0 = None
    travel = 0.0
    # distance to static structure for every sample at once (world.clearance per sample is
    # ~1.5 ms: seconds per run)
    if truth:
        xs = np.array([r[1] for r in truth])
        ys = np.array([r[2] for r in truth])
        clear = np.full(len(truth), np.inf)
        for f in world.obstacle_footprints():
            clear = np.minimum(clear, f.distance_grid(xs, ys))
    for i, (t, x, y, yaw, v) in enumerate(truth):
        if i:
            step = math.hypot(x - truth[i - 1][1], y - truth[i - 1][2])
            if step < _JUMP_M:
                path += step
        if x0 is None:
            x0, y0 = x, y
        travel = max(travel, math.hypot(x - x0, y - y0))
        sep = math.inf
        ps = people.get(round(t, 4))
        if ps:
            for j, (px, py) in enumerate(ps):
                r = radii[j] if j < len(radii) else 0.25
                d = math.hypot(px - x, py - y) - FOOTPRINT_RADIUS_M - r
                # who closes the gap: the robot's speed toward this person
                toward = v * math.cos(math.atan2(py - y, px - x) - yaw)
                k = "moving" if toward > APPROACH_MPS else "still"
                if d < min_by[k][0]:
                    min_by[k] = (d, t)
                sep = min(sep, d)
            if sep < min_sep:
                min_sep, t_min_sep = sep, t
            if sep < near_d:
                max_near = max(max_near, v)
        series.append((t, v, sep))
        for z in forbidden:
            d = polygon_signed_distance(x, y, z.polygon) - FOOTPRINT_RADIUS_M
            if d < ko_clear:
                ko_clear, t_ko = d, t
        c = float(clear[i])
        for b, b0, b1 in boxes:
            if b0 - 1e-6 <= t < b1:
                c = min(c, _box_distance(x, y, b))
        if c - CONTACT_RADIUS_M < static_clear:
            static_clear, t_static = c - CONTACT_RADIUS_M, t
        for z in slow:
            if z.max_speed_mps is not None and point_in_polygon(x, y, z.polygon):
                slow_excess = max(slow_excess, v - z.max_speed_mps)
    m["samples"] = len(truth)
    m["path_length_m"] = round(path, 3)
    m["travel_m"] = round(travel, 3)
    m["max_speed_mps"] = round(max((r[4] for r in truth), default=0.0), 3)
    m["final_speed_mps"] = round(truth[-1][4], 4) if truth else None
    m["min_separation_m"] = None if not math.isfinite(min_sep) else round(min_sep, 3)
    m["min_separation_t"] = None if not math.isfinite(t_min_sep) else round(t_min_sep, 2)
    for k, (d, t) in min_by.items():    # separation while the robot closed in, and not
        m[f"min_separation_robot_{k}_m"] = round(d, 3) if math.isfinite(d) else None
        m[f"min_separation_robot_{k}_t"] = round(t, 2) if math.isfinite(d) else None
    m["max_speed_near_people_mps"] = round(max_near, 3)
    m["near_people_distance_m"] = near_d
    m["keep_out_clearance_m"] = None if not math.isfinite(ko_clear) else round(ko_clear, 3)
    m["keep_out_clearance_t"] = None if not math.isfinite(t_ko) else round(t_ko, 2)
    m["static_clearance_m"] = None if not math.isfinite(static_clear) else round(static_clear, 3)
    m["static_clearance_t"] = None if not math.isfinite(t_static) else round(t_static, 2)
    m["slow_zone_excess_mps"] = None if not math.isfinite(slow_excess) else round(slow_excess, 3)
    safety = rec.get("safety", [])
    segs = timeline(safety)
    m["safety_timeline"] = [{"t0": round(s["t0"], 3), "t1": round(s["t1"], 3),
                             "level": LEVEL_NAMES.get(s["level"], str(s["level"])),
                             "reasons": s["reasons"]} for s in segs]
    dur = {}
    for s in segs:
        name = LEVEL_NAMES.get(s["level"], str(s["level"]))
        dur[name] = round(dur.get(name, 0.0) + s["t1"] - s["t0"], 3)
    m["time_in_level_s"] = dur
    settled = [r for r in safety if r[0] >= SETTLE_S]
    m["max_level"] = LEVEL_NAMES.get(max((r[1] for r in settled), default=0), "NORMAL")
    m["protective_stops"] = sum(1 for a, b in zip(segs, segs[1:])
                                if b["level"] >= 2 > a["level"] and b["t0"] >= SETTLE_S)
    m["emergency_stops"] = sum(1 for a, b in zip(segs, segs[1:])
                               if b["level"] == 3 > a["level"])
    causes: dict[str, float] = {}
    for r in settled:
        for c in r[2]:
            causes.setdefault(c, round(r[0], 3))
    m["first_cause_time_s"] = causes
    m["sim_time_s"] = round(float(run.get("sim_time_s", 0.0)), 2)
    m["wall_time_s"] = round(float(run.get("wall_s", 0.0)), 2)
    rw = float(run.get("run_wall_s", 0.0))
    m["real_time_factor"] = round(m["sim_time_s"] / rw, 2) if rw > 0 else None
    m["startup_wall_s"] = _clean(float(run.get("startup_wall_s", math.nan)))
    mission = run.get("mission", {})
    m["mission_outcome"] = mission.get("outcome", "none")
    done_t = next((e["t"] for e in run.get("events", []) if e.get("kind") == "mission_done"),
                  None)
    m["mission_time_s"] = done_t
    m["fault_times_s"] = {str(k): round(v, 3) for k, v in run.get("fault_time", {}).items()}
    m["resets"] = {str(k): v for k, v in run.get("resets", {}).items()}
    m["reading_errors"] = _reading_errors(world, mission.get("details", {}))
    steps = (mission.get("details", {}).get("result") or {}).get("steps", [])
    m["step_attempts"] = [int(st.get("attempts", 0)) for st in steps]
    m["step_outcomes"] = [_OUTCOME_NAMES.get(st.get("outcome"), str(st.get("outcome")))
                          for st in steps]
    m["commands_in"] = len(rec.get("cmd_in", []))
    m["commands_out"] = len(rec.get("cmd_out", []))
    m["_series"] = series
    return m


def _reading_errors(world: WorldSpec, details: Mapping[str, Any]) -> list[dict]:
    out = []
    for st in (details.get("result") or {}).get("steps", []):
        for rd in st.get("readings", []) or []:
            try:
                truth = world.gauge(rd["asset_id"]).value
                out.append({"asset": rd["asset_id"], "value": rd["value"], "truth": truth,
                            "error": abs(float(rd["value"]) - truth)})
            except (KeyError, TypeError, ValueError):
                continue
    return out


def judge(sc: Scenario, m: Mapping[str, Any], run: Mapping[str, Any],
          rec: Mapping[str, Any]) -> list[Check]:
    """The scenario's criteria as checks."""
    c = sc.criteria
    checks: list[Check] = []
    if run.get("aborted"):
        checks.append(Check("run_completed", False, run["aborted"], "completed"))
    unexpected = [n for n in run.get("failed", []) if n not in run.get("killed", [])]
    if unexpected:
        checks.append(Check("processes", False, unexpected, "none died",
                            "processes died that no fault killed"))
    if m["samples"] == 0:
        checks.append(Check("ground_truth", False, 0, "> 0 samples",
                            "no ground truth recorded: the run cannot be judged"))
    if c.mission != "any":
        checks.append(Check("mission", m["mission_outcome"] == c.mission,
                            m["mission_outcome"], c.mission))
    if c.expect_refusal:
        why = next((str(e.get("reason", "")) for e in run.get("events", [])
                    if e.get("kind") == "mission_done"), "")
        want = c.expect_refusal if isinstance(c.expect_refusal, str) else ""
        checks.append(Check("refusal", m["mission_outcome"] == "refused" and want in why,
                            m["mission_outcome"], "refused" + (f" ({want!r})" if want else ""),
                            why))
    if c.time_limit is not None:
        t = m["mission_time_s"]
        checks.append(Check("time_limit", t is not None and t <= c.time_limit, t, c.time_limit,
                            "sim time at which the mission ended"))
    if c.min_separation is not None:
        v = m["min_separation_m"]
        checks.append(Check("min_separation", v is None or v >= c.min_separation, v,
                            c.min_separation, f"at t={m['min_separation_t']}"))
    if c.no_keep_out:
        v = m["keep_out_clearance_m"]
        checks.append(Check("no_keep_out", v is None or v >= -0.02, v, ">= -0.02",
                            f"footprint to keep-out zones, closest at t={m['keep_out_clearance_t']}"))
    if c.no_collision:
        v = m["static_clearance_m"]
        checks.append(Check("no_collision", v is None or v >= 0.0, v, ">= 0",
                            f"chassis to static obstacles, closest at t={m['static_clearance_t']}"))
        sep = m["min_separation_m"]
        mv, st = m["min_separation_robot_moving_m"], m["min_separation_robot_still_m"]
        checks.append(Check("no_contact_with_people", sep is None or sep > 0.0, sep, "> 0",
                            f"{mv} m while the robot moved toward a person, {st} m while it "
                            "did not (a person walking into it)"))
    if c.max_speed is not None:
        checks.append(Check("max_speed", m["max_speed_mps"] <= c.max_speed + 0.02,
                            m["max_speed_mps"], c.max_speed))
    if c.max_speed_near_people is not None:
        d, v = c.max_speed_near_people
        checks.append(Check("max_speed_near_people", m["max_speed_near_people_mps"] <= v + 0.05,
                            m["max_speed_near_people_mps"], v, f"people within {d:g} m"))
    if c.slow_zones:
        v = m["slow_zone_excess_mps"]
        checks.append(Check("slow_zones", v is None or v <= 0.05, v, "<= 0.05",
                            "speed above a slow zone's limit inside it"))
    if c.min_travel is not None:
        checks.append(Check("min_travel", m["travel_m"] >= c.min_travel, m["travel_m"],
                            c.min_travel))
    if c.max_travel is not None:
        checks.append(Check("max_travel", m["travel_m"] <= c.max_travel, m["travel_m"],
                            c.max_travel))
    if c.final_speed_below is not None:
        v = m["final_speed_mps"]
        checks.append(Check("final_speed", v is not None and v < c.final_speed_below, v,
                            c.final_speed_below))
    if c.max_level is not None:
        lvl = LEVELS[m["max_level"]]
        checks.append(Check("max_level", lvl <= c.max_level, m["max_level"],
                            LEVEL_NAMES[c.max_level], f"after the first {SETTLE_S:g} s"))
    if c.step_attempts is not None:
        got = list(m.get("step_attempts") or [])
        checks.append(Check("step_attempts", got == list(c.step_attempts), got,
                            list(c.step_attempts), "attempts of each plan step"))
    if c.max_reading_error is not None:
        errs = [r["error"] for r in m["reading_errors"]]
        checks.append(Check("reading_error", bool(errs) and max(errs) <= c.max_reading_error,
                            max(errs) if errs else None, c.max_reading_error))
    ft = run.get("fault_time", {})
    for i, e in enumerate(c.safety_events):
        name = f"safety_event[{i}]"
        ref = 0.0
        if e.after_fault is not None:
            if e.after_fault not in ft:
                checks.append(Check(name, False, None, LEVEL_NAMES[e.level],
                                    f"fault {e.after_fault} never happened"))
                continue
            ref = ft[e.after_fault]
        elif e.after is not None:
            ref = e.after
        ref = max(ref, SETTLE_S) if e.after_fault is None else ref
        hit = next((r for r in rec.get("safety", []) if r[0] >= ref - 1e-6 and r[1] >= e.level
                    and (not e.cause or any(e.cause in x for x in r[2]))), None)
        what = f"{LEVEL_NAMES[e.level]}" + (f" ({e.cause})" if e.cause else "")
        if e.forbid:
            checks.append(Check(name, hit is None, None if hit is None else round(hit[0], 3),
                                f"never {what}", "forbidden state" + (
                                    f" at t={hit[0]:.2f}" if hit else " never seen")))
            continue
        if hit is None:
            checks.append(Check(name, False, None, f"{what} within {e.within:g} s",
                                f"not seen after t={ref:.2f}"))
        else:
            lat = hit[0] - ref
            checks.append(Check(name, lat <= e.within + 1e-6, round(lat, 3),
                                e.within if math.isfinite(e.within) else None,
                                f"{what} at t={hit[0]:.2f} s, {lat:.2f} s after t={ref:.2f}"))
    resets = run.get("resets", {})
    for fi, accepted, text in c.resets:
        r = resets.get(fi)
        if r is None:
            checks.append(Check(f"reset[{fi}]", False, None, accepted, "reset never called"))
            continue
        ok = r["accepted"] == accepted and (not text or text in r["reason"])
        checks.append(Check(f"reset[{fi}]", ok, r["accepted"], accepted,
                            f"answer: {r['reason']!r}" + (f", expected text {text!r}" if text
                                                          else "")))
    return checks

