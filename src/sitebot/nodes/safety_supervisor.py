"""safety_supervisor: stands between every motion command and the control loop.

Gates ``cmd_vel_in`` -> ``cmd_vel`` and ``arm/joint_trajectory_in`` -> ``arm/joint_trajectory``
through :class:`sitebot.safety.supervisor.Supervisor` (core, no ROS; docs/safety.md), and
publishes ``safety/state`` at a fixed rate: the control loop's heartbeat, speed scale and
stop category, so a dead supervisor means a stopped robot.

Inputs: ``scan`` (LaserScan), ``people`` (sitebot_interfaces/TrackedPersonArray), ``odom``
(wheel odometry), ``odometry/filtered`` (localization, nav_msgs/Odometry with covariance),
``battery_state`` (sensor_msgs/BatteryState), ``safety/estop`` (std_msgs/Bool, a held
button: true = pressed), ``teleop/deadman`` (std_msgs/Bool, hold-to-run),
``safety/heartbeat`` (std_msgs/String: the name of a node that is alive).
Services: ``safety/trigger_estop`` and ``safety/reset`` (std_srvs/Trigger; a refused reset
says why). Outputs: ``cmd_vel``, ``arm/joint_trajectory``, ``safety/state``,
``safety/markers`` (protective field), ``safety/zones`` (latched), ``/diagnostics``, and the
append-only audit log (JSON lines).

Until the localization filter exists, ``localization_source: dead_reckoning`` composes wheel
odometry with the world's spawn pose (clearly a stand-in: the filter replaces it).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, LaserScan
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from sitebot_interfaces.msg import LocalizationStatus, SafetyState, TrackedPersonArray

from sitebot.types import StopCategory
from sitebot.description.kinematics import planar_frame_pose
from sitebot.types import quaternion_to_yaw
from sitebot.config.params import ParamSpec, ParamType
from sitebot.site.registry import ZoneKind
from sitebot.safety.arm import ArmModel
from sitebot.safety.audit import AuditLog
from sitebot.safety.config import SCHEMA as CORE_SCHEMA
from sitebot.safety.config import safety_config_from_params
from sitebot.safety.supervisor import Supervisor
from sitebot.safety.types import BaseCommand, Obstacle, RobotState, SensorPose, TrajectoryPoint
from sitebot.types import SafetyLevel
from sitebot.description.urdf import load_robot_description
from sitebot.sim.world import load_world
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema, run_node

F, B, S = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING

NODE_SCHEMA = (
    ParamSpec("world", S, "substation", "world whose site registry gives the zones"),
    ParamSpec("spawn", S, "robot1", "spawn pose of the world used by dead reckoning"),
    ParamSpec("localization_source", S, "dead_reckoning",
              "'filter': odometry/filtered; 'dead_reckoning': odom composed with the spawn "
              "pose (until the localization filter runs)",
              choices=("filter", "dead_reckoning")),
    ParamSpec("publish_rate_hz", F, 50.0, "safety/state (heartbeat) rate", 5.0, 500.0, unit="Hz"),
    ParamSpec("audit_log", S, "", "audit log file (JSON lines, appended); '' = "
              "$ROS_HOME/sitebot/audit/safety_<start time>.jsonl"),
    ParamSpec("base_frame", S, "base_footprint", "the robot's base frame"),
    ParamSpec("static_match_m", F, 0.25, "a person-sized scan cluster within this of the "
              "site map's static structure is taken as structure, not a person", 0.0, 1.0,
              unit="m"),
    ParamSpec("map_frame", S, "map", "the map frame (zones, localization)"),
    ParamSpec("mode", S, "", "operating mode requested at run time ('' = initial_mode): "
              "`ros2 param set /safety_supervisor mode manual` for hold-to-run teleop",
              choices=("", "automatic", "manual")),
)
SCHEMA = tuple(CORE_SCHEMA) + NODE_SCHEMA

_LEVEL_MSG = {SafetyLevel.NORMAL: SafetyState.LEVEL_NORMAL,
              SafetyLevel.REDUCED_SPEED: SafetyState.LEVEL_REDUCED_SPEED,
              SafetyLevel.PROTECTIVE_STOP: SafetyState.LEVEL_PROTECTIVE_STOP,
              SafetyLevel.EMERGENCY_STOP: SafetyState.LEVEL_EMERGENCY_STOP}
_STOP_MSG = {StopCategory.NONE: SafetyState.STOP_NONE, StopCategory.CAT0: SafetyState.STOP_CATEGORY_0,
             StopCategory.CAT1: SafetyState.STOP_CATEGORY_1,
             StopCategory.CAT2: SafetyState.STOP_CATEGORY_2}


class SafetySupervisorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("safety_supervisor", **kwargs)
        self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        self.loc_status: tuple[LocalizationStatus, float] | None = None
        p = self.p
        cfg = safety_config_from_params({s.name: p[s.name] for s in CORE_SCHEMA})
        world = load_world(p["world"])
        desc = load_robot_description()
        self.spawn = tuple(world.spawn_poses[p["spawn"]]) if p["spawn"] in world.spawn_poses \
            else (0.0, 0.0, 0.0)
        path = p["audit_log"] or str(Path(os.environ.get("ROS_HOME", Path.home() / ".ros"))
                                     / "sitebot" / "audit"
                                     / f"safety_{time.strftime('%Y%m%d_%H%M%S')}.jsonl")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.audit = AuditLog(path)
        self.sup = Supervisor(cfg, world.registry, audit=self.audit,
                              arm=ArmModel.from_description(desc, cfg))
        self.world = world
        # posts, stands and walls of the site map are not people (docs/safety.md)
        self.sup.set_static_map(world.occupancy_grid(0.1, p["static_match_m"], keep_out=False))
        self.laser_pose: dict[str, SensorPose] = {}
        self.desc = desc
        self.deadman = False
        self.deadman_stamp = -math.inf
        self.seq = 0
        if p["mode"]:
            self.sup.set_mode(p["mode"], self.now())

        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel", QOS_COMMAND)
        self.traj_pub = self.create_publisher(JointTrajectory, "arm/joint_trajectory", QOS_COMMAND)
        self.state_pub = self.create_publisher(SafetyState, "safety/state", QOS_STATE)
        self.marker_pub = self.create_publisher(MarkerArray, "safety/markers", QOS_STATE)
        self.zone_pub = self.create_publisher(MarkerArray, "safety/zones", QOS_LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)

        self.create_subscription(TwistStamped, "cmd_vel_in", self.on_cmd_vel, QOS_COMMAND)
        self.create_subscription(JointTrajectory, "arm/joint_trajectory_in", self.on_trajectory,
                                 QOS_COMMAND)
        self.create_subscription(LaserScan, "scan", self.on_scan, QOS_SENSOR)
        self.create_subscription(TrackedPersonArray, "people", self.on_people, QOS_SENSOR)
        self.create_subscription(Odometry, "odom", self.on_odom, QOS_STATE)
        self.create_subscription(Odometry, "odometry/filtered", self.on_localization, QOS_STATE)
        self.create_subscription(LocalizationStatus, "localization/status",
                                 self.on_localization_status, QOS_STATE)
        self.create_subscription(BatteryState, "battery_state", self.on_battery, QOS_SENSOR)
        self.create_subscription(Bool, "safety/estop", self.on_estop, QOS_COMMAND)
        self.create_subscription(Bool, "teleop/deadman", self.on_deadman, QOS_COMMAND)
        self.create_subscription(String, "safety/heartbeat", self.on_heartbeat, QOS_STATE)
        self.create_service(Trigger, "safety/trigger_estop", self.srv_estop)
        self.create_service(Trigger, "safety/reset", self.srv_reset)
        self.create_timer(1.0 / p["publish_rate_hz"], self.on_timer)
        self.create_timer(1.0, self.on_diagnostics)
        self.publish_zones()
        self.get_logger().info(
            f"supervising: zones of '{world.id}' ({len(world.registry.zones)}), audit log {path}, "
            f"localization: {p['localization_source']}")

    def _on_params(self, changed: dict) -> None:
        if changed.get("mode") and hasattr(self, "sup"):
            ok, reason = self.sup.set_mode(changed["mode"], self.now())
            self.get_logger().info(f"mode change to {changed['mode']}: {reason}")
        other = sorted(set(changed) - {"mode"})
        if other:
            self.get_logger().warning(f"parameters {other} take effect at the next start; "
                                      "only 'mode' changes at run time")

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _guard(self, what: str, fn, *args) -> Any:
        """Bad input never takes the node down: log, audit, and keep running."""
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - the supervisor must survive any message
            self.get_logger().error(f"{what}: {type(e).__name__}: {e}; input dropped",
                                    throttle_duration_sec=1.0)
            self.audit.write("input_error", self.now(), input=what,
                             error=f"{type(e).__name__}: {e}")
            return None

    # ------------------------------------------------------------------ commands
    def on_cmd_vel(self, msg: TwistStamped) -> None:
        self._guard("cmd_vel_in", self._cmd_vel, msg)

    def _cmd_vel(self, msg: TwistStamped) -> None:
        now = self.now()
        stamp = convert.from_time(msg.header.stamp) or now
        deadman = self.deadman and now - self.deadman_stamp < self.p["deadman_timeout_s"]
        cmd = BaseCommand(float(msg.twist.linear.x), float(msg.twist.angular.z), stamp, deadman)
        out, _ = self.sup.on_command(cmd, now)
        if out is None:
            return
        m = TwistStamped()
        m.header.stamp = msg.header.stamp if msg.header.stamp.sec or msg.header.stamp.nanosec \
            else self.get_clock().now().to_msg()
        m.header.frame_id = msg.header.frame_id or self.p["base_frame"]
        m.twist.linear.x, m.twist.angular.z = float(out.v_mps), float(out.w_radps)
        self.cmd_pub.publish(m)

    def on_trajectory(self, msg: JointTrajectory) -> None:
        self._guard("arm/joint_trajectory_in", self._trajectory, msg)

    def _trajectory(self, msg: JointTrajectory) -> None:
        points = [TrajectoryPoint(tuple(pt.positions),
                                  pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9,
                                  tuple(pt.velocities)) for pt in msg.points]
        ok, reason = self.sup.on_trajectory(list(msg.joint_names), points, self.now())
        if ok:
            self.traj_pub.publish(msg)
        else:
            self.get_logger().warning(f"arm/joint_trajectory_in refused: {reason}",
                                      throttle_duration_sec=1.0)

    # ------------------------------------------------------------------ sources
    def on_scan(self, msg: LaserScan) -> None:
        self._guard("scan", self._scan, msg)

    def _scan(self, msg: LaserScan) -> None:
        frame = msg.header.frame_id
        if frame not in self.laser_pose:
            self.laser_pose[frame] = SensorPose(*planar_frame_pose(self.desc, self.p["base_frame"],
                                                                  frame))
        self.sup.on_scan(np.asarray(msg.ranges, dtype=np.float64), msg.angle_min,
                         msg.angle_increment, self.now(),
                         stamp_s=convert.from_time(msg.header.stamp),
                         range_min_m=msg.range_min, range_max_m=msg.range_max,
                         laser=self.laser_pose[frame])

    def on_people(self, msg: TrackedPersonArray) -> None:
        self._guard("people", self._people, msg)

    def _people(self, msg: TrackedPersonArray) -> None:
        people = []
        for person in msg.people:
            pos = person.pose.pose.position
            tw = person.twist.twist.linear
            cov = person.pose.covariance
            std = math.sqrt(max(cov[0], cov[7], 0.0)) if len(cov) == 36 else 0.0
            people.append(Obstacle(pos.x, pos.y, 0.25, tw.x, tw.y, is_person=True,
                                   measured_speed=True, source="people",
                                   position_std_m=std))
        frame = "map" if msg.header.frame_id == self.p["map_frame"] else "base"
        self.sup.on_people(people, self.now(), stamp_s=convert.from_time(msg.header.stamp),
                           frame=frame)

    def on_odom(self, msg: Odometry) -> None:
        self._guard("odom", self._odom, msg)

    def _odom(self, msg: Odometry) -> None:
        now = self.now()
        stamp = convert.from_time(msg.header.stamp)
        tw = msg.twist.twist
        self.sup.on_odometry(tw.linear.x, tw.angular.z, now, stamp_s=stamp)
        if self.p["localization_source"] == "dead_reckoning":
            pp = msg.pose.pose
            ox, oy = pp.position.x, pp.position.y
            oyaw = quaternion_to_yaw((pp.orientation.x, pp.orientation.y, pp.orientation.z,
                                      pp.orientation.w))
            sx, sy, syaw = self.spawn
            c, s = math.cos(syaw), math.sin(syaw)
            state = RobotState(sx + c * ox - s * oy, sy + s * ox + c * oy, syaw + oyaw,
                               tw.linear.x, tw.angular.z, stamp)
            self.sup.on_localization(state, now, cov_trace_m2=msg.pose.covariance[0]
                                     + msg.pose.covariance[7])

    def on_localization(self, msg: Odometry) -> None:
        if self.p["localization_source"] == "filter":
            self._guard("odometry/filtered", self._localization, msg)

    def _localization(self, msg: Odometry) -> None:
        pp, tw = msg.pose.pose, msg.twist.twist
        yaw = quaternion_to_yaw((pp.orientation.x, pp.orientation.y, pp.orientation.z,
                                 pp.orientation.w))
        state = RobotState(pp.position.x, pp.position.y, yaw, tw.linear.x, tw.angular.z,
                           convert.from_time(msg.header.stamp))
        self.sup.on_localization(state, self.now(),
                                 cov_trace_m2=msg.pose.covariance[0] + msg.pose.covariance[7],
                                 nis=self._filter_nis())

    def on_localization_status(self, msg: LocalizationStatus) -> None:
        self.loc_status = (msg, self.now())

    def _filter_nis(self) -> float | None:
        """The filter's recent NIS from localization/status (infinite when the filter
        itself says it diverged; None when no fresh status arrived)."""
        if self.loc_status is None:
            return None
        msg, at = self.loc_status
        if self.now() - at > self.p["localization_timeout_s"]:
            return None
        if msg.diverged or msg.state == LocalizationStatus.STATE_DIVERGED:
            return math.inf
        return float(msg.nis_mean) if math.isfinite(msg.nis_mean) else math.inf

    def on_battery(self, msg: BatteryState) -> None:
        self._guard("battery_state", lambda: self.sup.on_battery(
            float(msg.percentage), self.now(), stamp_s=convert.from_time(msg.header.stamp)))

    def on_estop(self, msg: Bool) -> None:
        self._guard("safety/estop", lambda: self.sup.set_estop_input(bool(msg.data), self.now(),
                                                                       source="estop_topic"))

    def on_deadman(self, msg: Bool) -> None:
        self.deadman, self.deadman_stamp = bool(msg.data), self.now()
        self._guard("teleop/deadman", lambda: self.sup.on_deadman(bool(msg.data), self.now()))

    def on_heartbeat(self, msg: String) -> None:
        self._guard("safety/heartbeat", lambda: self.sup.on_heartbeat(msg.data, self.now()))

    # ------------------------------------------------------------------ services
    def srv_estop(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.sup.trigger_estop("service", self.now())
        self.on_timer()                       # publish the stop at once, not at the next tick
        res.success, res.message = True, "emergency stop latched"
        return res

    def srv_reset(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        ok, reason = self.sup.request_reset(self.now())
        res.success, res.message = bool(ok), reason
        if not ok:
            self.get_logger().warning(f"reset refused: {reason}")
        return res

    # ------------------------------------------------------------------ outputs
    def on_timer(self) -> None:
        st = self._guard("update", self.sup.update, self.now())
        if st is None:
            return
        self.seq += 1
        m = SafetyState()
        m.header.stamp = self.get_clock().now().to_msg()
        m.header.frame_id = self.p["base_frame"]
        m.level = _LEVEL_MSG[st.level]
        m.mode = int(st.mode)
        m.stop_category = _STOP_MSG[StopCategory(st.stop_category)]
        m.estop_latched = bool(st.estop_latched)
        m.speed_scale = float(st.speed_scale)
        m.max_linear_speed_mps = float(st.max_linear_speed_mps)
        m.sequence = self.seq
        m.closest_separation_m = float(st.closest_separation_m)
        m.required_separation_m = float(st.required_separation_m)
        m.reasons = [c.code for c in st.causes]
        m.message = st.message
        self.state_pub.publish(m)
        self.publish_field(st)

    def publish_field(self, st) -> None:
        """The protective field: a circle of the required separation around the footprint."""
        r = self.sup.config.footprint_radius_m + (st.required_separation_m
                                                   if math.isfinite(st.required_separation_m)
                                                   else 0.0)
        mk = Marker()
        mk.header.frame_id = self.p["base_frame"]
        mk.header.stamp = self.get_clock().now().to_msg()
        mk.ns, mk.id, mk.type, mk.action = "protective_field", 0, Marker.LINE_STRIP, Marker.ADD
        mk.scale.x = 0.03
        red = st.level >= SafetyLevel.PROTECTIVE_STOP
        mk.color.r, mk.color.g, mk.color.b, mk.color.a = (1.0, 0.1, 0.1, 1.0) if red else \
            ((1.0, 0.7, 0.0, 1.0) if st.level == SafetyLevel.REDUCED_SPEED else (0.1, 0.8, 0.1, 1.0))
        for k in range(37):
            a = 2 * math.pi * k / 36
            mk.points.append(Point(x=r * math.cos(a), y=r * math.sin(a), z=0.05))
        self.marker_pub.publish(MarkerArray(markers=[mk]))

    def publish_zones(self) -> None:
        colors = {ZoneKind.KEEP_OUT: (0.9, 0.1, 0.1), ZoneKind.SLOW: (0.95, 0.8, 0.1),
                  ZoneKind.RESTRICTED: (0.2, 0.4, 0.95)}
        arr = MarkerArray()
        for i, z in enumerate(self.world.registry.zones):
            mk = Marker()
            mk.header.frame_id = self.p["map_frame"]
            mk.ns, mk.id, mk.type, mk.action = f"zone/{z.kind.value}", i, Marker.LINE_STRIP, Marker.ADD
            mk.scale.x = 0.05
            mk.color.r, mk.color.g, mk.color.b = colors[z.kind]
            mk.color.a = 1.0
            mk.text = z.name
            for x, y in list(z.polygon) + [z.polygon[0]]:
                mk.points.append(Point(x=float(x), y=float(y), z=0.02))
            arr.markers.append(mk)
        self.zone_pub.publish(arr)

    def on_diagnostics(self) -> None:
        st = self.sup.status
        d = DiagnosticStatus(name=f"{self.get_name()}: safety", hardware_id="safety_supervisor")
        if st is None:
            d.level, d.message = DiagnosticStatus.WARN, "no decision yet"
        else:
            d.level = {SafetyLevel.NORMAL: DiagnosticStatus.OK,
                       SafetyLevel.REDUCED_SPEED: DiagnosticStatus.OK,
                       SafetyLevel.PROTECTIVE_STOP: DiagnosticStatus.WARN,
                       SafetyLevel.EMERGENCY_STOP: DiagnosticStatus.ERROR}[st.level]
            d.message = f"{st.level.name}: {st.message}"
            ages = self.sup.source_ages(self.now())
            d.values = [KeyValue(key=f"age_{k}_s", value=f"{v:.3f}") for k, v in ages.items()]
            d.values += [KeyValue(key=k, value=str(v)) for k, v in self.sup.counts.items()]
        arr = DiagnosticArray(status=[d])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        if hasattr(self, "audit"):
            self.audit.write("supervisor_stopped", self.now())
            self.audit.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(SafetySupervisorNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
