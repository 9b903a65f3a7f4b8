"""task_executor: runs validated task plans through the skill library.

Action server ``execute_plan`` (sitebot_interfaces/action/ExecutePlan): a plan in, feedback
per step, a result with per-step outcomes and readings. It also runs ``ok`` plans arriving on
``task/plan`` (from the task_planner) when ``auto_execute`` is set, one at a time.

The skills reach the robot through :class:`RosPorts`: the ``navigate_to_place`` and
``move_arm`` actions, the gripper as a one-joint trajectory on ``arm/joint_trajectory_in``
(gated by the supervisor like every motion), ``gauges`` and ``fiducials`` from perception,
the camera image, ``safety/state``, and the robot pose (``odometry/filtered`` or dead
reckoning). High-risk steps ask on ``task/confirmation_request`` (std_msgs/String, JSON) and
wait for a supervisor's ``task/confirm`` (TaskCommand: in_reply_to = plan id, text yes/no).

Every run writes ``<out_dir>/<plan id>/report.json`` (steps, readings, safety events, path,
timings) and the images it took.
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import rclpy
from action_msgs.msg import GoalStatus
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, LaserScan
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sitebot_interfaces.action import ExecutePlan, MoveArm, NavigateToPlace
from sitebot_interfaces.msg import (FiducialDetectionArray, GaugeReading, ObstacleArray,
                                    SafetyState, StepOutcome, TaskCommand, TaskPlan, TaskStep)

from sitebot.executor import (ExecutionResult, ExecutorConfig, MotionResult, Plan, PlanRunner,
                        Reading, ResultCode, SafetyLevel, SafetySnapshot, Step, StepResult)
from sitebot.executor.approach import ApproachConfig, approach_speed, front_gap
from sitebot.executor.locate import station_offset
from sitebot.executor.types import outcome_counts
from sitebot.description.kinematics import planar_frame_pose
from sitebot.types import rpy_to_quaternion
from sitebot.config.params import ParamSpec, ParamType
from sitebot.description.urdf import load_robot_description
from sitebot.sim.world import load_world
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING

SCHEMA = (
    ParamSpec("world", S, "substation", "world (or site) whose registry grounds the plans"),
    ParamSpec("spawn", S, "robot1", "spawn pose used for dead reckoning"),
    ParamSpec("pose_source", S, "dead_reckoning", "robot pose: 'filter' = odometry/filtered "
              "(map frame); 'dead_reckoning' = odom composed with the spawn pose",
              choices=("filter", "dead_reckoning")),
    ParamSpec("out_dir", S, "out/missions", "folder for mission reports and images"),
    ParamSpec("auto_execute", B, True, "run 'ok' plans arriving on task/plan"),
    ParamSpec("use_arm", B, True, "use the arm (camera view, stow, pick/place, valves)"),
    ParamSpec("nav_timeout_s", F, 300.0, "limit of one navigate_to", 1.0, 3600.0, unit="s"),
    ParamSpec("arm_timeout_s", F, 60.0, "limit of one arm motion", 1.0, 600.0, unit="s"),
    ParamSpec("gauge_timeout_s", F, 20.0, "waiting for valid gauge readings", 0.5, 300.0,
              unit="s"),
    ParamSpec("gauge_samples", I, 3, "valid readings combined per read_gauge", 1, 20),
    ParamSpec("max_attempts", I, 2, "attempts per step", 1, 10),
    ParamSpec("retry_wait_s", F, 5.0, "pause before retrying a failed step (a blocked path "
              "may clear)", 0.0, 600.0, unit="s"),
    ParamSpec("pause_limit_s", F, 120.0, "a protective stop longer than this aborts the plan",
              1.0, 3600.0, unit="s"),
    ParamSpec("safety_stale_s", F, 2.0, "no safety state for this long counts as stopped",
              0.1, 60.0, unit="s"),
    ParamSpec("confirm_timeout_s", F, 120.0, "waiting for a supervisor's confirmation", 1.0,
              3600.0, unit="s"),
    ParamSpec("server_wait_s", F, 5.0, "waiting for an action server to appear (wall)", 0.1,
              120.0, unit="s"),
    ParamSpec("gripper_joint", S, "gripper_left_finger_joint", "the gripper's driven joint"),
    ParamSpec("gripper_time_s", F, 1.0, "duration of a gripper motion", 0.1, 10.0, unit="s"),
    ParamSpec("approach_speed_mps", F, 0.08, "creeping speed of the short straight motions "
              "before a grasp and after it", 0.01, 0.3, unit="m/s"),
    ParamSpec("approach_min_gap_m", F, 0.2, "closest the chassis front comes to what the "
              "laser sees while closing in on a work surface", 0.05, 1.0, unit="m"),
    ParamSpec("grasp_forward_m", F, 0.55, "where a pick wants the object, ahead of the base "
              "origin (inside the arm's top-down workspace)", 0.3, 0.8, unit="m"),
    ParamSpec("approach_max_m", F, 0.6, "longest straight approach of a pick", 0.0, 1.5,
              unit="m"),
    ParamSpec("base_frame", S, "base_footprint", "robot base frame"),
    ParamSpec("map_frame", S, "map", "map frame"),
)

_NAV_CODES = {NavigateToPlace.Result.CODE_SUCCEEDED: "succeeded",
              NavigateToPlace.Result.CODE_BLOCKED: "blocked",
              NavigateToPlace.Result.CODE_ABORTED: "aborted",
              NavigateToPlace.Result.CODE_CANCELED: "canceled"}
_ARM_CODES = {MoveArm.Result.CODE_SUCCEEDED: "succeeded",
              MoveArm.Result.CODE_NO_PLAN: "aborted",
              MoveArm.Result.CODE_NO_IK: "rejected",
              MoveArm.Result.CODE_INVALID_GOAL: "rejected",
              MoveArm.Result.CODE_ABORTED: "aborted",
              MoveArm.Result.CODE_CANCELED: "canceled"}
_YES = {"yes", "y", "confirm", "confirmed", "approve", "approved", "ok", "go", "go ahead"}
_NO = {"no", "n", "decline", "declined", "deny", "denied", "cancel", "stop", "abort"}


def plan_from_msg(msg: TaskPlan) -> Plan:
    """A TaskPlan message as an executor plan (arguments zipped from names and values)."""
    steps = []
    for i, s in enumerate(msg.steps):
        if len(s.arg_names) != len(s.arg_values):
            raise ValueError(f"step {i + 1} ({s.skill}): {len(s.arg_names)} argument names "
                             f"but {len(s.arg_values)} values")
        steps.append(Step(s.skill, dict(zip(s.arg_names, s.arg_values))))
    return Plan(tuple(steps), plan_id=msg.plan_id or "plan", role=msg.role or "operator",
                instruction=msg.instruction)


def step_msg(step: Step) -> TaskStep:
    names = sorted(step.args)
    return TaskStep(skill=step.skill, arg_names=names, arg_values=[step.args[n] for n in names])


def outcome_msg(r: StepResult, stamp) -> StepOutcome:
    out = StepOutcome(step=step_msg(r.step), outcome=int(r.outcome), message=r.message,
                      attempts=r.attempts, duration_s=float(r.duration_s),
                      images=list(r.images))
    for rd in r.readings:
        out.readings.append(GaugeReading(asset_id=rd.asset_id, valid=rd.valid,
                                         value=float(rd.value), unit=rd.unit,
                                         confidence=float(rd.confidence),
                                         failure_reason=rd.failure_reason))
        out.readings[-1].header.stamp = stamp
    return out


class RosPorts:
    """The executor's view of the robot over ROS (see sitebot.executor.types.RobotPorts)."""

    def __init__(self, node: "TaskExecutorNode") -> None:
        self.node = node
        self.lock = threading.Lock()
        self.safety_msg: SafetyState | None = None
        self.safety_at = -math.inf
        self.pose: tuple[float, float, float] | None = None
        self.image: Image | None = None
        self.gauges: list[tuple[float, Reading]] = []      # (arrival, reading)
        self.tags: dict[int, float] = {}                   # tag -> last seen (arrival)
        self.obstacles: ObstacleArray | None = None
        self.joints: dict[str, tuple[float, float]] = {}
        self.confirm_answer: tuple[str, bool] | None = None
        self.active_goal = None
        self.run_dir = Path(".")
        self.odom: tuple[float, float, float] | None = None        # odom frame
        self.scan: tuple[float, LaserScan] | None = None           # (arrival, scan)
        self.laser_pose: dict[str, tuple[float, float, float]] = {}
        self.tag_poses: dict[int, tuple[float, tuple[float, float]]] = {}   # base frame

    # -- time ---------------------------------------------------------------------------
    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def sleep(self, seconds: float) -> None:
        """Wait *seconds* of node time (simulated time in simulation); gives up after a
        generous wall-clock bound so that a stopped clock cannot hang the executor."""
        t_end = self.now() + seconds
        wall_end = time.monotonic() + max(1.0, 20.0 * seconds)
        while self.now() < t_end and time.monotonic() < wall_end and rclpy.ok(
                context=self.node.context):
            time.sleep(0.01)

    def log(self, message: str) -> None:
        self.node.get_logger().info(message)
        self.node.event(message)

    # -- state --------------------------------------------------------------------------
    def safety(self) -> SafetySnapshot:
        with self.lock:
            m, at = self.safety_msg, self.safety_at
        if m is None:
            return SafetySnapshot(SafetyLevel.PROTECTIVE_STOP, False, ("no safety state",),
                                  math.inf)
        return SafetySnapshot(SafetyLevel(min(int(m.level), 3)), bool(m.estop_latched),
                              tuple(m.reasons), max(0.0, self.now() - at))

    def robot_pose(self) -> tuple[float, float, float] | None:
        return self.pose

    # -- actions ------------------------------------------------------------------------
    def _run_goal(self, client: ActionClient, goal, timeout_s: float, codes: dict,
                  what: str) -> MotionResult:
        node = self.node
        if not client.wait_for_server(timeout_sec=node.p["server_wait_s"]):
            return MotionResult("unavailable", f"no {what} action server")
        fut = client.send_goal_async(goal)
        wall_end = time.monotonic() + node.p["server_wait_s"]
        while not fut.done() and time.monotonic() < wall_end:
            time.sleep(0.005)
        if not fut.done() or fut.result() is None:
            return MotionResult("unavailable", f"{what} goal not answered")
        handle = fut.result()
        if not handle.accepted:
            return MotionResult("rejected", f"{what} goal rejected")
        self.active_goal = handle
        try:
            res_fut = handle.get_result_async()
            t_end = self.now() + timeout_s
            wall_end = time.monotonic() + max(30.0, 20.0 * timeout_s)
            cancel = node.cancel_event
            while not res_fut.done():
                if cancel.is_set():
                    handle.cancel_goal_async()
                    self._wait(res_fut, 5.0)
                    return MotionResult("canceled", "plan canceled")
                if self.now() > t_end or time.monotonic() > wall_end:
                    handle.cancel_goal_async()
                    self._wait(res_fut, 5.0)
                    return MotionResult("timeout", f"{what} took longer than {timeout_s:g} s")
                time.sleep(0.01)
            wrapped = res_fut.result()
        finally:
            self.active_goal = None
        if wrapped is None:
            return MotionResult("aborted", f"{what}: no result")
        result = wrapped.result
        if wrapped.status == GoalStatus.STATUS_CANCELED and not codes.get(result.code):
            return MotionResult("canceled", result.reason)
        return MotionResult(codes.get(result.code, "aborted"), result.reason)

    @staticmethod
    def _wait(fut, wall_s: float) -> None:
        end = time.monotonic() + wall_s
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.01)

    def navigate(self, place_id: str, timeout_s: float) -> MotionResult:
        goal = NavigateToPlace.Goal(place_id=place_id)
        return self._run_goal(self.node.nav_client, goal, timeout_s, _NAV_CODES, "navigation")

    def _wait_until_motion_allowed(self, limit_s: float) -> MotionResult | None:
        """An arm trajectory sent during a protective stop is refused by the supervisor:
        wait (up to ``limit_s``) for the stop to clear; a result when it does not."""
        t_end = self.now() + limit_s
        while self.safety().stopped:
            if self.node.cancel_event.is_set():
                return MotionResult("canceled", "plan canceled")
            if self.now() > t_end:
                snap = self.safety()
                return MotionResult("blocked", "protective stop: "
                                    + (", ".join(snap.reasons) or "no reason given"))
            self.sleep(0.1)
        return None

    def move_arm_named(self, name: str, timeout_s: float) -> MotionResult:
        held = self._wait_until_motion_allowed(min(15.0, self.node.p["pause_limit_s"]))
        if held is not None:
            return held
        goal = MoveArm.Goal(named_pose=name)
        return self._run_goal(self.node.arm_client, goal, timeout_s, _ARM_CODES, "arm")

    def move_arm_pose(self, xyz_map: Sequence[float], rpy: Sequence[float],
                      timeout_s: float) -> MotionResult:
        if not all(math.isfinite(v) for v in (*xyz_map, *rpy)):
            return MotionResult("rejected", "non-finite end-effector goal")
        held = self._wait_until_motion_allowed(min(15.0, self.node.p["pause_limit_s"]))
        if held is not None:
            return held
        ps = PoseStamped()
        ps.header.frame_id = self.node.p["map_frame"]
        ps.header.stamp = self.node.get_clock().now().to_msg()
        ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = map(float, xyz_map)
        q = rpy_to_quaternion(*rpy)
        (ps.pose.orientation.x, ps.pose.orientation.y, ps.pose.orientation.z,
         ps.pose.orientation.w) = q
        return self._run_goal(self.node.arm_client, MoveArm.Goal(ee_pose=ps), timeout_s,
                              _ARM_CODES, "arm")

    def _publish_twist(self, v: float) -> None:
        cmd = TwistStamped()
        cmd.header.stamp = self.node.get_clock().now().to_msg()
        cmd.header.frame_id = self.node.p["base_frame"]
        cmd.twist.linear.x = float(v)
        self.node.cmd_pub.publish(cmd)

    def approach(self, distance_m: float, timeout_s: float) -> tuple[MotionResult, float]:
        """Drive straight by ``distance_m`` (negative: backwards) on odometry, no closer to
        what the laser sees than the configured gap (sitebot.executor.approach); returns
        the result and the distance actually driven.  Stops short, with success, when the
        gap is used up or the supervisor holds the base (no progress for 2 s)."""
        cfg, node = self.node.approach_cfg, self.node
        start = self.odom
        if start is None or not math.isfinite(distance_m):
            return MotionResult("unavailable", "no odometry"), 0.0
        c, s = math.cos(start[2]), math.sin(start[2])
        t_end = self.now() + timeout_s
        travelled, why = 0.0, "reached"
        progress_at, progress = self.now(), 0.0
        try:
            while True:
                if node.cancel_event.is_set():
                    return MotionResult("canceled", "plan canceled"), travelled
                o = self.odom
                travelled = (o[0] - start[0]) * c + (o[1] - start[1]) * s
                now = self.now()
                scan = self.scan
                if scan is None or now - scan[0] > 0.5:
                    return MotionResult("blocked", "no fresh laser scan for the approach"), \
                        travelled
                msg = scan[1]
                gap = front_gap(msg.ranges, msg.angle_min, msg.angle_increment,
                                msg.range_max, self.laser_pose.get(msg.header.frame_id,
                                                                   (0.0, 0.0, 0.0)),
                                cfg, backwards=distance_m < 0)
                v = approach_speed(distance_m - travelled, gap, cfg)
                if v == 0.0:
                    if abs(distance_m - travelled) > cfg.tolerance_m:
                        why = f"stopped {gap:.2f} m short of what the laser sees"
                    break
                if abs(travelled - progress) > 0.005:
                    progress_at, progress = now, travelled
                elif now - progress_at > 2.0:
                    why = "held by the supervisor"
                    break
                if now > t_end:
                    return MotionResult("timeout", f"approach took longer than "
                                        f"{timeout_s:g} s"), travelled
                self._publish_twist(v)
                self.sleep(0.05)
        finally:
            self._publish_twist(0.0)
        self.sleep(0.3)                  # let the base settle before the arm moves
        o = self.odom
        travelled = (o[0] - start[0]) * c + (o[1] - start[1]) * s
        return MotionResult("succeeded", f"{why} after {travelled:+.2f} m"), travelled

    def set_gripper(self, opening_m: float, timeout_s: float) -> float | None:
        node = self.node
        joint, dur = node.p["gripper_joint"], node.p["gripper_time_s"]
        traj = JointTrajectory(joint_names=[joint])
        traj.header.stamp = node.get_clock().now().to_msg()
        secs = int(dur)
        traj.points = [JointTrajectoryPoint(
            positions=[float(opening_m)], velocities=[0.0],
            time_from_start=Duration(sec=secs, nanosec=int((dur - secs) * 1e9)))]
        node.traj_pub.publish(traj)
        self.sleep(dur + 0.3)
        t_end = self.now() + min(timeout_s, 3.0)
        while self.now() < t_end:          # fingers settled (stopped) or timed out
            st = self.joints.get(joint)
            if st is not None and abs(st[1]) < 1e-3:
                break
            self.sleep(0.05)
        st = self.joints.get(joint)
        return None if st is None else st[0]

    # -- perception ---------------------------------------------------------------------
    def gauge_readings(self, asset_id: str, since_s: float) -> list[Reading]:
        with self.lock:
            return [r for at, r in self.gauges if r.asset_id == asset_id and at >= since_s]

    def fiducial_seen(self, tag_id: int, since_s: float) -> bool:
        return self.tags.get(tag_id, -math.inf) >= since_s

    def object_position(self, object_id: str) -> tuple[float, float, float] | None:
        """Where the object is: the perceived small obstacle cluster within 0.15 m of where
        the registry says it is kept (refined), else that surveyed position; None when the
        registry has no position for it (objects carry no tags)."""
        obj = self.node.registry.object(object_id)
        if obj.pose is None:
            return None
        px, py, pz = obj.pose
        obs, pose = self.obstacles, self.pose
        if obs is None or pose is None:
            return obj.pose
        x, y, yaw = pose
        best, best_d = None, 0.15
        for o in obs.obstacles:
            c = o.center
            if not (max(o.size.x, o.size.y) <= 0.4 and o.size.z <= 0.4):
                continue
            if obs.header.frame_id == self.node.p["map_frame"]:
                mx, my = c.x, c.y
            else:                                   # base frame
                mx = x + c.x * math.cos(yaw) - c.y * math.sin(yaw)
                my = y + c.x * math.sin(yaw) + c.y * math.cos(yaw)
            d = math.hypot(mx - px, my - py)
            if d < best_d:
                best, best_d = (mx, my, pz), d
        where = best or obj.pose
        off = self.station_offset(where[:2])
        if off is None:
            return where
        # the tool lies where it was surveyed relative to the station's tag: shift it by
        # how far off the robot's pose puts that tag (the pose error cancels in the arm's
        # map-to-base transform)
        return (where[0] + off[0], where[1] + off[1], where[2])

    def station_offset(self, near: Sequence[float]) -> tuple[float, float] | None:
        """The pose error at a tool station (sitebot.executor.locate.station_offset)."""
        return station_offset(self.pose, near, self.node.registry.markers, self.tag_poses,
                              self.now())

    def save_image(self, name: str) -> str | None:
        img = self.image
        if img is None:
            return None
        arr = convert.image_to_bgr(img)
        if arr is None:
            return None
        folder = self.run_dir / "images"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_safe(name)}.png"
        cv2.imwrite(str(path), arr)
        return str(path)

    # -- dialogue -----------------------------------------------------------------------
    def confirm(self, question: str, plan_id: str, timeout_s: float) -> bool | None:
        self.confirm_answer = None
        self.node.confirm_pub.publish(String(data=json.dumps(
            {"plan_id": plan_id, "question": question, "role_required": "supervisor"})))
        self.log(f"waiting for confirmation: {question}")
        t_end = self.now() + timeout_s
        while self.now() < t_end:
            ans = self.confirm_answer
            if ans is not None and ans[0] == plan_id:
                return ans[1]
            if self.node.cancel_event.is_set():
                return False
            self.sleep(0.05)
        return None

    def stop_motion(self) -> None:
        g = self.active_goal
        if g is not None:
            g.cancel_goal_async()
        stop = TwistStamped()
        stop.header.stamp = self.node.get_clock().now().to_msg()
        stop.header.frame_id = self.node.p["base_frame"]
        self.node.cmd_pub.publish(stop)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


class TaskExecutorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("task_executor", **kwargs)
        self.p = declare_schema(self, SCHEMA)
        self.registry = load_world(self.p["world"]).registry
        spawn = load_world(self.p["world"]).spawn_poses.get(self.p["spawn"])
        self.spawn = (spawn.x, spawn.y, spawn.yaw) if spawn is not None else (0.0, 0.0, 0.0)
        self.config = ExecutorConfig(
            nav_timeout_s=self.p["nav_timeout_s"], arm_timeout_s=self.p["arm_timeout_s"],
            gauge_timeout_s=self.p["gauge_timeout_s"], gauge_samples=self.p["gauge_samples"],
            max_attempts=self.p["max_attempts"], retry_wait_s=self.p["retry_wait_s"],
            pause_limit_s=self.p["pause_limit_s"],
            safety_stale_s=self.p["safety_stale_s"],
            confirm_timeout_s=self.p["confirm_timeout_s"], use_arm=self.p["use_arm"],
            grasp_forward_m=self.p["grasp_forward_m"], approach_max_m=self.p["approach_max_m"])
        self.approach_cfg = ApproachConfig(speed_mps=self.p["approach_speed_mps"],
                                           min_gap_m=self.p["approach_min_gap_m"])
        self.desc = load_robot_description()
        self.ports = RosPorts(self)
        self.runner = PlanRunner(self.registry, self.ports, self.config)
        self.cancel_event = threading.Event()
        self.busy = threading.Lock()
        self.events: list[dict] = []
        self.path: list[tuple[float, float, float]] = []
        self.safety_log: list[dict] = []
        self._last_level: int | None = None
        self._last_path_t = -math.inf

        cb = ReentrantCallbackGroup()
        self.nav_client = ActionClient(self, NavigateToPlace, "navigate_to_place",
                                       callback_group=cb)
        self.arm_client = ActionClient(self, MoveArm, "move_arm", callback_group=cb)
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self.traj_pub = self.create_publisher(JointTrajectory, "arm/joint_trajectory_in",
                                              QOS_COMMAND)
        self.confirm_pub = self.create_publisher(String, "task/confirmation_request",
                                                 QOS_COMMAND)
        self.status_pub = self.create_publisher(String, "task/status", QOS_STATE)
        self.create_subscription(SafetyState, "safety/state", self.on_safety, QOS_STATE,
                                 callback_group=cb)
        self.create_subscription(Odometry, "odometry/filtered", self.on_filtered, QOS_STATE,
                                 callback_group=cb)
        self.create_subscription(Odometry, "odom", self.on_odom, QOS_STATE, callback_group=cb)
        self.create_subscription(LaserScan, "scan", self.on_scan, QOS_SENSOR, callback_group=cb)
        self.create_subscription(Image, "camera/color/image_raw", self.on_image, QOS_SENSOR,
                                 callback_group=cb)
        self.create_subscription(GaugeReading, "gauges", self.on_gauge, QOS_SENSOR,
                                 callback_group=cb)
        self.create_subscription(FiducialDetectionArray, "fiducials", self.on_fiducials,
                                 QOS_SENSOR, callback_group=cb)
        self.create_subscription(ObstacleArray, "obstacles", self.on_obstacles, QOS_SENSOR,
                                 callback_group=cb)
        self.create_subscription(JointState, "joint_states", self.on_joints, QOS_STATE,
                                 callback_group=cb)
        self.create_subscription(TaskCommand, "task/confirm", self.on_confirm, QOS_COMMAND,
                                 callback_group=cb)
        self.create_subscription(TaskPlan, "task/plan", self.on_plan, QOS_COMMAND,
                                 callback_group=cb)
        self.server = ActionServer(self, ExecutePlan, "execute_plan",
                                   execute_callback=self.execute_cb,
                                   goal_callback=self.goal_cb, cancel_callback=self.cancel_cb,
                                   callback_group=cb)
        self.get_logger().info(
            f"task executor on site '{self.registry.site}' (pose: {self.p['pose_source']}, "
            f"arm: {'on' if self.p['use_arm'] else 'off'})")

    # -- inputs -------------------------------------------------------------------------
    def _guard(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # a malformed message must not kill the executor
            self.get_logger().warning(f"{what}: ignored malformed message: "
                                      f"{type(e).__name__}: {e}", throttle_duration_sec=2.0)

    def on_safety(self, msg: SafetyState) -> None:
        with self.ports.lock:
            self.ports.safety_msg, self.ports.safety_at = msg, self.ports.now()
        if msg.level != self._last_level:
            self._last_level = msg.level
            self.safety_log.append({"t": round(self.ports.now(), 3), "level": int(msg.level),
                                    "reasons": list(msg.reasons)[:4]})

    def _set_pose(self, x: float, y: float, yaw: float) -> None:
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            self.get_logger().warning("non-finite pose ignored", throttle_duration_sec=2.0)
            self.ports.pose = None
            return
        self.ports.pose = (x, y, yaw)
        t = self.ports.now()
        if self.busy.locked() and t - self._last_path_t >= 1.0:
            self._last_path_t = t
            self.path.append((round(t, 2), round(x, 3), round(y, 3)))

    def on_filtered(self, msg: Odometry) -> None:
        if self.p["pose_source"] == "filter":
            self._set_pose(*convert.planar_pose(msg.pose.pose))

    def on_scan(self, msg: LaserScan) -> None:
        self._guard("scan", self._scan, msg)

    def _scan(self, msg: LaserScan) -> None:
        frame = msg.header.frame_id
        if frame not in self.ports.laser_pose:
            self.ports.laser_pose[frame] = planar_frame_pose(self.desc, self.p["base_frame"],
                                                             frame)
        self.ports.scan = (self.ports.now(), msg)

    def on_odom(self, msg: Odometry) -> None:
        ox, oy, oyaw = convert.planar_pose(msg.pose.pose)
        if all(math.isfinite(v) for v in (ox, oy, oyaw)):
            self.ports.odom = (ox, oy, oyaw)
        if self.p["pose_source"] != "dead_reckoning":
            return
        sx, sy, syaw = self.spawn
        c, s = math.cos(syaw), math.sin(syaw)
        self._set_pose(sx + c * ox - s * oy, sy + s * ox + c * oy,
                       math.remainder(syaw + oyaw, math.tau))

    def on_image(self, msg: Image) -> None:
        self.ports.image = msg

    def on_gauge(self, msg: GaugeReading) -> None:
        self._guard("gauges", self._gauge, msg)

    def _gauge(self, msg: GaugeReading) -> None:
        now = self.ports.now()
        crop_path = ""
        if msg.valid and msg.crop.width > 0 and self.busy.locked():
            arr = convert.image_to_bgr(msg.crop)
            if arr is not None:
                folder = self.ports.run_dir / "readings"
                folder.mkdir(parents=True, exist_ok=True)
                crop_path = str(folder / f"{_safe(msg.asset_id)}_{now:.2f}.png")
                cv2.imwrite(crop_path, arr)
        r = Reading(msg.asset_id, float(msg.value), msg.unit, float(msg.confidence),
                    bool(msg.valid) and math.isfinite(msg.value), msg.failure_reason,
                    convert.from_time(msg.header.stamp), crop_path)
        with self.ports.lock:
            self.ports.gauges.append((now, r))
            del self.ports.gauges[:-200]

    def on_fiducials(self, msg: FiducialDetectionArray) -> None:
        now = self.ports.now()
        for d in msg.detections:
            self.ports.tags[int(d.tag_id)] = now
            p = d.pose_base.position
            if math.isfinite(p.x) and math.isfinite(p.y) and (p.x, p.y) != (0.0, 0.0):
                self.ports.tag_poses[int(d.tag_id)] = (now, (p.x, p.y))

    def on_obstacles(self, msg: ObstacleArray) -> None:
        self.ports.obstacles = msg

    def on_joints(self, msg: JointState) -> None:
        n = len(msg.name)
        if len(msg.position) != n:
            return
        vel = list(msg.velocity) if len(msg.velocity) == n else [0.0] * n
        for name, q, v in zip(msg.name, msg.position, vel):
            if math.isfinite(q) and math.isfinite(v):
                self.ports.joints[name] = (float(q), float(v))

    def on_confirm(self, msg: TaskCommand) -> None:
        text = msg.text.strip().lower().rstrip(".!")
        if msg.role != "supervisor":
            self.event(f"confirmation from role {msg.role!r} ignored: a supervisor must confirm")
            return
        if text in _YES or text in _NO:
            self.ports.confirm_answer = (msg.in_reply_to, text in _YES)
            self.event(f"confirmation for {msg.in_reply_to}: {'yes' if text in _YES else 'no'}")
        else:
            self.event(f"confirmation answer {msg.text!r} not understood (yes/no)")

    def on_plan(self, msg: TaskPlan) -> None:
        if msg.status != TaskPlan.STATUS_OK or not self.p["auto_execute"]:
            return
        try:
            plan = plan_from_msg(msg)
        except ValueError as e:
            self.event(f"plan {msg.plan_id} malformed: {e}")
            return
        if not self.busy.acquire(blocking=False):
            self.event(f"plan {plan.plan_id} refused: another plan is running")
            return
        threading.Thread(target=self._run_locked, args=(plan, False, None), daemon=True).start()

    # -- action -------------------------------------------------------------------------
    def goal_cb(self, goal) -> GoalResponse:
        if goal.plan.status != TaskPlan.STATUS_OK:
            self.event("execute_plan goal rejected: the plan's status is not ok")
            return GoalResponse.REJECT
        if self.busy.locked():
            self.event("execute_plan goal rejected: another plan is running")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def cancel_cb(self, goal_handle) -> CancelResponse:
        self.cancel_event.set()
        return CancelResponse.ACCEPT

    def execute_cb(self, goal_handle):
        result = ExecutePlan.Result()
        try:
            plan = plan_from_msg(goal_handle.request.plan)
        except ValueError as e:
            goal_handle.abort()
            result.code, result.reason = ResultCode.REJECTED, str(e)
            return result
        if not self.busy.acquire(blocking=False):
            goal_handle.abort()
            result.code, result.reason = ResultCode.REJECTED, "another plan is running"
            return result

        def feedback(i: int, n: int, state: str, r: StepResult) -> None:
            fb = ExecutePlan.Feedback(step_index=i, step_count=n, state=state,
                                      current=outcome_msg(r, self.get_clock().now().to_msg()))
            goal_handle.publish_feedback(fb)

        res = self._run_locked(plan, bool(goal_handle.request.confirmed), feedback)
        result.code, result.reason = int(res.code), res.reason
        stamp = self.get_clock().now().to_msg()
        result.steps = [outcome_msg(s, stamp) for s in res.steps]
        if res.code is ResultCode.SUCCEEDED:
            goal_handle.succeed()
        elif res.code is ResultCode.CANCELED and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return result

    def _run_locked(self, plan: Plan, confirmed: bool, feedback) -> ExecutionResult:
        """Run *plan* (the caller holds ``busy``) and write its report."""
        try:
            self.cancel_event.clear()
            self.path.clear()
            self.safety_log.clear()
            self.events.clear()
            self._last_level = None
            run_dir = Path(self.p["out_dir"]) / _safe(plan.plan_id or "plan")
            run_dir.mkdir(parents=True, exist_ok=True)
            self.ports.run_dir = run_dir
            t0, w0 = self.ports.now(), time.monotonic()

            def fb(i: int, n: int, state: str, r: StepResult) -> None:
                self.status_pub.publish(String(data=json.dumps(
                    {"plan_id": plan.plan_id, "step": i + 1, "steps": n, "state": state,
                     "skill": r.step.skill, "message": r.message})))
                if feedback:
                    feedback(i, n, state, r)

            self.event(f"plan {plan.plan_id} started: "
                       + ", ".join(s.describe() for s in plan.steps))
            res = self.runner.run(plan, confirmed=confirmed, feedback=fb,
                                  cancel=self.cancel_event)
            self.event(f"plan {plan.plan_id} ended: {res.code.name} ({res.reason})")
            report = mission_report(plan, res, t0, self.ports.now(), time.monotonic() - w0,
                                    self.path, self.safety_log, self.events)
            (run_dir / "report.json").write_text(json.dumps(report, indent=2))
            self.status_pub.publish(String(data=json.dumps(
                {"plan_id": plan.plan_id, "state": "finished", "code": res.code.name,
                 "reason": res.reason, "report": str(run_dir / "report.json")})))
            return res
        finally:
            self.busy.release()

    def event(self, text: str) -> None:
        self.events.append({"t": round(self.ports.now(), 3), "event": text})


def mission_report(plan: Plan, res: ExecutionResult, t0: float, t1: float, wall_s: float,
                   path: list, safety_log: list, events: list) -> dict:
    """The mission report (JSON-able): outcome, per-step results, readings, safety events,
    path and timings."""
    return {
        "plan_id": plan.plan_id, "instruction": plan.instruction, "role": plan.role,
        "result": res.code.name.lower(), "reason": res.reason,
        "duration_s": round(t1 - t0, 2), "wall_s": round(wall_s, 2),
        "outcomes": outcome_counts(res.steps),
        "steps": [{"skill": s.step.skill, "args": dict(s.step.args),
                   "outcome": s.outcome.name.lower(), "message": s.message,
                   "attempts": s.attempts, "duration_s": round(s.duration_s, 2),
                   "images": s.images, "flags": s.flags,
                   "readings": [{"asset": r.asset_id, "value": r.value, "unit": r.unit,
                                 "confidence": r.confidence, "crop": r.crop_path}
                                for r in s.readings]} for s in res.steps],
        "readings": [{"asset": r.asset_id, "value": r.value, "unit": r.unit,
                      "confidence": r.confidence} for r in res.readings],
        "safety_events": safety_log, "events": events, "path": path,
    }


def main(args: list[str] | None = None) -> int:
    return run_node(TaskExecutorNode, args, threads=4)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
