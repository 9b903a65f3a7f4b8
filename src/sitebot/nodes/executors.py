"""Which rclpy executor spins a node: the every-node parameter ``executor``.

- ``single_threaded`` (the default): rclpy's ``SingleThreadedExecutor``, which rebuilds a
  wait set in Python on every wake.  Measured with ``sitebot bench profile``, that rebuild is
  45-75 % of every node's CPU in a simulated run (a ``/clock`` every 20 ms, tf, odometry, IMU).
- ``events``: rclpy's ``EventsExecutor`` (``rclpy.experimental``, C++): middleware events are
  queued as they arrive and dispatched without a wait set; timers (ROS time included) run from
  its timer manager.  Measured here: 10 000 messages on five topics plus a sim-time timer
  cost a subscriber 1.38 s of CPU on the wait-set executor, 0.40 s on this one.  Regression
  and campaign runs choose it (``sitebot.regress.prepare.RUN_EXECUTOR``); a launch may.
  rclpy 9 lacks guard conditions in it (:func:`wake_timer` stands in), its ``spin()``
  does not return to Python (sitebot loops call ``spin_once``), and it cannot hand a
  callback its ``MessageInfo`` (a SystemError): a node with such a subscription (the control
  loop's origin check reads the publisher's GID: the simulator, the control loop, the
  supervisor's stop latch) gets that subscription served as a ``Waitable`` instead
  (:func:`serve_for_events`: the executor hands a waitable its wait set, and the waitable
  takes the message with its info in Python, as the wait-set executor does).  While a
  coroutine (an action's goal) awaits a future, that executor's ``spin_once`` returns at
  once, having only stepped the coroutine: a busy loop (measured: a whole core).  sitebot's
  loops turn through :func:`spin_once`, which sleeps :data:`COROUTINE_POLL_S` after such an
  empty turn (measured: 0.06-0.07 s of CPU per second; a callback waits at most that long).

No sitebot node needs several threads any more: a node whose callbacks would block (the task
executor's skills wait on other actions; navigation's goals) awaits a coroutine instead, and
blocking work runs in a thread of its own (:func:`in_thread`).  rclpy 9.1's
``MultiThreadedExecutor`` busy-loops while a task it handed its thread pool has not started
(rclpy issue 1452, fixed upstream in PR 1547). Measured with four threads: 2 000 messages
and 400 clocks at 50 Hz cost 8.4 s of CPU (213 messages dropped), against 1.4 s for 12 000 on
the one-thread wait-set executor.  ``run_node(threads=N)`` still gives one.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import rclpy.executors
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.subscription import Subscription
from rclpy.task import Future
from rclpy.waitable import NumberOfEntities, Waitable

from sitebot.config.params import EVERY_NODE_PARAMS
from sitebot.errors import ConfigError

__all__ = ["PARAM", "KINDS", "executor_for", "executor_kind", "make_executor", "serve_for_events",
           "spin_once", "wake_timer", "in_thread"]

PARAM = EVERY_NODE_PARAMS[2]
KINDS = ("single_threaded", "events")


def executor_kind(node: Node, threads: int = 1) -> str:
    """The executor ``node`` asks for (its ``executor`` parameter, declared here if its schema
    did not); ``multi_threaded`` when it needs ``threads`` > 1."""
    if not node.has_parameter(PARAM):
        node.declare_parameter(PARAM, KINDS[0])
    kind = str(node.get_parameter(PARAM).value)
    if kind not in KINDS:
        raise ConfigError(f"node '{node.get_name()}': parameter '{PARAM}' is {kind!r}; "
                          f"expected one of {', '.join(KINDS)}")
    if threads > 1:
        return "multi_threaded"
    return kind


class _InfoSubscription(Waitable):
    """A subscription whose callback takes the message's ``MessageInfo``, served to rclpy's
    events executor as a waitable (module doc): one message taken per ready event, and the
    subscription's callback called with the message and its info."""

    def __init__(self, sub: Subscription) -> None:
        super().__init__(sub.callback_group)
        self.sub = sub
        self._index: int | None = None
        self._ready = False

    def __enter__(self) -> None:
        self.sub.handle.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.sub.handle.__exit__(*exc)

    def get_num_entities(self) -> NumberOfEntities:
        return NumberOfEntities(num_subs=1)

    def add_to_wait_set(self, wait_set: Any) -> None:
        self._index = wait_set.add_subscription(self.sub.handle)

    def is_ready(self, wait_set: Any) -> bool:
        if self._index is not None and wait_set.is_ready("subscription", self._index):
            self._ready = True
        return self._ready

    def take_data(self) -> Any:
        if not self._ready:
            return None
        self._ready = False
        with self.sub.handle:
            return self.sub.handle.take_message(self.sub.msg_type, self.sub.raw)

    async def execute(self, taken: Any) -> None:
        if taken is not None:
            self.sub.callback(*taken)      # (read now: the barrier may have wrapped it)


