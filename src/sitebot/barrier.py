"""The stack barrier: the simulator steps on only when the stack has caught up (no ROS).

In regression and campaign runs the simulator runs unpaced and, every barrier period of
simulation time, waits for every node of the stack (a *participant*: a node started with
``sim_lockstep``) to have processed

* the newest ``/clock`` it published (so the node's sim-time timers have reached it), and
* the newest message on each *barrier topic* it publishes (``scan``, the camera images)
  that the node subscribes to,

before it steps the physics on.  A run is then the same whatever the machine's load: a slow
node makes the run slower in wall time, not different in simulation time.

Participants report with acknowledgements (``sitebot_interfaces/BarrierAck`` on
``/sim/barrier_ack``; each carries the node's whole progress, so only the newest matters).
A node joins with its first ack and owes a topic's messages from the ack that first lists
the topic (it lists a topic once its subscription has matched a publisher).  A message lost
on the way (sensor topics are best effort) is forgiven after :attr:`StackBarrier.lost_after_s`
of waiting, counted; a lost ``/clock`` (published before the node's subscription matched) is
published again instead, since the node's timers could never reach it otherwise.  A node leaves when it dies: every
:attr:`StackBarrier.liveness_check_s` of waiting the barrier asks
``alive()`` (the simulator: the ROS graph and the node's process) and drops participants
that are gone; a node that
comes back joins again with its next ack.  A participant that is alive but has not caught up
after :attr:`StackBarrier.timeout_s` of wall time is given up on for that barrier (counted
and reported: the run is then no longer load-independent, and its diagnostics say so).

Times are integer nanoseconds, compared exactly: the simulator and the nodes see the same
``builtin_interfaces/Time`` values.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from sitebot.types import Diagnostic, DiagnosticLevel

__all__ = ["StackBarrier", "Participant", "BARRIER_TOPIC_SUFFIXES", "is_barrier_topic",
           "STREAM_TOPIC_SUFFIXES", "is_stamped_topic", "is_channel", "WORK_SUFFIX",
           "ACK_TOPIC", "PERIOD_NS", "period_index"]

#: the topic participants acknowledge on
ACK_TOPIC = "/sim/barrier_ack"
#: the barrier period of simulation time [ns]: a participant acknowledges ``/clock`` when the
#: clock enters a new period, and the simulator waits there, so no node lags the simulation
#: by more than this.  50 Hz, the rate of the fastest command loops (the scripted operator,
#: odometry): measured under load, a person-crossing run replayed within 2.2 cm at 50 Hz
#: and within 14 cm at 10 Hz, for about 30 % more wall time
PERIOD_NS = 20_000_000


def period_index(clock_ns: int, period_ns: int = PERIOD_NS) -> int:
    """The barrier period a clock time falls in (the same integer for the simulator and
    every participant)."""
    return int(clock_ns) // int(period_ns)
#: the simulator's topics a participant must have processed (matched on the resolved name's
#: end, so robot namespaces work): what the supervisor, perception and localization must see
BARRIER_TOPIC_SUFFIXES = ("scan", "camera/color/image_raw", "camera/depth/image_raw")


#: the simulator's high-rate streams: a node must have processed the newest message when the
#: simulation waits at a barrier, but a message published while it steps may be overwritten
#: in the node's queue by a newer one (best effort, short queues: as from a real driver)
STREAM_TOPIC_SUFFIXES = ("imu/data", "odom", "joint_states")


def _ends(name: str, suffixes: tuple[str, ...]) -> bool:
    n = name.rstrip("/")
    return any(n == "/" + s or n.endswith("/" + s) for s in suffixes)


def is_barrier_topic(name: str) -> bool:
    """Whether a resolved topic name is one of the simulator's barrier topics."""
    return _ends(name, BARRIER_TOPIC_SUFFIXES)


#: a *channel*'s name holds this mark: messages with one sender and one receiver each (an
#: action's goal, cancel and result responses: ``<ActionType>#result``), counted together
#: over every participant, since each response goes to one client only: the stack is caught
#: up when every participant together has taken as many as every participant has sent
CHANNEL_MARK = "#"
#: the channel ``<node>#work`` counts a node's worker-thread wake-ups (sent) and its returns
#: to waiting (taken): the simulation waits while a worker thread runs; never forgiven
WORK_SUFFIX = "#work"


