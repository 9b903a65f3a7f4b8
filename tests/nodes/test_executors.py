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
from sitebot.nodes.executors import (KINDS, PARAM, executor_kind, in_thread, make_executor,
                                     wake_timer)
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

    # a MessageInfo callback (the control loop's origin check): the events executor of
    # rclpy 9 cannot serve it, so the node stays on the wait-set executor
    info = _node(ctx, "with_info", executor="events")
    info.create_subscription(String, "chatter", lambda msg, message_info: None, 10)
    assert executor_kind(info) == "single_threaded"

    # an action server running coroutines: the events executor would busy-loop
    coro = _node(ctx, "with_coroutine", executor="events")

    async def execute(handle):
        return MoveArm.Result()

    ActionServer(coro, MoveArm, "move_arm", execute_callback=execute)
    assert executor_kind(coro) == "single_threaded"
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
