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
  supervisor's stop latch) stays on the wait-set executor, and says so.  So does a node whose
  action server runs coroutines (the arm planner): while a coroutine awaits a future, that
  executor's ``spin_once`` returns at once, a busy loop (measured: 0.56 s CPU per second).

No sitebot node needs several threads any more: a node whose callbacks would block (the task
executor's skills wait on other actions; navigation's goals) awaits a coroutine instead, and
blocking work runs in a thread of its own (:func:`in_thread`).  rclpy 9.1's
``MultiThreadedExecutor`` busy-loops while a task it handed its thread pool has not started
(rclpy issue 1452, fixed upstream in PR 1547). Measured with four threads: 2 000 messages
and 400 clocks at 50 Hz cost 8.4 s of CPU (213 messages dropped), against 1.4 s for 12 000 on
the one-thread wait-set executor.  ``run_node(threads=N)`` still gives one.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable

import rclpy.executors
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future

from sitebot.config.params import EVERY_NODE_PARAMS
from sitebot.errors import ConfigError

__all__ = ["PARAM", "KINDS", "executor_kind", "make_executor", "wake_timer", "in_thread"]

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
    if kind == "events":
        why = _not_for_events(node)
        if why:
            node.get_logger().info(f"executor: single_threaded, not events ({why})")
            return KINDS[0]
    return kind


def _not_for_events(node: Node) -> str:
    """Why rclpy's events executor cannot spin ``node`` (module doc), or ''."""
    with_info = sorted(s.topic_name for s in node.subscriptions
                       if s._callback_type is s.CallbackType.WithMessageInfo)
    if with_info:
        return f"it cannot pass MessageInfo to {', '.join(with_info)}"
    coroutines = [w for w in node.waitables
                  if inspect.iscoroutinefunction(getattr(w, "_execute_callback", None))]
    if coroutines:
        return "it busy-loops while an action's coroutine awaits"
    return ""


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

