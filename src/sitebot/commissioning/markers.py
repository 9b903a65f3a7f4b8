"""The marker survey (no ROS): every AprilTag seen during a survey drive gets a map pose with
a covariance, fused over all its sightings and placed by the optimised trajectory; the
result becomes draft ``markers`` of the site registry (:mod:`sitebot.site.registry`).

Method
------
1. **Poses for images.** The map build optimises keyframe poses; images fall between
   keyframes.  :class:`CorrectedPoses` gives any stamp the odometry pose corrected by the
   keyframes around it: each keyframe's correction ``map_k (+) inverse(odom_k)`` applied to
   the odometry at the stamp, the two neighbours' predictions blended linearly in time
   (exact at every keyframe; before the first / after the last keyframe the nearest
   keyframe's correction).
2. **Sightings.** :class:`~sitebot.perception.fiducials.FiducialDetector` finds the tags
   in each image (the flip of a small square resolved towards "up" through the camera
   mount); each detection goes into the map through the camera mount and the corrected
   robot pose (:func:`~sitebot.perception.fiducials.pose_in_map`).  The marker model is
   the registry's: the face looks horizontally along ``yaw``; a sighting's yaw is that of
   the face normal, its covariance over (x, y, z, yaw) is the detector's (pixel noise
   through the corners' Jacobian, rotated into the map) plus the robot pose's uncertainty
   (``robot_sigma_xy_m``, ``robot_sigma_yaw_rad``) carried through the lever arm robot ->
   tag.  Poor sightings are refused with a reason (:class:`MarkerSurveyConfig`): too
   small, too oblique, ambiguous, far, tilted away from vertical, badly reprojected.
3. **Fusion.** Per tag, information-weighted least squares over (x, y, z, yaw), the yaw
   residuals wrapped onto the circle, started from the component-wise median (the yaw's
   circular median).  Outliers are gated by their Mahalanobis distance with a robust
   scale (the median distance over all sightings against the chi-square median), iterated
   until the inlier set settles.  The fused covariance is the inverse information,
   inflated by the inliers' variance of unit weight when they scatter more than their
   covariances say, plus a floor (``floor_*``: the map and the camera mount are errors
   every sighting shares, which no number of sightings averages away).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sitebot.bag import typestore
from sitebot.commissioning.survey import CAMERA_INFO_TOPIC, COMPRESSED_TOPIC, IMAGE_TOPIC
from sitebot.errors import SitebotError
from sitebot.perception.fiducials import FiducialDetector, TagDetection, pose_in_map
from sitebot.types import Pose2D, se2_compose, se2_inverse, wrap_angle

__all__ = ["MarkerSurveyConfig", "CameraInfo", "CameraFrames", "Sighting", "MarkerEstimate",
           "CorrectedPoses", "corrected_poses", "read_camera_frames", "collect_sightings",
           "fuse_sightings", "survey_markers", "markers_document"]

_COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
_RAW_TYPE = "sensor_msgs/msg/Image"
_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
#: distortion models OpenCV's standard model covers
_DISTORTION_MODELS = ("", "plumb_bob", "rational_polynomial")
#: median of the chi-square distribution with 4 degrees of freedom
_CHI2_4_MEDIAN = 3.3567


# ---------------------------------------------------------------------------------------
# configuration and values
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MarkerSurveyConfig:
    """Parameters of the marker survey (metres, radians, degrees where named ``_deg``).

    Sighting gates: a detection is refused when its black square's mean edge is under
    ``min_side_px``, the camera sees its face more than ``max_obliquity_deg`` off the
    normal, the planar-pose ``ambiguity`` (best / second-best reprojection error, 1 = the
    mirror pose fits as well) exceeds ``max_ambiguity``, it is farther than
    ``max_distance_m``, its face normal is more than ``max_tilt_deg`` off horizontal (the
    marker model is a vertical face), or its RMS reprojection error exceeds
    ``max_reprojection_px``.  Fusion: ``gate_chi2`` is the Mahalanobis gate (squared, over
    4 degrees of freedom; 18.47 = 99.9 %) before the robust scale; a tag needs
    ``min_sightings`` accepted sightings to be reported."""
    min_side_px: float = 20.0
    max_obliquity_deg: float = 60.0
    max_ambiguity: float = 0.8
    max_distance_m: float = 5.0
    max_tilt_deg: float = 15.0
    max_reprojection_px: float = 1.5
    pixel_noise_px: float = 0.5
    robot_sigma_xy_m: float = 0.02
    robot_sigma_yaw_rad: float = math.radians(0.5)
    gate_chi2: float = 18.47
    max_iterations: int = 20
    min_sightings: int = 2
    floor_xy_m: float = 0.005
    floor_z_m: float = 0.005
    floor_yaw_rad: float = math.radians(0.25)

    def __post_init__(self) -> None:
        positive = ("min_side_px", "max_obliquity_deg", "max_distance_m", "max_tilt_deg",
                    "max_reprojection_px", "pixel_noise_px", "gate_chi2")
        for name in positive + ("max_ambiguity", "robot_sigma_xy_m", "robot_sigma_yaw_rad",
                                "floor_xy_m", "floor_z_m", "floor_yaw_rad"):
            v, strict = getattr(self, name), name in positive
            if not (math.isfinite(v) and (v > 0 if strict else v >= 0)):
                raise ValueError(f"MarkerSurveyConfig.{name} must be {'>' if strict else '>='} "
                                 f"0, got {v!r}")
        if self.min_sightings < 1 or self.max_iterations < 1:
            raise ValueError("MarkerSurveyConfig.min_sightings and max_iterations must be "
                             f">= 1, got {self.min_sightings} and {self.max_iterations}")


@dataclass(frozen=True)
class CameraInfo:
    """What the survey needs of ``sensor_msgs/CameraInfo``: ``K`` (3x3), ``D`` (OpenCV
    order), the optical frame's id and the image size [px]."""
    K: np.ndarray = field(repr=False)
    D: np.ndarray = field(repr=False)
    frame_id: str
    width: int
    height: int


