"""spatial_perception: point cloud, obstacles, local map and tracked people (thin adapter).

The algorithms live in :mod:`sitebot.perception.spatial_pipeline` (no ROS); this node
decodes messages, checks them, calls the core and publishes (docs/perception_spatial.md).

Inputs: ``camera/depth/image_raw`` (32FC1 m or 16UC1 mm) + ``camera/depth/camera_info``,
``scan`` (LaserScan), ``odom`` (wheel odometry), ``odometry/filtered`` (map pose from the
localization filter, optional: without it the map pose is odom composed with the initial
map pose). Outputs: ``points`` (PointCloud2 x, y, z float32, downsampled, base frame),
``obstacles`` (ObstacleArray, base frame), ``local_map`` (OccupancyGrid, odom frame),
``people`` (TrackedPersonArray in the map frame, or the base frame without a map pose:
the two frames the safety supervisor accepts), ``perception/people_markers`` (MarkerArray),
``/diagnostics`` with per-pipeline latency. Bad input (empty or truncated images, unknown
encodings, camera_info not matching the image, scans whose length does not match their
angles, non-finite odometry) is skipped with a throttled warning naming the problem.
"""
from __future__ import annotations

import array
import math
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from sitebot.description.urdf import load_robot_description
from sitebot.errors import SitebotError
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.nodes.convert_images import points_to_cloud
from sitebot.perception.cloud import DepthError, check_depth_info, decode_depth
from sitebot.perception.monitor import InputMonitor
from sitebot.perception.people import ScanError, scan_beam_count
from sitebot.perception.spatial_pipeline import SpatialPerception, spatial_diagnostic
from sitebot.perception.spatial_setup import SCHEMA, SensorMounts, spatial_config_from_params
from sitebot.site.bundle import load_bundle, parse_pose_text
from sitebot.types import yaw_to_quaternion
from sitebot_interfaces.msg import Obstacle, ObstacleArray, TrackedPerson, TrackedPersonArray

__all__ = ["SCHEMA", "SpatialPerceptionNode", "main"]

#: latencies kept per pipeline (mean and max in /diagnostics)
LATENCY_WINDOW = 100
#: minimum time between two warnings about one kind of problem of one input [s]
WARN_PERIOD_S = 2.0


class SpatialPerceptionNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("spatial_perception", **kwargs)
        self.p = p = declare_schema(self, SCHEMA, on_change=self._on_params)
        desc = load_robot_description()
        try:
            self.cfg = cfg = spatial_config_from_params(p)
            self.mounts = SensorMounts(desc, p["base_frame"], p["camera_frame"],
                                       p["laser_frame"])
        except ValueError as e:
            raise SitebotError(f"node 'spatial_perception': {e}") from None
        static_grid, initial = None, parse_pose_text(p["initial_pose"])
        if p["site"]:
            site = load_bundle(p["site"])
            static_grid = site.static_map(cfg.static_map_resolution_m, cfg.static_margin_m)
            initial = site.initial_pose(p["initial_pose"])
        self.core = SpatialPerception(cfg, self.mounts.camera(), self.mounts.laser(),
                                      static_grid, initial)
        self.info: CameraInfo | None = None
        self.monitor = InputMonitor(LATENCY_WINDOW)
        self.skipped = self.monitor.skipped
        self.people_frame_used = ""

        self.points_pub = self.create_publisher(PointCloud2, "points", QOS_SENSOR)
        self.obst_pub = self.create_publisher(ObstacleArray, "obstacles", QOS_SENSOR)
        self.map_pub = self.create_publisher(OccupancyGrid, "local_map", QOS_LATCHED)
        self.people_pub = self.create_publisher(TrackedPersonArray, "people", QOS_SENSOR)
        self.marker_pub = self.create_publisher(MarkerArray, "perception/people_markers",
                                                QOS_STATE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(Image, "camera/depth/image_raw", self.on_depth, QOS_SENSOR)
        self.create_subscription(CameraInfo, "camera/depth/camera_info", self.on_info,
                                 QOS_SENSOR)
        self.create_subscription(LaserScan, "scan", self.on_scan, QOS_SENSOR)
        self.create_subscription(Odometry, "odom", self.on_odom, QOS_STATE)
        self.create_subscription(Odometry, "odometry/filtered", self.on_filtered, QOS_STATE)
        self.create_timer(1.0 / p["local_map_rate_hz"], self.publish_local_map)
        self.create_timer(1.0, self.publish_diagnostics)
        self.get_logger().info(
            f"spatial perception: static map of '{p['site'] or 'none'}', initial map pose "
            f"{initial}, people in '{p['people_frame']}', clustering '{p['cluster_method']}'")

    def _on_params(self, changed: dict) -> None:
        if hasattr(self, "core"):
            self.get_logger().warning(f"parameters {sorted(changed)} take effect at the next "
                                      "start")

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def warn(self, kind: str, message: str, period_s: float = WARN_PERIOD_S) -> None:
        """A warning throttled per input and problem (the message without its numbers);
        counts every skipped input per input."""
        if self.monitor.skip(kind, time.monotonic(), period_s, message):
            n = self.skipped[kind]
            self.get_logger().warning(f"{message}; input skipped ({n} so far: {kind})")

    def _guard(self, kind: str, fn, *args) -> None:
        try:
            fn(*args)
        except (DepthError, ScanError, ValueError) as e:
            self.warn(kind, f"{kind}: {e}")
        except Exception as e:  # noqa: BLE001 - a bad message must never take the node down
            self.warn(kind, f"{kind}: {type(e).__name__}: {e}")

    # ------------------------------------------------------------------ inputs
    def on_info(self, msg: CameraInfo) -> None:
        self.info = msg
        self.monitor.seen("camera_info", self.now())

    def on_odom(self, msg: Odometry) -> None:
        self._guard("odom", self._odom, msg)

    def _odom(self, msg: Odometry) -> None:
        self.core.on_odom(convert.stamp_of(msg), *convert.planar_pose(msg.pose.pose))
        self.monitor.seen("odom", self.now())

    def on_filtered(self, msg: Odometry) -> None:
        self._guard("odometry/filtered", self._filtered, msg)

    def _filtered(self, msg: Odometry) -> None:
        if msg.header.frame_id and msg.header.frame_id != self.p["map_frame"]:
            raise ValueError(f"odometry/filtered is in '{msg.header.frame_id}', "
                             f"'{self.p['map_frame']}' expected")
        self.core.on_map_pose(convert.stamp_of(msg), *convert.planar_pose(msg.pose.pose))
        self.monitor.seen("odometry/filtered", self.now())

    def on_depth(self, msg: Image) -> None:
        self._guard("depth", self._depth, msg)

    def _depth(self, msg: Image) -> None:
        t0 = time.perf_counter()
        info = self.info
        check_depth_info(None if info is None else (info.width, info.height),
                         (msg.width, msg.height))
        depth = decode_depth(msg.data, msg.width, msg.height, msg.step, msg.encoding,
                             bool(msg.is_bigendian))
        res = self.core.on_depth(depth, np.asarray(info.k, dtype=np.float64),
                                 convert.stamp_of(msg), self.mounts.camera(msg.header.frame_id))
        self.monitor.seen("depth", self.now())
        for k, v in res.timings_ms.items():
            self.monitor.add_latency(f"cloud_{k}", v)
        base = self.p["base_frame"]
        self.points_pub.publish(points_to_cloud(res.points, msg.header.stamp, base))
        arr = ObstacleArray()
        arr.header.stamp, arr.header.frame_id = msg.header.stamp, base
        cl = res.clusters
        for i, (c, s, n) in enumerate(zip(cl.centers, cl.sizes, cl.counts)):
            o = Obstacle(id=i, point_count=int(n), source="depth",
                         center=Point(x=float(c[0]), y=float(c[1]), z=float(c[2])))
            o.size.x, o.size.y, o.size.z = float(s[0]), float(s[1]), float(s[2])
            arr.obstacles.append(o)
        self.obst_pub.publish(arr)
        self.monitor.add_latency("depth_callback_ms", (time.perf_counter() - t0) * 1e3)

    def on_scan(self, msg: LaserScan) -> None:
        self._guard("scan", self._scan, msg)

    def _scan(self, msg: LaserScan) -> None:
        t0 = time.perf_counter()
        expected = scan_beam_count(msg.angle_min, msg.angle_max, msg.angle_increment)
        laser = self.mounts.laser(msg.header.frame_id)
        out = self.core.on_scan(np.asarray(msg.ranges, dtype=np.float64), msg.angle_min,
                                msg.angle_increment, msg.range_min, msg.range_max,
                                convert.stamp_of(msg), expected_beams=expected,
                                laser_pose=laser)
        self.monitor.seen("scan", self.now())
        for k, v in out.timings_ms.items():
            self.monitor.add_latency(f"scan_{k}", v)
        people, frame = self.core.people_for_output(out, convert.stamp_of(msg),
                                                    self.p["people_frame"])
        self.publish_people(people, self.p[f"{frame}_frame"], msg.header.stamp)
        self.monitor.add_latency("scan_callback_ms", (time.perf_counter() - t0) * 1e3)

    # ------------------------------------------------------------------ outputs
    def publish_people(self, people, frame_id: str, stamp) -> None:
        self.people_frame_used = frame_id
        heading_speed = self.cfg.person_heading_min_speed_mps
        arr = TrackedPersonArray()
        arr.header.stamp, arr.header.frame_id = stamp, frame_id
        for p in people:
            tp = TrackedPerson(id=int(p.id), confidence=float(p.confidence))
            tp.pose.pose.position.x, tp.pose.pose.position.y = p.x, p.y
            o = tp.pose.pose.orientation
            o.x, o.y, o.z, o.w = yaw_to_quaternion(p.heading(heading_speed))
            tp.twist.twist.linear.x, tp.twist.twist.linear.y = p.vx, p.vy
            tp.pose.covariance = array.array("d", p.pose_covariance().reshape(36).tobytes())
            tp.twist.covariance = array.array("d", p.twist_covariance().reshape(36).tobytes())
            arr.people.append(tp)
        self.people_pub.publish(arr)
        self.publish_markers(people, frame_id, stamp)

    def publish_markers(self, people, frame_id: str, stamp) -> None:
        arr = MarkerArray()
        arr.markers.append(Marker(action=Marker.DELETEALL))
        for p in people:
            for kind in ("body", "label", "velocity"):
                mk = Marker()
                mk.header.frame_id, mk.header.stamp = frame_id, stamp
                mk.ns, mk.id = f"people/{kind}", int(p.id)
                mk.action = Marker.ADD
                mk.pose.orientation.w = 1.0
                mk.color.a = 0.8
                mk.color.r, mk.color.g, mk.color.b = 0.1, 0.6, 1.0
                if kind == "body":
                    mk.type = Marker.CYLINDER
                    mk.pose.position.x, mk.pose.position.y, mk.pose.position.z = p.x, p.y, 0.9
                    mk.scale.x = mk.scale.y = 0.5
                    mk.scale.z = 1.8
                elif kind == "label":
                    mk.type = Marker.TEXT_VIEW_FACING
                    mk.pose.position.x, mk.pose.position.y, mk.pose.position.z = p.x, p.y, 2.0
                    mk.scale.z = 0.25
                    mk.color.r = mk.color.g = mk.color.b = 1.0
                    mk.text = f"person {p.id} ({math.hypot(p.vx, p.vy):.1f} m/s)"
                else:
                    mk.type = Marker.ARROW
                    mk.scale.x, mk.scale.y, mk.scale.z = 0.05, 0.1, 0.1
                    mk.points = [Point(x=p.x, y=p.y, z=1.0),
                                 Point(x=p.x + p.vx, y=p.y + p.vy, z=1.0)]
                arr.markers.append(mk)
        self.marker_pub.publish(arr)

    def publish_local_map(self) -> None:
        try:
            lm = self.core.local_map
            if not math.isfinite(lm.t_s):
                return
            t0 = time.perf_counter()
            self.map_pub.publish(convert.occupancy_grid_msg(
                lm.grid(), *lm.origin, lm.config.resolution_m, convert.to_time(lm.t_s),
                self.p["odom_frame"]))
            self.monitor.add_latency("local_map_publish_ms", (time.perf_counter() - t0) * 1e3)
        except Exception as e:  # noqa: BLE001
            self.warn("local_map", f"local_map: {type(e).__name__}: {e}")

    def publish_diagnostics(self) -> None:
        d = spatial_diagnostic(self.core, self.monitor, self.now(), self.p["stale_timeout_s"],
                               self.people_frame_used)
        arr = DiagnosticArray(status=[convert.diagnostic_status(d, self.get_name(),
                                                                "spatial_perception")])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(SpatialPerceptionNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
