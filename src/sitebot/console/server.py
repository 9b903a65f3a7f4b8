"""The console's server: the page over plain HTTP and the WebSocket on one port (asyncio,
``websockets``; no rclpy).

It talks to the robot only through a :class:`Bridge` (the ROS side implements it in
:mod:`sitebot.nodes.web_console`; tests use a recording double).  The bridge writes what
the robot sees into :attr:`ConsoleServer.store` and answers commands; its blocking calls
(services) run in worker threads, so the event loop never waits on ROS.

Per connection: a session (user, role, token), a token bucket for incoming commands (the
emergency stop and the teleop release are never refused for rate), a throttled sender of
changed state sections, and its share of the teleop arbiter
(:class:`sitebot.teleop.core.TeleopArbiter`, the teleop core's hold-to-run rules and clamping):
release, silence longer than the deadman timeout, and a closed connection all send a stop.

Hardening (docs/console.md, "Access"): every request's ``Host`` must be an allowed name (DNS
rebinding: HTTP 421) and a WebSocket's ``Origin`` must match it; only GET and HEAD are
answered (405 with ``Allow``); logins pass :class:`~sitebot.console.auth.LoginLimiter` before
the password is checked; an exception in any handler is answered to the client and logged at
most once per second per kind; client text in log lines and audit entries goes through
:func:`~sitebot.console.protocol.printable`. With ``tls_cert_file``/``tls_key_file`` the
server speaks HTTPS/WSS itself.  ``site_get``/``site_edit`` (the bundle's registry) are
:class:`~sitebot.console.site_editor.SiteCommands`'.
"""
from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import math
import mimetypes
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sitebot.config.params import dataclass_from_params
from sitebot.console.auth import PERMISSIONS, LoginLimiter, UserStore, load_users, permitted
from sitebot.console.config import allowed_hosts, tls_context
from sitebot.console.protocol import (ProtocolError, decode_text, host_name, parse_message,
                                      printable, safe_line)
from sitebot.console.ratelimit import Throttle, TokenBucket
from sitebot.console.site_editor import SiteCommands, SiteEditor, open_editor
from sitebot.console.state import PlanBook, StateStore, map_payload
from sitebot.paths import data_path
from sitebot.teleop.core import DEADMAN_TIMEOUT_S, TeleopArbiter

__all__ = ["Bridge", "ServerConfig", "ConsoleServer", "STATIC_DIR"]

STATIC_DIR = Path(__file__).parent / "static"
_STATIC_FILES = ("index.html", "console.js", "console.css")
#: commands checked under another command's permission
_ACTIONS = {"logout": "watch", "teleop_stop": "teleop", "answer": "instruct",
            "site_get": "watch", "site_edit": "edit_site"}
_log = logging.getLogger("sitebot.console")


class Bridge:
    """What the server needs from the robot.  Blocking methods return (ok, message)."""

    def estop(self, user: str) -> tuple[bool, str]:
        raise NotImplementedError

    def reset(self, user: str) -> tuple[bool, str]:
        raise NotImplementedError

    def set_mode(self, mode: str, user: str) -> tuple[bool, str]:
        raise NotImplementedError

    def teleop(self, v: float, w: float) -> None:
        """One held-pad command: the twist with the deadman pressed (must not block)."""
        raise NotImplementedError

    def teleop_stop(self) -> None:
        """Zero twist and deadman released (must not block)."""
        raise NotImplementedError

    def instruct(self, request_id: str, text: str, role: str, in_reply_to: str) -> None:
        raise NotImplementedError

    def run_plan(self, plan_id: str, confirmed: bool, user: str) -> tuple[bool, str]:
        raise NotImplementedError

    def cancel(self, user: str) -> tuple[bool, str]:
        raise NotImplementedError

    def confirm(self, plan_id: str, yes: bool, user: str) -> tuple[bool, str]:
        raise NotImplementedError

    def survey(self, action: str, user: str) -> tuple[bool, str]:
        """Start or stop the survey recording (``action``: start, stop)."""
        raise NotImplementedError


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    state_rate_hz: float = 10.0
    camera_rate_hz: float = 2.0
    slow_period_s: float = 1.0            # audit tail, gauges, events
    max_linear_mps: float = 0.5
    max_angular_radps: float = 1.0
    deadman_timeout_s: float = DEADMAN_TIMEOUT_S
    teleop_tick_hz: float = 20.0
    command_rate_hz: float = 25.0
    command_burst: float = 40.0
    max_message_bytes: int = 4096
    login_max_failures: int = 5
    login_window_s: float = 60.0
    login_delay_s: float = 1.0
    login_max_delay_s: float = 30.0
    check_origin: bool = True
    allowed_hosts: tuple[str, ...] = ()
    tls_cert_file: str = ""
    tls_key_file: str = ""
    slow_sections: tuple[str, ...] = ("audit", "gauges", "events")

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> "ServerConfig":
        """The fields named in ``p`` (the node's parameters); the others keep their
        defaults."""
        return dataclass_from_params(cls, p)


