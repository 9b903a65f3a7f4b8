"""A small synchronous client of the web console's WebSocket (no rclpy), for scripts and
tests: log in, read and edit the site registry, start and stop a survey
(docs/console.md, "Site editor")::

    from sitebot.console.client import ConsoleClient

    with ConsoleClient("ws://127.0.0.1:8080/ws") as c:
        c.login("supervisor", "supervisor-demo-3")
        site = c.site_get()                       # {"revision", "site": {...}, ...}
        reply = c.site_edit({"op": "add", "kind": "place", "entity": "pump_bay",
                             "data": {"name": "pump bay", "pose": [3.0, -2.0, 1.57]}})
        assert reply["ok"], reply["message"]

:meth:`ConsoleClient.site_edit` sends the revision of the last :meth:`~ConsoleClient.site_get`
or accepted edit (the server refuses an edit based on an older one: ``conflict``; call
:meth:`~ConsoleClient.site_get` again).  Every command waits for its answer (a ``reply``, or
an ``error`` naming the command's ``id``, returned with ``ok: false``); state pushed
meanwhile is kept in :attr:`ConsoleClient.state`.  Commands refused for rate are sent again
after a short wait.
"""
from __future__ import annotations

import itertools
import json
import time
from typing import Any, Mapping

from websockets.sync.client import ClientConnection, connect

from sitebot.errors import SitebotError

__all__ = ["ConsoleClient", "ConsoleClientError"]


class ConsoleClientError(SitebotError):
    """The console did not answer, or refused a login."""


class ConsoleClient:
    """One WebSocket connection to a console (``url``: ``ws://host:port/ws``)."""

    def __init__(self, url: str, timeout_s: float = 10.0, retries: int = 20) -> None:
        self.url, self.timeout_s, self.retries = url, timeout_s, retries
        self._connect = connect(url, open_timeout=timeout_s, max_size=2 ** 24)
        self.ws: ClientConnection = self._connect.__enter__()
        self.token: str | None = None
        self.welcome: dict | None = None
        self.map: dict | None = None
        self.state: dict[str, Any] = {}
        self.revision: str | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> "ConsoleClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.ws is not None:
            self._connect.__exit__(None, None, None)
            self.ws = None

    # ------------------------------------------------------------------ messages
    def _keep(self, m: dict) -> None:
        if m.get("type") == "map":
            self.map = m
        elif m.get("type") == "state":
            self.state.update({k: v for k, v in m.items() if k != "type"})

    def _recv(self, deadline: float) -> dict:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return json.loads(self.ws.recv(timeout=left))

    def request(self, msg: Mapping[str, Any]) -> dict:
        """Send one command (token and id added) and return its answer: the ``reply``, or
        the ``error`` with ``ok: false``."""
        for attempt in range(self.retries + 1):
            mid = f"c{next(self._ids)}"
            out = dict(msg, id=mid)
            if self.token:
                out["token"] = self.token
            self.ws.send(json.dumps(out, allow_nan=False))
            deadline = time.monotonic() + self.timeout_s
            while True:
                try:
                    m = self._recv(deadline)
                except TimeoutError:
                    raise ConsoleClientError(f"{msg.get('type')}: no answer from {self.url} "
                                             f"within {self.timeout_s:g} s") from None
                self._keep(m)
                # a message refused before it was read has no id: its error is ours (one
                # command at a time)
                if m.get("type") in ("reply", "error") and m.get("id", mid) == mid:
                    break
            if m["type"] == "error" and m.get("message", "").startswith("rate limited") \
                    and attempt < self.retries:
                time.sleep(0.1)
                continue
            if m["type"] == "error":
                m = dict(m, ok=False)
            return m
        raise AssertionError("unreachable")

    def wait_state(self, section: str, pred: Any = None, timeout_s: float | None = None
                   ) -> Any:
        """Read pushed state until ``section`` is there (and ``pred(value)`` holds); its
        value.  Raises :class:`ConsoleClientError` after ``timeout_s`` (default the
        client's)."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while not (section in self.state and (pred is None or pred(self.state[section]))):
            try:
                self._keep(self._recv(deadline))
            except TimeoutError:
                raise ConsoleClientError(f"no state {section!r} as expected within "
                                         f"{deadline - time.monotonic():.0f} s") from None
        return self.state[section]

    # ------------------------------------------------------------------ commands
    def login(self, user: str, password: str) -> dict:
        """Log in; the ``welcome`` (user, role, permissions).  Raises on a refusal."""
        mid = f"c{next(self._ids)}"
        self.ws.send(json.dumps({"type": "login", "user": user, "password": password,
                                 "id": mid}))
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                m = self._recv(deadline)
            except TimeoutError:
                raise ConsoleClientError(f"login: no answer from {self.url}") from None
            if m.get("type") == "welcome":
                self.token, self.welcome = m["token"], m
                return m
            if m.get("type") == "error" and m.get("id") == mid:
                raise ConsoleClientError(f"login as {user!r} refused: {m.get('message')}")
            self._keep(m)

    def site_get(self) -> dict:
        """The site registry: ``{"revision", "site" (the document), "writable", "problem",
        "invalid", "file", "last_edit"}``; its revision is the one the next edit is based
        on.  Raises when the console has no site to edit."""
        reply = self.request({"type": "site_get"})
        if not reply.get("ok"):
            raise ConsoleClientError(f"site_get: {reply.get('message')}")
        self.revision = reply["site"]["revision"]
        return reply["site"]

    def site_edit(self, op: Mapping[str, Any], revision: str | None = None) -> dict:
        """One edit ``{"op", "kind", "entity", "data"}`` based on ``revision`` (default: the
        last one seen); the reply (``ok``, ``message``, ``revision``, ``conflict``)."""
        if revision is None and self.revision is None:
            self.site_get()
        reply = self.request({"type": "site_edit", **op,
                              "revision": revision or self.revision})
        if reply.get("ok") and reply.get("revision"):
            self.revision = reply["revision"]
        return reply

    def survey(self, action: str) -> dict:
        """``start`` or ``stop`` the survey recording; the reply."""
        return self.request({"type": "survey", "action": action})
