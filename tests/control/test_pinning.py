"""Which publishers the control loop obeys (sitebot.control.pinning): core, no ROS."""
from __future__ import annotations

import pytest

from sitebot.control.pinning import PublisherPin, Verdict, qualified_name, source_id

SUP, ATT, SUP2 = b"S" * 16, b"A" * 16, b"T" * 16


class Graph:
    def __init__(self) -> None:
        self.t = 0.0
        self.topics: dict[str, list[tuple[str, bytes]]] = {}
        self.queries = 0

    def lookup(self, topic: str) -> list[tuple[str, bytes]]:
        self.queries += 1
        return list(self.topics.get(topic, []))


@pytest.fixture
def g() -> Graph:
    return Graph()


def pin(g: Graph) -> PublisherPin:
    return PublisherPin("/safety_supervisor", g.lookup, refresh_s=0.1, ttl_s=1.0,
                        clock=lambda: g.t)


def test_qualified_names():
    assert qualified_name("/", "safety_supervisor") == "/safety_supervisor"
    assert qualified_name("", "safety_supervisor") == "/safety_supervisor"
    assert qualified_name("/robot1", "safety_supervisor") == "/robot1/safety_supervisor"
    assert qualified_name("/robot1", "/other/sup") == "/other/sup"
    assert qualified_name(qualified_name("/", "robot2"), "safety_supervisor") == \
        "/robot2/safety_supervisor"


def test_source_ids_differ_by_gid_and_session():
    ids = {source_id(gid, s) for gid in (SUP, ATT) for s in (1, 2, 2**64 - 1)}
    assert len(ids) == 6 and all(0 <= i < 2**64 for i in ids)
    assert source_id(SUP, 1) == source_id(SUP, 1)


def test_the_supervisor_is_obeyed_and_anyone_else_is_foreign(g):
    g.topics["cmd_vel"] = [("/safety_supervisor", SUP), ("/attacker", ATT)]
    p = pin(g)
    assert p.classify("cmd_vel", SUP) is Verdict.SUPERVISOR
    assert p.classify("cmd_vel", ATT) is Verdict.FOREIGN
    assert p.classify("cmd_vel", None) is Verdict.UNKNOWN
    assert p.classify("cmd_vel", b"") is Verdict.UNKNOWN
    assert g.queries == 1                                  # cached


def test_an_impostor_with_the_supervisors_name_makes_both_untrusted(g):
    g.topics["safety/state"] = [("/safety_supervisor", SUP)]
    p = pin(g)
    assert p.classify("safety/state", SUP) is Verdict.SUPERVISOR
    g.topics["safety/state"].append(("/safety_supervisor", SUP2))
    g.t = 0.2
    assert p.classify("safety/state", SUP2) is Verdict.FOREIGN     # unknown gid: refresh
    assert p.classify("safety/state", SUP) is Verdict.FOREIGN
    g.topics["safety/state"].pop()                                 # the impostor leaves
    g.t = 1.5                                                      # the verdicts expire
    assert p.classify("safety/state", SUP) is Verdict.SUPERVISOR


def test_a_node_the_graph_does_not_name_yet_is_unknown_not_foreign(g):
    g.topics["safety/state"] = [("/_NODE_NAMESPACE_UNKNOWN_/_NODE_NAME_UNKNOWN_", SUP)]
    p = pin(g)
    assert p.classify("safety/state", SUP) is Verdict.UNKNOWN
    g.topics["safety/state"] = [("/safety_supervisor", SUP)]
    g.t = 0.05
    assert p.classify("safety/state", SUP) is Verdict.UNKNOWN      # refresh rate-limited
    g.t = 0.2
    assert p.classify("safety/state", SUP) is Verdict.SUPERVISOR


def test_a_flood_of_unknown_gids_costs_at_most_one_query_per_refresh_period(g):
    g.topics["cmd_vel"] = [("/safety_supervisor", SUP)]
    p = pin(g)
    for i in range(10_000):
        g.t = i * 1e-4                                             # 10 k messages in 1 s
        assert p.classify("cmd_vel", i.to_bytes(16, "little")) is not Verdict.SUPERVISOR
    assert g.queries <= 11


def test_the_supervisor_name_must_be_qualified():
    with pytest.raises(ValueError, match="fully qualified"):
        PublisherPin("safety_supervisor", lambda t: [])
