"""Authority is authenticated, not claimed (issue 19, finding 2), against the real nodes in
this process (as tests/executor/test_task_executor_node.py starts them; the key is the
session's, tests/conftest.py):

* an ExecutePlan goal claiming ``role=supervisor, confirmed=true`` for operate_valve with no,
  a forged or an expired assertion is refused before anything moves (0 high-risk steps, 0
  navigation or arm goals, 0 ``cmd_vel_in``) and audited with the claimed role;
* the same mission through the console's bridge (signed command -> planner -> signed plan ->
  signed confirmation) runs, and the high-risk step is audited with who confirmed it;
* the supervisor refuses ``set_parameters mode=manual`` (the mode stays), an unsigned reset
  and the old ``safety/reset``; a ``safety/estop`` release from a second publisher does not
  release the first one's press.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.action import ActionClient, ActionServer
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from sitebot.console.auth import User, UserStore
from sitebot.console.bridge import ConsoleBridge
from sitebot.console.server import ConsoleServer
from sitebot.console.views import ConsoleViews
from sitebot.nodes.common import QOS_COMMAND, QOS_STATE
from sitebot.nodes.task_executor import TaskExecutorNode
from sitebot.nodes.task_planner import TaskPlannerNode
from sitebot.security import Authority, plan_digest, sign
from sitebot_interfaces.action import ExecutePlan, MoveArm, NavigateToPlace
from sitebot_interfaces.msg import SafetyState, StepOutcome, TaskCommand, TaskPlan, TaskStep
from sitebot_interfaces.srv import SafetyRequest

from rosprobe import spin_until

VALVE_STEPS = (("navigate_to", {"place": "t1_valve_stand"}),
               ("operate_valve", {"asset": "t1_cooling_valve", "action": "close"}))


class RobotDouble(Node):
    """Navigation and arm action servers that succeed at once (recording every goal), a
    NORMAL safety/state at 20 Hz, and a count of everything on cmd_vel_in."""

    def __init__(self, context) -> None:
        super().__init__("robot_double", context=context)
        cb = ReentrantCallbackGroup()
        self.nav_goals: list[str] = []
        self.arm_goals: list[str] = []
        self.cmd_vel_in = 0
        ActionServer(self, NavigateToPlace, "navigate_to_place", self.nav, callback_group=cb)
        ActionServer(self, MoveArm, "move_arm", self.arm, callback_group=cb)
        self.safety = self.create_publisher(SafetyState, "safety/state", QOS_STATE)
        self.create_subscription(TwistStamped, "cmd_vel_in", self.on_cmd, QOS_COMMAND,
                                 callback_group=cb)
        self.create_timer(0.05, self.tick, callback_group=cb)

    def on_cmd(self, _msg) -> None:
        self.cmd_vel_in += 1

    def tick(self) -> None:
        s = SafetyState(level=SafetyState.LEVEL_NORMAL, speed_scale=1.0)
        s.header.stamp = self.get_clock().now().to_msg()
        self.safety.publish(s)

    def nav(self, handle):
        self.nav_goals.append(handle.request.place_id)
        handle.succeed()
        return NavigateToPlace.Result(code=NavigateToPlace.Result.CODE_SUCCEEDED)

    def arm(self, handle):
        self.arm_goals.append(handle.request.named_pose or "pose")
        handle.succeed()
        return MoveArm.Result(code=MoveArm.Result.CODE_SUCCEEDED)


def wait(fut, timeout: float = 30.0, what: str = "the action future"):
    spin_until(fut.done, timeout, what, step=0.01)
    return fut.result()


@pytest.fixture()
def mission(tmp_path: Path):
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    ex = MultiThreadedExecutor(num_threads=6, context=ctx)
    executor = TaskExecutorNode(context=ctx, parameter_overrides=[
        Parameter("out_dir", value=str(tmp_path)), Parameter("confirm_timeout_s", value=5.0),
        Parameter("server_wait_s", value=5.0), Parameter("auto_execute", value=False)])
    planner = TaskPlannerNode(context=ctx, parameter_overrides=[
        Parameter("warm_on_start", value=False), Parameter("use_embeddings", value=False)])
    double = RobotDouble(ctx)
    client = Node("attacker", context=ctx)
    nodes = (executor, planner, double, client)
    for n in nodes:
        ex.add_node(n)
    thread = threading.Thread(target=ex.spin, daemon=True)
    thread.start()
    yield executor, double, client
    ex.shutdown()
    for n in nodes:
        n.destroy_node()
    rclpy.shutdown(context=ctx)


def valve_plan(plan_id: str, authority: str = "") -> TaskPlan:
    msg = TaskPlan(plan_id=plan_id, status=TaskPlan.STATUS_OK, role="supervisor",
                   instruction="close the T1 cooling valve", authority=authority)
    for skill, args in VALVE_STEPS:
        msg.steps.append(TaskStep(skill=skill, arg_names=list(args),
                                  arg_values=list(args.values())))
    return msg


def test_claimed_supervisor_goals_are_refused_before_any_motion(mission) -> None:
    executor, double, client = mission
    ac = ActionClient(client, ExecutePlan, "execute_plan")
    assert ac.wait_for_server(timeout_sec=10.0)
    key = Authority.open("").key
    forged_key = bytes(32)
    now, digest = time.time(), plan_digest(VALVE_STEPS)
    cases = {   # plan id -> (plan assertion, confirmation assertion)
        "none": ("", ""),
        "forged": (sign(forged_key, "plan", "forged", "mallory", "supervisor", now,
                        digest=digest),
                   sign(forged_key, "confirm", "forged", "mallory", "supervisor", now,
                        digest=digest)),
        "expired": (sign(key, "plan", "expired", "ana", "supervisor", now - 7300.0,
                         digest=digest),
                    sign(key, "confirm", "expired", "ana", "supervisor", now - 130.0,
                         digest=digest)),
        "other-steps": (sign(key, "plan", "other-steps", "ana", "supervisor", now,
                             digest=plan_digest(VALVE_STEPS[:1])), ""),
    }
    for plan_id, (plan_tok, confirm_tok) in cases.items():
        goal = ExecutePlan.Goal(plan=valve_plan(plan_id, plan_tok), confirmed=True,
                                authority=confirm_tok)
        handle = wait(ac.send_goal_async(goal))
        res = wait(handle.get_result_async(), 30.0).result
        assert res.code == ExecutePlan.Result.CODE_REJECTED, (plan_id, res.reason)
        assert "needs the role 'supervisor'" in res.reason, res.reason
        assert "unauthenticated (claimed role 'supervisor')" in res.reason, res.reason
        assert [s.outcome for s in res.steps] == [StepOutcome.OUTCOME_SKIPPED] * 2
    spin_until(lambda: False, 0.3, must=False)        # a late publication would show up
    assert (double.nav_goals, double.arm_goals, double.cmd_vel_in) == ([], [], 0)
    records = executor.authority.audit.records
    refused = {r["plan_id"]: r for r in records if r["event"] == "plan_refused"}
    assert set(refused) == set(cases)
    for plan_id, r in refused.items():
        assert (r["user"], r["role"], r["claimed_role"]) == ("unauthenticated", "operator",
                                                             "supervisor"), r
    whys = {pid: refused[pid]["why"] for pid in refused}
    assert all("operate_valve needs the role 'supervisor'" in w for w in whys.values())
    assert not any(r["event"] == "high_risk_step" for r in records)
    conf = {r["plan_id"]: r["why"] for r in records if r["event"] == "confirmation_refused"}
    assert "no authority assertion" in conf["none"] and "bad signature" in conf["forged"]
    assert "expired" in conf["expired"]


class ConsolePort:
    """The web_console node's primitives over the test's node (RobotPort of the bridge)."""

    def __init__(self, node: Node) -> None:
        self.cmd = node.create_publisher(TaskCommand, "task/command", QOS_COMMAND)
        self.ac = ActionClient(node, ExecutePlan, "execute_plan")
        self.handles: list = []

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def publish_task_command(self, confirm, request_id, text, role, in_reply_to, authority):
        self.cmd.publish(TaskCommand(request_id=request_id, text=text, role=role,
                                     in_reply_to=in_reply_to, authority=authority))

    def send_plan(self, plan, confirmed, authority):
        assert self.ac.wait_for_server(timeout_sec=10.0)
        return wait(self.ac.send_goal_async(ExecutePlan.Goal(plan=plan, confirmed=confirmed,
                                                             authority=authority)))

    def watch_plan(self, handle) -> None:
        self.handles.append(handle)


def test_console_signed_mission_runs_and_is_audited(mission) -> None:
    executor, double, client = mission
    port = ConsolePort(client)
    audit: list[tuple] = []
    bridge = ConsoleBridge(port, ConsoleViews(), lambda e, **f: audit.append((e, f)),
                           Authority.open(""))
    bridge.server = ConsoleServer(bridge, UserStore([User("sam", "supervisor")]))
    plans: list[TaskPlan] = []
    client.create_subscription(TaskPlan, "task/plan", plans.append, QOS_COMMAND)
    spin_until(lambda: port.cmd.get_subscription_count() > 0, 10.0, "the planner")
    bridge.instruct("console-1", "close the T1 cooling valve", "supervisor", "", user="sam")
    spin_until(lambda: plans, 20.0, "the planner's answer")
    m = plans[0]
    assert m.status == TaskPlan.STATUS_OK and m.role == "supervisor" and m.authority
    steps = [(s.skill, dict(zip(s.arg_names, s.arg_values))) for s in m.steps]
    assert [s for s, _ in steps] == ["navigate_to", "operate_valve"]
    bridge.on_plan(m, m.plan_id, "ok", steps, explanation=m.explanation, role=m.role)
    assert bridge.run_plan("console-1", True, "sam") == (True, "plan console-1 started")
    res = wait(port.handles[0].get_result_async(), 30.0).result
    assert res.code == ExecutePlan.Result.CODE_SUCCEEDED, res.reason
    assert double.nav_goals == ["t1_valve_stand"] and "valve_close" in double.arm_goals
    records = executor.authority.audit.records
    (step,) = [r for r in records if r["event"] == "high_risk_step"]
    assert step["step"] == "operate_valve(action=close, asset=t1_cooling_valve)"
    assert "user 'sam' (supervisor)" in step["authority"]
    assert "user 'sam' (supervisor)" in step["confirmed_by"]
    assert not [a for a in audit if a[0] == "unsigned"]


@pytest.fixture()
def supervisor(tmp_path: Path):
    from sitebot.nodes.safety_supervisor import SafetySupervisorNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = SafetySupervisorNode(context=ctx, parameter_overrides=[
        Parameter("audit_log", value=str(tmp_path / "audit.jsonl"))])
    a, b = Node("button_a", context=ctx), Node("intruder_b", context=ctx)
    ex = MultiThreadedExecutor(num_threads=3, context=ctx)
    for n in (node, a, b):
        ex.add_node(n)
    thread = threading.Thread(target=ex.spin, daemon=True)
    thread.start()
    yield node, a, b
    ex.shutdown()
    for n in (node, a, b):
        n.destroy_node()
    rclpy.shutdown(context=ctx)


def call(node: Node, srv_type, name: str, request):
    cli = node.create_client(srv_type, name)
    assert cli.wait_for_service(timeout_sec=10.0), f"{name} not available"
    return wait(cli.call_async(request), 10.0, f"the answer of {name}")


def test_supervisor_mode_reset_and_estop_release_need_authority(supervisor) -> None:
    node, a, b = supervisor
    # the attack: safety_supervisor/set_parameters mode=manual
    res = call(b, SetParameters, "safety_supervisor/set_parameters", SetParameters.Request(
        parameters=[ParameterMsg(name="mode", value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value="manual"))]))
    assert not res.results[0].successful and "safety/request" in res.results[0].reason
    assert node.sup.requested_mode.name == "AUTOMATIC"
    r = call(b, SafetyRequest, "safety/request", SafetyRequest.Request(request="mode",
                                                                       mode="manual"))
    assert not r.success and "no authority assertion" in r.message
    assert node.sup.requested_mode.name == "AUTOMATIC"
    # the e-stop input: A presses, B "releases"
    pub_a = a.create_publisher(Bool, "safety/estop", QOS_COMMAND)
    pub_b = b.create_publisher(Bool, "safety/estop", QOS_COMMAND)
    spin_until(lambda: pub_a.get_subscription_count() and pub_b.get_subscription_count(),
               10.0, "the supervisor's safety/estop subscription")
    pub_a.publish(Bool(data=True))
    spin_until(lambda: node.sup.estop.asserted_inputs, 10.0, "A's press")
    (held,) = node.sup.estop.asserted_inputs
    assert node.sup.estop_latched and held.startswith("estop_topic:")
    pub_b.publish(Bool(data=False))
    spin_until(lambda: any(rec["event"] == "estop_release_ignored"
                           for rec in node.sup.audit.records), 10.0, "B's release ignored")
    assert node.sup.estop.asserted_inputs == (held,) and node.sup.estop_latched
    # a reset: unsigned, the old service, then signed (refused: A still holds)
    r = call(b, SafetyRequest, "safety/request", SafetyRequest.Request(request="reset"))
    assert not r.success and "no authority assertion" in r.message
    old = call(b, Trigger, "safety/reset", Trigger.Request())
    assert not old.success and "safety/request" in old.message
    token = Authority.open("").sign("reset", "reset", "sam", "supervisor", time.time())
    r = call(b, SafetyRequest, "safety/request", SafetyRequest.Request(request="reset",
                                                                       authority=token))
    assert not r.success and f"still asserted: {held}" in r.message, r.message
    assert node.sup.estop_latched
    pub_a.publish(Bool(data=False))                   # the one who pressed releases
    spin_until(lambda: not node.sup.estop.asserted_inputs, 10.0, "A's release")
    events = [rec["event"] for rec in node.sup.audit.records]
    assert events.count("request_refused") == 3 and events.count("mode_refused") == 1, str(events)
    refused = [rec for rec in node.sup.audit.records if rec["event"] == "request_refused"]
    assert refused[0]["user"] == "unauthenticated" and refused[0]["request"] == "mode"
