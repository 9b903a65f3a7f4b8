"""An independent rclpy observer for tests: its own context, node and executor thread.

It subscribes with the standard message types and records (sim-time stamp, message) per
topic, so a test can check types, rates and contents of what the stack publishes without
sharing anything with the nodes under test.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Callable

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile

from sitebot.nodes.common import QOS_LATCHED, QOS_SENSOR, QOS_STATE


def stamp_of(msg: Any) -> float:
    if hasattr(msg, "header"):
        s = msg.header.stamp
    elif hasattr(msg, "clock"):
        s = msg.clock
    elif hasattr(msg, "transforms") and msg.transforms:
        s = msg.transforms[0].header.stamp
    else:
        return float("nan")
    return s.sec + s.nanosec * 1e-9


class Probe:
    def __init__(self, name: str = "test_probe") -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.messages: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def subscribe(self, msg_type: type, topic: str, qos: QoSProfile | str = "state",
                  keep: bool = True) -> None:
        profile = {"sensor": QOS_SENSOR, "latched": QOS_LATCHED, "state": QOS_STATE}.get(qos, qos)

        def cb(msg: Any) -> None:
            with self.lock:
                self.messages[topic].append((stamp_of(msg), msg if keep else None))
        self.node.create_subscription(msg_type, topic, cb, profile)

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile | None = None):
        return self.node.create_publisher(msg_type, topic, qos or QOS_STATE)

    def get(self, topic: str) -> list[tuple[float, Any]]:
        with self.lock:
            return list(self.messages.get(topic, []))

    def count(self, topic: str) -> int:
        with self.lock:
            return len(self.messages.get(topic, []))

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "",
                 launch=None) -> None:
        """Wait until ``predicate()`` holds; fail with ``what`` after ``timeout`` seconds.

        With ``launch`` (a LaunchHandle), the failure shows the processes' last lines and
        stops early if a process died.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if launch is not None and launch.failed:
                break
            time.sleep(0.02)
        tail = ""
        if launch is not None:
            tail = "\nlaunch output (last lines):\n" + "\n".join(launch.lines[-25:])
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}"
                             f"; topics seen: {sorted(k for k, v in self.messages.items() if v)}"
                             + tail)

    def latest_sim_time(self) -> float:
        msgs = self.get("/clock")
        return msgs[-1][0] if msgs else float("nan")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def rate_hz(stamps: list[float]) -> float:
    """Mean rate of a stamp sequence [Hz] (in the stamps' own time)."""
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])
