"""The camera perception core: what the ``camera_perception`` node runs, without ROS.

:class:`CameraPerception` holds the tag detector (tag sizes from the site registry, the up
hint from the camera mount), the gauge reader and the dial layouts. Per frame,
:meth:`~CameraPerception.detect` gives the tags with their registry asset and pose in the
base frame, and :meth:`~CameraPerception.read_gauges` (at most ``gauge_rate_hz``) the gauge
readings with where to show them. :func:`camera_intrinsics` checks a camera_info against
the image; :func:`camera_diagnostic` sums the node's bookkeeping up. The parameters
(:data:`SCHEMA`) are the node's. See docs/perception.md.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from sitebot.config.params import ParamSpec, ParamType
from sitebot.perception.fiducials import TagDetection, camera_mount, detector_for_registry
from sitebot.perception.gauge import DialLayout, GaugeReader, GaugeReaderConfig, GaugeReading
from sitebot.perception.monitor import InputMonitor, due
from sitebot.site.params import SITE_PARAM
from sitebot.types import Diagnostic, DiagnosticLevel

__all__ = ["SCHEMA", "CameraInfoError", "camera_intrinsics", "TagResult", "GaugeResult",
           "CameraPerception", "camera_diagnostic", "tag_axes", "LATENCY_WINDOW"]

F, B, S, I = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING, ParamType.INT

SCHEMA = (
    SITE_PARAM,
    ParamSpec("dial_layout_file", S, "", "dial layout YAML (docs/perception.md); '' = the "
              "site bundle's gauges.yaml"),
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
    ParamSpec("stale_timeout_s", F, 2.0, "/diagnostics warns when no frame was processed for "
              "this long", 0.1, 60.0, unit="s"),
)

#: latencies kept per pipeline (mean and p95 in /diagnostics)
LATENCY_WINDOW = 200
#: the pipelines timed, in the order /diagnostics lists them
PIPELINES = ("fiducials", "gauges", "frame")
#: distortion coefficient counts OpenCV accepts
_DISTORTION_SIZES = (0, 4, 5, 8, 12, 14)


class CameraInfoError(ValueError):
    """A camera_info that does not fit the image; :attr:`kind` names the problem (the skip
    counter it goes to)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def camera_intrinsics(k: Sequence[float], d: Sequence[float], info_size: tuple[int, int],
                      image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(K 3x3, distortion) of a camera_info (``k`` row-major, ``d``, ``info_size`` (width,
    height)) for an image of ``image_size``.

    :raises CameraInfoError: another size than the image's (``camera_info_mismatch``), K or
        D not finite or K not a camera matrix, an unknown number of distortion coefficients
        (``bad_camera_info``).
    """
    (iw, ih), (w, h) = info_size, image_size
    if int(iw) != w or int(ih) != h:
        raise CameraInfoError("camera_info_mismatch",
                              f"camera_info is {iw}x{ih} but the image is {w}x{h}")
    K = np.asarray(k, dtype=np.float64).reshape(3, 3)
    dist = np.asarray(d, dtype=np.float64).reshape(-1)
    if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1.0 \
            or not np.isfinite(dist).all():
        raise CameraInfoError("bad_camera_info", "camera_info K or D is not finite or not a "
                              f"camera matrix (K = {K.reshape(-1).tolist()})")
    if dist.size not in _DISTORTION_SIZES:
        raise CameraInfoError("bad_camera_info",
                              f"camera_info has {dist.size} distortion coefficients")
    return K, dist


@dataclass(frozen=True)
class TagResult:
    """A detected tag as published: the detection, the registry asset it marks ('' = none)
    and its pose in the base frame (4x4, through the camera mount)."""

    detection: TagDetection
    asset_id: str
    T_base_tag: np.ndarray


@dataclass(frozen=True)
class GaugeResult:
    """A gauge reading (valid or refused), the dial's pose in the camera frame (its tag's
    best pose) and a marker id stable per asset."""

    reading: GaugeReading
    T_cam_dial: np.ndarray
    marker_id: int

    @property
    def label(self) -> str:
        r = self.reading
        return (f"{r.asset_id}: {r.value:.3g} {r.unit} ({r.confidence:.2f})" if r.valid
                else f"{r.asset_id}: ? ({r.failure_reason})")

    @property
    def rgba(self) -> tuple[float, float, float, float]:
        """Green for a valid reading, orange for a refusal."""
        return (0.1, 1.0, 0.1, 1.0) if self.reading.valid else (1.0, 0.5, 0.0, 1.0)


def tag_axes(T_cam_tag: np.ndarray) -> list[np.ndarray]:
    """Three poses (4x4) at the tag whose x axes lie along the tag's x, y and z axes (for
    arrows, which point along their x)."""
    out = []
    for turn in (np.eye(3), np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]),
                 np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0.0]])):
        T = np.array(T_cam_tag, dtype=np.float64)
        T[:3, :3] = T[:3, :3] @ turn
        out.append(T)
    return out


class CameraPerception:
    """Tags and gauges of camera frames (see the module docstring); :attr:`monitor` keeps
    the node's skips and the pipelines' latencies."""

    def __init__(self, registry: Any, layouts: Mapping[str, DialLayout],
                 T_base_cam: np.ndarray, *, default_tag_size_m: float = 0.16,
                 pixel_noise_px: float = 0.5, tag_refine: str = "edges",
                 level_robot_prior: bool = True, gauge: GaugeReaderConfig | None = None
                 ) -> None:
        self.registry = registry
        self.layouts: dict[str, DialLayout] = dict(layouts)
        self.asset_of_tag = {a.fiducial: a.id for a in registry.assets
                             if a.fiducial is not None}
        self.detector = detector_for_registry(registry, default_tag_size_m,
                                              pixel_noise_px=pixel_noise_px, refine=tag_refine)
        self.T_base_cam = np.asarray(T_base_cam, dtype=np.float64)
        if level_robot_prior:      # a level robot, vertical tags: the tag's up is the base's
            self.detector.up_hint_cam = self.T_base_cam[:3, :3].T @ np.array([0.0, 0.0, 1.0])
        self.reader = GaugeReader(gauge)
        self._marker_ids = {a: i for i, a in enumerate(sorted(self.layouts))}
        self.last_gauge_s = -math.inf
        self.monitor = InputMonitor(LATENCY_WINDOW, PIPELINES)

    @classmethod
    def from_params(cls, p: Mapping[str, Any], registry: Any,
                    layouts: Mapping[str, DialLayout]) -> "CameraPerception":
        """Built from the node's parameters (:data:`SCHEMA`); the mount from the URDF."""
        T = camera_mount(base_frame=p["base_frame"], camera_frame=p["camera_frame"])
        return cls(registry, layouts, T, default_tag_size_m=p["default_tag_size_m"],
                   pixel_noise_px=p["pixel_noise_px"], tag_refine=p["tag_refine"],
                   level_robot_prior=p["level_robot_prior"],
                   gauge=GaugeReaderConfig(crop_px=p["gauge_crop_px"],
                                           min_radius_px=p["gauge_min_radius_px"],
                                           min_confidence=p["gauge_min_confidence"]))

    def detect(self, image: np.ndarray, K: np.ndarray, dist: np.ndarray) -> list[TagResult]:
        """The tags in one frame, with their asset and base-frame pose."""
        t = time.perf_counter()
        dets = self.detector.detect(image, K, dist)
        self.monitor.add_latency("fiducials", 1e3 * (time.perf_counter() - t))
        return [TagResult(d, self.asset_of_tag.get(d.tag_id, ""), self.T_base_cam @ d.T_cam_tag)
                for d in dets]

    def read_gauges(self, image: np.ndarray, K: np.ndarray, tags: Sequence[TagResult],
                    dist: np.ndarray, now_s: float, rate_hz: float) -> list[GaugeResult]:
        """The gauges whose tags are among ``tags`` (nothing when no tag or no layout, or
        when gauges were read less than 1 / ``rate_hz`` before ``now_s``)."""
        if not (self.layouts and tags and due(self.last_gauge_s, now_s, rate_hz)):
            return []
        self.last_gauge_s = now_s
        dets = [tag.detection for tag in tags]
        t = time.perf_counter()
        readings = self.reader.read_all(image, K, dets, self.layouts, dist)
        self.monitor.add_latency("gauges", 1e3 * (time.perf_counter() - t))
        by_tag = {d.tag_id: d for d in dets}
        out = []
        for r in readings:
            lay = self.layouts[r.asset_id]
            out.append(GaugeResult(r, by_tag[lay.tag_id].T_cam_tag @ lay.T_tag_dial,
                                   self._marker_ids[r.asset_id]))
        return out


