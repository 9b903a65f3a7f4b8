"""localization: the EKF (sitebot.localization, core) behind ROS topics.

Inputs: ``odom`` (nav_msgs/Odometry, wheel odometry: body twist fused), ``imu/data``
(sensor_msgs/Imu: gyro z, optionally yaw), ``fiducials``
(sitebot_interfaces/FiducialDetectionArray: each tag's ``pose_base`` with the surveyed
marker from the world's site registry), ``pose`` (geometry_msgs/PoseWithCovarianceStamped,
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

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped, TransformStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from sitebot_interfaces.msg import FiducialDetectionArray, LocalizationStatus

from sitebot.types import quaternion_to_yaw, yaw_to_quaternion
from sitebot.localization.config import SCHEMA as CORE_SCHEMA
from sitebot.localization.config import ekf_config_from_params
from sitebot.localization.ekf import Ekf, Measurement, markers_from_registry
from sitebot.localization.fixes import fix_measurement, planar_fix, planar_fix_covariance
from sitebot.types import quaternion_matrix
from sitebot.types import se2_compose, se2_inverse
from sitebot.config.params import ParamSpec, ParamType
from sitebot.sim.world import load_world
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node

F, B, S, FA, SA = (ParamType.FLOAT, ParamType.BOOL, ParamType.STRING, ParamType.FLOAT_ARRAY,
                   ParamType.STRING_ARRAY)

NODE_SCHEMA = (
    ParamSpec("world", S, "substation", "world whose site registry gives the surveyed markers "
              "(and the spawn pose)"),
    ParamSpec("spawn", S, "robot1", "spawn pose of the world used as the initial pose"),
    ParamSpec("initial_pose", FA, [], "initial map pose [x, y, yaw] ([] = the spawn pose)",
              -1e6, 1e6),
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


def _cov(c, idx: list[int]) -> list[list[float]]:
    """Rows/columns ``idx`` of a row-major square covariance."""
    n = int(round(math.sqrt(len(c))))
    if n * n != len(c):
        raise ValueError(f"covariance of {len(c)} elements is not square")
    return [[float(c[i * n + j]) for j in idx] for i in idx]


class LocalizationNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("localization", **kwargs)
        self.p = p = declare_schema(self, SCHEMA, on_change=self._on_params)
        self.cfg = ekf_config_from_params({s.name: p[s.name] for s in CORE_SCHEMA})
        world = load_world(p["world"])
        self.registry = world.registry
        if p["initial_pose"]:
            if len(p["initial_pose"]) != 3:
                raise ValueError("parameter 'initial_pose': accepted: [] or [x, y, yaw]")
            self.initial = tuple(p["initial_pose"])
        elif p["spawn"] in world.spawn_poses:
            self.initial = tuple(world.spawn_poses[p["spawn"]])
        else:
            self.initial = (0.0, 0.0, 0.0)
            self.get_logger().warning(f"world '{world.id}' has no spawn pose '{p['spawn']}'; "
                                      "starting at (0, 0, 0)")
        self.ekf = Ekf(self.cfg, markers_from_registry(world.registry))
        self.ekf.initialize(None, self.initial)
        self.node_rejects: dict[str, Counter] = {k: Counter() for k in
                                                 ("odom", "imu", "fiducial", "pose", "initialpose")}
        self.odom_pose: tuple[float, float, float] | None = None
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
            f"localizing in '{world.id}' ({len(world.registry.markers)} markers) from "
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
        pp = msg.pose.pose
        pose = (pp.position.x, pp.position.y, quaternion_to_yaw(
            (pp.orientation.x, pp.orientation.y, pp.orientation.z, pp.orientation.w)))
        if all(math.isfinite(v) for v in pose) and math.isfinite(stamp):
            self.odom_pose, self.odom_stamp = pose, stamp
        tw = msg.twist.twist
        self._add("odom", Measurement("odom", stamp, [tw.linear.x, tw.angular.z],
                                      _cov(msg.twist.covariance, [0, 5])))

    def on_imu(self, msg: Imu) -> None:
        self._guard("imu/data", self._imu, msg)

    def _imu(self, msg: Imu) -> None:
        if msg.header.frame_id not in self.p["imu_frames"]:
            return self._reject("imu", "unknown_frame",
                                f"frame '{msg.header.frame_id}' is not one of "
                                f"{self.p['imu_frames']}")
        o = msg.orientation
        has_orientation = msg.orientation_covariance[0] != -1.0
        yaw = quaternion_to_yaw((o.x, o.y, o.z, o.w)) if has_orientation else math.nan
        oc = msg.orientation_covariance[8] if has_orientation else math.nan
        gc = msg.angular_velocity_covariance[8]
        self._add("imu", Measurement("imu", convert.from_time(msg.header.stamp),
                                     [yaw, msg.angular_velocity.z],
                                     [[oc, 0.0], [0.0, gc]]))

    def on_fiducials(self, msg: FiducialDetectionArray) -> None:
        self._guard("fiducials", self._fiducials, msg)

    def _fiducials(self, msg: FiducialDetectionArray) -> None:
        if msg.base_frame and msg.base_frame != self.p["base_frame"]:
            return self._reject("fiducial", "unknown_frame",
                                f"base frame '{msg.base_frame}' is not '{self.p['base_frame']}'")
        stamp = convert.from_time(msg.header.stamp)
        for d in msg.detections:
            pb_, pc = d.pose_base, d.pose.pose
            T = np.eye(4)
            T[:3, :3] = quaternion_matrix((pb_.orientation.x, pb_.orientation.y,
                                           pb_.orientation.z, pb_.orientation.w))
            T[:3, 3] = (pb_.position.x, pb_.position.y, pb_.position.z)
            fix = planar_fix(int(d.tag_id), T)
            cov = None
            if self.cfg.inputs["fiducial"].covariance == "message":
                R_cam_tag = quaternion_matrix((pc.orientation.x, pc.orientation.y,
                                               pc.orientation.z, pc.orientation.w))
                cov = planar_fix_covariance(np.asarray(d.pose.covariance).reshape(6, 6),
                                            T[:3, :3] @ R_cam_tag.T)
            self._add("fiducial", fix_measurement(fix, stamp, cov))

    def on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        self._guard("pose", self._pose, msg)

    def _pose(self, msg: PoseWithCovarianceStamped) -> None:
        if msg.header.frame_id != self.p["map_frame"]:
            return self._reject("pose", "unknown_frame",
                                f"frame '{msg.header.frame_id}' is not '{self.p['map_frame']}'")
        x, y, yaw = convert.planar_pose(msg.pose.pose)
        self._add("pose", Measurement("pose", convert.from_time(msg.header.stamp),
                                      [x, y, yaw],
                                      _cov(msg.pose.covariance, [0, 1, 5])))

    def on_set_pose(self, msg: PoseWithCovarianceStamped) -> None:
        self._guard("initialpose", self._set_pose, msg)

    def _set_pose(self, msg: PoseWithCovarianceStamped) -> None:
        if msg.header.frame_id != self.p["map_frame"]:
            return self._reject("initialpose", "unknown_frame",
                                f"frame '{msg.header.frame_id}' is not '{self.p['map_frame']}'")
        pp = msg.pose.pose
        yaw = quaternion_to_yaw((pp.orientation.x, pp.orientation.y, pp.orientation.z,
                                 pp.orientation.w))
        c = msg.pose.covariance
        std = [math.sqrt(c[i]) if math.isfinite(c[i]) and c[i] > 0 else s
               for i, s in zip((0, 7, 35), self.cfg.initial_std[:3])]
        stamp = convert.from_time(msg.header.stamp)
        t = stamp if stamp > 0 else (self.ekf.t if self.ekf.t is not None else None)
        try:
            self.ekf.initialize(t, (pp.position.x, pp.position.y, yaw), std)
        except ValueError as e:
            return self._reject("initialpose", "invalid", str(e))
        self.get_logger().info(f"pose set to ({pp.position.x:.3f}, {pp.position.y:.3f}, "
                               f"{yaw:.3f})")

    def srv_reset(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.ekf.initialize(self.ekf.t, self.initial)
        res.success, res.message = True, f"reset to {self.initial}"
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
        pc = np.diag([0.0, 0.0, 1e-9, 1e-9, 1e-9, 0.0])   # planar: z, roll, pitch known
        for a, i in enumerate((0, 1, 5)):
            for b, j in enumerate((0, 1, 5)):
                pc[i, j] = P[a, b]
        m.pose.covariance = pc.reshape(36).tolist()
        m.twist.twist.linear.x, m.twist.twist.angular.z = float(x[3]), float(x[4])
        tc = np.diag([0.0, 1e-9, 1e-9, 1e-9, 1e-9, 0.0])
        tc[0, 0], tc[0, 5], tc[5, 0], tc[5, 5] = P[3, 3], P[3, 4], P[4, 3], P[4, 4]
        m.twist.covariance = tc.reshape(36).tolist()
        self.odom_pub.publish(m)
        if p["publish_tf"] and self.odom_pose is not None:
            mo = se2_compose((float(x[0]), float(x[1]), float(x[2])), se2_inverse(self.odom_pose))
            tf = TransformStamped()
            tf.header.stamp = stamp
            tf.header.frame_id = p["map_frame"]
            tf.child_frame_id = p["odom_frame"]
            tf.transform.translation.x, tf.transform.translation.y = mo[0], mo[1]
            r = tf.transform.rotation
            r.x, r.y, r.z, r.w = yaw_to_quaternion(mo[2])
            self.tf_pub.publish(TFMessage(transforms=[tf]))
        self._publish_status(t)

    def _publish_status(self, t: float) -> None:
        # health at the output's stamp: when inputs stop, the stamps stop advancing and
        # the consumers' staleness watchdogs (the supervisor's) take over
        h = self.ekf.health(t)
        s = LocalizationStatus()
        s.header.stamp = convert.to_time(t)
        s.header.frame_id = self.p["map_frame"]
        s.state = _STATE[h.state]
        s.diverged = bool(h.diverged)
        s.position_std_m = float(h.position_std_m)
        s.yaw_std_rad = float(h.yaw_std_rad)
        s.seconds_since_fix = float(h.seconds_since_fix)
        s.nis_mean = float(h.nis_mean) if math.isfinite(h.nis_mean) else 0.0
        s.nis_upper_bound = float(h.nis_upper_bound) if math.isfinite(h.nis_upper_bound) else 0.0
        s.fixes_accepted = int(h.fixes_accepted)
        s.fixes_rejected = int(h.fixes_rejected)
        s.message = h.message
        self.status_pub.publish(s)

    def on_diagnostics(self) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        t = self.ekf.t if self.ekf.t is not None else self.now()
        h = self.ekf.health(t)
        d = DiagnosticStatus(name=f"{self.get_name()}: filter", hardware_id="localization")
        d.level = DiagnosticStatus.ERROR if h.diverged else (
            DiagnosticStatus.WARN if h.state == 1 else DiagnosticStatus.OK)
        d.message = h.message
        d.values = [KeyValue(key="position_std_m", value=f"{h.position_std_m:.4f}"),
                    KeyValue(key="yaw_std_rad", value=f"{h.yaw_std_rad:.4f}"),
                    KeyValue(key="gyro_bias_radps", value=f"{self.ekf.x[5]:.5f}"),
                    KeyValue(key="relocalizations", value=str(self.ekf.relocalizations))]
        arr.status.append(d)
        for name, st in self.ekf.stats.items():
            di = DiagnosticStatus(name=f"{self.get_name()}: input {name}",
                                  hardware_id="localization")
            mean, bound = st.nis_mean(), st.nis_bound(self.cfg.nis_probability)
            inconsistent = len(st.nis) >= self.cfg.nis_min_samples and mean > bound
            di.level = DiagnosticStatus.WARN if inconsistent else DiagnosticStatus.OK
            di.message = (f"NIS mean {mean:.2f} (bound {bound:.2f})" if st.nis else "no updates")
            di.values = [KeyValue(key="accepted", value=str(st.accepted)),
                         KeyValue(key="nis_mean", value=f"{mean:.3f}"),
                         KeyValue(key="nis_upper_bound", value=f"{bound:.3f}"),
                         KeyValue(key="nis_samples", value=str(len(st.nis)))]
            di.values += [KeyValue(key=f"rejected_{k}", value=str(v))
                          for k, v in sorted(st.rejected.items())]
            rejects = self.node_rejects.get(name, Counter())
            di.values += [KeyValue(key=f"rejected_{k}", value=str(v))
                          for k, v in sorted(rejects.items())]
            arr.status.append(di)
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(LocalizationNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
