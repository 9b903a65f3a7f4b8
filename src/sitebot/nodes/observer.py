"""An evaluation observer: records ground truth and odometry for reports.

Used by ``sitebot demo`` (and later by regression runs). It is the one place that reads the
simulator's ground-truth topics; no node of the stack does.
"""
from __future__ import annotations

import math

from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock

from sitebot.types import quaternion_to_yaw
from sitebot.nodes.recorder import TopicRecorder

__all__ = ["TrajectoryObserver"]


def _pose(t: float, msg: Odometry) -> tuple[float, float, float, float]:
    p = msg.pose.pose
    q = (p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w)
    return (t, p.position.x, p.position.y, quaternion_to_yaw(q))


class TrajectoryObserver(TopicRecorder):
    """Records ``ground_truth/odom``, ``odom`` and ``/clock``; :meth:`snapshot` gives the
    truth and odometry as lists of (t, x, y, yaw)."""

    def __init__(self) -> None:
        super().__init__("mission_observer")
        self.subscribe(Odometry, "ground_truth/odom")
        self.subscribe(Odometry, "odom")
        self.subscribe(Clock, "/clock", keep=False)

    @property
    def sim_time_s(self) -> float:
        clock = self.get("/clock")
        return clock[-1][0] if clock else math.nan

    def snapshot(self) -> tuple[list, list]:
        return ([_pose(t, m) for t, m in self.get("ground_truth/odom")],
                [_pose(t, m) for t, m in self.get("odom")])
