"""navigation: drives the base to registry places or poses (issue 7; docs/navigation.md).

Thin adapter around :mod:`sitebot.navigation` (costmap, global planner, regulated pure
pursuit, behaviour state machine). Inputs: ``odom`` (wheel odometry; with
``pose_source: dead_reckoning`` composed with the world's spawn pose), ``odometry/filtered``
(``pose_source: filter``, frame map), ``local_map`` (nav_msgs/OccupancyGrid from spatial
perception, odom frame), ``scan`` (sensor_msgs/LaserScan, the fallback obstacle source),
``people`` (sitebot_interfaces/TrackedPersonArray, optional), ``safety/state`` (the
supervisor: a protective stop pauses navigation), ``goal_pose`` (geometry_msgs/PoseStamped,
rviz), ``map`` (nav_msgs/OccupancyGrid, with ``map_source: topic``).
Outputs: ``cmd_vel_in`` (TwistStamped, to the safety supervisor), ``plan`` (nav_msgs/Path),
``navigation/costmap`` (nav_msgs/OccupancyGrid, reliable transient-local, throttled),
``/diagnostics``. Action server ``navigate_to_place`` (sitebot_interfaces/NavigateToPlace):
a registry place or a pose; feedback distance remaining and state; results succeeded,
blocked, aborted (with the reason), canceled; a new goal preempts the running one.
"""
from __future__ import annotations

import array
import copy
import math
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import LaserScan

from sitebot_interfaces.action import NavigateToPlace
from sitebot_interfaces.msg import SafetyState, TrackedPersonArray

from sitebot.errors import SitebotError
from sitebot.description.kinematics import JointTransformer, transform_matrix
from sitebot.navigation.behaviour import BehaviourConfig, Goal, Navigator, SafetyInput
from sitebot.navigation.controller import ControllerConfig, RegulatedPurePursuit
from sitebot.navigation.costmap import Costmap, CostmapConfig
from sitebot.navigation.planner import GlobalPlanner, PlannerConfig
from sitebot.config.params import ParamSpec, ParamType
from sitebot.site.registry import Place
from sitebot.description.urdf import load_robot_description
from sitebot.sim.world import load_world
from sitebot.nodes.common import (QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema,
                     run_node)
from sitebot.nodes.convert import msg_yaw, planar_pose
from sitebot.types import se2_compose, se2_inverse, yaw_to_quaternion

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING

