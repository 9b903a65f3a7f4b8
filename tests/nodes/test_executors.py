"""The every-node parameter ``executor`` (sitebot.nodes.executors): which nodes rclpy's events
executor may spin, what it does with sim-time timers and the barrier's wake, and bad values."""
from __future__ import annotations

import time

import pytest
import rclpy
from rclpy.action import ActionServer
from rclpy.context import Context
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from sitebot.config.params import EVERY_NODE_PARAMS, validate_params
from sitebot.errors import ConfigError
from sitebot.nodes.convert import from_ns
from sitebot.nodes.convert import publisher_gid
from sitebot.nodes.executors import (COROUTINE_POLL_S, KINDS, PARAM, executor_for, executor_kind,
                                     in_thread, make_executor, spin_once, wake_timer)
from sitebot.regress.prepare import RUN_EXECUTOR
from sitebot_interfaces.action import MoveArm


@pytest.fixture
def ctx():
    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def _node(ctx, name: str, **params):
    return rclpy.create_node(name, context=ctx, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])


def test_the_parameter_is_one_every_node_takes_and_runs_choose_events():
    assert PARAM == "executor" and PARAM in EVERY_NODE_PARAMS
    assert KINDS == ("single_threaded", "events") and RUN_EXECUTOR == {PARAM: "events"}
    # a parameter file may set it for any node without failing its schema check
    assert validate_params([], {"executor": "events", "sim_lockstep": True}) == {}


def test_kind_follows_the_parameter_threads_and_what_the_node_holds(ctx):
    plain = _node(ctx, "plain", executor="events")
    assert executor_kind(plain) == "events"
    assert executor_kind(plain, threads=3) == "multi_threaded"
    assert executor_kind(_node(ctx, "default")) == "single_threaded"

    # a MessageInfo callback (the control loop's origin check): served as a waitable (below)
    info = _node(ctx, "with_info", executor="events")
    info.create_subscription(String, "chatter", lambda msg, message_info: None, 10)
    assert executor_kind(info) == "events"

    # an action server running coroutines: spin_once keeps the events executor from
    # busy-looping while one awaits (below)
    coro = _node(ctx, "with_coroutine", executor="events")

    async def execute(handle):
        return MoveArm.Result()

    ActionServer(coro, MoveArm, "move_arm", execute_callback=execute)
    assert executor_kind(coro) == "events"
    sync = _node(ctx, "with_plain_action", executor="events")
    ActionServer(sync, MoveArm, "move_arm2", execute_callback=lambda handle: MoveArm.Result())
    assert executor_kind(sync) == "events"


def test_a_bad_value_names_the_node_the_parameter_and_the_choices(ctx):
    with pytest.raises(ConfigError) as e:
        executor_kind(_node(ctx, "bad", executor="turbo"))
    text = str(e.value)
    assert "'bad'" in text and "executor" in text and "'turbo'" in text
    assert "single_threaded" in text and "events" in text
    with pytest.raises(ConfigError):
        make_executor("turbo", context=ctx)


@pytest.mark.parametrize("kind", KINDS)
def test_sim_time_timers_fire_on_the_published_clock(ctx, kind):
    """A 10 Hz timer on sim time, /clock published at 50 Hz for 2 simulated seconds: it fires
    20 times, at multiples of 0.1 s of sim time, under either executor."""
    node = _node(ctx, f"timed_{kind}", use_sim_time=True)
    fired: list[int] = []
    node.create_timer(0.1, lambda: fired.append(node.get_clock().now().nanoseconds))
    pub_node = _node(ctx, f"clock_{kind}")
    clock = pub_node.create_publisher(Clock, "/clock", 10)
    ex = make_executor(kind, context=ctx)
    ex.add_node(node)
    side = make_executor("single_threaded", context=ctx)
    side.add_node(pub_node)
    deadline = time.monotonic() + 10
    while node.count_publishers("/clock") == 0 and time.monotonic() < deadline:
        ex.spin_once(timeout_sec=0.01)
    for k in range(1, 101):                 # 20 ms .. 2.0 s
        clock.publish(Clock(clock=from_ns(k * 20_000_000)))
        end = time.monotonic() + 5
        while node.get_clock().now().nanoseconds < k * 20_000_000 and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.01)
        for _ in range(3):                  # the timers that clock made due
            ex.spin_once(timeout_sec=0.0)
    assert len(fired) == 20, fired
    assert all(ns % 100_000_000 == 0 for ns in fired), fired
    ex.shutdown()
    side.shutdown()


@pytest.mark.parametrize("kind", KINDS)
def test_the_wake_timer_runs_its_callback_once_per_trigger_batch(ctx, kind):
    """The barrier acker's wake (no guard conditions in the events executor): each trigger
    runs the callback once, soon; triggers before it ran are one run; none without one."""
    node = _node(ctx, f"waker_{kind}")
    runs: list[float] = []
    wake = wake_timer(node, lambda: runs.append(time.monotonic()))
    ex = make_executor(kind, context=ctx)
    ex.add_node(node)
    for _ in range(5):
        ex.spin_once(timeout_sec=0.02)
    assert runs == []                        # armed only by a trigger
    wake()
    wake()                                   # two before it ran: one run
    end = time.monotonic() + 5
    while not runs and time.monotonic() < end:
        ex.spin_once(timeout_sec=0.05)
    for _ in range(5):
        ex.spin_once(timeout_sec=0.02)
    assert len(runs) == 1
    wake()
    end = time.monotonic() + 5
    while len(runs) < 2 and time.monotonic() < end:
        ex.spin_once(timeout_sec=0.05)
    assert len(runs) == 2
    ex.shutdown()


