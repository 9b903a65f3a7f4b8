"""Synthetic camera images for tests: textured planes (tags, dials) warped with OpenCV into a
pinhole image at known poses (no simulator).  Textures come from :mod:`sitebot.sim.textures`.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from sitebot.sim.textures import render_gauge_dial, tag_image
from sitebot.sim.world import TAG_MODULES, TAG_QUIET_ZONE_MODULES, DialSpec

__all__ = ["pinhole_K", "look_pose", "paste_plane", "tag_texture", "dial_texture"]


def pinhole_K(width: int = 640, height: int = 480, hfov_deg: float = 70.0) -> np.ndarray:
    """The simulator's camera matrix for this size and horizontal field of view."""
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[f, 0, (width - 1) / 2.0], [0, f, (height - 1) / 2.0], [0, 0, 1.0]])


def look_pose(distance_m: float, yaw_deg: float = 0.0, pitch_deg: float = 0.0,
              roll_deg: float = 0.0, offset=(0.0, 0.0)) -> np.ndarray:
    """T_cam_plane of a plane facing the camera (its z into the face = away from the camera)
    at *distance_m*, turned by yaw (about the plane's y), pitch (x) and roll (z)."""
    def rx(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    def ry(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    def rz(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = ry(math.radians(yaw_deg)) @ rx(math.radians(pitch_deg)) @ rz(math.radians(roll_deg))
    T[:3, 3] = (offset[0], offset[1], distance_m)
    return T


def tag_texture(tag_id: int, size_m: float, module_px: int = 16) -> tuple[np.ndarray, float]:
    """(RGB texture incl. quiet zone, its half edge [m]) of a tag with black edge *size_m*."""
    img = tag_image(tag_id, module_px)
    half = size_m * (TAG_MODULES + 2 * TAG_QUIET_ZONE_MODULES) / TAG_MODULES / 2.0
    return img[:, :, ::-1].copy(), half


def dial_texture(spec: DialSpec, value: float, size_px: int = 512) -> np.ndarray:
    """RGB dial face texture (spans the dial's full diameter)."""
    return render_gauge_dial(spec, value, size_px)[:, :, ::-1].copy()


def paste_plane(image: np.ndarray, K: np.ndarray, T_cam_plane: np.ndarray,
                texture: np.ndarray, half_w: float, half_h: float | None = None) -> None:
    """Draw *texture* (spanning [-half_w, half_w] x [-half_h, half_h] of the plane's x right,
    y down) into *image* in place."""
    half_h = half_w if half_h is None else half_h
    th, tw = texture.shape[:2]
    src = np.array([[-0.5, -0.5], [tw - 0.5, -0.5], [tw - 0.5, th - 0.5], [-0.5, th - 0.5]],
                   np.float32)
    P = np.array([[-half_w, -half_h, 0], [half_w, -half_h, 0], [half_w, half_h, 0],
                  [-half_w, half_h, 0]], float)
    Pc = P @ T_cam_plane[:3, :3].T + T_cam_plane[:3, 3]
    uv = (K @ Pc.T).T
    dst = (uv[:, :2] / uv[:, 2:3]).astype(np.float32)
    H = cv2.getPerspectiveTransform(src, dst)
    h, w = image.shape[:2]
    warped = cv2.warpPerspective(texture, H, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), H, (w, h),
                               flags=cv2.INTER_LINEAR)
    a = (mask.astype(np.float32) / 255.0)[..., None]
    image[:] = (image.astype(np.float32) * (1 - a) + warped.astype(np.float32) * a).astype(np.uint8)
