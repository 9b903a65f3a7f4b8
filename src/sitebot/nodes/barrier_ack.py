"""The simulator's stack barrier over ROS (:mod:`sitebot.barrier`): a node's side
(:class:`BarrierAcker`) and the simulator's (:class:`BarrierHost`).

:func:`install` is called by :func:`sitebot.nodes.common.run_node` for every node once it
is built.  With the parameter ``sim_lockstep`` true (regression and campaign runs set it; on
a robot it is false and nothing changes) the node's subscriptions to ``/clock`` and to the
simulator's barrier topics are wrapped: after the node's own callback has returned, the
node acknowledges on ``/sim/barrier_ack`` what it has processed (``/clock`` once per barrier
period, every barrier-topic message).  The node's code is not touched: the same node runs on
a robot, in a paced simulation and in lockstep.

Only subscriptions that exist when the node is built take part (every sitebot node makes
its subscriptions in its constructor).
"""
from __future__ import annotations

import os
import socket
import threading
from typing import Any, Callable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sitebot.barrier import ACK_TOPIC, StackBarrier, is_barrier_topic, period_index
from sitebot.nodes.convert import to_ns, to_time
from sitebot_interfaces.msg import BarrierAck

__all__ = ["install", "BarrierAcker", "BarrierHost", "PARAM", "QOS_ACK_WRITER",
           "QOS_ACK_READER"]

_HOST = socket.gethostname()
#: the node parameter that makes a node a participant
PARAM = "sim_lockstep"
#: each participant's writer keeps its newest ack for a late simulator (transient local)
QOS_ACK_WRITER = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: the simulator's reader: one topic instance shared by every participant, so a deep queue
QOS_ACK_READER = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)


class BarrierAcker:
    """Wraps the node's barrier subscriptions and publishes its acks (see the module doc)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._lock = threading.Lock()
        self._clock_ns = -1
        self._stamps: dict[str, int] = {}
        self._subs: dict[str, Any] = {}
        self._matched: set[str] = set()
        self._pub = node.create_publisher(BarrierAck, "/sim/barrier_ack", QOS_ACK_WRITER)
        self._name = node.get_fully_qualified_name()
        for sub in list(node.subscriptions):
            topic = sub.topic_name
            if topic == "/clock":
                sub.callback = self._wrap(sub.callback, self._on_clock)
            elif is_barrier_topic(topic):
                self._stamps[topic] = -1
                self._subs[topic] = sub
                sub.callback = self._wrap(sub.callback, lambda m, t=topic: self._on_msg(t, m))
        self.publish()

    @property
    def topics(self) -> list[str]:
        return sorted(self._stamps)

    @staticmethod
    def _wrap(inner: Callable[[Any], Any], after: Callable[[Any], None]) -> Callable[[Any], Any]:
        def callback(msg: Any) -> Any:
            try:
                return inner(msg)
            finally:          # a callback that raised has still processed its message
                after(msg)
        return callback

    def _on_clock(self, msg: Any) -> None:
        ns = to_ns(msg.clock)
        with self._lock:
            new_period = period_index(ns) != period_index(self._clock_ns)
            self._clock_ns = max(self._clock_ns, ns)
        if new_period:
            self.publish()

    def _on_msg(self, topic: str, msg: Any) -> None:
        header = getattr(msg, "header", None)
        if header is None:
            return
        with self._lock:
            self._stamps[topic] = max(self._stamps[topic], to_ns(header.stamp))
        self.publish()

    def publish(self) -> None:
        msg = BarrierAck(node=self._name, host=_HOST, pid=os.getpid())
        with self._lock:
            msg.clock.sec, msg.clock.nanosec = divmod(max(self._clock_ns, 0), 1_000_000_000)
            # a topic is listed (owed) once its subscription has matched a publisher
            for topic, sub in self._subs.items():
                if topic not in self._matched and sub.get_publisher_count() > 0:
                    self._matched.add(topic)
            msg.topics = [t for t in self._stamps if t in self._matched]
            for ns in (self._stamps[t] for t in msg.topics):
                st = type(msg.clock)()
                st.sec, st.nanosec = divmod(max(ns, 0), 1_000_000_000)
                msg.stamps.append(st)
        try:
            self._pub.publish(msg)
        except Exception:          # noqa: BLE001 - the context is shutting down
            pass


def install(node: Node) -> BarrierAcker | None:
    """Make ``node`` a participant if its ``sim_lockstep`` parameter is true."""
    if not node.has_parameter(PARAM):
        node.declare_parameter(PARAM, False)
    if not bool(node.get_parameter(PARAM).value):
        return None
    acker = BarrierAcker(node)
    node.get_logger().info(f"stack barrier: acknowledging /clock and {acker.topics or 'no topic'}")
    return acker


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

    def __init__(self, node: Node, timeout_s: float) -> None:
        self.node = node
        self.barrier = StackBarrier(alive=self._alive, timeout_s=timeout_s)
        self._clock_ns = -1
        self._due = False
        self._pids: dict[str, int] = {}
        node.create_subscription(BarrierAck, "/sim/barrier_ack", self._on_ack,
                                 QOS_ACK_READER)   # (barrier.ACK_TOPIC)

    def _on_ack(self, msg: BarrierAck) -> None:
        if msg.host == _HOST and msg.pid > 0:
            self._pids[msg.node] = int(msg.pid)
        self.barrier.on_ack(msg.node, to_ns(msg.clock), msg.topics,
                            [to_ns(s) for s in msg.stamps])

    def _alive(self) -> list[str]:
        """Participants still running: in the ROS graph, and (on this host) their process
        still there (the graph keeps a killed process's node until its DDS lease ends)."""
        listed = [i.node_namespace.rstrip("/") + "/" + i.node_name
                  for i in self.node.get_publishers_info_by_topic(ACK_TOPIC)]
        return [n for n in listed if n not in self._pids or _running(self._pids[n])]

    def sent(self, publisher: Any, stamp_s: float) -> None:
        """The simulator published a message stamped ``stamp_s`` on a barrier topic."""
        self.barrier.published(publisher.topic_name, to_ns(to_time(stamp_s)))
        self._due = True

    def after_tick(self, clock_s: float | None) -> None:
        """After a physics tick's publications (``clock_s``: the ``/clock`` it published,
        None if none): wait when a barrier is due."""
        b = self.barrier
        if clock_s is not None:
            ns = to_ns(to_time(clock_s))
            if period_index(ns) != period_index(self._clock_ns):
                b.published_clock(ns)
                self._due = True
            self._clock_ns = ns
        if not self._due:
            return
        self._due = False
        late = b.wait()
        if late:
            self.node.get_logger().warning(
                f"stack barrier: gave up on {', '.join(late)} after {b.timeout_s:g} s at "
                f"sim time {self._clock_ns * 1e-9:.2f} s (this run no longer is independent "
                "of the machine's load)")