@dataclass(frozen=True)
class Sighting:
    """One accepted detection of ``tag`` at stamp ``t`` [s]: ``mean`` (x, y, z, yaw of the
    face normal) in the map and its 4x4 ``covariance`` (detector + robot pose)."""
    tag: int
    t: float
    size_m: float
    mean: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    distance_m: float = 0.0
    side_px: float = 0.0


@dataclass(frozen=True)
class MarkerEstimate:
    """A surveyed marker: AprilTag ``tag`` with black-square edge ``size_m``, its face centred
    at (x, y, z) [m] looking horizontally along ``yaw`` [rad]; ``covariance`` 4x4 over
    (x, y, z, yaw); ``sightings`` fused, ``rejected`` refused (``reasons``: how many for
    each reason: small, oblique, ambiguous, far, tilted, reprojection, outlier)."""
    tag: int
    size_m: float
    x: float
    y: float
    z: float
    yaw: float
    covariance: np.ndarray = field(repr=False)
    sightings: int
    rejected: int
    reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def std(self) -> tuple[float, float, float, float]:
        """1-sigma of (x, y, z, yaw) [m, m, m, rad]."""
        d = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        return (float(d[0]), float(d[1]), float(d[2]), float(d[3]))


# ---------------------------------------------------------------------------------------
# poses for image stamps
# ---------------------------------------------------------------------------------------
class CorrectedPoses:
    """Map poses at any stamp: odometry corrected by the optimised keyframes (module doc,
    step 1).  Call it with a stamp [s]: a :class:`~sitebot.types.Pose2D`, or None outside
    the odometry's time span.

    :param odom: (N, 4) rows t, x, y, yaw of the odometry (N >= 2; sorted here, yaw
        unwrapped here).
    :param keyframes: [(t, map pose)] of the optimised trajectory (``MapResult.trajectory``);
        keyframes outside the odometry's span are ignored.
    :raises ValueError: too little odometry, or no keyframe within it.
    """

    def __init__(self, odom: np.ndarray | Sequence[Sequence[float]],
                 keyframes: Iterable[tuple[float, Sequence[float]]]) -> None:
        o = np.asarray(odom, dtype=np.float64).reshape(-1, 4)
        o = o[np.argsort(o[:, 0], kind="stable")]
        if len(o) < 2 or not np.isfinite(o).all():
            raise ValueError(f"odometry needs >= 2 finite rows (t, x, y, yaw), got {len(o)}")
        o[:, 3] = np.unwrap(o[:, 3])
        self._odom = o
        kfs = sorted((float(t), Pose2D.of(p)) for t, p in keyframes)
        kfs = [(t, p) for t, p in kfs if o[0, 0] <= t <= o[-1, 0]]
        if not kfs:
            raise ValueError(f"no keyframe lies within the odometry's time span "
                             f"[{o[0, 0]:.3f}, {o[-1, 0]:.3f}] s")
        self._kt = np.array([t for t, _ in kfs])
        self._corr = [se2_compose(p, se2_inverse(self._odom_at(t))) for t, p in kfs]

    def _odom_at(self, t: float) -> Pose2D:
        o = self._odom
        return Pose2D(float(np.interp(t, o[:, 0], o[:, 1])),
                      float(np.interp(t, o[:, 0], o[:, 2])),
                      float(np.interp(t, o[:, 0], o[:, 3])))

    @property
    def span(self) -> tuple[float, float]:
        """(first, last) odometry stamp [s]."""
        return float(self._odom[0, 0]), float(self._odom[-1, 0])

    def __call__(self, t: float) -> Pose2D | None:
        t = float(t)
        if not (self._odom[0, 0] <= t <= self._odom[-1, 0]):
            return None
        o = self._odom_at(t)
        kt = self._kt
        j = int(np.searchsorted(kt, t, side="right"))       # kt[j-1] <= t < kt[j]
        if j == 0 or j == len(kt):
            p = se2_compose(self._corr[0 if j == 0 else -1], o)
            return Pose2D(p.x, p.y, wrap_angle(p.yaw))
        a = se2_compose(self._corr[j - 1], o)
        b = se2_compose(self._corr[j], o)
        s = (t - kt[j - 1]) / (kt[j] - kt[j - 1])
        return Pose2D(a.x + s * (b.x - a.x), a.y + s * (b.y - a.y),
                      wrap_angle(a.yaw + s * wrap_angle(b.yaw - a.yaw)))


