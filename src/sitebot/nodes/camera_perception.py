"""camera_perception: AprilTags and analog gauges from the colour camera.

Thin adapter around :mod:`sitebot.perception.fiducials` and :mod:`sitebot.perception.gauge`
(docs/perception.md).  Inputs: ``camera/color/image_raw`` (rgb8, bgr8 or mono8) and
``camera/camera_info`` (sensor QoS).  Outputs: ``fiducials``
(sitebot_interfaces/FiducialDetectionArray: pose with covariance in the optical frame, pose in
the base frame, registry asset), ``gauges`` (sitebot_interfaces/GaugeReading, one per gauge
whose dial is in view, valid or refused with a reason, with the rectified crop),
``perception/markers`` (MarkerArray) and ``/diagnostics`` (per-pipeline latency, frames
processed and skipped).

Bad input (empty or truncated images, unsupported encodings, a camera_info that does not
match the image, non-finite intrinsics, no camera_info yet): a throttled warning naming the
problem, the frame is skipped and counted, the node carries on.
"""
from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import Marker, MarkerArray

from sitebot_interfaces.msg import FiducialDetection, FiducialDetectionArray, GaugeReading

from sitebot.config.params import ParamSpec, ParamType
from sitebot.perception.fiducials import FiducialDetector, camera_mount, detector_for_registry
from sitebot.perception.gauge import (DialLayout, GaugeReader, GaugeReaderConfig, layouts_from_world,
                                load_dial_layouts)
from sitebot.site.registry import load_registry
from sitebot.sim.world import load_world
from sitebot.nodes.common import QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.nodes.convert import FrameError, image_to_array  # noqa: F401 (image_to_array: public here too)

F, B, S, I = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING, ParamType.INT

SCHEMA = (
    ParamSpec("world", S, "substation", "world (name or file) whose site registry gives tag "
              "sizes and assets and whose gauges give the dial layouts; '' = use 'site' and "
              "'dial_layout_file'"),
    ParamSpec("site", S, "", "site registry file (used when 'world' is '')"),
    ParamSpec("dial_layout_file", S, "", "dial layout YAML (docs/perception.md); '' = the "
              "world's gauges"),
    ParamSpec("fiducials_enabled", B, True, "run the AprilTag pipeline"),
    ParamSpec("gauges_enabled", B, True, "run the gauge reader (needs the tags)"),
    ParamSpec("gauge_rate_hz", F, 2.0, "read gauges at most this often (0 = every frame)",
              0.0, 100.0, unit="Hz"),
    ParamSpec("max_rate_hz", F, 0.0, "process at most this many frames per second (0 = all); "
              "the others are skipped", 0.0, 1000.0, unit="Hz"),
    ParamSpec("base_frame", S, "base_footprint", "the robot's base frame (pose_base)"),
    ParamSpec("camera_frame", S, "camera_color_optical_frame",
              "optical frame of the camera in the URDF (for the mount, and for images with an "
              "empty frame_id)"),
    ParamSpec("default_tag_size_m", F, 0.16, "tag edge for ids not in the registry's markers",
              0.01, 2.0, unit="m"),
    ParamSpec("pixel_noise_px", F, 0.5, "1-sigma corner noise for the pose covariance",
              0.01, 10.0, unit="px"),
    ParamSpec("tag_refine", S, "edges", "corner refinement",
              choices=("edges", "apriltag", "subpix", "contour")),
    ParamSpec("level_robot_prior", B, True, "resolve the planar tag pose ambiguity assuming "
              "a level robot and vertical tags"),
    ParamSpec("gauge_min_radius_px", F, 14.0, "refuse dials smaller than this in the image",
              4.0, 1000.0, unit="px"),
    ParamSpec("gauge_min_confidence", F, 0.5, "refuse readings below this confidence",
              0.0, 1.0),
    ParamSpec("gauge_crop_px", I, 96, "edge of the rectified dial crop", 32, 512, unit="px"),
    ParamSpec("publish_crop", B, True, "attach the rectified crop to gauge readings"),
    ParamSpec("marker_lifetime_s", F, 0.5, "lifetime of rviz markers", 0.0, 60.0, unit="s"),
    ParamSpec("warn_period_s", F, 5.0, "minimum time between two warnings of one kind",
              0.0, 3600.0, unit="s"),
    ParamSpec("diagnostics_period_s", F, 1.0, "/diagnostics period", 0.1, 60.0, unit="s"),
)

