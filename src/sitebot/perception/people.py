"""People: detection from lidar segments and depth clusters, and a multi-target tracker.

No ROS here; time is an argument. Pipeline per scan (docs/perception_spatial.md):

1. :func:`scan_points` + :func:`segment_scan`: valid beams to points, split into segments
   where consecutive points jump by more than ``max(segment_gap_m, k * r * dtheta)``.
2. :func:`segment_features` + :class:`SegmentClassifier`: a geometric (learning-free)
   classifier. A person's torso (or a leg) is a *circular arc* bulging toward the sensor of
   body (or leg) radius; a crate, pallet, cart or rack is a straight face or a right-angled
   corner. Features: chord width, Kasa circle fit (radius, RMS residual), straight line
   and two-line (corner) fit residuals, bulge toward the sensor. Two leg arcs within
   ``leg_pair_max_m`` make one person.
3. :class:`PersonDetector`: candidates on the world's static occupancy grid (walls, posts,
   racks, cones of the site map) are dropped; the depth camera vetoes a lidar candidate
   whose obstacle points within ``depth_veto_radius_m`` stay below ``depth_veto_height_m``
   (a crate or a cone, never a person) and adds person-shaped depth clusters (a person
   behind something low that hides them from the lidar).
4. :class:`PeopleTracker`: constant-velocity Kalman filter per track, Mahalanobis gating,
   Hungarian assignment (``scipy.optimize.linear_sum_assignment``), birth after
   ``birth_hits`` hits, death after ``death_misses`` misses; ids never reused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["ScanError", "scan_beam_count", "scan_points", "segment_scan", "SegmentFeatures",
           "segment_features", "ClassifierConfig", "SegmentClassifier", "Detection",
           "DetectorConfig", "PersonDetector", "TrackerConfig", "Track", "PeopleTracker",
           "StaticMap", "transform_state"]


class ScanError(ValueError):
    """A scan that cannot be used (the message says why)."""


# ------------------------------------------------------------------------------ scans
def scan_beam_count(angle_min: float, angle_max: float, angle_increment: float) -> int:
    """The number of beams a scan's angles imply (a LaserScan's ranges should have as many).

    :raises ScanError: angles not finite, or a zero increment.
    """
    inc = angle_increment
    if not (math.isfinite(angle_min) and math.isfinite(angle_max) and math.isfinite(inc)) \
            or inc == 0.0:
        raise ScanError(f"scan angles not finite or zero increment (angle_min="
                        f"{angle_min}, angle_max={angle_max}, increment={inc})")
    return int(round((angle_max - angle_min) / inc)) + 1


def scan_points(ranges: np.ndarray, angle_min: float, angle_increment: float,
                range_min: float, range_max: float, *, expected_beams: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid beams -> (points (N, 2) in the laser frame, beam indices (N,), ranges (N,)).

    Valid: finite and within [range_min, range_max]. Raises :class:`ScanError` for an empty
    scan, a non-finite or zero angle increment, or a beam count other than
    ``expected_beams`` (when given).
    """
    r = np.asarray(ranges, dtype=np.float64).reshape(-1)
    if r.size == 0:
        raise ScanError("empty scan (no ranges)")
    if not (math.isfinite(angle_min) and math.isfinite(angle_increment)) or angle_increment == 0:
        raise ScanError(f"scan angles not usable: angle_min={angle_min}, "
                        f"angle_increment={angle_increment}")
    if expected_beams is not None and r.size != expected_beams:
        raise ScanError(f"scan has {r.size} ranges, {expected_beams} expected from its "
                        "angle_min/angle_max/angle_increment")
    if abs(angle_increment) * r.size > 2 * math.pi + 1e-3:
        raise ScanError(f"scan covers {abs(angle_increment) * r.size:.2f} rad (> 2 pi): "
                        f"{r.size} ranges at {angle_increment} rad")
    lo = range_min if math.isfinite(range_min) and range_min > 0 else 0.0
    hi = range_max if math.isfinite(range_max) and range_max > lo else np.inf
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(r) & (r >= lo) & (r <= hi)
    idx = np.flatnonzero(ok)
    rr = r[idx]
    a = angle_min + angle_increment * idx
    return np.column_stack([rr * np.cos(a), rr * np.sin(a)]), idx, rr


