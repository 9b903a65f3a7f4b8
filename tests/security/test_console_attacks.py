"""The console attacks of issue 19 (item 3), each run against a real ConsoleServer on
localhost (asyncio + websockets in a thread, as tests/console/ start it; a test double of the
ROS bridge), judged on counts and conditions:

* parallel login guesses from 20 loopback addresses: 5 of 20 reach the password check, the
  rest are refused with a wait; the waits the server enforces are at least 1, 2, 4, 8 s;
* the right password from a clean address logs in at its first attempt while a guesser is
  refused on the same account (the old limiter refused it for ~58 s);
* DNS rebinding: 0 handshakes accepted out of the hostile Host headers tried;
* a corpus of malformed frames (huge integers, NaN, wrong types, deep nesting, invalid
  UTF-8, oversized frames): each answered with an error, 0 tracebacks, the connection lives;
* a bridge that raises in every call: every command answered, the connection lives;
* POST/PUT/DELETE/PATCH/OPTIONS: 405 with ``Allow``; unknown paths 404;
* user names with a newline, NUL, lone surrogate, bidi override, escape sequence: one
  escaped line and one audit entry each;
* TLS served directly with a throwaway self-signed certificate.
"""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import math
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from sitebot.console.auth import ROLES, User, UserStore, hash_password
from sitebot.console.bridge import ConsoleAudit
from sitebot.console.protocol import printable
from sitebot.console.server import Bridge, ConsoleServer, ServerConfig
from sitebot.console.state import plan_dict

FAST = 100_000            # PBKDF2 iterations for test users (the minimum accepted)
WAIT_S = 10.0             # the longest any single answer is waited for


class CountingUsers(UserStore):
    """The users, counting the password checks (what a guesser wants)."""

    def __init__(self, users) -> None:
        super().__init__(users)
        self.lock = threading.Lock()
        self.checked: list[str] = []

    def authenticate(self, name, password):
        with self.lock:
            self.checked.append(name)
        return super().authenticate(name, password)

    def count(self, name: str | None = None) -> int:
        with self.lock:
            return sum(1 for n in self.checked if name is None or n == name)


class QuietBridge(Bridge):
    """Test double of the ROS bridge: every command succeeds, nothing is sent."""

    def estop(self, user): return True, "emergency stop latched"
    def reset(self, user): return True, "reset"
    def set_mode(self, mode, user): return True, f"mode {mode}"
    def teleop(self, v, w): pass
    def teleop_stop(self): pass
    def instruct(self, request_id, text, role, in_reply_to): pass
    def run_plan(self, plan_id, confirmed, user): return True, "started"
    def cancel(self, user): return True, "cancel requested"
    def confirm(self, plan_id, yes, user): return True, "ok"


class FaultyBridge(Bridge):
    """Test double of a broken ROS side: every call raises (with a newline in the text)."""

    def __getattribute__(self, name):
        if name in ("estop", "reset", "set_mode", "teleop", "teleop_stop", "instruct",
                    "run_plan", "cancel", "confirm"):
            def fail(*args):
                raise RuntimeError(f"{name}: bridge down\nforged: line")
            fail.__name__ = name
            return fail
        return super().__getattribute__(name)


class FrozenClock:
    """The server's clock, moved only by the test: counts that do not depend on load."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class LibraryLog(logging.Handler):
    """Records of the websockets and asyncio loggers: warnings, errors, tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.exc_info or
                "Traceback" in r.getMessage()]


@pytest.fixture(scope="module")
def users():
    return [User(n, n, hash_password(n + "-pw", iterations=FAST)) for n in ROLES]


@pytest.fixture()
def library_log():
    handler = LibraryLog()
    loggers = [logging.getLogger(n) for n in ("websockets", "asyncio")]
    for lg in loggers:
        lg.addHandler(handler)
    yield handler
    for lg in loggers:
        lg.removeHandler(handler)


