"""What a campaign's runs say, in numbers (no ROS): success rates per template, world and
skill with Wilson 95 % intervals, the time missions took, the safety figures over all runs,
success by template variable, and the failure causes.

A *run* here is one entry of ``campaign.json`` ``runs`` merged with its run folder's
``result.json`` (:func:`load_campaign`), or, while a campaign ends, the pool's result with
the campaign's keys (template, world, draws, label, safety_violations).  Every figure reads
only what the run recorded, so a report of an old campaign folder gets the same numbers.

* **Skills** (:func:`run_skills`): the executor skills of the steps the mission ran
  (``result.json`` ``plan_steps``, else the executor's mission reports in the run folder),
  ``navigate_to`` for a goals mission, ``instruction`` for a mission given as text (the
  language planner's part), ``drive`` for a mission of kind ``none`` with commanded
  velocities and ``stand`` for one without.  A run counts in every skill it exercises.
* **Time to complete**: ``metrics.mission_time_s`` (sim time of the ``mission_done``
  event) of the passed runs; quantiles with numpy's default (linear) interpolation.
* **Safety**: the regression metrics of every run against the limits of their checks
  (``sitebot.regress.metrics.judge``), whether or not the template checked them: zero
  tolerance.
* **Success by variable**: per value of a drawn choice, per quantile bin of a drawn number,
  and per value of the derived people count, lighting preset and clutter count.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import yaml

from sitebot.campaign.stats import wilson
from sitebot.errors import SitebotError
from sitebot.executor.skills import SKILLS

__all__ = ["summarize", "run_skills", "mission_skills", "run_facts", "load_campaign",
           "quantile_bins", "rate_entry", "read_plot", "NUM_BINS", "MAX_CHOICES"]

#: quantile bins of a drawn number (fewer when it takes fewer distinct values)
NUM_BINS = 4
#: a drawn value that is not a number is tabulated per value up to this many values
MAX_CHOICES = 12
#: the limits of the regression checks (sitebot.regress.metrics.judge)
CONTACT_M = 0.0            # no_contact_with_people: separation > 0
KEEP_OUT_M = -0.02         # no_keep_out: footprint to keep-out zones >= -0.02
COLLISION_M = 0.0          # no_collision: chassis to static obstacles >= 0
SLOW_EXCESS_MPS = 0.05     # slow_zones: speed above a slow zone's limit <= 0.05
#: pseudo-skills of missions without executor steps (mission kind -> skill)
_KIND_SKILL = {"goals": "navigate_to", "instruction": "instruction"}
_JUDGED = ("passed", "failed")


# ---------------------------------------------------------------------------- loading
def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def read_plot(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run's ``plot.json`` (None without one)."""
    d = run.get("run_dir")
    plot = _read_json(Path(d) / "plot.json") if d else None
    return plot if isinstance(plot, dict) else None


def _run_dir(entry: Mapping[str, Any], folder: Path) -> str | None:
    """The run's folder: as recorded, or under ``folder/runs`` (a moved campaign folder)."""
    d = entry.get("run_dir")
    if d and Path(d).is_dir():
        return str(d)
    name = Path(str(d)).name if d else None
    if not name and entry.get("name"):
        name = "".join(ch if ch.isalnum() or ch in "_-=.," else "_" for ch in entry["name"])
    if name and (folder / "runs" / name).is_dir():
        return str(folder / "runs" / name)
    return str(d) if d else None


def load_campaign(folder: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``campaign.json`` of a campaign folder (or the file itself) and its runs, each merged
    with its folder's ``result.json`` where there is one (the campaign's keys win).
    SitebotError naming the file when it is missing or not a campaign's result."""
    p = Path(folder)
    p = p / "campaign.json" if p.is_dir() else p
    try:
        doc = json.loads(p.read_text())
    except OSError as e:
        raise SitebotError(f"{p}: cannot read the campaign result ({e.strerror or e})") \
            from None
    except ValueError as e:
        raise SitebotError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise SitebotError(f"{p}: not a campaign result (a mapping with a 'runs' list is "
                           "expected)")
    runs = []
    for i, entry in enumerate(doc["runs"]):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("status"):
            raise SitebotError(f"{p}: runs[{i}]: a run needs its 'name' and 'status'")
        run_dir = _run_dir(entry, p.parent)
        res = _read_json(Path(run_dir) / "result.json") if run_dir else None
        merged = {**(res if isinstance(res, dict) else {}), **entry, "run_dir": run_dir}
        runs.append(merged)
    return doc, runs


