"""The main job's progress lines (sitebot.apps.demo): one per executor step state."""
from __future__ import annotations

from sitebot.apps.demo import _print_progress
from sitebot_interfaces.msg import TaskPlan, TaskStep


class Clock:
    def get(self, topic: str) -> list:
        return [(41.25, None)] if topic == "/clock" else []


def test_each_step_state_is_one_line_with_sim_and_wall_time(capsys):
    plan = TaskPlan(steps=[TaskStep(skill="navigate_to", arg_names=["place"],
                                    arg_values=["t1_gauge"]),
                           TaskStep(skill="read_gauge", arg_names=["asset"],
                                    arg_values=["t1_oil_pressure_gauge"])])
    for state, message in (("running read_gauge (attempt 1)", ""),
                           ("paused: protective stop", "person in the protective field"),
                           ("done read_gauge", "1.2 bar")):
        _print_progress({"plan_id": "p", "step": 2, "steps": 2, "skill": "read_gauge",
                         "state": state, "message": message}, Clock(), 12.5, plan)
    _print_progress({"plan_id": "p", "state": "finished", "code": "SUCCEEDED"}, Clock(),
                    13.0, plan)
    assert capsys.readouterr().out.splitlines() == [
        "[sim    41.2 s | wall    12.5 s] 2/2 read_gauge(asset=t1_oil_pressure_gauge): "
        "running (attempt 1)",
        "[sim    41.2 s | wall    12.5 s] 2/2 read_gauge(asset=t1_oil_pressure_gauge): "
        "paused: protective stop: person in the protective field",
        "[sim    41.2 s | wall    12.5 s] 2/2 read_gauge(asset=t1_oil_pressure_gauge): done"]
