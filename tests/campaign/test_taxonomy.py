"""Failure labels (sitebot.campaign.taxonomy), read from the wording runs really record:
the executor's failed steps (sitebot.executor.skills), checks and safety timelines."""
from __future__ import annotations

import pytest

from sitebot.campaign.taxonomy import LABELS, label_run


def _failed(reason: str = "", checks=None, timeline=None, **extra):
    return {"status": "failed", "reason": "",
            "checks": checks if checks is not None else [{"name": "mission", "ok": False,
                                                          "value": "failed", "limit": "done"}],
            "events": [{"t": 76.9, "kind": "mission_done", "outcome": "failed",
                        "reason": reason}] if reason else [],
            "metrics": {"safety_timeline": timeline or []}, "failed_processes": [], **extra}


@pytest.mark.parametrize("reason, label", [
    # the construction fetch that failed in a side-by-side measurement (docs/throughput.md)
    ("step 2/4 pick(object=torque_wrench): grasp of torque_wrench missed (fingers closed to "
     "0.0 mm) (after 2 attempts)", "grasp_missed"),
    ("step 2/4 pick(object=spill_kit): arm to the grasp: rejected (no collision-free IK "
     "solution within tolerance (best: 201.9 mm)) (after 1 attempts)", "grasp_unreachable"),
    ("step 1/3 pick(object=drill): drill not found near tool_bench", "object_not_found"),
    # the perception-planned pick's words (sitebot.executor.skills.Pick._grasp_seen)
    ("step 2/4 pick(object=spill_kit): no grasp of spill_kit: no feasible grasp among 18 "
     "candidates: 14 x no IK solution (after 2 attempts)", "grasp_unreachable"),
    ("step 2/4 pick(object=drill): grasp of drill failed after 3 of 9 candidates (last: "
     "fingers closed to 0.0 mm) (after 2 attempts)", "grasp_missed"),
    ("step 2/4 pick(object=drill): grasp of drill failed after 9 of 9 candidates (last: "
     "top grasp: rejected) (after 2 attempts)", "grasp_unreachable"),
    ("step 2/4 pick(object=wrench): wrench slipped out while lifting (fingers at 0.4 mm, "
     "were 13.0 mm) (after 2 attempts)", "object_dropped"),
    ("step 1/2 read_gauge(asset=t2_pressure): no confident reading of t2_pressure within "
     "20 s (1 of 5 valid; last problem: needle not found)", "gauge_unreadable"),
    ("step 3/5 navigate_to(place=t2_bay): robot stopped for more than 120 s (person_nearby)",
     "supervisor_hold_timeout"),
    ("step 1/2 navigate_to(place=rack_a3): navigate to rack_a3: blocked (no path)",
     "navigation_blocked"),
    ("step 4/4 dock(dock=dock_1): dock dock_1: aborted (stalled)", "navigation_blocked"),
    ("step 2/2 navigate_to(place=ups): navigate to ups: timeout (navigation took longer "
     "than 90 s)", "skill_timeout"),
])
def test_the_mission_reason_names_the_failure(reason, label):
    got = label_run(_failed(reason))
    assert got == (label, reason) and label in LABELS


def test_causes_come_before_their_symptoms():
    # a diverged filter holds the robot: the hold timeout is its symptom
    diverged = [{"t0": 10.0, "t1": 140.0, "level": "PROTECTIVE_STOP",
                 "reasons": ["localization_diverged"]}]
    label, evidence = label_run(_failed("step 2/3 patrol(route=r1): robot stopped for more "
                                        "than 120 s (localization_diverged)", timeline=diverged))
    assert label == "localization_diverged" and "robot stopped" in evidence
    # a dead node before anything else; a safety violation before the mission's reason
    assert label_run(_failed("x", failed_processes=["navigation"]))[0] == "node_died"
    unsafe = [{"name": "no_contact_with_people", "ok": False, "value": 0.0, "limit": "> 0"}]
    assert label_run(_failed("grasp of x missed", checks=unsafe)) == (
        "safety_violation", "no_contact_with_people")


def test_runs_without_a_mission_reason():
    assert label_run({"status": "passed"}) is None
    assert label_run({"status": "skipped"}) is None
    assert label_run({"status": "error", "reason": "worker ended (exit -9)"}) == (
        "infrastructure_error", "worker ended (exit -9)")
    limit = [{"name": "time_limit", "ok": False, "value": 400.0, "limit": 300.0}]
    assert label_run(_failed(checks=limit))[0] == "time_limit"
    travel = [{"name": "min_travel", "ok": False, "value": 0.4, "limit": 2.0}]
    assert label_run(_failed(checks=travel)) == ("criteria", "min_travel: 0.4 (limit 2.0)")
    assert label_run(_failed("step 1/1 wave(): something new", checks=[])) == (
        "unlabelled", "step 1/1 wave(): something new")


def _ended(outcome: str, reason: str):
    r = _failed()
    r["events"] = [{"t": 0.0042, "kind": "mission_done", "outcome": outcome,
                    **({"reason": reason} if reason else {})}]
    return r


def test_the_first_campaigns_failures_are_labelled():
    """The wording of the first shipped-template campaign's failures (out/campaign1)."""
    # the planner asked back / refused: the outcome leads the evidence
    clarify = ("I don't know 'the cart park' on this site. Did you mean cart parking spot "
               "(cart_park), server cart (server_cart) or Rack C2 (rack_c2)?")
    assert label_run(_ended("clarify", clarify)) == ("planner_clarify", f"clarify: {clarify}")
    refused = ("step 1 (navigate_to(ups_a_stand)): 'UPS A stand' lies inside restricted zone "
               "'UPS room restricted zone' (ups_room_zone)")
    assert label_run(_ended("refused", refused)) == ("planner_refused", f"refused: {refused}")
    # an arm motion the planner rejected that is not a grasp
    valve = ("step 2/2 operate_valve(action=close, asset=crac1_chw_valve): arm to "
             "'valve_close': rejected (goal in collision: gripper_right_finger_link collides "
             "with scene 'crac1_chw_pipe') (after 1 attempts)")
    assert label_run(_ended("failed", valve)) == ("arm_motion_rejected", valve)
    reach = ("step 2/4 pick(object=drill): arm to the grasp: rejected (end-effector target "
             "[0.836, 0.745, 0.77] is 1.10 m from the shoulder, beyond the arm's reach) "
             "(after 1 attempts)")
    assert label_run(_ended("failed", reach)) == ("grasp_unreachable", reach)
    # the tool left the gripper on the way: the place step finds nothing to put down
    dropped = ("step 4/4 place(place=rack_b5_front): nothing in the gripper to put down "
               "(after 2 attempts); stowing the arm failed: aborted not reached after 3.5 s")
    assert label_run(_ended("failed", dropped)) == ("object_dropped", dropped)
    # a goals mission: the first failed goal in the navigate skill's words (regress.driver)
    goal = ("navigate to t3_bay: blocked (no progress toward the goal for more than 30 s "
            "(closest 4.2 m): detours and recoveries)")
    assert label_run(_ended("failed", goal)) == ("navigation_blocked", goal)