def serve_for_events(node: Node) -> list[str]:
    """Before ``node`` is added to an events executor: its subscriptions whose callbacks take
    a ``MessageInfo`` are served as waitables (the executor cannot call them itself); the
    topics so served."""
    served = []
    for sub in [s for s in node.subscriptions
                if s._callback_type is s.CallbackType.WithMessageInfo]:
        node._subscriptions.remove(sub)       # (the Subscription stays: the waitable has it)
        node.add_waitable(_InfoSubscription(sub))
        served.append(sub.topic_name)
    if served:
        node.get_logger().info(f"executor: events, {', '.join(served)} served as waitables "
                               "(their callbacks take the MessageInfo)")
    return served


def executor_for(node: Node, threads: int = 1) -> rclpy.executors.Executor:
    """The executor ``node`` asks for (:func:`executor_kind`), with the node added."""
    kind = executor_kind(node, threads)
    if kind == "events":
        serve_for_events(node)
    ex = make_executor(kind, threads, node.context)
    ex.add_node(node)
    return ex


def make_executor(kind: str, threads: int = 1,
                  context: rclpy.Context | None = None) -> rclpy.executors.Executor:
    """An executor of ``kind`` (:data:`KINDS`, or ``multi_threaded`` with ``threads``)."""
    if kind == "multi_threaded":
        return rclpy.executors.MultiThreadedExecutor(num_threads=threads, context=context)
    if kind == "events":
        from rclpy.experimental import EventsExecutor
        return EventsExecutor(context=context)
    if kind == "single_threaded":
        return rclpy.executors.SingleThreadedExecutor(context=context)
    raise ConfigError(f"unknown executor {kind!r}; expected one of {', '.join(KINDS)}")


#: a turn of the events executor shorter than this ran no callback, only stepped coroutines
#: that still await (measured: 3 us at the median, 10 us at p99; taking and handing over the
#: smallest message takes longer) [s]
EMPTY_TURN_S = 15e-6
#: how long :func:`spin_once` then sleeps before the next turn [s]
COROUTINE_POLL_S = 0.0005


def spin_once(ex: rclpy.executors.Executor, timeout_sec: float) -> None:
    """One turn of ``ex``, as the executor's ``spin_once``; on the events executor a turn that
    ran no callback (a coroutine still awaits, module doc) is followed by a short sleep
    instead of a busy loop.  Events that arrive meanwhile wait in the executor's queue."""
    if isinstance(ex, rclpy.executors.Executor):        # the wait-set executors block
        ex.spin_once(timeout_sec=timeout_sec)
        return
    t0 = time.perf_counter()
    ex.spin_once(timeout_sec=timeout_sec)
    if time.perf_counter() - t0 < EMPTY_TURN_S:
        time.sleep(COROUTINE_POLL_S)


def wake_timer(node: Node, callback: Callable[[], Any]) -> Callable[[], None]:
    """A way to run ``callback`` once, soon, in ``node``'s executor, after the callbacks it has
    already taken up: a steady-clock timer of period 0 that cancels itself, re-armed by the
    returned function (works under every executor, unlike a guard condition)."""
    def fire() -> None:
        timer.cancel()
        callback()

    timer = node.create_timer(0.0, fire, clock=Clock(clock_type=ClockType.STEADY_TIME))
    timer.cancel()
    return timer.reset


def in_thread(fn: Callable[..., Any], *args: Any) -> Future:
    """Run ``fn(*args)`` in a thread of its own: a future of its result (or its exception)
    that a coroutine on a one-thread executor can await while ``fn`` blocks."""
    done: Future = Future()

    def run() -> None:
        try:
            done.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - raised where the future is awaited
            done.set_exception(e)

    threading.Thread(target=run, name=getattr(fn, "__name__", "in_thread"), daemon=True).start()
    return done

