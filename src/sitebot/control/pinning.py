"""Which publishers the control loop obeys (core, no ROS).

The control loop takes ``safety/state``, ``cmd_vel`` and ``arm/joint_trajectory`` from one
node only: the safety supervisor it is configured for (its fully qualified node name).  A
message's publisher is known by its GID (rclpy hands it to a subscription callback that
takes a ``MessageInfo``); :class:`PublisherPin` asks the ROS graph, through the ``lookup``
it is given, which node owns that GID:

* ``SUPERVISOR``: the GID belongs to the configured supervisor node, and that name is held
  by one node only among the topic's publishers;
* ``FOREIGN``: any other node, or a supervisor name held by two nodes (an impostor makes
  both untrusted: the robot stops rather than guess);
* ``UNKNOWN``: the graph does not list the GID, or not its node yet (discovery lags the
  first messages; the middleware then names the node ``_NODE_NAME_UNKNOWN_``), or the
  middleware gave none.  Such messages are dropped, never obeyed.

Verdicts are cached per (topic, GID) for ``ttl_s`` seconds; an unknown GID or an expired
entry refreshes the topic's entry from the graph, at most every ``refresh_s`` seconds per
topic (a flood of messages cannot turn into a flood of graph queries).  The expiry lets a
verdict follow the graph: a node that left (an impostor, a supervisor's previous run) stops
counting.

:func:`source_id` turns a publisher's GID and the supervisor's per-boot session token into
the 64-bit source the kernel pins (``ck_pin_supervisor``): a restarted supervisor, or one
publisher that changes its session, is a new source.

This is what the application can enforce on an open DDS domain: it stops the robot for a
second heartbeat source and ignores commands from other nodes, but a participant that takes
the supervisor's node name and silences the real one can only be kept out by SROS2
(authenticated participants and topic permissions; docs/security.md).
"""
from __future__ import annotations

import enum
import hashlib
import time
from typing import Callable, Iterable

__all__ = ["PublisherPin", "Verdict", "qualified_name", "source_id"]


class Verdict(enum.Enum):
    SUPERVISOR = "supervisor"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"


def qualified_name(namespace: str, name: str) -> str:
    """``/ns/name`` from a namespace (``''``, ``'/'`` or ``'/ns'``) and a node name; a name
    that starts with ``/`` is already qualified."""
    if name.startswith("/"):
        return name
    ns = namespace.strip("/")
    return f"/{ns}/{name}" if ns else f"/{name}"


def source_id(gid: bytes, session: int) -> int:
    """The 64-bit source of a heartbeat: a hash of the publisher's GID and the session."""
    h = hashlib.blake2b(bytes(gid), digest_size=8)
    h.update(int(session).to_bytes(8, "little", signed=False))
    return int.from_bytes(h.digest(), "little")


class PublisherPin:
    """Classifies publishers (see the module docstring).

    :param supervisor_node: the supervisor's fully qualified node name (``/safety_supervisor``,
        ``/robot1/safety_supervisor``).
    :param lookup: ``topic -> [(fully qualified node name, gid bytes), ...]``: the topic's
        publishers in the ROS graph.
    :param refresh_s: [s] the shortest interval between two graph queries for one topic.
    :param ttl_s: [s] how long a topic's verdicts are kept before the graph is asked again.
    :param clock: monotonic seconds (for ``refresh_s``, ``ttl_s``).
    """

    def __init__(self, supervisor_node: str,
                 lookup: Callable[[str], Iterable[tuple[str, bytes]]],
                 refresh_s: float = 0.1, ttl_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not supervisor_node.startswith("/"):
            raise ValueError(f"supervisor_node must be fully qualified ('/name' or "
                             f"'/ns/name'), got {supervisor_node!r}")
        self.supervisor_node = supervisor_node
        self.lookup = lookup
        self.refresh_s = float(refresh_s)
        self.ttl_s = float(ttl_s)
        self.clock = clock
        self._verdicts: dict[str, dict[bytes, Verdict]] = {}
        self._refreshed: dict[str, float] = {}

    def classify(self, topic: str, gid: bytes | None) -> Verdict:
        if not gid:
            return Verdict.UNKNOWN
        gid = bytes(gid)
        now = self.clock()
        known = self._verdicts.get(topic, {})
        verdict = known.get(gid)
        age = now - self._refreshed.get(topic, -float("inf"))
        if verdict is not None and age < self.ttl_s:
            return verdict
        if age < self.refresh_s:
            return verdict or Verdict.UNKNOWN
        self._refreshed[topic] = now
        self._verdicts[topic] = known = self._refresh(topic)
        return known.get(gid, Verdict.UNKNOWN)

    def _refresh(self, topic: str) -> dict[bytes, Verdict]:
        publishers = [(name, bytes(gid)) for name, gid in self.lookup(topic)
                      if "_UNKNOWN_" not in name]        # the node is not known yet
        owners = {gid for name, gid in publishers if name == self.supervisor_node}
        # the supervisor has one publisher per topic: two publishers under its name are two
        # nodes with that name, which cannot be told apart: trust neither
        trusted = owners if len(owners) == 1 else set()
        return {gid: Verdict.SUPERVISOR if gid in trusted else Verdict.FOREIGN
                for _, gid in publishers}
