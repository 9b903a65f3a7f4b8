"""The console's link to the robot (no rclpy): the :class:`~sitebot.console.server.Bridge`
the server calls, written as rules over a few primitives that the ROS node provides
(:class:`RobotPort`), and the robot's answers written into the server's state store.

The rules: an e-stop first stops teleop and, when the supervisor's trigger service does not
answer, falls back to the e-stop input pressed then released; a mode set through the
supervisor is remembered (the safety section shows it as requested); teleop commands carry
strictly increasing stamps (the supervisor drops duplicate stamps) while a stop is always
sent; a plan runs only when the planner's answer was received here, and its progress and
result become the ``task`` section. Operator actions go to the console's audit
(:class:`ConsoleAudit`).

Authority (docs/security.md): everything that acts for a logged-in user carries an assertion
signed with the site key (:mod:`sitebot.security`) naming that user and the role of the
console's user store: instructions (scope ``command``, subject the request id, bound to the
text), runs with confirmed high-risk steps and answers to the executor's question (scope
``confirm``, subject the plan id, bound to the steps), mode changes (scope ``mode``) and
resets (scope ``reset``, both on the supervisor's ``safety/request``).  Without a usable
key nothing is signed: instructions are planned for an operator, and a reset, a mode change
or a confirmation is refused downstream, with the reason shown.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Mapping, Protocol

from sitebot.console.protocol import safe_line
from sitebot.console.server import Bridge, ConsoleServer
from sitebot.console.state import plan_dict
from sitebot.console.views import ConsoleViews, confirmation_section
from sitebot.safety.audit import AuditLog
from sitebot.security import Authority, AuthorityError, command_digest, plan_digest

__all__ = ["Unavailable", "RobotPort", "ConsoleBridge", "ConsoleAudit"]

_YES_NO = {True: "yes", False: "no"}


class Unavailable(RuntimeError):
    """A service or action that is not there, did not answer in time, or refused; ``str()``
    is the text for the operator."""


class RobotPort(Protocol):
    """What the ROS side does for the bridge (blocking calls raise :class:`Unavailable`)."""

    def now_ns(self) -> int: ...

    def trigger(self, service: str) -> tuple[bool, str]:
        """Call a Trigger service: ``estop`` (the supervisor's safety/trigger_estop),
        ``survey_start``, ``survey_stop`` (the survey recorder's survey/start, survey/stop)."""

    def pulse_estop(self) -> None:
        """The e-stop input pressed then released (safety/estop)."""

    def safety_request(self, request: str, mode: str, authority: str) -> tuple[bool, str]:
        """The supervisor's ``safety/request`` (``reset`` or ``mode``): (done, message)."""

    def publish_twist(self, v: float, w: float, deadman: bool, stamp_ns: int | None) -> None:
        """``teleop/deadman`` and ``cmd_vel_in`` (stamped at ``stamp_ns``; None: no stamp)."""

    def publish_task_command(self, confirm: bool, request_id: str, text: str, role: str,
                             in_reply_to: str, authority: str) -> None:
        """``task/command`` (or ``task/confirm`` with ``confirm``)."""

    def send_plan(self, plan: Any, confirmed: bool, authority: str) -> Any:
        """Send the plan to the executor (``authority``: the signed confirmation, or '');
        the accepted goal's handle."""

    def watch_plan(self, handle: Any) -> None:
        """From now on, report the goal's result (:meth:`ConsoleBridge.on_result`)."""

    def cancel_plan(self, handle: Any) -> None: ...


class ConsoleAudit:
    """Operator actions: one log line each and, with a path, the console's JSON-lines log."""

    def __init__(self, path: str, info: Callable[[str], None],
                 clock: Callable[[], float]) -> None:
        self.info, self.clock = info, clock
        self.log = AuditLog(path) if path else None

    def __call__(self, event: str, **fields: Any) -> None:
        self.info(safe_line(f"console: {event} "
                            + " ".join(f"{k}={v}" for k, v in fields.items())))
        if self.log is not None:
            self.log.write(event, self.clock(), **fields)


class ConsoleBridge(Bridge):
    """The server's bridge; :attr:`server` is set once the server exists."""

    def __init__(self, port: RobotPort, views: ConsoleViews, audit: Callable[..., None],
                 authority: Authority | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.port, self.views, self.audit = port, views, audit
        self.authority = authority or Authority(None, problem="no authority key configured")
        self.wall = wall                    # assertions expire in wall-clock time
        self.server: ConsoleServer | None = None
        self.goal: Any = None               # the running plan's goal handle
        self.last_cmd_ns = -1
        self.asked: dict[str, str] = {}     # plan id -> steps digest the executor asked about

    # ------------------------------------------------------------------ authority
    def _role(self, user: str) -> str:
        """The role of *user* in the server's user store ('' when unknown)."""
        store = getattr(self.server, "users", None)
        u = store.users.get(user) if store is not None else None
        return u.role if u is not None else ""

    def _sign(self, scope: str, subject: str, user: str, role: str = "",
              digest: str = "") -> str:
        """An assertion for *user* (their role from the user store unless given), or '' when
        it cannot be made (no key, unknown user: audited)."""
        role = role or self._role(user)
        try:
            if not user or not role:
                raise AuthorityError("missing", f"no logged-in user with a role ({user!r})")
            return self.authority.sign(scope, subject, user, role, self.wall(), digest=digest)
        except AuthorityError as e:
            self.audit("unsigned", scope=scope, subject=subject, user=user, reason=str(e))
            return ""

    def _plan_digest(self, plan_id: str) -> str:
        kept = self.views.plan(plan_id)
        if kept is not None:
            return plan_digest(kept[1])
        return self.asked.get(plan_id, "")

    def on_confirmation_request(self, text: str) -> None:
        """The executor's ``task/confirmation_request`` (JSON): shown, and its plan's digest
        kept to sign the answer."""
        section = confirmation_section(text)
        digest = json.loads(text).get("plan_digest", "")
        if section["plan_id"] and isinstance(digest, str):
            self.asked[section["plan_id"]] = digest[:64]
            while len(self.asked) > 32:
                self.asked.pop(next(iter(self.asked)))
        self.show("confirmation", section)

    # ------------------------------------------------------------------ the store
    def show(self, name: str, payload: Any) -> None:
        """A section for the page (None: nothing new to show)."""
        if self.server is not None and payload is not None:
            self.server.store.set(name, payload)

    def clear(self, name: str) -> None:
        if self.server is not None:
            self.server.store.set(name, None)

    def on_task_status(self, text: str) -> None:
        task, event = self.views.task_status(text)
        self.show("task", task)
        if self.server is not None:
            self.server.event(event)

    def on_plan(self, plan: Any, plan_id: str, status: str,
                steps: Iterable[tuple[str, Mapping[str, str]]], **texts: str) -> None:
        """A planner answer: kept to be run, and shown (``texts``: question, reason,
        explanation, instruction, role)."""
        steps = list(steps)
        self.views.keep_plan(plan_id, (plan, steps))
        if self.server is not None:
            self.server.post_plan(plan_dict(plan_id, status, steps, **texts))

    # ------------------------------------------------------------------ Bridge
    def estop(self, user: str) -> tuple[bool, str]:
        self.teleop_stop()
        try:
            ok, msg = self.port.trigger("estop")
        except Unavailable as e:
            ok, msg = False, str(e)
        if not ok:
            # fallback: the e-stop input as a pressed-then-released button (latched by the
            # supervisor; released so that a reset is not refused for a held input)
            self.port.pulse_estop()
            msg = f"{msg}; sent on safety/estop instead"
        self.audit("estop", user=user, result=msg)
        return True, msg

    def reset(self, user: str) -> tuple[bool, str]:
        try:
            ok, msg = self.port.safety_request("reset", "", self._sign("reset", "reset", user))
        except Unavailable as e:
            ok, msg = False, str(e)
        self.audit("reset", user=user, ok=ok, message=msg)
        return ok, msg

    def set_mode(self, mode: str, user: str) -> tuple[bool, str]:
        try:
            ok, reason = self.port.safety_request("mode", mode, self._sign("mode", mode, user))
        except Unavailable as e:
            return False, str(e)
        if ok:
            self.views.mode_requested = mode
        self.audit("mode", user=user, mode=mode, ok=ok)
        return ok, f"mode {mode}" if ok else f"mode {mode} refused: {reason}"

    def teleop(self, v: float, w: float) -> None:
        now = self.port.now_ns()
        if now <= self.last_cmd_ns:          # the supervisor drops duplicate stamps
            return
        self.last_cmd_ns = now
        self.port.publish_twist(float(v), float(w), True, now)

    def teleop_stop(self) -> None:
        now = self.port.now_ns()
        stamp = None
        if now > self.last_cmd_ns:
            self.last_cmd_ns = stamp = now
        self.port.publish_twist(0.0, 0.0, False, stamp)

    def instruct(self, request_id: str, text: str, role: str, in_reply_to: str,
                 user: str | None = None) -> None:
        """*user*: the logged-in user (None: the one the server's plan book recorded for
        *request_id*); the assertion names *role*, the session's."""
        if user is None:
            book = getattr(self.server, "plans", None)
            req = book.requests.get(request_id) if book is not None else None
            user = req["user"] if req else ""
        token = self._sign("command", request_id, user, role,
                           command_digest(text, in_reply_to))
        self.port.publish_task_command(False, request_id, text, role, in_reply_to, token)

    def run_plan(self, plan_id: str, confirmed: bool, user: str) -> tuple[bool, str]:
        kept = self.views.plan(plan_id)
        if kept is None:
            return False, f"plan {plan_id} not received from the planner"
        plan, steps = kept
        token = self._sign("confirm", plan_id, user, digest=plan_digest(steps)) \
            if confirmed else ""
        try:
            handle = self.port.send_plan(plan, bool(confirmed), token)
        except Unavailable as e:
            return False, str(e)
        self.goal = handle
        self.show("task", self.views.task_started(plan_id, user, steps))
        self.port.watch_plan(handle)
        self.audit("run", user=user, plan_id=plan_id, confirmed=confirmed)
        return True, f"plan {plan_id} started"

    def cancel(self, user: str) -> tuple[bool, str]:
        h = self.goal
        if h is None:
            return False, "no plan running from this console"
        self.port.cancel_plan(h)
        self.audit("cancel", user=user)
        return True, "cancel requested"

    def survey(self, action: str, user: str) -> tuple[bool, str]:
        """The survey recorder's ``survey/start`` or ``survey/stop``: its answer (the bag
        folder, or a summary), or why it did not answer."""
        if action not in ("start", "stop"):
            return False, f"unknown survey action {action!r} (start, stop)"
        try:
            ok, msg = self.port.trigger(f"survey_{action}")
        except Unavailable as e:
            return False, f"survey {action}: {e}"
        return bool(ok), msg if ok else f"survey {action} refused: {msg}"

    def confirm(self, plan_id: str, yes: bool, user: str) -> tuple[bool, str]:
        token = self._sign("confirm", plan_id, user, digest=self._plan_digest(plan_id))
        self.port.publish_task_command(True, f"confirm-{plan_id}"[:64], _YES_NO[yes],
                                       self._role(user) or "supervisor", plan_id, token)
        self.clear("confirmation")
        self.audit("confirm", user=user, plan_id=plan_id, answer=_YES_NO[yes])
        return True, f"answered {_YES_NO[yes]}"

    # ------------------------------------------------------------------ the plan's progress
    def on_feedback(self, step_index: int, step_count: int, state: str, skill: str,
                    outcome: int, message: str) -> None:
        self.show("task", self.views.task_feedback(step_index, step_count, state, skill,
                                                   outcome, message))

    def on_result(self, code: int, reason: str, steps: Iterable[dict]) -> None:
        """The plan's result (``steps`` from :func:`sitebot.console.views.result_step`)."""
        task = self.views.task_result(code, reason, steps)
        self.goal = None
        self.show("task", task)
        self.clear("confirmation")
