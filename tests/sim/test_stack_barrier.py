"""The simulator's stack barrier (sitebot.barrier, nodes.barrier_ack): the core's rules, and
the simulator node unpaced in lockstep with a deliberately slow node over real rclpy."""
from __future__ import annotations

import threading
import time

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import LaserScan

from sitebot.barrier import PERIOD_NS, StackBarrier, is_barrier_topic, period_index
from sitebot.nodes import barrier_ack
from sitebot.nodes.common import QOS_SENSOR

from rosprobe import spin_until
from test_simulator_node import RunningSim

S = 1_000_000_000


def test_barrier_topics_and_periods():
    assert is_barrier_topic("/scan") and is_barrier_topic("/robot1/scan")
    assert is_barrier_topic("/camera/color/image_raw")
    assert not is_barrier_topic("/scan_filtered") and not is_barrier_topic("/odom")
    assert PERIOD_NS == 20_000_000           # 50 Hz: a node lags at most 20 ms of sim time
    assert period_index(19_999_999) == 0 and period_index(20_000_000) == 1


def test_a_participant_is_waited_for_until_it_has_processed_what_was_published():
    b = StackBarrier(timeout_s=0.3, liveness_check_s=0.1, alive=lambda: ["/a", "/b"])
    b.on_ack("/a", 0, ["/scan"], [0])
    b.on_ack("/b", 0, [], [])
    b.published("/scan", 1 * S)
    b.published_clock(1 * S)
    assert set(b.behind()) == {"/a", "/b"}
    b.on_ack("/a", 1 * S, ["/scan"], [1 * S])
    assert set(b.behind()) == {"/b"}           # /b does not take scans, only the clock
    threading.Timer(0.05, b.on_ack, ("/b", 1 * S, [], [])).start()
    t0 = time.monotonic()
    assert b.wait() == []
    assert time.monotonic() - t0 < 0.25
    # alive but late: given up on after the timeout, and counted
    b.published_clock(2 * S)
    assert b.wait() == ["/a", "/b"]
    assert b.summary()["timeouts"] == 2


def test_a_dead_participant_is_dropped_and_a_late_joiner_owes_nothing_older():
    alive = {"/a", "/b"}
    b = StackBarrier(timeout_s=5.0, liveness_check_s=0.05, alive=lambda: sorted(alive))
    b.on_ack("/a", 0, [], [])
    b.published_clock(1 * S)
    b.published("/scan", 1 * S)
    b.on_ack("/b", 0, ["/scan"], [0])          # joins after the scan at 1 s: not owed
    assert set(b.behind()) == {"/a"}           # /b owes only the clock after its joining
    alive.discard("/a")
    t0 = time.monotonic()
    assert b.wait() == []
    assert time.monotonic() - t0 < 1.0
    assert b.summary()["dropped"] == ["/a"] and b.participants == ["/b"]


class SlowScanNode:
    """A participant in its own context: sim time, sim_lockstep, 60 ms of work per scan; it
    records (scan stamp, the simulator's time while the callback ran)."""

    def __init__(self, sim) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node("slow_scan", context=self.context, parameter_overrides=[
            Parameter("use_sim_time", value=True), Parameter("sim_lockstep", value=True)])
        self.seen: list[tuple[float, float]] = []
        self.node.create_subscription(LaserScan, "scan", self.on_scan, QOS_SENSOR)
        self.acker = barrier_ack.install(self.node)
        self.sim = sim
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def on_scan(self, msg: LaserScan) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.seen.append((stamp, self.sim.node.sim.time_s))
        time.sleep(0.06)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5)