@contextlib.contextmanager
def console(users, *, bridge: Bridge | None = None, clock=time.monotonic, audit=None,
            **config):
    """A real server on 127.0.0.1 (any free port) in its own thread; (server, log lines)."""
    lines: list[tuple[str, str]] = []
    store = CountingUsers(users)
    cfg = ServerConfig(host="127.0.0.1", port=0, **{"command_burst": 200.0, **config})
    srv = ConsoleServer(bridge or QuietBridge(), store, cfg, map_data={"site": "test"},
                        clock=clock, audit=audit,
                        log=lambda level, text: lines.append((level, text)))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    th = threading.Thread(target=lambda: loop.run_until_complete(srv.run(stop)), daemon=True)
    th.start()
    assert srv.ready.wait(WAIT_S), "console server did not start"
    try:
        yield srv, lines
    finally:
        loop.call_soon_threadsafe(stop.set)
        th.join(WAIT_S)
        assert not th.is_alive(), "console server did not stop"


def ws(srv, source: str = "127.0.0.1", **kwargs):
    return connect(f"ws://127.0.0.1:{srv.port}/ws", source_address=(source, 0),
                   open_timeout=WAIT_S, **kwargs)


def answer(conn, timeout: float = WAIT_S) -> dict:
    """The next message that is not a state push."""
    end = time.monotonic() + timeout
    while True:
        m = json.loads(conn.recv(timeout=max(0.01, end - time.monotonic())))
        if m.get("type") not in ("state", "map"):
            return m


def login(conn, user: str, password: str) -> dict:
    conn.send(json.dumps({"type": "login", "user": user, "password": password}))
    return answer(conn)


def wait_of(message: str) -> float:
    """The wait a refusal names ("too many failed logins: wait 1.0 s ...")."""
    assert message.startswith("too many failed logins: wait "), message
    return float(message.split("wait ")[1].split(" s")[0])


def no_tracebacks(lines, library_log) -> None:
    assert not [t for _, t in lines if "Traceback" in t], lines
    assert library_log.tracebacks() == []


# ----------------------------------------------------------------------------- logins
def test_parallel_guesses_are_counted_before_the_password_check(users, library_log):
    clock = FrozenClock()
    with console(users, clock=clock, login_max_failures=5, login_delay_s=1.0,
                 login_max_delay_s=30.0) as (srv, lines):

        def parallel(sources, names):
            barrier = threading.Barrier(len(sources))

            def one(k):
                with ws(srv, sources[k]) as c:
                    barrier.wait(timeout=60)
                    return login(c, names[k], f"guess-{k}")["message"]
            with ThreadPoolExecutor(len(sources)) as ex:
                return list(ex.map(one, range(len(sources))))

        # 20 guesses at one account from 20 addresses, sent at once: 5 are checked
        got = parallel([f"127.0.0.{10 + k}" for k in range(20)], ["operator"] * 20)
        assert srv.users.count("operator") == 5
        assert got.count("invalid user name or password") == 5
        refused = [m for m in got if m != "invalid user name or password"]
        assert len(refused) == 15 and all(wait_of(m) == 1.0 for m in refused)
        # 20 guesses from one address at 20 accounts, sent at once: 5 are checked
        got = parallel(["127.0.0.99"] * 20, [f"user{k}" for k in range(20)])
        assert srv.users.count() == 10 and got.count("invalid user name or password") == 5

        # the server enforces the growing waits: refused 1 ms before each ends, checked at
        # its end (each attempt from yet another address)
        def attempt(k, password="wrong"):
            with ws(srv, f"127.0.1.{k}") as c:
                return login(c, "operator", password)
        checked = srv.users.count("operator")
        eps = 2.0 ** -10                                     # exact in binary: no drift
        for k, wait in enumerate((1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0)):
            clock.t += wait - eps
            m = attempt(2 * k + 1)
            assert m["type"] == "error" and 0.0 < wait_of(m["message"]) <= 0.002
            assert srv.users.count("operator") == checked
            clock.t += eps
            assert attempt(2 * k + 2)["message"] == "invalid user name or password"
            checked += 1
            assert srv.users.count("operator") == checked
        # never a lockout: after the capped wait the right password is accepted, even from
        # an address that guessed before
        clock.t += 30.0
        with ws(srv, "127.0.0.10") as c:
            assert login(c, "operator", "operator-pw")["type"] == "welcome"
        assert srv.counts["login_throttled"] >= 15 + 15 + 7
    no_tracebacks(lines, library_log)