def segment_scan(points: np.ndarray, idx: np.ndarray, ranges: np.ndarray, n_beams: int,
                 angle_increment: float, gap_m: float = 0.12, gap_k: float = 3.0,
                 full_circle: bool = True) -> list[np.ndarray]:
    """Split valid points into segments (lists of row indices into ``points``).

    Consecutive points belong together when their beams are at most 2 apart and their
    distance is below ``max(gap_m, gap_k * r * |angle_increment|)``. With ``full_circle``
    the last and first segments join across the seam.
    """
    n = len(points)
    if n == 0:
        return []
    d = np.linalg.norm(np.diff(points, axis=0), axis=1)
    lim = np.maximum(gap_m, gap_k * np.minimum(ranges[:-1], ranges[1:]) * abs(angle_increment))
    brk = (d > lim) | (np.diff(idx) > 2)
    starts = np.r_[0, np.flatnonzero(brk) + 1]
    ends = np.r_[starts[1:], n]
    segs = [np.arange(s, e) for s, e in zip(starts, ends)]
    if full_circle and len(segs) > 1:
        wrap_beams = (idx[0] + n_beams - idx[-1]) <= 2
        dist = float(np.linalg.norm(points[0] - points[-1]))
        if wrap_beams and dist <= max(gap_m, gap_k * min(ranges[0], ranges[-1])
                                      * abs(angle_increment)):
            segs[0] = np.r_[segs[-1], segs[0]]
            segs.pop()
    return segs


# ------------------------------------------------------------------------------ features
@dataclass(frozen=True)
class SegmentFeatures:
    """Geometry of one lidar segment (laser/base frame, metres)."""

    n: int
    width_m: float            # chord: first to last point
    radius_m: float           # Kasa circle fit
    circle_rms_m: float
    circle_center: tuple[float, float]
    line_rms_m: float         # one straight line (PCA)
    corner_rms_m: float       # two lines split at the point farthest from the chord
    bulge_m: float            # largest distance of a point from the chord, toward the sensor
    mean: tuple[float, float]
    range_m: float            # of the points' mean, from the sensor
    center_range_m: float     # of the fitted circle's centre, from the sensor


def _line_rms(p: np.ndarray) -> float:
    if len(p) < 3:
        return 0.0
    q = p - p.mean(axis=0)
    ev = np.linalg.eigvalsh(q.T @ q / len(q))
    return float(math.sqrt(max(ev[0], 0.0)))


