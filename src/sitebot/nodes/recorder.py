"""TopicRecorder: an independent rclpy observer (own context, node and executor thread)
that records ``(key(msg), msg)`` per topic. Used by the tests' probe, the demo's and the
benchmarks' observers, so that measuring the stack shares nothing with the nodes measured.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Callable

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile

from sitebot.nodes.common import QOS_LATCHED, QOS_SENSOR, QOS_STATE
from sitebot.nodes.convert import stamp_of

__all__ = ["TopicRecorder", "stamp_of"]

_PROFILES = {"sensor": QOS_SENSOR, "latched": QOS_LATCHED, "state": QOS_STATE}


class TopicRecorder:
    """``key(msg) -> float`` orders the records (default: the message's own stamp)."""

    def __init__(self, name: str = "topic_recorder",
                 key: Callable[[Any], float] = stamp_of) -> None:
        self.key = key
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
        """Record ``topic``; ``qos`` a profile or 'sensor'/'state'/'latched'; ``keep=False``
        keeps only the keys (large images)."""
        profile = _PROFILES.get(qos, qos) if isinstance(qos, str) else qos

        def cb(msg: Any) -> None:
            k = self.key(msg)
            with self.lock:
                self.messages[topic].append((k, msg if keep else None))
        self.node.create_subscription(msg_type, topic, cb, profile)

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile | None = None):
        return self.node.create_publisher(msg_type, topic, qos or QOS_STATE)

    def get(self, topic: str) -> list[tuple[float, Any]]:
        with self.lock:
            return list(self.messages.get(topic, []))

    def count(self, topic: str) -> int:
        with self.lock:
            return len(self.messages.get(topic, []))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