def test_right_password_from_a_clean_address_while_a_guesser_is_refused(users, library_log):
    with console(users, login_max_failures=5, login_delay_s=1.0,
                 login_max_delay_s=30.0) as (srv, lines):
        stop = threading.Event()
        refused = [0]
        lock = threading.Lock()

        def guesser(k):
            with ws(srv, f"127.0.2.{k + 1}") as c:
                for n in range(300):                        # bounded: about 6 s at most
                    if stop.is_set():
                        return
                    m = login(c, "operator", f"guess-{k}-{n}")
                    if m["message"].startswith("too many failed logins"):
                        with lock:
                            refused[0] += 1
                    time.sleep(0.02)
        t_start = time.monotonic()
        threads = [threading.Thread(target=guesser, args=(k,), daemon=True) for k in range(4)]
        for th in threads:
            th.start()
        end = time.monotonic() + 30.0
        while time.monotonic() < end and not (srv.users.count("operator") >= 5 and
                                              refused[0] >= 10):
            time.sleep(0.01)
        assert srv.users.count("operator") >= 5 and refused[0] >= 10, \
            "the guessers were not refused"
        # the operator, from an address of its own, while the account is being guessed
        t0 = time.monotonic()
        with ws(srv, "127.0.3.1") as c:
            m = login(c, "operator", "operator-pw")
        took = time.monotonic() - t0
        still_refused = refused[0]
        stop.set()
        for th in threads:
            th.join(WAIT_S)
        span = time.monotonic() - t_start
        # checked at its first attempt, no wait imposed; 10 s bounds the check's cost only
        assert m["type"] == "welcome" and m["user"] == "operator"
        assert took < 10.0
        assert still_refused >= 10
        # what the guessers got checked: 5 at once, then one per doubling wait (1, 2, 4 s...)
        # in the time they had
        guesses = srv.users.count("operator") - 1
        assert guesses <= 5 + math.floor(math.log2(span + 1.0)) + 1, (guesses, span)
    no_tracebacks(lines, library_log)


