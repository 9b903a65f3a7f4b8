"""The arm_planner node with real rclpy (one process, two contexts): an action goal gives a
trajectory on arm/joint_trajectory_in whose numbers are checked, the result follows the
joint states, bad goals are refused with a reason.  The joint states are published by the
test (a stand-in for the simulator, named as such): it plays the trajectory back."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from sitebot.arm.config import DEFAULT_NAMED_POSES
from sitebot.arm.motion import (CODE_ABORTED, CODE_CANCELED, CODE_INVALID_GOAL, CODE_NO_IK,
                                CODE_NO_PLAN, CODE_SUCCEEDED)
from sitebot.description.urdf import ARM_JOINT_NAMES, load_robot_description
from sitebot.nodes.arm_planner import ArmPlannerNode
from sitebot.nodes.common import QOS_COMMAND, QOS_STATE
from sitebot_interfaces.action import MoveArm
from sitebot_interfaces.msg import Obstacle, ObstacleArray

from rosprobe import spin_until

STOW = np.array([float(v) for v in DEFAULT_NAMED_POSES[0].split(":")[1].split()])
READY = np.array([float(v) for v in DEFAULT_NAMED_POSES[1].split(":")[1].split()])


class _Spinner:
    def __init__(self, node: Node, ctx) -> None:
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(node)
        self.thread = threading.Thread(target=self.ex.spin, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.ex.shutdown()
        self.thread.join(timeout=5)


class StandIn(Node):
    """Test stand-in for the simulator's joint_states: holds a position, or plays back the
    received trajectory (positions at their time_from_start) when ``play`` is set."""

    def __init__(self, ctx) -> None:
        super().__init__("arm_test_standin", context=ctx)
        self.q = STOW.copy()
        self.play = True
        self.trajectories: list[JointTrajectory] = []
        self.results: list = []
        self.feedback: list = []
        self.diags: list = []
        self.pub = self.create_publisher(JointState, "joint_states", QOS_STATE)
        self.obs_pub = self.create_publisher(ObstacleArray, "obstacles", QOS_STATE)
        self.create_subscription(JointTrajectory, "arm/joint_trajectory_in", self.on_traj,
                                 QOS_COMMAND)
        self.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: self.diags.append(m), QOS_STATE)
        self.client = ActionClient(self, MoveArm, "move_arm")
        self.lock = threading.Lock()
        self.create_timer(0.02, self.tick)
        self.t_start = None

    def on_traj(self, msg: JointTrajectory) -> None:
        with self.lock:
            self.trajectories.append(msg)
            self.t_start = time.monotonic()

    def tick(self) -> None:
        with self.lock:
            if self.play and self.trajectories and self.t_start is not None:
                tr = self.trajectories[-1]
                el = time.monotonic() - self.t_start
                times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9
                         for p in tr.points]
                k = int(np.searchsorted(times, el))
                k = min(k, len(times) - 1)
                self.q = np.array(tr.points[k].positions)
            js = JointState()
            js.header.stamp = self.get_clock().now().to_msg()
            js.name = list(ARM_JOINT_NAMES) + ["gripper_left_finger_joint"]
            js.position = [float(v) for v in self.q] + [0.02]
            self.pub.publish(js)


@pytest.fixture(scope="module")
def stack():
    ctx_a, ctx_b = rclpy.context.Context(), rclpy.context.Context()
    rclpy.init(context=ctx_a)
    rclpy.init(context=ctx_b)
    node = ArmPlannerNode(context=ctx_a, parameter_overrides=[
        Parameter("pose_source", value="parameter"),
        Parameter("robot_pose", value=[-2.0, 0.5, 1.5708]),      # substation yard centre, facing north
        Parameter("velocity_scale", value=1.0),
        Parameter("diagnostics_period_s", value=0.2)])
    standin = StandIn(ctx_b)
    spins = [_Spinner(node, ctx_a), _Spinner(standin, ctx_b)]
    assert standin.client.wait_for_server(timeout_sec=10.0)
    yield node, standin
    for s in spins:
        s.stop()
    node.destroy_node()
    standin.destroy_node()
    rclpy.shutdown(context=ctx_a)
    rclpy.shutdown(context=ctx_b)


_wait = spin_until     # the nodes spin in their own threads


def _send(standin: StandIn, goal: MoveArm.Goal, timeout: float = 20.0):
    fb: list = []
    fut = standin.client.send_goal_async(goal, feedback_callback=lambda m: fb.append(m))
    _wait(fut.done, 10.0, "goal response")
    handle = fut.result()
    assert handle.accepted
    res = handle.get_result_async()
    _wait(res.done, timeout, "result")
    return res.result().result, fb


def _secs(d) -> float:
    return d.sec + d.nanosec * 1e-9


def test_named_pose_goal_publishes_checked_trajectory_and_succeeds(stack) -> None:
    node, standin = stack
    _wait(lambda: node.q is not None, 10.0, "joint_states at the node")
    n0 = len(standin.trajectories)
    result, fb = _send(standin, MoveArm.Goal(named_pose="ready"))
    assert result.code == CODE_SUCCEEDED, result.reason
    assert len(standin.trajectories) == n0 + 1
    tr = standin.trajectories[-1]
    assert list(tr.joint_names) == list(ARM_JOINT_NAMES)
    times = np.array([_secs(p.time_from_start) for p in tr.points])
    pos = np.array([p.positions for p in tr.points])
    vel = np.array([p.velocities for p in tr.points])
    acc = np.array([p.accelerations for p in tr.points])
    assert times[0] > 0.0 and np.all(np.diff(times) > 0)
    assert len(tr.points) <= 200
    assert np.allclose(pos[-1], READY, atol=1e-9)
    assert np.abs(pos[0] - STOW).max() < 0.05          # starts at the measured state
    assert np.allclose(vel[-1], 0.0) and np.allclose(acc[-1], 0.0)
    desc = load_robot_description()
    vlim = np.array([desc.joints[n].velocity_limit for n in ARM_JOINT_NAMES])
    assert np.all(np.abs(vel) <= vlim + 1e-6)
    assert abs(result.duration_s - times[-1]) < 1e-6
    assert 0.0 < result.planning_time_s < 5.0
    assert fb and fb[-1].feedback.progress <= 1.0
    assert any(f.feedback.state == "executing" for f in fb)


@pytest.mark.parametrize("goal,code,text", [
    (MoveArm.Goal(named_pose="nowhere"), CODE_INVALID_GOAL, "unknown named pose"),
    (MoveArm.Goal(joint_positions=[0.0, 0.0, 0.0]), CODE_INVALID_GOAL, "6"),
    (MoveArm.Goal(joint_positions=[0.0, math.nan, 0.0, 0.0, 0.0, 0.0]), CODE_INVALID_GOAL,
     "NaN"),
    (MoveArm.Goal(joint_positions=[0.0, 2.5, 0.0, 0.0, 0.0, 0.0]), CODE_INVALID_GOAL,
     "outside the limits"),
    (MoveArm.Goal(joint_positions=[0.0, 1.9, 0.3, 0.0, 0.0, 0.0]), CODE_INVALID_GOAL,
     "collision"),
    (MoveArm.Goal(named_pose="stow", joint_positions=[0.0] * 6), CODE_INVALID_GOAL,
     "exactly one"),
])
def test_bad_goals_are_refused_with_a_reason(stack, goal, code, text) -> None:
    _, standin = stack
    n0 = len(standin.trajectories)
    result, _ = _send(standin, goal)
    assert result.code == code, result.reason
    assert text in result.reason
    assert len(standin.trajectories) == n0                 # nothing published


def test_ee_pose_goals_frames_and_ik(stack) -> None:
    node, standin = stack
    g = MoveArm.Goal()
    g.ee_pose.header.frame_id = "tool_flange_of_nowhere"
    g.ee_pose.pose.position.x = 0.5
    result, _ = _send(standin, g)
    assert result.code == CODE_INVALID_GOAL and "unknown frame" in result.reason
    g.ee_pose.header.frame_id = "base_footprint"
    g.ee_pose.pose.position.x, g.ee_pose.pose.position.z = 3.0, 0.6       # out of reach
    result, _ = _send(standin, g)
    assert result.code == CODE_NO_IK and "reach" in result.reason
    g.ee_pose.pose.position.x, g.ee_pose.pose.position.z = math.nan, 0.6
    result, _ = _send(standin, g)
    assert result.code == CODE_INVALID_GOAL and "NaN" in result.reason
    # reachable, in the map frame: 0.55 m ahead of the robot (yaw 90 deg: north), 0.7 m up,
    # position only (zero quaternion)
    g.ee_pose.header.frame_id = "map"
    g.ee_pose.pose.position.x, g.ee_pose.pose.position.y = -2.0, 0.5 + 0.55
    g.ee_pose.pose.position.z = 0.7
    g.ee_pose.pose.orientation.w = 0.0
    n0 = len(standin.trajectories)
    result, _ = _send(standin, g)
    assert result.code == CODE_SUCCEEDED, result.reason
    q_end = np.array(standin.trajectories[n0].points[-1].positions)
    tcp = node.motion.kin.tcp_pose(q_end)[:3, 3]
    assert np.linalg.norm(tcp - np.array([0.55, 0.0, 0.7])) < 0.003


def test_perceived_obstacle_blocks_goal_and_diagnostics(stack) -> None:
    node, standin = stack
    # a box around the 'reach' pose's gripper (1 m ahead, 0.57 m up): the goal collides
    msg = ObstacleArray()
    msg.header.frame_id = "base_footprint"
    msg.obstacles = [Obstacle(id=1, source="depth")]
    msg.obstacles[0].center.x, msg.obstacles[0].center.z = 1.0, 0.57
    msg.obstacles[0].size.x = msg.obstacles[0].size.y = msg.obstacles[0].size.z = 0.2
    standin.obs_pub.publish(msg)
    _wait(lambda: node.obstacle_count == 1, 5.0, "obstacle at the node")
    result, _ = _send(standin, MoveArm.Goal(named_pose="reach"))
    assert result.code == CODE_INVALID_GOAL and "obstacle:0" in result.reason
    bad = ObstacleArray()
    bad.header.frame_id = "camera_of_nowhere"
    bad.obstacles = [Obstacle(id=2)]
    standin.obs_pub.publish(bad)
    msg.obstacles = []
    standin.obs_pub.publish(msg)
    _wait(lambda: node.obstacle_count == 0, 5.0, "obstacles cleared")

    def latest() -> dict:
        st = [s for m in standin.diags for s in m.status if s.name.startswith("arm_planner")]
        return {kv.key: kv.value for kv in st[-1].values} if st else {}
    _wait(lambda: int(latest().get("bad_messages", 0)) >= 1, 5.0,
          "diagnostics counting the bad obstacles message")
    vals = latest()
    assert int(vals["goals"]) >= 1 and int(vals["rejected"]) >= 1
    assert int(vals["collision_checks"]) > 0


def test_cancel_holds_the_arm_where_it_is(stack) -> None:
    node, standin = stack
    # back to stow for a known start, then a long move that is canceled mid-way
    result, _ = _send(standin, MoveArm.Goal(named_pose="stow"))
    assert result.code == CODE_SUCCEEDED, result.reason
    standin.play = False                     # the stand-in no longer follows: never reached
    fut = standin.client.send_goal_async(MoveArm.Goal(named_pose="reach",
                                                      max_velocity_scale=0.2))
    _wait(fut.done, 10.0, "goal response")
    handle = fut.result()
    _wait(lambda: len(standin.trajectories) and
          standin.trajectories[-1].points[-1].positions[1] == pytest.approx(1.3), 10.0,
          "trajectory")
    n0 = len(standin.trajectories)
    cancel = handle.cancel_goal_async()
    _wait(cancel.done, 5.0, "cancel response")
    res = handle.get_result_async()
    _wait(res.done, 5.0, "canceled result")
    assert res.result().result.code == CODE_CANCELED
    _wait(lambda: len(standin.trajectories) > n0, 5.0, "hold trajectory")
    hold = standin.trajectories[-1]
    assert len(hold.points) == 1
    assert np.allclose(hold.points[0].positions, standin.q, atol=1e-9)
    assert np.abs(np.array(hold.points[0].positions) - STOW).max() < 0.03
    assert np.allclose(hold.points[0].velocities, 0.0)
    standin.play = True


def test_result_codes_match_the_action_definition() -> None:
    r = MoveArm.Result
    assert (r.CODE_SUCCEEDED, r.CODE_NO_PLAN, r.CODE_NO_IK, r.CODE_INVALID_GOAL,
            r.CODE_ABORTED, r.CODE_CANCELED) == (CODE_SUCCEEDED, CODE_NO_PLAN, CODE_NO_IK,
                                                 CODE_INVALID_GOAL, CODE_ABORTED, CODE_CANCELED)
