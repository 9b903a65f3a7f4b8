"""task_executor node with real rclpy: the ExecutePlan action, task/plan, confirmation.

``RobotDouble`` is a test double of the navigation and arm action servers, the supervisor's
safety/state and perception's gauges (it keeps their message contracts); the mission tests
in simulation run the executor against the real nodes.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.action import ActionClient, ActionServer
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE
from sitebot.nodes.task_executor import TaskExecutorNode
from sitebot.security import Authority, plan_digest
from sitebot_interfaces.action import ExecutePlan, MoveArm, NavigateToPlace
from sitebot_interfaces.msg import (GaugeReading, SafetyState, StepOutcome, TaskCommand, TaskPlan,
                                    TaskStep)

from rosprobe import spin_until


class RobotDouble(Node):
    """Test double: navigation/arm action servers that succeed after a short wait (or
    report BLOCKED for listed places), a NORMAL safety state at 20 Hz, gauge readings."""

    def __init__(self, context) -> None:
        super().__init__("robot_double", context=context)
        cb = ReentrantCallbackGroup()
        self.blocked: dict[str, int] = {}        # place -> how many times to report blocked
        self.nav_goals: list[str] = []
        self.arm_goals: list[str] = []
        ActionServer(self, NavigateToPlace, "navigate_to_place", self.nav, callback_group=cb)
        ActionServer(self, MoveArm, "move_arm", self.arm, callback_group=cb)
        self.safety = self.create_publisher(SafetyState, "safety/state", QOS_STATE)
        self.gauges = self.create_publisher(GaugeReading, "gauges", QOS_SENSOR)
        self.create_timer(0.05, self.tick, callback_group=cb)

    def tick(self) -> None:
        s = SafetyState(level=SafetyState.LEVEL_NORMAL, speed_scale=1.0)
        s.header.stamp = self.get_clock().now().to_msg()
        self.safety.publish(s)
        g = GaugeReading(asset_id="t1_oil_pressure_gauge", valid=True, value=1.21,
                         unit="bar", confidence=0.93)
        g.header.stamp = s.header.stamp
        self.gauges.publish(g)

    def nav(self, handle):
        place = handle.request.place_id
        self.nav_goals.append(place)
        time.sleep(0.05)
        res = NavigateToPlace.Result()
        if self.blocked.get(place, 0) > 0:
            self.blocked[place] -= 1
            res.code, res.reason = NavigateToPlace.Result.CODE_BLOCKED, "corridor blocked"
            handle.abort()
        else:
            res.code = NavigateToPlace.Result.CODE_SUCCEEDED
            handle.succeed()
        return res

    def arm(self, handle):
        self.arm_goals.append(handle.request.named_pose or "pose")
        handle.succeed()
        return MoveArm.Result(code=MoveArm.Result.CODE_SUCCEEDED)


@pytest.fixture()
def stack(tmp_path: Path):
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    ex = MultiThreadedExecutor(num_threads=6, context=ctx)
    executor = TaskExecutorNode(context=ctx, parameter_overrides=[
        Parameter("out_dir", value=str(tmp_path)), Parameter("gauge_timeout_s", value=5.0),
        Parameter("confirm_timeout_s", value=5.0), Parameter("server_wait_s", value=5.0)])
    double = RobotDouble(ctx)
    client = Node("test_client", context=ctx)
    for n in (executor, double, client):
        ex.add_node(n)
    thread = threading.Thread(target=ex.spin, daemon=True)
    thread.start()
    yield executor, double, client, tmp_path
    ex.shutdown()
    for n in (executor, double, client):
        n.destroy_node()
    rclpy.shutdown(context=ctx)


def task_plan(plan_id: str, role: str, *steps: tuple, signed: bool = False) -> TaskPlan:
    """A plan message; *signed*: with the planner's assertion for *role* (the session's
    key, tests/conftest.py)."""
    msg = TaskPlan(plan_id=plan_id, status=TaskPlan.STATUS_OK, role=role)
    for skill, args in steps:
        msg.steps.append(TaskStep(skill=skill, arg_names=list(args),
                                  arg_values=list(args.values())))
    if signed:
        msg.authority = Authority.open("").sign("plan", plan_id, "sam", role, time.time(),
                                                digest=plan_digest(steps))
    return msg


def wait(fut, timeout: float = 30.0):
    spin_until(fut.done, timeout, "the action future", step=0.01)
    return fut.result()


def send(client: Node, plan: TaskPlan, confirmed: bool = False):
    ac = ActionClient(client, ExecutePlan, "execute_plan")
    assert ac.wait_for_server(timeout_sec=10.0)
    feedback: list[ExecutePlan.Feedback] = []
    handle = wait(ac.send_goal_async(ExecutePlan.Goal(plan=plan, confirmed=confirmed),
                                     feedback_callback=lambda f: feedback.append(f.feedback)))
    return handle, feedback


def test_plan_runs_with_feedback_readings_and_report(stack) -> None:
    executor, double, client, out = stack
    plan = task_plan("m1", "operator", ("navigate_to", {"place": "t1_bay"}),
                     ("read_gauge", {"asset": "t1_oil_pressure_gauge"}), ("dock", {}))
    double.blocked["t1_bay"] = 1                 # first attempt blocked, retry succeeds
    handle, feedback = send(client, plan)
    assert handle.accepted
    res = wait(handle.get_result_async(), 60.0).result
    assert res.code == ExecutePlan.Result.CODE_SUCCEEDED, res.reason
    assert [s.outcome for s in res.steps] == [StepOutcome.OUTCOME_SUCCEEDED] * 3
    assert res.steps[0].attempts == 2
    (reading,) = res.steps[1].readings
    assert reading.value == pytest.approx(1.21) and reading.unit == "bar"
    assert double.nav_goals == ["t1_bay", "t1_bay", "dock_bay"]
    assert double.arm_goals and set(double.arm_goals) == {"stow"}
    assert {f.step_index for f in feedback} == {0, 1, 2}
    assert all(f.step_count == 3 for f in feedback)
    report = json.loads((out / "m1" / "report.json").read_text())
    assert report["result"] == "succeeded" and report["readings"][0]["value"] == pytest.approx(1.21)
    assert report["outcomes"] == {"succeeded": 3}


def test_valve_confirmation_declined_stops_before_motion(stack) -> None:
    executor, double, client, out = stack
    requests: list[dict] = []
    client.create_subscription(String, "task/confirmation_request",
                               lambda m: requests.append(json.loads(m.data)), QOS_COMMAND)
    confirm = client.create_publisher(TaskCommand, "task/confirm", QOS_COMMAND)
    plan = task_plan("v1", "supervisor", ("navigate_to", {"place": "t1_valve_stand"}),
                     ("operate_valve", {"asset": "t1_cooling_valve", "action": "close"}),
                     signed=True)
    handle, _ = send(client, plan)
    end = time.monotonic() + 20
    while not requests and time.monotonic() < end:
        time.sleep(0.02)
    assert requests and requests[0]["plan_id"] == "v1"
    assert "close T1 cooling valve" in requests[0]["question"]
    # an unsigned "yes" claiming a supervisor does not count; a "no" declines (from anyone)
    confirm.publish(TaskCommand(text="yes", role="supervisor", in_reply_to="v1"))
    answers = executor.authority.audit.records
    spin_until(lambda: any(r["event"] == "confirmation_answer" for r in answers), 10.0,
               "the executor's audit of the answer")
    confirm.publish(TaskCommand(text="no", role="supervisor", in_reply_to="v1"))
    res = wait(handle.get_result_async(), 30.0).result
    assert res.code == ExecutePlan.Result.CODE_ABORTED
    assert res.steps[1].outcome == StepOutcome.OUTCOME_DECLINED
    assert not any(g.startswith("valve") for g in double.arm_goals)


def test_operator_valve_plan_is_rejected_and_bad_plans_refused(stack) -> None:
    executor, double, client, out = stack
    plan = task_plan("v2", "operator",
                     ("operate_valve", {"asset": "t1_cooling_valve", "action": "open"}))
    handle, _ = send(client, plan)
    res = wait(handle.get_result_async(), 30.0).result
    assert res.code == ExecutePlan.Result.CODE_REJECTED and "supervisor" in res.reason
    bad = task_plan("b1", "operator", ("navigate_to", {"place": "t1_bay"}))
    bad.steps[0].arg_values.append("extra")
    handle, _ = send(client, bad)
    res = wait(handle.get_result_async(), 30.0).result
    assert res.code == ExecutePlan.Result.CODE_REJECTED and "argument names" in res.reason
    assert double.nav_goals == []


def test_plan_topic_runs_when_auto_execute(stack) -> None:
    executor, double, client, out = stack
    status: list[dict] = []
    client.create_subscription(String, "task/status", lambda m: status.append(json.loads(m.data)),
                               QOS_STATE)
    pub = client.create_publisher(TaskPlan, "task/plan", QOS_COMMAND)
    end = time.monotonic() + 10
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        time.sleep(0.02)
    pub.publish(task_plan("t1", "operator", ("navigate_to", {"place": "t2_bay"})))
    end = time.monotonic() + 30
    while not any(s.get("state") == "finished" for s in status) and time.monotonic() < end:
        time.sleep(0.02)
    fin = [s for s in status if s.get("state") == "finished"]
    assert fin and fin[0]["code"] == "SUCCEEDED" and double.nav_goals == ["t2_bay"]
    assert (out / "t1" / "report.json").is_file()