def is_channel(name: str) -> bool:
    """Whether a counted name is a channel (:data:`CHANNEL_MARK`), not a topic."""
    return CHANNEL_MARK in name


def is_stamped_topic(name: str) -> bool:
    """Whether a topic is judged by the newest stamp processed (barrier topics and the
    simulator's streams) rather than by message counts."""
    return _ends(name, BARRIER_TOPIC_SUFFIXES + STREAM_TOPIC_SUFFIXES)


@dataclass
class Participant:
    """One node's newest acknowledged progress (nanoseconds of simulation time)."""

    clock_ns: int = -1
    stamps_ns: dict[str, int] = field(default_factory=dict)
    #: per topic, the newest message the node does not owe: what the simulator had published
    #: when the node first listed the topic (its subscription matched), or a lost message
    joined_ns: dict[str, int] = field(default_factory=dict)
    joined_clock_ns: int = -1
    last_ack_wall: float = 0.0
    #: messages published and taken per topic, and their values when the node joined; per
    #: taken topic, the messages published by all participants then (not owed)
    published: dict[str, int] = field(default_factory=dict)
    taken: dict[str, int] = field(default_factory=dict)
    base_published: dict[str, int] = field(default_factory=dict)
    base_taken: dict[str, int] = field(default_factory=dict)
    base_total: dict[str, int] = field(default_factory=dict)


