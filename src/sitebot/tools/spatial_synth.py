"""Synthetic depth images and scans of known geometry (analytic ray casting, numpy only):
for unit tests and benchmarks of the spatial pipelines without the simulator.

Scenes are in the base frame: a floor at z = 0, upright boxes (centre x, y, size x, y, z,
yaw) standing on the floor, and upright cylinders (x, y, radius, height).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["render_depth", "render_scan", "default_camera"]


def default_camera(width: int = 320, height: int = 240, hfov_deg: float = 70.0) -> np.ndarray:
    f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


def _box_hits(o: np.ndarray, d: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Ray parameter t of the first hit of rays o + t d with an upright box (inf: none)."""
    cx, cy, sx, sy, sz, yaw = box
    c, s = math.cos(yaw), math.sin(yaw)
    R = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])            # world -> box
    oo = (o - np.array([cx, cy, 0.0])) @ R.T
    dd = d @ R.T
    lo = np.array([-sx / 2, -sy / 2, 0.0])
    hi = np.array([sx / 2, sy / 2, sz])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - oo) / dd
        t2 = (hi - oo) / dd
    tmin = np.nanmax(np.minimum(t1, t2), axis=-1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=-1)
    hit = (tmax >= np.maximum(tmin, 0.0)) & (tmin > 1e-6)
    return np.where(hit, tmin, np.inf)


def _cyl_hits(o: np.ndarray, d: np.ndarray, cyl: Sequence[float]) -> np.ndarray:
    x, y, r, h = cyl
    ox, oy = o[..., 0] - x, o[..., 1] - y
    dx, dy = d[..., 0], d[..., 1]
    a = dx * dx + dy * dy
    b = 2 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - r * r
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    z = o[..., 2] + t * d[..., 2]
    ok = (disc >= 0) & (t > 1e-6) & (z >= 0) & (z <= h)
    return np.where(ok, t, np.inf)


def render_depth(T_base_cam: np.ndarray, K: np.ndarray, width: int, height: int, *,
                 boxes: Sequence[Sequence[float]] = (), cylinders: Sequence[Sequence[float]] = (),
                 floor: bool = True, far_m: float = 20.0) -> np.ndarray:
    """Depth along the optical axis [m] (float32, inf where nothing within ``far_m``)."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rc = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d = rc @ np.asarray(T_base_cam)[:3, :3].T          # z = 1 along the optical axis
    o = np.broadcast_to(np.asarray(T_base_cam)[:3, 3], d.shape)
    t = np.full(d.shape[:2], np.inf)
    if floor:
        with np.errstate(divide="ignore", invalid="ignore"):
            tf = -o[..., 2] / d[..., 2]
        t = np.where((tf > 0) & np.isfinite(tf), tf, t)
    for b in boxes:
        t = np.minimum(t, _box_hits(o, d, b))
    for c in cylinders:
        t = np.minimum(t, _cyl_hits(o, d, c))
    t[t > far_m] = np.inf
    return t.astype(np.float32)       # t is the depth, since the ray has unit optical z


def render_scan(laser_pose: Sequence[float], n_beams: int = 720, *,
                circles: Sequence[Sequence[float]] = (), boxes: Sequence[Sequence[float]] = (),
                range_max: float = 20.0, noise_m: float = 0.0,
                rng: np.random.Generator | None = None, laser_z: float = 0.345
                ) -> tuple[np.ndarray, float, float]:
    """A 360 degree scan from a laser at ``laser_pose`` (x, y, yaw, base frame): circles
    (x, y, r) and boxes (cx, cy, sx, sy, yaw). Returns (ranges float32, angle_min,
    angle_increment); inf where nothing is hit within ``range_max``."""
    inc = 2 * math.pi / n_beams
    a = -math.pi + inc * np.arange(n_beams)
    lx, ly, lyaw = laser_pose
    d = np.column_stack([np.cos(a + lyaw), np.sin(a + lyaw), np.zeros(n_beams)])
    o = np.tile([lx, ly, laser_z], (n_beams, 1))
    t = np.full(n_beams, np.inf)
    for cx, cy, r in circles:
        t = np.minimum(t, _cyl_hits(o, d, (cx, cy, r, 10.0)))
    for cx, cy, sx, sy, yaw in boxes:
        t = np.minimum(t, _box_hits(o, d, (cx, cy, sx, sy, 10.0, yaw)))
    if noise_m > 0 and rng is not None:
        t = t + rng.normal(0, noise_m, n_beams)
    t[t > range_max] = np.inf
    return t.astype(np.float32), -math.pi, inc
