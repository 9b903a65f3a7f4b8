"""Where the robot is, in the map frame, and what the other frames are worth there.

Core only (no ROS; time is an argument). The navigation works in the map frame; its inputs
come in three:

* ``pose_source: dead_reckoning``: wheel odometry (odom frame) composed with the world's
  spawn pose, which is then also the map->odom transform;
* ``pose_source: filter``: the localization's estimate, already in the map frame; the
  map->odom transform follows from it and the latest odometry;
* a pose older than ``pose_timeout_s`` is no pose (the base stops).

:class:`PoseTracker` keeps both sources and the map->odom transform, and puts goals, local
grids and people given in the map, odom or base frame into the map frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from sitebot.errors import SitebotError
from sitebot.types import Pose2D, se2_compose, se2_inverse

__all__ = ["POSE_SOURCES", "FrameConfig", "PoseTracker"]

POSE_SOURCES = ("filter", "dead_reckoning")


@dataclass(frozen=True)
class FrameConfig:
    pose_source: str = "dead_reckoning"     # 'filter' | 'dead_reckoning'
    map_frame: str = "map"
    odom_frame: str = "odom"
    pose_timeout_s: float = 0.5             # a pose older than this is no pose

    def __post_init__(self) -> None:
        if self.pose_source not in POSE_SOURCES:
            raise SitebotError(f"frames: 'pose_source' must be one of {POSE_SOURCES}, got "
                               f"{self.pose_source!r}")
        if not (math.isfinite(self.pose_timeout_s) and self.pose_timeout_s > 0):
            raise SitebotError(f"frames: 'pose_timeout_s' must be a positive number, got "
                               f"{self.pose_timeout_s!r}")


def _finite(pose: Sequence[float]) -> Pose2D:
    pose = Pose2D.of(pose)
    if not pose.is_finite():
        raise ValueError(f"non-finite pose {pose}")
    return pose


class PoseTracker:
    """The robot's pose in the map frame from odometry (composed with ``spawn``) or the
    filter, and the map->odom transform (``map_odom``; None until known)."""

    def __init__(self, spawn: Sequence[float], config: FrameConfig = FrameConfig()) -> None:
        self.spawn = Pose2D.of(spawn)
        self.cfg = config
        self.odom_pose: Pose2D | None = None
        self.odom_t = -math.inf
        self.filter_pose: Pose2D | None = None
        self.filter_t = -math.inf
        self.map_odom: Pose2D | None = None

    def set_odom(self, pose: Sequence[float], t: float) -> None:
        """Wheel odometry (odom frame) at time ``t``; ValueError for non-finite values."""
        pose = _finite(pose)
        self.odom_pose, self.odom_t = pose, t
        if self.cfg.pose_source == "dead_reckoning":
            self.map_odom = self.spawn
        elif self.filter_pose is not None:
            self.map_odom = se2_compose(self.filter_pose, se2_inverse(pose))

    def set_filter(self, pose: Sequence[float], frame: str, t: float) -> None:
        """The filter's estimate, which must be in the map frame; ValueError otherwise."""
        if frame != self.cfg.map_frame:
            raise ValueError(f"frame '{frame}', expected '{self.cfg.map_frame}'")
        self.filter_pose, self.filter_t = _finite(pose), t

    def pose(self, now: float) -> Pose2D | None:
        """The robot's pose in the map frame, None when the source is silent or stale."""
        if self.cfg.pose_source == "filter":
            pose, t = self.filter_pose, self.filter_t
        else:
            pose, t = self.odom_pose, self.odom_t
            if pose is not None:
                pose = se2_compose(self.spawn, pose)
        if pose is None or now - t > self.cfg.pose_timeout_s:
            return None
        return pose

    def goal_in_map(self, pose: Sequence[float], frame: str) -> Pose2D:
        """A goal given in the map or the odom frame, in the map frame; SitebotError for
        another frame (or the odom frame before the map->odom transform is known)."""
        if frame == self.cfg.map_frame:
            return Pose2D.of(pose)
        if frame == self.cfg.odom_frame and self.map_odom is not None:
            return se2_compose(self.map_odom, pose)
        raise SitebotError(f"goal pose in unknown frame '{frame}' (accepted: "
                           f"'{self.cfg.map_frame}', '{self.cfg.odom_frame}')")

    def grid_in_map(self, origin: Sequence[float], frame: str) -> Pose2D | None:
        """The origin of a grid given in the map or the odom frame, in the map frame; None
        while the map->odom transform is unknown; ValueError for another frame."""
        if frame == self.cfg.map_frame:
            return Pose2D.of(origin)
        if frame == self.cfg.odom_frame:
            return None if self.map_odom is None else se2_compose(self.map_odom, origin)
        raise ValueError(f"unknown frame '{frame}' (expected '{self.cfg.odom_frame}' "
                         f"or '{self.cfg.map_frame}')")

    def points_in_map(self, points: Iterable[tuple[float, float]], frame: str,
                      now: float) -> list[tuple[float, float]]:
        """Points (people) in the map frame or, any other frame, in the robot's base frame,
        put in the map frame; non-finite ones and, without a fresh pose, those in the base
        frame are dropped."""
        pose = self.pose(now)
        out = []
        for x, y in points:
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            if frame == self.cfg.map_frame:
                out.append((x, y))
            elif pose is not None:
                px, py, _ = se2_compose(pose, (x, y, 0.0))
                out.append((px, py))
        return out
