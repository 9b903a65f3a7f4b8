"""An independent rclpy observer for tests: its own context, node and executor thread.

It subscribes with the standard message types and records (sim-time stamp, message) per
topic, so a test can check types, rates and contents of what the stack publishes without
sharing anything with the nodes under test.
"""
from __future__ import annotations

import random
import threading
import time
from typing import Callable

import rclpy
from geometry_msgs.msg import TwistStamped
from trajectory_msgs.msg import JointTrajectory

from sitebot.nodes.common import QOS_COMMAND, QOS_STATE
from sitebot.nodes.recorder import TopicRecorder
from sitebot_interfaces.msg import SafetyState


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

    def answered_goal(self, client, goal, timeout: float = 30.0, each: float = 2.0):
        """Send ``goal`` until the action server answers it; the goal handle.

        A server answers on the client's response reader; until its participant has
        matched that reader, rmw drops the answer ("failed to send response (timeout)":
        seen on a loaded machine), although ``server_is_ready`` already holds. A goal whose
        answer is lost is sent again, ``each`` seconds apart; a test's first goal should go
        this way so that a discovery race does not read as a node that does not answer."""
        end = time.monotonic() + timeout
        while True:
            fut = client.send_goal_async(goal)
            if spin_until(fut.done, min(each, max(0.1, end - time.monotonic())), must=False):
                return fut.result()
            if time.monotonic() >= end:
                raise AssertionError(f"no answer to a goal within {timeout:g} s")

    def latest_sim_time(self) -> float:
        msgs = self.get("/clock")
        return msgs[-1][0] if msgs else float("nan")


def rate_hz(stamps: list[float]) -> float:
    """The rate a stamp sequence was published at [Hz] (in the stamps' own time).

    A best-effort subscriber on a loaded machine misses messages (a probe kept 72 % of a
    100 Hz IMU while a regression suite ran beside it), and the mean over the window then
    reads the delivery, not the publisher. A missed message makes one interval a multiple of
    the period: each interval counts as the whole number of median intervals nearest to it
    (at least one), which restores the published count while fewer than half are missed;
    stamps quantised to the physics step (intervals of 4 and 5 steps) still count one each.
    """
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return 0.0
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    period = sorted(gaps)[len(gaps) // 2]
    if period <= 0.0:
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])
    published = sum(max(1, round(g / period)) for g in gaps)
    return published / (stamps[-1] - stamps[0])


class SupervisorDouble:
    """Test double of the safety supervisor, as the control loop sees it.

    The loop obeys one node (docs/control.md, "Stop latch"): this is a node named
    ``safety_supervisor`` (in ``namespace``) on the probe's context and executor.  It
    publishes ``safety/state`` heartbeats the way :class:`sitebot.safety.release.StopRelease`
    and the supervisor node do (a per-boot session, a rising sequence, the release count: 1
    from the start, so its first "no stop" heartbeat releases the loop's start latch), and
    the ``cmd_vel`` and ``arm/joint_trajectory`` a test gives it.  ``start()`` beats every
    ``period_s`` from a thread with :attr:`category` and :attr:`scale`.
    """

    def __init__(self, probe: Probe, namespace: str = "", name: str = "safety_supervisor") -> None:
        self.node = rclpy.create_node(name, namespace=namespace, context=probe.context)
        probe.executor.add_node(self.node)
        self.state_pub = self.node.create_publisher(SafetyState, "safety/state", QOS_STATE)
        self.cmd_pub = self.node.create_publisher(TwistStamped, "cmd_vel", QOS_COMMAND)
        self.traj_pub = self.node.create_publisher(JointTrajectory, "arm/joint_trajectory",
                                                   QOS_COMMAND)
        self.session = random.getrandbits(64) or 1
        self.seq, self.releases = 0, 1
        self.category, self.scale = SafetyState.STOP_NONE, 1.0
        self.beating = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, category: int | None = None, scale: float | None = None) -> None:
        """One heartbeat now (default: :attr:`category`, :attr:`scale`)."""
        with self._lock:
            self.seq += 1
            m = SafetyState(
                stop_category=self.category if category is None else category,
                speed_scale=self.scale if scale is None else scale, max_linear_speed_mps=1.0,
                sequence=self.seq, session=self.session, releases=self.releases)
            m.header.stamp = self.node.get_clock().now().to_msg()
            self.state_pub.publish(m)

    def release(self) -> None:
        """Issue a release (carried by this and every later heartbeat)."""
        with self._lock:
            self.releases += 1
        self.beat()

    def start(self, period_s: float = 0.05) -> "SupervisorDouble":
        self.beating.set()

        def run() -> None:
            while not self._stop.wait(period_s):
                if self.beating.is_set():
                    self.beat()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.node.destroy_node()
