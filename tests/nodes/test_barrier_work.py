"""The barrier's view of actions and worker threads (sitebot.nodes.barrier_work): a worker
gate's waits, with the barrier's counter and without; an action's requests and responses
counted on both ends over real rclpy (events executor, two nodes), so that the barrier
waits for them."""
from __future__ import annotations

import threading
import time

import rclpy
from rclpy.action import ActionClient, ActionServer
from rclpy.context import Context
from rclpy.node import Node

from sitebot.barrier import StackBarrier
from sitebot.nodes.barrier_ack import MessageCounter
from sitebot.nodes.barrier_work import WorkerGate, count_actions
from sitebot.nodes.executors import make_executor, spin_once
from sitebot_interfaces.action import NavigateToPlace


class _Counter:
    """The part of MessageCounter a gate uses (a test double: no node)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.published: dict[str, int] = {}
        self.taken: dict[str, int] = {}
        self.polls: list = []
        self.in_flight = 0

    def declare(self, name: str, sent: bool) -> None:
        (self.published if sent else self.taken).setdefault(name, 0)

    def count_sent(self, name: str) -> None:
        with self.lock:
            self.published[name] += 1

    def count_taken(self, name: str) -> None:
        with self.lock:
            self.taken[name] += 1


class _Named:
    def get_fully_qualified_name(self) -> str:
        return "/task_executor"


def test_a_gate_without_a_barrier_polls_and_gives_up_on_wall_time():
    gate, flag = WorkerGate(), threading.Event()
    threading.Timer(0.05, flag.set).start()
    assert gate.wait_until(flag.is_set, 5.0)
    t0 = time.monotonic()
    assert not gate.wait_until(lambda: False, 0.1)
    assert time.monotonic() - t0 >= 0.1


def test_a_gated_worker_is_woken_by_the_executor_and_counted_until_it_waits_again():
    """Held from its start; waiting counts it back; the executor's poll (after a callback)
    wakes it and counts it as running before the node could acknowledge."""
    gate, counter, work = WorkerGate(), _Counter(), "/task_executor#work"
    gate.bind(_Named(), counter)
    assert counter.polls == [gate.poll]
    clock = {"t": 0.0}
    gate.hold()                                        # the executor starts the worker
    woke_at: list[float] = []

    def worker() -> None:
        assert gate.wait_until(lambda: clock["t"] >= 0.1, 5.0)
        woke_at.append(clock["t"])
        gate.release()                                 # (its plan ends)
    th = threading.Thread(target=worker)
    th.start()
    while counter.taken[work] < 1:                     # the worker waits: released once
        time.sleep(0.001)
    assert counter.published[work] == counter.taken[work] == 1
    for k in range(1, 8):                              # the node's clock callbacks
        clock["t"] = 0.02 * k
        gate.poll()
        if clock["t"] >= 0.1:
            # woken in the poll: counted as running before the callback is acknowledged
            assert counter.published[work] == 2
            break
        assert counter.published[work] == 1
    th.join(5.0)
    assert woke_at == [0.1] and counter.published[work] == counter.taken[work] == 2


def test_a_gated_worker_that_times_out_counts_itself_running():
    gate, counter, work = WorkerGate(), _Counter(), "/task_executor#work"
    gate.bind(_Named(), counter)
    gate.hold()
    assert not gate.wait_until(lambda: False, 0.05)
    assert counter.published[work] == 2 and counter.taken[work] == 1    # running again


def test_action_responses_are_counted_where_sent_and_where_taken():
    """A navigation server and a client (the task executor's part) in two nodes on events
    executors: the goal and result responses are counted by the server when sent and by the
    client when taken, and a barrier over both waits until the client has them."""
    ctx = Context()
    rclpy.init(context=ctx, domain_id=None)
    try:
        srv_node = Node("nav_server", context=ctx)
        cli_node = Node("nav_client", context=ctx)

        def execute(goal_handle):
            goal_handle.succeed()
            return NavigateToPlace.Result(code=NavigateToPlace.Result.CODE_SUCCEEDED)
        ActionServer(srv_node, NavigateToPlace, "navigate_to_place", execute)
        client = ActionClient(cli_node, NavigateToPlace, "navigate_to_place")
        counters = {}
        for n in (srv_node, cli_node):
            counters[n.get_name()] = c = MessageCounter(n, None, lambda *a: None)
            count_actions(n, c)
            count_actions(n, c)                     # again: nothing wrapped twice
        ex = make_executor("events", context=ctx)
        ex.add_node(srv_node)
        ex.add_node(cli_node)
        stop = threading.Event()
        th = threading.Thread(target=lambda: [spin_once(ex, 0.05) for _ in iter(
            stop.is_set, True)], daemon=True)
        th.start()
        assert client.wait_for_server(timeout_sec=10.0)
        fut = client.send_goal_async(NavigateToPlace.Goal(place_id="t1_bay"))
        end = time.monotonic() + 10.0
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.01)
        res = fut.result().get_result_async()
        while not res.done() and time.monotonic() < end:
            time.sleep(0.01)
        assert res.done() and res.result().result.code == NavigateToPlace.Result.CODE_SUCCEEDED
        s, c = counters["nav_server"], counters["nav_client"]
        while c.taken["NavigateToPlace#result"] < 1 and time.monotonic() < end:
            time.sleep(0.01)
        assert s.published["NavigateToPlace#goal"] == c.taken["NavigateToPlace#goal"] == 1
        assert s.published["NavigateToPlace#result"] == c.taken["NavigateToPlace#result"] == 1
        assert s.published["NavigateToPlace#cancel"] == c.taken["NavigateToPlace#cancel"] == 0
        # and the requests the other way round: the goal and the result request
        for kind, n in (("goal_req", 1), ("result_req", 1), ("cancel_req", 0)):
            assert c.published[f"NavigateToPlace#{kind}"] == n, kind
            assert s.taken[f"NavigateToPlace#{kind}"] == n, kind
        # the barrier's view: caught up now; owed while the client had not taken the result
        b = StackBarrier(timeout_s=1.0)
        pub_s, taken_c = dict(s.published), dict(c.taken)
        b.on_ack("/nav_server", 0, [], [], {k: 0 for k in pub_s}, {})
        b.on_ack("/nav_client", 0, [], [], {}, {k: 0 for k in taken_c
                                                if "#" in k})
        b.on_ack("/nav_server", 0, [], [], pub_s, {})
        assert b.behind() == {"/nav_client": "NavigateToPlace#goal: 0 of 1 processed"}
        b.on_ack("/nav_client", 0, [], [], {}, {k: v for k, v in taken_c.items() if "#" in k})
        assert b.behind() == {}
        stop.set()
        th.join(5.0)
    finally:
        rclpy.shutdown(context=ctx)
