"""A synthetic campaign folder for the summary and report tests (no ROS, no runs): a
``campaign.json`` as ``sitebot campaign`` writes it (before runs recorded their skills) and
run folders with ``result.json``, ``metrics.json``, ``plot.json``, ``bag/`` and the parameter
files in the shapes ``sitebot.regress.worker`` and ``sitebot.regress.prepare`` write them.

Nine runs of three templates:

==================  ============  =======  ==========================  ======  ==============
run                 world         status   skills (recorded)           time    other
==================  ============  =======  ==========================  ======  ==============
fetch[seed=0..3]    construction  P P F P  navigate_to, pick, place    40 50 - 70
gauge[seed=0]       substation    passed   instruction, navigate_to,   30      low_sun
                                           read_gauge
gauge[seed=1]       substation    failed   instruction (refused)       -       planner_clarify
gauge[seed=2]       substation    error    - (the worker died)         -       no plot, no bag
crossing[seed=0,1]  substation    P F      drive                       -       seed 1: contact
==================  ============  =======  ==========================  ======  ==============
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _metrics(**over: Any) -> dict[str, Any]:
    """metrics.json of a run (sitebot.regress.metrics.compute_metrics keys)."""
    m = {"samples": 800, "path_length_m": 6.1, "travel_m": 5.0, "max_speed_mps": 0.5,
         "final_speed_mps": 0.0, "min_separation_m": None, "min_separation_t": None,
         "min_separation_robot_moving_m": None, "min_separation_robot_moving_t": None,
         "min_separation_robot_still_m": None, "min_separation_robot_still_t": None,
         "max_speed_near_people_mps": 0.0, "near_people_distance_m": 1.5,
         "keep_out_clearance_m": 2.5, "keep_out_clearance_t": 3.0,
         "static_clearance_m": 0.4, "static_clearance_t": 5.0, "slow_zone_excess_mps": None,
         "safety_timeline": [{"t0": 0.0, "t1": 16.0, "level": "NORMAL", "reasons": []}],
         "time_in_level_s": {"NORMAL": 16.0}, "max_level": "NORMAL", "protective_stops": 0,
         "emergency_stops": 0, "first_cause_time_s": {}, "sim_time_s": 16.0,
         "wall_time_s": 30.0, "real_time_factor": 0.6, "startup_wall_s": 4.0,
         "mission_outcome": "none", "mission_time_s": None, "fault_times_s": {}, "resets": {},
         "reading_errors": [], "step_attempts": [], "step_outcomes": [], "commands_in": 0,
         "commands_out": 0, "bag_messages": 1000,
         "postprocess_wall_s": {"metrics": 0.1, "bag": 0.2}}
    m.update(over)
    return m


def _check(name: str, ok: bool, value: Any, limit: Any, detail: str = "") -> dict:
    return {"name": name, "ok": ok, "value": value, "limit": limit, "detail": detail}


def _run(root: Path, *, template: str, world: str, seed: int, status: str, mission: str,
         plan: list, metrics: dict | None, checks: list, events: list, reason: str = "",
         draws: dict, label: tuple | None = None, people: int | None = 0,
         actors_in_plot: int = 0, bodies: int = 0, lighting: str | None = "",
         world_file: str | None = None, tags: tuple = ()) -> dict:
    """One run folder, and its campaign.json entry."""
    name = f"{template}[seed={seed}]"
    run_dir = root / "runs" / name.replace("[", "_").replace("]", "_")   # regress.pool
    run_dir.mkdir(parents=True)
    tfile = str(root / "templates" / f"{template}.yaml")
    (run_dir / "spec.json").write_text(json.dumps(
        {"file": tfile, "name": name, "seed": seed, "run_dir": str(run_dir), "repeat": 0,
         "lockstep": True}))
    if status == "error":        # the pool's result of a worker that died (regress.pool)
        res = {"name": name, "scenario": template, "status": "error", "repeat": 0,
               "reason": reason, "checks": [], "metrics": {}, "run_dir": str(run_dir),
               "file": tfile, "domain_id": 201, "worker_wall_s": 300.0}
    else:
        res = {"scenario": template, "name": name, "file": tfile, "tags": list(tags),
               "world": world, "seed": seed, "variant": {}, "repeat": 0,
               "run_dir": str(run_dir), "mission": mission, "description": "",
               "lockstep": True, "scenario_sha256": "0" * 64, "status": status,
               "reason": reason, "plan_steps": plan, "checks": checks, "metrics": metrics,
               "events": events, "bag": str(run_dir / "bag"),
               "audit_log": str(run_dir / "safety_audit.jsonl"), "exit_codes": {},
               "failed_processes": [], "worker_wall_s": 40.0, "domain_id": 200}
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (run_dir / "bag").mkdir()
        (run_dir / "bag" / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
        (run_dir / "safety_audit.jsonl").write_text("")
        wf = world_file or str(REPO / "worlds" / f"{world}.world.yaml")
        truth = [(round(0.1 * i, 2), round(-12.5 + 0.05 * i, 3), -12.0, 0.0)
                 for i in range(100)]
        plot = {"truth": truth,
                "people": [(round(0.1 * i, 2), [(-8.5, round(-14.0 + 0.04 * i, 2))]
                            * actors_in_plot) for i in range(100)],
                "series": [(t, 0.5, None) for t, *_ in truth],
                "timeline": metrics["safety_timeline"], "world_file": wf,
                "bodies": [{"id": f"clutter{i}", "pose": [-10.0 + i, -11.0, 0.0],
                            "size": [0.4, 0.4, 0.6]} for i in range(bodies)]}
        (run_dir / "plot.json").write_text(json.dumps(plot))
        if people is not None:                # the run's world (regress.prepare)
            (run_dir / "world").mkdir()
            (run_dir / "world" / f"{world}.world.yaml").write_text(yaml.safe_dump(
                {"world": world, "actors": [{"id": f"p{i}", "path": [[0, 0], [1, 1]],
                                             "speed": 1.0} for i in range(people)]}))
        if lighting is not None:
            (run_dir / "sim_params.yaml").write_text(yaml.safe_dump(
                {"simulator": {"ros__parameters": {"world": wf, "seed": seed,
                                                   "lighting": lighting}}}))
            (run_dir / "faults.yaml").write_text(yaml.safe_dump({"faults": []}))
    (run_dir / "result.json").write_text(json.dumps(res, indent=2))
    unsafe = [c["name"] for c in checks if not c["ok"] and c["name"] in
              ("no_contact_with_people", "min_separation", "no_keep_out", "no_collision",
               "max_speed_near_people", "slow_zones")]
    return {"name": name, "template": template, "world": world, "seed": seed,
            "status": status, "reason": reason, "safety_violations": unsafe,
            "run_dir": str(run_dir), "draws": draws,
            "label": label[0] if label else None, "evidence": label[1] if label else None}


def make_campaign(root: Path) -> Path:
    """The campaign folder described in the module's docstring."""
    root.mkdir(parents=True, exist_ok=True)
    fetch_plan = [{"skill": "navigate_to", "args": {"place": "bench"}},
                  {"skill": "pick", "args": {"object": "torque_wrench"}},
                  {"skill": "place", "args": {"place": "cart"}}]
    runs = []
    ok = [_check("mission", True, "succeeded", "succeeded")]
    for seed, (status, t, speed, keep_out, slow) in enumerate((
            ("passed", 40.0, 0.7, 2.5, None), ("passed", 50.0, 0.9, 2.0, 0.04),
            ("failed", None, 1.1, 1.5, None), ("passed", 70.0, 1.3, -0.03, None))):
        failed = status == "failed"
        runs.append(_run(
            root, template="fetch", world="construction", seed=seed, status=status,
            mission="plan", plan=fetch_plan,
            metrics=_metrics(mission_time_s=None if failed else t, keep_out_clearance_m=keep_out,
                             slow_zone_excess_mps=slow,
                             mission_outcome="failed" if failed else "succeeded"),
            checks=[_check("mission", not failed, "failed" if failed else "succeeded",
                           "succeeded")],
            events=[{"t": 0.5, "kind": "plan_sent", "steps": 3, "confirmed": True},
                    {"t": 38.0 if failed else t, "kind": "mission_done",
                     "outcome": "failed" if failed else "succeeded",
                     "reason": "pick torque_wrench: grasp of torque_wrench missed"
                     if failed else ""}],
            reason="", draws={"actors.add[0].speed": speed, "objects.torque_wrench.turn":
                              [15, -40, 80, 5][seed]},
            label=("grasp_missed", "pick torque_wrench: grasp of torque_wrench missed")
            if failed else None,
            people=2 if seed >= 2 else 0, bodies=1, lighting=""))
    gauge_plan = [{"skill": "navigate_to", "args": {"place": "bay_1"}},
                  {"skill": "read_gauge", "args": {"asset": "g1"}}]
    runs.append(_run(
        root, template="gauge", world="substation", seed=0, status="passed",
        mission="instruction", plan=gauge_plan,
        metrics=_metrics(mission_time_s=30.0, slow_zone_excess_mps=0.12,
                         mission_outcome="succeeded"),
        checks=ok, events=[{"t": 0.2, "kind": "instruction_sent", "text": "read gauge g1",
                            "role": "operator"}],
        draws={"mission.text": "read gauge g1"}, people=None, actors_in_plot=1,
        lighting="low_sun"))
    runs.append(_run(
        root, template="gauge", world="substation", seed=1, status="failed",
        mission="instruction", plan=[],
        metrics=_metrics(mission_outcome="clarify"),
        checks=[_check("mission", False, "clarify", "succeeded")],
        events=[{"t": 0.2, "kind": "instruction_sent", "text": "read the gauge",
                 "role": "operator"},
                {"t": 1.0, "kind": "mission_done", "outcome": "clarify",
                 "reason": "which gauge? clarify: g1 or g2"}],
        draws={"mission.text": "read the gauge"},
        label=("planner_clarify", "which gauge? clarify: g1 or g2"),
        people=None, actors_in_plot=1, lighting="low_sun",
        world_file=str(root / "gone" / "substation.world.yaml")))
    runs.append(_run(
        root, template="gauge", world="substation", seed=2, status="error", mission="",
        plan=[], metrics=None, checks=[], events=[],
        reason="worker ended (exit -9) without a result after 360 s (wall limit 300 s)",
        draws={"mission.text": "read gauge g2"},
        label=("infrastructure_error", "worker ended (exit -9) without a result")))
    for seed, (status, sep, moving, still, near) in enumerate((
            ("passed", 0.8, 0.9, 0.8, 0.22), ("failed", -0.05, -0.05, 0.3, 0.4))):
        failed = status == "failed"
        checks = [_check("min_separation", not failed, sep, 0.05),
                  _check("no_contact_with_people", not failed, sep, "> 0")]
        runs.append(_run(
            root, template="crossing", world="substation", seed=seed, status=status,
            mission="none", plan=[],
            metrics=_metrics(min_separation_m=sep, min_separation_robot_moving_m=moving,
                             min_separation_robot_still_m=still,
                             max_speed_near_people_mps=near, near_people_distance_m=1.0,
                             commands_in=600),
            checks=checks, events=[{"t": 0.0, "kind": "started", "startup_wall_s": 4.0}],
            draws={"actors.add[0].yields": bool(seed)},
            label=("safety_violation", "min_separation, no_contact_with_people")
            if failed else None, people=1, actors_in_plot=1, lighting=None,
            tags=("safety", "people")))
    doc = {"templates": [str(root / "templates" / f"{t}.yaml")
                         for t in ("fetch", "gauge", "crossing")],
           "first_seed": 0, "runs_per_template": 4, "wall_s": 812.4,
           "per_template": {}, "per_world": {}, "failure_causes": [], "runs": runs}
    (root / "campaign.json").write_text(json.dumps(doc, indent=1))
    return root


@pytest.fixture
def synthetic_campaign(tmp_path: Path) -> Path:
    return make_campaign(tmp_path / "camp")
