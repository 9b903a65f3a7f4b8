"""The navigation node with real rclpy in one process (no simulator): the action's bad-goal
rejections, cancel and preemption, the latched costmap, diagnostics, malformed input.

Odometry comes from the test (a test double of the simulator's: the robot standing at the
spawn pose); no safety supervisor runs, so an accepted goal stays paused, which is what the
cancel and preemption checks need."""
from __future__ import annotations

import math
import threading
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.action import ActionClient
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter

from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR
from sitebot.nodes.navigation import NavigationNode
from sitebot_interfaces.action import NavigateToPlace

from rosprobe import Probe

R = NavigateToPlace.Result


@pytest.fixture(scope="module")
def stack():
    ctx = Context()
    rclpy.init(context=ctx)
    node = NavigationNode(context=ctx, parameter_overrides=[
        Parameter("world", value="substation"), Parameter("costmap_publish_period_s", value=1.0)])
    ex = MultiThreadedExecutor(num_threads=3, context=ctx)
    ex.add_node(node)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    probe = Probe("nav_node_probe")
    probe.subscribe(OccupancyGrid, "navigation/costmap", "latched")
    probe.subscribe(DiagnosticArray, "/diagnostics", "state")
    odom_pub = probe.publisher(Odometry, "odom")
    stop = threading.Event()

    def odom_loop():                 # the robot stands still at the spawn pose
        while not stop.is_set():
            m = Odometry()
            m.header.frame_id = "odom"
            m.header.stamp = probe.node.get_clock().now().to_msg()
            m.pose.pose.orientation.w = 1.0
            odom_pub.publish(m)
            time.sleep(0.05)
    ot = threading.Thread(target=odom_loop, daemon=True)
    ot.start()
    client = ActionClient(probe.node, NavigateToPlace, "navigate_to_place")
    probe.wait_for(client.server_is_ready, 20, "navigate_to_place server")
    first = NavigateToPlace.Goal()
    first.place_id = "no_such_place"                 # answered (accepted, then aborted)
    result(probe, probe.answered_goal(client, first))
    yield node, probe, client
    stop.set()
    ot.join(timeout=2)
    probe.close()
    ex.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)


def send(probe, client, place="", pose=None, feedback=None):
    g = NavigateToPlace.Goal()
    g.place_id = place
    if pose is not None:
        g.pose = pose
    fut = client.send_goal_async(g, feedback_callback=feedback)
    probe.wait_for(fut.done, 10, "goal response")
    h = fut.result()
    assert h.accepted
    return h


def result(probe, handle, timeout=10.0):
    fut = handle.get_result_async()
    probe.wait_for(fut.done, timeout, "result")
    return fut.result().result


def pose(x, y, yaw=0.0, frame="map") -> PoseStamped:
    p = PoseStamped()
    p.header.frame_id = frame
    p.pose.position.x, p.pose.position.y = x, y
    p.pose.orientation.z, p.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return p


@pytest.mark.parametrize("place,goal,words", [
    ("no_such_place", None, "unknown place 'no_such_place'"),
    ("cb1_bay", None, "restricted zone 'breaker_bay_zone'"),
    ("", pose(7.0, 8.0), "keep-out zone 'hv_keep_out'"),
    ("", pose(math.nan, 1.0), "non-finite"),
    ("", pose(-11.0, -7.0, frame="base_link"), "unknown frame 'base_link'"),
    ("", pose(-11.0, -7.0, frame=""), "unknown frame ''"),
    ("", pose(40.0, 0.0), "outside the map"),
])
def test_bad_goals_are_rejected_with_a_reason(stack, place, goal, words):
    node, probe, client = stack
    res = result(probe, send(probe, client, place, goal))
    assert res.code == R.CODE_ABORTED
    assert words in res.reason, res.reason


