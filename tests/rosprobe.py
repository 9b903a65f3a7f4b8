"""An independent rclpy observer for tests: its own context, node and executor thread.

It subscribes with the standard message types and records (sim-time stamp, message) per
topic, so a test can check types, rates and contents of what the stack publishes without
sharing anything with the nodes under test.
"""
from __future__ import annotations

import time
from typing import Callable

from sitebot.nodes.recorder import TopicRecorder


class Probe(TopicRecorder):
    """A TopicRecorder keyed by message stamps, with condition waits for tests."""

    def __init__(self, name: str = "test_probe") -> None:
        super().__init__(name)

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


def rate_hz(stamps: list[float]) -> float:
    """Mean rate of a stamp sequence [Hz] (in the stamps' own time)."""
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])
