"""Where a tool really is relative to the robot: surveyed positions corrected by the tool
station's fiducial.

The registry surveys tools relative to the site; the robot's pose estimate (EKF) carries a
few centimetres of error, and the gripper's fingers open only 2 cm wider than a tool on each
side. A tool station carries a surveyed AprilTag: where the robot's pose puts the freshly
detected tag, minus where it was surveyed, is the pose error at that spot. Shifting the
tool by that offset puts it where the camera says it is relative to the robot; the arm
planner's map-to-base transform then cancels the pose error.

Before that, perception refines the surveyed position: a small obstacle cluster close to it
is the tool itself (:func:`perceived_position`).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, NamedTuple, Sequence

from sitebot.site.registry import Marker
from sitebot.types import Pose2D

__all__ = ["Cluster", "perceived_position", "station_offset"]


class Cluster(NamedTuple):
    """A perceived obstacle cluster: centre (x, y) and full size (x, y, z) [m]."""
    x: float
    y: float
    size_x: float
    size_y: float
    size_z: float


def perceived_position(surveyed: Sequence[float], clusters: Iterable[Cluster],
                       pose: Sequence[float], in_map: bool, match_m: float = 0.15,
                       max_size_m: float = 0.4) -> tuple[float, float, float]:
    """Where an object surveyed at ``surveyed`` (x, y, z, map frame) is: the centre of the
    small perceived cluster (no side over ``max_size_m``) nearest to it within ``match_m``,
    at the surveyed height; else the surveyed position.  ``clusters`` are in the map frame
    when ``in_map``, else in the base frame of the robot at ``pose`` (x, y, yaw)."""
    px, py, pz = surveyed
    robot = Pose2D.of(pose)
    best, best_d = None, match_m
    for c in clusters:
        if not (max(c.size_x, c.size_y) <= max_size_m and c.size_z <= max_size_m):
            continue
        mx, my = (c.x, c.y) if in_map else robot.compose((c.x, c.y, 0.0))[:2]
        d = math.hypot(mx - px, my - py)
        if d < best_d:
            best, best_d = (mx, my, pz), d
    return best or tuple(surveyed)


def station_offset(pose: Sequence[float] | None, near: Sequence[float],
                   markers: Iterable[Marker],
                   seen: Mapping[int, tuple[float, tuple[float, float]]], now: float,
                   radius_m: float = 1.5, max_age_s: float = 1.0,
                   max_offset_m: float = 0.3, min_offset_m: float = 0.03
                   ) -> tuple[float, float] | None:
    """(dx, dy) [m, map frame] to add to a surveyed position near ``near``.

    ``pose``: the robot's (x, y, yaw) estimate; ``seen``: tag -> (arrival time, (x, y) of
    the tag in the base frame) from the latest detections. The tag nearest ``near`` within
    ``radius_m`` that was seen in the last ``max_age_s`` decides; an offset over
    ``max_offset_m`` (a misdetection, or the robot lost) is not used, and neither is one
    under ``min_offset_m``: a tag seen from 1 m is itself only good to 1-2 cm, no better
    than the EKF next to a station (seen in simulation), so small offsets are noise.
    None: no correction.
    """
    if pose is None or not all(math.isfinite(v) for v in pose):
        return None
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    best = None
    for m in markers:
        d_near = math.hypot(m.x - near[0], m.y - near[1])
        got = seen.get(m.tag)
        if got is None or now - got[0] > max_age_s or d_near > radius_m:
            continue
        bx, by = got[1]
        dx, dy = x + c * bx - s * by - m.x, y + s * bx + c * by - m.y
        if math.hypot(dx, dy) <= max_offset_m and (best is None or d_near < best[0]):
            best = (d_near, (dx, dy))
    if best is None or math.hypot(*best[1]) < min_offset_m:
        return None
    return best[1]
