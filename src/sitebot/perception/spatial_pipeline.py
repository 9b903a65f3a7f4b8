"""The spatial perception core: what the ``spatial_perception`` node runs, without ROS.

:class:`SpatialPerception` keeps the robot's odom pose (wheel odometry), the map <- odom
offset (from the localization filter's map pose, or an initial map pose), the latest depth
frame's obstacles, the rolling local map and the people tracker. The node feeds it decoded
messages and publishes what it returns; the evaluation and the benchmarks drive it directly.

Frames: ``base`` (base_footprint), ``odom`` (tracking and the local map: continuous, no
jumps), ``map`` (people output for the supervisor; the static occupancy grid).
"""
from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sitebot.config.checks import check_ranges
from sitebot.perception.cloud import CloudConfig, CloudPipeline, CloudResult, camera_fov_check
from sitebot.perception.localmap import LocalMap, LocalMapConfig
from sitebot.perception.monitor import InputMonitor
from sitebot.perception.people import (DepthView, Detection, DetectorConfig, PeopleTracker,
                                       PersonDetector, StaticMap, Track, TrackerConfig, scan_points,
                                       transform_state)
from sitebot.types import Diagnostic, DiagnosticLevel, Pose2D, se2_apply, se2_compose, se2_inverse

__all__ = ["SpatialConfig", "SpatialPerception", "PersonOut", "ScanOutput",
           "UNOBSERVED_VARIANCE", "spatial_diagnostic", "WATCHED_INPUTS"]

#: the inputs /diagnostics reports stale when they stop
WATCHED_INPUTS = ("scan", "odom", "depth")

#: variance published for what the tracker does not estimate (height, rotation; vz, rates)
UNOBSERVED_VARIANCE = 1e6