def corrected_poses(odom: np.ndarray | Sequence[Sequence[float]],
                    keyframes: Iterable[tuple[float, Sequence[float]]]) -> CorrectedPoses:
    """The pose look-up ``t -> Pose2D | None`` of :class:`CorrectedPoses`."""
    return CorrectedPoses(odom, keyframes)


# ---------------------------------------------------------------------------------------
# camera images from a bag
# ---------------------------------------------------------------------------------------
def _stamp(msg: Any, t_ns: int) -> float:
    st = msg.header.stamp
    return st.sec + st.nanosec * 1e-9 if (st.sec or st.nanosec) else t_ns * 1e-9


def _raw_image(msg: Any, where: str) -> np.ndarray:
    enc = str(msg.encoding).lower()
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1, "8uc1": 1, "rgba8": 4, "bgra8": 4}
    if enc not in channels:
        raise SitebotError(f"{where}: image encoding {msg.encoding!r} is not supported "
                           f"(accepted: {', '.join(channels)})")
    h, w, c = int(msg.height), int(msg.width), channels[enc]
    data = np.frombuffer(bytes(msg.data), np.uint8)
    step = int(msg.step) or w * c
    if data.size < h * step or step < w * c:
        raise SitebotError(f"{where}: image data holds {data.size} bytes, {h} rows of step "
                           f"{step} need {h * step} (width {w} x {c} channel(s))")
    img = data[:h * step].reshape(h, step)[:, :w * c].reshape(h, w, c)
    if c == 1:
        return img[:, :, 0].copy()
    if enc.startswith("rgb"):
        return np.ascontiguousarray(img[:, :, 2::-1])
    return np.ascontiguousarray(img[:, :, :3])


class CameraFrames:
    """The camera images of a survey bag, streamed: iterating yields (t [s], image) with the
    image BGR uint8 (H, W, 3) or grey (H, W), one message at a time.  ``info`` is the
    first ``/camera/camera_info``; ``count`` the image messages in the bag; ``skipped``
    counts images that would not decode (after an iteration)."""

    def __init__(self, bag: Path, topic: str, msgtype: str, info: CameraInfo,
                 count: int) -> None:
        self.bag, self.topic, self.msgtype, self.info, self.count = bag, topic, msgtype, info, count
        self.skipped = 0

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        from rosbags.rosbag2 import Reader
        ts = typestore()
        where = f"{self.bag}: {self.topic}"
        self.skipped = 0
        with Reader(self.bag) as r:
            conns = [c for c in r.connections if c.topic == self.topic]
            for conn, t_ns, data in r.messages(connections=conns):
                msg = ts.deserialize_cdr(data, conn.msgtype)
                if self.msgtype == _COMPRESSED_TYPE:
                    img = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8),
                                       cv2.IMREAD_COLOR)
                    if img is None:
                        self.skipped += 1
                        continue
                else:
                    img = _raw_image(msg, where)
                yield _stamp(msg, t_ns), img


