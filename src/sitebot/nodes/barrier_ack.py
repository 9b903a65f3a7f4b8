"""A node's side of the simulator's stack barrier over ROS (:mod:`sitebot.barrier`); the
simulator's side is :mod:`sitebot.nodes.barrier_host`.

:func:`install` is called by :func:`sitebot.nodes.common.run_node` for every node once it
is built.  With the parameter ``sim_lockstep`` true (regression and campaign runs set it; on
a robot it is false and nothing changes) the node's subscriptions to ``/clock`` and to the
simulator's barrier topics are wrapped: after the node's own callback has returned, the
node acknowledges on ``/sim/barrier_ack`` what it has processed (``/clock`` once per barrier
period, every barrier-topic message).  The node's code is not touched: the same node runs on
a robot, in a paced simulation and in lockstep.

Only entities that exist when the node is built take part (every sitebot node makes them in
its constructor); actions and worker threads: :mod:`sitebot.nodes.barrier_work`.
"""
from __future__ import annotations

import inspect
import os
import socket
import threading
from typing import Any, Callable

from rclpy.action import ActionServer
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile

from sitebot.barrier import is_barrier_topic, is_stamped_topic, period_index
from sitebot.config.params import EVERY_NODE_PARAMS
from sitebot.nodes.common import QOS_LATCHED
from sitebot.nodes.convert import from_ns, to_ns
from sitebot.nodes.barrier_work import count_actions
from sitebot.nodes.executors import wake_timer
from sitebot_interfaces.msg import BarrierAck

__all__ = ["install", "BarrierAcker", "MessageCounter", "PARAM", "QOS_ACK_READER",
           "UNCOUNTED", "HOST"]

HOST = socket.gethostname()
#: the node parameter that makes a node a participant
PARAM = EVERY_NODE_PARAMS[1]
#: each participant's writer keeps its newest ack for a late simulator: QOS_LATCHED; the
#: simulator's reader shares one topic instance among every participant, so a deep queue
QOS_ACK_READER = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                            reliability=QOS_LATCHED.reliability,
                            durability=QOS_LATCHED.durability)


#: topics that are not counted: the clock and the barrier's own, rclpy's bookkeeping
UNCOUNTED = frozenset({"/clock", "/sim/barrier_ack", "/parameter_events", "/rosout"})