# ---------------------------------------------------------------------------- skills
def mission_skills(kind: str, steps: Iterable[Mapping[str, Any]] = (),
                   drive: bool = False) -> list[str]:
    """The skills a mission exercises, from its kind, steps and whether it drives."""
    out = [str(s.get("skill")) for s in steps if s.get("skill")]
    if kind in _KIND_SKILL:
        out.append(_KIND_SKILL[kind])
    elif kind == "none":
        out.append("drive" if drive else "stand")
    return sorted(set(out))


def _executor_steps(run_dir: str | None) -> list[dict]:
    """The steps of the executor's mission reports (``executor/<plan id>/report.json``)."""
    if not run_dir or not (Path(run_dir) / "executor").is_dir():
        return []
    out: list[dict] = []
    for rep in sorted((Path(run_dir) / "executor").glob("*/report.json")):
        doc = _read_json(rep)
        if isinstance(doc, dict):
            out += [s for s in doc.get("steps") or [] if isinstance(s, dict)]
    return out


def run_skills(run: Mapping[str, Any]) -> list[str]:
    """Every skill the run exercises (sorted): the skills already known for it (its
    ``skills`` key: the campaign's), the steps it recorded, its mission kind, its events and
    the tags that name a skill."""
    out = set(str(s) for s in run.get("skills") or [])
    steps = [s for s in run.get("plan_steps") or [] if isinstance(s, dict)]
    steps += _executor_steps(run.get("run_dir"))
    kind = run.get("mission")
    if isinstance(kind, str):
        m = run.get("metrics") or {}
        out.update(mission_skills(kind, steps, drive=bool(m.get("commands_in"))))
    else:
        out.update(str(s["skill"]) for s in steps if s.get("skill"))
    for e in run.get("events") or []:
        if e.get("kind") == "goal_sent":
            out.add("navigate_to")
        elif e.get("kind") == "instruction_sent":
            out.add("instruction")
    out.update(t for t in run.get("tags") or [] if t in SKILLS)
    if out & (set(SKILLS) | {"drive", "navigate_to"}):
        out.discard("stand")       # a guess from a kind without drive, and it moved
    return sorted(out)


# ---------------------------------------------------------------------------- facts
def _world_actors(run_dir: str | None) -> int | None:
    if not run_dir:
        return None
    for wf in sorted((Path(run_dir) / "world").glob("*.world.yaml")):
        try:
            doc = yaml.safe_load(wf.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict):
            return len(doc.get("actors") or [])
    return None


def _lighting(run_dir: str | None) -> str | None:
    """The lighting preset the run started with ('default': the world's), and the presets a
    fault switched to (``a then b``)."""
    if not run_dir:
        return None
    try:
        sim = yaml.safe_load((Path(run_dir) / "sim_params.yaml").read_text())
        start = sim["simulator"]["ros__parameters"].get("lighting") or "default"
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return None
    try:
        faults = yaml.safe_load((Path(run_dir) / "faults.yaml").read_text())["faults"] or []
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        faults = []
    later = [str(f.get("preset")) for f in faults
             if isinstance(f, dict) and f.get("kind") == "lighting"]
    return " then ".join([str(start), *later])


def run_facts(run: Mapping[str, Any], plot: Mapping[str, Any] | None = None
              ) -> dict[str, Any]:
    """Derived variables of a run from its folder: ``people`` (actors in its world),
    ``lighting`` (preset) and ``clutter`` (bodies placed or spawned); None where unknown."""
    d = run.get("run_dir")
    plot = read_plot(run) if plot is None else plot
    people = _world_actors(d)
    if people is None and plot and plot.get("people"):
        people = max(len(ps) for _, ps in plot["people"])
    clutter = len(plot.get("bodies") or []) if plot else None
    return {"people": people, "lighting": _lighting(d), "clutter": clutter}


# ---------------------------------------------------------------------------- rates
def _status(r: Mapping[str, Any]) -> str:
    return str(r.get("status"))


