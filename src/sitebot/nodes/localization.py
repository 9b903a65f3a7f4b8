"""localization: the EKF (sitebot.localization, core) behind ROS topics.

Inputs: ``odom`` (nav_msgs/Odometry, wheel odometry: body twist fused), ``imu/data``
(sensor_msgs/Imu: gyro z, optionally yaw), ``fiducials``
(sitebot_interfaces/FiducialDetectionArray: each tag's ``pose_base`` with the surveyed
marker from the site bundle's registry), ``pose`` (geometry_msgs/PoseWithCovarianceStamped,
an absolute map pose, fused and gated), ``initialpose`` and ``set_pose`` (the same type:
re-initialize there, as rviz's "2D Pose Estimate" does).
Outputs: ``odometry/filtered`` (nav_msgs/Odometry in the map frame, covariances filled),
TF map -> odom on ``tf``, ``localization/status`` (sitebot_interfaces/LocalizationStatus:
the divergence flag), ``/diagnostics`` (NIS statistics and rejection counts per input).
Service ``localization/reset`` (std_srvs/Trigger): back to the initial pose.
"""
from __future__ import annotations

import math
from collections import Counter

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from sitebot.config.params import ParamSpec, ParamType
from sitebot.description.kinematics import Transform
from sitebot.localization.config import SCHEMA as CORE_SCHEMA
from sitebot.localization.config import ekf_config_from_params
from sitebot.localization.ekf import Ekf, Measurement, markers_from_registry
from sitebot.localization.fixes import detection_measurement
from sitebot.localization.inputs import (imu_measurement, odom_measurement, pose_measurement,
                                         reset_pose_std)
from sitebot.localization.outputs import (filter_diagnostics, map_to_odom, pose_covariance,
                                          status_fields, twist_covariance)
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.site.bundle import load_bundle
from sitebot.site.params import SITE_PARAMS
from sitebot.types import Pose2D, yaw_to_quaternion
from sitebot_interfaces.msg import FiducialDetectionArray, LocalizationStatus

F, B, S, FA, SA = (ParamType.FLOAT, ParamType.BOOL, ParamType.STRING, ParamType.FLOAT_ARRAY,
                   ParamType.STRING_ARRAY)

NODE_SCHEMA = (
    *SITE_PARAMS,
    ParamSpec("map_frame", S, "map", "the map frame (output pose frame, TF parent)"),
    ParamSpec("odom_frame", S, "odom", "the odometry frame (TF child of map)"),
    ParamSpec("base_frame", S, "base_footprint", "the robot's base frame"),
    ParamSpec("imu_frames", SA, ["imu_link", "base_footprint", "base_link"],
              "IMU frames accepted (mounted level and aligned with the base)"),
    ParamSpec("publish_rate_hz", F, 30.0, "odometry/filtered, TF and status rate", 1.0, 500.0,
              unit="Hz"),
    ParamSpec("publish_tf", B, True, "publish map -> odom on tf"),
    ParamSpec("diagnostics_period_s", F, 1.0, "/diagnostics period", 0.1, 60.0, unit="s"),
)
SCHEMA = tuple(CORE_SCHEMA) + NODE_SCHEMA

_STATE = {0: LocalizationStatus.STATE_OK, 1: LocalizationStatus.STATE_DEAD_RECKONING,
          2: LocalizationStatus.STATE_DIVERGED}


class LocalizationNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("localization", **kwargs)
        self.p = p = declare_schema(self, SCHEMA, on_change=self._on_params)
        self.cfg = ekf_config_from_params({s.name: p[s.name] for s in CORE_SCHEMA})
        site = load_bundle(p["site"])
        self.registry = site.registry
        self.initial = site.initial_pose(p["initial_pose"])
        self.ekf = Ekf(self.cfg, markers_from_registry(site.registry))
        self.ekf.initialize(None, self.initial)
        self.node_rejects: dict[str, Counter] = {k: Counter() for k in
                                                 ("odom", "imu", "fiducial", "pose", "initialpose")}
        self.odom_pose: Pose2D | None = None
        self.odom_stamp: float | None = None

        self.odom_pub = self.create_publisher(Odometry, "odometry/filtered", QOS_STATE)
        self.tf_pub = self.create_publisher(TFMessage, "tf", QOS_STATE)
        self.status_pub = self.create_publisher(LocalizationStatus, "localization/status",
                                                QOS_STATE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(Odometry, "odom", self.on_odom, QOS_STATE)
        self.create_subscription(Imu, "imu/data", self.on_imu, QOS_SENSOR)
        self.create_subscription(FiducialDetectionArray, "fiducials", self.on_fiducials,
                                 QOS_SENSOR)
        self.create_subscription(PoseWithCovarianceStamped, "pose", self.on_pose, QOS_COMMAND)
        self.create_subscription(PoseWithCovarianceStamped, "initialpose", self.on_set_pose,
                                 QOS_COMMAND)
        self.create_subscription(PoseWithCovarianceStamped, "set_pose", self.on_set_pose,
                                 QOS_COMMAND)
        self.create_service(Trigger, "localization/reset", self.srv_reset)
        self.create_timer(1.0 / p["publish_rate_hz"], self.on_timer)
        self.create_timer(p["diagnostics_period_s"], self.on_diagnostics)
        self.get_logger().info(
            f"localizing in '{site.site}' ({len(site.registry.markers)} markers) from "
            f"{tuple(round(v, 3) for v in self.initial)}")

    def _on_params(self, changed: dict) -> None:
        self.get_logger().warning(f"parameters {sorted(changed)} take effect at the next start")

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ input helpers
    def _guard(self, what: str, fn, msg) -> None:
        """Bad input never takes the node down: count it, warn (throttled), go on."""
        try:
            fn(msg)
        except Exception as e:  # noqa: BLE001 - any malformed message
            self.node_rejects.setdefault(what, Counter())["malformed"] += 1
            self.get_logger().warning(f"{what}: {type(e).__name__}: {e}; message dropped",
                                      throttle_duration_sec=2.0)

    def _reject(self, what: str, reason: str, detail: str) -> None:
        self.node_rejects.setdefault(what, Counter())[reason] += 1
        self.get_logger().warning(f"{what}: {detail}; rejected ({reason})",
                                  throttle_duration_sec=2.0)

    def _add(self, what: str, m: Measurement) -> None:
        res = self.ekf.add(m, now=self.now())
        if not res.accepted and res.reason not in ("gated",):
            self.get_logger().warning(f"{what}: measurement at {m.stamp:.3f} rejected: "
                                      f"{res.reason}", throttle_duration_sec=2.0)
        if res.relocalized:
            self.get_logger().warning("re-localized from agreeing fiducial fixes (jump)")

    # ------------------------------------------------------------------ inputs
    def on_odom(self, msg: Odometry) -> None:
        self._guard("odom", self._odom, msg)

    def _odom(self, msg: Odometry) -> None:
        if msg.child_frame_id and msg.child_frame_id != self.p["base_frame"]:
            return self._reject("odom", "unknown_frame",
                                f"child frame '{msg.child_frame_id}' is not "
                                f"'{self.p['base_frame']}'")
        stamp = convert.from_time(msg.header.stamp)
        pose = convert.planar_pose(msg.pose.pose)
        if pose.is_finite() and math.isfinite(stamp):
            self.odom_pose, self.odom_stamp = pose, stamp
        tw = msg.twist.twist
        self._add("odom", odom_measurement(stamp, tw.linear.x, tw.angular.z,
                                           msg.twist.covariance))

    def on_imu(self, msg: Imu) -> None:
        self._guard("imu/data", self._imu, msg)

    def _imu(self, msg: Imu) -> None:
        if msg.header.frame_id not in self.p["imu_frames"]:
            return self._reject("imu", "unknown_frame",
                                f"frame '{msg.header.frame_id}' is not one of "
                                f"{self.p['imu_frames']}")
        o = msg.orientation
        self._add("imu", imu_measurement(convert.from_time(msg.header.stamp),
                                         (o.x, o.y, o.z, o.w), msg.orientation_covariance,
                                         msg.angular_velocity.z,
                                         msg.angular_velocity_covariance))

    def on_fiducials(self, msg: FiducialDetectionArray) -> None:
        self._guard("fiducials", self._fiducials, msg)

    def _fiducials(self, msg: FiducialDetectionArray) -> None:
        if msg.base_frame and msg.base_frame != self.p["base_frame"]:
            return self._reject("fiducial", "unknown_frame",
                                f"base frame '{msg.base_frame}' is not '{self.p['base_frame']}'")
        stamp = convert.from_time(msg.header.stamp)
        message_cov = self.cfg.inputs["fiducial"].covariance == "message"
        for d in msg.detections:
            pb, qb, qc = d.pose_base.position, d.pose_base.orientation, d.pose.pose.orientation
            self._add("fiducial", detection_measurement(
                int(d.tag_id), stamp, (pb.x, pb.y, pb.z), (qb.x, qb.y, qb.z, qb.w),
                d.pose.covariance if message_cov else None, (qc.x, qc.y, qc.z, qc.w)))

    def on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        self._guard("pose", self._pose, msg)

    def _pose(self, msg: PoseWithCovarianceStamped) -> None:
        if msg.header.frame_id != self.p["map_frame"]:
            return self._reject("pose", "unknown_frame",
                                f"frame '{msg.header.frame_id}' is not '{self.p['map_frame']}'")
        self._add("pose", pose_measurement(convert.from_time(msg.header.stamp),
                                           convert.planar_pose(msg.pose.pose),
                                           msg.pose.covariance))

    def on_set_pose(self, msg: PoseWithCovarianceStamped) -> None:
        self._guard("initialpose", self._set_pose, msg)

    def _set_pose(self, msg: PoseWithCovarianceStamped) -> None:
        if msg.header.frame_id != self.p["map_frame"]:
            return self._reject("initialpose", "unknown_frame",
                                f"frame '{msg.header.frame_id}' is not '{self.p['map_frame']}'")
        pose = convert.planar_pose(msg.pose.pose)
        std = reset_pose_std(msg.pose.covariance, self.cfg.initial_std)
        stamp = convert.from_time(msg.header.stamp)
        t = stamp if stamp > 0 else self.ekf.t
        try:
            self.ekf.initialize(t, pose, std)
        except ValueError as e:
            return self._reject("initialpose", "invalid", str(e))
        self.get_logger().info(f"pose set to ({pose.x:.3f}, {pose.y:.3f}, {pose.yaw:.3f})")

    def srv_reset(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.ekf.initialize(self.ekf.t, self.initial)
        res.success, res.message = True, f"reset to {tuple(self.initial)}"
        return res

    # ------------------------------------------------------------------ outputs
    def on_timer(self) -> None:
        if self.ekf.t is None:
            return
        try:
            self._publish()
        except Exception as e:  # noqa: BLE001 - keep publishing on the next tick
            self.get_logger().error(f"publishing: {type(e).__name__}: {e}",
                                    throttle_duration_sec=2.0)

    def _publish(self) -> None:
        p = self.p
        t = self.odom_stamp if self.odom_stamp is not None else self.ekf.t
        x, P = self.ekf.estimate_at(t)
        stamp = convert.to_time(t)
        m = Odometry()
        m.header.stamp = stamp
        m.header.frame_id = p["map_frame"]
        m.child_frame_id = p["base_frame"]
        pose = m.pose.pose
        pose.position.x, pose.position.y = float(x[0]), float(x[1])
        q = yaw_to_quaternion(float(x[2]))
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = q
        m.pose.covariance = pose_covariance(P)
        m.twist.twist.linear.x, m.twist.twist.angular.z = float(x[3]), float(x[4])
        m.twist.covariance = twist_covariance(P)
        self.odom_pub.publish(m)
        if p["publish_tf"] and self.odom_pose is not None:
            mo = map_to_odom((float(x[0]), float(x[1]), float(x[2])), self.odom_pose)
            tf = Transform(p["map_frame"], p["odom_frame"], (mo.x, mo.y, 0.0),
                           yaw_to_quaternion(mo.yaw))
            self.tf_pub.publish(TFMessage(transforms=[convert.transform_msg(tf, stamp)]))
        self._publish_status(t)

    def _publish_status(self, t: float) -> None:
        # health at the output's stamp: when inputs stop, the stamps stop advancing and
        # the consumers' staleness watchdogs (the supervisor's) take over
        h = self.ekf.health(t)
        s = LocalizationStatus(state=_STATE[h.state], **status_fields(h))
        s.header.stamp = convert.to_time(t)
        s.header.frame_id = self.p["map_frame"]
        self.status_pub.publish(s)

    def on_diagnostics(self) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        t = self.ekf.t if self.ekf.t is not None else self.now()
        arr.status = [convert.diagnostic_status(d, self.get_name(), "localization") for d in
                      filter_diagnostics(self.ekf, self.ekf.health(t), self.node_rejects)]
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(LocalizationNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