class StackBarrier:
    """See the module doc.  Thread-safe: the physics thread calls :meth:`published` and
    :meth:`wait`, the executor thread :meth:`on_ack`.

    :param alive: returns the names of the participants still running (None: never drop).
    :param timeout_s: wall time a barrier waits for a participant that is alive [s].
    :param liveness_check_s: wall time of waiting before ``alive()`` is asked [s].
    :param lost_after_s: wall time after which a missing message counts as lost [s].
    :param expect: node names that must have joined before any barrier is passed (a node
        expected but not running is dropped by the liveness check).
    :param resend_clock: publishes the newest ``/clock`` again, for a participant that lost
        it (published before the node's subscription had matched the simulator's writer:
        nothing else would ever be published, so the run would stall for the timeout).
    """

    def __init__(self, *, alive: Callable[[], Iterable[str]] | None = None,
                 timeout_s: float = 10.0, liveness_check_s: float = 0.5,
                 lost_after_s: float = 1.0, expect: Iterable[str] = (),
                 monotonic: Callable[[], float] = time.monotonic,
                 resend_clock: Callable[[], None] | None = None) -> None:
        self.timeout_s = float(timeout_s)
        self.lost_after_s = float(lost_after_s)
        #: nodes that must have joined before the simulation steps on (the run's stack)
        self.expect = {n if n.startswith("/") else "/" + n for n in expect}
        self.liveness_check_s = float(liveness_check_s)
        self._alive = alive
        self._resend_clock = resend_clock
        self._monotonic = monotonic
        self._cv = threading.Condition()
        self._participants: dict[str, Participant] = {}
        self._published: dict[str, int] = {}
        #: per channel: sent before its first receiver joined, or forgiven as lost; taken by
        #: receivers that have since died (dropped)
        self._channel_base: dict[str, int] = {}
        self._channel_gone: dict[str, int] = {}
        self._clock_ns = -1
        #: figures for diagnostics: barriers waited at, wall time spent waiting, barriers
        #: given up on (timeouts), participants dropped because they died
        self.waits = 0
        self.acks = 0
        self.wait_wall_s = 0.0
        self.timeouts: list[tuple[int, str]] = []
        self.dropped: list[tuple[int, str]] = []
        self.lost: list[tuple[int, str]] = []
        #: what each node given up on lacked, at the last timeout
        self.last_timeout: dict[str, str] = {}
        self._closed = False

    # ------------------------------------------------------------------ simulator side
    def published(self, topic: str, stamp_ns: int) -> None:
        """The simulator published a message on a barrier topic (resolved name)."""
        with self._cv:
            self._published[topic] = int(stamp_ns)

    def published_clock(self, stamp_ns: int) -> None:
        """The simulator published ``/clock``."""
        with self._cv:
            self._clock_ns = int(stamp_ns)

    @property
    def participants(self) -> list[str]:
        with self._cv:
            return sorted(self._participants)

    def behind(self) -> dict[str, str]:
        """Participants that have not caught up, with what they lack."""
        with self._cv:
            return self._behind()

    def _behind(self) -> dict[str, str]:
        return {n: why for n, (why, _) in self._lacks().items()}

    def _total_published(self, topic: str) -> int:
        return sum(p.published.get(topic, 0) - p.base_published.get(topic, 0)
                   for p in self._participants.values())

    def _lacks(self) -> dict[str, tuple[str, tuple[str, str] | None]]:
        """Per participant behind: (what it lacks, what may be forgiven as lost: ("topic",
        name) for a barrier-topic message, ("count", name) for messages of another node,
        ("clock", "/clock") for the clock, which is sent again rather than forgiven)."""
        out: dict[str, tuple[str, tuple[str, str] | None]] = {
            n: ("has not joined yet", None) for n in self.expect - set(self._participants)}
        totals: dict[str, int] = {}
        for name, p in self._participants.items():
            if self._clock_ns > p.joined_clock_ns and p.clock_ns < self._clock_ns:
                out[name] = (f"/clock at {p.clock_ns * 1e-9:.3f} s < "
                             f"{self._clock_ns * 1e-9:.3f} s", ("clock", "/clock"))
                continue
            for topic, got in p.stamps_ns.items():
                sent = self._published.get(topic, -1)
                if sent > p.joined_ns.get(topic, -1) and got < sent:
                    out[name] = (f"{topic} at {got * 1e-9:.3f} s < {sent * 1e-9:.3f} s",
                                 ("topic", topic))
                    break
            if name in out:
                continue
            for topic, taken in p.taken.items():
                if is_channel(topic):
                    continue                      # (below: counted over every participant)
                if topic not in totals:
                    totals[topic] = self._total_published(topic)
                owed = totals[topic] - p.base_total.get(topic, 0)
                got = taken - p.base_taken.get(topic, 0)
                if got < owed:
                    out[name] = (f"{topic}: {got} of {owed} messages processed",
                                 ("count", topic))
                    break
        for topic in sorted({t for p in self._participants.values() for t in p.taken
                             if is_channel(t)}):
            owed, got = self._channel_owed_got(topic)
            if got < owed:
                why = (f"{topic}: {got} of {owed} processed",
                       None if topic.endswith(WORK_SUFFIX) else ("channel", topic))
                for name, p in self._participants.items():
                    if topic in p.taken and name not in out:
                        out[name] = why
        return out

    def _channel_owed_got(self, topic: str) -> tuple[int, int]:
        """A channel's messages sent (by every participant, since its first receiver joined)
        and taken (by every receiver, those that died included)."""
        owed = self._total_published(topic) - self._channel_base.get(topic, 0)
        got = self._channel_gone.get(topic, 0) + sum(
            p.taken[topic] - p.base_taken.get(topic, 0)
            for p in self._participants.values() if topic in p.taken)
        return owed, got

    def wait(self) -> list[str]:
        """Block until every participant has caught up (or is dropped or timed out); the
        participants given up on this time (empty when all caught up)."""
        t0 = self._monotonic()
        checked_at = 0.0
        with self._cv:
            self.waits += 1
            while True:
                lacks = self._lacks()
                if not lacks or self._closed:
                    break
                waited = self._monotonic() - t0
                if waited >= checked_at + self.liveness_check_s and self._alive is not None:
                    checked_at = waited
                    alive = set(self._alive())
                    for name in [n for n in lacks if n not in alive]:
                        gone = self._participants.pop(name, None)
                        for t, c in (gone.taken.items() if gone else ()):
                            if is_channel(t):
                                self._channel_gone[t] = self._channel_gone.get(t, 0) + c \
                                    - gone.base_taken.get(t, 0)
                        self.expect.discard(name)
                        self.dropped.append((self._clock_ns, name))
                    continue
                if waited >= self.lost_after_s:
                    # up to date with the clock, silent, still without a message: lost on
                    # the way (best effort, or a full queue); it is not owed any more
                    now = self._monotonic()
                    forgiven = [(n, k) for n, (_, k) in lacks.items() if k is not None and
                                now - self._participants[n].last_ack_wall >= self.lost_after_s]
                    for name, (kind, topic) in forgiven:
                        self._forgive(name, kind, topic)
                    if forgiven:
                        continue
                if waited >= self.timeout_s:
                    for name in lacks:
                        self.timeouts.append((self._clock_ns, name))
                    self.wait_wall_s += waited
                    self.last_timeout = {n: why for n, (why, _) in sorted(lacks.items())}
                    return sorted(lacks)
                self._cv.wait(timeout=min(0.05, self.liveness_check_s))
        self.wait_wall_s += self._monotonic() - t0
        return []

    def _forgive(self, name: str, kind: str, topic: str) -> None:
        p = self._participants[name]
        if kind == "clock":
            # the clock cannot be forgiven (the node's timers would never reach it): the
            # simulator publishes it again, and the node's silence is counted from now on
            p.last_ack_wall = self._monotonic()
            self.lost.append((self._clock_ns, f"{name} {topic}"))
            if self._resend_clock is not None:
                self._cv.release()          # (publishing may take a while; acks go on)
                try:
                    self._resend_clock()
                finally:
                    self._cv.acquire()
            return
        if kind == "channel":              # (every receiver lacks it: forgiven once)
            owed, got = self._channel_owed_got(topic)
            if owed <= got:
                return
            self._channel_base[topic] = self._channel_base.get(topic, 0) + owed - got
        elif kind == "topic":
            p.joined_ns[topic] = self._published[topic]
        else:
            got = p.taken[topic] - p.base_taken.get(topic, 0)
            p.base_total[topic] = self._total_published(topic) - got
        self.lost.append((self._clock_ns, f"{name} {topic}"))

    def close(self) -> None:
        """Release a wait in progress and every later one (the simulator is stopping)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    # ------------------------------------------------------------------ participant side
    def on_ack(self, node: str, clock_ns: int, topics: Iterable[str],
               stamps_ns: Iterable[int], published: Mapping[str, int] | None = None,
               taken: Mapping[str, int] | None = None) -> None:
        """A participant's ack (joins it if new): its clock, the newest stamp per barrier
        topic, and its message counts per topic (published, taken and processed)."""
        with self._cv:
            self.acks += 1
            p = self._participants.get(node)
            if p is None:
                p = self._participants[node] = Participant(joined_clock_ns=self._clock_ns)
                p.base_published = dict(published or {})
                p.published = dict(p.base_published)
                p.base_taken = dict(taken or {})
                p.base_total = {t: self._total_published(t) for t in p.base_taken}
                for t in filter(is_channel, p.base_taken):     # sent before: not owed
                    self._channel_base.setdefault(t, self._total_published(t))
            p.clock_ns = max(p.clock_ns, int(clock_ns))
            for t, s in zip(topics, stamps_ns):
                if t not in p.joined_ns:      # owed only messages published from now on
                    p.joined_ns[t] = self._published.get(t, -1)
                p.stamps_ns[t] = max(p.stamps_ns.get(t, -1), int(s))
            if published:
                p.published.update(published)
            if taken:
                for t, c in taken.items():
                    if t not in p.base_taken:
                        p.base_taken[t], p.base_total[t] = 0, self._total_published(t)
                        if is_channel(t):
                            self._channel_base.setdefault(t, self._total_published(t))
                    p.taken[t] = int(c)
            p.last_ack_wall = self._monotonic()
            self._cv.notify_all()

    def diagnostic(self) -> Diagnostic:
        """The barrier's diagnostics ("stack barrier"): a warning once it gave up on a node
        (the run then depends on the machine's load)."""
        s = self.summary()
        ok = not s["timeouts"]
        msg = (f"lockstep with {len(s['participants'])} nodes" if ok else
               f"gave up {s['timeouts']} times on {', '.join(s['timed_out'])}")
        return Diagnostic("stack barrier", DiagnosticLevel.OK if ok else DiagnosticLevel.WARN,
                          msg, tuple((k, str(v)) for k, v in s.items()))

    def summary(self) -> dict:
        """Figures for diagnostics and run reports."""
        with self._cv:
            return {"participants": sorted(self._participants), "waits": self.waits,
                    "acks": self.acks,
                    "wait_wall_s": round(self.wait_wall_s, 3),
                    "timeouts": len(self.timeouts),
                    "timed_out": sorted({n for _, n in self.timeouts}),
                    "dropped": sorted({n for _, n in self.dropped}),
                    "lost_messages": len(self.lost),
                    "lost_most": Counter(w for _, w in self.lost).most_common(5)}
