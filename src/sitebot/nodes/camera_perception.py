"""camera_perception: AprilTags and analog gauges from the colour camera.

Thin adapter around :mod:`sitebot.perception.camera_pipeline` (the tag detector and gauge
reader of :mod:`sitebot.perception.fiducials` and :mod:`sitebot.perception.gauge`, the
parameter schema; docs/perception.md).  Inputs: ``camera/color/image_raw`` (rgb8, bgr8 or mono8) and
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
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import Marker, MarkerArray

from sitebot.nodes.common import QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.nodes.convert import diagnostic_status, pose_from_matrix
from sitebot.nodes.convert_images import FrameError, image_to_array
from sitebot.perception.camera_pipeline import (SCHEMA, CameraInfoError, CameraPerception,
                                                GaugeResult, TagResult, camera_diagnostic,
                                                camera_intrinsics, tag_axes)
from sitebot.perception.gauge import load_dial_layouts
from sitebot.perception.monitor import due
from sitebot.site.bundle import load_bundle
from sitebot_interfaces.msg import FiducialDetection, FiducialDetectionArray, GaugeReading

#: image_to_array: public here too (tests and tools decode frames with it)
__all__ = ["SCHEMA", "CameraPerceptionNode", "image_to_array", "measure_throughput", "main"]

_AXIS_RGB = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


class CameraPerceptionNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("camera_perception", **kwargs)
        self.p = p = declare_schema(self, SCHEMA, on_change=self._on_params)
        site = load_bundle(p["site"])
        registry, dials = site.registry, p["dial_layout_file"] or site.gauges_file
        layouts = load_dial_layouts(dials, registry) if dials else {}
        if not layouts and registry.gauges:
            self.get_logger().warning(f"site '{site.site}' has {len(registry.gauges)} gauges "
                                      "but no dial layouts (gauges.yaml): no gauge readings")
        self.core = CameraPerception.from_params(p, registry, layouts)
        self.registry, self.layouts = registry, self.core.layouts
        self.skipped = self.core.monitor.skipped
        self.info: CameraInfo | None = None
        self.processed = 0
        self.last_frame_wall = math.nan
        self.last_process_wall = -math.inf

        self.fid_pub = self.create_publisher(FiducialDetectionArray, "fiducials", QOS_STATE)
        self.gauge_pub = self.create_publisher(GaugeReading, "gauges", QOS_STATE)
        self.marker_pub = self.create_publisher(MarkerArray, "perception/markers", QOS_STATE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(CameraInfo, "camera/camera_info", self.on_info, QOS_SENSOR)
        self.create_subscription(Image, "camera/color/image_raw", self.on_image, QOS_SENSOR)
        self.create_timer(p["diagnostics_period_s"], self.on_diagnostics)
        self.get_logger().info(
            f"camera_perception: {len(self.core.detector.tag_sizes)} surveyed tags, "
            f"{len(self.layouts)} dial layouts ({', '.join(sorted(self.layouts)) or 'none'})")

    # -- parameters ----------------------------------------------------------------------
    def _on_params(self, changed: dict[str, Any]) -> None:
        self.p.update(changed)

    # -- input ---------------------------------------------------------------------------
    def _skip(self, kind: str, message: str) -> None:
        if self.core.monitor.skip(kind, time.monotonic(), self.p["warn_period_s"]):
            self.get_logger().warning(f"frame skipped: {message} "
                                      f"({self.skipped[kind]} skipped for this so far)")

    def on_info(self, msg: CameraInfo) -> None:
        self.info = msg

    def on_image(self, msg: Image) -> None:
        t0 = time.perf_counter()
        now = time.monotonic()
        p = self.p
        if not due(self.last_process_wall, now, p["max_rate_hz"]):
            self.core.monitor.count("throttled")
            return
        try:
            img, enc = image_to_array(msg)
        except FrameError as e:
            self._skip("bad_image", str(e))
            return
        h, w = img.shape[:2]
        info = self.info
        if info is None:
            self._skip("no_camera_info", "no camera_info received yet on "
                       f"{self.resolve_topic_name('camera/camera_info')}")
            return
        try:
            K, dist = camera_intrinsics(info.k, info.d, (info.width, info.height), (w, h))
        except CameraInfoError as e:
            self._skip(e.kind, str(e))
            return
        self.last_process_wall = now
        header = msg.header
        if not header.frame_id:
            header.frame_id = p["camera_frame"]
        try:
            self._process(img, K, dist, header)
        except Exception as e:  # never let one frame kill the node
            self._skip("pipeline_error", f"{type(e).__name__}: {e}")
            return
        self.processed += 1
        self.last_frame_wall = now
        self.core.monitor.add_latency("frame", 1e3 * (time.perf_counter() - t0))

    # -- pipelines -----------------------------------------------------------------------
    def _process(self, img: np.ndarray, K: np.ndarray, dist: np.ndarray, header: Any) -> None:
        p, markers = self.p, MarkerArray()
        tags = self.core.detect(img, K, dist) \
            if p["fiducials_enabled"] or p["gauges_enabled"] else []
        if p["fiducials_enabled"]:
            self.fid_pub.publish(self._fiducial_msg(tags, header))
            for tag in tags:
                markers.markers.extend(self._tag_markers(tag, header))
        if p["gauges_enabled"]:
            # rate-limited in the camera's time (the frame's stamp), not this process's: the
            # same frames are read however loaded the machine (a stamp-less frame: wall time)
            t_cam = header.stamp.sec + header.stamp.nanosec * 1e-9
            for g in self.core.read_gauges(img, K, tags, dist, t_cam or time.monotonic(),
                                           p["gauge_rate_hz"]):
                self.gauge_pub.publish(self._gauge_msg(g, header))
                markers.markers.append(self._gauge_marker(g, header))
        if markers.markers:
            self.marker_pub.publish(markers)

    def _fiducial_msg(self, tags: list[TagResult], header: Any) -> FiducialDetectionArray:
        out = FiducialDetectionArray(header=header, base_frame=self.p["base_frame"])
        for tag in tags:
            d = tag.detection
            m = FiducialDetection(
                tag_id=int(d.tag_id), family=d.family, asset_id=tag.asset_id,
                pose_base=pose_from_matrix(tag.T_base_tag), size_m=float(d.size_m),
                reprojection_error_px=float(d.reprojection_error_px),
                decision_margin=float(d.decision_margin),
                corners_px=[float(v) for v in np.asarray(d.corners_px).reshape(8)])
            m.pose.pose = pose_from_matrix(d.T_cam_tag)
            m.pose.covariance = [float(v) for v in np.asarray(d.covariance).reshape(36)]
            out.detections.append(m)
        return out

    def _gauge_msg(self, g: GaugeResult, header: Any) -> GaugeReading:
        r = g.reading
        m = GaugeReading(header=header, asset_id=r.asset_id, valid=bool(r.valid),
                         value=float(r.value) if r.valid else 0.0, unit=r.unit,
                         confidence=float(r.confidence), failure_reason=r.failure_reason)
        if self.p["publish_crop"] and r.crop is not None:
            c = np.ascontiguousarray(r.crop)
            m.crop.header = header
            m.crop.height, m.crop.width = int(c.shape[0]), int(c.shape[1])
            m.crop.encoding = "rgb8" if c.ndim == 3 else "mono8"
            m.crop.step = int(c.shape[1] * (3 if c.ndim == 3 else 1))
            m.crop.data = c.tobytes()
        return m

    def _marker(self, header: Any, ns: str, mid: int, mtype: int, T: np.ndarray) -> Marker:
        life = self.p["marker_lifetime_s"]
        m = Marker(header=header, ns=ns, id=mid, type=mtype, action=Marker.ADD,
                   pose=pose_from_matrix(T))
        m.lifetime.sec, m.lifetime.nanosec = int(life), int((life % 1.0) * 1e9)
        return m

    def _tag_markers(self, tag: TagResult, header: Any) -> list[Marker]:
        d = tag.detection
        cube = self._marker(header, "fiducials", int(d.tag_id), Marker.CUBE, d.T_cam_tag)
        cube.scale.x = cube.scale.y = float(d.size_m)
        cube.scale.z = 0.005
        cube.color.r, cube.color.g, cube.color.b, cube.color.a = 0.1, 0.8, 0.2, 0.6
        out = [cube]
        for k, (T, rgb) in enumerate(zip(tag_axes(d.T_cam_tag), _AXIS_RGB)):
            a = self._marker(header, "fiducial_axes", int(d.tag_id) * 3 + k, Marker.ARROW, T)
            a.scale.x, a.scale.y, a.scale.z = float(d.size_m), 0.01, 0.01
            a.color.r, a.color.g, a.color.b, a.color.a = (*rgb, 1.0)
            out.append(a)
        return out

    def _gauge_marker(self, g: GaugeResult, header: Any) -> Marker:
        m = self._marker(header, "gauges", g.marker_id, Marker.TEXT_VIEW_FACING, g.T_cam_dial)
        m.scale.z = 0.06
        m.text = g.label
        m.color.r, m.color.g, m.color.b, m.color.a = g.rgba
        return m

    # -- diagnostics ---------------------------------------------------------------------
    def on_diagnostics(self) -> None:
        age = time.monotonic() - self.last_frame_wall if math.isfinite(self.last_frame_wall) \
            else math.inf
        d = camera_diagnostic(self.core.monitor, self.processed, age, self.p["stale_timeout_s"])
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [diagnostic_status(d, self.get_name(), self.p["camera_frame"])]
        self.diag_pub.publish(arr)


def measure_throughput(img: np.ndarray, K: np.ndarray, n: int) -> float:
    """Frames/s of this node with every pipeline on (gauges every frame): frames published
    one after another over DDS, each waited for (``sitebot bench perception``)."""
    from rclpy.executors import SingleThreadedExecutor

    from sitebot.nodes.convert import to_time
    from sitebot.nodes.convert_images import camera_info_msg, image_rgb_msg
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