def test_in_thread_is_awaited_by_a_coroutine_on_one_thread(ctx):
    """The task executor's pattern: blocking work in a thread of its own, awaited by an action
    coroutine; the one executor thread stays free for the callbacks the work waits on."""
    import threading

    node = _node(ctx, "awaiter")
    release = threading.Event()
    ticks: list[int] = []
    node.create_timer(0.01, lambda: (ticks.append(1), len(ticks) >= 5 and release.set()))
    out: dict = {}

    def blocking(x: int) -> int:
        assert release.wait(5.0), "the executor thread was not free to run the timer"
        return 2 * x

    def failing() -> None:
        raise ValueError("broken plan")

    async def main():
        out["value"] = await in_thread(blocking, 21)
        try:
            await in_thread(failing)
        except ValueError as e:
            out["error"] = str(e)

    ex = make_executor("single_threaded", context=ctx)
    ex.add_node(node)
    task = ex.create_task(main())
    end = time.monotonic() + 10
    while not task.done() and time.monotonic() < end:
        ex.spin_once(timeout_sec=0.05)
    assert task.done() and task.exception() is None
    assert out == {"value": 42, "error": "broken plan"}
    assert len(ticks) >= 5
    ex.shutdown()


def test_a_coroutine_awaiting_on_the_events_executor_is_polled_not_spun(ctx):
    """While a coroutine awaits, rclpy's events executor returns from every spin_once at once;
    sitebot's spin_once sleeps between such empty turns, and messages still get through."""
    from rclpy.task import Future

    node = _node(ctx, "awaiting", executor="events")
    pub_node = _node(ctx, "talker")
    heard: list[str] = []
    node.create_subscription(String, "chatter", lambda m: heard.append(m.data), 50)
    pub = pub_node.create_publisher(String, "chatter", 50)
    release: Future = Future()
    node.create_timer(0.5, lambda: release.done() or release.set_result(7))
    out: dict = {}

    async def goal():
        out["value"] = await release

    ex = make_executor("events", context=ctx)
    ex.add_node(node)
    task = ex.create_task(goal())
    turns = 0
    t0 = time.monotonic()
    while not task.done() and time.monotonic() - t0 < 10.0:
        if turns % 50 == 0:
            pub.publish(String(data=str(turns)))
        spin_once(ex, 0.05)
        turns += 1
    wall = time.monotonic() - t0
    assert task.done() and out == {"value": 7}
    # one turn per poll at most, plus one per message and timer: without the sleep this loop
    # turns about 300 000 times a second
    assert turns <= 2 * wall / COROUTINE_POLL_S + len(heard) + 10, (turns, wall)
    assert len(heard) >= min(5, turns // 50 - 1)
    ex.shutdown()


@pytest.mark.parametrize("kind", KINDS)
def test_message_info_callbacks_get_the_publishers_gid_under_either_executor(ctx, kind):
    """The control loop's and the supervisor's origin checks read the publisher's GID from the
    MessageInfo; rclpy 9.1's events executor cannot call such a callback (a SystemError), so
    it is served as a waitable, and a wrapper put on the callback (the barrier's count) after
    the node was built still runs."""
    node = _node(ctx, "judge", executor=kind)
    a, b = _node(ctx, "talker_a"), _node(ctx, "talker_b")
    got: list[tuple[str, bytes]] = []
    plain: list[str] = []
    node.create_subscription(String, "cmd",
                             lambda m, info: got.append((m.data, publisher_gid(info))), 50)
    node.create_subscription(String, "plain", lambda m: plain.append(m.data), 50)
    wrapped: list[int] = []
    for sub in node.subscriptions:
        if sub.topic_name == "/cmd":
            inner = sub.callback
            sub.callback = lambda m, info, inner=inner: (wrapped.append(1), inner(m, info))
    pa, pb = a.create_publisher(String, "cmd", 50), b.create_publisher(String, "cmd", 50)
    pp = a.create_publisher(String, "plain", 50)
    ex = executor_for(node)
    assert isinstance(ex, rclpy.executors.Executor) == (kind == "single_threaded")
    gids = {}
    end = time.monotonic() + 10
    while time.monotonic() < end and len(gids) < 2:
        for name, pub in (("a", pa), ("b", pb)):
            pub.publish(String(data=name))
        pp.publish(String(data="p"))
        spin_once(ex, 0.05)
        gids = {}
        for data, gid in got:
            gids.setdefault(data, set()).add(gid)
    assert set(gids) == {"a", "b"} and all(len(g) == 1 for g in gids.values())
    expected = {i.node_name: bytes(i.endpoint_gid)[:16]
                for i in node.get_publishers_info_by_topic("/cmd")}
    assert gids["a"] == {expected["talker_a"]} and gids["b"] == {expected["talker_b"]}
    assert len(wrapped) == len(got) and plain
    ex.shutdown()