def test_unpaced_simulator_waits_for_a_slow_node_and_goes_on_when_it_dies():
    sim = RunningSim(lockstep=True, lockstep_timeout_s=30.0, supervisor_required=False,
                     start_paused=True)
    slow = None
    try:
        slow = SlowScanNode(sim)
        assert slow.acker is not None and slow.acker.topics == ["/scan"]
        spin_until(lambda: "/slow_scan" in sim.node.barrier.barrier.participants, 20.0,
                   "the slow node's first ack")
        # its /clock subscription must have found the simulator's publisher before the first
        # clock is published (on a busy machine discovery can lag the ack's): the barrier
        # owes each participant the clock it published
        spin_until(lambda: slow.node.count_publishers("/clock") >= 1, 20.0,
                   "the slow node seeing the simulator's /clock")
        time.sleep(0.5)
        sim.node.run.set_paused(False)
        spin_until(lambda: len(slow.seen) >= 25, 60.0, "25 scans processed")
        stamps = [s for s, _ in slow.seen]
        gaps = [round(b - a, 3) for a, b in zip(stamps, stamps[1:])]
        # the first scan after unpausing can be missed (not owed: the node's subscription
        # was matched then); after it, every 10 Hz scan is seen: none skipped
        assert all(abs(g - 0.1) < 0.01 for g in gaps[1:]), gaps
        # while the node works on a scan, the simulation waits at that scan's time
        ahead = [t - s for s, t in slow.seen[2:]]
        assert max(ahead) <= 1.5 / 240.0, ahead
        summary = sim.node.barrier.barrier.summary()
        assert summary["timeouts"] == 0 and summary["waits"] >= 24 * 5  # 50 Hz and per scan
        # the node dies: the barrier drops it and the simulation runs on
        slow.close()
        t_dead = sim.node.sim.time_s
        spin_until(lambda: sim.node.sim.time_s > t_dead + 2.0, 20.0,
                   "the simulation running on after the participant died")
        assert sim.node.barrier.barrier.summary()["dropped"] == ["/slow_scan"]
        slow = None
    finally:
        if slow is not None:
            slow.close()
        sim.close()


def test_a_lost_sensor_message_is_forgiven_after_the_grace_and_counted():
    b = StackBarrier(timeout_s=5.0, liveness_check_s=0.05, lost_after_s=0.2,
                     alive=lambda: ["/a"])
    b.on_ack("/a", 0, ["/scan"], [0])
    b.published("/scan", 1 * S)
    b.published_clock(1 * S)
    b.on_ack("/a", 1 * S, ["/scan"], [0])     # up to date with the clock, the scan never came
    t0 = time.monotonic()
    assert b.wait() == []
    assert 0.2 <= time.monotonic() - t0 < 2.0
    assert b.summary()["lost_messages"] == 1 and b.summary()["timeouts"] == 0
    b.published("/scan", 2 * S)                # the next scan is owed again
    assert b.behind() == {"/a": "/scan at 0.000 s < 2.000 s"}


def test_messages_between_nodes_are_owed_until_processed():
    """A command chain: /nav publishes cmd_vel_in, /sup must process it before the
    simulation steps on; messages from before a node joined, or from non-participants, are
    not owed; a message lost on the way is forgiven after the grace."""
    b = StackBarrier(timeout_s=5.0, liveness_check_s=0.05, lost_after_s=0.3,
                     alive=lambda: ["/nav", "/sup"])
    b.on_ack("/nav", 0, [], [], {"/cmd_vel_in": 4}, {})
    b.on_ack("/sup", 0, [], [], {}, {"/cmd_vel_in": 9})   # 4 before it joined: not owed
    b.published_clock(1 * S)
    b.on_ack("/nav", 1 * S, [], [], {"/cmd_vel_in": 6}, {})
    b.on_ack("/sup", 1 * S, [], [], {}, {"/cmd_vel_in": 10})
    assert b.behind() == {"/sup": "/cmd_vel_in: 1 of 2 messages processed"}
    threading.Timer(0.05, b.on_ack, ("/sup", 1 * S, [], [], {}, {"/cmd_vel_in": 11})).start()
    assert b.wait() == [] and b.summary()["lost_messages"] == 0
    b.on_ack("/nav", 1 * S, [], [], {"/cmd_vel_in": 7}, {})    # never arrives at /sup
    t0 = time.monotonic()
    assert b.wait() == []
    assert time.monotonic() - t0 >= 0.3 and b.summary()["lost_messages"] == 1
    b.on_ack("/nav", 1 * S, [], [], {"/cmd_vel_in": 8}, {})    # the next one is owed again
    assert b.behind() == {"/sup": "/cmd_vel_in: 2 of 3 messages processed"}