def rate_entry(rs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Passes among the judged runs, Wilson 95 %; skipped runs and errors counted apart."""
    judged = [r for r in rs if _status(r) in _JUDGED]
    rate = wilson(sum(_status(r) == "passed" for r in judged), len(judged))
    return {"passed": rate.k, "judged": rate.n, "rate": rate.rate if rate.n else None,
            "ci95": [round(rate.low, 4), round(rate.high, 4)],
            "skipped": sum(_status(r) == "skipped" for r in rs),
            "errors": sum(_status(r) == "error" for r in rs), "text": str(rate)}


def _rates(groups: Mapping[str, list]) -> dict[str, Any]:
    return {k: rate_entry(v) for k, v in sorted(groups.items())}


def _group(runs: Iterable[Mapping[str, Any]], key: Callable[[Mapping], Iterable[str]]
           ) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in runs:
        for k in key(r):
            out.setdefault(k, []).append(r)
    return out


def _label(r: Mapping[str, Any]) -> str | None:
    lab = r.get("label")
    if isinstance(lab, (list, tuple)):
        return str(lab[0]) if lab else None
    return str(lab) if lab else None


def _causes(runs: Sequence[Mapping[str, Any]]) -> list[dict]:
    labelled: dict[str, list[str]] = {}
    for r in runs:
        if _label(r):
            labelled.setdefault(_label(r), []).append(r.get("name", "?"))  # type: ignore
    return [{"label": k, "count": len(v), "runs": v}
            for k, v in sorted(labelled.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


# ---------------------------------------------------------------------------- times
def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _times(rs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    passed = [r for r in rs if _status(r) == "passed"]
    ts = [t for r in passed if (t := _finite((r.get("metrics") or {}).get("mission_time_s")))
          is not None]
    out: dict[str, Any] = {"n": len(ts), "without_time": len(passed) - len(ts),
                           "times": sorted(round(t, 3) for t in ts)}
    if ts:
        med, p90 = np.quantile(ts, [0.5, 0.9])
        out.update(min=round(min(ts), 3), median=round(float(med), 3),
                   p90=round(float(p90), 3), max=round(max(ts), 3))
    else:
        out.update(min=None, median=None, p90=None, max=None)
    return out


# ---------------------------------------------------------------------------- safety
def _extreme(runs: Sequence[Mapping[str, Any]], key: str, lowest: bool) -> dict | None:
    vals = [(v, r) for r in runs if (v := _finite((r.get("metrics") or {}).get(key)))
            is not None]
    if not vals:
        return None
    v, r = (min if lowest else max)(vals, key=lambda x: x[0])
    return {"value": v, "run": r.get("name")}


def _safety(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    measured = [r for r in runs if (r.get("metrics") or {}).get("samples")]

    def beyond(key: str, bad: Callable[[float], bool]) -> list[str]:
        return [str(r.get("name")) for r in measured
                if (v := _finite(r["metrics"].get(key))) is not None and bad(v)]
    figures = {
        "no_contact_with_people": beyond("min_separation_m", lambda v: v <= CONTACT_M),
        "no_keep_out": beyond("keep_out_clearance_m", lambda v: v < KEEP_OUT_M),
        "no_collision": beyond("static_clearance_m", lambda v: v < COLLISION_M),
        "slow_zones": beyond("slow_zone_excess_mps", lambda v: v > SLOW_EXCESS_MPS)}
    violations = []
    for r in runs:
        checks = list(r.get("safety_violations") or [])
        extra = [k for k, names in figures.items() if r.get("name") in names and k not in checks]
        if checks or extra:
            violations.append({"run": r.get("name"), "template": r.get("template"),
                                "seed": r.get("seed"), "status": r.get("status"),
                                "checks": checks, "measured": extra,
                                "run_dir": r.get("run_dir")})
    near = _extreme(measured, "max_speed_near_people_mps", lowest=False)
    if near is not None:
        near["distance_m"] = next((r["metrics"].get("near_people_distance_m") for r in measured
                                   if r.get("name") == near["run"]), None)
    return {
        "runs_measured": len(measured), "runs": len(runs),
        "contacts": figures["no_contact_with_people"],
        "min_separation_m": _extreme(measured, "min_separation_m", lowest=True),
        "min_separation_robot_moving_m": _extreme(measured, "min_separation_robot_moving_m",
                                                  lowest=True),
        "min_separation_robot_still_m": _extreme(measured, "min_separation_robot_still_m",
                                                 lowest=True),
        "keep_out_excursions": figures["no_keep_out"],
        "min_keep_out_clearance_m": _extreme(measured, "keep_out_clearance_m", lowest=True),
        "collisions": figures["no_collision"],
        "min_static_clearance_m": _extreme(measured, "static_clearance_m", lowest=True),
        "slow_zone_speeding": figures["slow_zones"],
        "max_slow_zone_excess_mps": _extreme(measured, "slow_zone_excess_mps", lowest=False),
        "max_speed_near_people_mps": near,
        "violations": violations, "ok": not violations}


# ---------------------------------------------------------------------------- variables
def _value_label(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def _num(x: float) -> str:
    return f"{x:.4g}"


def quantile_bins(values: Sequence[float], bins: int = NUM_BINS) -> list[float]:
    """Edges of ``bins`` quantile bins of ``values`` (numpy's linear quantiles), repeated
    edges merged.  A value v lies in the first bin whose upper edge is >= v."""
    edges = np.quantile(np.asarray(values, dtype=float), np.linspace(0.0, 1.0, bins + 1))
    out: list[float] = []
    for e in edges:
        if not out or float(e) > out[-1]:
            out.append(float(e))
    return out


def _variable(name: str, source: str, pairs: list[tuple[Any, Mapping]], n_runs: int
              ) -> dict[str, Any] | None:
    """Success per value or bin of one variable: ``pairs`` are (value, run)."""
    known = [(v, r) for v, r in pairs if v is not None]
    if not known:
        return None
    nums = all(_finite(v) is not None for v, _ in known)
    distinct = {_value_label(v) for v, _ in known}
    out: dict[str, Any] = {"variable": name, "source": source, "unknown": n_runs - len(known),
                           "distinct": len(distinct)}
    if nums and len(distinct) > NUM_BINS:
        edges = quantile_bins([float(v) for v, _ in known])
        groups = []
        for i in range(len(edges) - 1):
            lo, hi = edges[i], edges[i + 1]
            rs = [r for v, r in known if (lo <= float(v) if i == 0 else lo < float(v))
                  and float(v) <= hi]
            label = ("[" if i == 0 else "(") + f"{_num(lo)}, {_num(hi)}]"
            groups.append({"value": label, "low": lo, "high": hi, "runs": len(rs),
                           **rate_entry(rs)})
        out.update(kind="bins", groups=groups)
        return out
    if len(distinct) > MAX_CHOICES:
        out.update(kind="untabulated", groups=[])
        return out
    by: dict[str, list] = {}
    first: dict[str, Any] = {}
    for v, r in known:
        by.setdefault(_value_label(v), []).append(r)
        first.setdefault(_value_label(v), v)
    order = sorted(by, key=lambda k: (0, float(first[k])) if nums else (1, k))  # type: ignore
    out.update(kind="values", groups=[{"value": k, "runs": len(by[k]), **rate_entry(by[k])}
                                      for k in order])
    return out


def _records(v: Any) -> bool:
    """A list of mappings (drawn people, clutter boxes): tabulated by how many."""
    return isinstance(v, list) and all(isinstance(x, Mapping) for x in v)


def _variables(runs: Sequence[Mapping[str, Any]],
               facts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per template, each drawn key path (a key path means what its template makes of it);
    then the derived variables over all runs, those that take more than one value."""
    keys: dict[str, list[str]] = {}
    for r in runs:
        for k in (r.get("draws") or {}):
            ks = keys.setdefault(str(r.get("template")), [])
            if k not in ks:
                ks.append(k)
    out = []
    for t, ks in sorted(keys.items()):
        rs = [r for r in runs if str(r.get("template")) == t]
        for k in ks:
            vals = [(r.get("draws") or {}).get(k) for r in rs]
            if all(_records(x) for x in vals if x is not None):   # people, clutter: counted
                k, vals = f"{k} (entries)", [None if x is None else len(x) for x in vals]
            v = _variable(k, "draw", list(zip(vals, rs)), len(rs))
            if v is not None:
                out.append({"template": t, **v})
    for k, title in (("people", "people count"), ("lighting", "lighting preset"),
                     ("clutter", "clutter count")):
        v = _variable(title, "derived", [(f[k], r) for f, r in zip(facts, runs)], len(runs))
        if v is not None and v["distinct"] > 1:    # one value for all says nothing
            out.append({"template": None, **v})
    return out


# ---------------------------------------------------------------------------- all
def summarize(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The campaign's figures.  ``per_template``, ``per_world``, ``per_skill``: passes among
    the judged runs with the Wilson 95 % interval (skipped runs and errors counted apart);
    ``failure_causes``: each run's ``label`` (sitebot.campaign.taxonomy), most frequent
    first; ``time_to_complete``, ``safety`` and ``by_variable`` (see the module)."""
    runs = [dict(r) for r in results]
    for r in runs:
        r["skills"] = run_skills(r)
    facts = [run_facts(r) for r in runs]
    return {"per_template": _rates(_group(runs, lambda r: [str(r.get("template"))])),
            "per_world": _rates(_group(runs, lambda r: [str(r.get("world"))])),
            "per_skill": _rates(_group(runs, lambda r: r["skills"])),
            "failure_causes": _causes(runs),
            "time_to_complete": {
                "per_template": {k: _times(v) for k, v in sorted(
                    _group(runs, lambda r: [str(r.get("template"))]).items())},
                "per_world": {k: _times(v) for k, v in sorted(
                    _group(runs, lambda r: [str(r.get("world"))]).items())}},
            "safety": _safety(runs),
            "by_variable": _variables(runs, facts)}
