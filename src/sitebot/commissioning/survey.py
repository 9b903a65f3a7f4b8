"""Survey recording (core, no ROS): what ``sitebot map build`` needs, streamed to a rosbag2
folder in MCAP storage while an operator drives the robot on a new site (docs/commissioning.md).

:class:`SurveyWriter` writes CDR-serialized messages as they arrive (nothing is held in
memory; ``ros2 bag info/play``, Foxglove and ``rosbags`` read the result) and keeps counts
for the status.  A write that fails (disk full, folder removed) closes the writer and is
reported, never raised into the caller's callback.  :class:`RateGate` thins the camera to a
low rate; :func:`new_survey_folder` names a fresh bag folder.

The survey's topics (:data:`SURVEY_TOPICS`): the scan, wheel odometry, IMU, TF, the camera's
calibration and its colour images, recorded as ``sensor_msgs/CompressedImage`` (PNG, the
``compressed`` image_transport convention: format ``"rgb8; png compressed bgr8"``) on
``<image topic>/compressed``, each image preceded by the camera_info current at its time.
"""
from __future__ import annotations

import datetime as _dt
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sitebot.types import Pose2D, quaternion_to_yaw

__all__ = ["read_survey", "pose_at", "pose_series", "stamp_s", "SURVEY_TOPICS", "IMAGE_TOPIC", "COMPRESSED_TOPIC", "CAMERA_INFO_TOPIC",
           "PNG_FORMAT", "SurveyWriter", "RateGate", "new_survey_folder", "encode_png"]

IMAGE_TOPIC = "/camera/color/image_raw"
COMPRESSED_TOPIC = IMAGE_TOPIC + "/compressed"
CAMERA_INFO_TOPIC = "/camera/camera_info"
PNG_FORMAT = "rgb8; png compressed bgr8"

#: topic -> message type of a survey bag (the image is recorded on COMPRESSED_TOPIC)
SURVEY_TOPICS: dict[str, str] = {
    "/scan": "sensor_msgs/msg/LaserScan",
    "/odom": "nav_msgs/msg/Odometry",
    "/imu/data": "sensor_msgs/msg/Imu",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/tf_static": "tf2_msgs/msg/TFMessage",
    CAMERA_INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
    COMPRESSED_TOPIC: "sensor_msgs/msg/CompressedImage",
}