def read_camera_frames(bag: str | Path) -> CameraFrames:
    """The camera images of a rosbag2 folder (MCAP or SQLite): ``sensor_msgs/CompressedImage``
    on :data:`COMPRESSED_TOPIC` (PNG or JPEG), else ``sensor_msgs/Image`` (rgb8, bgr8,
    mono8, rgba8, bgra8) on :data:`IMAGE_TOPIC`, with ``sensor_msgs/CameraInfo`` on
    :data:`CAMERA_INFO_TOPIC`.  Stamps are the header's (the bag's receive time when it is zero).

    :raises SitebotError: not a bag; no images; no camera_info, an uncalibrated one (K of
        zeros) or a distortion model OpenCV's standard model does not cover; each naming
        the bag and the topics it has.
    """
    from rosbags.rosbag2 import Reader
    p = Path(bag)
    if not (p / "metadata.yaml").is_file():
        raise SitebotError(f"{p}: not a rosbag2 folder (no metadata.yaml)")
    with Reader(p) as r:
        have = {c.topic: c.msgtype for c in r.connections}
        counts = Counter()
        for c in r.connections:
            counts[c.topic] += c.msgcount
        listing = (", ".join(f"{t} ({m}, {counts[t]} messages)" for t, m in sorted(have.items()))
                   or "no topics")
        topic = next((t for t, typ in ((COMPRESSED_TOPIC, _COMPRESSED_TYPE),
                                       (IMAGE_TOPIC, _RAW_TYPE))
                      if have.get(t) == typ and counts[t] > 0), None)
        if topic is None:
            raise SitebotError(f"{p}: no camera images: the marker survey needs "
                               f"{_COMPRESSED_TYPE} on {COMPRESSED_TOPIC} or {_RAW_TYPE} on "
                               f"{IMAGE_TOPIC}; the bag has {listing}")
        if have.get(CAMERA_INFO_TOPIC) != _INFO_TYPE or counts[CAMERA_INFO_TOPIC] == 0:
            raise SitebotError(f"{p}: no camera calibration: the marker survey needs "
                               f"{_INFO_TYPE} on {CAMERA_INFO_TOPIC}; the bag has {listing}")
        conns = [c for c in r.connections if c.topic == CAMERA_INFO_TOPIC]
        msg = None
        for conn, _, data in r.messages(connections=conns):
            msg = typestore().deserialize_cdr(data, conn.msgtype)
            break
    assert msg is not None
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    D = np.asarray(msg.d, dtype=np.float64).reshape(-1)
    model = str(msg.distortion_model)
    where = f"{p}: {CAMERA_INFO_TOPIC}"
    if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0):
        raise SitebotError(f"{where}: the camera is not calibrated (K = {K.tolist()})")
    if np.any(D != 0) and (model not in _DISTORTION_MODELS or D.size not in (4, 5, 8, 12, 14)
                           or not np.isfinite(D).all()):
        raise SitebotError(f"{where}: distortion model {model!r} with {D.size} coefficients "
                           "is not supported (accepted: plumb_bob, rational_polynomial; 4, 5, "
                           "8, 12 or 14 finite coefficients)")
    info = CameraInfo(K, D if np.any(D != 0) else np.zeros(5), str(msg.header.frame_id),
                      int(msg.width), int(msg.height))
    return CameraFrames(p, topic, have[topic], info, counts[topic])


# ---------------------------------------------------------------------------------------
# sightings
# ---------------------------------------------------------------------------------------
def _refusal(det: TagDetection, normal_cam: np.ndarray, tilt: float,
             cfg: MarkerSurveyConfig) -> str | None:
    """Why a detection is not a good sighting, or None."""
    if det.side_px < cfg.min_side_px:
        return "small"
    if det.distance_m > cfg.max_distance_m:
        return "far"
    if det.reprojection_error_px > cfg.max_reprojection_px:
        return "reprojection"
    if det.ambiguity > cfg.max_ambiguity:
        return "ambiguous"
    ray = det.position / max(det.distance_m, 1e-9)
    # the face's outward normal points back at the camera: angle to the reversed ray
    if float(np.clip(-ray @ normal_cam, -1.0, 1.0)) < math.cos(math.radians(cfg.max_obliquity_deg)):
        return "oblique"
    if abs(tilt) > math.radians(cfg.max_tilt_deg):
        return "tilted"
    return None


