"""The web_console node in one process (no browser, no server running): messages in, the
page's sections in the server's store; the bridge's commands out as ROS messages."""
from __future__ import annotations

import functools
import math
import time

import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Odometry, Path
from std_msgs.msg import Bool, String

from sitebot.console.server import ConsoleServer
from sitebot.nodes.common import QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE
from sitebot.security import Authority
from sitebot_interfaces.msg import (SafetyState, TaskCommand, TaskPlan, TaskStep, TrackedPerson,
                                    TrackedPersonArray)

from rosprobe import spin_until


@pytest.fixture()
def graph():
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from sitebot.nodes.web_console import WebConsoleNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = test = None
    try:
        node = WebConsoleNode(context=ctx, parameter_overrides=[
            rclpy.Parameter("service_timeout_s", value=0.2)])
        srv = ConsoleServer.from_params(node.bridge, node.p, node.site)
        node.bridge.server = srv
        test = rclpy.create_node("web_console_test", context=ctx)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        ex.add_node(test)
        yield node, test, srv, functools.partial(spin_until, executor=ex)
        ex.shutdown()
    finally:
        for n in (node, test):
            if n is not None:
                n.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_messages_become_the_pages_sections(graph):
    node, test, srv, spin_until = graph
    pubs = {name: test.create_publisher(t, name, q) for name, t, q in (
        ("odom", Odometry, QOS_STATE), ("safety/state", SafetyState, QOS_STATE),
        ("plan", Path, QOS_LATCHED), ("people", TrackedPersonArray, QOS_SENSOR),
        ("task/plan", TaskPlan, QOS_COMMAND), ("task/status", String, QOS_STATE),
        ("task/confirmation_request", String, QOS_COMMAND))}
    assert spin_until(lambda: all(p.get_subscription_count() for p in pubs.values()))
    odom = Odometry()
    odom.pose.pose.position.x = 1.0
    odom.twist.twist.linear.x = 0.25
    pubs["odom"].publish(odom)
    assert spin_until(lambda: srv.store.get("robot") is not None)
    robot = srv.store.get("robot")
    # the substation's robot1 spawns at (-12, -12) facing +x: 1 m along odom's x
    assert (robot["x"], robot["y"], robot["v"], robot["source"]) == (-11.0, -12.0, 0.25,
                                                                      "odom")
    pubs["safety/state"].publish(SafetyState(level=SafetyState.LEVEL_PROTECTIVE_STOP,
                                             mode=SafetyState.MODE_MANUAL,
                                             required_separation_m=0.6,
                                             reasons=["deadman_released"]))
    people = TrackedPersonArray()
    people.header.frame_id = "base_footprint"
    people.people = [TrackedPerson(id=4)]
    people.people[0].pose.pose.position.x = 2.0
    pubs["people"].publish(people)
    path = Path()
    path.header.frame_id = "map"
    path.poses = [PoseStamped() for _ in range(3)]
    path.poses[2].pose.position.y = 1.5
    pubs["plan"].publish(path)
    pubs["task/plan"].publish(TaskPlan(plan_id="p1", status=TaskPlan.STATUS_OK, steps=[
        TaskStep(skill="navigate_to", arg_names=["place"], arg_values=["yard"])]))
    pubs["task/status"].publish(String(data="not json"))          # ignored with a warning
    pubs["task/confirmation_request"].publish(String(data='{"plan_id": "p1", '
                                                          '"question": "go?"}'))
    assert spin_until(lambda: all(srv.store.get(k) is not None for k in (
        "safety", "people", "path", "plans", "confirmation")))
    s = srv.store.get("safety")
    assert (s["level_name"], s["mode"], s["field_radius"], s["reasons"]) == (
        "protective_stop", "manual", 1.0, ["deadman_released"])
    assert srv.store.get("people") == [{"id": 4, "x": -9.0, "y": -12.0, "vx": 0.0,
                                        "vy": 0.0}]
    assert srv.store.get("path") == {"frame": "map", "points": [[0.0, 0.0], [0.0, 0.0],
                                                                [0.0, 1.5]]}
    plan = srv.plans.get("p1")
    assert plan["steps"] == [{"skill": "navigate_to", "args": {"place": "yard"}}]
    assert node.views.plan("p1")[0].plan_id == "p1"
    assert srv.store.get("confirmation")["question"] == "go?"
    assert srv.store.get("task") is None


