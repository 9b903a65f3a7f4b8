"""What the stack barrier cannot see from topics alone (:mod:`sitebot.barrier` channels): a
node's actions, and the worker threads that wait on them.

**Actions.** rclpy actions are services and topics inside a waitable, not subscriptions, so
:class:`~sitebot.nodes.barrier_ack.MessageCounter` never saw them: a navigation result sent
in one barrier period could reach the task executor in the next one, or the one after,
depending on the machine's load. :func:`count_actions` wraps a node's action servers and
clients (their Python methods; the node's code is untouched): a server counts each goal,
cancel and result response it sends on the channel ``<ActionType>#goal`` (``#cancel``,
``#result``), a client each one it has taken and handed to its future; and the other way
round for the requests (``#goal_req``, ...). The barrier waits until the receivers together
have taken what the senders sent.

**Worker threads.** The task executor runs a plan in a thread of its own, which waits for
simulated time to pass, for action results and for the operator. Such a thread wakes up at a
moment the barrier does not see, and the simulation would step on while it runs. A
:class:`WorkerGate` makes its waits part of the node's work: the executor thread wakes the
worker (a condition checked after each of the node's callbacks: its clock reached a time, a
future completed, a cancel came) and counts it as sent on ``<node>#work``; the worker counts
it as taken when it waits again. The simulation waits until the two counts agree. Without
the barrier (a robot, a paced simulation) the same waits poll every 10 ms of wall time.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from rclpy.action import ActionClient, ActionServer
from rclpy.node import Node

from sitebot.barrier import WORK_SUFFIX
from sitebot.nodes.executors import in_thread

__all__ = ["count_actions", "WorkerGate", "RESPONSES"]

#: the responses of an action, each a channel ``<ActionType>#<kind>``; its requests are the
#: channels ``<ActionType>#<kind>_req`` (sent by clients, taken by servers)
RESPONSES = ("goal", "cancel", "result")


def count_actions(node: Node, counter: Any) -> None:
    """Count the responses of ``node``'s action servers and clients on ``counter`` (a
    :class:`~sitebot.nodes.barrier_ack.MessageCounter`); entities counted before are left
    as they are, so it can be called again after the node made new ones."""
    for w in list(node.waitables):
        if getattr(w, "_sitebot_counted", False):
            continue
        if isinstance(w, ActionServer):
            _server(w, counter)
        elif isinstance(w, ActionClient):
            _client(w, counter)
        else:
            continue
        w._sitebot_counted = True


def _channels(w: Any, counter: Any, server: bool) -> tuple[dict[str, str], dict[str, str]]:
    """An action's response and request channels, declared on ``counter``: a server sends
    the responses and takes the requests, a client the other way round."""
    kind = w._action_type.__name__
    ch = {k: f"{kind}#{k}" for k in RESPONSES}
    req = {k: f"{kind}#{k}_req" for k in RESPONSES}
    for k in RESPONSES:
        counter.declare(ch[k], sent=server)
        counter.declare(req[k], sent=not server)
    return ch, req


def _server(srv: ActionServer, counter: Any) -> None:
    ch, req = _channels(srv, counter, server=True)
    goal, cancel = srv._execute_goal_request, srv._execute_cancel_request
    get_result, send_result = srv._execute_get_result_request, srv._send_result_response

    # each request is answered once: counted as sent when it is taken up (the response may
    # not leave yet, so the barrier waits a little longer, never less)
    async def goal_request(req: Any) -> None:
        counter.count_sent(ch["goal"])
        await goal(req)

    async def cancel_request(req: Any) -> None:
        counter.count_sent(ch["cancel"])
        await cancel(req)

    async def result_request(req: Any) -> None:
        if bytes(req[1].goal_id.uuid) not in srv._goal_handles:
            counter.count_sent(ch["result"])          # answered at once: unknown goal
        await get_result(req)

    def result_response(header: Any, future: Any) -> None:
        counter.count_sent(ch["result"])              # the goal ended: its result goes out
        send_result(header, future)

    srv._execute_goal_request, srv._execute_cancel_request = goal_request, cancel_request
    srv._execute_get_result_request, srv._send_result_response = result_request, \
        result_response
    _counted_execute(srv, counter, lambda taken: [req[k] for k in RESPONSES if k in taken])


def _client(cli: ActionClient, counter: Any) -> None:
    ch, req = _channels(cli, counter, server=False)
    # requests counted as sent before they go (the server owes them from then on)
    for method, kind in (("send_goal_async", "goal"), ("_cancel_goal_async", "cancel"),
                         ("_get_result_async", "result")):
        setattr(cli, method, _sending(getattr(cli, method), counter, req[kind]))
    _counted_execute(cli, counter, lambda taken: [ch[k] for k in RESPONSES if k in taken])


def _sending(send: Callable[..., Any], counter: Any, name: str) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counter.count_sent(name)
        return send(*args, **kwargs)
    return counted


def _counted_execute(w: Any, counter: Any, taken_of: Callable[[Any], Any]) -> None:
    """``w.execute`` runs as one of the node's callbacks (the barrier's in-flight count, an
    ack after it) and counts the responses it took."""
    execute = w.execute

    async def counted(taken: Any) -> None:
        with counter.lock:
            counter.in_flight += 1
        try:
            await execute(taken)
        finally:
            counter.callback_done("action", [] if taken is None else taken_of(taken))

    w.execute = counted


class WorkerGate:
    """A node's worker thread, waiting in step with the barrier (module doc).

    ``wait_until(ready, wall_s)`` is called by the worker; ``ready()`` is checked by
    :meth:`poll`, which the node's callbacks run (bound by :func:`bind`), or every 10 ms
    without a barrier.  :meth:`hold` / :meth:`release` count a wake-up and a return to
    waiting; a worker starts held (its node's executor thread starts it) and is released by
    whoever sees it finish."""

    POLL_S = 0.01

    def __init__(self) -> None:
        self._counter: Any = None
        self._name = ""
        self._lock = threading.Lock()
        self._waiters: list[tuple[Callable[[], bool], threading.Event]] = []

    def bind(self, node: Node, counter: Any) -> None:
        """Take part in the barrier through ``counter`` (the node's participant)."""
        self._name = node.get_fully_qualified_name() + WORK_SUFFIX
        counter.declare(self._name, sent=True)
        counter.declare(self._name, sent=False)
        counter.polls.append(self.poll)
        self._counter = counter

    def hold(self) -> None:
        if self._counter is not None:
            self._counter.count_sent(self._name)

    def release(self) -> None:
        if self._counter is not None:
            self._counter.count_taken(self._name)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """In a coroutine of the node's executor that holds the gate: ``fn(*args)`` in a
        worker thread of its own, awaited; the gate is released once the coroutine has the
        result (or the exception), so what it sends with it goes out before the barrier
        passes."""
        try:
            return await in_thread(fn, *args)
        finally:
            self.release()

    def wait_until(self, ready: Callable[[], bool], wall_s: float) -> bool:
        """Block the calling worker until ``ready()`` (True) or ``wall_s`` of wall time
        (False: a stopped clock or a lost answer must not hang it)."""
        if ready():
            return True
        if self._counter is None:                     # no barrier: poll
            end = time.monotonic() + wall_s
            while not ready():
                if time.monotonic() >= end:
                    return False
                time.sleep(self.POLL_S)
            return True
        entry = (ready, threading.Event())
        with self._lock:
            self._waiters.append(entry)
        self.release()
        if entry[1].wait(wall_s):
            return True                               # woken, and held, by poll()
        with self._lock:
            if entry[1].is_set():
                return True
            self._waiters.remove(entry)
        self.hold()                                   # woke itself: runs again
        return ready()

    def poll(self) -> None:
        """After each of the node's callbacks (the executor thread): wake the waiters whose
        condition now holds, counted before the node acknowledges."""
        with self._lock:
            for entry in [e for e in self._waiters if e[0]()]:
                self._waiters.remove(entry)
                self.hold()
                entry[1].set()
