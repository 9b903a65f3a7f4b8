"""navigation: drives the base to registry places or poses (issue 7; docs/navigation.md).

Thin adapter around :mod:`sitebot.navigation.stack` (costmap, global planner, regulated pure
pursuit, behaviour state machine, the robot's pose in the map frame). Inputs: ``odom`` (wheel
odometry; with ``pose_source: dead_reckoning`` composed with the initial pose),
``odometry/filtered`` (``pose_source: filter``, frame map), ``local_map`` (nav_msgs/OccupancyGrid
from spatial perception, odom frame), ``scan`` (sensor_msgs/LaserScan, the fallback obstacle
source), ``people`` (sitebot_interfaces/TrackedPersonArray, optional), ``safety/state`` (the
supervisor: a protective stop pauses navigation), ``goal_pose`` (geometry_msgs/PoseStamped,
rviz), ``map`` (nav_msgs/OccupancyGrid, with ``map_source: topic``).
Outputs: ``cmd_vel_in`` (TwistStamped, to the supervisor), ``hri/say`` (String: the speaker,
asking a person who holds the robot to let it pass), ``plan`` (nav_msgs/Path),
``navigation/costmap`` (nav_msgs/OccupancyGrid, reliable transient-local, throttled),
``/diagnostics``. Action ``navigate_to_place`` (NavigateToPlace): a place or a pose; feedback
each control tick; results succeeded, blocked, aborted (why), canceled; a new goal preempts.
"""
from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Header, String

from sitebot.config.params import ParamSpec, ParamType
from sitebot.description.urdf import load_robot_description
from sitebot.errors import SitebotError
from sitebot.navigation.behaviour import Goal
from sitebot.navigation.config import SCHEMA as CORE_SCHEMA
from sitebot.navigation.config import navigation_config_from_params
from sitebot.navigation.stack import NavigationStack
from sitebot.nodes.common import (QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema,
                                  run_node)
from sitebot.nodes.convert import (diagnostic_status, occupancy_grid_msg, path_msg, planar_pose,
                                   twist_msg)
from sitebot.site.bundle import load_bundle
from sitebot.site.params import SITE_PARAMS
from sitebot_interfaces.action import NavigateToPlace
from sitebot_interfaces.msg import SafetyState, TrackedPersonArray

F, S = ParamType.FLOAT, ParamType.STRING
_CODES = ("succeeded", "blocked", "aborted", "canceled")
NODE_SCHEMA = (
    *SITE_PARAMS,
    ParamSpec("map_source", S, "site", "'site': the site bundle's map; 'topic': a "
              "nav_msgs/OccupancyGrid on 'map' (a map server or SLAM)", choices=("site", "topic")),
    ParamSpec("control_rate_hz", F, 20.0, "control loop rate", 2.0, 100.0, unit="Hz"),
    ParamSpec("costmap_publish_period_s", F, 2.0, "navigation/costmap publication period "
              "(wall time; 0: only at start)", 0.0, 60.0, unit="s"),
)
SCHEMA = NODE_SCHEMA + CORE_SCHEMA

_RESULT = {c: getattr(NavigateToPlace.Result, f"CODE_{c.upper()}") for c in _CODES}


class NavigationNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("navigation", **kwargs)
        self.p = p = declare_schema(self, SCHEMA, on_change=self._on_params)
        self.site = load_bundle(p["site"])
        self.stack = NavigationStack.for_site(
            self.site, self.site.initial_pose(p["initial_pose"]),
            navigation_config_from_params(p), load_robot_description(),
            site_map=p["map_source"] == "site")
        self.lock = threading.RLock()
        self.current_handle = None
        self._tick_waiters: list[Future] = []    # goals waiting for the next control tick
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self.say_pub = self.create_publisher(String, "hri/say", QOS_COMMAND)   # the speaker
        self.plan_pub = self.create_publisher(Path, "plan", QOS_LATCHED)
        self.costmap_pub = self.create_publisher(OccupancyGrid, "navigation/costmap", QOS_LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(Odometry, "odom", self.on_odom, QOS_STATE)
        self.create_subscription(Odometry, "odometry/filtered", self.on_filter, QOS_STATE)
        self.create_subscription(LaserScan, "scan", self.on_scan, QOS_SENSOR)
        self.create_subscription(OccupancyGrid, "local_map", self.on_local_map, QOS_SENSOR)
        self.create_subscription(TrackedPersonArray, "people", self.on_people, QOS_SENSOR)
        self.create_subscription(SafetyState, "safety/state", self.on_safety, QOS_STATE)
        self.create_subscription(PoseStamped, "goal_pose", self.on_goal_pose, QOS_COMMAND)
        if p["map_source"] == "topic":
            self.create_subscription(OccupancyGrid, "map", self.on_map, QOS_LATCHED)
        self.create_timer(1.0 / p["control_rate_hz"], self.on_control)
        self.create_timer(1.0, self.on_diagnostics)
        # costmap publication in wall time: a heavy message, throttled whatever the sim speed
        self.create_timer(max(p["costmap_publish_period_s"], 0.5), self.publish_costmap,
                          MutuallyExclusiveCallbackGroup(), Clock(clock_type=ClockType.STEADY_TIME))
        self._costmap_published = -1
        self.action = ActionServer(
            self, NavigateToPlace, "navigate_to_place", self.execute,
            callback_group=ReentrantCallbackGroup(), handle_accepted_callback=self.on_accepted,
            goal_callback=lambda _: GoalResponse.ACCEPT,
            cancel_callback=lambda _: CancelResponse.ACCEPT)
        self.publish_costmap(force=True)
        cm = self.stack.costmap
        self.get_logger().info(f"navigation ready: site '{self.site.site}', map {p['map_source']}, "
                               f"pose {p['pose_source']}, costmap "
                               f"{cm.shape if cm else 'waiting'} at {p['resolution_m']:g} m")

    def _on_params(self, changed: dict) -> None:
        self.get_logger().warning(f"parameters {sorted(changed)} take effect at the next start")

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    filter_pose = property(lambda self: self.stack.frames.filter_pose)
    counts = property(lambda self: self.stack.counts)

    def _feed(self, what: str, fn, *args) -> bool:
        """One input into the stack; a bad one is counted and logged, never fatal."""
        try:
            with self.lock:
                fn(*args)
            return True
        except Exception as e:  # noqa: BLE001 - bad input never takes the node down
            self.stack.counts["bad_input"] += 1
            self.get_logger().warning(f"{what}: {type(e).__name__}: {e}; ignored",
                                      throttle_duration_sec=2.0)
            return False

    # ------------------------------------------------------------------ inputs
    def on_odom(self, msg: Odometry) -> None:
        self._feed("odom", self.stack.frames.set_odom, planar_pose(msg.pose.pose), self.now())

    def on_filter(self, msg: Odometry) -> None:
        self._feed("odometry/filtered", self.stack.frames.set_filter,
                   planar_pose(msg.pose.pose), msg.header.frame_id, self.now())

    def on_scan(self, msg: LaserScan) -> None:
        self._feed("scan", self.stack.scan, msg.header.frame_id, msg.ranges, msg.angle_min,
                   msg.angle_increment, msg.range_min, msg.range_max, self.now())

    def on_local_map(self, msg: OccupancyGrid) -> None:
        i = msg.info
        self._feed("local_map", self.stack.local_grid, msg.data, i.width, i.height,
                   planar_pose(i.origin), i.resolution, msg.header.frame_id, self.now())

    def on_people(self, msg: TrackedPersonArray) -> None:
        points = [(h.pose.pose.position.x, h.pose.pose.position.y) for h in msg.people]
        self._feed("people", self.stack.people_seen, points, msg.header.frame_id, self.now())

    def on_safety(self, msg: SafetyState) -> None:
        self._feed("safety/state", self.stack.safety_state, msg.level, msg.max_linear_speed_mps,
                   msg.reasons, msg.message, self.now())

    def on_map(self, msg: OccupancyGrid) -> None:
        i = msg.info
        if self._feed("map", self.stack.map_grid, msg.data, i.width, i.height,
                      planar_pose(i.origin), i.resolution, msg.header.frame_id):
            self.get_logger().info(f"map received: {i.width}x{i.height} cells at "
                                   f"{i.resolution:g} m")

    # ------------------------------------------------------------------ goals
    def goal_from_pose(self, ps: PoseStamped, label: str = "") -> Goal:
        q, pos = ps.pose.orientation, ps.pose.position
        return self.stack.goal_from_pose((pos.x, pos.y), (q.x, q.y, q.z, q.w),
                                         ps.header.frame_id, label)

    def start_goal(self, goal: Goal):
        with self.lock:
            outcome = self.stack.start(goal, self.now())
            self.publish_plan(None)
            if outcome is not None:
                self.get_logger().warning(f"goal {goal.label}: {outcome.code}: {outcome.reason}")
            else:
                self.get_logger().info(f"new goal {goal.label} ({goal.x:.2f}, {goal.y:.2f}, "
                                       f"{goal.yaw:.2f})")
            return outcome

    def on_goal_pose(self, msg: PoseStamped) -> None:
        try:
            goal = self.goal_from_pose(msg)
        except SitebotError as e:
            self.stack.counts["bad_input"] += 1
            self.get_logger().warning(f"goal_pose rejected: {e}")
            return
        with self.lock:
            self.current_handle = None            # preempts an action goal
            self.start_goal(goal)

    def on_accepted(self, goal_handle) -> None:
        with self.lock:
            self.current_handle = goal_handle     # the running one (if any) sees it is preempted
        goal_handle.execute()

    def _result(self, code: str, reason: str):
        r = NavigateToPlace.Result()
        r.code, r.reason = _RESULT[code], reason
        return r

    async def execute(self, goal_handle):   # followed at each control tick (sim time)
        with self.lock:
            if self.current_handle is not goal_handle:
                goal_handle.abort()
                return self._result("aborted", "preempted by a newer goal before it started")
            try:
                req = goal_handle.request
                outcome = self.start_goal(self.stack.goal_for_place(req.place_id) if req.place_id
                                          else self.goal_from_pose(req.pose))
            except SitebotError as e:
                self.stack.counts["bad_input"] += 1
                self.get_logger().warning(f"navigate_to_place rejected: {e}")
                goal_handle.abort()
                return self._result("aborted", f"invalid goal: {e}")
            if outcome is not None:
                goal_handle.abort()
                return self._result(outcome.code, outcome.reason)
            nav = self.stack.nav
        fb = NavigateToPlace.Feedback()
        while self.context.ok():
            self._tick_waiters.append(tick := Future())
            await tick
            with self.lock:
                end = self.stack.goal_end(nav, self.current_handle is goal_handle,
                                          goal_handle.is_cancel_requested)
                if end is not None:
                    how, out = end
                    if how == "canceled":
                        self.send_zero()
                    getattr(goal_handle, how)()         # abort(), canceled() or succeed()
                    return self._result(out.code, out.reason)
                fb.state = self.stack.state
                fb.distance_remaining_m = float(self.stack.remaining_m)
            goal_handle.publish_feedback(fb)
        goal_handle.abort()
        return self._result("aborted", "navigation is shutting down")

    # ------------------------------------------------------------------ control
    def send(self, v: float, w: float) -> None:
        self.cmd_pub.publish(twist_msg(v, w, self.get_clock().now().to_msg(),
                                       self.p["base_frame"]))

    def send_zero(self) -> None:
        self.send(0.0, 0.0)

    def on_control(self) -> None:
        t0 = time.perf_counter()
        try:
            with self.lock:
                tick = self.stack.tick(self.now())
                if tick is not None:
                    if tick.plan is not None:
                        self.publish_plan(tick.plan)
                    # one call site per severity: rclpy refuses a call site that changes it
                    if tick.outcome is not None and tick.outcome.code == "succeeded":
                        self.get_logger().info(tick.message)
                    elif tick.outcome is not None:
                        self.get_logger().warning(tick.message)
                    self.send(tick.v, tick.w)
                    if tick.say:      # a person holds the robot: ask them to let it pass
                        self.say_pub.publish(String(data=tick.say))
        except Exception as e:  # noqa: BLE001 - the node must survive; the base stops
            self.get_logger().error(f"control step failed: {type(e).__name__}: {e}",
                                    throttle_duration_sec=1.0)
            self.send_zero()
        self.stack.record_cycle((time.perf_counter() - t0) * 1e3)
        waiters, self._tick_waiters = self._tick_waiters, []
        for tick in waiters:
            tick.set_result(None)

    # ------------------------------------------------------------------ outputs
    def publish_plan(self, plan) -> None:
        xy, yaw = (plan.xy, plan.yaw) if plan is not None else ((), ())
        self.plan_pub.publish(path_msg(xy, yaw, self.get_clock().now().to_msg(),
                                       self.p["map_frame"]))

    def publish_costmap(self, force: bool = False) -> None:
        with self.lock:
            cm = self.stack.costmap
            if cm is None or (not force and (cm.version == self._costmap_published
                                             or self.p["costmap_publish_period_s"] <= 0)):
                return
            self._costmap_published = cm.version
            values = cm.occupancy_values()
        self.costmap_pub.publish(occupancy_grid_msg(
            values, cm.origin_x, cm.origin_y, cm.res, self.get_clock().now().to_msg(),
            self.p["map_frame"]))

    def on_diagnostics(self) -> None:
        with self.lock:
            status = diagnostic_status(self.stack.status(self.now()), self.get_name(), "navigation")
        self.diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                              status=[status]))


def main(args: list[str] | None = None) -> int:
    return run_node(NavigationNode, args, on_exit=lambda n: n.send_zero())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