def _sighting(det: TagDetection, T_base_cam: np.ndarray, pose: Pose2D, t: float,
              cfg: MarkerSurveyConfig) -> tuple[Sighting | None, str | None]:
    T_map_tag, cov6 = pose_in_map(det, T_base_cam, pose)
    normal = -T_map_tag[:3, 2]                        # outward face normal in the map
    tilt = math.asin(float(np.clip(normal[2], -1.0, 1.0)))
    why = _refusal(det, -det.T_cam_tag[:3, 2], tilt, cfg)
    if why is not None:
        return None, why
    p = T_map_tag[:3, 3]
    mean = np.array([p[0], p[1], p[2], math.atan2(normal[1], normal[0])])
    idx = [0, 1, 2, 5]                                # x, y, z, rotation about map z
    cov = cov6[np.ix_(idx, idx)].copy()
    # the robot pose's uncertainty, through the lever arm robot -> tag
    J = np.array([[1.0, 0.0, -(p[1] - pose.y)],
                  [0.0, 1.0, p[0] - pose.x],
                  [0.0, 0.0, 0.0],
                  [0.0, 0.0, 1.0]])
    S = np.diag([cfg.robot_sigma_xy_m ** 2, cfg.robot_sigma_xy_m ** 2,
                 cfg.robot_sigma_yaw_rad ** 2])
    cov = cov + J @ S @ J.T
    cov = 0.5 * (cov + cov.T)
    return Sighting(det.tag_id, t, det.size_m, mean, cov, det.distance_m, det.side_px), None


def collect_sightings(frames: Iterable[tuple[float, np.ndarray]], camera_info: Any,
                      T_base_cam: np.ndarray, pose_at: Callable[[float], Sequence[float] | None],
                      tag_size_m: float, sizes: Mapping[int, float] | None = None,
                      config: MarkerSurveyConfig = MarkerSurveyConfig(),
                      progress: Callable[[str, float], None] | None = None,
                      ) -> tuple[list[Sighting], dict[int, Counter]]:
    """(accepted sightings, refusals per tag by reason) of every tag in *frames* (step 2 of
    the module doc); frames whose stamp has no pose (``pose_at`` gives None) are skipped.
    Arguments as :func:`survey_markers`."""
    cfg = config
    T_base_cam = np.asarray(T_base_cam, dtype=np.float64)
    if T_base_cam.shape != (4, 4) or not np.isfinite(T_base_cam).all():
        raise ValueError(f"T_base_cam must be a finite 4x4 pose, got shape {T_base_cam.shape}")
    K = np.asarray(camera_info.K, dtype=np.float64)
    D = getattr(camera_info, "D", None)
    det = FiducialDetector(sizes, tag_size_m, pixel_noise_px=cfg.pixel_noise_px,
                           max_reprojection_px=max(3.0, cfg.max_reprojection_px))
    # the world's up in the optical frame: resolves a small square's flip towards upright
    det.up_hint_cam = T_base_cam[:3, :3].T @ np.array([0.0, 0.0, 1.0])
    total = len(frames) if hasattr(frames, "__len__") else 0
    out: list[Sighting] = []
    refused: dict[int, Counter] = {}
    for n, (t, image) in enumerate(frames):
        if progress and total and n % 50 == 0:
            progress("marker survey", n / total)
        pose = pose_at(t)
        if pose is None:
            continue
        pose = Pose2D.of(pose)
        for d in det.detect(image, K, D):
            s, why = _sighting(d, T_base_cam, pose, float(t), cfg)
            if s is not None:
                out.append(s)
            else:
                refused.setdefault(d.tag_id, Counter())[why] += 1
    if progress:
        progress("marker survey", 1.0)
    return out, refused


# ---------------------------------------------------------------------------------------
# fusion
# ---------------------------------------------------------------------------------------
def _circular_median(a: np.ndarray) -> float:
    """The sample angle with the least summed absolute wrapped distance to the others."""
    d = np.abs(np.remainder(a[:, None] - a[None, :] + math.pi, math.tau) - math.pi)
    return float(a[int(np.argmin(d.sum(axis=1)))])


