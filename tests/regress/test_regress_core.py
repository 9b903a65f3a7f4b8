"""sitebot.regress without ROS: the scenario loader (bad files name the key), variations,
the suite files, simulator fault injection (core), metrics, baselines, incidents, reports."""
from __future__ import annotations

import dataclasses
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sitebot.errors import SimulationError
from sitebot.regress import report
from sitebot.regress import results as R
from sitebot.regress.metrics import compute_metrics, judge
from sitebot.regress.prepare import missing_nodes, prepare_run
from sitebot.regress.scenario import ScenarioError, load_scenario, load_scenarios, select
from sitebot.sim.faults import FaultInjector, parse_faults
from sitebot.sim.simulation import SampleKind, SimConfig, SiteSimulation
from sitebot.sim.world_loader import load_world

SUITE = Path(__file__).parents[1] / "scenarios"

GOOD = """scenario: tiny
world: substation
robot: {start: [-12.5, -12.0, 0.0]}
duration: 5
mission: {kind: none, drive: [[0.5, 0.3, 0.0]]}
faults:
- {at: 1.0, kind: sensor_dropout, sensor: scan, duration: 1.0}
criteria:
  min_travel: 0.5
  safety_events: [{level: PROTECTIVE_STOP, cause: scan_stale, after_fault: 0, within: 1.0}]
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("change, where, words", [
    (("world: substation", "wrld: substation"), "wrld", "unknown key"),
    (("sensor: scan", "sensor: sonar"), "faults[0].sensor", "sonar"),
    (("duration: 1.0}", "duration: -1.0}"), "faults[0].duration", "[0, 3600]"),
    (("kind: sensor_dropout", "kind: meteor"), "faults[0].kind", "accepted"),
    (("{at: 1.0, kind", "{kind"), "faults[0]", "exactly one of 'at'"),
    (("kind: none, drive", "kind: walk, drive"), "mission.kind", "walk"),
    (("[[0.5, 0.3, 0.0]]", "[[0.5, 0.3]]"), "mission.drive[0]", "3 or 4 numbers"),
    (("after_fault: 0", "after_fault: 3"), "criteria.safety_events[0].after_fault", "no fault 3"),
    (("level: PROTECTIVE_STOP", "level: PANIC"), "criteria.safety_events[0].level", "PANIC"),
    (("min_travel: 0.5", "min_travel: lots"), "criteria.min_travel", "number"),
    (("scenario: tiny", "scenario: Tiny-One"), "scenario", "snake_case"),
    (("start: [-12.5, -12.0, 0.0]", "start: [1, 2]"), "robot.start", "[x, y, yaw]"),
])
def test_bad_scenario_names_file_and_key(tmp_path, change, where, words):
    p = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    msg = str(e.value)
    assert str(p) in msg and where in msg and words in msg, msg


def test_broken_yaml_and_empty_file_name_the_file(tmp_path):
    p = write(tmp_path, "scenario: [oops\n")
    with pytest.raises(ScenarioError, match=r"s\.yaml:\d+: invalid YAML"):
        load_scenario(p)
    p2 = write(tmp_path, "", "e.yaml")
    with pytest.raises(ScenarioError, match="e.yaml.*empty"):
        load_scenario(p2)


def test_variations_expand_to_the_product_and_bad_paths_are_named(tmp_path):
    text = GOOD + "variations:\n  seed: [1, 2, 3]\n  faults[0].duration: [0.5, 2.0]\n"
    runs = load_scenario(write(tmp_path, text))
    assert len(runs) == 6
    assert sorted({(r.seed, r.faults[0].params["duration"]) for r in runs}) == \
        [(1, 0.5), (1, 2.0), (2, 0.5), (2, 2.0), (3, 0.5), (3, 2.0)]
    assert runs[0].name == "tiny[seed=1,faults[0].duration=0.5]"
    bad = GOOD + "variations:\n  faults[4].at: [1.0]\n"
    with pytest.raises(ScenarioError, match=r"variations\.faults\[4\]\.at.*does not exist"):
        load_scenario(write(tmp_path, bad, "b.yaml"))


def test_the_suite_loads_and_covers_the_issue():
    scs = load_scenarios([SUITE])
    files = {s.file for s in scs}
    assert len(files) >= 20
    assert {s.world for s in scs} == {"substation", "construction", "datacentre"}
    kinds = {f.kind for s in scs for f in s.faults}
    for k in ("sensor_dropout", "sensor_delay", "noise_burst", "localization_jump", "kill_node",
              "estop", "reset", "lighting", "spawn_body", "set_mode"):
        assert k in kinds, f"no scenario injects {k}"
    causes = {e.cause for s in scs for e in s.criteria.safety_events}
    for c in ("person_in_protective_field", "person_nearby", "slow_zone",
              "scan_stale", "odometry_stale", "deadman_released"):
        assert c in causes, f"no scenario expects {c}"
    assert any(s.criteria.resets for s in scs)
    assert any(s.requires == ("task_executor",) for s in scs)
    assert 5 <= len(select(scs, tags=["ci"])) <= 12
    assert len(select(scs, "substation_*")) >= 8


def test_missing_executor_is_a_clean_skip_reason():
    sc = next(s for s in load_scenarios([SUITE]) if s.id == "substation_valve_refused_for_operator")
    miss = missing_nodes(sc)
    import importlib.util
    if importlib.util.find_spec("sitebot.nodes.task_executor") is None:
        assert "task_executor" in miss


def test_prepare_writes_world_params_and_schedule(tmp_path):
    sc = load_scenario(SUITE / "construction_blocked_corridor.yaml")[0]
    prep = prepare_run(sc, tmp_path)
    w = load_world(prep["world_file"])
    assert tuple(w.spawn_poses["robot1"]) == (-13.0, 3.0, 0.0) and w.actors == ()
    sched = (tmp_path / "faults.yaml").read_text()
    assert "spawn_body" in sched and "fault0" in sched
    assert prep["launch_file"] == "regress_base.launch.yaml"


# ------------------------------------------------------------------ fault injection (core)
def test_fault_injector_drops_delays_noises_and_teleports():
    sim = SiteSimulation("substation", config=SimConfig(camera_enabled=False,
                                                        supervisor_required=False))
    try:
        actor = sim.world.actors[0].id
        faults = parse_faults([
            {"kind": "sensor_dropout", "sensor": "scan", "at": 0.5, "duration": 0.5},
            {"kind": "sensor_delay", "sensor": "odom", "at": 1.0, "delay": 0.2, "duration": 0.5},
            {"kind": "noise_burst", "sensor": "scan", "at": 1.5, "std": 0.5, "duration": 0.3},
            {"kind": "localization_jump", "at": 1.9, "dx": 1.0, "dyaw": 0.5},
            {"kind": "spawn_body", "at": 1.9, "id": "pallet", "pose": [0, 0, 0],
             "size": [1, 1, 1]},
            {"kind": "move_actor", "at": 1.9, "actor": actor, "path": [[0, 0], [3, 0]],
             "speed": 1.0},
            {"kind": "lighting", "at": 1.9, "preset": "dim"},
        ])
        events = []
        inj = FaultInjector(sim, faults, on_event=events.append)
        x0 = sim.ground_truth().x_m
        out = []
        for _ in range(int(2.4 * 240)):
            samples = sim.step()
            out += [(sim.time_s, s) for s in inj.advance(sim.time_s, samples)]
        scans = [s.stamp_s for _, s in out if s.kind is SampleKind.SCAN]
        assert not [t for t in scans if 0.45 < t < 0.95], "scans during the dropout"
        assert len(scans) == 25 - 5, scans          # t=0 and 10 Hz for 2.4 s, 5 dropped
        late = [(t - s.stamp_s) for t, s in out if s.kind is SampleKind.ODOM and 1.0 <= s.stamp_s < 1.5]
        assert late and min(late) > 0.19 and max(late) < 0.21
        gt = sim.ground_truth()
        assert gt.x_m - x0 == pytest.approx(1.0, abs=0.02) and gt.yaw_rad == pytest.approx(0.5, abs=0.02)
        p = next(q for q in gt.people if q.id == actor)
        assert p.x == pytest.approx(0.5, abs=0.05) and p.y == pytest.approx(0.0, abs=1e-6)
        assert sim.lighting == sim.scene.lighting("dim")
        kinds = [(e["kind"], e["phase"]) for e in events]
        assert ("sensor_dropout", "end") in kinds and ("spawn_body", "start") in kinds
        assert len(events) == 10
    finally:
        sim.close()


def test_bad_faults_are_named():
    with pytest.raises(SimulationError, match=r"f\[0\]\.std.*missing"):
        parse_faults([{"kind": "noise_burst", "sensor": "scan", "duration": 1}], "f")
    with pytest.raises(SimulationError, match=r"faults\[0\]\.sensor.*camera"):
        parse_faults([{"kind": "noise_burst", "sensor": "camera", "std": 1, "duration": 1}])


# ------------------------------------------------------------------ metrics, verdicts
def _records(speed: float = 0.5, person_x: float = 3.0):
    truth = [(i * 0.05, -12.0 + speed * i * 0.05, -12.0, 0.0, speed) for i in range(200)]
    people = [(t, [(person_x - 12.0, -12.0)]) for t, *_ in truth]
    safety = [(t, 2 if 5.0 <= t < 6.0 else 0, ["scan_stale"] if 5.0 <= t < 6.0 else [],
               1.0, 0.5, 1.0, 0, False) for t, *_ in truth]
    return {"truth": truth, "people": people, "safety": safety, "cmd_in": [], "cmd_out": []}


def test_metrics_and_checks_from_records():
    sc = load_scenario(SUITE / "substation_person_crossing.yaml")[0]
    world = load_world("substation")
    world = dataclasses.replace(world, actors=())
    rec = _records(person_x=30.0)
    run = {"sim_time_s": 10.0, "wall_s": 5.0, "run_wall_s": 4.0, "events": [],
           "mission": {"outcome": "none"}, "fault_time": {0: 5.0}, "failed": [], "killed": []}
    m = compute_metrics(sc, world, rec, run)
    assert m["path_length_m"] == pytest.approx(0.5 * 199 * 0.05, abs=1e-3)
    assert m["min_separation_m"] == pytest.approx(30.0 - 0.5 * 199 * 0.05 - 0.4 - 0.25, abs=0.01)
    assert m["real_time_factor"] == 2.5
    assert m["max_level"] == "PROTECTIVE_STOP" and m["protective_stops"] == 1
    checks = {c.name: c for c in judge(sc, m, run, rec)}
    assert checks["min_travel"].ok and not checks["safety_event[0]"].ok   # no person cause


def test_contacts_are_attributed_to_whoever_closed_the_gap():
    """A person walking into a robot at rest is reported apart from the robot driving into a
    person (only the second is the robot's doing; both fail no_contact_with_people)."""
    sc = load_scenario(SUITE / "substation_person_crossing.yaml")[0]
    world = load_world("substation")
    world = dataclasses.replace(world, actors=())
    run = {"sim_time_s": 10.0, "wall_s": 5.0, "run_wall_s": 4.0, "events": [],
           "mission": {"outcome": "none"}, "fault_time": {0: 5.0}, "failed": [], "killed": []}
    # the robot stands at (-12, -12); a person walks from 3 m ahead straight into it
    still = [(i * 0.05, -12.0, -12.0, 0.0, 0.0) for i in range(200)]
    walker = [(t, [(-9.0 - 0.3 * t, -12.0)]) for t, *_ in still]
    m = compute_metrics(sc, world, {"truth": still, "people": walker, "safety": [],
                                    "cmd_in": [], "cmd_out": []}, run)
    assert m["min_separation_robot_moving_m"] is None
    assert m["min_separation_robot_still_m"] == m["min_separation_m"] < 0
    contact = {c.name: c for c in judge(sc, m, run, {})}["no_contact_with_people"]
    assert not contact.ok and "None m while the robot moved toward a person" in contact.detail
    # the robot drives at 0.5 m/s into a person standing 3 m ahead
    rec = _records(speed=0.5, person_x=3.0)
    m = compute_metrics(sc, world, rec, run)
    assert m["min_separation_robot_moving_m"] == m["min_separation_m"] < 0
    # driving away from a person behind the robot is not closing in
    behind = _records(speed=0.5, person_x=-1.0)
    m = compute_metrics(sc, world, behind, run)
    assert m["min_separation_robot_moving_m"] is None
    assert m["min_separation_robot_still_m"] == pytest.approx(m["min_separation_m"])


# ------------------------------------------------------------------ baselines, incidents
def _res(name, status="passed", **metrics):
    return {"name": name, "scenario": name, "status": status, "repeat": 0, "run_dir": "",
            "checks": [] if status == "passed" else [{"name": "min_separation", "ok": False,
                                                      "value": -0.1, "limit": 0.0}],
            "metrics": metrics, "events": []}


def test_baseline_flags_injected_regressions_only():
    base = R.make_baseline([_res("a", mission_time_s=50.0, path_length_m=20.0,
                                 min_separation_m=0.8),
                            _res("b", mission_time_s=30.0, path_length_m=10.0,
                                 min_separation_m=1.0)])
    same = [_res("a", mission_time_s=55.0, path_length_m=21.0, min_separation_m=0.75),
            _res("b", mission_time_s=30.0, path_length_m=10.0, min_separation_m=1.0)]
    assert R.compare_baseline(same, base) == []
    worse = [_res("a", mission_time_s=65.0, path_length_m=23.0, min_separation_m=0.6),
             _res("b", mission_time_s=30.0, path_length_m=10.0, min_separation_m=1.0)]
    flagged = {(g["name"], g["metric"]) for g in R.compare_baseline(worse, base)}
    assert flagged == {("a", "mission_time_s"), ("a", "path_length_m"),
                       ("a", "min_separation_m")}


def test_flaky_incidents_and_reports(tmp_path):
    rs = [_res("a"), {**_res("a", "failed"), "repeat": 1}, _res("b"),
          {**_res("c", "skipped"), "reason": "needs task_executor"}]
    rs[0]["metrics"] = {"safety_timeline": [{"t0": 0.0, "t1": 2.0, "level": "NORMAL", "reasons": []},
                                            {"t0": 2.0, "t1": 3.0, "level": "PROTECTIVE_STOP",
                                             "reasons": ["scan_stale"]}]}
    assert R.flaky(rs) == ["a"]
    rows = R.incidents(rs)
    assert {r["kind"] for r in rows} == {"safety_protective_stop", "failure"}
    pj, pc = R.write_incidents(rows, tmp_path)
    text = pc.read_text().replace("scan_stale,passed,", "scan_stale,passed,dust")
    pc.write_text(text)
    R.write_incidents(rows, tmp_path / "again", previous=pc)
    assert "dust" in (tmp_path / "again" / "incidents.csv").read_text()
    j = report.write_junit(rs, tmp_path / "j.xml")
    root = ET.parse(j).getroot()
    assert root.get("tests") == "4" and root.get("failures") == "1" and root.get("skipped") == "1"
    skipped = [tc for tc in root if tc.find("skipped") is not None]
    assert skipped[0].find("skipped").get("message") == "needs task_executor"
    h = report.write_html(rs, tmp_path / "r.html", flaky=["a"]).read_text()
    assert "min_separation" in h and "FAIL" in h and "Flaky" in h
    assert json.dumps(R.make_baseline(rs))
    assert math.isfinite(len(h))


# ------------------------------------------------------------------ missions with the task stack
TASK = """scenario: task
world: substation
duration: 60
mission: {kind: instruction, text: "close the T2 cooling valve", role: supervisor, confirm: "no"}
params:
  navigation: {obstacle_decay_s: 60.0}
faults:
- {when: {task_status: "attempt 1 failed"}, kind: remove_body, id: wall}
criteria: {mission: declined, step_attempts: [1, 1]}
"""


@pytest.mark.parametrize("change, where, words", [
    (('confirm: "no"', "confirm: no"), "mission.confirm", "quote the answer"),
    (('confirm: "no"', 'confirm: "maybe"'), "mission.confirm", "maybe"),
    (("mission: declined", "mission: rejected"), "criteria.mission", "declined"),
    (("step_attempts: [1, 1]", "step_attempts: [1, two]"), "criteria.step_attempts[1]",
     "int"),
    (("step_attempts: [1, 1]", "step_attempts: []"), "criteria.step_attempts", "at least 1"),
    (('task_status: "attempt 1 failed"', 'task_status: ""'), "faults[0].when.task_status",
     "non-empty"),
    (("navigation: {", "simulator: {"), "params.simulator", "keys 'sim'"),
    (("obstacle_decay_s: 60.0", "obstacle_decay_s: {a: 1}"),
     "params.navigation.obstacle_decay_s", "a number, string"),
])
def test_task_mission_keys_are_checked(tmp_path, change, where, words):
    p = write(tmp_path, TASK.replace(*change))
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    msg = str(e.value)
    assert str(p) in msg and where in msg and words in msg, msg


def test_task_mission_loads_and_prepares_the_stack(tmp_path):
    (sc,) = load_scenario(write(tmp_path, TASK))
    assert sc.mission.confirm == "no" and sc.criteria.mission == "declined"
    assert sc.criteria.step_attempts == (1, 1)
    assert sc.faults[0].when["task_status"] == "attempt 1 failed"
    prep = prepare_run(sc, tmp_path / "run")
    a = prep["launch_args"]
    assert prep["launch_file"] == "regress_task.launch.yaml"
    assert (a["camera"], a["planner"], a["pose_source"]) == ("false", "true", "filter")
    import yaml
    nodes = yaml.safe_load(Path(a["node_params"]).read_text())
    # every node of a run: barrier participation, and rclpy's events executor
    assert nodes == {"/**": {"ros__parameters": {"sim_lockstep": False, "executor": "events"}},
                     "navigation": {"ros__parameters": {"obstacle_decay_s": 60.0}}}
    sup = yaml.safe_load((tmp_path / "run" / "supervisor_params.yaml").read_text())
    sup = sup["safety_supervisor"]["ros__parameters"]
    assert sup["people_required"] is True and sup["localization_source"] == "filter"
    # a node that does not run in the mission's stack is named
    bad = TASK.replace("kind: instruction", "kind: none").replace(
        ', text: "close the T2 cooling valve", role: supervisor, confirm: "no"', "")
    with pytest.raises(ScenarioError, match=r"params\.navigation.*kind 'none'"):
        load_scenario(write(tmp_path, bad.replace("mission: declined", "mission: any"), "n.yaml"))


def test_removed_bodies_count_only_while_present_and_attempts_are_judged():
    """A wall the robot drives through after it was removed is no collision; one present
    at that time is. The step attempts of the executor's result are checked."""
    sc = load_scenario(SUITE / "substation_blocked_path_retry.yaml")[0]
    world = load_world("substation")
    world = dataclasses.replace(world, actors=())
    # straight north through the south wall (y = -8.1) from (-11, -10) to (-11, -7)
    truth = [(i * 0.1, -11.0, -10.0 + 0.03 * i, 1.57, 0.3) for i in range(101)]
    rec = {"truth": truth, "people": [], "safety": [], "cmd_in": [], "cmd_out": [],
           "sim_faults": [{"t": 0.0, "phase": "start", "kind": "spawn_body", "id": b["id"]}
                          for b in sc.bodies]}
    mission = {"outcome": "succeeded", "details": {"result": {"code": 0, "steps": [
        {"outcome": 1, "attempts": 2, "readings": []}]}}}
    run = {"sim_time_s": 10.0, "wall_s": 12.0, "run_wall_s": 10.0, "events": [],
           "mission": mission, "fault_time": {}, "failed": [], "killed": []}
    m = compute_metrics(sc, world, rec, run)
    assert m["static_clearance_m"] < 0 and m["step_attempts"] == [2]
    checks = {c.name: c for c in judge(sc, m, run, rec)}
    assert not checks["no_collision"].ok and checks["step_attempts"].ok
    # the walls removed at t = 4 s: the robot reaches y = -8.1 only at t = 6.3 s
    rec["sim_faults"] += [{"t": 4.0, "phase": "start", "kind": "remove_body", "id": b["id"]}
                          for b in sc.bodies]
    m = compute_metrics(sc, world, rec, run)
    assert m["static_clearance_m"] == pytest.approx(0.33, abs=0.01)   # at t = 3.9 s
    mission["details"]["result"]["steps"][0]["attempts"] = 1
    m = compute_metrics(sc, world, rec, run)
    checks = {c.name: c for c in judge(sc, m, run, rec)}
    assert checks["no_collision"].ok and not checks["step_attempts"].ok
    assert checks["step_attempts"].value == [1]


def test_runs_are_ordered_longest_first():
    from sitebot.apps.regress import estimate_wall_s, order_runs
    scs = {s.name: s for s in load_scenarios([SUITE])}
    runs = [(s, 0) for s in scs.values()]
    names = [s.name for s, _ in order_runs(runs)]
    assert names.index("datacentre_goals_cooling_check") < names.index("substation_scan_dropout")
    assert estimate_wall_s(scs["substation_valve_refused_for_operator"]) < 20.0
    # measured wall times of an earlier run win over the estimate
    prev = {"substation_scan_dropout": 900.0}
    assert order_runs(runs, prev)[0][0].name == "substation_scan_dropout"


def test_executor_results_become_mission_outcomes():
    from sitebot.regress.plan_msgs import OUTCOME_DECLINED
    from sitebot.regress.plan_msgs import plan_outcome as _plan_outcome
    from sitebot_interfaces.msg import StepOutcome
    assert OUTCOME_DECLINED == StepOutcome.OUTCOME_DECLINED == 4
    ok, failed, declined = {"outcome": 1}, {"outcome": 2}, {"outcome": 4}
    assert _plan_outcome(0, [ok, ok]) == "succeeded"
    assert _plan_outcome(2, [ok, declined]) == "declined"      # aborted by the answer "no"
    assert _plan_outcome(2, [ok, failed]) == "aborted"
    assert _plan_outcome(1, [failed]) == "failed"
    assert _plan_outcome(4, []) == "refused"


def test_lockstep_runs_unpaced_and_makes_every_node_a_participant(tmp_path):
    (sc,) = load_scenario(write(tmp_path, TASK))
    prep = prepare_run(sc, tmp_path / "run", lockstep=True)
    import yaml
    sim = yaml.safe_load((tmp_path / "run" / "sim_params.yaml").read_text())
    sim = sim["simulator"]["ros__parameters"]
    assert sim["lockstep"] is True and sim["real_time_factor"] == 0.0
    assert sim["executor"] == "events"
    sup = yaml.safe_load((tmp_path / "run" / "supervisor_params.yaml").read_text())
    assert sup["safety_supervisor"]["ros__parameters"]["sim_lockstep"] is True
    assert sup["safety_supervisor"]["ros__parameters"]["executor"] == "events"
    nodes = yaml.safe_load(Path(prep["launch_args"]["node_params"]).read_text())
    assert nodes["/**"] == {"ros__parameters": {"sim_lockstep": True, "executor": "events"}}
