"""An independent rclpy observer for tests: its own context, node and executor thread.

It subscribes with the standard message types and records (sim-time stamp, message) per
topic, so a test can check types, rates and contents of what the stack publishes without
sharing anything with the nodes under test.
"""
from __future__ import annotations

import time
from typing import Callable

from sitebot.nodes.recorder import TopicRecorder


def spin_until(pred: Callable[[], object], timeout: float = 10.0, what: "str | Callable[[], str]" = "",
               *, executor=None, launch=None, step: float = 0.02, must: bool = True) -> bool:
    """The tests' one wait: until ``pred()`` holds, for at most ``timeout`` seconds.

    With ``executor`` (nodes spun in this thread) it spins the executor once per ``step``;
    without, it sleeps while the nodes are spun elsewhere (a Probe, launched processes).
    With ``launch`` (a LaunchHandle) it stops early when a process died and a failure shows
    the processes' last lines. On timeout it raises AssertionError naming ``what`` (a text,
    or a callable that gives one), or with ``must=False`` returns False (``spin_until(lambda:
    False, 0.3, must=False)`` spins for 0.3 s).
    """
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline or (launch is not None and launch.failed):
            break
        if executor is not None:
            executor.spin_once(timeout_sec=step)
        else:
            time.sleep(step)
    if not must:
        return False
    text = what() if callable(what) else what
    tail = ""
    if launch is not None:
        tail = "\nlaunch output (last lines):\n" + "\n".join(launch.lines[-25:])
    raise AssertionError(f"timed out after {timeout:g} s waiting for {text or pred}" + tail)


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
        spin_until(predicate, timeout, lambda: f"{what or predicate}; topics seen: "
                   f"{sorted(k for k, v in self.messages.items() if v)}", launch=launch)

    def latest_sim_time(self) -> float:
        msgs = self.get("/clock")
        return msgs[-1][0] if msgs else float("nan")


def rate_hz(stamps: list[float]) -> float:
    """Mean rate of a stamp sequence [Hz] (in the stamps' own time)."""
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])