SCHEMA = (
    ParamSpec("world", S, "substation", "world: its static map, site registry (places, zones) "
              "and spawn pose"),
    ParamSpec("spawn", S, "robot1", "spawn pose of the world used by dead reckoning"),
    ParamSpec("pose_source", S, "dead_reckoning", "'filter': odometry/filtered (map frame); "
              "'dead_reckoning': odom composed with the spawn pose",
              choices=("filter", "dead_reckoning")),
    ParamSpec("map_source", S, "world", "'world': the world's static map; 'topic': a "
              "nav_msgs/OccupancyGrid on 'map' (real sites)", choices=("world", "topic")),
    ParamSpec("role", S, "", "role the robot works for: restricted zones listing it may be "
              "entered, the others are lethal"),
    ParamSpec("map_frame", S, "map", "the map frame (goals, plan, costmap)"),
    ParamSpec("odom_frame", S, "odom", "the odometry frame (local_map)"),
    ParamSpec("base_frame", S, "base_footprint", "the robot's base frame"),
    ParamSpec("control_rate_hz", F, 20.0, "control loop rate", 2.0, 100.0, unit="Hz"),
    ParamSpec("pose_timeout_s", F, 0.5, "a pose older than this stops the base", 0.05, 5.0,
              unit="s"),
    ParamSpec("safety_timeout_s", F, 0.5, "safety/state older than this pauses navigation "
              "(the control loop stops without it anyway)", 0.05, 5.0, unit="s"),
    ParamSpec("safety_required", B, True, "pause while no fresh safety/state arrives"),
    ParamSpec("use_scan", B, True, "mark and clear obstacles from the raw scan"),
    ParamSpec("use_local_map", B, True, "mark and clear obstacles from local_map"),
    ParamSpec("costmap_publish_period_s", F, 2.0, "navigation/costmap publication period "
              "(wall time; 0: only at start)", 0.0, 60.0, unit="s"),
    # costmap
    ParamSpec("resolution_m", F, 0.05, "costmap resolution", 0.02, 0.5, unit="m"),
    ParamSpec("footprint_radius_m", F, 0.4, "radius of the circle covering the robot (the "
              "supervisor's footprint_radius_m)", 0.1, 2.0, unit="m"),
    ParamSpec("inflation_radius_m", F, 1.0, "the cost gradient reaches this far from "
              "obstacles", 0.1, 5.0, unit="m"),
    ParamSpec("cost_scaling_factor", F, 3.0, "exponential decay rate of the cost gradient",
              0.1, 50.0, unit="1/m"),
    ParamSpec("zone_margin_m", F, 0.1, "keep-out and forbidden restricted zones grown by "
              "this (the supervisor's zone_margin_m)", 0.0, 2.0, unit="m"),
    ParamSpec("slow_zone_cost", I, 40, "floor cost inside slow zones (0..252)", 0, 252),
    ParamSpec("obstacle_decay_s", F, 5.0, "a perceived obstacle not seen again expires after "
              "this", 0.1, 600.0, unit="s"),
    ParamSpec("obstacle_max_range_m", F, 4.0, "scan hits beyond this are not marked", 0.5,
              30.0, unit="m"),
    ParamSpec("raytrace_max_range_m", F, 5.0, "scan beams clear free space up to this range",
              0.5, 30.0, unit="m"),
    ParamSpec("obstacle_clearance_m", F, 0.6, "perceived obstacles the static map does not "
              "explain get a soft margin (cost 252) this far beyond the footprint (the "
              "supervisor stops short of person-sized ones)", 0.0, 2.0, unit="m"),
    ParamSpec("static_match_m", F, 0.25, "perceived obstacles this close to the static map are "
              "taken as that structure (no soft margin)", 0.0, 1.0, unit="m"),
    ParamSpec("allow_unknown", B, False, "unknown cells of a map topic are free (else lethal)"),
    # planner
    ParamSpec("cost_weight", F, 3.0, "path cost factor 1 + cost_weight * cost/252", 0.0, 50.0),
    ParamSpec("coarse_factor", I, 4, "coarse search every N cells first (<= 1: none)", 0, 16),
    ParamSpec("corridor_m", F, 1.0, "fine search within this of the coarse path", 0.2, 10.0,
              unit="m"),
    ParamSpec("min_turn_radius_m", F, 0.3, "smallest corner arc; below it the base turns on "
              "the spot", 0.05, 5.0, unit="m"),
    ParamSpec("max_turn_radius_m", F, 1.5, "largest corner arc", 0.05, 10.0, unit="m"),
    # controller
    ParamSpec("desired_speed_mps", F, 0.6, "cruise speed", 0.05, 1.5, unit="m/s"),
    ParamSpec("max_angular_radps", F, 1.0, "largest turn rate", 0.1, 3.0, unit="rad/s"),
    ParamSpec("max_accel_mps2", F, 0.5, "largest acceleration", 0.05, 3.0, unit="m/s^2"),
    ParamSpec("lookahead_time_s", F, 1.5, "lookahead = speed * this (clamped)", 0.1, 5.0,
              unit="s"),
    ParamSpec("min_lookahead_m", F, 0.4, "smallest lookahead", 0.1, 3.0, unit="m"),
    ParamSpec("max_lookahead_m", F, 1.2, "largest lookahead", 0.1, 5.0, unit="m"),
    ParamSpec("rotate_to_heading_rad", F, 0.7, "turn on the spot first when the path is more "
              "than this off the heading", 0.1, 3.2, unit="rad"),
    ParamSpec("rotate_speed_radps", F, 0.8, "turn rate on the spot", 0.1, 3.0, unit="rad/s"),
    ParamSpec("regulated_min_radius_m", F, 0.9, "tighter turns than this slow the base", 0.05,
              10.0, unit="m"),
    ParamSpec("proximity_distance_m", F, 0.5, "closer than this (beyond the footprint) to an "
              "obstacle slows the base", 0.0, 3.0, unit="m"),
    ParamSpec("approach_distance_m", F, 0.8, "slow down over this distance to the goal", 0.05,
              5.0, unit="m"),
    ParamSpec("xy_goal_tolerance_m", F, 0.1, "goal position tolerance", 0.01, 2.0, unit="m"),
    ParamSpec("yaw_goal_tolerance_rad", F, 0.1, "goal heading tolerance", 0.01, 3.2, unit="rad"),
    ParamSpec("collision_time_s", F, 1.5, "the commanded arc is checked this far ahead", 0.1,
              10.0, unit="s"),
    ParamSpec("people_slow_distance_m", F, 2.0, "a tracked person closer than this slows the "
              "base", 0.0, 10.0, unit="m"),
    ParamSpec("people_speed_mps", F, 0.25, "speed near people", 0.0, 1.5, unit="m/s"),
    # behaviour
    ParamSpec("wait_s", F, 3.0, "recovery: wait this long", 0.0, 60.0, unit="s"),
    ParamSpec("backup_distance_m", F, 0.3, "recovery: back up this far (checked behind)", 0.0,
              2.0, unit="m"),
    ParamSpec("backup_speed_mps", F, 0.1, "recovery: back-up speed", 0.02, 0.5, unit="m/s"),
    ParamSpec("rotate_angle_rad", F, 1.57, "recovery: turn this far on the spot", 0.0, 6.3,
              unit="rad"),
    ParamSpec("blocked_timeout_s", F, 30.0, "give up (blocked) after being blocked this long",
              1.0, 3600.0, unit="s"),
    ParamSpec("stall_timeout_s", F, 90.0, "give up (blocked) after this long without getting "
              "1 m closer to the goal (detours round obstacles that come and go)", 5.0,
              3600.0, unit="s"),
    ParamSpec("protective_stop_timeout_s", F, 60.0, "give up (blocked) after a protective "
              "stop this long", 1.0, 3600.0, unit="s"),
    ParamSpec("goal_timeout_s", F, 600.0, "abort a goal not reached within this", 1.0, 86400.0,
              unit="s"),
    ParamSpec("replan_period_s", F, 0.0, "replan periodically while following (0: only when "
              "the path is blocked)", 0.0, 60.0, unit="s"),
)