def segment_features(p: np.ndarray, sensor_xy: Sequence[float] = (0.0, 0.0)) -> SegmentFeatures:
    """Features of the points ``p`` (N >= 1, ordered along the scan)."""
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    mean = p.mean(axis=0)
    sx, sy = sensor_xy
    rng = float(math.hypot(mean[0] - sx, mean[1] - sy))
    width = float(np.linalg.norm(p[-1] - p[0])) if n > 1 else 0.0
    if n < 3:
        return SegmentFeatures(n, width, math.inf, math.inf, (float(mean[0]), float(mean[1])),
                               0.0, 0.0, 0.0, (float(mean[0]), float(mean[1])), rng, rng)
    # Kasa fit: x^2 + y^2 + D x + E y + F = 0, centred for conditioning
    q = p - mean
    A = np.column_stack([q[:, 0], q[:, 1], np.ones(n)])
    b = -(q[:, 0] ** 2 + q[:, 1] ** 2)
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    cx, cy = -sol[0] / 2, -sol[1] / 2
    r2 = cx * cx + cy * cy - sol[2]
    if r2 > 0 and np.isfinite(r2):
        radius = math.sqrt(r2)
        res = np.hypot(q[:, 0] - cx, q[:, 1] - cy) - radius
        circle_rms = float(math.sqrt(np.mean(res ** 2)))
    else:
        radius, circle_rms = math.inf, math.inf
    center = (float(cx + mean[0]), float(cy + mean[1]))
    # chord and bulge (toward the sensor = positive)
    chord = p[-1] - p[0]
    L = np.linalg.norm(chord)
    if L > 1e-9:
        nrm = np.array([-chord[1], chord[0]]) / L
        to_sensor = np.array([sx, sy]) - (p[0] + p[-1]) / 2
        if nrm @ to_sensor < 0:
            nrm = -nrm
        dist = (p - p[0]) @ nrm
        k = int(np.argmax(np.abs(dist)))
        bulge = float(dist[k])
    else:
        k, bulge = n // 2, 0.0
    line_rms = _line_rms(p)
    k = min(max(k, 2), n - 2)
    corner_rms = math.sqrt((_line_rms(p[:k + 1]) ** 2 * (k + 1) + _line_rms(p[k:]) ** 2 * (n - k))
                           / (n + 1))
    return SegmentFeatures(n, width, radius, circle_rms, center, line_rms, corner_rms, bulge,
                           (float(mean[0]), float(mean[1])), rng,
                           float(math.hypot(center[0] - sx, center[1] - sy)))


@dataclass(frozen=True)
class ClassifierConfig:
    """Thresholds of the geometric segment classifier (metres)."""

    body_radius_m: tuple[float, float] = (0.12, 0.40)
    body_width_m: tuple[float, float] = (0.16, 0.70)
    leg_radius_m: tuple[float, float] = (0.03, 0.13)
    leg_width_m: tuple[float, float] = (0.04, 0.26)
    min_points: int = 4
    noise_m: float = 0.012          # lidar range noise (1 sigma)
    max_circle_rms_m: float = 0.03
    min_bulge_ratio: float = 0.25   # bulge / (expected sagitta of the fitted arc)
    corner_margin: float = 1.25     # circle must fit this much better than line/corner


