"""Fiducial fixes: from a detected tag pose to the filter's landmark measurement, and a
simulated tag detector for evaluations (ground truth -> detector-like fixes).

A fix is the observed tag in the robot's base frame, reduced to the plane:
``(bx, by, byaw)`` = tag centre position and the direction its face looks, plus the tag's
height (checked against the survey: a wrong id or a bad pose rarely keeps the height).
Tag poses follow OpenCV's convention (x right, y down, z into the face), so the face looks
along the tag frame's -z axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sitebot.localization.ekf import Measurement
from sitebot.types import Pose2D, quaternion_matrix

__all__ = ["PlanarFix", "planar_fix", "planar_fix_covariance", "fix_measurement",
           "detection_measurement", "SimulatedDetector"]


@dataclass(frozen=True)
class PlanarFix:
    tag: int
    bx: float
    by: float
    byaw: float
    height: float


def planar_fix(tag: int, T_base_tag: np.ndarray) -> PlanarFix:
    """The planar fix of a tag pose in the base frame (4x4, OpenCV tag convention)."""
    T = np.asarray(T_base_tag, dtype=np.float64)
    normal = -T[:3, 2]
    return PlanarFix(int(tag), float(T[0, 3]), float(T[1, 3]),
                     math.atan2(normal[1], normal[0]), float(T[2, 3]))


def planar_fix_covariance(cov6_cam: np.ndarray, R_base_cam: np.ndarray) -> np.ndarray:
    """3x3 covariance of (bx, by, byaw) from a detector's 6x6 covariance in the camera
    frame (x y z, then rotation about x y z): both blocks rotated into the base frame;
    position-rotation cross terms are dropped."""
    c = np.asarray(cov6_cam, dtype=np.float64).reshape(6, 6)
    R = np.asarray(R_base_cam, dtype=np.float64)
    pos = R @ c[:3, :3] @ R.T
    rot = R @ c[3:, 3:] @ R.T
    out = np.zeros((3, 3))
    out[:2, :2] = pos[:2, :2]
    out[2, 2] = rot[2, 2]
    return 0.5 * (out + out.T)


def fix_measurement(fix: PlanarFix, stamp: float, cov: np.ndarray | None = None) -> Measurement:
    return Measurement("fiducial", stamp, [fix.bx, fix.by, fix.byaw], cov, tag=fix.tag,
                       height=fix.height)


def detection_measurement(tag: int, stamp: float, p_base_tag: Sequence[float],
                          q_base_tag: Sequence[float], cov6_cam: Sequence[float] | None = None,
                          q_cam_tag: Sequence[float] | None = None) -> Measurement:
    """The filter measurement of one detected tag (a FiducialDetection's content).

    ``p_base_tag``, ``q_base_tag``: the tag's pose in the base frame (position, quaternion
    x y z w; OpenCV tag axes), reduced to a :class:`PlanarFix`. With ``cov6_cam`` (the
    detector's 6x6 covariance in the camera optical frame, 36 numbers) and ``q_cam_tag``
    (the tag's orientation in that frame) the fix's covariance is that one rotated into the
    base frame (``R_base_cam = R_base_tag R_cam_tag^T``); without them it is None (the
    filter's ``model`` or ``fixed`` policy applies).

    :raises ValueError: a quaternion that is not a rotation, a covariance not of 36 numbers.
    """
    T = np.eye(4)
    T[:3, :3] = quaternion_matrix(q_base_tag)
    T[:3, 3] = [float(v) for v in p_base_tag]
    fix = planar_fix(int(tag), T)
    cov = None
    if cov6_cam is not None and q_cam_tag is not None:
        cov = planar_fix_covariance(np.asarray(cov6_cam, dtype=np.float64).reshape(6, 6),
                                    T[:3, :3] @ quaternion_matrix(q_cam_tag).T)
    return fix_measurement(fix, stamp, cov)


class SimulatedDetector:
    """Detector-like fixes from ground truth: the markers inside the camera frustum, facing
    the camera, large enough in the image and not occluded (a ray cast in the simulation),
    with corner-pixel noise propagated to position (across and along the line of sight)
    and yaw, and a small fraction of gross outliers (a flipped or misread pose).

    ``markers``: tag -> (x, y, z, yaw, size); ``T_base_cam``: 4x4 pose of the optical frame
    in the base frame; ``K``: intrinsics; ``image_size``: (width, height).
    """

    def __init__(self, markers, T_base_cam: np.ndarray, K: np.ndarray,
                 image_size: tuple[int, int], *, pixel_std: float = 0.5,
                 min_size_px: float = 12.0, max_angle_rad: float = math.radians(65.0),
                 max_range_m: float = 6.0, outlier_rate: float = 0.02,
                 client_id: int | None = None) -> None:
        self.markers = markers
        self.T_base_cam = np.asarray(T_base_cam, dtype=np.float64)
        self.K = np.asarray(K, dtype=np.float64)
        self.size = image_size
        self.pixel_std = pixel_std
        self.min_size_px = min_size_px
        self.max_angle = max_angle_rad
        self.max_range = max_range_m
        self.outlier_rate = outlier_rate
        self.client_id = client_id

    def visible(self, pose: Pose2D) -> list[tuple[int, np.ndarray]]:
        """(tag, tag centre in the camera frame) of the markers seen from base ``pose``."""
        x, y, yaw = pose
        c, s = math.cos(yaw), math.sin(yaw)
        T_map_base = np.array([[c, -s, 0, x], [s, c, 0, y], [0, 0, 1, 0], [0, 0, 0, 1.0]])
        T_map_cam = T_map_base @ self.T_base_cam
        R_cm = T_map_cam[:3, :3].T
        cam = T_map_cam[:3, 3]
        f = self.K[0, 0]
        w, h = self.size
        out = []
        for tag, (mx, my, mz, myaw, size) in self.markers.items():
            p = np.array([mx, my, mz])
            pc = R_cm @ (p - cam)
            if pc[2] < 0.3 or np.linalg.norm(pc) > self.max_range:
                continue
            if f * size / pc[2] < self.min_size_px:
                continue
            n = np.array([math.cos(myaw), math.sin(myaw), 0.0])
            to_cam = cam - p
            if n @ to_cam <= math.cos(self.max_angle) * np.linalg.norm(to_cam):
                continue
            half = 0.5 * size
            side = np.array([-math.sin(myaw), math.cos(myaw), 0.0])
            inside = True
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                q = R_cm @ (p + du * half * side + dv * half * np.array([0, 0, 1.0]) - cam)
                if q[2] <= 0:
                    inside = False
                    break
                u = self.K[0, 0] * q[0] / q[2] + self.K[0, 2]
                v = self.K[1, 1] * q[1] / q[2] + self.K[1, 2]
                if not (2 <= u <= w - 3 and 2 <= v <= h - 3):
                    inside = False
                    break
            if not inside or not self._line_of_sight(cam, p + 0.03 * n):
                continue
            out.append((tag, pc))
        return out

    def _line_of_sight(self, a: np.ndarray, b: np.ndarray) -> bool:
        if self.client_id is None:
            return True
        import pybullet as pb
        d = b - a
        start = a + 0.08 * d / np.linalg.norm(d)        # clear of the robot's own camera
        hit = pb.rayTest(start.tolist(), b.tolist(), physicsClientId=self.client_id)[0]
        return hit[0] < 0

    def detect(self, pose: Pose2D, rng: np.random.Generator
               ) -> list[tuple[PlanarFix, PlanarFix]]:
        """(noisy fix, true fix) per visible marker from the true base ``pose``."""
        out = []
        x, y, yaw = pose
        c, s = math.cos(yaw), math.sin(yaw)
        R_bc = self.T_base_cam[:3, :3]
        f = self.K[0, 0]
        for tag, pc in self.visible(pose):
            mx, my, mz, myaw, size = self.markers[tag]
            dx, dy = mx - x, my - y
            true = PlanarFix(tag, c * dx + s * dy, -s * dx + c * dy,
                             math.atan2(math.sin(myaw - yaw), math.cos(myaw - yaw)), mz)
            z = pc[2]
            sp = self.pixel_std
            noise_c = np.array([rng.normal(0, sp * z / f / 2), rng.normal(0, sp * z / f / 2),
                                rng.normal(0, sp * z * z / (f * size) / 1.4)])
            nb = R_bc @ noise_c
            dyaw = rng.normal(0, 1.5 * sp * z / (f * size))
            fx, fy, fyaw = true.bx + nb[0], true.by + nb[1], true.byaw + dyaw
            if rng.random() < self.outlier_rate:          # pose ambiguity / misread
                fyaw += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.2)
                fx, fy = fx * rng.uniform(1.2, 1.5), fy + rng.uniform(-0.5, 0.5)
            fyaw = math.atan2(math.sin(fyaw), math.cos(fyaw))
            out.append((PlanarFix(tag, fx, fy, fyaw, mz + nb[2]), true))
        return out
