"""Depth image -> point cloud -> ground removal -> obstacle clusters (no ROS here).

The pipeline (:class:`CloudPipeline`), all vectorised numpy and Open3D:

1. :func:`decode_depth` turns raw image bytes (``32FC1`` metres or ``16UC1`` millimetres,
   either byte order) into float32 metres, refusing truncated or mismatched buffers with a
   :class:`DepthError` that names the problem; NaN, inf and 0 mean "no return".
2. :func:`depth_to_points` back-projects the valid pixels with the intrinsics ``K`` into the
   camera optical frame (z forward, x right, y down), optionally every ``stride``-th pixel.
3. The points go to the base frame with the camera mount transform (from the URDF,
   :func:`mount_transform`), then Open3D ``voxel_down_sample``.
4. Ground removal with Open3D RANSAC (``segment_plane``) **only over points near z = 0**
   (``ground_band_m``), and the plane it finds is kept only when it is nearly horizontal
   (``ground_max_tilt_deg``) and near z = 0: a wall or the face of a crate can never be
   taken for the ground. Without a valid plane the prior (z = 0) is used.
5. Obstacle points (height above the ground plane within
   [``min_obstacle_height_m``, ``max_obstacle_height_m``]) are clustered, by a grid
   connected-components labelling (``cluster_method: grid``, default: faster, see
   docs/perception_spatial.md) or Open3D DBSCAN (``dbscan``), into axis-aligned boxes.

Frames: the base frame is REP-103 (x forward, y left, z up, z = 0 on the floor).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import open3d as o3d
from scipy import ndimage

from sitebot.config.checks import check_ranges

__all__ = ["DepthError", "CloudConfig", "Clusters", "CloudResult", "decode_depth",
           "check_depth_info", "depth_to_points", "mount_transform", "voxel_downsample", "fit_ground",
           "cluster_points", "CloudPipeline", "camera_fov_check"]


class DepthError(ValueError):
    """A depth image or camera model that cannot be used (the message says why)."""


# ------------------------------------------------------------------------------ decoding
_ENCODINGS = {"32FC1": (np.float32, 1.0), "16UC1": (np.uint16, 1e-3), "mono16": (np.uint16, 1e-3)}


def decode_depth(data: bytes | bytearray | memoryview | np.ndarray, width: int, height: int,
                 step: int, encoding: str, is_bigendian: bool = False) -> np.ndarray:
    """Raw image bytes -> float32 depth [m] (H, W); NaN where there is no return.

    ``32FC1`` is metres (REP-118; NaN/inf/0 = no return), ``16UC1`` millimetres (0 = no
    return). Raises :class:`DepthError` for an unknown encoding, an empty image, a step too
    short for a row, or a buffer shorter than ``step * height``.
    """
    if encoding not in _ENCODINGS:
        raise DepthError(f"depth encoding '{encoding}' not supported; accepted: "
                         + ", ".join(_ENCODINGS))
    if width <= 0 or height <= 0:
        raise DepthError(f"empty depth image ({width}x{height})")
    dtype, scale = _ENCODINGS[encoding]
    item = np.dtype(dtype).itemsize
    if step < width * item:
        raise DepthError(f"depth step {step} B is shorter than a row of {width} x {item} B")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else data.reshape(-1).view(np.uint8)
    need = step * (height - 1) + width * item
    if buf.size < need:
        raise DepthError(f"depth image truncated: {buf.size} B for {width}x{height} "
                         f"{encoding} with step {step} (needs {need} B)")
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, width * item),
                                           strides=(step, 1))
    dt = np.dtype(dtype).newbyteorder(">" if is_bigendian else "<")
    img = np.ascontiguousarray(rows).view(dt).reshape(height, width)
    if dtype is np.uint16:
        out = img.astype(np.float32) * np.float32(scale)
        out[img == 0] = np.nan
    else:
        out = img.astype(np.float32)
        out[~np.isfinite(out) | (out <= 0.0)] = np.nan
    return out


def check_depth_info(info_size: tuple[int, int] | None, image_size: tuple[int, int]) -> None:
    """A depth image of ``image_size`` (width, height) needs a camera_info of its size.

    :raises DepthError: no camera_info yet (``info_size`` None) or one of another size.
    """
    if info_size is None:
        raise DepthError("no camera/depth/camera_info received yet")
    if tuple(info_size) != tuple(image_size):
        raise DepthError(f"camera_info is for {info_size[0]}x{info_size[1]}, the image is "
                         f"{image_size[0]}x{image_size[1]}")


def check_intrinsics(K: np.ndarray | Sequence[float], width: int, height: int) -> np.ndarray:
    """``K`` as a 3x3 array, or :class:`DepthError` if it is not a usable pinhole model for a
    ``width`` x ``height`` image (focal lengths > 0, principal point inside the image)."""
    k = np.asarray(K, dtype=np.float64)
    if k.size != 9:
        raise DepthError(f"camera matrix K has {k.size} values, 9 needed")
    k = k.reshape(3, 3)
    if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise DepthError(f"camera matrix K has non-positive or non-finite focal lengths "
                         f"(fx={k[0, 0]}, fy={k[1, 1]})")
    if not (0 <= k[0, 2] <= width and 0 <= k[1, 2] <= height):
        raise DepthError(f"principal point ({k[0, 2]:.1f}, {k[1, 2]:.1f}) lies outside the "
                         f"{width}x{height} image: camera_info does not match the image")
    return k


# ------------------------------------------------------------------------------ geometry
class _Rays:
    """Cached normalised pixel rays for one (K, size, stride)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.rx = self.ry = None

    def get(self, K: np.ndarray, w: int, h: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
        key = (tuple(np.round(K.reshape(-1), 6)), w, h, stride)
        if key != self.key:
            u = np.arange(0, w, stride, dtype=np.float32)
            v = np.arange(0, h, stride, dtype=np.float32)
            self.rx = ((u - K[0, 2]) / K[0, 0]).astype(np.float32)[None, :].repeat(len(v), 0)
            self.ry = ((v - K[1, 2]) / K[1, 1]).astype(np.float32)[:, None].repeat(len(u), 1)
            self.key = key
        return self.rx, self.ry


_RAYS = _Rays()


def depth_to_points(depth_m: np.ndarray, K: np.ndarray, *, stride: int = 1,
                    min_range_m: float = 0.1, max_range_m: float = 10.0,
                    rays: _Rays | None = None) -> np.ndarray:
    """Valid depth pixels -> (N, 3) float32 points in the optical frame [m].

    A pixel is valid when its depth is finite and within [min_range_m, max_range_m].
    """
    d = np.asarray(depth_m)
    if d.ndim != 2 or d.size == 0:
        raise DepthError(f"depth image must be a non-empty 2-D array, got shape {d.shape}")
    h, w = d.shape
    k = check_intrinsics(K, w, h)
    rx, ry = (rays or _RAYS).get(k, w, h, stride)
    if stride > 1:
        d = d[::stride, ::stride]
    with np.errstate(invalid="ignore"):
        m = (d >= min_range_m) & (d <= max_range_m)       # NaN compares False
    z = d[m].astype(np.float32)
    return np.stack([rx[m] * z, ry[m] * z, z], axis=1)


def mount_transform(description, parent: str, child: str) -> np.ndarray:
    """4x4 transform of frame ``child`` in ``parent`` through the URDF's fixed joints
    (a :class:`sitebot.description.urdf.RobotDescription`); ValueError if the chain is not fixed."""
    from sitebot.description.kinematics import fixed_transform
    return fixed_transform(description, parent, child)


def transform_points(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points (float32 out)."""
    T = np.asarray(T, dtype=np.float32)
    return p @ T[:3, :3].T + T[:3, 3]


def voxel_downsample(points: np.ndarray, voxel_m: float) -> np.ndarray:
    """Open3D voxel grid filter (the centroid of each occupied voxel); (M, 3) float32."""
    if len(points) == 0 or voxel_m <= 0:
        return np.asarray(points, dtype=np.float32).reshape(-1, 3)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    return np.asarray(pc.voxel_down_sample(voxel_m).points, dtype=np.float32)


def camera_fov_check(T_base_cam: np.ndarray, K: np.ndarray, width: int, height: int,
                     xy_base: np.ndarray, z_m: float = 1.0, max_range_m: float = 6.0
                     ) -> np.ndarray:
    """Whether points (N, 2) of the base frame at height ``z_m`` project into the image and
    lie within ``max_range_m`` of the camera (bool (N,))."""
    xy = np.asarray(xy_base, dtype=np.float64).reshape(-1, 2)
    p = np.column_stack([xy, np.full(len(xy), z_m)])
    Tinv = np.linalg.inv(T_base_cam)
    c = p @ Tinv[:3, :3].T + Tinv[:3, 3]
    z = c[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * c[:, 0] / z + K[0, 2]
        v = K[1, 1] * c[:, 1] / z + K[1, 2]
    return (z > 0.2) & (u >= 0) & (u < width) & (v >= 0) & (v < height) & \
        (np.linalg.norm(c, axis=1) <= max_range_m)


# ------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class CloudConfig:
    """Parameters of the point cloud pipeline (units in the names).

    ``max_obstacle_height_m`` bounds what is clustered (people included: keep it above the
    tallest person); the local map has its own height band.
    """

    stride: int = 1
    min_range_m: float = 0.15
    max_range_m: float = 8.0
    voxel_m: float = 0.05
    ground_band_m: float = 0.15
    ground_max_tilt_deg: float = 8.0
    ground_distance_m: float = 0.03
    ransac_iterations: int = 60
    min_obstacle_height_m: float = 0.05
    max_obstacle_height_m: float = 2.3
    cluster_method: str = "grid"
    cluster_eps_m: float = 0.1
    cluster_min_points: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (("stride", 1, 16), ("min_range_m", 0.0, 5.0), ("max_range_m", 0.5, 100.0),
                  ("voxel_m", 0.0, 0.5), ("ground_band_m", 0.01, 1.0),
                  ("ground_max_tilt_deg", 0.0, 45.0), ("ground_distance_m", 0.005, 0.3),
                  ("ransac_iterations", 1, 10000), ("min_obstacle_height_m", 0.0, 1.0),
                  ("max_obstacle_height_m", 0.1, 10.0), ("cluster_eps_m", 0.01, 1.0),
                  ("cluster_min_points", 1, 10000))
        check_ranges(self, checks)
        if self.min_range_m >= self.max_range_m:
            raise ValueError("CloudConfig.min_range_m must be below max_range_m")
        if self.min_obstacle_height_m >= self.max_obstacle_height_m:
            raise ValueError("CloudConfig.min_obstacle_height_m must be below "
                             "max_obstacle_height_m")
        if self.cluster_method not in ("grid", "dbscan"):
            raise ValueError(f"CloudConfig.cluster_method={self.cluster_method!r}: accepted "
                             "'grid', 'dbscan'")


# ------------------------------------------------------------------------------ ground
def fit_ground(points: np.ndarray, cfg: CloudConfig) -> tuple[np.ndarray, bool]:
    """The ground plane (a, b, c, d) with unit normal, c > 0, from Open3D RANSAC over the
    points within ``ground_band_m`` of z = 0; ``(plane, True)`` when a plane passing the
    prior (tilt, height) was found, else ``((0, 0, 1, 0), False)``."""
    prior = np.array([0.0, 0.0, 1.0, 0.0])
    cand = points[np.abs(points[:, 2]) < cfg.ground_band_m]
    if len(cand) < 30:
        return prior, False
    o3d.utility.random.seed(cfg.seed)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cand.astype(np.float64)))
    try:
        plane, inliers = pc.segment_plane(cfg.ground_distance_m, 3, cfg.ransac_iterations)
    except RuntimeError:
        return prior, False
    plane = np.asarray(plane, dtype=np.float64)
    n = np.linalg.norm(plane[:3])
    if not np.isfinite(plane).all() or n < 1e-9 or len(inliers) < 20:
        return prior, False
    plane /= n
    if plane[2] < 0:
        plane = -plane
    height_at_origin = -plane[3] / plane[2]
    tilt_ok = plane[2] >= math.cos(math.radians(cfg.ground_max_tilt_deg))
    if not tilt_ok or abs(height_at_origin) > cfg.ground_band_m:
        return prior, False
    return plane, True


# ------------------------------------------------------------------------------ clusters
@dataclass
class Clusters:
    """Axis-aligned boxes of obstacle clusters: ``mins``/``maxs`` (K, 3) [m], ``counts``
    (K,), and ``labels`` (N,) of the clustered points (-1: noise)."""

    mins: np.ndarray
    maxs: np.ndarray
    counts: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def centers(self) -> np.ndarray:
        return (self.mins + self.maxs) / 2

    @property
    def sizes(self) -> np.ndarray:
        return self.maxs - self.mins

    @staticmethod
    def empty(n_points: int = 0) -> "Clusters":
        z = np.zeros((0, 3), np.float32)
        return Clusters(z, z.copy(), np.zeros(0, np.int64), np.full(n_points, -1, np.int64))


def _boxes(points: np.ndarray, labels: np.ndarray, min_points: int) -> Clusters:
    good = labels >= 0
    if not good.any():
        return Clusters.empty(len(points))
    lab = labels[good]
    p = points[good]
    order = np.argsort(lab, kind="stable")
    lab, p = lab[order], p[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    counts = np.diff(np.r_[starts, len(lab)])
    mins = np.minimum.reduceat(p, starts, axis=0)
    maxs = np.maximum.reduceat(p, starts, axis=0)
    keep = counts >= min_points
    ids = lab[starts]
    remap = np.full(int(labels.max()) + 1, -1, np.int64)
    remap[ids[keep]] = np.arange(int(keep.sum()))
    new_labels = np.where(labels >= 0, remap[np.maximum(labels, 0)], -1)
    return Clusters(mins[keep], maxs[keep], counts[keep], new_labels)


def cluster_points(points: np.ndarray, method: str = "grid", eps_m: float = 0.1,
                   min_points: int = 4) -> Clusters:
    """Cluster (N, 3) points into boxes.

    ``grid``: points binned into a 2-D grid of ``eps_m`` cells (x, y), 8-connected
    components labelled with ``scipy.ndimage.label`` (things stacked vertically merge, which
    is what a footprint wants). ``dbscan``: Open3D DBSCAN in 3-D with ``eps_m``.
    Clusters with fewer than ``min_points`` points are dropped.
    """
    n = len(points)
    if n == 0:
        return Clusters.empty(0)
    if method == "dbscan":
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
        labels = np.asarray(pc.cluster_dbscan(eps_m, max(1, min(min_points, 3))), np.int64)
        return _boxes(points, labels, min_points)
    ij = np.floor(points[:, :2] / eps_m).astype(np.int64)
    lo = ij.min(axis=0)
    ij -= lo
    shape = tuple(ij.max(axis=0) + 1)
    if shape[0] * shape[1] > 25_000_000:          # absurd extent: refuse rather than OOM
        raise ValueError(f"cluster grid of {shape} cells is too large")
    occ = np.zeros(shape, dtype=bool)
    occ[ij[:, 0], ij[:, 1]] = True
    lab, _ = ndimage.label(occ, structure=np.ones((3, 3), bool))
    labels = lab[ij[:, 0], ij[:, 1]].astype(np.int64) - 1
    return _boxes(points, labels, min_points)


# ------------------------------------------------------------------------------ pipeline
@dataclass
class CloudResult:
    """What one depth frame gave: ``points`` (downsampled, base frame), ``ground`` mask over
    them, ``heights`` above the ground plane, obstacle ``obstacle_points`` (base frame),
    their ``clusters``, the ground ``plane`` and whether RANSAC found it, and per-stage
    ``timings_ms``."""

    points: np.ndarray
    ground: np.ndarray
    heights: np.ndarray
    obstacle_points: np.ndarray
    clusters: Clusters
    plane: np.ndarray
    plane_found: bool
    timings_ms: dict[str, float] = field(default_factory=dict)


class CloudPipeline:
    """Depth image -> clusters in the base frame, for one camera mount ``T_base_cam``
    (4x4, optical frame in the base frame)."""

    def __init__(self, config: CloudConfig | None = None,
                 T_base_cam: np.ndarray | None = None) -> None:
        self.config = config or CloudConfig()
        self.T_base_cam = np.eye(4) if T_base_cam is None else np.asarray(T_base_cam, float)
        self._rays = _Rays()

    def process(self, depth_m: np.ndarray, K: np.ndarray) -> CloudResult:
        cfg = self.config
        t0 = time.perf_counter()
        pts_cam = depth_to_points(depth_m, K, stride=cfg.stride, min_range_m=cfg.min_range_m,
                                  max_range_m=cfg.max_range_m, rays=self._rays)
        pts = transform_points(self.T_base_cam, pts_cam)
        t1 = time.perf_counter()
        pts = voxel_downsample(pts, cfg.voxel_m)
        t2 = time.perf_counter()
        plane, found = fit_ground(pts, cfg)
        heights = (pts.astype(np.float64) @ plane[:3] + plane[3]).astype(np.float32)
        ground = np.abs(heights) <= max(cfg.ground_distance_m, cfg.min_obstacle_height_m)
        obst = (heights >= cfg.min_obstacle_height_m) & (heights <= cfg.max_obstacle_height_m)
        t3 = time.perf_counter()
        obstacle_points = pts[obst]
        clusters = cluster_points(obstacle_points, cfg.cluster_method, cfg.cluster_eps_m,
                                  cfg.cluster_min_points)
        t4 = time.perf_counter()
        return CloudResult(pts, ground, heights, obstacle_points, clusters, plane, found,
                           {"project_ms": (t1 - t0) * 1e3, "voxel_ms": (t2 - t1) * 1e3,
                            "ground_ms": (t3 - t2) * 1e3, "cluster_ms": (t4 - t3) * 1e3,
                            "total_ms": (t4 - t0) * 1e3})