class SegmentClassifier:
    """'body', 'leg' or '' for a segment's features."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()

    def classify(self, f: SegmentFeatures) -> str:
        c = self.config
        if f.n < c.min_points or not math.isfinite(f.radius_m):
            return ""
        noise = c.noise_m
        if f.circle_rms_m > c.max_circle_rms_m + noise:
            return ""
        # an arc bulges toward the sensor: the centre lies beyond the points
        if f.center_range_m < f.range_m:
            return ""
        half = min(f.width_m / 2, f.radius_m)
        sagitta = f.radius_m - math.sqrt(max(f.radius_m ** 2 - half ** 2, 0.0))
        if f.bulge_m < max(c.min_bulge_ratio * sagitta, 1.5 * noise):
            return ""
        # straight faces and right-angled corners of boxes fit lines at least as well
        circle = max(f.circle_rms_m, 0.5 * noise)
        corner = f.corner_rms_m * 2.0 if f.width_m >= 0.25 else math.inf
        if min(f.line_rms_m, corner) < c.corner_margin * circle:
            return ""
        if c.body_radius_m[0] <= f.radius_m <= c.body_radius_m[1] and \
                c.body_width_m[0] <= f.width_m <= c.body_width_m[1]:
            return "body"
        if c.leg_radius_m[0] <= f.radius_m <= c.leg_radius_m[1] and \
                c.leg_width_m[0] <= f.width_m <= c.leg_width_m[1]:
            return "leg"
        return ""


# ------------------------------------------------------------------------------ detection
@dataclass(frozen=True)
class Detection:
    """A person seen in one frame: position (x, y) [m] in the detector's output frame,
    1-sigma position uncertainty [m], score in [0, 1], and the source ("scan", "depth",
    "fused")."""

    x: float
    y: float
    sigma_m: float
    score: float
    source: str


class StaticMap:
    """The site's static occupancy grid (:class:`sitebot.site.occupancy.OccupancyGrid`, map frame,
    best built with ``inflate_m`` = the margin so thin posts are not lost between cell
    centres): ``occupied(xy)`` is True on its occupied cells (grown by ``margin_m``)."""

    def __init__(self, grid, margin_m: float = 0.0) -> None:
        from scipy.ndimage import binary_dilation
        occ = np.asarray(grid.occupied, dtype=bool)
        cells = int(math.ceil(margin_m / grid.resolution_m))
        if cells > 0:
            yy, xx = np.mgrid[-cells:cells + 1, -cells:cells + 1]
            occ = binary_dilation(occ, structure=(xx ** 2 + yy ** 2) <= cells ** 2)
        self.occ = occ
        self.ox, self.oy, self.res = grid.origin_x, grid.origin_y, grid.resolution_m

    def occupied(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        c = np.floor((xy[:, 0] - self.ox) / self.res).astype(np.int64)
        r = np.floor((xy[:, 1] - self.oy) / self.res).astype(np.int64)
        rows, cols = self.occ.shape
        inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        out = np.zeros(len(xy), dtype=bool)
        out[inside] = self.occ[r[inside], c[inside]]
        return out


@dataclass(frozen=True)
class DetectorConfig:
    """Fusion and rejection settings (metres)."""

    segment_gap_m: float = 0.12
    leg_pair_max_m: float = 0.55
    max_range_m: float = 8.0
    scan_sigma_m: float = 0.06
    depth_sigma_m: float = 0.12
    depth_veto_radius_m: float = 0.35
    depth_veto_height_m: float = 1.0
    depth_veto_min_points: int = 8
    depth_match_m: float = 0.5
    depth_min_top_m: float = 1.2
    depth_max_top_m: float = 2.25
    depth_min_height_m: float = 0.9
    depth_max_footprint_m: float = 0.85
    depth_min_footprint_m: float = 0.15
    depth_only: bool = True         # person-shaped depth clusters without a lidar arc count
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)


@dataclass
class DepthView:
    """What the latest depth frame says, in the base frame of the scan being processed:
    obstacle points (M, 3), cluster boxes (mins, maxs (K, 3)), and a function telling which
    base-frame (x, y) the camera can see."""

    points: np.ndarray
    mins: np.ndarray
    maxs: np.ndarray
    visible: object = None      # callable (N, 2) -> bool (N,), or None = everywhere
    candidates: np.ndarray | None = None   # person-shaped clusters (x, y), precomputed


class PersonDetector:
    """Lidar (+ optional depth) -> person detections in the base frame."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.classifier = SegmentClassifier(self.config.classifier)
        self.last_segments: list[tuple[SegmentFeatures, str]] = []

    def scan_candidates(self, xy_base: np.ndarray, idx: np.ndarray, ranges: np.ndarray,
                        n_beams: int, angle_increment: float, sensor_xy: Sequence[float]
                        ) -> tuple[list[tuple[float, float]], list[SegmentFeatures]]:
        """Person positions (base frame) from lidar arcs, and every segment's features."""
        cfg = self.config
        segs = segment_scan(xy_base, idx, ranges, n_beams, angle_increment, cfg.segment_gap_m,
                            full_circle=abs(angle_increment) * n_beams >= 2 * math.pi - 1e-3)
        people: list[tuple[float, float]] = []
        legs: list[tuple[float, float]] = []
        feats: list[SegmentFeatures] = []
        self.last_segments = []
        cc = self.classifier.config
        widest = max(cc.body_width_m[1], cc.leg_width_m[1])
        sx, sy = sensor_xy
        for s in segs:
            p = xy_base[s]
            # cheap rejection first: too few points, too wide or too far for a person
            if len(p) < cc.min_points or np.linalg.norm(p[-1] - p[0]) > widest or \
                    math.hypot(p[0, 0] - sx, p[0, 1] - sy) > cfg.max_range_m + 0.5:
                continue
            f = segment_features(p, sensor_xy)
            feats.append(f)
            kind = self.classifier.classify(f) if f.range_m <= cfg.max_range_m else ""
            self.last_segments.append((f, kind))
            if kind == "body":
                people.append(f.circle_center)
            elif kind == "leg":
                legs.append(f.circle_center)
        # pair legs greedily, closest first
        used: set[int] = set()
        pairs = sorted(((math.dist(a, b), i, j) for i, a in enumerate(legs)
                        for j, b in enumerate(legs) if i < j))
        for d, i, j in pairs:
            if d <= cfg.leg_pair_max_m and i not in used and j not in used:
                used.update((i, j))
                people.append(((legs[i][0] + legs[j][0]) / 2, (legs[i][1] + legs[j][1]) / 2))
        return people, feats

    def depth_candidates(self, view: DepthView) -> list[tuple[float, float]]:
        """Person-shaped depth clusters (x, y), base frame: the precomputed ones of the
        view, else from its boxes alone (see :meth:`depth_candidates_from_cloud`)."""
        if view is not None and view.candidates is not None:
            return [(float(x), float(y)) for x, y in np.asarray(view.candidates).reshape(-1, 2)]
        if view is None or len(view.mins) == 0:
            return []
        ok = self._person_boxes(view.mins, view.maxs)
        c = (view.mins[ok] + view.maxs[ok]) / 2
        return [(float(x), float(y)) for x, y in c[:, :2]]

    def _person_boxes(self, mins: np.ndarray, maxs: np.ndarray) -> np.ndarray:
        cfg = self.config
        size = maxs - mins
        foot = np.hypot(size[:, 0], size[:, 1])
        return ((maxs[:, 2] >= cfg.depth_min_top_m) & (maxs[:, 2] <= cfg.depth_max_top_m)
                & (size[:, 2] >= cfg.depth_min_height_m) & (foot <= cfg.depth_max_footprint_m)
                & (foot >= cfg.depth_min_footprint_m))

    def depth_candidates_from_cloud(self, points: np.ndarray, clusters,
                                    slice_m: float = 0.2, min_slice_width_m: float = 0.18,
                                    min_fill: float = 0.7) -> list[tuple[float, float]]:
        """Person-shaped depth clusters (base frame): a box of person height and footprint
        whose body is wide at every height: of the 20 cm slices between 0.3 m and 1.5 m
        that hold points, at least ``min_fill`` are ``min_slice_width_m`` wide (a post with
        a sign or a dial on top is not)."""
        if len(clusters) == 0:
            return []
        out = []
        for k in np.flatnonzero(self._person_boxes(clusters.mins, clusters.maxs)):
            p = points[clusters.labels == k]
            z = p[:, 2]
            slices = np.floor((z - 0.3) / slice_m).astype(np.int64)
            inb = (z >= 0.3) & (z < 1.5)
            wide = seen = 0
            for sidx in np.unique(slices[inb]):
                q = p[inb & (slices == sidx), :2]
                seen += 1
                if len(q) >= 2 and np.linalg.norm(q.max(axis=0) - q.min(axis=0)) \
                        >= min_slice_width_m:
                    wide += 1
            if seen >= 2 and wide >= min_fill * seen:
                c = (clusters.mins[k] + clusters.maxs[k]) / 2
                out.append((float(c[0]), float(c[1])))
        return out

    def detect(self, scan_people: list[tuple[float, float]], feats: list[SegmentFeatures],
               view: DepthView | None, static_ok=None) -> list[Detection]:
        """Fuse lidar candidates with the depth view (base frame). ``static_ok``: callable
        (N, 2) base-frame xy -> bool, False where the static map holds structure."""
        cfg = self.config
        out: list[Detection] = []
        scan_xy = np.asarray(scan_people, dtype=np.float64).reshape(-1, 2)
        depth_xy = np.asarray(self.depth_candidates(view) if view is not None else [],
                              dtype=np.float64).reshape(-1, 2)
        vis_scan = np.zeros(len(scan_xy), bool)
        if view is not None and view.visible is not None and len(scan_xy):
            vis_scan = np.asarray(view.visible(scan_xy), bool)
        matched_depth = np.zeros(len(depth_xy), bool)
        for i, (x, y) in enumerate(scan_xy):
            src, sigma, score = "scan", cfg.scan_sigma_m, 0.7
            if len(depth_xy):
                d = np.hypot(depth_xy[:, 0] - x, depth_xy[:, 1] - y)
                j = int(np.argmin(d))
                if d[j] <= cfg.depth_match_m:
                    matched_depth[j] = True
                    src, score = "fused", 0.95
            if src == "scan" and vis_scan[i] and view is not None and len(view.points):
                near = np.hypot(view.points[:, 0] - x, view.points[:, 1] - y) \
                    <= cfg.depth_veto_radius_m
                if near.sum() >= cfg.depth_veto_min_points and \
                        view.points[near, 2].max() < cfg.depth_veto_height_m:
                    continue            # the camera sees something low there: not a person
            out.append(Detection(float(x), float(y), sigma, score, src))
        if cfg.depth_only and len(depth_xy):
            # person-shaped depth clusters no lidar arc explains: a person hidden from the
            # lidar (behind something low) or whose arc merged with a neighbour
            for j in np.flatnonzero(~matched_depth):
                x, y = depth_xy[j]
                if any(math.hypot(d.x - x, d.y - y) < cfg.depth_match_m for d in out):
                    continue
                out.append(Detection(float(x), float(y), cfg.depth_sigma_m, 0.6, "depth"))
        if static_ok is not None and out:
            keep = np.asarray(static_ok(np.array([[d.x, d.y] for d in out])), bool)
            out = [d for d, k in zip(out, keep) if k]
        return out