_RESULT = {"succeeded": NavigateToPlace.Result.CODE_SUCCEEDED,
           "blocked": NavigateToPlace.Result.CODE_BLOCKED,
           "aborted": NavigateToPlace.Result.CODE_ABORTED,
           "canceled": NavigateToPlace.Result.CODE_CANCELED}


class NavigationNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("navigation", **kwargs)
        self.p = p = declare_schema(self, SCHEMA, on_change=self._on_params)
        self.world = load_world(p["world"])
        if p["spawn"] not in self.world.spawn_poses:
            raise SitebotError(f"parameter 'spawn': world '{self.world.id}' has no spawn "
                               f"'{p['spawn']}'; it has {sorted(self.world.spawn_poses)}")
        self.spawn = tuple(self.world.spawn_poses[p["spawn"]])
        self.cm_cfg = CostmapConfig(
            resolution_m=p["resolution_m"], footprint_radius_m=p["footprint_radius_m"],
            inflation_radius_m=max(p["inflation_radius_m"], p["footprint_radius_m"]),
            cost_scaling_factor=p["cost_scaling_factor"], zone_margin_m=p["zone_margin_m"],
            slow_zone_cost=p["slow_zone_cost"], obstacle_decay_s=p["obstacle_decay_s"],
            obstacle_max_range_m=p["obstacle_max_range_m"],
            raytrace_max_range_m=p["raytrace_max_range_m"], allow_unknown=p["allow_unknown"],
            obstacle_clearance_m=p["obstacle_clearance_m"], static_match_m=p["static_match_m"],
            role=p["role"])
        self.planner = GlobalPlanner(PlannerConfig(
            cost_weight=p["cost_weight"], coarse_factor=p["coarse_factor"],
            corridor_m=p["corridor_m"], min_turn_radius_m=min(p["min_turn_radius_m"],
                                                              p["max_turn_radius_m"]),
            max_turn_radius_m=p["max_turn_radius_m"],
            escape_radius_m=p["footprint_radius_m"] + 0.2))
        self.ctrl_cfg = ControllerConfig(
            desired_speed_mps=p["desired_speed_mps"], max_angular_radps=p["max_angular_radps"],
            max_accel_mps2=p["max_accel_mps2"], lookahead_time_s=p["lookahead_time_s"],
            min_lookahead_m=min(p["min_lookahead_m"], p["max_lookahead_m"]),
            max_lookahead_m=p["max_lookahead_m"], rotate_to_heading_rad=p["rotate_to_heading_rad"],
            rotate_speed_radps=p["rotate_speed_radps"],
            regulated_min_radius_m=p["regulated_min_radius_m"],
            proximity_distance_m=p["proximity_distance_m"],
            approach_distance_m=p["approach_distance_m"],
            xy_goal_tolerance_m=p["xy_goal_tolerance_m"],
            yaw_goal_tolerance_rad=p["yaw_goal_tolerance_rad"],
            collision_time_s=p["collision_time_s"],
            people_slow_distance_m=p["people_slow_distance_m"],
            people_speed_mps=p["people_speed_mps"], footprint_radius_m=p["footprint_radius_m"])
        self.beh_cfg = BehaviourConfig(
            wait_s=p["wait_s"], backup_distance_m=p["backup_distance_m"],
            backup_speed_mps=p["backup_speed_mps"], rotate_angle_rad=p["rotate_angle_rad"],
            blocked_timeout_s=p["blocked_timeout_s"], stall_timeout_s=p["stall_timeout_s"],
            protective_stop_timeout_s=p["protective_stop_timeout_s"],
            goal_timeout_s=p["goal_timeout_s"], replan_period_s=p["replan_period_s"],
            pose_timeout_s=max(5.0, 10 * p["pose_timeout_s"]))
        self.lock = threading.RLock()
        self.costmap: Costmap | None = None
        self.nav: Navigator | None = None
        if p["map_source"] == "world":
            self._set_costmap(Costmap.from_world(self.world, self.cm_cfg))
        self.laser_pose: dict[str, tuple[float, float, float]] = {}
        self.desc = load_robot_description()
        # state
        self.odom_pose: tuple[float, float, float] | None = None
        self.odom_t = -math.inf
        self.filter_pose: tuple[float, float, float] | None = None
        self.filter_t = -math.inf
        self.map_odom: tuple[float, float, float] | None = None
        self.safety: SafetyInput | None = None
        self.safety_t = -math.inf
        self.people: list[tuple[float, float]] = []
        self.people_t = -math.inf
        self.current_handle = None
        self.zero_until = -math.inf
        self.cycle_ms: list[float] = []
        self.last_plan_ms = math.nan
        self.counts = {"goals": 0, "succeeded": 0, "blocked": 0, "aborted": 0, "canceled": 0,
                       "bad_input": 0}
        self.last_outcome = ""

        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
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
        self._wall = MutuallyExclusiveCallbackGroup()
        self.create_timer(max(p["costmap_publish_period_s"], 0.5), self.publish_costmap,
                          callback_group=self._wall,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._costmap_published = -1
        self.action = ActionServer(
            self, NavigateToPlace, "navigate_to_place", execute_callback=self.execute,
            goal_callback=lambda req: GoalResponse.ACCEPT,
            handle_accepted_callback=self.on_accepted,
            cancel_callback=lambda gh: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())
        self.publish_costmap(force=True)
        self.get_logger().info(
            f"navigation ready: world '{self.world.id}', map {p['map_source']}, pose "
            f"{p['pose_source']}, costmap {self.costmap.shape if self.costmap else 'waiting'} "
            f"at {p['resolution_m']:g} m")

    def _on_params(self, changed: dict) -> None:
        self.get_logger().warning(f"parameters {sorted(changed)} take effect at the next start")

    def _set_costmap(self, cm: Costmap) -> None:
        with self.lock:
            self.costmap = cm
            static = copy.deepcopy(cm)
            self.nav = Navigator(self.planner, RegulatedPurePursuit(self.ctrl_cfg), self.beh_cfg,
                                 static_costmap=static)

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _bad(self, what: str, e: Exception) -> None:
        self.counts["bad_input"] += 1
        self.get_logger().warning(f"{what}: {type(e).__name__}: {e}; ignored",
                                  throttle_duration_sec=2.0)

    def pose(self, now: float) -> tuple[float, float, float] | None:
        if self.p["pose_source"] == "filter":
            pose, t = self.filter_pose, self.filter_t
        else:
            pose, t = self.odom_pose, self.odom_t
            if pose is not None:
                pose = se2_compose(self.spawn, pose)
        if pose is None or now - t > self.p["pose_timeout_s"]:
            return None
        return pose

    # ------------------------------------------------------------------ inputs
    def on_odom(self, msg: Odometry) -> None:
        try:
            pp = msg.pose.pose
            pose = planar_pose(pp)
            if not all(math.isfinite(v) for v in pose):
                raise ValueError(f"non-finite pose {pose}")
            self.odom_pose, self.odom_t = pose, self.now()
            if self.p["pose_source"] == "dead_reckoning":
                self.map_odom = self.spawn
            elif self.filter_pose is not None:
                self.map_odom = se2_compose(self.filter_pose, se2_inverse(pose))
        except Exception as e:  # noqa: BLE001 - bad input never takes the node down
            self._bad("odom", e)

    def on_filter(self, msg: Odometry) -> None:
        try:
            if msg.header.frame_id != self.p["map_frame"]:
                raise ValueError(f"frame '{msg.header.frame_id}', expected "
                                 f"'{self.p['map_frame']}'")
            pp = msg.pose.pose
            pose = planar_pose(pp)
            if not all(math.isfinite(v) for v in pose):
                raise ValueError(f"non-finite pose {pose}")
            self.filter_pose, self.filter_t = pose, self.now()
        except Exception as e:  # noqa: BLE001
            self._bad("odometry/filtered", e)

    def _laser(self, frame: str) -> tuple[float, float, float]:
        if frame not in self.laser_pose:
            base = self.p["base_frame"]
            parent = {t.child: t for t in JointTransformer(self.desc.joints.values())
                      .static_transforms()}
            m = np.eye(4)
            f = frame
            while f != base:
                if f not in parent:
                    raise ValueError(f"frame '{frame}' is not fixed to '{base}' in the URDF")
                m = transform_matrix(parent[f]) @ m
                f = parent[f].parent
            self.laser_pose[frame] = (float(m[0, 3]), float(m[1, 3]), math.atan2(m[1, 0], m[0, 0]))
        return self.laser_pose[frame]

    def on_scan(self, msg: LaserScan) -> None:
        if not self.p["use_scan"] or self.costmap is None:
            return
        try:
            now = self.now()
            pose = self.pose(now)
            if pose is None:
                return
            lp = se2_compose(pose, self._laser(msg.header.frame_id))
            with self.lock:
                self.costmap.integrate_scan(lp, np.asarray(msg.ranges, float), msg.angle_min,
                                            msg.angle_increment, msg.range_min, msg.range_max,
                                            now)
        except Exception as e:  # noqa: BLE001
            self._bad("scan", e)

    def on_local_map(self, msg: OccupancyGrid) -> None:
        if not self.p["use_local_map"] or self.costmap is None:
            return
        try:
            info = msg.info
            w, h = int(info.width), int(info.height)
            if len(msg.data) != w * h:
                raise ValueError(f"{len(msg.data)} values for {w}x{h} cells")
            origin = (info.origin.position.x, info.origin.position.y,
                      msg_yaw(info.origin.orientation))
            frame = msg.header.frame_id
            if frame == self.p["map_frame"]:
                grid_pose = origin
            elif frame == self.p["odom_frame"]:
                if self.map_odom is None:
                    return
                grid_pose = se2_compose(self.map_odom, origin)
            else:
                raise ValueError(f"unknown frame '{frame}' (expected '{self.p['odom_frame']}' "
                                 f"or '{self.p['map_frame']}')")
            values = np.frombuffer(bytes(array.array("b", msg.data)), np.int8).reshape(h, w)
            with self.lock:
                self.costmap.integrate_grid(values, grid_pose, float(info.resolution), self.now())
        except Exception as e:  # noqa: BLE001
            self._bad("local_map", e)

    def on_people(self, msg: TrackedPersonArray) -> None:
        try:
            now = self.now()
            out = []
            frame = msg.header.frame_id
            pose = self.pose(now)
            for person in msg.people:
                q = person.pose.pose.position
                if not (math.isfinite(q.x) and math.isfinite(q.y)):
                    continue
                if frame == self.p["map_frame"]:
                    out.append((q.x, q.y))
                elif pose is not None:
                    x, y, _ = se2_compose(pose, (q.x, q.y, 0.0))
                    out.append((x, y))
            self.people, self.people_t = out, now
        except Exception as e:  # noqa: BLE001
            self._bad("people", e)

    def on_safety(self, msg: SafetyState) -> None:
        cap = float(msg.max_linear_speed_mps)
        level = int(msg.level)
        if not math.isfinite(cap) or cap < 0:
            cap = 0.0
        if cap < 1e-3 and level < SafetyState.LEVEL_PROTECTIVE_STOP:
            level = SafetyState.LEVEL_PROTECTIVE_STOP     # allowed speed 0: as good as stopped
        self.safety = SafetyInput(level, cap, tuple(msg.reasons) or (msg.message,))
        self.safety_t = self.now()

    def on_map(self, msg: OccupancyGrid) -> None:
        try:
            info = msg.info
            if msg.header.frame_id and msg.header.frame_id != self.p["map_frame"]:
                raise ValueError(f"frame '{msg.header.frame_id}', expected '{self.p['map_frame']}'")
            if abs(msg_yaw(info.origin.orientation)) > 1e-3:
                raise ValueError("rotated map origins are not supported")
            w, h = int(info.width), int(info.height)
            if len(msg.data) != w * h:
                raise ValueError(f"{len(msg.data)} values for {w}x{h} cells")
            values = np.frombuffer(bytes(array.array("b", msg.data)), np.int8).reshape(h, w)
            cm = Costmap.from_occupancy(values, info.origin.position.x, info.origin.position.y,
                                        float(info.resolution), self.cm_cfg,
                                        self.world.registry.zones)
            with self.lock:
                if self.nav is not None and self.nav.active:
                    self.nav.cancel("the map changed")
            self._set_costmap(cm)
            self.get_logger().info(f"map received: {w}x{h} cells at {info.resolution:g} m")
        except Exception as e:  # noqa: BLE001
            self._bad("map", e)

    # ------------------------------------------------------------------ goals
    def goal_from_pose(self, ps: PoseStamped, label: str = "") -> Goal:
        frame = ps.header.frame_id
        q = ps.pose.orientation
        vals = (ps.pose.position.x, ps.pose.position.y, q.x, q.y, q.z, q.w)
        if not all(math.isfinite(v) for v in vals):
            raise SitebotError(f"goal pose has non-finite values {vals}")
        if abs(q.x) + abs(q.y) + abs(q.z) + abs(q.w) < 1e-9:
            raise SitebotError("goal pose has a zero quaternion")
        x, y, yaw = planar_pose(ps.pose)
        if frame == self.p["map_frame"]:
            return Goal(x, y, yaw, label or f"pose ({x:.2f}, {y:.2f})")
        if frame == self.p["odom_frame"] and self.map_odom is not None:
            gx, gy, gyaw = se2_compose(self.map_odom, (x, y, yaw))
            return Goal(gx, gy, gyaw, label or f"pose ({x:.2f}, {y:.2f}) in {frame}")
        raise SitebotError(f"goal pose in unknown frame '{frame}' (accepted: "
                           f"'{self.p['map_frame']}', '{self.p['odom_frame']}')")

    def goal_from_request(self, req) -> Goal:
        if req.place_id:
            place = self.world.registry.get(req.place_id)
            if not isinstance(place, Place):
                known = ", ".join(pl.id for pl in self.world.registry.places)
                raise SitebotError(f"unknown place '{req.place_id}' in site "
                                   f"'{self.world.registry.site}'; places: {known}")
            return Goal(place.x, place.y, place.yaw, place.id)
        return self.goal_from_pose(req.pose)

    def start_goal(self, goal: Goal):
        with self.lock:
            if self.nav is None:
                raise SitebotError("no map yet (map_source 'topic': waiting for 'map')")
            self.counts["goals"] += 1
            outcome = self.nav.start(goal, self.now())
            self._state, self._remaining = "planning", math.nan
            self.publish_plan(None)
            if outcome is not None:
                self._count(outcome)
                self.get_logger().warning(f"goal {goal.label}: {outcome.code}: {outcome.reason}")
            else:
                self.get_logger().info(f"new goal {goal.label} ({goal.x:.2f}, {goal.y:.2f}, "
                                       f"{goal.yaw:.2f})")
            return outcome

    def _count(self, outcome) -> None:
        self.counts[outcome.code] = self.counts.get(outcome.code, 0) + 1
        self.last_outcome = f"{outcome.code}: {outcome.reason}"

    def on_goal_pose(self, msg: PoseStamped) -> None:
        try:
            goal = self.goal_from_pose(msg)
        except SitebotError as e:
            self.counts["bad_input"] += 1
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

    def execute(self, goal_handle):
        req = goal_handle.request
        with self.lock:
            if self.current_handle is not goal_handle:
                goal_handle.abort()
                return self._result("aborted", "preempted by a newer goal before it started")
            try:
                goal = self.goal_from_request(req)
                outcome = self.start_goal(goal)
            except SitebotError as e:
                self.counts["bad_input"] += 1
                self.get_logger().warning(f"navigate_to_place rejected: {e}")
                goal_handle.abort()
                return self._result("aborted", f"invalid goal: {e}")
            if outcome is not None:
                goal_handle.abort()
                return self._result(outcome.code, outcome.reason)
            nav = self.nav
        fb = NavigateToPlace.Feedback()
        while self.context.ok():
            time.sleep(0.05)
            with self.lock:
                if self.current_handle is not goal_handle or self.nav is not nav:
                    goal_handle.abort()
                    return self._result("aborted", "preempted by a new goal")
                if goal_handle.is_cancel_requested:
                    out = nav.cancel("canceled by the client")
                    self._count(out)
                    self.send_zero()
                    goal_handle.canceled()
                    return self._result("canceled", out.reason)
                if nav.outcome is not None:
                    out = nav.outcome
                    if out.code == "succeeded":
                        goal_handle.succeed()
                    else:
                        goal_handle.abort()
                    return self._result(out.code, out.reason)
                fb.state = self._state
                fb.distance_remaining_m = float(self._remaining)
            goal_handle.publish_feedback(fb)
        goal_handle.abort()
        return self._result("aborted", "navigation is shutting down")

    # ------------------------------------------------------------------ control
    _remaining = math.nan
    _state = "planning"

    def send(self, v: float, w: float) -> None:
        m = TwistStamped()
        m.header.stamp = self.get_clock().now().to_msg()
        m.header.frame_id = self.p["base_frame"]
        m.twist.linear.x, m.twist.angular.z = float(v), float(w)
        self.cmd_pub.publish(m)

    def send_zero(self) -> None:
        self.send(0.0, 0.0)

    def on_control(self) -> None:
        t0 = time.perf_counter()
        try:
            self._control()
        except Exception as e:  # noqa: BLE001 - the node must survive; the base stops
            self.get_logger().error(f"control step failed: {type(e).__name__}: {e}",
                                    throttle_duration_sec=1.0)
            self.send_zero()
        self.cycle_ms.append((time.perf_counter() - t0) * 1e3)
        del self.cycle_ms[:-200]

    def _control(self) -> None:
        now = self.now()
        if now <= 0.0:               # simulation time not running yet (no /clock so far)
            return
        with self.lock:
            nav, cm = self.nav, self.costmap
            if nav is None or cm is None:
                return
            cm.update(now)
            if not nav.active:
                if now < self.zero_until:
                    self.send_zero()
                return
            pose = self.pose(now)
            safety = self.safety
            if safety is None or now - self.safety_t > self.p["safety_timeout_s"]:
                safety = SafetyInput(2, 0.0, ("safety/state stale",)) if \
                    self.p["safety_required"] else SafetyInput()
            people = self.people if now - self.people_t < 1.0 else []
            was = nav.outcome
            step = nav.step(now, pose, cm, safety, people)
            self._remaining = step.distance_remaining_m
            self._state = step.state + (f": {step.detail}" if step.detail else "")
            if step.new_plan is not None:
                self.publish_plan(step.new_plan)
            if step.outcome is not None and was is None:
                self._count(step.outcome)
                # one call site per severity: rclpy refuses a call site that changes it
                text = f"goal {nav.goal.label}: {step.outcome.code}: {step.outcome.reason}"
                if step.outcome.code == "succeeded":
                    self.get_logger().info(text)
                else:
                    self.get_logger().warning(text)
                self.zero_until = now + 0.5
                self.send_zero()
                return
            self.send(step.v, step.w)

    # ------------------------------------------------------------------ outputs
    def publish_plan(self, plan) -> None:
        msg = Path()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p["map_frame"]
        if plan is not None:
            self.last_plan_ms = plan.time_s * 1e3
            for (x, y), yaw in zip(plan.xy, plan.yaw):
                ps = PoseStamped()
                ps.header = msg.header
                ps.pose.position.x, ps.pose.position.y = float(x), float(y)
                qx, qy, qz, qw = yaw_to_quaternion(float(yaw))
                ps.pose.orientation.x, ps.pose.orientation.y = qx, qy
                ps.pose.orientation.z, ps.pose.orientation.w = qz, qw
                msg.poses.append(ps)
        self.plan_pub.publish(msg)

    def publish_costmap(self, force: bool = False) -> None:
        with self.lock:
            cm = self.costmap
            if cm is None or (not force and (cm.version == self._costmap_published
                                             or self.p["costmap_publish_period_s"] <= 0)):
                return
            self._costmap_published = cm.version
            values = cm.occupancy_values()
        msg = OccupancyGrid()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p["map_frame"]
        msg.info.map_load_time = msg.header.stamp
        msg.info.resolution = float(cm.res)
        msg.info.width, msg.info.height = int(cm.shape[1]), int(cm.shape[0])
        msg.info.origin.position.x, msg.info.origin.position.y = cm.origin_x, cm.origin_y
        msg.info.origin.orientation.w = 1.0
        msg.data = array.array("b", values.tobytes())
        self.costmap_pub.publish(msg)

    def on_diagnostics(self) -> None:
        now = self.now()
        d = DiagnosticStatus(name=f"{self.get_name()}: navigation", hardware_id="navigation")
        with self.lock:
            nav = self.nav
            state = (self._state if nav.active else nav.state) if nav else "waiting for map"
            pose_ok = self.pose(now) is not None
            d.level = DiagnosticStatus.OK
            if nav is None or (nav.active and not pose_ok):
                d.level = DiagnosticStatus.WARN
            if nav is not None and nav.state in ("blocked", "aborted") or state.split(":")[0] in (
                    "waiting", "backing_up", "rotating", "paused"):
                d.level = DiagnosticStatus.WARN
            d.message = state
            cyc = sorted(self.cycle_ms)
            vals = {"goal": nav.goal.label if nav and nav.goal else "",
                    "pose_fresh": pose_ok, "replans": nav.replans if nav else 0,
                    "recoveries": nav.recoveries if nav else 0,
                    "last_plan_ms": f"{self.last_plan_ms:.1f}",
                    "control_cycle_median_ms": f"{cyc[len(cyc) // 2]:.2f}" if cyc else "nan",
                    "control_cycle_max_ms": f"{cyc[-1]:.2f}" if cyc else "nan",
                    "last_outcome": self.last_outcome, **self.counts}
        d.values = [KeyValue(key=k, value=str(v)) for k, v in vals.items()]
        arr = DiagnosticArray(status=[d])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(NavigationNode, args, threads=3, on_exit=lambda n: n.send_zero())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