@dataclass(frozen=True)
class SpatialConfig:
    cloud: CloudConfig = field(default_factory=CloudConfig)
    local_map: LocalMapConfig = field(default_factory=LocalMapConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    depth_max_age_s: float = 0.6
    camera_max_range_m: float = 5.5
    static_margin_m: float = 0.15
    #: cell size of the world's static occupancy grid the people detector checks against
    static_map_resolution_m: float = 0.1
    #: a person's published heading is their walking direction above this speed, else 0
    person_heading_min_speed_mps: float = 0.05

    def __post_init__(self) -> None:
        check_ranges(self, (("depth_max_age_s", 0.0, 5.0), ("camera_max_range_m", 0.1, 50.0),
                            ("static_margin_m", 0.0, 1.0), ("static_map_resolution_m", 0.01, 1.0),
                            ("person_heading_min_speed_mps", 0.0, 10.0)))


@dataclass(frozen=True)
class PersonOut:
    """A confirmed track in the output frame: position, velocity, 4x4 covariance of
    (x, y, vx, vy), confidence."""

    id: int
    x: float
    y: float
    vx: float
    vy: float
    cov: np.ndarray
    confidence: float

    def heading(self, min_speed_mps: float) -> float:
        """Walking direction [rad]; 0 when not faster than ``min_speed_mps``."""
        return math.atan2(self.vy, self.vx) if math.hypot(self.vx, self.vy) > min_speed_mps \
            else 0.0

    def pose_covariance(self) -> np.ndarray:
        """6x6 covariance of (x, y, z, roll, pitch, yaw): x, y from the track, the heading
        unknown (pi^2), the rest unobserved."""
        pc = np.zeros((6, 6))
        pc[:2, :2] = self.cov[:2, :2]
        pc[2, 2] = pc[3, 3] = pc[4, 4] = UNOBSERVED_VARIANCE
        pc[5, 5] = math.pi ** 2
        return pc

    def twist_covariance(self) -> np.ndarray:
        """6x6 covariance of (vx, vy, vz, wx, wy, wz): vx, vy from the track."""
        tc = np.zeros((6, 6))
        tc[:2, :2] = self.cov[2:, 2:]
        tc[2, 2] = tc[3, 3] = tc[4, 4] = tc[5, 5] = UNOBSERVED_VARIANCE
        return tc


@dataclass
class ScanOutput:
    detections: list[Detection]
    people: list[PersonOut]
    frame: str
    timings_ms: dict[str, float]


class SpatialPerception:
    """Depth + scan + odometry in, clusters, local map and tracked people out."""

    def __init__(self, config: SpatialConfig, T_base_cam: np.ndarray,
                 laser_pose_base: Sequence[float], static_grid=None,
                 initial_map_pose: Sequence[float] | None = None) -> None:
        self.config = config
        self.T_base_cam = np.asarray(T_base_cam, dtype=np.float64)
        self.laser = Pose2D.of(laser_pose_base)                 # the laser in base
        self.cloud = CloudPipeline(config.cloud, self.T_base_cam)
        self.local_map = LocalMap(config.local_map)
        self.detector = PersonDetector(config.detector)
        self.tracker = PeopleTracker(config.tracker)
        # the grid is expected inflated by static_margin_m (world.occupancy_grid(res, margin))
        self.static = StaticMap(static_grid) if static_grid is not None else None
        # map <- odom: from the initial map pose (odom starts at the origin) until a
        # localization pose arrives
        self.map_from_odom: Pose2D | None = \
            Pose2D.of(initial_map_pose) if initial_map_pose is not None else None
        self.map_pose_seen = False                # a localization map pose arrived
        self._odom_t: list[float] = []
        self._odom_pose: list[Pose2D] = []
        self._depth: tuple | None = None          # (t, points_odom, mins_odom, maxs_odom, base_pose)
        self.last_cloud: CloudResult | None = None
        self.counts = {"depth": 0, "scan": 0, "odom": 0}

    # ------------------------------------------------------------------ poses
    def on_odom(self, t_s: float, x: float, y: float, yaw: float) -> None:
        if not all(math.isfinite(v) for v in (t_s, x, y, yaw)):
            raise ValueError(f"odometry not finite: t={t_s}, x={x}, y={y}, yaw={yaw}")
        if self._odom_t and t_s < self._odom_t[-1]:
            self._odom_t.clear()
            self._odom_pose.clear()
        self._odom_t.append(t_s)
        self._odom_pose.append(Pose2D(x, y, yaw))
        if len(self._odom_t) > 200:
            del self._odom_t[:100], self._odom_pose[:100]
        self.counts["odom"] += 1

    def odom_pose(self, t_s: float | None = None) -> Pose2D:
        """The base's odom pose nearest to ``t_s`` (latest if None; origin if none yet)."""
        if not self._odom_t:
            return Pose2D(0.0, 0.0, 0.0)
        if t_s is None:
            return self._odom_pose[-1]
        i = bisect.bisect_left(self._odom_t, t_s)
        if i <= 0:
            return self._odom_pose[0]
        if i >= len(self._odom_t):
            return self._odom_pose[-1]
        return self._odom_pose[i] if self._odom_t[i] - t_s < t_s - self._odom_t[i - 1] \
            else self._odom_pose[i - 1]

    def on_map_pose(self, t_s: float, x: float, y: float, yaw: float) -> None:
        """The base's map pose at ``t_s`` (localization): updates map <- odom."""
        if not all(math.isfinite(v) for v in (t_s, x, y, yaw)):
            raise ValueError(f"map pose not finite: x={x}, y={y}, yaw={yaw}")
        odom = self.odom_pose(t_s)
        self.map_from_odom = se2_compose((x, y, yaw), se2_inverse(odom))
        self.map_pose_seen = True

    # ------------------------------------------------------------------ depth
    def on_depth(self, depth_m: np.ndarray, K: np.ndarray, t_s: float,
                 T_base_cam: np.ndarray | None = None) -> CloudResult:
        """One depth frame: clusters (base frame); remembers its obstacles (odom frame) for
        the people detector and adds them to the local map. ``T_base_cam``: the camera
        mount of this frame (default: the last one given)."""
        if T_base_cam is not None:
            self.T_base_cam = np.asarray(T_base_cam, dtype=np.float64)
            self.cloud.T_base_cam = self.T_base_cam
        res = self.cloud.process(depth_m, K)
        pose = self.odom_pose(t_s)
        pts = res.obstacle_points
        xy = se2_apply(pose, pts[:, :2]) if len(pts) else np.zeros((0, 2))
        pts_odom = np.column_stack([xy, pts[:, 2]]) if len(pts) else np.zeros((0, 3))
        cl = res.clusters
        if len(cl):
            # boxes stay axis-aligned in base; their corners are re-boxed in odom
            mins, maxs = _rebox(cl.mins, cl.maxs, pose)
        else:
            mins = maxs = np.zeros((0, 3))
        cand = np.asarray(self.detector.depth_candidates_from_cloud(pts, cl),
                          dtype=np.float64).reshape(-1, 2)
        cand_odom = se2_apply(pose, cand) if len(cand) else cand
        h, w = depth_m.shape
        self._depth = (t_s, pts_odom, mins, maxs, pose, np.asarray(K, float).reshape(3, 3), w, h,
                       cand_odom)
        t0 = time.perf_counter()
        self.local_map.follow(pose[0], pose[1])
        self.local_map.update_points(pts_odom, t_s)
        res.timings_ms["local_map_ms"] = (time.perf_counter() - t0) * 1e3
        self.last_cloud = res
        self.counts["depth"] += 1
        return res

    def _depth_view(self, t_s: float, pose: Pose2D) -> DepthView | None:
        if self._depth is None:
            return None
        td, pts_odom, mins, maxs, dpose, K, w, h, cand_odom = self._depth
        if abs(t_s - td) > self.config.depth_max_age_s:
            return None
        inv = se2_inverse(pose)
        pts = np.column_stack([se2_apply(inv, pts_odom[:, :2]), pts_odom[:, 2]]) \
            if len(pts_odom) else np.zeros((0, 3))
        if len(mins):
            bmins, bmaxs = _rebox(mins, maxs, inv)
        else:
            bmins = bmaxs = np.zeros((0, 3))
        # visible: project through the camera as it was at the depth frame
        rel = se2_compose(se2_inverse(dpose), pose)       # current base in the depth base
        T = self.T_base_cam
        rng = self.config.camera_max_range_m

        def visible(xy_base: np.ndarray) -> np.ndarray:
            return camera_fov_check(T, K, w, h, se2_apply(rel, xy_base), 1.0, rng)
        cand = se2_apply(inv, cand_odom) if len(cand_odom) else cand_odom
        return DepthView(pts, bmins, bmaxs, visible, cand)

    # ------------------------------------------------------------------ scan
    def on_scan(self, ranges: np.ndarray, angle_min: float, angle_increment: float,
                range_min: float, range_max: float, t_s: float,
                expected_beams: int | None = None,
                laser_pose: Sequence[float] | None = None) -> ScanOutput:
        """One scan: local map, person detections, tracks (output in the map frame when
        map <- odom is known, else odom). ``laser_pose``: the laser in the base frame for
        this scan (default: the last one given)."""
        t0 = time.perf_counter()
        if laser_pose is not None:
            self.laser = Pose2D.of(laser_pose)
        r = np.asarray(ranges, dtype=np.float64)
        xy_l, idx, rr = scan_points(r, angle_min, angle_increment, range_min, range_max,
                                    expected_beams=expected_beams)
        pose = self.odom_pose(t_s)
        laser_odom = se2_compose(pose, self.laser)
        t1 = time.perf_counter()
        self.local_map.follow(pose[0], pose[1])
        angles = angle_min + angle_increment * np.arange(len(r))
        self.local_map.update_scan(laser_odom, r, angles, range_min, range_max, t_s)
        t2 = time.perf_counter()
        xy_b = se2_apply(self.laser, xy_l)
        cand, feats = self.detector.scan_candidates(xy_b, idx, rr, len(r), angle_increment,
                                                    self.laser[:2])
        view = self._depth_view(t_s, pose)
        static_ok = None
        if self.static is not None and self.map_from_odom is not None:
            m_base = se2_compose(self.map_from_odom, pose)
            grid = self.static
            static_ok = lambda xy_base: ~grid.occupied(se2_apply(m_base, xy_base))  # noqa: E731
        dets_base = self.detector.detect(cand, feats, view, static_ok)
        dets = []
        for d in dets_base:
            ox, oy = se2_apply(pose, np.array([[d.x, d.y]]))[0]
            dets.append(Detection(float(ox), float(oy), d.sigma_m, d.score, d.source))
        t3 = time.perf_counter()
        tracks = self.tracker.update(dets, t_s)
        people, frame = self.people_out(tracks)
        t4 = time.perf_counter()
        self.counts["scan"] += 1
        return ScanOutput(dets, people, frame,
                          {"scan_prep_ms": (t1 - t0) * 1e3, "local_map_ms": (t2 - t1) * 1e3,
                           "people_detect_ms": (t3 - t2) * 1e3, "tracking_ms": (t4 - t3) * 1e3,
                           "people_ms": (t4 - t2) * 1e3, "total_ms": (t4 - t0) * 1e3})

    def people_out(self, tracks: Sequence[Track]) -> tuple[list[PersonOut], str]:
        """Confirmed tracks (odom) in the map frame if map <- odom is known, else odom."""
        tf = self.map_from_odom
        out = [_person(t.id, *transform_state(tf if tf is not None else (0.0, 0.0, 0.0),
                                              t.x, t.P), min(1.0, t.score)) for t in tracks]
        return out, "map" if tf is not None else "odom"

    def people_in_base(self, people: Sequence[PersonOut], frame: str,
                       t_s: float | None = None) -> list[PersonOut]:
        """People of :meth:`people_out` (in ``frame``: map or odom) in the base frame at
        ``t_s`` (positions, velocities and covariances)."""
        pose = self.odom_pose(t_s)
        if frame == "map" and self.map_from_odom is not None:
            pose = se2_compose(self.map_from_odom, pose)
        inv = se2_inverse(pose)
        return [_person(p.id, *transform_state(inv, np.array([p.x, p.y, p.vx, p.vy]), p.cov),
                        p.confidence) for p in people]

    def people_for_output(self, out: ScanOutput, t_s: float, frame: str = "map"
                          ) -> tuple[list[PersonOut], str]:
        """The people of one scan (stamped ``t_s``) to publish, and their frame: ``"map"``
        when asked for (``frame``) and a map pose is known, else ``"base"``. Never odom:
        the safety supervisor takes any frame but map as the base frame."""
        if frame == "base" or out.frame != "map":
            return self.people_in_base(out.people, out.frame, t_s), "base"
        return out.people, "map"


def _person(pid: int, x: np.ndarray, P: np.ndarray, confidence: float) -> PersonOut:
    return PersonOut(pid, float(x[0]), float(x[1]), float(x[2]), float(x[3]), P,
                     float(confidence))


def _rebox(mins: np.ndarray, maxs: np.ndarray, pose: Sequence[float]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned boxes moved by an SE(2) pose, re-boxed around their moved corners."""
    corners = np.stack([np.column_stack([mins[:, 0], mins[:, 1]]),
                        np.column_stack([mins[:, 0], maxs[:, 1]]),
                        np.column_stack([maxs[:, 0], mins[:, 1]]),
                        np.column_stack([maxs[:, 0], maxs[:, 1]])], axis=1)   # K, 4, 2
    moved = se2_apply(pose, corners.reshape(-1, 2)).reshape(-1, 4, 2)
    lo = np.column_stack([moved.min(axis=1), mins[:, 2]])
    hi = np.column_stack([moved.max(axis=1), maxs[:, 2]])
    return lo, hi


def spatial_diagnostic(core: SpatialPerception, monitor: InputMonitor, now_s: float,
                       stale_timeout_s: float, people_frame: str) -> Diagnostic:
    """The node's status: WARN naming the inputs (scan, odom, depth) not seen for
    ``stale_timeout_s``; latency mean and max per pipeline, frames per input, skipped inputs
    per kind, people tracked, the frame people were last published in, where the map pose
    comes from."""
    stale = monitor.stale(WATCHED_INPUTS, now_s, stale_timeout_s)
    values = []
    for k in sorted(monitor.latency):
        lat = monitor.latency[k]
        if len(lat):
            values += [(f"latency_{k}_mean", f"{lat.mean():.2f}"),
                       (f"latency_{k}_max", f"{lat.max():.2f}")]
    values += [(f"frames_{k}", str(n)) for k, n in sorted(core.counts.items())]
    values += [(f"skipped_{k}", str(n)) for k, n in sorted(monitor.skipped.items())]
    source = ("odometry/filtered" if core.map_pose_seen else "odom + initial map pose"
              if core.map_from_odom is not None else "none")
    values += [("people_tracked", str(len(core.tracker.confirmed()))),
               ("people_frame", people_frame), ("map_pose_source", source)]
    return Diagnostic("spatial perception",
                      DiagnosticLevel.WARN if stale else DiagnosticLevel.OK,
                      ("stale or missing: " + ", ".join(stale)) if stale else "ok",
                      tuple(values))
