"""The simulator's side of the stack barrier over ROS (:mod:`sitebot.barrier`): receives the
participants' acks (:mod:`sitebot.nodes.barrier_ack`) and holds the physics thread at each
barrier until the stack has caught up."""
from __future__ import annotations

from typing import Any

from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from sitebot.barrier import (ACK_TOPIC, StackBarrier, is_barrier_topic, is_stamped_topic,
                             period_index)
from sitebot.nodes.barrier_ack import HOST, QOS_ACK_READER, MessageCounter
from sitebot.nodes.convert import from_ns, to_ns, to_time
from sitebot_interfaces.msg import BarrierAck

__all__ = ["BarrierHost"]


def _running(pid: int) -> bool:
    """Whether a process runs (a zombie, killed and not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class BarrierHost:
    """The simulator's side: receives the acks and, after each physics tick, tells the
    barrier what the tick published and waits when a barrier is due (a scan or camera frame
    was published, or ``/clock`` entered a new barrier period)."""

    def __init__(self, node: Node, timeout_s: float, expect: list[str] | None = None) -> None:
        self.node = node
        self.barrier = StackBarrier(alive=self._alive, timeout_s=timeout_s, expect=expect or (),
                                    resend_clock=self._resend_clock)
        self._clock_ns = -1
        self._due = False
        self._pids: dict[str, int] = {}
        self._name = node.get_fully_qualified_name()
        # the simulator takes part too: the commands it takes are owed like anyone's; its
        # sensor streams are judged by their newest stamps (scan and camera frames make a
        # barrier due), everything else it publishes by counts
        self.counter = MessageCounter(node, None, lambda *_: self._report())
        self.counter.on_publish = self._published
        self._sub = node.create_subscription(BarrierAck, "/sim/barrier_ack", self._on_ack,
                                             QOS_ACK_READER)   # (barrier.ACK_TOPIC)
        self._report()

    def _published(self, topic: str, msg: Any) -> None:
        if not is_stamped_topic(topic):
            return
        header = getattr(msg, "header", None)
        if header is not None:
            self.barrier.published(topic, to_ns(header.stamp))
            if is_barrier_topic(topic):
                self._due = True

    def _report(self) -> None:
        pub_t, pub_n, taken_t, taken_n = self.counter.snapshot()
        self.barrier.on_ack(self._name, max(self._clock_ns, 0), [], [],
                            {t: n for t, n in zip(pub_t, pub_n) if not is_stamped_topic(t)},
                            dict(zip(taken_t, taken_n)))

    def _on_ack(self, msg: BarrierAck) -> None:
        # the acks of every node arrive together: take the others queued behind this one
        # here rather than one executor cycle (a wait-set rebuild) each
        for _ in range(QOS_ACK_READER.depth):
            self._take_ack(msg)
            try:
                with self._sub.handle:
                    taken = self._sub.handle.take_message(BarrierAck, False)
            except Exception:          # noqa: BLE001 - the node is being destroyed
                return
            if taken is None:
                return
            msg = taken[0]

    def _take_ack(self, msg: BarrierAck) -> None:
        if msg.host == HOST and msg.pid > 0:
            self._pids[msg.node] = int(msg.pid)
        self.barrier.on_ack(msg.node, to_ns(msg.clock), msg.topics,
                            [to_ns(s) for s in msg.stamps],
                            dict(zip(msg.published_topics, msg.published)),
                            dict(zip(msg.taken_topics, msg.taken)))

    def _resend_clock(self) -> None:
        """Publish the barrier's clock again (a participant lost it: module doc of
        :mod:`sitebot.barrier`)."""
        pub = getattr(self.node, "clock_pub", None)
        if pub is not None and self._clock_ns >= 0:
            pub.publish(Clock(clock=from_ns(self._clock_ns)))

    def _alive(self) -> list[str]:
        """Participants still running: in the ROS graph, and (on this host) their process
        still there (the graph keeps a killed process's node until its DDS lease ends)."""
        listed = [i.node_namespace.rstrip("/") + "/" + i.node_name
                  for i in self.node.get_publishers_info_by_topic(ACK_TOPIC)] + [self._name]
        return [n for n in listed if n not in self._pids or _running(self._pids[n])]

    def after_clock(self, clock_s: float) -> None:
        """After the ``/clock`` of a tick, before its sensor messages: when the clock entered
        a new barrier period, wait until every node has taken it (and run its due timers),
        so that each node sees the tick's clock before the tick's sensor data."""
        ns = to_ns(to_time(clock_s))
        new_period = period_index(ns) != period_index(self._clock_ns)
        self._clock_ns = ns
        if new_period:
            self.barrier.published_clock(ns)
            self._wait()

    def after_tick(self) -> None:
        """After a tick's sensor messages: wait when a scan or camera frame was among them."""
        if self._due:
            self._wait()

    def _wait(self) -> None:
        self._due = False
        self._report()
        b = self.barrier
        late = b.wait()
        if late:
            self.node.get_logger().warning(
                f"stack barrier: gave up on {b.last_timeout} after {b.timeout_s:g} s at "
                f"sim time {self._clock_ns * 1e-9:.2f} s (this run no longer is independent "
                "of the machine's load)")
