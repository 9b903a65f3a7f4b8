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
import re
import time
from collections import defaultdict, deque
from typing import Any

import numpy as np
import rclpy  # noqa: F401  (the ROS side: rclpy messages and the node)
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2, PointField
from visualization_msgs.msg import Marker, MarkerArray

from sitebot_interfaces.msg import Obstacle, ObstacleArray, TrackedPerson, TrackedPersonArray

from sitebot.errors import SitebotError
from sitebot.types import quaternion_to_yaw, yaw_to_quaternion
from sitebot.perception.cloud import DepthError, decode_depth, mount_transform
from sitebot.perception.people import ScanError
from sitebot.types import se2_apply, se2_compose, se2_inverse
from sitebot.perception.spatial_pipeline import SpatialPerception
from sitebot.perception.spatial_setup import SCHEMA, spatial_config_from_params
from sitebot.description.urdf import load_robot_description
from sitebot.sim.world import load_world
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema, run_node

__all__ = ["SCHEMA", "SpatialPerceptionNode", "points_to_cloud", "cloud_to_points", "main"]

_FIELDS = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
           for i, n in enumerate("xyz")]


def points_to_cloud(points: np.ndarray, stamp, frame_id: str) -> PointCloud2:
    """(N, 3) points -> PointCloud2 with x, y, z float32 (unordered, dense)."""
    p = np.ascontiguousarray(np.asarray(points, dtype=np.float32).reshape(-1, 3))
    m = PointCloud2()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.height, m.width = 1, len(p)
    m.fields = list(_FIELDS)
    m.is_bigendian = False
    m.point_step, m.row_step = 12, 12 * len(p)
    m.is_dense = True
    m.data = p.tobytes()
    return m