# ----------------------------------------------------------------------------- hosts
def raw_status(port: int, head: str) -> int:
    """Send one raw HTTP request head; the status code answered (0: none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as s:
        s.sendall(head.encode("latin-1"))
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else 0


def handshake(port: int, hosts: list[str], origin: str | None) -> str:
    lines = ["GET /ws HTTP/1.1", *(f"Host: {h}" for h in hosts), "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return "\r\n".join(lines) + "\r\n\r\n"


def test_dns_rebinding_handshakes_are_refused(users, library_log):
    with console(users) as (srv, lines):
        p = srv.port
        hostile = [f"evil.example:{p}", "evil.example", f"EVIL.Example:{p}",
                   f"localhost.evil.example:{p}", f"127.0.0.1.nip.io:{p}", f"[::2]:{p}",
                   f"10.0.0.1:{p}", f"127.0.0.2:{p}", f"0.0.0.0:{p}", f"evil.example.:{p}",
                   f"localhost:{p}@evil.example", f"localhost:x{p}", "[::1", "",
                   f"xn--80ak6aa92e.com:{p}", f"{socket.gethostname()}.evil.example:{p}"]
        tries = [([h], f"http://{h}") for h in hostile] + \
            [([h], None) for h in hostile[:4]] + \
            [([f"127.0.0.1:{p}", f"evil.example:{p}"], f"http://127.0.0.1:{p}"),   # two Hosts
             ([], f"http://evil.example:{p}")]                                   # no Host
        statuses = [raw_status(p, handshake(p, h, o)) for h, o in tries]
        assert statuses.count(101) == 0, list(zip(tries, statuses))
        assert set(statuses) <= {421, 400}, statuses
        assert statuses.count(421) >= len(tries) - 2           # the rest: the parser's 400
        # the page neither
        assert raw_status(p, f"GET / HTTP/1.1\r\nHost: evil.example:{p}\r\n\r\n") == 421
        # the allowed names still connect, the Origin check stays
        for host in (f"127.0.0.1:{p}", f"localhost:{p}", f"[::1]:{p}",
                     f"{socket.gethostname()}:{p}"):
            assert raw_status(p, handshake(p, [host], f"http://{host}")) == 101, host
        assert raw_status(p, handshake(p, [f"127.0.0.1:{p}"], "http://evil.example")) == 403
        assert srv.counts["connections"] == 4
    no_tracebacks(lines, library_log)


# ----------------------------------------------------------------------------- frames
def _corpus(token: str) -> list:
    nines = "9" * 400
    t = f', "token": "{token}"'
    return [
        '{"type": "teleop", "v": ' + nines + ', "w": 0}',            # the OverflowError
        '{"type": "teleop", "v": ' + nines + ', "w": 0' + t + '}',
        '{"type": "teleop", "v": -' + nines + '.5e9, "w": 0' + t + '}',
        '{"type": "teleop", "v": 1e999, "w": 0' + t + '}',
        '{"type": "teleop", "v": NaN, "w": 0' + t + '}',
        '{"type": "teleop", "v": -Infinity, "w": 0' + t + '}',
        '{"type": "teleop", "v": 1e308, "w": 0' + t + '}',
        '{"type": "teleop", "v": "0.3", "w": 0' + t + '}',
        '{"type": "teleop", "v": null, "w": 0' + t + '}',
        '{"type": "teleop", "v": [0.3], "w": {}' + t + '}',
        '{"type": "teleop", "v": true, "w": 0' + t + '}',
        '{"type": "ping", "id": ' + nines + '}',
        '{"type": "ping", "id": 1.5}',
        '{"type": "ping", "id": ' + "9" * 4400 + '}',                 # past int parsing's limit
        '{"type": 5}', '{"type": null}', '{"type": ["login"]}', '[]', '"login"', '5', '',
        '{"type": "login", "user": ["operator"], "password": "x"}',
        '{"type": "login", "user": "operator", "password": 5}',
        '{"type": "estop", "token": 5}',
        '{"type": "estop", "token": "t\\u00e9\\ud800"}',                # non-ASCII token
        '{"type": "mode", "mode": "turbo"' + t + '}',
        '{"type": "run", "plan_id": "p\\nforged"' + t + '}',
        '{"type": "confirm", "plan_id": "p1", "answer": "yes\\u0000"' + t + '}',
        '[' * 5000 + ']' * 5000,                                        # deep nesting
        '{"a":' * 1500 + '1' + '}' * 1500,
        '{"type": "ping", "x": ' + '{"a":' * 1000 + '1' + '}' * 1000 + '}',
        b'\xff\xfe{"type": "ping"}',                                    # invalid UTF-8
        b'{"type": "login", "user": "\xed\xa0\x80", "password": "x"}',  # a surrogate's bytes
        b'{"type": "ping", "x": "\xc3"}',
        ("binary", b"\x00\x01\x02\xff"),
        "x" * 20_000,                                                   # over 16 KiB
        json.dumps({"type": "instruct", "text": "y" * 501, "token": token}),
    ]


def test_malformed_frames_are_answered_without_a_traceback(users, library_log):
    # a frozen clock: each kind of error is logged exactly once, however long this takes
    with console(users, clock=FrozenClock(), max_message_bytes=16384) as (srv, lines):
        with ws(srv, max_size=None) as c:
            token = login(c, "operator", "operator-pw")["token"]
            corpus = _corpus(token)
            answers = []
            for frame in corpus:
                if isinstance(frame, tuple):
                    c.send(frame[1])                                # a binary frame
                elif isinstance(frame, bytes):
                    c.send(frame, text=True)                        # a text frame, bad UTF-8
                else:
                    c.send(frame)
                answers.append(answer(c))
            assert [a["type"] for a in answers] == ["error"] * len(corpus), \
                [(f if isinstance(f, tuple) else f[:60], a) for f, a in zip(corpus, answers)]
            assert all(a["message"] and len(a["message"]) < 400 for a in answers)
            assert answers[0]["message"] == \
                "rejected: field 'v' must be finite (number too large)"
            assert "not valid UTF-8" in answers[corpus.index(b'\xff\xfe{"type": "ping"}')][
                "message"]
            c.send(json.dumps({"type": "ping"}))                      # the connection lives
            assert answer(c)["message"] == "pong"
            # over the library's 1 MiB limit: that connection is closed with 1009, no more
            c.send("z" * (2 ** 20 + 1))
            with pytest.raises(ConnectionClosed) as e:
                for _ in range(5):
                    answer(c)
            assert e.value.rcvd is not None and e.value.rcvd.code == 1009
        with ws(srv) as c:                                            # the server lives
            assert login(c, "viewer", "viewer-pw")["type"] == "welcome"
        assert srv.counts["internal_errors"] == 0
        assert srv.counts["protocol_errors"] + srv.counts["forbidden"] >= len(corpus) - 3
    # logged once per kind a second at most: protocol errors, forbidden, the closed one
    warnings = [t for lvl, t in lines if lvl == "warning"]
    assert len(warnings) <= 3, warnings
    no_tracebacks(lines, library_log)


def test_every_handler_error_is_answered_and_the_connection_goes_on(users, library_log):
    with console(users, bridge=FaultyBridge(), clock=FrozenClock()) as (srv, lines):
        with ws(srv) as c:
            tok = login(c, "supervisor", "supervisor-pw")["token"]
            srv.post_plan(plan_dict("p1", "ok", [("navigate_to", {"place": "yard"})]))
            commands = [{"type": "estop"}, {"type": "reset"}, {"type": "mode", "mode": "manual"},
                        {"type": "instruct", "text": "go to the yard"}, {"type": "cancel"},
                        {"type": "run", "plan_id": "p1"},
                        {"type": "confirm", "plan_id": "p1", "answer": "yes"}]
            for k, cmd in enumerate(commands):
                c.send(json.dumps({**cmd, "token": tok, "id": k}))
                m = answer(c)
                assert m.get("id") == k and m["type"] == "reply" and m["ok"] is False, m
                assert m["message"].startswith(f"{cmd['type']} failed: ") and \
                    "\n" not in m["message"], m
            # teleop has no answer of its own: its bridge errors are logged; the pad's stop
            # on release too
            for _ in range(3):
                c.send(json.dumps({"type": "teleop", "v": 0.2, "w": 0.0, "token": tok}))
            c.send(json.dumps({"type": "teleop_stop", "token": tok}))
            c.send(json.dumps({"type": "ping"}))
            assert answer(c)["message"] == "pong"
            c.send(json.dumps({"type": "logout", "token": tok}))
            assert answer(c)["message"] == "logged out"
        assert srv.counts["internal_errors"] >= len(commands)
    errors = [t for lvl, t in lines if lvl == "error"]
    assert errors and all(t.isprintable() for t in errors), errors
    # once per kind (a frozen clock): the commands; teleop, its stop, its mode change
    assert len(errors) <= len(commands) + 3, errors
    no_tracebacks(lines, library_log)


# ----------------------------------------------------------------------------- HTTP
def test_only_get_and_head_are_answered(users, library_log):
    with console(users) as (srv, lines):
        def request(method, path):
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=WAIT_S)
            try:
                conn.request(method, path)
                r = conn.getresponse()
                return r.status, r.getheader("Allow"), r.getheader("Content-Length"), r.read()
            finally:
                conn.close()
        page = request("GET", "/")
        assert page[0] == 200 and b"EMERGENCY STOP" in page[3]
        head = request("HEAD", "/")
        assert head[0] == 200 and head[2] == str(len(page[3])) and head[3] == b""
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"):
            for path in ("/", "/index.html", "/console.js", "/nope"):
                status, allow, _, body = request(method, path)
                assert (status, allow) == (405, "GET, HEAD"), (method, path)
                assert b"EMERGENCY" not in body
            status, allow, _, _ = request(method, "/ws")
            assert (status, allow) == (405, "GET")
        for path in ("/nope", "/../auth.py", "/static/console.js", "/index.html/"):
            assert request("GET", path)[0] == 404, path
        # a request with a body is dropped by the HTTP parser before any handler: no page
        with socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT_S) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc")
            assert b"EMERGENCY" not in s.recv(65536)
        assert srv.counts["http_refused"] == 7 * 5
    no_tracebacks(lines, library_log)


# ----------------------------------------------------------------------------- log lines
NAMES = ["eve\nconsole: login user=supervisor role=supervisor",
         "eve\x00truncated here", "eve\ud800", "eve\u202egnp.exe", "eve\r\x1b[2Jcleared",
         "eve\\nliteral", "\u2028eve\u2029", "e" * 64]


def test_hostile_user_names_leave_one_escaped_line_and_one_audit_entry(users, tmp_path,
                                                                        library_log):
    ros_lines: list[str] = []

    def ros_info(line: str) -> None:
        """Like the ROS logger: UTF-8 only (a lone surrogate fails), a NUL ends the line."""
        line.encode("utf-8")
        if "\x00" in line:
            raise ValueError("embedded NUL")
        ros_lines.append(line)
    audit_file = tmp_path / "console.jsonl"
    audit = ConsoleAudit(str(audit_file), ros_info, time.monotonic)
    with console(users, audit=audit) as (srv, lines):
        for k, name in enumerate(NAMES):
            with ws(srv, f"127.0.4.{k + 1}") as c:
                m = login(c, name, "pw\ud800\x00")
                assert m["message"] == "invalid user name or password", (name, m)
        with ws(srv, "127.0.4.200") as c:
            assert login(c, "operator", "operator-pw")["type"] == "welcome"
        assert srv.counts["login_failures"] == len(NAMES)
    flush = getattr(audit.log, "flush", None)
    if flush is not None:
        flush()
    failed = [ln for ln in ros_lines if ln.startswith("console: login_failed ")]
    assert len(failed) == len(NAMES), ros_lines
    for name, line in zip(NAMES, failed):
        assert f"user={printable(name)} " in line, (name, line)
        assert line.isprintable()
    assert all(ln.isprintable() for ln in ros_lines)
    assert not any(ln.startswith("console: login user=supervisor") for ln in ros_lines)
    records = [json.loads(ln) for ln in audit_file.read_text("utf-8").splitlines()]
    entries = [r for r in records if r.get("event") == "login_failed"]
    assert [r["user"] for r in entries] == [printable(n) for n in NAMES]
    assert [r.get("user") for r in records if r.get("event") == "login"] == ["operator"]
    assert all(t.isprintable() for _, t in lines)
    events = [e["text"] for e in srv.store.get("events", [])]
    assert sum("login_failed" in e for e in events) == len(NAMES)
    assert all(e.isprintable() for e in events)
    no_tracebacks(lines, library_log)


# ----------------------------------------------------------------------------- TLS
def _self_signed(tmp_path):
    """A throwaway certificate for localhost/127.0.0.1 (the openssl command line)."""
    if shutil.which("openssl") is None:
        pytest.skip("neither the cryptography package nor the openssl binary is installed: "
                    "no test certificate can be made")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_is_served_directly_with_a_configured_certificate(users, tmp_path, library_log):
    cert, key = _self_signed(tmp_path)
    with console(users, tls_cert_file=str(cert), tls_key_file=str(key)) as (srv, lines):
        assert srv.url == f"https://127.0.0.1:{srv.port}/"
        ctx = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"https://127.0.0.1:{srv.port}/", context=ctx,
                                    timeout=WAIT_S) as r:
            assert r.status == 200 and b"EMERGENCY STOP" in r.read()
        with connect(f"wss://127.0.0.1:{srv.port}/ws", ssl=ctx, open_timeout=WAIT_S) as c:
            assert login(c, "operator", "operator-pw")["type"] == "welcome"
        # the same port in clear: no page, no handshake
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=WAIT_S)
            conn.request("GET", "/")
            conn.getresponse().read()
        with pytest.raises((OSError, InvalidHandshake, ConnectionClosed)):
            with connect(f"ws://127.0.0.1:{srv.port}/ws", open_timeout=WAIT_S):
                pass
        assert srv.counts["logins"] == 1
    no_tracebacks(lines, library_log)