def _pose_msg(T: np.ndarray) -> Pose:
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in T[:3, 3])
    R = T[:3, :3]
    # rotation matrix -> quaternion (x, y, z, w)
    tr = float(np.trace(R))
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        w, x = 0.25 * s, (R[2, 1] - R[1, 2]) / s
        y, z = (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        w, x = (R[2, 1] - R[1, 2]) / s, 0.25 * s
        y, z = (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s
    elif R[1, 1] > R[2, 2]:
        s = math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        w, x = (R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s
        y, z = 0.25 * s, (R[1, 2] + R[2, 1]) / s
    else:
        s = math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        w, x = (R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s
        y, z = (R[1, 2] + R[2, 1]) / s, 0.25 * s
    n = math.sqrt(w * w + x * x + y * y + z * z)
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (
        x / n, y / n, z / n, w / n)
    return p


class _Latency:
    def __init__(self, n: int = 200) -> None:
        self.samples: deque[float] = deque(maxlen=n)

    def add(self, ms: float) -> None:
        self.samples.append(ms)

    def stats(self) -> tuple[float, float]:
        if not self.samples:
            return math.nan, math.nan
        a = np.fromiter(self.samples, float)
        return float(a.mean()), float(np.percentile(a, 95))


class CameraPerceptionNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("camera_perception", **kwargs)
        self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        p = self.p
        if p["world"]:
            world = load_world(p["world"])
            registry = world.registry
            layouts = layouts_from_world(world)
        else:
            if not p["site"]:
                from sitebot.errors import ParameterError
                raise ParameterError("node 'camera_perception': give 'world' or 'site'")
            registry = load_registry(p["site"])
            layouts = {}
        if p["dial_layout_file"]:
            layouts = load_dial_layouts(p["dial_layout_file"], registry)
        self.registry = registry
        self.layouts: dict[str, DialLayout] = layouts
        self.asset_of_tag = {a.fiducial: a.id for a in registry.assets if a.fiducial is not None}
        self.detector: FiducialDetector = detector_for_registry(
            registry, p["default_tag_size_m"], pixel_noise_px=p["pixel_noise_px"],
            refine=p["tag_refine"])
        self.T_base_cam = camera_mount(base_frame=p["base_frame"], camera_frame=p["camera_frame"])
        if p["level_robot_prior"]:
            self.detector.up_hint_cam = self.T_base_cam[:3, :3].T @ np.array([0.0, 0.0, 1.0])
        self.reader = GaugeReader(GaugeReaderConfig(
            crop_px=p["gauge_crop_px"], min_radius_px=p["gauge_min_radius_px"],
            min_confidence=p["gauge_min_confidence"]))
        self.info: CameraInfo | None = None
        self.processed = 0
        self.skipped: dict[str, int] = {}
        self.lat = {"fiducials": _Latency(), "gauges": _Latency(), "frame": _Latency()}
        self.last_frame_wall = math.nan
        self.last_gauge_wall = -math.inf
        self.last_process_wall = -math.inf
        self._warned: dict[str, float] = {}

        self.fid_pub = self.create_publisher(FiducialDetectionArray, "fiducials", QOS_STATE)
        self.gauge_pub = self.create_publisher(GaugeReading, "gauges", QOS_STATE)
        self.marker_pub = self.create_publisher(MarkerArray, "perception/markers", QOS_STATE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(CameraInfo, "camera/camera_info", self.on_info, QOS_SENSOR)
        self.create_subscription(Image, "camera/color/image_raw", self.on_image, QOS_SENSOR)
        self.create_timer(p["diagnostics_period_s"], self.on_diagnostics)
        self.get_logger().info(
            f"camera_perception: {len(self.detector.tag_sizes)} surveyed tags, "
            f"{len(self.layouts)} dial layouts ({', '.join(sorted(self.layouts)) or 'none'})")

    # -- parameters ----------------------------------------------------------------------
    def _on_params(self, changed: dict[str, Any]) -> None:
        self.p.update(changed)

    # -- input ---------------------------------------------------------------------------
    def _skip(self, kind: str, message: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._warned.get(kind, -math.inf) >= self.p["warn_period_s"]:
            self._warned[kind] = now
            self.get_logger().warning(f"frame skipped: {message} "
                                      f"({self.skipped[kind]} skipped for this so far)")

    def on_info(self, msg: CameraInfo) -> None:
        self.info = msg

    def _intrinsics(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray] | None:
        info = self.info
        if info is None:
            self._skip("no_camera_info", "no camera_info received yet on "
                       f"{self.resolve_topic_name('camera/camera_info')}")
            return None
        if int(info.width) != w or int(info.height) != h:
            self._skip("camera_info_mismatch", f"camera_info is {info.width}x{info.height} "
                       f"but the image is {w}x{h}")
            return None
        K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        d = np.asarray(info.d, dtype=np.float64).reshape(-1)
        if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1.0 \
                or not np.isfinite(d).all():
            self._skip("bad_camera_info", "camera_info K or D is not finite or not a camera "
                       f"matrix (K = {K.reshape(-1).tolist()})")
            return None
        if d.size not in (0, 4, 5, 8, 12, 14):
            self._skip("bad_camera_info", f"camera_info has {d.size} distortion coefficients")
            return None
        return K, d

    def on_image(self, msg: Image) -> None:
        t0 = time.perf_counter()
        now = time.monotonic()
        p = self.p
        if p["max_rate_hz"] > 0 and now - self.last_process_wall < 1.0 / p["max_rate_hz"]:
            self.skipped["throttled"] = self.skipped.get("throttled", 0) + 1
            return
        try:
            img, enc = image_to_array(msg)
        except FrameError as e:
            self._skip("bad_image", str(e))
            return
        h, w = img.shape[:2]
        intr = self._intrinsics(w, h)
        if intr is None:
            return
        K, dist = intr
        self.last_process_wall = now
        header = msg.header
        if not header.frame_id:
            header.frame_id = p["camera_frame"]
        try:
            self._process(img, enc, K, dist, header, t0)
        except Exception as e:  # never let one frame kill the node
            self._skip("pipeline_error", f"{type(e).__name__}: {e}")
            return
        self.processed += 1
        self.last_frame_wall = now
        self.lat["frame"].add(1e3 * (time.perf_counter() - t0))

    # -- pipelines -----------------------------------------------------------------------
    def _process(self, img: np.ndarray, enc: str, K: np.ndarray, dist: np.ndarray,
                 header: Any, t0: float) -> None:
        p = self.p
        markers = MarkerArray()
        dets = []
        if p["fiducials_enabled"] or p["gauges_enabled"]:
            t = time.perf_counter()
            dets = self.detector.detect(img, K, dist)
            self.lat["fiducials"].add(1e3 * (time.perf_counter() - t))
        if p["fiducials_enabled"]:
            self.fid_pub.publish(self._fiducial_msg(dets, header))
            for d in dets:
                markers.markers.extend(self._tag_markers(d, header))
        now = time.monotonic()
        if (p["gauges_enabled"] and self.layouts and dets
                and (p["gauge_rate_hz"] <= 0 or now - self.last_gauge_wall >= 1.0 / p["gauge_rate_hz"])):
            self.last_gauge_wall = now
            t = time.perf_counter()
            readings = self.reader.read_all(img if enc != "mono8" else img, K, dets,
                                            self.layouts, dist)
            self.lat["gauges"].add(1e3 * (time.perf_counter() - t))
            by_tag = {d.tag_id: d for d in dets}
            for r in readings:
                self.gauge_pub.publish(self._gauge_msg(r, header))
                lay = self.layouts[r.asset_id]
                markers.markers.append(self._gauge_marker(r, by_tag[lay.tag_id].T_cam_tag
                                                          @ lay.T_tag_dial, header))
        if markers.markers:
            self.marker_pub.publish(markers)

    def _fiducial_msg(self, dets: list, header: Any) -> FiducialDetectionArray:
        out = FiducialDetectionArray()
        out.header = header
        out.base_frame = self.p["base_frame"]
        for d in dets:
            m = FiducialDetection()
            m.tag_id = int(d.tag_id)
            m.family = d.family
            m.asset_id = self.asset_of_tag.get(d.tag_id, "")
            m.pose.pose = _pose_msg(d.T_cam_tag)
            m.pose.covariance = [float(v) for v in np.asarray(d.covariance).reshape(36)]
            m.pose_base = _pose_msg(self.T_base_cam @ d.T_cam_tag)
            m.size_m = float(d.size_m)
            m.reprojection_error_px = float(d.reprojection_error_px)
            m.decision_margin = float(d.decision_margin)
            m.corners_px = [float(v) for v in np.asarray(d.corners_px).reshape(8)]
            out.detections.append(m)
        return out

    def _gauge_msg(self, r: Any, header: Any) -> GaugeReading:
        m = GaugeReading()
        m.header = header
        m.asset_id = r.asset_id
        m.valid = bool(r.valid)
        m.value = float(r.value) if r.valid else 0.0
        m.unit = r.unit
        m.confidence = float(r.confidence)
        m.failure_reason = r.failure_reason
        if self.p["publish_crop"] and r.crop is not None:
            c = np.ascontiguousarray(r.crop)
            m.crop.header = header
            m.crop.height, m.crop.width = int(c.shape[0]), int(c.shape[1])
            m.crop.encoding = "rgb8" if c.ndim == 3 else "mono8"
            m.crop.step = int(c.shape[1] * (3 if c.ndim == 3 else 1))
            m.crop.data = c.tobytes()
        return m

    def _tag_markers(self, d: Any, header: Any) -> list[Marker]:
        life = self.p["marker_lifetime_s"]
        cube = Marker()
        cube.header = header
        cube.ns = "fiducials"
        cube.id = int(d.tag_id)
        cube.type = Marker.CUBE
        cube.action = Marker.ADD
        cube.pose = _pose_msg(d.T_cam_tag)
        cube.scale.x = cube.scale.y = float(d.size_m)
        cube.scale.z = 0.005
        cube.color.r, cube.color.g, cube.color.b, cube.color.a = 0.1, 0.8, 0.2, 0.6
        cube.lifetime.sec = int(life)
        cube.lifetime.nanosec = int((life % 1.0) * 1e9)
        out = [cube]
        for k, rgb in enumerate(((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))):
            a = Marker()
            a.header = header
            a.ns = "fiducial_axes"
            a.id = int(d.tag_id) * 3 + k
            a.type = Marker.ARROW
            a.action = Marker.ADD
            T = d.T_cam_tag.copy()
            # arrows point along +x; rotate x onto axis k of the tag frame
            R = T[:3, :3]
            if k == 1:
                R = R @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
            elif k == 2:
                R = R @ np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0.0]])
            T[:3, :3] = R
            a.pose = _pose_msg(T)
            a.scale.x, a.scale.y, a.scale.z = float(d.size_m), 0.01, 0.01
            a.color.r, a.color.g, a.color.b, a.color.a = (*rgb, 1.0)
            a.lifetime = cube.lifetime
            out.append(a)
        return out

    def _gauge_marker(self, r: Any, T_cam_dial: np.ndarray, header: Any) -> Marker:
        m = Marker()
        m.header = header
        m.ns = "gauges"
        m.id = sorted(self.layouts).index(r.asset_id)
        m.type = Marker.TEXT_VIEW_FACING
        m.action = Marker.ADD
        m.pose = _pose_msg(T_cam_dial)
        m.scale.z = 0.06
        m.text = (f"{r.asset_id}: {r.value:.3g} {r.unit} ({r.confidence:.2f})" if r.valid
                  else f"{r.asset_id}: ? ({r.failure_reason})")
        m.color.r, m.color.g, m.color.b, m.color.a = ((0.1, 1.0, 0.1, 1.0) if r.valid
                                                      else (1.0, 0.5, 0.0, 1.0))
        life = self.p["marker_lifetime_s"]
        m.lifetime.sec = int(life)
        m.lifetime.nanosec = int((life % 1.0) * 1e9)
        return m

    # -- diagnostics ---------------------------------------------------------------------
    def on_diagnostics(self) -> None:
        st = DiagnosticStatus()
        st.name = f"{self.get_name()}: camera pipelines"
        st.hardware_id = self.p["camera_frame"]
        age = time.monotonic() - self.last_frame_wall if math.isfinite(self.last_frame_wall) \
            else math.inf
        skipped = sum(v for k, v in self.skipped.items() if k != "throttled")
        if not math.isfinite(age) or age > 2.0:
            st.level = DiagnosticStatus.WARN
            st.message = "no frame processed in the last 2 s"
        elif skipped:
            st.level = DiagnosticStatus.WARN if self.skipped else DiagnosticStatus.OK
            st.message = f"{skipped} frames skipped (bad input)"
        else:
            st.level = DiagnosticStatus.OK
            st.message = "ok"
        vals = [("frames_processed", str(self.processed)),
                ("frames_skipped", str(skipped)),
                ("frames_throttled", str(self.skipped.get("throttled", 0)))]
        vals += [(f"skipped_{k}", str(v)) for k, v in sorted(self.skipped.items())
                 if k != "throttled"]
        for name, lat in self.lat.items():
            mean, p95 = lat.stats()
            vals += [(f"{name}_latency_mean_ms", f"{mean:.2f}"),
                     (f"{name}_latency_p95_ms", f"{p95:.2f}")]
        st.values = [KeyValue(key=k, value=v) for k, v in vals]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [st]
        self.diag_pub.publish(arr)


def measure_throughput(img: np.ndarray, K: np.ndarray, n: int) -> float:
    """Frames/s of this node with every pipeline on (gauges every frame): frames published
    one after another over DDS, each waited for (``sitebot bench perception``)."""
    from rclpy.executors import SingleThreadedExecutor
    from sitebot.nodes.convert import camera_info_msg, image_rgb_msg, to_time
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = CameraPerceptionNode(context=ctx, parameter_overrides=[
            rclpy.Parameter("gauge_rate_hz", value=0.0)])
        pub_node = rclpy.create_node("bench_camera", context=ctx)
        ip = pub_node.create_publisher(Image, "camera/color/image_raw", QOS_SENSOR)
        cp = pub_node.create_publisher(CameraInfo, "camera/camera_info", QOS_SENSOR)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        ex.add_node(pub_node)
        h, w = img.shape[:2]
        deadline = time.monotonic() + 10
        while node.info is None and time.monotonic() < deadline:
            cp.publish(camera_info_msg(K, w, h, to_time(0.0), "camera_color_optical_frame"))
            ex.spin_once(timeout_sec=0.05)
        t0 = time.perf_counter()
        start = node.processed
        for i in range(n):
            ip.publish(image_rgb_msg(img, to_time(i * 0.2), "camera_color_optical_frame"))
            want = start + i + 1
            end = time.monotonic() + 5
            while node.processed < want and time.monotonic() < end:
                ex.spin_once(timeout_sec=0.05)
        dt = time.perf_counter() - t0
        done = node.processed - start
        node.destroy_node()
        pub_node.destroy_node()
        return done / dt if dt > 0 else math.nan
    finally:
        rclpy.shutdown(context=ctx)


def main(args: list[str] | None = None) -> int:
    return run_node(CameraPerceptionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