def test_cancel_and_preemption(stack):
    node, probe, client = stack
    fb = []
    a = send(probe, client, "yard_southwest", feedback=lambda m: fb.append(m.feedback.state))
    # no supervisor: paused (never moving without the supervisor's heartbeat)
    probe.wait_for(lambda: any(s.startswith("paused") for s in fb), 10, "paused feedback")
    b = send(probe, client, "t1_bay")
    ra = result(probe, a)
    assert ra.code == R.CODE_ABORTED and "preempted" in ra.reason
    cancel = b.cancel_goal_async()
    probe.wait_for(cancel.done, 10, "cancel response")
    rb = result(probe, b)
    assert rb.code == R.CODE_CANCELED
    # rviz's goal_pose in an unknown frame: refused, the node lives on
    pub = probe.publisher(PoseStamped, "goal_pose", QOS_COMMAND)
    pub.publish(pose(1.0, 1.0, frame="camera_link"))
    probe.wait_for(lambda: node.counts["bad_input"] >= 1, 5, "goal_pose refusal")


def test_costmap_diagnostics_and_malformed_input(stack):
    node, probe, client = stack
    probe.wait_for(lambda: probe.count("navigation/costmap") >= 1, 10, "costmap")
    cm = probe.get("navigation/costmap")[-1][1]
    assert (cm.info.width, cm.info.height) == (600, 600)
    assert cm.info.resolution == pytest.approx(0.05)
    assert (cm.info.origin.position.x, cm.info.origin.position.y) == (-15.0, -15.0)
    assert cm.header.frame_id == "map"
    data = list(cm.data)
    assert data.count(100) > 1000 and data.count(0) > 100000 and max(data) == 100
    bad = OccupancyGrid()
    bad.header.frame_id = "odom"
    bad.info.width, bad.info.height, bad.info.resolution = 10, 10, 0.05
    bad.data = [0] * 7                                   # wrong size
    before = node.counts["bad_input"]
    probe.publisher(OccupancyGrid, "local_map", QOS_SENSOR).publish(bad)
    probe.wait_for(lambda: node.counts["bad_input"] > before, 5, "local_map refusal")
    probe.wait_for(lambda: any(s.name.startswith("navigation")
                               for _, m in probe.get("/diagnostics") for s in m.status), 5,
                   "diagnostics")
    st = [s for _, m in probe.get("/diagnostics") for s in m.status
          if s.name.startswith("navigation")][-1]
    keys = {kv.key for kv in st.values}
    assert {"replans", "control_cycle_median_ms", "bad_input", "last_outcome"} <= keys


def test_filter_pose_source_drives_from_odometry_filtered():
    """pose_source filter: the pose is odometry/filtered (map frame); one in another frame is
    refused. No supervisor here and safety_required off, so the node commands motion."""
    from geometry_msgs.msg import TwistStamped
    ctx = Context()
    rclpy.init(context=ctx)
    node = NavigationNode(context=ctx, parameter_overrides=[
        Parameter("world", value="substation"), Parameter("pose_source", value="filter"),
        Parameter("safety_required", value=False), Parameter("use_scan", value=False)])
    ex = MultiThreadedExecutor(num_threads=2, context=ctx)
    ex.add_node(node)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    probe = Probe("nav_filter_probe")
    probe.subscribe(TwistStamped, "cmd_vel_in", "state")
    pub = probe.publisher(Odometry, "odometry/filtered")
    stop = threading.Event()
    frame = ["map"]

    def loop():                      # the filter says: at (-11, -8), facing north
        while not stop.is_set():
            m = Odometry()
            m.header.frame_id = frame[0]
            m.pose.pose.position.x, m.pose.pose.position.y = -11.0, -8.0
            m.pose.pose.orientation.z = m.pose.pose.orientation.w = math.sqrt(0.5)
            pub.publish(m)
            time.sleep(0.05)
    ot = threading.Thread(target=loop, daemon=True)
    ot.start()
    try:
        probe.wait_for(lambda: node.filter_pose is not None, 10, "filtered pose")
        assert node.stack.frames.pose(node.now()) == pytest.approx((-11.0, -8.0, math.pi / 2))
        node.on_goal_pose(pose(-11.0, -6.5, math.pi / 2))
        probe.wait_for(lambda: any(m.twist.linear.x > 0.05 for _, m in probe.get("cmd_vel_in")),
                       10, "forward command toward the goal 1.5 m north")
        assert all(abs(m.twist.angular.z) < 0.3 for _, m in probe.get("cmd_vel_in"))
        frame[0] = "odom"
        before = node.counts["bad_input"]
        probe.wait_for(lambda: node.counts["bad_input"] > before, 5, "wrong-frame refusal")
    finally:
        stop.set()
        ot.join(timeout=2)
        probe.close()
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