def new_survey_folder(root: str | Path, now: _dt.datetime | None = None) -> Path:
    """``root/survey_YYYYmmdd_HHMMSS`` (``_2``, ``_3`` ... if taken); not created (the bag
    writer creates it)."""
    now = now or _dt.datetime.now()
    base = Path(root) / now.strftime("survey_%Y%m%d_%H%M%S")
    p, n = base, 1
    while p.exists():
        n += 1
        p = base.with_name(f"{base.name}_{n}")
    return p


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB (H, W, 3) or grey (H, W) uint8 image, stored as BGR (what
    ``cv2.imdecode`` of :data:`PNG_FORMAT` data gives back)."""
    img = rgb if rgb.ndim == 2 else np.ascontiguousarray(rgb[:, :, ::-1])
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {rgb.shape}")
    return buf.tobytes()


@dataclass
class RateGate:
    """Pass at most ``rate_hz`` events per second of the given clock (0: none; inf: all).
    Time going backwards (a simulation reset) restarts the gate."""
    rate_hz: float
    _last: float = -math.inf

    def accept(self, t_s: float) -> bool:
        if self.rate_hz <= 0.0 or not math.isfinite(t_s):
            return False
        if t_s < self._last or t_s - self._last >= 1.0 / self.rate_hz - 1e-9:
            self._last = t_s
            return True
        return False


@dataclass
class SurveyWriter:
    """A rosbag2/MCAP folder written as messages arrive (thread-safe).

    ``write(topic, msgtype, t_ns, cdr)`` adds the topic's connection on first use.
    ``max_bytes`` bounds the recording (the writer closes itself there and says so in
    :attr:`error`).  :meth:`close` finalises the bag (metadata.yaml, MCAP summary) and
    returns :meth:`summary`.
    """
    folder: Path
    max_bytes: int = 20 * 2 ** 30
    custom: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    error: str = ""
    closed: bool = False

    def __post_init__(self) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        from sitebot.bag import BAG_VERSION, typestore
        self.folder = Path(self.folder)
        if self.folder.exists():
            raise FileExistsError(f"{self.folder}: a survey folder must not exist yet")
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._ts = typestore()
        self._lock = threading.Lock()
        self._conns: dict[str, Any] = {}
        self._w = Writer(self.folder, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        for k, v in self.custom.items():
            self._w.set_custom_data(k, str(v))
        self._w.open()

    def write(self, topic: str, msgtype: str, t_ns: int, cdr: bytes) -> bool:
        """Record one message; False when the writer is closed or the write failed."""
        with self._lock:
            if self.closed:
                return False
            try:
                conn = self._conns.get(topic)
                if conn is None:
                    conn = self._conns[topic] = self._w.add_connection(
                        topic, msgtype, typestore=self._ts)
                self._w.write(conn, int(t_ns), bytes(cdr))
            except Exception as e:  # noqa: BLE001 - reported in the status, never raised
                self._fail(f"writing {topic} failed: {type(e).__name__}: {e}")
                return False
            self.counts[topic] = self.counts.get(topic, 0) + 1
            self.bytes += len(cdr)
            self.first_ns = t_ns if self.first_ns is None else min(self.first_ns, t_ns)
            self.last_ns = t_ns if self.last_ns is None else max(self.last_ns, t_ns)
            if self.bytes > self.max_bytes:
                self._fail(f"the survey reached its size limit ({self.max_bytes} bytes): "
                           "recording stopped")
            return True

    def _fail(self, text: str) -> None:
        self.error = text
        self._close_locked()

    def _close_locked(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._w.close()
        except Exception as e:  # noqa: BLE001
            self.error = (self.error + "; " if self.error else "") + \
                f"closing the bag failed: {type(e).__name__}: {e}"

    def close(self) -> dict:
        with self._lock:
            self._close_locked()
        return self.summary()

    @property
    def duration_s(self) -> float:
        if self.first_ns is None or self.last_ns is None:
            return 0.0
        return (self.last_ns - self.first_ns) * 1e-9

    def summary(self) -> dict:
        """path, duration_s, messages per topic, scans, images, bytes, error."""
        return {"path": str(self.folder), "duration_s": round(self.duration_s, 2),
                "scans": self.counts.get("/scan", 0),
                "images": self.counts.get(COMPRESSED_TOPIC, 0),
                "messages": dict(sorted(self.counts.items())), "bytes": self.bytes,
                "error": self.error, "closed": self.closed}


# ------------------------------------------------------------------ reading a survey
SCAN, ODOM, TRUTH = "/scan", "/odom", "/ground_truth/odom"


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _planar(msg) -> tuple[float, float, float, float]:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return stamp_s(msg), p.x, p.y, quaternion_to_yaw((q.x, q.y, q.z, q.w))


def pose_series(rows) -> np.ndarray:
    """(N, 4) t x y yaw with the yaw unwrapped (continuous), for :func:`pose_at`."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    a[:, 3] = np.unwrap(a[:, 3])
    return a


def read_survey(bag: str | Path) -> tuple[list, np.ndarray, np.ndarray | None]:
    """(scans, odometry, ground truth or None) of a survey bag, the poses as
    :func:`pose_series`; a bag without scans or odometry is refused naming what it has."""
    from rosbags.rosbag2 import Reader

    from sitebot.bag import read_bag
    from sitebot.errors import SitebotError
    p = Path(bag)
    if not (p / "metadata.yaml").is_file():
        raise SitebotError(f"{p}: not a rosbag2 folder (no metadata.yaml)")
    with Reader(p) as r:
        have = {c.topic: c.msgtype for c in r.connections}
    for topic, typ in ((SCAN, "sensor_msgs/msg/LaserScan"), (ODOM, "nav_msgs/msg/Odometry")):
        if have.get(topic) != typ:
            raise SitebotError(f"{p}: the survey needs {typ} on {topic}; the bag has "
                               + (", ".join(f"{t} ({m})" for t, m in sorted(have.items()))
                                  or "no topics"))
    msgs = read_bag(p, [SCAN, ODOM, TRUTH])
    odom = pose_series([_planar(m) for _, m in msgs[ODOM]])
    truth = pose_series([_planar(m) for _, m in msgs[TRUTH]]) if msgs.get(TRUTH) else None
    if len(odom) < 2 or len(msgs[SCAN]) < 2:
        raise SitebotError(f"{p}: {len(msgs[SCAN])} scans and {len(odom)} odometry "
                           "messages: too short a survey to map")
    return [m for _, m in msgs[SCAN]], odom, truth


def pose_at(series: np.ndarray, t: float) -> Pose2D | None:
    """The pose of a :func:`pose_series` interpolated at ``t``; None outside it."""
    ts = series[:, 0]
    if t < ts[0] or t > ts[-1]:
        return None
    return Pose2D(float(np.interp(t, ts, series[:, 1])), float(np.interp(t, ts, series[:, 2])),
                  math.remainder(float(np.interp(t, ts, series[:, 3])), math.tau))