def test_a_lost_clock_is_published_again_not_forgiven():
    """A node whose /clock subscription matched only after the clock was published (start-up)
    never gets that clock: the barrier has it published again after the grace, and keeps
    waiting for the node to take it (its timers must reach it)."""
    sent: list[float] = []
    b = StackBarrier(timeout_s=5.0, liveness_check_s=0.05, lost_after_s=0.2,
                     alive=lambda: ["/a"], resend_clock=lambda: sent.append(time.monotonic()))
    b.on_ack("/a", 0, [], [])
    b.published_clock(1 * S)

    def takes_the_resent_clock():
        while not sent:
            time.sleep(0.01)
        b.on_ack("/a", 1 * S, [], [])
    threading.Thread(target=takes_the_resent_clock, daemon=True).start()
    t0 = time.monotonic()
    assert b.wait() == []
    assert len(sent) == 1 and sent[0] - t0 >= 0.2     # after the grace, not before
    s = b.summary()
    assert s["timeouts"] == 0 and s["lost_messages"] == 1
    assert s["lost_most"] == [("/a /clock", 1)]


def test_a_lost_clock_is_resent_once_per_grace_until_the_timeout():
    sent: list[float] = []
    b = StackBarrier(timeout_s=0.75, liveness_check_s=0.05, lost_after_s=0.2,
                     alive=lambda: ["/a"], resend_clock=lambda: sent.append(time.monotonic()))
    b.on_ack("/a", 0, [], [])
    b.published_clock(1 * S)
    assert b.wait() == ["/a"]                  # never taken: given up on, as before
    assert 1 <= len(sent) <= 3          # at most once per 0.2 s grace: 0.2, 0.4, 0.6 s
    assert all(0.15 <= b2 - b1 for b1, b2 in zip(sent, sent[1:]))


def test_action_responses_are_counted_over_every_client():
    """A channel (an action's responses: one server, several clients, each response to one
    of them) is caught up when the clients together have taken what the server sent; a
    response lost on the way is forgiven once after the grace; a dead client's takes stay
    counted."""
    alive = {"/srv", "/c1", "/c2"}
    b = StackBarrier(timeout_s=5.0, liveness_check_s=0.05, lost_after_s=0.3,
                     alive=lambda: sorted(alive))
    ch = "NavigateToPlace#result"
    b.on_ack("/srv", 0, [], [], {ch: 0}, {})
    b.on_ack("/c1", 0, [], [], {}, {ch: 0})
    b.on_ack("/c2", 0, [], [], {}, {ch: 0})
    assert b.behind() == {}
    b.on_ack("/srv", 0, [], [], {ch: 3}, {})            # three results sent
    b.on_ack("/c1", 0, [], [], {}, {ch: 2})             # two to c1, taken
    assert b.behind() == {"/c1": f"{ch}: 2 of 3 processed", "/c2": f"{ch}: 2 of 3 processed"}
    b.on_ack("/c2", 0, [], [], {}, {ch: 1})             # one to c2: nobody owes more
    assert b.behind() == {} and b.wait() == []
    alive.discard("/c1")                                # c1 dies; its two takes stay
    b.on_ack("/srv", 0, [], [], {ch: 4}, {})
    t0 = time.monotonic()
    assert b.wait() == []                              # c1 dropped; the 4th forgiven
    assert time.monotonic() - t0 >= 0.3
    s = b.summary()
    assert s["dropped"] == ["/c1"] and s["lost_messages"] == 1 and s["timeouts"] == 0
    b.on_ack("/srv", 0, [], [], {ch: 5}, {})
    assert b.behind() == {"/c2": f"{ch}: 3 of 4 processed"}    # the next one is owed again


def test_a_busy_worker_thread_holds_the_simulation_and_is_never_forgiven():
    b = StackBarrier(timeout_s=0.6, liveness_check_s=0.05, lost_after_s=0.1,
                     alive=lambda: ["/ex"])
    work = "/ex#work"
    b.on_ack("/ex", 0, [], [], {work: 0}, {work: 0})
    b.on_ack("/ex", 0, [], [], {work: 1}, {work: 0})      # woken: its worker runs
    assert b.behind() == {"/ex": f"{work}: 0 of 1 processed"}
    assert b.wait() == ["/ex"]                            # waited for, not forgiven
    assert b.summary()["lost_messages"] == 0 and b.summary()["timeouts"] == 1
    threading.Timer(0.05, b.on_ack, ("/ex", 0, [], [], {work: 1}, {work: 1})).start()
    assert b.wait() == []                                 # back to waiting: caught up