# ------------------------------------------------------------------------------ tracker
@dataclass(frozen=True)
class TrackerConfig:
    """Constant-velocity tracker settings."""

    accel_sigma_mps2: float = 2.0
    gate_chi2: float = 13.8             # 2 dof, 99.9 %
    gate_max_m: float = 1.2
    birth_hits: int = 3
    death_misses: int = 6
    tentative_misses: int = 2
    init_speed_sigma_mps: float = 1.0
    max_position_sigma_m: float = 1.5
    max_speed_mps: float = 3.0


@dataclass
class Track:
    """One tracked person: state [x, y, vx, vy] and its covariance P (4x4)."""

    id: int
    x: np.ndarray
    P: np.ndarray
    hits: int = 1
    misses: int = 0
    confirmed: bool = False
    age: int = 1
    stamp_s: float = 0.0
    score: float = 0.5

    @property
    def position(self) -> tuple[float, float]:
        return float(self.x[0]), float(self.x[1])

    @property
    def velocity(self) -> tuple[float, float]:
        return float(self.x[2]), float(self.x[3])


class PeopleTracker:
    """Multi-target tracker in one fixed frame (odom)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 1
        self.t_s: float | None = None

    def reset(self) -> None:
        self.tracks.clear()
        self.t_s = None

    def _predict(self, dt: float) -> None:
        if dt <= 0 or not self.tracks:
            return
        q = self.config.accel_sigma_mps2 ** 2
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        G = np.array([[dt * dt / 2, 0], [0, dt * dt / 2], [dt, 0], [0, dt]])
        Q = G @ G.T * q
        for t in self.tracks:
            t.x = F @ t.x
            t.P = F @ t.P @ F.T + Q

    def update(self, detections: Sequence[Detection], t_s: float) -> list[Track]:
        """Predict to ``t_s`` [s], associate, update, birth and death; returns the
        confirmed tracks. A time that goes backwards resets the tracker."""
        cfg = self.config
        if self.t_s is not None and t_s < self.t_s - 1e-6:
            self.reset()
        dt = 0.0 if self.t_s is None else t_s - self.t_s
        self.t_s = t_s
        self._predict(dt)
        dets = [d for d in detections if math.isfinite(d.x) and math.isfinite(d.y)]
        H = np.zeros((2, 4))
        H[0, 0] = H[1, 1] = 1.0
        nT, nD = len(self.tracks), len(dets)
        assigned_t: dict[int, int] = {}
        if nT and nD:
            big = 1e6
            cost = np.full((nT, nD), big)
            zs = np.array([[d.x, d.y] for d in dets])
            for i, t in enumerate(self.tracks):
                S = t.P[:2, :2]
                for j, d in enumerate(dets):
                    e = zs[j] - t.x[:2]
                    if math.hypot(*e) > cfg.gate_max_m:
                        continue
                    Sj = S + np.eye(2) * d.sigma_m ** 2
                    m2 = float(e @ np.linalg.solve(Sj, e))
                    if m2 <= cfg.gate_chi2:
                        cost[i, j] = m2 + math.log(np.linalg.det(Sj))
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols):
                if cost[i, j] < big:
                    assigned_t[i] = j
        used_d = set(assigned_t.values())
        for i, t in enumerate(self.tracks):
            t.age += 1
            if i in assigned_t:
                d = dets[assigned_t[i]]
                R = np.eye(2) * d.sigma_m ** 2
                S = H @ t.P @ H.T + R
                Kg = t.P @ H.T @ np.linalg.inv(S)
                t.x = t.x + Kg @ (np.array([d.x, d.y]) - H @ t.x)
                t.P = (np.eye(4) - Kg @ H) @ t.P
                t.P = (t.P + t.P.T) / 2
                sp = math.hypot(t.x[2], t.x[3])
                if sp > cfg.max_speed_mps:
                    t.x[2:] *= cfg.max_speed_mps / sp
                t.hits += 1
                t.misses = 0
                t.stamp_s = t_s
                t.score = 0.7 * t.score + 0.3 * d.score
                if t.hits >= cfg.birth_hits:
                    t.confirmed = True
            else:
                t.misses += 1
                t.score *= 0.8
        alive = []
        for t in self.tracks:
            limit = cfg.death_misses if t.confirmed else cfg.tentative_misses
            if t.misses >= limit or math.sqrt(max(t.P[0, 0], t.P[1, 1])) > cfg.max_position_sigma_m:
                continue
            alive.append(t)
        self.tracks = alive
        for j, d in enumerate(dets):
            if j in used_d:
                continue
            P = np.diag([d.sigma_m ** 2, d.sigma_m ** 2, cfg.init_speed_sigma_mps ** 2,
                         cfg.init_speed_sigma_mps ** 2])
            t = Track(self._next_id, np.array([d.x, d.y, 0.0, 0.0]), P, stamp_s=t_s,
                      score=d.score, confirmed=cfg.birth_hits <= 1)
            self._next_id += 1
            self.tracks.append(t)
        return self.confirmed()

    def confirmed(self) -> list[Track]:
        return [t for t in self.tracks if t.confirmed]

    def transform(self, pose_delta: Sequence[float]) -> None:
        """Re-express every track in a new frame: ``pose_delta`` is the old frame in the new
        one (x, y, yaw)."""
        for t in self.tracks:
            t.x, t.P = transform_state(pose_delta, t.x, t.P)


def transform_state(pose: Sequence[float], x: np.ndarray, P: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A track state (x, y, vx, vy) and its 4x4 covariance re-expressed in another frame:
    ``pose`` (x, y, yaw) is the state's frame in the new one. Positions are moved, velocities
    and the covariance rotated."""
    c, s = math.cos(pose[2]), math.sin(pose[2])
    R = np.array([[c, -s], [s, c]])
    B = np.zeros((4, 4))
    B[:2, :2] = B[2:, 2:] = R
    out = np.array(x, dtype=np.float64)
    out[:2] = R @ out[:2] + np.array(pose[:2], dtype=np.float64)
    out[2:] = R @ out[2:]
    return out, B @ P @ B.T


def iter_tracks_xy(tracks: Iterable[Track]) -> np.ndarray:
    return np.array([t.position for t in tracks], dtype=np.float64).reshape(-1, 2)