@dataclass
class Session:
    cid: str
    remote: str
    bucket: TokenBucket
    throttle: Throttle
    user: str | None = None
    role: str | None = None
    token: str | None = None
    seen: dict = field(default_factory=dict)


class ConsoleServer:
    """``await run(stop_event)`` serves until the event is set (or :meth:`stop`)."""

    @classmethod
    def from_params(cls, bridge: Bridge, p: dict[str, Any], site: Any,
                    **kwargs: Any) -> "ConsoleServer":
        """The server as the node's parameters describe it: the users of ``users_file`` ('' =
        the package's demo users), its :class:`ServerConfig`, the map of the site bundle ``site``
        and the editor of the bundle folder its ``site`` parameter names."""
        users = load_users(p["users_file"] or str(data_path("config") / "console_users.yaml"))
        kwargs.setdefault("site_editor", open_editor(p.get("site", "")))
        return cls(bridge, users, ServerConfig.from_params(p), map_data=map_payload(site),
                   **kwargs)

    def __init__(self, bridge: Bridge, users: UserStore, config: ServerConfig | None = None,
                 *, map_data: dict | None = None, clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str, str], None] | None = None,
                 audit: Callable[..., None] | None = None,
                 site_editor: SiteEditor | None = None) -> None:
        self.bridge = bridge
        self.users = users
        self.config = config or ServerConfig()
        self.map_data = map_data or {}
        self.clock = clock
        self._log = log or (lambda level, text: _log.log(getattr(logging, level.upper(),
                                                                 logging.INFO), text))
        self._audit = audit
        self.store = StateStore()
        self.plans = PlanBook()
        self.site = SiteCommands(self, site_editor)
        self.teleop = TeleopArbiter(self.config.deadman_timeout_s, self.config.max_linear_mps,
                                    self.config.max_angular_radps)
        c = self.config
        self.limiter = LoginLimiter(c.login_max_failures, c.login_window_s, c.login_delay_s,
                                    c.login_max_delay_s)
        self.hosts = allowed_hosts(c.host, c.allowed_hosts)
        self.ssl = tls_context(c.tls_cert_file, c.tls_key_file)
        self.sessions: dict[str, Session] = {}
        self.port: int | None = None
        self.ready = threading.Event()
        self.counts = {"connections": 0, "logins": 0, "login_failures": 0,
                       "login_throttled": 0, "protocol_errors": 0, "rate_limited": 0,
                       "forbidden": 0, "internal_errors": 0, "http_refused": 0,
                       "teleop_stops": 0}
        self._log_marks: dict[str, list] = {}     # key -> [last logged, suppressed since]
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._plans_lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
    def log(self, level: str, text: str) -> None:
        """One log line; any non-printable character in it is escaped (:func:`printable`)."""
        try:
            self._log(level, safe_line(text))
        except Exception:  # noqa: BLE001 - logging never takes the server down
            pass

    def log_limited(self, key: str, level: str, text: str) -> None:
        """:meth:`log`, at most once per second per ``key`` (the next line counts the
        suppressed ones)."""
        now = self.clock()
        mark = self._log_marks.get(key)
        if mark is not None and 0.0 <= now - mark[0] < 1.0:
            mark[1] += 1
            return
        extra = f" (+{mark[1]} more in {now - mark[0]:.1f} s)" if mark and mark[1] else ""
        if len(self._log_marks) > 1000:
            self._log_marks.clear()
        self._log_marks[key] = [now, 0]
        self.log(level, text + extra)

    def audit(self, event: str, **fields: Any) -> None:
        """An audit entry; text fields are escaped and bounded (:func:`printable`)."""
        fields = {k: printable(v, 500) if isinstance(v, str) else v for k, v in fields.items()}
        if self._audit is not None:
            try:
                self._audit(event, **fields)
            except Exception:  # noqa: BLE001
                pass
        self.event(f"{event}: " + ", ".join(f"{k}={v}" for k, v in fields.items()))

    def event(self, text: str) -> None:
        """A line for the page's events section (the last 40 are kept)."""
        events = list(self.store.get("events", []))
        events.append({"t": round(time.time(), 3), "text": text[:300]})
        self.store.set("events", events[-40:])

    def stop(self) -> None:
        """Thread-safe: stop serving."""
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:            # the loop already ended
                pass

    def summary(self) -> tuple[bool, str, dict[str, int]]:
        """For diagnostics: (serving, one line, counters)."""
        if self.port is None:
            return False, "server not started", {}
        return True, (f"{self.url}, {len(self.sessions)} "
                      f"connection(s), teleop {'held' if self.teleop.active else 'idle'}"), \
            dict(self.counts)

    @property
    def url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.ssl else 'http'}://{host}:{self.port}/"

    def serve_until_signalled(self) -> None:
        """Serve in this thread (its own event loop) until SIGINT/SIGTERM or :meth:`stop`."""
        async def serve() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
            await self.run(stop)
        asyncio.run(serve())

    def post_plan(self, plan: dict) -> None:
        """Thread-safe (the bridge's thread): a planner answer arrived."""
        with self._plans_lock:
            self.plans.answer(plan)
            self.store.set("plans", self.plans.recent())

    # ------------------------------------------------------------------ HTTP
    def _refuse(self, connection: ServerConnection, status: HTTPStatus, text: str,
                log: str, **headers: str) -> Response:
        self.counts["http_refused"] += 1
        self.log_limited(f"http {status.value}", "warning", log)
        resp = connection.respond(status, text + "\n")
        for k, v in headers.items():
            resp.headers[k] = v
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Every HTTP request and WebSocket handshake: Host, method, Origin, path."""
        try:
            return self._route(connection, request)
        except Exception as e:  # noqa: BLE001 - a bad request never reaches the library's log
            self.counts["internal_errors"] += 1
            self.log_limited("http error", "error", f"HTTP request failed: {type(e).__name__}: "
                                                   f"{printable(e)}")
            return connection.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n")

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        peer = connection.remote_address[0] if connection.remote_address else "?"
        hosts = request.headers.get_all("Host")
        name = host_name(hosts[0]) if len(hosts) == 1 else None
        if name not in self.hosts:
            return self._refuse(connection, HTTPStatus.MISDIRECTED_REQUEST,
                                "host not served here",
                                f"request from {peer} for host {printable(hosts, 120)} refused "
                                f"(allowed: {', '.join(sorted(self.hosts))})")
        allow = "GET" if path == "/ws" else "GET, HEAD"
        if request.method not in allow.split(", "):
            return self._refuse(connection, HTTPStatus.METHOD_NOT_ALLOWED,
                                "method not allowed",
                                f"{printable(request.method, 20)} {printable(path, 80)} from "
                                f"{peer} refused (allowed: {allow})", Allow=allow)
        if path == "/ws":
            origin = request.headers.get("Origin")
            if self.config.check_origin and origin is not None:
                if origin.split("://", 1)[-1].lower() != hosts[0].strip().lower():
                    return self._refuse(connection, HTTPStatus.FORBIDDEN, "origin not allowed",
                                        f"websocket from origin {printable(origin, 120)} "
                                        f"refused (host {printable(hosts[0], 120)})")
            if "upgrade" not in request.headers.get("Connection", "").lower():
                return connection.respond(HTTPStatus.UPGRADE_REQUIRED,
                                          "WebSocket endpoint\n")
            return None
        name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        if name not in _STATIC_FILES:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        try:
            body = (STATIC_DIR / name).read_bytes()
        except OSError:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        headers = Headers([
            ("Content-Type", ctype), ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                        "connect-src 'self' ws: wss:; frame-ancestors 'none'"),
        ])
        return Response(200, "OK", headers, b"" if request.method == "HEAD" else body)

    # ------------------------------------------------------------------ serving
    async def run(self, stop: asyncio.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = stop or asyncio.Event()
        c = self.config
        async with serve(self.handler, c.host, c.port, process_request=self.process_request,
                         max_size=2 ** 20, max_queue=32, ping_interval=5, ping_timeout=10,
                         close_timeout=2, ssl=self.ssl,
                         compression=None) as server:
            socks = server.sockets
            self.port = socks[0].getsockname()[1] if socks else c.port
            tick = asyncio.create_task(self._teleop_loop())
            self.ready.set()
            self.log("info", f"web console on {self.url}")
            try:
                await self._stop.wait()
            finally:
                tick.cancel()
                if self.teleop.active:
                    self.teleop.release(self.teleop.holder, "server stopping")
                    self._send_stop("server stopping")

    def _send_stop(self, reason: str) -> None:
        self.counts["teleop_stops"] += 1
        try:
            self.bridge.teleop_stop()
        except Exception as e:  # noqa: BLE001
            self.log_limited("teleop stop", "error", f"teleop stop failed: "
                                                     f"{type(e).__name__}: {printable(e)}")
        self.audit("teleop_stop", reason=reason)

    async def _teleop_loop(self) -> None:
        period = 1.0 / self.config.teleop_tick_hz
        while True:
            act = self.teleop.tick(self.clock())
            if act is not None:
                if act.deadman:
                    self._guarded(self.bridge.teleop, act.v_mps, act.w_radps)
                else:
                    self.log("warning", f"teleop stopped: {act.reason}")
                    self._send_stop(act.reason)
            await asyncio.sleep(period)

    def _guarded(self, fn, *args) -> None:
        """``fn(*args)``; an exception is logged (once a second per function), not raised."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001
            name = getattr(fn, "__name__", "call")
            self.log_limited(f"bridge {name}", "error", f"bridge {name} failed: "
                                                        f"{type(e).__name__}: {printable(e)}")

    async def handler(self, ws: ServerConnection) -> None:
        c = self.config
        remote = str(ws.remote_address[0]) if ws.remote_address else "?"
        cid = f"c{next(self._ids)}"
        s = Session(cid, remote, TokenBucket(c.command_rate_hz, c.command_burst),
                    Throttle({"camera": 1.0 / c.camera_rate_hz,
                              **{k: c.slow_period_s for k in c.slow_sections}},
                             1.0 / c.state_rate_hz))
        self.sessions[cid] = s
        self.counts["connections"] += 1
        sender = asyncio.create_task(self._sender(ws, s))
        try:
            while True:
                raw = await ws.recv(decode=False)     # text decoded here: bad UTF-8 answered
                try:
                    await self._on_message(ws, s, raw)
                except ConnectionClosed:
                    raise
                except Exception as e:  # noqa: BLE001 - never ends the connection's loop
                    await self._internal_error(ws, s, "message", e)
        except ConnectionClosed as e:
            if any(f is not None and f.code == 1009 for f in (e.rcvd, e.sent)):
                self.log_limited("too big", "warning",
                                 f"{cid} ({remote}): closed: message over the size limit")
        except Exception as e:  # noqa: BLE001 - the library's log gets no traceback either
            self.counts["internal_errors"] += 1
            self.log_limited("connection", "error", f"{cid} ({remote}): connection ended: "
                                                    f"{type(e).__name__}: {printable(e)}")
        finally:
            sender.cancel()
            self.sessions.pop(cid, None)
            act = self.teleop.release(cid, "connection closed")
            if act is not None:
                self.log("warning", f"{cid} ({s.user}): connection closed while driving: stop")
                self._send_stop("connection closed")
            if s.user:
                self.audit("disconnect", user=s.user, client=cid)

    async def _sender(self, ws: ServerConnection, s: Session) -> None:
        period = 1.0 / self.config.state_rate_hz
        try:
            while True:
                await asyncio.sleep(period)
                if s.token is None:
                    continue
                changed = self.store.changed(s.seen, s.throttle, self.clock())
                if changed:
                    await ws.send(json.dumps({"type": "state", **changed},
                                             separators=(",", ":"), allow_nan=False))
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        except Exception as e:  # noqa: BLE001 - a bad section must not kill the sender
            self.log("error", f"{s.cid}: state not sent: {type(e).__name__}: {e}")

    async def _send(self, ws: ServerConnection, obj: dict) -> None:
        try:
            await ws.send(json.dumps(obj, separators=(",", ":"), allow_nan=False))
        except ConnectionClosed:
            pass

    async def _error(self, ws, s: Session, text: str, mid: Any = None,
                     counter: str = "protocol_errors") -> None:
        """An ``error`` to the client; logged at most once per second per ``counter``."""
        self.counts[counter] = self.counts.get(counter, 0) + 1
        self.log_limited(counter, "warning", f"{s.cid} ({s.remote}, "
                                             f"{s.user or 'not logged in'}): {text}")
        out = {"type": "error", "message": text}
        if mid is not None:
            out["id"] = mid
        await self._send(ws, out)

    async def _internal_error(self, ws, s: Session, kind: str, e: Exception) -> None:
        text = f"{kind}: internal error ({type(e).__name__}); the server goes on"
        self.log_limited("internal " + kind, "error", f"{s.cid} ({s.remote}): {kind} failed: "
                                                      f"{type(e).__name__}: {printable(e)}")
        await self._error(ws, s, text, None, "internal_errors")

    async def _reply(self, ws, cmd: dict, ok: bool, message: str, **extra: Any) -> None:
        out = {"type": "reply", "cmd": cmd["type"], "ok": bool(ok), "message": message, **extra}
        if "id" in cmd:
            out["id"] = cmd["id"]
        await self._send(ws, out)

    # ------------------------------------------------------------------ commands
    async def _on_message(self, ws, s: Session, raw: Any) -> None:
        try:
            if isinstance(raw, (bytes, bytearray, memoryview)):
                raw = decode_text(raw, self.config.max_message_bytes)
            cmd = parse_message(raw, self.config.max_message_bytes)
        except ProtocolError as e:
            await self._error(ws, s, f"rejected: {e}")
            return
        kind = cmd["type"]
        now = self.clock()
        if kind not in ("estop", "teleop_stop") and not s.bucket.take(now):
            await self._error(ws, s, f"rate limited: {kind} refused (at most "
                                     f"{self.config.command_rate_hz:g} commands/s)",
                              cmd.get("id"), "rate_limited")
            return
        if kind == "ping":
            await self._reply(ws, cmd, True, "pong")
            return
        if kind == "login":
            await self._login(ws, s, cmd)
            return
        token = cmd.get("token", "").encode("utf-8", "surrogatepass")
        if s.token is None or not hmac.compare_digest(token, s.token.encode("ascii")):
            await self._error(ws, s, f"{kind}: not authenticated (log in first)", cmd.get("id"),
                              "forbidden")
            return
        action = _ACTIONS.get(kind, kind)
        if not permitted(s.role, action):
            allowed = sorted(PERMISSIONS.get(action, ()))
            await self._error(ws, s, f"{kind}: not permitted for role {s.role} "
                                     f"(needs {', '.join(allowed)})", cmd.get("id"), "forbidden")
            return
        try:
            await getattr(self, f"_cmd_{kind}")(ws, s, cmd)
        except ConnectionClosed:
            raise
        except Exception as e:  # noqa: BLE001 - one failed command never stops the server
            self.counts["internal_errors"] += 1
            self.log_limited("command " + kind, "error", f"{s.cid}: {kind} failed: "
                                                         f"{type(e).__name__}: {printable(e)}")
            await self._reply(ws, cmd, False, f"{kind} failed: {printable(e)}")

    async def _login(self, ws, s: Session, cmd: dict) -> None:
        """Counted by the limiter before the password is checked (one step: concurrent
        attempts see each other); a refused attempt is answered at once, never queued."""
        name = cmd["user"]
        ticket, wait = self.limiter.begin(s.remote, name, self.clock())
        if ticket is None:
            self._note_throttled(s, name, wait)
            await self._error(ws, s, f"too many failed logins: wait "
                                     f"{math.ceil(wait * 1000) / 1000:g} s before the next "
                                     "attempt", cmd.get("id"), "login_throttled")
            return
        try:
            user = await asyncio.to_thread(self.users.authenticate, name, cmd["password"])
        except Exception as e:  # noqa: BLE001 - counted as a failure, answered below
            self.log_limited("authenticate", "error", f"login check failed: "
                                                      f"{type(e).__name__}: {printable(e)}")
            user = None
        if user is None:
            self.audit("login_failed", user=name[:64], remote=s.remote)
            await self._error(ws, s, "invalid user name or password", cmd.get("id"),
                              "login_failures")
            return
        self.limiter.succeeded(ticket)
        act = self.teleop.release(s.cid, "new login")
        if act is not None:
            self._send_stop("new login")
        s.user, s.role, s.token = user.name, user.role, secrets.token_urlsafe(24)
        s.seen = {}
        self.counts["logins"] += 1
        self.audit("login", user=user.name, role=user.role, remote=s.remote, client=s.cid)
        c = self.config
        await self._send(ws, {"type": "welcome", "token": s.token, "user": user.name,
                              "role": user.role,
                              "permissions": sorted(a for a in PERMISSIONS
                                                    if permitted(user.role, a)),
                              "limits": {"max_linear_mps": c.max_linear_mps,
                                         "max_angular_radps": c.max_angular_radps,
                                         "teleop_period_s": 0.1,
                                         "deadman_timeout_s": c.deadman_timeout_s}})
        await self._send(ws, {"type": "map", **self.map_data})

    def _note_throttled(self, s: Session, name: str, wait: float) -> None:
        """Refused attempts in the audit: at most one entry per second, with the count."""
        now = self.clock()
        mark = self._log_marks.setdefault("audit login_throttled", [-math.inf, 0])
        mark[1] += 1
        if not 0.0 <= now - mark[0] < 1.0:
            self.audit("login_throttled", user=name[:64], remote=s.remote,
                       attempts=mark[1], wait_s=round(wait, 1))
            mark[0], mark[1] = now, 0

    async def _cmd_logout(self, ws, s: Session, cmd: dict) -> None:
        if self.teleop.release(s.cid, "logout") is not None:
            self._send_stop("logout")
        self.audit("logout", user=s.user)
        s.user = s.role = s.token = None
        await self._reply(ws, cmd, True, "logged out")

    async def _cmd_estop(self, ws, s: Session, cmd: dict) -> None:
        if self.teleop.active:
            self.teleop.release(self.teleop.holder, "emergency stop")
            self._send_stop("emergency stop")
        self.audit("estop", user=s.user, role=s.role)
        ok, msg = await asyncio.to_thread(self.bridge.estop, s.user)
        await self._reply(ws, cmd, ok, msg)

    async def _cmd_reset(self, ws, s: Session, cmd: dict) -> None:
        ok, msg = await asyncio.to_thread(self.bridge.reset, s.user)
        self.audit("reset", user=s.user, ok=ok, message=msg)
        await self._reply(ws, cmd, ok, msg if ok else f"reset refused: {msg}")

    async def _cmd_mode(self, ws, s: Session, cmd: dict) -> None:
        if cmd["mode"] == "automatic" and self.teleop.active:
            self.teleop.release(self.teleop.holder, "mode change")
            self._send_stop("mode change")
        ok, msg = await asyncio.to_thread(self.bridge.set_mode, cmd["mode"], s.user)
        self.audit("mode", user=s.user, mode=cmd["mode"], ok=ok)
        await self._reply(ws, cmd, ok, msg)

    async def _cmd_teleop(self, ws, s: Session, cmd: dict) -> None:
        first = self.teleop.holder != s.cid
        ok, reason = self.teleop.command(s.cid, cmd["v"], cmd["w"], self.clock())
        if not ok:
            await self._error(ws, s, f"teleop refused: {reason}", cmd.get("id"), "forbidden")
            return
        if first:
            self.audit("teleop_start", user=s.user)
            safety = self.store.get("safety") or {}
            if safety.get("mode_requested", safety.get("mode")) != "manual":
                asyncio.get_running_loop().run_in_executor(
                    None, self._guarded, self.bridge.set_mode, "manual", s.user or "")
            self._guarded(self.bridge.teleop, self.teleop.v, self.teleop.w)

    async def _cmd_teleop_stop(self, ws, s: Session, cmd: dict) -> None:
        if self.teleop.release(s.cid, "released") is not None:
            self._send_stop("pad released")

    async def _cmd_instruct(self, ws, s: Session, cmd: dict, in_reply_to: str = "") -> None:
        text = cmd["text"].strip()
        if not text:
            await self._reply(ws, cmd, False, "empty instruction")
            return
        rid = f"console-{secrets.token_hex(4)}-{next(self._ids)}"
        with self._plans_lock:
            self.plans.request(rid, s.user or "", s.role or "", text, self.clock(), in_reply_to)
        self.audit("instruct", user=s.user, role=s.role, request_id=rid, text=text,
                   in_reply_to=in_reply_to)
        await asyncio.to_thread(self.bridge.instruct, rid, text, s.role or "operator",
                                in_reply_to)
        await self._reply(ws, cmd, True, "sent to the planner", request_id=rid)

    async def _cmd_answer(self, ws, s: Session, cmd: dict) -> None:
        plan = self.plans.get(cmd["in_reply_to"])
        if plan is None or plan.get("status") != "clarify":
            await self._reply(ws, cmd, False, f"no open question {cmd['in_reply_to']!r}")
            return
        await self._cmd_instruct(ws, s, cmd, in_reply_to=cmd["in_reply_to"])

    async def _cmd_run(self, ws, s: Session, cmd: dict) -> None:
        plan = self.plans.get(cmd["plan_id"])
        if plan is None:
            await self._reply(ws, cmd, False, f"unknown plan {cmd['plan_id']!r}")
            return
        if plan.get("status") != "ok":
            await self._reply(ws, cmd, False, f"plan {cmd['plan_id']} is a "
                                              f"{plan.get('status')}, not a runnable plan")
            return
        confirmed = False
        if plan.get("high_risk"):
            if not permitted(s.role, "high_risk"):
                await self._error(ws, s, "run: the plan has high-risk steps (operate_valve): "
                                         "a supervisor must authorise it", cmd.get("id"),
                                  "forbidden")
                return
            if not cmd.get("confirm_high_risk"):
                await self._reply(ws, cmd, False, "the plan has high-risk steps: confirm them "
                                                  "first")
                return
            confirmed = True
        if self.teleop.active:
            self.teleop.release(self.teleop.holder, "plan started")
            self._send_stop("plan started")
        safety = self.store.get("safety") or {}
        if safety.get("mode_requested", safety.get("mode")) == "manual":
            await asyncio.to_thread(self.bridge.set_mode, "automatic", s.user or "")
        ok, msg = await asyncio.to_thread(self.bridge.run_plan, cmd["plan_id"], confirmed,
                                          s.user or "")
        self.audit("run", user=s.user, plan_id=cmd["plan_id"], confirmed=confirmed, ok=ok,
                   message=msg)
        await self._reply(ws, cmd, ok, msg)

    async def _cmd_cancel(self, ws, s: Session, cmd: dict) -> None:
        ok, msg = await asyncio.to_thread(self.bridge.cancel, s.user or "")
        self.audit("cancel", user=s.user, ok=ok)
        await self._reply(ws, cmd, ok, msg)

    async def _cmd_site_get(self, ws, s: Session, cmd: dict) -> None:
        ok, msg, extra = await self.site.get(s, cmd)
        await self._reply(ws, cmd, ok, msg, **extra)

    async def _cmd_site_edit(self, ws, s: Session, cmd: dict) -> None:
        ok, msg, extra = await self.site.edit(s, cmd)
        await self._reply(ws, cmd, ok, msg, **extra)

    async def _cmd_survey(self, ws, s: Session, cmd: dict) -> None:
        ok, msg = await asyncio.to_thread(self.bridge.survey, cmd["action"], s.user or "")
        self.audit("survey", user=s.user, action=cmd["action"], ok=ok, message=msg)
        await self._reply(ws, cmd, ok, msg)

    async def _cmd_confirm(self, ws, s: Session, cmd: dict) -> None:
        ok, msg = await asyncio.to_thread(self.bridge.confirm, cmd["plan_id"],
                                          cmd["answer"] == "yes", s.user or "")
        self.audit("confirm", user=s.user, plan_id=cmd["plan_id"], answer=cmd["answer"])
        await self._reply(ws, cmd, ok, msg)
