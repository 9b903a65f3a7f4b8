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
Services: ``safety/trigger_estop`` (std_srvs/Trigger, open to all) and ``safety/request``
(sitebot_interfaces/SafetyRequest: reset or mode change with a signed assertion, used once;
:mod:`sitebot.nodes.safety_authority`); ``safety/reset`` and ``set_parameters`` of ``mode``
are refused with a reason naming it.  A held ``safety/estop`` is released only by the
publisher that pressed it. Outputs: ``cmd_vel``, ``arm/joint_trajectory``, ``safety/state``,
``safety/markers`` (protective field), ``safety/zones`` (latched), ``/diagnostics``, and the
append-only audit log (JSON lines).

The map pose: ``localization_source: filter`` takes the localization filter's
``odometry/filtered`` (with its NIS from ``localization/status``); ``dead_reckoning`` (the
default, for runs without the filter) composes wheel odometry with the initial pose. The zones,
the initial pose and the static map (mapped posts and walls are not people) come from the site
bundle ``site`` (:func:`sitebot.site.bundle.load_bundle`). Message conversions:
:mod:`sitebot.nodes.safety_io`.
"""
from __future__ import annotations

import functools
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, LaserScan
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from sitebot.description.kinematics import planar_frame_pose
from sitebot.description.urdf import load_robot_description
from sitebot.nodes import convert, safety_io
from sitebot.nodes.common import (QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema,
                                  run_node)
from sitebot.nodes.safety_authority import KEY_PARAM, SupervisorAuthority
from sitebot.safety import SCHEMA as CORE_SCHEMA
from sitebot.safety import (ArmModel, AuditLog, BaseCommand, RobotState, SensorPose, Supervisor,
                            display, safety_config_from_params)
from sitebot.safety.audit import default_audit_path
from sitebot.safety.config import NODE_SCHEMA
from sitebot.safety.inputs import FilterHealth, dead_reckoning_state, position_cov_trace
from sitebot.safety.release import StopRelease
from sitebot.site.bundle import load_bundle
from sitebot_interfaces.msg import (ControllerStatus, LocalizationStatus, SafetyState,
                                    TrackedPersonArray)

SCHEMA = tuple(CORE_SCHEMA) + NODE_SCHEMA + (KEY_PARAM,)


def _guarded(what: str) -> Callable:
    """A callback whose failure is logged and audited as bad ``what`` input, never raised."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def callback(self: "SafetySupervisorNode", *args: Any) -> Any:
            return self._guard(what, fn, self, *args)
        return callback
    return wrap


class SafetySupervisorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("safety_supervisor", **kwargs)
        p = self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        cfg = safety_config_from_params({s.name: p[s.name] for s in CORE_SCHEMA})
        self.site = site = load_bundle(p["site"])
        self.desc = load_robot_description()
        self.spawn = site.initial_pose(p["initial_pose"])
        path = p["audit_log"] or str(default_audit_path(
            os.environ.get("ROS_HOME", Path.home() / ".ros"), time.time()))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.audit = AuditLog(path, max_file_bytes=p["audit_max_file_bytes"],
                              max_files=p["audit_max_files"],
                              kept_max_bytes=p["audit_kept_max_bytes"])
        self.sup = Supervisor(cfg, site.registry, audit=self.audit,
                              arm=ArmModel.from_description(self.desc, cfg))
        # posts, stands and walls of the site map are not people (docs/safety.md)
        self.sup.set_static_map(site.static_map(p["static_map_resolution_m"], p["static_match_m"]))
        self.filter_health = FilterHealth()
        self.laser_pose: dict[str, SensorPose] = {}
        self.deadman, self.deadman_stamp, self.seq = False, -math.inf, 0
        self.release = StopRelease()         # the control loop's stop latch (docs/control.md)
        if p["mode"]:
            self.sup.set_mode(p["mode"], self.now())
        self.authority = SupervisorAuthority(self)     # safety/request, mode, estop per publisher

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
        self.create_subscription(ControllerStatus, "control/state", self.on_control_state,
                                 QOS_STATE)
        self.create_service(Trigger, "safety/trigger_estop", self.srv_estop)
        self.create_service(Trigger, "safety/reset", self.srv_reset)
        self.create_timer(1.0 / p["publish_rate_hz"], self.on_timer)
        self.create_timer(1.0, self.on_diagnostics)
        self.zone_pub.publish(safety_io.zone_markers(site.registry.zones, p["map_frame"]))
        self.get_logger().info(
            f"supervising: zones of '{site.site}' ({len(site.registry.zones)}), audit log {path}, "
            f"localization: {p['localization_source']}")

    def _on_params(self, changed: dict) -> None:
        self.get_logger().warning(f"parameters {sorted(changed)} take effect at the next start "
                                  "(the mode changes through safety/request)")

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
    @_guarded("cmd_vel_in")
    def on_cmd_vel(self, msg: TwistStamped) -> None:
        now = self.now()
        stamp = convert.from_time(msg.header.stamp) or now
        deadman = self.deadman and now - self.deadman_stamp < self.p["deadman_timeout_s"]
        cmd = BaseCommand(float(msg.twist.linear.x), float(msg.twist.angular.z), stamp, deadman)
        out, _ = self.sup.on_command(cmd, now)
        if out is None:
            return
        self.cmd_pub.publish(convert.twist_msg(
            out.v_mps, out.w_radps, msg.header.stamp if msg.header.stamp.sec or
            msg.header.stamp.nanosec else self.get_clock().now().to_msg(),
            msg.header.frame_id or self.p["base_frame"]))

    @_guarded("arm/joint_trajectory_in")
    def on_trajectory(self, msg: JointTrajectory) -> None:
        ok, reason = self.sup.on_trajectory(list(msg.joint_names),
                                            safety_io.trajectory_points(msg), self.now())
        if ok:
            self.traj_pub.publish(msg)
        else:
            self.get_logger().warning(f"arm/joint_trajectory_in refused: {reason}",
                                      throttle_duration_sec=1.0)

    # ------------------------------------------------------------------ sources
    @_guarded("scan")
    def on_scan(self, msg: LaserScan) -> None:
        frame = msg.header.frame_id
        if frame not in self.laser_pose:
            self.laser_pose[frame] = SensorPose(*planar_frame_pose(self.desc, self.p["base_frame"],
                                                                  frame))
        self.sup.on_scan(np.asarray(msg.ranges, dtype=np.float64), msg.angle_min,
                         msg.angle_increment, self.now(),
                         stamp_s=convert.from_time(msg.header.stamp),
                         range_min_m=msg.range_min, range_max_m=msg.range_max,
                         laser=self.laser_pose[frame])

    @_guarded("people")
    def on_people(self, msg: TrackedPersonArray) -> None:
        self.sup.on_people(safety_io.people_obstacles(msg, self.sup.config), self.now(),
                           stamp_s=convert.from_time(msg.header.stamp),
                           frame="map" if msg.header.frame_id == self.p["map_frame"] else "base")

    @_guarded("odom")
    def on_odom(self, msg: Odometry) -> None:
        now, stamp, tw = self.now(), convert.from_time(msg.header.stamp), msg.twist.twist
        self.sup.on_odometry(tw.linear.x, tw.angular.z, now, stamp_s=stamp)
        if self.p["localization_source"] == "dead_reckoning":
            state = dead_reckoning_state(self.spawn, convert.planar_pose(msg.pose.pose),
                                         tw.linear.x, tw.angular.z, stamp)
            self.sup.on_localization(state, now,
                                     cov_trace_m2=position_cov_trace(msg.pose.covariance))

    @_guarded("odometry/filtered")
    def on_localization(self, msg: Odometry) -> None:
        if self.p["localization_source"] != "filter":
            return
        now, tw = self.now(), msg.twist.twist
        state = RobotState(*convert.planar_pose(msg.pose.pose), tw.linear.x, tw.angular.z,
                           convert.from_time(msg.header.stamp))
        self.sup.on_localization(state, now, cov_trace_m2=position_cov_trace(msg.pose.covariance),
                                 nis=self.filter_health.nis(now, self.p["localization_timeout_s"]))

    def on_localization_status(self, msg: LocalizationStatus) -> None:
        self.filter_health.update(msg.diverged or msg.state == LocalizationStatus.STATE_DIVERGED,
                                  msg.nis_mean, self.now())

    @_guarded("battery_state")
    def on_battery(self, msg: BatteryState) -> None:
        self.sup.on_battery(float(msg.percentage), self.now(),
                            stamp_s=convert.from_time(msg.header.stamp))

    def on_estop(self, msg: Bool, info: dict) -> None:     # two parameters: rclpy passes the info
        self._guard("safety/estop", self.authority.on_estop, bool(msg.data), info, self.now())

    @_guarded("teleop/deadman")
    def on_deadman(self, msg: Bool) -> None:
        self.deadman, self.deadman_stamp = bool(msg.data), self.now()
        self.sup.on_deadman(self.deadman, self.now())

    @_guarded("safety/heartbeat")
    def on_heartbeat(self, msg: String) -> None:
        self.sup.on_heartbeat(msg.data, self.now())

    @_guarded("control/state")
    def on_control_state(self, msg: ControllerStatus) -> None:
        fault = self.release.loop_state(msg.latch, self.now())
        if fault is not None:                 # a person must reset before motion resumes
            self.audit.write("control_loop_fault", self.now(), fault=fault, latch=msg.latch)
            self.sup.trigger_estop(f"control_loop: {fault}", self.now())
            self.get_logger().error(f"control loop reports {fault}: emergency stop latched")

    # ------------------------------------------------------------------ services
    def srv_estop(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.sup.trigger_estop("service", self.now())
        self.on_timer()                       # publish the stop at once, not at the next tick
        res.success, res.message = True, "emergency stop latched"
        return res

    def srv_reset(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        res.success, res.message = False, self.authority.old_reset()
        return res

    # ------------------------------------------------------------------ outputs
    def on_timer(self) -> None:
        st = self._guard("update", self.sup.update, self.now())
        if st is None:
            return
        self.seq += 1
        stamp = self.get_clock().now().to_msg()
        releases = self.release.update(st.stop_category, self.now())
        self.state_pub.publish(safety_io.safety_state_msg(
            st, self.seq, stamp, self.p["base_frame"], self.release.session, releases))
        self.marker_pub.publish(safety_io.field_markers(
            st, self.sup.config.footprint_radius_m, self.p["base_frame"], stamp))

    def on_diagnostics(self) -> None:
        d = self.authority.diagnostic(display.diagnostic(
            self.sup.status, self.sup.source_ages(self.now()), self.sup.counts))
        arr = DiagnosticArray(status=[convert.diagnostic_status(d, self.get_name(),
                                                                "safety_supervisor")])
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
