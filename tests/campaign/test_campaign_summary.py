"""The campaign's figures (sitebot.campaign.summary) on the synthetic campaign folder of
``conftest.py`` and on runs in memory: skills, rates with their Wilson intervals, times to
complete, safety over all runs, success by variable and its bins."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sitebot.campaign.summary import (load_campaign, mission_skills, quantile_bins,
                                      run_skills, summarize)
from sitebot.errors import SitebotError


@pytest.fixture
def summary(synthetic_campaign: Path) -> dict:
    return summarize(load_campaign(synthetic_campaign)[1])


def test_each_run_counts_in_every_skill_it_exercises(synthetic_campaign):
    _, runs = load_campaign(synthetic_campaign)
    skills = {r["name"]: run_skills(r) for r in runs}
    assert skills["fetch[seed=2]"] == ["navigate_to", "pick", "place"]     # plan_steps
    assert skills["gauge[seed=0]"] == ["instruction", "navigate_to", "read_gauge"]
    assert skills["gauge[seed=1]"] == ["instruction"]          # refused: no plan ran
    assert skills["gauge[seed=2]"] == []                       # died: nothing recorded
    assert skills["crossing[seed=0]"] == ["drive"]


def test_skills_from_every_record_a_run_leaves(tmp_path):
    # the executor's mission report stands in for a result without plan_steps
    rep = tmp_path / "executor" / "regress_plan" / "report.json"
    rep.parent.mkdir(parents=True)
    rep.write_text(json.dumps({"steps": [{"skill": "dock", "outcome": "succeeded"}]}))
    assert run_skills({"mission": "plan", "run_dir": str(tmp_path)}) == ["dock"]
    # the campaign's declared skills, goal events and tags naming a skill add up
    assert run_skills({"skills": ["operate_valve"], "events": [{"kind": "goal_sent"}],
                       "tags": ["patrol", "safety"]}) == ["navigate_to", "operate_valve",
                                                          "patrol"]
    assert run_skills({"mission": "none", "metrics": {"commands_in": 0}}) == ["stand"]
    assert mission_skills("goals") == ["navigate_to"]
    assert mission_skills("plan", [{"skill": "pick"}, {"skill": "pick"}]) == ["pick"]
    assert mission_skills("none", drive=True) == ["drive"]


def test_rates_per_template_world_and_skill(summary):
    t = summary["per_template"]
    assert [(k, v["passed"], v["judged"], v["errors"]) for k, v in t.items()] == [
        ("crossing", 1, 2, 0), ("fetch", 3, 4, 0), ("gauge", 1, 2, 1)]
    assert t["fetch"]["ci95"] == [0.3006, 0.9544]          # Wilson 95 %, 3 of 4
    w = summary["per_world"]
    assert (w["construction"]["passed"], w["construction"]["judged"]) == (3, 4)
    assert (w["substation"]["passed"], w["substation"]["judged"],
            w["substation"]["errors"]) == (2, 4, 1)
    assert w["substation"]["ci95"] == [0.15, 0.85]          # 2 of 4
    s = summary["per_skill"]
    assert {k: (v["passed"], v["judged"]) for k, v in s.items()} == {
        "drive": (1, 2), "instruction": (1, 2), "navigate_to": (4, 5), "pick": (3, 4),
        "place": (3, 4), "read_gauge": (1, 1)}
    assert s["navigate_to"]["ci95"] == [0.3755, 0.9638]    # 4 of 5
    assert s["instruction"]["ci95"] == [0.0945, 0.9055]    # 1 of 2
    assert s["read_gauge"]["ci95"] == [0.2065, 1.0]        # 1 of 1: exact upper bound
    assert [c["label"] for c in summary["failure_causes"]] == [
        "grasp_missed", "infrastructure_error", "planner_clarify", "safety_violation"]


def test_time_to_complete_quantiles_of_the_passed_runs(summary):
    fetch = summary["time_to_complete"]["per_template"]["fetch"]
    # 40, 50, 70 s (the failed run's time is not counted); p90 = 50 + 0.8 * 20
    assert (fetch["n"], fetch["min"], fetch["median"], fetch["p90"], fetch["max"]) == \
        (3, 40.0, 50.0, 66.0, 70.0)
    assert fetch["times"] == [40.0, 50.0, 70.0]
    crossing = summary["time_to_complete"]["per_template"]["crossing"]
    assert (crossing["n"], crossing["without_time"], crossing["median"]) == (0, 1, None)
    sub = summary["time_to_complete"]["per_world"]["substation"]
    assert (sub["n"], sub["without_time"], sub["min"], sub["max"]) == (1, 1, 30.0, 30.0)


def test_safety_over_all_runs_lists_every_violation(summary):
    s = summary["safety"]
    assert (s["runs_measured"], s["runs"], s["ok"]) == (8, 9, False)
    assert s["contacts"] == ["crossing[seed=1]"]
    assert s["min_separation_m"] == {"value": -0.05, "run": "crossing[seed=1]"}
    assert s["min_separation_robot_moving_m"] == {"value": -0.05, "run": "crossing[seed=1]"}
    assert s["min_separation_robot_still_m"] == {"value": 0.3, "run": "crossing[seed=1]"}
    assert s["keep_out_excursions"] == ["fetch[seed=3]"]
    assert s["min_keep_out_clearance_m"]["value"] == -0.03
    assert s["collisions"] == [] and s["min_static_clearance_m"]["value"] == 0.4
    assert s["slow_zone_speeding"] == ["gauge[seed=0]"]     # 0.12 m/s over; 0.04 is within
    assert s["max_slow_zone_excess_mps"] == {"value": 0.12, "run": "gauge[seed=0]"}
    assert s["max_speed_near_people_mps"] == {"value": 0.4, "run": "crossing[seed=1]",
                                              "distance_m": 1.0}
    # failed safety checks, and figures beyond a check's limit that no check judged
    assert [(v["run"], v["checks"], v["measured"]) for v in s["violations"]] == [
        ("fetch[seed=3]", [], ["no_keep_out"]), ("gauge[seed=0]", [], ["slow_zones"]),
        ("crossing[seed=1]", ["min_separation", "no_contact_with_people"], [])]


def test_success_by_drawn_value_and_derived_variable(summary):
    by = {(v["template"], v["variable"]): v for v in summary["by_variable"]}
    assert list(by) == [("crossing", "actors.add[0].yields"), ("fetch", "actors.add[0].speed"),
                        ("fetch", "objects.torque_wrench.turn"), ("gauge", "mission.text"),
                        (None, "people count"), (None, "lighting preset"),
                        (None, "clutter count")]

    def table(key):
        return [(g["value"], g["passed"], g["judged"]) for g in by[key]["groups"]]
    assert table(("crossing", "actors.add[0].yields")) == [("false", 1, 1), ("true", 0, 1)]
    # four distinct numbers: one row each (quantile bins from five on), in numeric order
    assert by[("fetch", "objects.torque_wrench.turn")]["kind"] == "values"
    assert table(("fetch", "objects.torque_wrench.turn")) == [
        ("-40", 1, 1), ("5", 1, 1), ("15", 1, 1), ("80", 0, 1)]
    gauge = by[("gauge", "mission.text")]["groups"]
    assert [(g["value"], g["judged"], g["errors"]) for g in gauge] == [
        ("read gauge g1", 1, 0), ("read gauge g2", 0, 1), ("read the gauge", 1, 0)]
    # derived from the run folders: the world's actors (else plot.json's people), the
    # simulator's lighting preset, the bodies; the errored run is unknown
    assert table((None, "people count")) == [("0", 2, 2), ("1", 2, 4), ("2", 1, 2)]
    assert by[(None, "people count")]["unknown"] == 1
    assert table((None, "lighting preset")) == [("default", 3, 4), ("low_sun", 1, 2)]
    assert by[(None, "lighting preset")]["unknown"] == 3
    assert table((None, "clutter count")) == [("0", 2, 4), ("1", 3, 4)]


def test_numbers_fall_into_quantile_bins():
    speeds = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
    passed = [True, True, True, False, True, False, False, False]
    runs = [{"name": f"t[seed={i}]", "template": "t", "world": "w",
             "status": "passed" if ok else "failed", "draws": {"speed": v, "lit": "dim"}}
            for i, (v, ok) in enumerate(zip(speeds, passed))]
    # numpy's linear quantiles of 0.5 .. 1.2: 0.5, 0.675, 0.85, 1.025, 1.2
    assert quantile_bins(speeds) == pytest.approx([0.5, 0.675, 0.85, 1.025, 1.2])
    var = summarize(runs)["by_variable"][0]
    assert (var["variable"], var["kind"], var["distinct"]) == ("speed", "bins", 8)
    assert [(g["value"], g["passed"], g["judged"]) for g in var["groups"]] == [
        ("[0.5, 0.675]", 2, 2), ("(0.675, 0.85]", 1, 2), ("(0.85, 1.025]", 1, 2),
        ("(1.025, 1.2]", 0, 2)]
    assert var["groups"][0]["ci95"] == [0.3424, 1.0]          # 2 of 2
    # drawn lists of people or boxes are counted
    runs = [{"name": f"u[seed={i}]", "template": "u", "status": "passed" if i else "failed",
             "draws": {"actors.add": [{"id": "person1"}] * i, "start": [float(i), 0.0]}}
            for i in range(3)]
    var = {v["variable"]: v for v in summarize(runs)["by_variable"]}
    assert [(g["value"], g["passed"], g["judged"]) for g in
            var["actors.add (entries)"]["groups"]] == [("0", 0, 1), ("1", 1, 1), ("2", 1, 1)]
    assert [g["value"] for g in var["start"]["groups"]] == ["[0.0,0.0]", "[1.0,0.0]",
                                                             "[2.0,0.0]"]
    # repeated values merge edges: six 1s, then 2 .. 5 give the bins [1, 2.75] and (2.75, 5]
    assert quantile_bins([1, 1, 1, 1, 1, 1, 2, 3, 4, 5]) == [1.0, 2.75, 5.0]


def test_a_missing_or_broken_campaign_json_is_named(tmp_path):
    with pytest.raises(SitebotError, match=re.escape(f"{tmp_path / 'campaign.json'}: cannot read")):
        load_campaign(tmp_path)
    (tmp_path / "campaign.json").write_text('{"runs": [')
    with pytest.raises(SitebotError, match="campaign.json: not valid JSON"):
        load_campaign(tmp_path)
    (tmp_path / "campaign.json").write_text('{"runs": [{"name": "a[seed=0]"}]}')
    with pytest.raises(SitebotError, match=r"campaign.json: runs\[0\]: a run needs"):
        load_campaign(tmp_path)
    (tmp_path / "campaign.json").write_text('[1, 2]')
    with pytest.raises(SitebotError, match="not a campaign result"):
        load_campaign(tmp_path / "campaign.json")
