"""survey_recorder: records a site survey to a rosbag2/MCAP folder on request
(docs/commissioning.md; the format: :mod:`sitebot.commissioning.survey`).

Services: ``survey/start`` (std_srvs/Trigger: opens ``<survey_dir>/survey_<date>_<time>``;
the response message is the folder) and ``survey/stop`` (std_srvs/Trigger: closes the bag;
the response message is a summary).  Status: ``survey/status``
(diagnostic_msgs/DiagnosticStatus, reliable + transient local, at ``status_period_s`` and on
every change: name ``survey``, message ``recording`` or ``idle``, values path, duration_s,
scans, images, bytes, error).

While recording it takes the scan, odometry, IMU, TF, camera_info and the colour camera
thinned to ``image_rate_hz`` (stored PNG-compressed).  The robot is driven as always: by
teleop through the safety supervisor; this node only listens.  A node shutdown closes an
open bag, so a survey survives Ctrl-C.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu, LaserScan
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from sitebot.commissioning.survey import (CAMERA_INFO_TOPIC, COMPRESSED_TOPIC, PNG_FORMAT,
                                          SURVEY_TOPICS, RateGate, SurveyWriter, encode_png,
                                          new_survey_folder)
from sitebot.config.params import ParamSpec, ParamType
from sitebot.nodes.common import QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.nodes.convert_images import FrameError, image_to_array

F, S, I = ParamType.FLOAT, ParamType.STRING, ParamType.INT

SCHEMA = (
    ParamSpec("survey_dir", S, "surveys", "folder under which each survey gets its own bag "
              "folder (relative: to the working directory)"),
    ParamSpec("image_rate_hz", F, 2.0, "camera images kept per second (0: none)", 0.0, 30.0,
              unit="Hz"),
    ParamSpec("max_megabytes", I, 20000, "a survey stops recording at this size", 1,
              10_000_000, unit="MB"),
    ParamSpec("status_period_s", F, 1.0, "survey/status period", 0.1, 60.0, unit="s"),
)

__all__ = ["SCHEMA", "SurveyRecorderNode", "main"]

class SurveyRecorderNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("survey_recorder", **kwargs)
        self.p = p = declare_schema(self, SCHEMA)
        self.writer: SurveyWriter | None = None
        self.last: dict | None = None            # the summary of the last finished survey
        self.gate = RateGate(p["image_rate_hz"])
        self._info: tuple[int, bytes] | None = None
        self._static: list[tuple[int, bytes]] = []    # tf_static before the start
        self.create_subscription(LaserScan, "scan", self._raw("/scan"), QOS_SENSOR, raw=True)
        self.create_subscription(Odometry, "odom", self._raw("/odom"), QOS_STATE, raw=True)
        self.create_subscription(Imu, "imu/data", self._raw("/imu/data"), QOS_SENSOR, raw=True)
        self.create_subscription(TFMessage, "tf", self._raw("/tf"), QOS_STATE, raw=True)
        self.create_subscription(TFMessage, "tf_static", self._raw("/tf_static"), QOS_LATCHED,
                                 raw=True)
        self.create_subscription(CameraInfo, "camera/camera_info", self.on_info, QOS_SENSOR,
                                 raw=True)
        self._image_sub = None           # only while recording (images are large)
        self.status_pub = self.create_publisher(DiagnosticStatus, "survey/status", QOS_LATCHED)
        self.create_service(Trigger, "survey/start", self.on_start)
        self.create_service(Trigger, "survey/stop", self.on_stop)
        self.create_timer(p["status_period_s"], self.publish_status)
        self.publish_status()
        self.get_logger().info(f"survey_recorder: idle; survey/start records to "
                               f"{Path(p['survey_dir']).expanduser().resolve()}")

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _raw(self, topic: str):
        msgtype = SURVEY_TOPICS[topic]

        def cb(data: bytes) -> None:
            t = self._now_ns()
            if topic == "/tf_static":             # latched: keep for a later start
                self._static = (self._static + [(t, data)])[-64:]
            w = self.writer
            if w is not None and not w.closed:
                w.write(topic, msgtype, t, data)
                if w.error:
                    self._failed()
        return cb

    def on_info(self, data: bytes) -> None:
        self._info = (self._now_ns(), data)

    def on_image(self, msg: Image) -> None:
        w = self.writer
        if w is None or w.closed or not self.gate.accept(self._now_ns() * 1e-9):
            return
        try:
            rgb, enc = image_to_array(msg)
            png = encode_png(rgb)
        except (FrameError, ValueError) as e:
            self.get_logger().warning(f"survey: camera image skipped: {e}",
                                      throttle_duration_sec=5.0)
            return
        out = CompressedImage(header=msg.header, format=PNG_FORMAT if enc != "mono8"
                              else "mono8; png compressed mono8", data=png)
        t = self._now_ns()
        if self._info is not None:
            w.write(CAMERA_INFO_TOPIC, SURVEY_TOPICS[CAMERA_INFO_TOPIC], t, self._info[1])
        w.write(COMPRESSED_TOPIC, SURVEY_TOPICS[COMPRESSED_TOPIC], t, serialize_message(out))
        if w.error:
            self._failed()

    # ------------------------------------------------------------------ services
    def on_start(self, request: Trigger.Request, response: Trigger.Response):
        if self.writer is not None and not self.writer.closed:
            response.success, response.message = False, \
                f"already recording to {self.writer.folder}"
            return response
        folder = new_survey_folder(Path(self.p["survey_dir"]).expanduser())
        try:
            self.writer = SurveyWriter(folder, max_bytes=self.p["max_megabytes"] * 2 ** 20,
                                       custom={"sitebot": "survey"})
        except (OSError, ValueError) as e:
            response.success, response.message = False, f"cannot record to {folder}: {e}"
            self.get_logger().error(response.message)
            return response
        self.gate = RateGate(self.p["image_rate_hz"])
        if self.p["image_rate_hz"] > 0.0:
            self._image_sub = self.create_subscription(Image, "camera/color/image_raw",
                                                       self.on_image, QOS_SENSOR)
        for t, data in self._static:
            self.writer.write("/tf_static", SURVEY_TOPICS["/tf_static"], t, data)
        self.get_logger().info(f"survey: recording to {folder}")
        response.success, response.message = True, str(folder)
        self.publish_status()
        return response

    def on_stop(self, request: Trigger.Request, response: Trigger.Response):
        w = self.writer
        if w is None:
            response.success, response.message = False, "not recording"
            return response
        s = self.finish()
        response.success = not s["error"]
        response.message = (f"{s['path']}: {s['duration_s']:.1f} s, {s['scans']} scans, "
                            f"{s['images']} images, {s['bytes'] / 2 ** 20:.1f} MB"
                            + (f"; {s['error']}" if s["error"] else ""))
        self.get_logger().info(f"survey: stopped: {response.message}")
        return response

    def finish(self) -> dict:
        """Close the open survey (if any); its summary."""
        w, self.writer = self.writer, None
        if self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
            self._image_sub = None
        if w is None:
            return self.last or {}
        self.last = w.close()
        self.publish_status()
        return self.last

    def _failed(self) -> None:
        self.get_logger().error(f"survey: {self.writer.error}", throttle_duration_sec=5.0)
        self.finish()

    def publish_status(self) -> None:
        w = self.writer
        rec = w is not None and not w.closed
        s = w.summary() if w is not None else (self.last or {})
        st = DiagnosticStatus(name="survey", hardware_id=self.get_fully_qualified_name(),
                              message="recording" if rec else "idle")
        st.level = DiagnosticStatus.ERROR if s.get("error") else DiagnosticStatus.OK
        st.values = [KeyValue(key=k, value=str(s.get(k, "")))
                     for k in ("path", "duration_s", "scans", "images", "bytes", "error")]
        self.status_pub.publish(st)


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: SurveyRecorderNode(), args,
                    on_exit=lambda n: n.finish())


if __name__ == "__main__":
    raise SystemExit(main())