def test_teleop_and_the_estop_fallback_go_out_as_messages(graph):
    node, test, srv, spin_until = graph
    cmds, deadman, estop, confirms = [], [], [], []
    test.create_subscription(TwistStamped, "cmd_vel_in", cmds.append, QOS_COMMAND)
    test.create_subscription(Bool, "teleop/deadman", deadman.append, QOS_COMMAND)
    test.create_subscription(Bool, "safety/estop", estop.append, QOS_COMMAND)
    test.create_subscription(TaskCommand, "task/confirm", confirms.append, QOS_COMMAND)
    assert spin_until(lambda: all(p.get_subscription_count() for p in (
        node.cmd_pub, node.deadman_pub, node.estop_pub, node.confirm_pub)))
    node.bridge.teleop(0.3, -0.2)
    assert spin_until(lambda: cmds and deadman)
    assert (cmds[0].twist.linear.x, cmds[0].twist.angular.z) == (0.3, -0.2)
    assert cmds[0].header.frame_id == "base_footprint" and deadman[0].data is True
    stamp = cmds[0].header.stamp.sec * 10**9 + cmds[0].header.stamp.nanosec
    assert stamp == node.bridge.last_cmd_ns
    # no supervisor: the trigger service is not there, the e-stop input is pulsed
    ok, msg = node.bridge.estop("viewer")
    assert ok and msg == ("emergency stop service safety/trigger_estop not available; "
                          "sent on safety/estop instead")
    assert spin_until(lambda: len(estop) == 2 and len(cmds) == 2)
    assert [m.data for m in estop] == [True, False]
    assert cmds[1].twist.linear.x == 0.0 and deadman[-1].data is False
    assert node.bridge.set_mode("manual", "operator") == (
        False, "safety request service safety/request not available")
    assert node.bridge.run_plan("p0", False, "operator") == (
        False, "plan p0 not received from the planner")
    assert node.bridge.confirm("p1", True, "supervisor") == (True, "answered yes")
    assert spin_until(lambda: confirms)
    assert (confirms[0].text, confirms[0].role, confirms[0].in_reply_to) == (
        "yes", "supervisor", "p1")
    # signed with the session's key (tests/conftest.py) for the logged-in user's role
    a = Authority.open("").verify(confirms[0].authority, time.time(), "confirm", "p1")
    assert (a.user, a.role) == ("supervisor", "supervisor")
    assert not math.isnan(node.now())


def test_the_survey_button_calls_the_recorders_services_and_shows_its_status(graph):
    """Against a test double of the survey recorder (its two Trigger services and the
    latched survey/status), served by the test node."""
    import threading

    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
    from std_srvs.srv import Trigger
    node, test, srv, spin_until = graph
    calls = []

    def start(req, res):                                # the recorder double's survey/start
        calls.append("start")
        res.success, res.message = True, "/data/surveys/survey_20260101_120000"
        return res
    test.create_service(Trigger, "survey/start", start)
    status = test.create_publisher(DiagnosticStatus, "survey/status", QOS_LATCHED)
    status.publish(DiagnosticStatus(level=DiagnosticStatus.OK, name="survey",
                                    message="recording", values=[
                                        KeyValue(key="path", value="/data/surveys/s1"),
                                        KeyValue(key="scans", value="125")]))
    assert spin_until(lambda: node.triggers["survey_start"].service_is_ready()
                      and srv.store.get("survey") is not None)
    assert srv.store.get("survey") == {"state": "recording", "recording": True, "level": 0,
                                       "values": {"path": "/data/surveys/s1", "scans": "125"}}
    answers = []
    for action in ("start", "stop"):                     # blocking calls: a worker thread
        th = threading.Thread(target=lambda a=action: answers.append(
            node.bridge.survey(a, "operator")))
        th.start()
        assert spin_until(lambda: not th.is_alive(), 5.0)
    assert calls == ["start"]
    assert answers == [(True, "/data/surveys/survey_20260101_120000"),
                       (False, "survey stop: survey/stop not available")]