def fuse_sightings(sightings: Sequence[Sighting],
                   config: MarkerSurveyConfig = MarkerSurveyConfig(),
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (x, y, z, yaw), 4x4 covariance, inlier mask) of one tag's sightings (step 3 of
    the module doc).

    :raises ValueError: no sightings.
    """
    if not sightings:
        raise ValueError("no sightings to fuse")
    cfg = config
    X = np.array([s.mean for s in sightings])
    W = np.linalg.inv(np.array([s.covariance for s in sightings]))
    est = np.array([*np.median(X[:, :3], axis=0), _circular_median(X[:, 3])])
    inl = np.ones(len(X), bool)

    def residuals(e: np.ndarray) -> np.ndarray:
        r = X - e
        r[:, 3] = np.remainder(r[:, 3] + math.pi, math.tau) - math.pi
        return r

    for _ in range(cfg.max_iterations):
        r = residuals(est)
        d2 = np.einsum("ni,nij,nj->n", r, W, r)
        scale = max(1.0, float(np.median(d2)) / _CHI2_4_MEDIAN)
        new = d2 <= cfg.gate_chi2 * scale
        if not new.any():
            new = d2 <= float(np.min(d2))
        H = W[new].sum(axis=0)
        step = np.linalg.solve(H, np.einsum("nij,nj->i", W[new], r[new]))
        est = est + step
        est[3] = wrap_angle(est[3])
        done = bool(np.array_equal(new, inl)) and float(np.abs(step).max()) < 1e-9
        inl = new
        if done:
            break
    r = residuals(est)[inl]
    H = W[inl].sum(axis=0)
    cov = np.linalg.inv(H)
    n = int(inl.sum())
    if n > 1:
        chi2 = float(np.einsum("ni,nij,nj->", r, W[inl], r))
        cov *= max(1.0, chi2 / (4.0 * (n - 1)))
    cov += np.diag([cfg.floor_xy_m ** 2, cfg.floor_xy_m ** 2, cfg.floor_z_m ** 2,
                    cfg.floor_yaw_rad ** 2])
    return est, 0.5 * (cov + cov.T), inl


def survey_markers(frames: Iterable[tuple[float, np.ndarray]], camera_info: Any,
                   T_base_cam: np.ndarray, pose_at: Callable[[float], Sequence[float] | None],
                   tag_size_m: float, sizes: Mapping[int, float] | None = None,
                   config: MarkerSurveyConfig = MarkerSurveyConfig(),
                   progress: Callable[[str, float], None] | None = None,
                   ) -> list[MarkerEstimate]:
    """Every tag seen in *frames* with a fused map pose, sorted by tag (module doc).

    :param frames: (t [s], image) pairs, e.g. :func:`read_camera_frames`; images BGR or
        grey uint8.
    :param camera_info: anything with ``K`` (3x3) and ``D`` (distortion, OpenCV order, or
        None), e.g. :class:`CameraInfo`.
    :param T_base_cam: 4x4 pose of the camera's optical frame in the robot's base frame
        (:func:`~sitebot.perception.fiducials.camera_mount` with the camera_info's frame).
    :param pose_at: the robot's map pose (x, y, yaw) at a stamp, None where unknown, e.g.
        :func:`corrected_poses`.
    :param tag_size_m: black-square edge [m] of tags not in *sizes*.
    :param sizes: black-square edge [m] by tag id.
    :param progress: called with (stage, fraction) now and then.
    :returns: one :class:`MarkerEstimate` per tag with at least ``config.min_sightings``
        accepted sightings.
    """
    found, refused = collect_sightings(frames, camera_info, T_base_cam, pose_at, tag_size_m,
                                       sizes, config, progress)
    by_tag: dict[int, list[Sighting]] = {}
    for s in found:
        by_tag.setdefault(s.tag, []).append(s)
    out = []
    for tag in sorted(by_tag):
        group = by_tag[tag]
        mean, cov, inl = fuse_sightings(group, config)
        reasons = Counter(refused.get(tag, Counter()))
        if (~inl).any():
            reasons["outlier"] += int((~inl).sum())
        if int(inl.sum()) < config.min_sightings:
            continue
        out.append(MarkerEstimate(tag, group[0].size_m, *(float(v) for v in mean), cov,
                                  int(inl.sum()), sum(reasons.values()), dict(reasons)))
    return out


def markers_document(estimates: Iterable[MarkerEstimate]) -> list[dict[str, Any]]:
    """The registry's ``markers`` entries for *estimates* (sorted by tag), marked as drafts
    with their 1-sigma stds and sighting counts (metres to 0.1 mm, radians to 1e-4)."""
    out = []
    for e in sorted(estimates, key=lambda e: e.tag):
        out.append({"tag": int(e.tag), "size": round(float(e.size_m), 4),
                    "pose": [round(e.x, 4), round(e.y, 4), round(e.z, 4),
                             round(wrap_angle(e.yaw), 4)],
                    "draft": True, "std": [round(v, 4) for v in e.std],
                    "sightings": int(e.sightings)})
    return out
