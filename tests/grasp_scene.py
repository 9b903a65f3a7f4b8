"""A bench with an object on it, rendered by the simulator's RGB-D camera from where the
robot's mast camera sits (tests of object segmentation and grasp planning).

The world frame is the robot's base frame (``base_footprint`` at the origin, no robot
body). The camera sits at the URDF's ``camera_link`` position (x -0.16 m, z 1.33 m) but
pitched further down than the URDF's 15 deg (40 deg by default) so that a bench 0.5-0.85 m
high, 0.5-0.6 m ahead of the base, is in view (see the notes on the mast camera's view).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pybullet as pb

from sitebot.arm.kinematics import pose_matrix
from sitebot.sim.sensors import Camera, CameraConfig
from sitebot.types import rpy_matrix, rpy_to_quaternion

CAMERA_XYZ = (-0.16, 0.0, 1.33)
#: optical frame (z forward, x right, y down) in camera_link (x forward, z up), as the URDF
LINK_TO_OPTICAL = pose_matrix((0.0, 0.0, 0.0), rpy_matrix(-math.pi / 2, 0.0, -math.pi / 2))
WRENCH = (0.20, 0.04, 0.03)           # a tool-sized box [m]
BENCH_FRONT_X = 0.33                  # the bench's edge nearest the robot [m]


@dataclass(frozen=True)
class Shot:
    depth_m: np.ndarray
    K: np.ndarray
    T_base_optical: np.ndarray
    width: int
    height: int


def camera_pose(pitch_deg: float = 40.0) -> np.ndarray:
    """4x4 pose of the camera's optical frame in the base frame."""
    link = pose_matrix(CAMERA_XYZ, rpy_matrix(0.0, math.radians(pitch_deg), 0.0))
    return link @ LINK_TO_OPTICAL


def render(bench_top_m: float = 0.5, obj_xy: Sequence[float] | None = (0.55, 0.0),
           obj_size: Sequence[float] = WRENCH, obj_yaw: float = 0.0,
           pitch_deg: float = 40.0, boxes: Sequence[tuple] = (),
           size: tuple[int, int] = (640, 480)) -> Shot:
    """Render the bench (0.6 x 1.2 m, front edge at ``BENCH_FRONT_X``, top at
    ``bench_top_m``) with a box ``obj_size`` lying on it at ``obj_xy`` turned ``obj_yaw``
    [rad] (None: an empty bench) and extra ``boxes`` ((centre, size, yaw), ...)."""
    cid = pb.connect(pb.DIRECT)
    try:
        def box(centre, dims, yaw=0.0, rgba=(0.5, 0.5, 0.5, 1.0)) -> None:
            half = [d / 2 for d in dims]
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=cid)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba,
                                       physicsClientId=cid)
            pb.createMultiBody(0, col, vis, list(centre), rpy_to_quaternion(0, 0, yaw),
                               physicsClientId=cid)
        box((BENCH_FRONT_X + 0.3, 0.0, bench_top_m / 2), (0.6, 1.2, bench_top_m), 0.0,
            (0.45, 0.33, 0.2, 1.0))
        if obj_xy is not None:
            box((obj_xy[0], obj_xy[1], bench_top_m + obj_size[2] / 2), obj_size, obj_yaw,
                (0.95, 0.8, 0.1, 1.0))
        for c, s, yaw in boxes:
            box(c, s, yaw)
        # an invisible body carrying the camera; link -1: a REP-103 body frame (x forward)
        body = pb.createMultiBody(0, -1, -1, list(CAMERA_XYZ),
                                  rpy_to_quaternion(0.0, math.radians(pitch_deg), 0.0),
                                  physicsClientId=cid)
        cam = Camera(cid, body, -1, CameraConfig(width=size[0], height=size[1]))
        frame = cam.render()
        return Shot(frame.depth_m, frame.K, camera_pose(pitch_deg), frame.width, frame.height)
    finally:
        pb.disconnect(cid)


def pixel_ray_on_plane(shot: Shot, u: float, v: float, z: float) -> np.ndarray:
    """The base-frame point at height ``z`` seen at pixel (u, v)."""
    K, T = shot.K, shot.T_base_optical
    d = T[:3, :3] @ np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])
    o = T[:3, 3]
    return o + d * (z - o[2]) / d[2]