def cloud_to_points(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 with float32 x, y, z fields (any point_step, either byte order) ->
    (N, 3) float32; ValueError naming what is missing or short."""
    off = {f.name: f for f in msg.fields}
    for n in "xyz":
        if n not in off or off[n].datatype != PointField.FLOAT32:
            raise ValueError(f"PointCloud2 has no float32 field '{n}'")
    n = msg.width * msg.height
    buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if buf.size < n * msg.point_step:
        raise ValueError(f"PointCloud2 data has {buf.size} B for {n} points of "
                         f"{msg.point_step} B")
    dt = np.dtype({"names": list("xyz"), "formats": [(">" if msg.is_bigendian else "<") + "f4"] * 3,
                   "offsets": [off[c].offset for c in "xyz"], "itemsize": msg.point_step})
    rec = np.frombuffer(buf[: n * msg.point_step].tobytes(), dtype=dt, count=n)
    return np.column_stack([rec["x"], rec["y"], rec["z"]]).astype(np.float32)


class SpatialPerceptionNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("spatial_perception", **kwargs)
        self.p = p = declare_schema(self, SCHEMA, on_change=self._on_params)
        try:
            cfg = spatial_config_from_params(p)
        except ValueError as e:
            raise SitebotError(f"node 'spatial_perception': {e}") from None
        self.desc = load_robot_description()
        try:
            T_cam = mount_transform(self.desc, p["base_frame"], p["camera_frame"])
            T_l = mount_transform(self.desc, p["base_frame"], p["laser_frame"])
        except ValueError as e:
            raise SitebotError(f"node 'spatial_perception': {e}") from None
        laser = (float(T_l[0, 3]), float(T_l[1, 3]), math.atan2(T_l[1, 0], T_l[0, 0]))
        static_grid, initial = None, None
        if p["world"]:
            world = load_world(p["world"])
            static_grid = world.occupancy_grid(0.1, p["static_margin_m"], keep_out=False)
            if p["spawn"] in world.spawn_poses:
                initial = tuple(world.spawn_poses[p["spawn"]])
        if p["initial_map_pose"]:
            if len(p["initial_map_pose"]) != 3:
                raise SitebotError("parameter 'initial_map_pose': accepted: [x, y, yaw] or []")
            initial = tuple(p["initial_map_pose"])
        self.core = SpatialPerception(cfg, T_cam, laser, static_grid, initial)
        self._mounts: dict[str, Any] = {p["camera_frame"]: T_cam, p["laser_frame"]: laser}
        self.info: CameraInfo | None = None
        self.filtered_seen = False
        self.last_in: dict[str, float] = {}
        self.skipped: dict[str, int] = defaultdict(int)
        self._warned: dict[str, float] = {}
        self.lat: dict[str, deque] = defaultdict(lambda: deque(maxlen=100))
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
            f"spatial perception: static map of '{p['world'] or 'none'}', initial map pose "
            f"{initial}, people in '{p['people_frame']}', clustering '{p['cluster_method']}'")

    def _on_params(self, changed: dict) -> None:
        if hasattr(self, "core"):
            self.get_logger().warning(f"parameters {sorted(changed)} take effect at the next "
                                      "start")

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def warn(self, kind: str, message: str, period_s: float = 2.0) -> None:
        """A warning throttled per input and problem (the message without its numbers);
        counts every skipped input per input."""
        self.skipped[kind] += 1
        key = kind + ":" + re.sub(r"[-+\d.e]+", "#", message)[:80]
        t = time.monotonic()
        if t - self._warned.get(key, -math.inf) >= period_s:
            self._warned[key] = t
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
        self.last_in["camera_info"] = self.now()

    def on_odom(self, msg: Odometry) -> None:
        self._guard("odom", self._odom, msg)

    def _odom(self, msg: Odometry) -> None:
        pp = msg.pose.pose
        yaw = quaternion_to_yaw((pp.orientation.x, pp.orientation.y, pp.orientation.z,
                                 pp.orientation.w))
        self.core.on_odom(convert.stamp_of(msg), pp.position.x, pp.position.y, yaw)
        self.last_in["odom"] = self.now()

    def on_filtered(self, msg: Odometry) -> None:
        self._guard("odometry/filtered", self._filtered, msg)

    def _filtered(self, msg: Odometry) -> None:
        if msg.header.frame_id and msg.header.frame_id != self.p["map_frame"]:
            raise ValueError(f"odometry/filtered is in '{msg.header.frame_id}', "
                             f"'{self.p['map_frame']}' expected")
        pp = msg.pose.pose
        yaw = quaternion_to_yaw((pp.orientation.x, pp.orientation.y, pp.orientation.z,
                                 pp.orientation.w))
        self.core.on_map_pose(convert.stamp_of(msg), pp.position.x, pp.position.y, yaw)
        self.filtered_seen = True
        self.last_in["odometry/filtered"] = self.now()

    def on_depth(self, msg: Image) -> None:
        self._guard("depth", self._depth, msg)

    def _camera_mount(self, frame: str) -> np.ndarray:
        frame = frame or self.p["camera_frame"]
        if frame not in self._mounts:
            self._mounts[frame] = mount_transform(self.desc, self.p["base_frame"], frame)
        return self._mounts[frame]

    def _depth(self, msg: Image) -> None:
        t0 = time.perf_counter()
        info = self.info
        if info is None:
            raise DepthError("no camera/depth/camera_info received yet")
        if (info.width, info.height) != (msg.width, msg.height):
            raise DepthError(f"camera_info is for {info.width}x{info.height}, the image is "
                             f"{msg.width}x{msg.height}")
        depth = decode_depth(msg.data, msg.width, msg.height, msg.step, msg.encoding,
                             bool(msg.is_bigendian))
        try:
            T = self._camera_mount(msg.header.frame_id)
        except ValueError as e:
            raise DepthError(str(e)) from None
        self.core.cloud.T_base_cam = self.core.T_base_cam = T
        stamp = convert.stamp_of(msg)
        res = self.core.on_depth(depth, np.asarray(info.k, dtype=np.float64), stamp)
        self.last_in["depth"] = self.now()
        for k, v in res.timings_ms.items():
            self.lat[f"cloud_{k}"].append(v)
        base = self.p["base_frame"]
        self.points_pub.publish(points_to_cloud(res.points, msg.header.stamp, base))
        arr = ObstacleArray()
        arr.header.stamp, arr.header.frame_id = msg.header.stamp, base
        cl = res.clusters
        for i in range(len(cl)):
            o = Obstacle()
            o.id = i
            c, s = cl.centers[i], cl.sizes[i]
            o.center = Point(x=float(c[0]), y=float(c[1]), z=float(c[2]))
            o.size.x, o.size.y, o.size.z = float(s[0]), float(s[1]), float(s[2])
            o.point_count = int(cl.counts[i])
            o.source = "depth"
            arr.obstacles.append(o)
        self.obst_pub.publish(arr)
        self.lat["depth_callback_ms"].append((time.perf_counter() - t0) * 1e3)

    def on_scan(self, msg: LaserScan) -> None:
        self._guard("scan", self._scan, msg)

    def _scan(self, msg: LaserScan) -> None:
        t0 = time.perf_counter()
        inc = msg.angle_increment
        if not (math.isfinite(msg.angle_min) and math.isfinite(msg.angle_max)
                and math.isfinite(inc)) or inc == 0.0:
            raise ScanError(f"scan angles not finite or zero increment (angle_min="
                            f"{msg.angle_min}, angle_max={msg.angle_max}, increment={inc})")
        expected = int(round((msg.angle_max - msg.angle_min) / inc)) + 1
        frame = msg.header.frame_id or self.p["laser_frame"]
        if frame not in self._mounts:
            try:
                T = mount_transform(self.desc, self.p["base_frame"], frame)
            except ValueError as e:
                raise ScanError(str(e)) from None
            self._mounts[frame] = (float(T[0, 3]), float(T[1, 3]), math.atan2(T[1, 0], T[0, 0]))
        self.core.laser = self._mounts[frame]
        out = self.core.on_scan(np.asarray(msg.ranges, dtype=np.float64), msg.angle_min, inc,
                                msg.range_min, msg.range_max, convert.stamp_of(msg),
                                expected_beams=expected)
        self.last_in["scan"] = self.now()
        for k, v in out.timings_ms.items():
            self.lat[f"scan_{k}"].append(v)
        self.publish_people(out, msg.header.stamp)
        self.lat["scan_callback_ms"].append((time.perf_counter() - t0) * 1e3)

    # ------------------------------------------------------------------ outputs
    def publish_people(self, out, stamp) -> None:
        people, frame = out.people, out.frame
        if self.p["people_frame"] == "base" or frame != "map":
            # the supervisor takes anything but the map frame as the base frame: never odom
            t = convert.from_time(stamp)
            pose = self.core.odom_pose(t)
            if frame == "map":
                pose = se2_compose(self.core.map_from_odom, pose)
            inv = se2_inverse(pose)
            c, s = math.cos(inv[2]), math.sin(inv[2])
            R = np.array([[c, -s], [s, c]])
            B = np.zeros((4, 4))
            B[:2, :2] = B[2:, 2:] = R
            moved = []
            for p in people:
                xy = se2_apply(inv, np.array([[p.x, p.y]]))[0]
                v = R @ np.array([p.vx, p.vy])
                moved.append(type(p)(p.id, float(xy[0]), float(xy[1]), float(v[0]), float(v[1]),
                                     B @ p.cov @ B.T, p.confidence))
            people, frame_id = moved, self.p["base_frame"]
        else:
            frame_id = self.p["map_frame"]
        self.people_frame_used = frame_id
        arr = TrackedPersonArray()
        arr.header.stamp, arr.header.frame_id = stamp, frame_id
        for p in people:
            tp = TrackedPerson()
            tp.id = int(p.id)
            tp.pose.pose.position.x, tp.pose.pose.position.y = p.x, p.y
            heading = math.atan2(p.vy, p.vx) if math.hypot(p.vx, p.vy) > 0.05 else 0.0
            q = yaw_to_quaternion(heading)
            o = tp.pose.pose.orientation
            o.x, o.y, o.z, o.w = q
            tp.twist.twist.linear.x, tp.twist.twist.linear.y = p.vx, p.vy
            pc = np.zeros((6, 6))
            pc[:2, :2] = p.cov[:2, :2]
            pc[2, 2] = pc[3, 3] = pc[4, 4] = 1e6
            pc[5, 5] = math.pi ** 2
            tc = np.zeros((6, 6))
            tc[:2, :2] = p.cov[2:, 2:]
            tc[2, 2] = tc[3, 3] = tc[4, 4] = tc[5, 5] = 1e6
            tp.pose.covariance = array.array("d", pc.reshape(36).tobytes())
            tp.twist.covariance = array.array("d", tc.reshape(36).tobytes())
            tp.confidence = float(p.confidence)
            arr.people.append(tp)
        self.people_pub.publish(arr)
        self.publish_markers(people, frame_id, stamp)

    def publish_markers(self, people, frame_id: str, stamp) -> None:
        arr = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        arr.markers.append(clear)
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
            grid = lm.grid()
            m = OccupancyGrid()
            m.header.stamp = convert.to_time(lm.t_s)
            m.header.frame_id = self.p["odom_frame"]
            m.info.map_load_time = m.header.stamp
            m.info.resolution = float(lm.config.resolution_m)
            m.info.width = m.info.height = int(lm.n)
            m.info.origin.position.x, m.info.origin.position.y = map(float, lm.origin)
            m.info.origin.orientation.w = 1.0
            m.data = array.array("b", grid.reshape(-1).tobytes())
            self.map_pub.publish(m)
            self.lat["local_map_publish_ms"].append((time.perf_counter() - t0) * 1e3)
        except Exception as e:  # noqa: BLE001
            self.warn("local_map", f"local_map: {type(e).__name__}: {e}")

    def publish_diagnostics(self) -> None:
        now = self.now()
        d = DiagnosticStatus(name=f"{self.get_name()}: spatial perception",
                             hardware_id="spatial_perception")
        stale = [k for k in ("scan", "odom", "depth")
                 if now - self.last_in.get(k, -math.inf) > self.p["stale_timeout_s"]]
        d.level = DiagnosticStatus.WARN if stale else DiagnosticStatus.OK
        d.message = ("stale or missing: " + ", ".join(stale)) if stale else "ok"
        vals = []
        for k in sorted(self.lat):
            v = self.lat[k]
            if v:
                vals.append(KeyValue(key=f"latency_{k}_mean", value=f"{np.mean(v):.2f}"))
                vals.append(KeyValue(key=f"latency_{k}_max", value=f"{np.max(v):.2f}"))
        for k, n in sorted(self.core.counts.items()):
            vals.append(KeyValue(key=f"frames_{k}", value=str(n)))
        for k, n in sorted(self.skipped.items()):
            vals.append(KeyValue(key=f"skipped_{k}", value=str(n)))
        vals.append(KeyValue(key="people_tracked", value=str(len(self.core.tracker.confirmed()))))
        vals.append(KeyValue(key="people_frame", value=self.people_frame_used))
        vals.append(KeyValue(key="map_pose_source", value="odometry/filtered"
                             if self.filtered_seen else "odom + initial map pose"
                             if self.core.map_from_odom is not None else "none"))
        d.values = vals
        arr = DiagnosticArray(status=[d])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(SpatialPerceptionNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
