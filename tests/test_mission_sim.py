"""A mission from an English instruction, through launch: the whole stack
(launch/mission.launch.yaml: simulator, supervisor, perception, localization, navigation, arm
planner, language planner, executor) as separate processes. The test says what to do on
``task/command`` and judges the result: the plan, the executor's outcome, and the gauge
reading against the simulator's true dial value.
"""
from __future__ import annotations

import json

import pytest
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from sitebot.launcher import launched
from sitebot.nodes.common import QOS_COMMAND
from sitebot.world import load_world
from sitebot_interfaces.msg import TaskCommand, TaskPlan
from rosprobe import Probe

pytestmark = pytest.mark.integration


def test_read_a_gauge_from_an_english_instruction(tmp_path) -> None:
    world = load_world("substation")
    truth = world.gauge("t1_oil_pressure_gauge").value
    span = world.registry.asset("t1_oil_pressure_gauge").gauge
    probe = Probe("mission_probe")
    try:
        probe.subscribe(TaskPlan, "task/plan", qos=QOS_COMMAND)
        probe.subscribe(String, "task/status")
        probe.subscribe(Clock, "/clock", keep=False)
        cmd = probe.publisher(TaskCommand, "task/command", QOS_COMMAND)
        with launched("mission.launch.yaml", {"world": "substation", "out_dir": str(tmp_path),
                                              "real_time_factor": "1.0"}) as h:
            probe.wait_for(lambda: cmd.get_subscription_count() > 0
                           and probe.count("/clock") > 50, 120, "planner and clock",
                           launch=h)
            cmd.publish(TaskCommand(request_id="t1read", role="operator",
                                    text="please check the T1 oil pressure gauge"))
            probe.wait_for(lambda: probe.count("task/plan") > 0, 60, "the plan", launch=h)
            plan = probe.get("task/plan")[-1][1]
            assert plan.status == TaskPlan.STATUS_OK, plan.question or plan.reason
            assert [(s.skill, list(s.arg_values)) for s in plan.steps] == [
                ("navigate_to", ["t1_bay"]), ("read_gauge", ["t1_oil_pressure_gauge"])]

            def finished():
                return [json.loads(m.data) for _, m in probe.get("task/status")
                        if json.loads(m.data).get("state") == "finished"]
            probe.wait_for(lambda: bool(finished()), 420, "the mission to finish", launch=h)
            assert finished()[-1]["code"] == "SUCCEEDED", finished()[-1]["reason"]
    finally:
        probe.close()
    report = json.loads((tmp_path / "t1read" / "report.json").read_text())
    (reading,) = report["readings"]
    assert reading["unit"] == "bar"
    err = abs(reading["value"] - truth) / (span.max_value - span.min_value)
    assert err <= 0.02, f"read {reading['value']:.3f} bar, true {truth} bar"
    assert reading["confidence"] >= 0.5
    assert report["outcomes"] == {"succeeded": 2}