class MessageCounter:
    """Counts what a node publishes and what its callbacks have taken and processed, per
    topic, by wrapping its publishers' ``publish`` and its subscriptions' and timers'
    callbacks (the node's code is untouched).  ``on_done(kind)`` runs after every wrapped
    callback with the number of callbacks still running."""

    def __init__(self, node: Node, on_clock: Callable[[Any], None] | None,
                 on_done: Callable[[str, Any, int], None]) -> None:
        self.lock, self.in_flight = threading.RLock(), 0
        self.published: dict[str, int] = {}
        self.taken: dict[str, int] = {}
        self._subs: dict[str, list[Any]] = {}
        self._matched: set[str] = set()
        self._on_done = on_done
        self._after_publish: Callable[[], None] = lambda: None
        self.on_publish: Callable[[str, Any], None] | None = None
        self.polls: list[Callable[[], None]] = []    # after each callback, before its ack
        for pub in list(node.publishers):
            if pub.topic_name not in UNCOUNTED:
                self.published[pub.topic_name] = 0
                pub.publish = self._counted_publish(pub.publish, pub.topic_name)
        for sub in list(node.subscriptions):
            topic = sub.topic_name
            info = sub._callback_type is sub.CallbackType.WithMessageInfo
            if topic == "/clock" and on_clock is not None:
                sub.callback = self._wrap(sub.callback, "clock", on_clock, with_info=info)
            elif topic not in UNCOUNTED:
                self.taken[topic] = 0
                self._subs.setdefault(topic, []).append(sub)
                sub.callback = self._wrap(sub.callback, topic, None, with_info=info)
        for timer in list(node.timers):
            timer.callback = self._wrap(timer.callback, "timer", None, timer)

    # -------------------------------------------- channels (sitebot.nodes.barrier_work)
    def declare(self, name: str, sent: bool) -> None:
        """A channel this node sends on (``sent``) or takes from, owed from now on."""
        with self.lock:
            (self.published if sent else self.taken).setdefault(name, 0)
            if not sent:
                self._matched.add(name)

    def count_sent(self, name: str) -> None:
        self._count(self.published, name)

    def count_taken(self, name: str) -> None:
        self._count(self.taken, name)

    def _count(self, counts: dict[str, int], name: str) -> None:
        with self.lock:
            counts[name] += 1
            idle = self.in_flight == 0
        if idle:                          # outside a callback (a worker thread)
            self._after_publish()

    def callback_done(self, kind: str, taken: Any = ()) -> None:
        """The end of a callback that :meth:`_wrap` does not wrap (an action's waitable,
        which counted ``in_flight`` up itself): ``taken`` counted, polls, the ack."""
        with self.lock:
            self.in_flight -= 1
            for name in taken:
                self.taken[name] += 1
            left = self.in_flight
        for poll in self.polls:
            poll()
        self._on_done(kind, None, left)

    def _counted_publish(self, inner: Callable[[Any], None], topic: str):
        def publish(msg: Any) -> None:
            inner(msg)
            if self.on_publish is not None:
                self.on_publish(topic, msg)
            with self.lock:
                self.published[topic] += 1
                idle = self.in_flight == 0
            if idle:                      # published outside a callback (another thread)
                self._after_publish()
        return publish

    def _wrap(self, inner: Callable[..., Any], kind: str, first: Callable[[Any], None] | None,
              item: Any = None, with_info: bool = False) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(inner):
            return inner                # (no sitebot node has one; left as it is)
        counter = self

        def call(*args: Any) -> Any:
            with counter.lock:
                counter.in_flight += 1
            try:
                return inner(*args)
            finally:          # a callback that raised has still processed its message
                with counter.lock:
                    counter.in_flight -= 1
                    if kind in counter.taken:
                        counter.taken[kind] += 1
                    left = counter.in_flight
                for poll in counter.polls:        # (before the ack that may follow)
                    poll()
                if first is not None:
                    first(args[0])
                counter._on_done(kind, item if item is not None else
                                 (args[0] if args else None), left)

        # the same arity as the node's callback: rclpy reads it to decide what to pass
        if item is not None:
            return lambda: call()
        if with_info:
            return lambda msg, info: call(msg, info)
        return lambda msg: call(msg)

    def matched(self) -> set[str]:
        """The counted subscribed topics whose subscription has matched a publisher (once
        matched, a topic stays in)."""
        for topic, subs in self._subs.items():
            if topic not in self._matched and any(s.get_publisher_count() > 0 for s in subs):
                self._matched.add(topic)
        return self._matched

    def snapshot(self) -> tuple[list[str], list[int], list[str], list[int]]:
        """Published and taken counts per topic; a taken topic is listed (owed) only once
        one of its subscriptions has matched a publisher: what was published before that
        never reached the node."""
        self.matched()
        with self.lock:
            taken = [t for t in self.taken if t in self._matched]
            return (list(self.published), list(self.published.values()),
                    taken, [self.taken[t] for t in taken])


