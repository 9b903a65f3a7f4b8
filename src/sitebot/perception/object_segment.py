"""Segment one object lying on a support surface (a bench, a table, a trolley top) from a
depth image, near where it is expected (core, no ROS).

Input: a full-resolution depth image (float32 metres along the optical axis, ``+inf``
where nothing is seen, as :class:`sitebot.sim.sensors.CameraFrame` gives), its 3x3
intrinsics ``K``, the pose of the camera's *optical* frame (z forward, x right, y down) in
the robot's base frame (``base_footprint``, REP-103: x forward, y left, z up, z = 0 on the
floor) as a 4x4 matrix, and a search region: the expected object centre in the base frame
(e.g. the registry's surveyed position, corrected for the robot's pose) and a radius.

Steps (all in the base frame):

1. back-project the valid pixels (:func:`sitebot.perception.cloud.depth_to_points`) and
   keep those within ``radius + neighbourhood_m`` (horizontally) of the expected centre and
   within a height window around it;
2. the support surface: the dominant peak of the height histogram of those points (below
   the expected centre), refined by a least-squares plane through the points near it,
   twice; it must be nearly horizontal (``max_tilt_deg``);
3. the points higher than ``min_height_m`` above that plane are the candidates; they are
   clustered on a 2-D footprint grid (:func:`sitebot.perception.cloud.cluster_points`);
4. the cluster whose footprint centre lies nearest the expected centre, within ``radius``,
   is the object; it is refused when it is too small, too large, touches the image border
   (partly out of view) or the edge of the searched neighbourhood (cut off);
5. its footprint (the points projected on the plane) gives a minimum-area rectangle
   (``cv2.minAreaRect``): the long axis heading ``yaw`` [rad, base frame, in
   (-pi/2, pi/2]], ``length_m`` along it and ``width_m`` across it; the centre of that
   rectangle at mid-height between the support and the object's top is the ``centroid``.

Everything that can go wrong with usable input gives a result with ``found`` False and a
``reason``; malformed input (wrong shapes, NaN, -inf or negative depth, a K that does not
fit the image) raises ValueError naming what is wrong.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import cv2
import numpy as np

from sitebot.config.checks import check_ranges
from sitebot.perception.cloud import (camera_fov_check, check_intrinsics, cluster_points,
                                      depth_to_points)

__all__ = ["SegmentConfig", "ObjectSegment", "segment_object", "moved_segment"]


@dataclass(frozen=True)
class SegmentConfig:
    """Parameters of :func:`segment_object` (units in the names).

    :param neighbourhood_m: the support plane is fitted over points within ``radius`` plus
        this of the expected centre (horizontally) [m].
    :param below_m: the support lies at most this far below the expected centre [m].
    :param above_m: ... and at most this far above it (a centre guessed a little low) [m].
    :param bin_m: height histogram bin width for the support's first guess [m].
    :param plane_band_m: points within this of the plane are the plane's inliers [m].
    :param max_tilt_deg: steepest support plane accepted [deg].
    :param min_support_points: fewest inliers that make a support plane.
    :param min_height_m: a point higher than this above the plane belongs to an object [m].
    :param max_height_m: ... and lower than this (taller things are structure) [m].
    :param cluster_cell_m: footprint grid cell of the clustering [m].
    :param min_points: fewest points of a usable object cluster.
    :param max_size_m: longest footprint side of an object to pick [m].
    :param border_px: a cluster within this many pixels of the image edge is cut off.
    :param top_percentile: the object's top height is this percentile of its points'
        heights (robust to a few stray points).
    :param min_range_m: nearest valid depth [m].
    :param max_range_m: farthest depth used [m].
    """

    neighbourhood_m: float = 0.15
    below_m: float = 0.30
    above_m: float = 0.05
    bin_m: float = 0.004
    plane_band_m: float = 0.006
    max_tilt_deg: float = 10.0
    min_support_points: int = 200
    min_height_m: float = 0.005
    max_height_m: float = 0.40
    cluster_cell_m: float = 0.01
    min_points: int = 30
    max_size_m: float = 0.40
    border_px: int = 1
    top_percentile: float = 98.0
    min_range_m: float = 0.1
    max_range_m: float = 4.0

    def __post_init__(self) -> None:
        check_ranges(self, (
            ("neighbourhood_m", 0.0, 2.0), ("below_m", 0.0, 3.0), ("above_m", 0.0, 1.0),
            ("bin_m", 1e-4, 0.1), ("plane_band_m", 1e-4, 0.1), ("max_tilt_deg", 0.0, 45.0),
            ("min_support_points", 3, 10_000_000), ("min_height_m", 0.0, 0.1),
            ("max_height_m", 0.01, 3.0), ("cluster_cell_m", 1e-3, 0.2),
            ("min_points", 1, 10_000_000), ("max_size_m", 0.01, 5.0), ("border_px", 0, 100),
            ("top_percentile", 50.0, 100.0), ("min_range_m", 0.0, 10.0),
            ("max_range_m", 0.1, 100.0)))


@dataclass(frozen=True)
class ObjectSegment:
    """What :func:`segment_object` found (base frame, metres, radians).

    ``found`` False: ``reason`` says why and the numbers are NaN (``support_z`` may be set
    when the support was found).  ``centroid`` (3,): centre of the footprint rectangle at
    mid-height between ``support_z`` (the support plane's height under the object) and
    ``top_z``; ``yaw``: heading of the long axis in (-pi/2, pi/2]; ``length_m``/``width_m``:
    the footprint rectangle's sides along/across it; ``height_m`` = top_z - support_z;
    ``n_points``: points in the object's cluster; ``footprint`` (4, 2): the rectangle's
    corners (x, y); ``points`` (N, 3): the cluster's points; ``support_normal`` (3,): unit
    normal of the support plane (z > 0); ``support_box``: (centre (3,), size (3,), yaw) of
    the support seen around the object, a slab from its top down to the floor (for
    :func:`sitebot.arm.collision.box_primitive`); ``pixels``: how many pixels the object
    covers in the image.
    """

    found: bool
    reason: str = ""
    centroid: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    support_z: float = math.nan
    top_z: float = math.nan
    yaw: float = math.nan
    length_m: float = math.nan
    width_m: float = math.nan
    n_points: int = 0
    footprint: np.ndarray = field(default_factory=lambda: np.full((4, 2), np.nan))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    support_normal: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    support_box: tuple | None = None

    @property
    def height_m(self) -> float:
        return self.top_z - self.support_z

    @property
    def elongation(self) -> float:
        """length / width (near 1: the long axis is ill-defined)."""
        return self.length_m / self.width_m if self.width_m > 0 else math.inf


def _matrix(value: object, shape: tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or infinity: {a.tolist()}")
    return a


def _check_depth(depth_m: object) -> np.ndarray:
    d = np.asarray(depth_m)
    if d.ndim != 2 or d.shape[0] < 8 or d.shape[1] < 8:
        raise ValueError(f"depth image must be a 2-D array of at least 8x8 pixels, got shape "
                         f"{d.shape}")
    if not np.issubdtype(d.dtype, np.floating):
        raise ValueError(f"depth image must hold float metres, got dtype {d.dtype}")
    bad = np.isnan(d) | (d < 0)          # -inf included
    if bad.any():
        v, u = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"depth image has {int(bad.sum())} NaN, -inf or negative pixels "
                         f"(first at column {u}, row {v}: {d[v, u]}); only finite depths >= 0 "
                         "and +inf (nothing seen) are accepted")
    return d


def _check_pose(T: object) -> np.ndarray:
    m = _matrix(T, (4, 4), "camera pose (4x4, optical frame in the base frame)")
    r = m[:3, :3]
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0.99 or \
            not np.allclose(m[3], (0, 0, 0, 1)):
        raise ValueError("camera pose is not a rigid transform (rotation part not orthonormal "
                         "or last row not 0 0 0 1)")
    return m


def _fit_plane(p: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane through points (N, 3): unit normal with z > 0, offset d
    (n . x + d = 0)."""
    c = p.mean(axis=0)
    _, _, vt = np.linalg.svd(p - c, full_matrices=False)
    n = vt[2]
    if n[2] < 0:
        n = -n
    return n, -float(n @ c)


def _support(p: np.ndarray, centre_z: float, cfg: SegmentConfig
             ) -> tuple[np.ndarray, float, np.ndarray] | str:
    """(normal, d, inlier mask) of the support plane among points ``p`` (base frame), or
    the reason why there is none."""
    z = p[:, 2]
    window = (z >= centre_z - cfg.below_m) & (z <= centre_z + cfg.above_m)
    if window.sum() < cfg.min_support_points:
        return (f"no support surface: {int(window.sum())} points between "
                f"{centre_z - cfg.below_m:.2f} and {centre_z + cfg.above_m:.2f} m high near "
                f"the expected centre (need {cfg.min_support_points})")
    zw = z[window]
    edges = np.arange(zw.min(), zw.max() + 2 * cfg.bin_m, cfg.bin_m)
    hist, edges = np.histogram(zw, bins=edges)
    # a peak straddling two bins: sum neighbours
    smooth = hist + np.r_[hist[1:], 0] + np.r_[0, hist[:-1]]
    k = int(np.argmax(smooth))
    z0 = 0.5 * (edges[k] + edges[k + 1])
    n, d = np.array([0.0, 0.0, 1.0]), -z0
    band = max(2 * cfg.bin_m, cfg.plane_band_m)
    for _ in range(3):
        inl = np.abs(p @ n + d) <= band
        if inl.sum() < cfg.min_support_points:
            return (f"no support surface: the most common height ({z0:.3f} m) has only "
                    f"{int(inl.sum())} points within {band * 1000:.0f} mm "
                    f"(need {cfg.min_support_points})")
        n, d = _fit_plane(p[inl])
        band = cfg.plane_band_m
    tilt = math.degrees(math.acos(min(1.0, abs(float(n[2])))))
    if tilt > cfg.max_tilt_deg:
        return (f"no horizontal support surface: the dominant plane near {z0:.3f} m is "
                f"tilted {tilt:.1f} deg (at most {cfg.max_tilt_deg:g})")
    inl = np.abs(p @ n + d) <= cfg.plane_band_m
    return n, d, inl


def _support_box(p: np.ndarray) -> tuple:
    """(centre, size, yaw) of the slab under the support inliers ``p``: their minimum-area
    footprint rectangle, from the floor (z = 0) up to their height."""
    (cx, cy), (w, h), _ = cv2.minAreaRect((p[:, :2] * 1000.0).astype(np.float32))
    corners = cv2.boxPoints(((cx, cy), (w, h), _)) / 1000.0
    e = corners[1] - corners[0]
    yaw = math.atan2(float(e[1]), float(e[0]))
    top = float(np.median(p[:, 2]))
    return (np.array([cx / 1000.0, cy / 1000.0, top / 2.0]),
            np.array([float(np.linalg.norm(e)), float(np.linalg.norm(corners[2] - corners[1])),
                      top]), yaw)


def _rectangle(xy: np.ndarray) -> tuple[np.ndarray, float, float, float, np.ndarray]:
    """Minimum-area rectangle of points (N, 2) [m]: centre (2,), long-axis yaw in
    (-pi/2, pi/2], length, width, corners (4, 2)."""
    rect = cv2.minAreaRect((xy * 1000.0).astype(np.float32))      # mm: float32-safe
    corners = cv2.boxPoints(rect).astype(np.float64) / 1000.0
    e1, e2 = corners[1] - corners[0], corners[2] - corners[1]
    l1, l2 = float(np.linalg.norm(e1)), float(np.linalg.norm(e2))
    long_edge = e1 if l1 >= l2 else e2
    yaw = _axis_yaw(math.atan2(float(long_edge[1]), float(long_edge[0])))
    return corners.mean(axis=0), yaw, max(l1, l2), min(l1, l2), corners


def _axis_yaw(yaw: float) -> float:
    """The heading of an axis (a line: yaw and yaw + pi alike) in (-pi/2, pi/2]."""
    y = math.remainder(yaw, math.pi)
    return y if y > -math.pi / 2 else y + math.pi


def segment_object(depth_m: np.ndarray, K: np.ndarray, T_base_optical: np.ndarray,
                   expected_centre: Sequence[float], radius_m: float = 0.15,
                   config: SegmentConfig | None = None) -> ObjectSegment:
    """Find the object expected near ``expected_centre`` (base frame [m]) within
    ``radius_m`` (horizontally) in a depth image.

    :param depth_m: (H, W) float depth along the optical axis [m]; ``+inf`` or 0: no
        return.
    :param K: 3x3 intrinsics of that image [px].
    :param T_base_optical: 4x4 pose of the camera's optical frame in the base frame.
    :param expected_centre: (x, y, z) where the object should be [m, base frame].
    :param radius_m: how far (horizontally) from there its footprint centre may lie [m].
    :raises ValueError: malformed input (see the module docstring).
    """
    cfg = config or SegmentConfig()
    d = _check_depth(depth_m)
    h, w = d.shape
    k = check_intrinsics(_matrix(K, (3, 3), "K"), w, h)
    T = _check_pose(T_base_optical)
    c = _matrix(expected_centre, (3,), "expected centre")
    if not (math.isfinite(float(radius_m)) and 0.0 < float(radius_m) <= 2.0):
        raise ValueError(f"search radius {radius_m!r} m must be in (0, 2]")
    r = float(radius_m)
    if not camera_fov_check(T, k, w, h, c[None, :2], float(c[2]), cfg.max_range_m)[0]:
        return ObjectSegment(False, f"the expected centre {np.round(c, 3).tolist()} is not in "
                             "the camera's view")
    valid = (d >= cfg.min_range_m) & (d <= cfg.max_range_m)
    rows, cols = np.nonzero(valid)                 # the order depth_to_points uses
    pts = depth_to_points(d, k, min_range_m=cfg.min_range_m,
                          max_range_m=cfg.max_range_m).astype(np.float64)
    pts = pts @ T[:3, :3].T + T[:3, 3]
    reach = r + cfg.neighbourhood_m
    dxy = np.hypot(pts[:, 0] - c[0], pts[:, 1] - c[1])
    near = (dxy <= reach) & (pts[:, 2] >= c[2] - cfg.below_m - 0.05) & \
        (pts[:, 2] <= c[2] + cfg.max_height_m + cfg.above_m)
    p, rows, cols, dxy = pts[near], rows[near], cols[near], dxy[near]
    sup = _support(p, float(c[2]), cfg)
    if isinstance(sup, str):
        return ObjectSegment(False, sup)
    n, dd, inl = sup
    support_at = float(-(n[0] * c[0] + n[1] * c[1] + dd) / n[2])
    height = p @ n + dd
    base = dict(support_z=support_at, support_normal=n, support_box=_support_box(p[inl]))
    above = (height > cfg.min_height_m) & (height <= cfg.max_height_m)
    if not above.any():
        return ObjectSegment(False, f"nothing above the support (z = {support_at:.3f} m) "
                             f"within {reach:.2f} m of the expected centre", **base)
    pa, ha, ra, ca, da = p[above], height[above], rows[above], cols[above], dxy[above]
    cl = cluster_points(pa.astype(np.float32), "grid", cfg.cluster_cell_m, 1)
    if not len(cl):
        return ObjectSegment(False, "no cluster above the support", **base)
    labels = cl.labels
    best, best_d, best_big = -1, math.inf, (-1, math.inf)
    for i in range(len(cl)):
        m = labels == i
        cxy = 0.5 * (pa[m, :2].min(axis=0) + pa[m, :2].max(axis=0))
        dist = float(math.hypot(cxy[0] - c[0], cxy[1] - c[1]))
        if dist < best_d:
            best, best_d = i, dist
        if int(cl.counts[i]) >= cfg.min_points and dist < best_big[1]:
            best_big = (i, dist)
    if best_big[0] >= 0 and best_big[1] <= r:
        best, best_d = best_big
    if best_d > r:
        return ObjectSegment(False, f"no object within {r:.2f} m of the expected centre "
                             f"(the nearest cluster above the support is {best_d:.2f} m away)",
                             **base)
    m = labels == best
    count = int(m.sum())
    if count < cfg.min_points:
        return ObjectSegment(False, f"the cluster near the expected centre is too small "
                             f"({count} points, need {cfg.min_points})", n_points=count,
                             **base)
    rr, cc = ra[m], ca[m]
    b = cfg.border_px
    if (rr.min() < b or cc.min() < b or rr.max() > h - 1 - b or cc.max() > w - 1 - b):
        return ObjectSegment(False, "the object is partly out of view (its pixels reach the "
                             "image border)", n_points=count, **base)
    if da[m].max() > reach - cfg.cluster_cell_m:
        return ObjectSegment(False, f"the cluster near the expected centre reaches the edge "
                             f"of the searched neighbourhood ({reach:.2f} m): larger than "
                             "an object to pick, or cut off", n_points=count, **base)
    obj = pa[m]
    # footprint: the points projected along the plane normal onto the plane
    proj = obj - np.outer(ha[m], n)
    centre, yaw, length, width, corners = _rectangle(proj[:, :2])
    if length > cfg.max_size_m:
        return ObjectSegment(False, f"the cluster near the expected centre is {length:.2f} m "
                             f"long: larger than an object to pick ({cfg.max_size_m:g} m)",
                             n_points=count, **base)
    if width < 0.5 * cfg.cluster_cell_m:
        # a footprint without width (points on one line: an edge seen edge-on, a wall of
        # the support) is no object's outline
        return ObjectSegment(False, f"the cluster near the expected centre has no width "
                             f"({1000 * width:.1f} mm across, {1000 * length:.0f} mm long)",
                             n_points=count, **base)
    top_h = float(np.percentile(ha[m], cfg.top_percentile))
    sup_z = float(-(n[0] * centre[0] + n[1] * centre[1] + dd) / n[2])
    base["support_z"] = sup_z
    top_z = sup_z + top_h / max(float(n[2]), 1e-6)
    centroid = np.array([centre[0], centre[1], 0.5 * (sup_z + top_z)])
    return ObjectSegment(True, "", centroid, sup_z, top_z, yaw, length, width, count,
                         corners, obj, n, base["support_box"])


def moved_segment(seg: ObjectSegment, x: float, y: float, yaw: float) -> ObjectSegment:
    """The segment in another frame: each point ``p`` becomes ``R(yaw) p + (x, y, 0)``
    (a planar move: heights stay).  With the robot's pose as (x, y, yaw) a base-frame
    segment goes to the map frame; with the inverse of another pose, from the map to that
    pose's base frame (a pick perceives, then drives closer, then plans its grasp)."""
    if not seg.found:
        return seg
    c, s_ = math.cos(yaw), math.sin(yaw)
    R = np.array([[c, -s_], [s_, c]])
    t = np.array([x, y])

    def xy(a: np.ndarray) -> np.ndarray:
        a = np.array(a, dtype=np.float64)
        a[..., :2] = a[..., :2] @ R.T + t
        return a
    new_yaw = _axis_yaw(seg.yaw + yaw)
    box = seg.support_box
    if box is not None:
        box = (xy(box[0]), np.array(box[1], dtype=np.float64), float(box[2]) + yaw)
    return replace(seg, centroid=xy(seg.centroid), yaw=new_yaw, footprint=xy(seg.footprint),
                   points=xy(seg.points), support_normal=np.concatenate(
                       [R @ np.asarray(seg.support_normal[:2], float),
                        [float(seg.support_normal[2])]]), support_box=box)