def camera_diagnostic(monitor: InputMonitor, processed: int, frame_age_s: float,
                      stale_timeout_s: float = 2.0) -> Diagnostic:
    """The node's status: WARN when no frame was processed for ``stale_timeout_s`` (or
    ever: ``frame_age_s`` infinite) or frames were skipped for bad input; frame counts,
    skips per reason and latency mean and p95 per pipeline."""
    skipped = sum(v for k, v in monitor.skipped.items() if k != "throttled")
    if not math.isfinite(frame_age_s) or frame_age_s > stale_timeout_s:
        level = DiagnosticLevel.WARN
        message = f"no frame processed in the last {stale_timeout_s:g} s"
    elif skipped:
        level, message = DiagnosticLevel.WARN, f"{skipped} frames skipped (bad input)"
    else:
        level, message = DiagnosticLevel.OK, "ok"
    values = [("frames_processed", str(processed)), ("frames_skipped", str(skipped)),
              ("frames_throttled", str(monitor.skipped.get("throttled", 0)))]
    values += [(f"skipped_{k}", str(v)) for k, v in sorted(monitor.skipped.items())
               if k != "throttled"]
    for name, lat in monitor.latency.items():
        values += [(f"{name}_latency_mean_ms", f"{lat.mean():.2f}"),
                   (f"{name}_latency_p95_ms", f"{lat.p95():.2f}")]
    return Diagnostic("camera pipelines", level, message, tuple(values))