class BarrierAcker:
    """A participant: counts the node's messages and publishes its acks (module doc)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._lock = threading.Lock()
        self._clock_ns = -1            # the newest /clock taken
        self._acked_clock_ns = -1      # the newest /clock whose due timers have run
        self._pending: set[int] = set()
        self._waiting = False          # the simulator waits at a barrier (our clock is there)
        self._stamps: dict[str, int] = {}
        self._timers = list(node.timers)
        self._clock_subs = sum(1 for sub in node.subscriptions if sub.topic_name == "/clock")
        self._calls = 0
        self._sent: tuple | None = None    # what the newest ack said
        for sub in list(node.subscriptions):
            # (a raw subscription, a recorder's, has no header to read: not judged by stamps)
            if is_stamped_topic(sub.topic_name) and not getattr(sub, "raw", False):
                self._stamps[sub.topic_name] = -1
        self.counter = MessageCounter(node, self._on_clock, self._on_done)
        self.counter._after_publish = self._after_publish
        count_actions(node, self.counter)
        gate = getattr(node, "worker_gate", None)     # a node with a worker thread
        if gate is not None:
            gate.bind(node, self.counter)
        # an action server's goal runs as a coroutine that a timer resumes: the clock is
        # acknowledged one executor cycle later, after the coroutine's turn (its result)
        self._defer = any(isinstance(w, ActionServer) for w in node.waitables)
        self._pub = node.create_publisher(BarrierAck, "/sim/barrier_ack", QOS_LATCHED)
        self._wake_up = wake_timer(node, self.publish)   # (no guard condition: events executor)
        self._name = node.get_fully_qualified_name()
        self.publish()

    @property
    def topics(self) -> list[str]:
        return sorted(self._stamps)

    def _on_clock(self, msg: Any) -> None:
        """After each of the node's ``/clock`` callbacks (rclpy's time source, and the node's
        own if it has one): a new barrier period is acknowledged once every one of them has
        run for that clock and the timers it made due have run."""
        ns = to_ns(msg.clock)
        with self._lock:
            if ns != self._clock_ns:
                self._calls = 0
                new_period = period_index(ns) != period_index(self._clock_ns)
                self._clock_ns = max(self._clock_ns, ns)
                self._waiting = new_period
                if new_period:
                    self._pending = {id(t) for t in self._timers if not t.is_canceled()
                                     and (t.time_until_next_call() or 0) <= 0}
            self._calls += 1
            if not self._waiting or self._calls < self._clock_subs or self._pending \
                    or self._acked_clock_ns == self._clock_ns:
                return
            self._acked_clock_ns = self._clock_ns
        self._wake() if self._defer else self.publish()

    def _on_done(self, kind: str, item: Any, in_flight: int) -> None:
        send = False
        with self._lock:
            if kind == "timer" and id(item) in self._pending:
                self._pending.discard(id(item))
                if not self._pending and self._calls >= self._clock_subs:
                    self._acked_clock_ns = self._clock_ns
                    send = True
            elif kind in self._stamps:
                header = getattr(item, "header", None)
                if header is not None:
                    self._stamps[kind] = max(self._stamps[kind], to_ns(header.stamp))
                send = is_barrier_topic(kind)
            if kind != "clock" and self._waiting and in_flight == 0:
                # while the simulation waits: one ack per executor cycle, after the
                # callbacks ready in it (the wake timer runs after them)
                self._wake()
        if send:
            self._wake() if self._defer and kind == "timer" else self.publish()

    def _after_publish(self) -> None:
        if self._waiting:
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_up()
        except Exception:          # noqa: BLE001 - the node is being destroyed
            pass

    def publish(self) -> None:
        with self._lock:
            # a topic is listed (owed) once its subscription has matched a publisher
            matched = self.counter.matched()
            topics = [t for t in self._stamps if t in matched]
            stamps = tuple(self._stamps[t] for t in topics)
            clock_ns = self._acked_clock_ns
        snap = self.counter.snapshot()
        # an ack that says nothing new is not sent (nor built): the simulator holds each
        # node's newest, so a cycle whose callbacks changed nothing it judges costs nothing
        key = (clock_ns, tuple(topics), stamps, tuple(snap[1]), tuple(snap[2]), tuple(snap[3]))
        with self._lock:
            if key == self._sent:
                return
            self._sent = key
        msg = BarrierAck(node=self._name, host=HOST, pid=os.getpid(), clock=from_ns(clock_ns),
                         topics=topics, stamps=[from_ns(ns) for ns in stamps])
        msg.published_topics, msg.published, msg.taken_topics, msg.taken = snap
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
