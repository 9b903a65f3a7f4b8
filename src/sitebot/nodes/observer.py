"""An evaluation observer: records ground truth and odometry for reports.

Used by ``sitebot demo`` (and later by regression runs). It is the one place that reads the
simulator's ground-truth topics; no node of the stack does.
"""
from __future__ import annotations

import math
import threading

import rclpy
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rosgraph_msgs.msg import Clock

from ..kinematics import quaternion_to_yaw
from .common import QOS_STATE

__all__ = ["TrajectoryObserver"]


def _pose(msg: Odometry) -> tuple[float, float, float, float]:
    p = msg.pose.pose
    q = (p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w)
    t = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    return (t, p.position.x, p.position.y, quaternion_to_yaw(q))


class TrajectoryObserver:
    """Own context and executor thread; ``truth`` and ``odom`` are lists of (t, x, y, yaw)."""

    def __init__(self, namespace: str = "") -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("mission_observer", namespace=namespace or None,
                                      context=self.context)
        self.truth: list[tuple[float, float, float, float]] = []
        self.odom: list[tuple[float, float, float, float]] = []
        self.sim_time_s = math.nan
        self.lock = threading.Lock()
        self.node.create_subscription(Odometry, "ground_truth/odom", self._on_truth, QOS_STATE)
        self.node.create_subscription(Odometry, "odom", self._on_odom, QOS_STATE)
        self.node.create_subscription(Clock, "/clock", self._on_clock, QOS_STATE)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_truth(self, msg: Odometry) -> None:
        with self.lock:
            self.truth.append(_pose(msg))

    def _on_odom(self, msg: Odometry) -> None:
        with self.lock:
            self.odom.append(_pose(msg))

    def _on_clock(self, msg: Clock) -> None:
        self.sim_time_s = msg.clock.sec + msg.clock.nanosec * 1e-9

    def snapshot(self) -> tuple[list, list]:
        with self.lock:
            return list(self.truth), list(self.odom)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
