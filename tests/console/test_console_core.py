"""The web console's core, without ROS: password hashes, the roles matrix, message
validation, rate limits, the teleop deadman arbiter (injected clock), the state store, and
the real asyncio server (HTTP page + WebSocket) against a recording bridge (a test double
for the ROS side, named as such)."""
from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from websockets.sync.client import connect

from sitebot.console.auth import (PERMISSIONS, ROLES, AuthError, LoginLimiter, UserStore,
                                  hash_password, load_users, parse_users, permitted,
                                  verify_password)
from sitebot.console.config import allowed_hosts, tls_context
from sitebot.console.protocol import (COMMANDS, ProtocolError, decode_text, host_name,
                                      parse_message, printable, safe_line)
from sitebot.console.ratelimit import Throttle, TokenBucket
from sitebot.console.server import Bridge, ConsoleServer, ServerConfig
from sitebot.console.state import StateStore, map_payload, plan_dict, tail_jsonl
from sitebot.errors import ConfigError
from sitebot.paths import data_path
from sitebot.teleop.core import TeleopArbiter, clamp_twist

FAST = 100_000            # PBKDF2 iterations for test users (the minimum accepted)


# ----------------------------------------------------------------------------- auth
def test_hash_is_salted_pbkdf2_and_verifies():
    h1, h2 = hash_password("s3cret-pw", iterations=FAST), hash_password("s3cret-pw",
                                                                         iterations=FAST)
    assert h1.startswith("pbkdf2_sha256$100000$") and h1 != h2       # random salt
    assert "s3cret-pw" not in h1
    assert verify_password("s3cret-pw", h1) and verify_password("s3cret-pw", h2)
    assert not verify_password("s3cret-pX", h1)
    assert not verify_password("", h1)
    assert not verify_password("s3cret-pw", "s3cret-pw")               # plain text never
    assert not verify_password("s3cret-pw", "pbkdf2_sha256$1$!!$??")


def test_shipped_users_file_holds_hashes_of_the_documented_demo_passwords():
    path = data_path("config", "console_users.yaml")
    text = path.read_text()
    store = load_users(path)
    demo = {"viewer": "viewer-demo-1", "operator": "operator-demo-2",
            "supervisor": "supervisor-demo-3"}
    for name, pw in demo.items():
        assert pw not in text
        u = store.authenticate(name, pw)
        assert u is not None and u.role == name
    assert store.authenticate("operator", demo["supervisor"]) is None
    assert store.authenticate("nobody", "viewer-demo-1") is None
    assert demo["operator"] in data_path("docs", "console.md").read_text() \
        if data_path("docs", "console.md").exists() else True


def test_users_file_errors_name_the_key(tmp_path):
    with pytest.raises(AuthError, match=r"users\[0\]\.password: .*plain-text"):
        parse_users({"users": [{"name": "a", "role": "operator", "password": "hunter2"}]}, "f")
    with pytest.raises(AuthError, match=r"users\[0\]\.role"):
        parse_users({"users": [{"name": "a", "role": "admin",
                                "password": hash_password("x", iterations=FAST)}]}, "f")
    weak = hash_password("x", iterations=1000)
    with pytest.raises(AuthError, match="iterations"):
        parse_users({"users": [{"name": "a", "role": "viewer", "password": weak}]}, "f")
    good = hash_password("x", iterations=FAST)
    with pytest.raises(AuthError, match="duplicate"):
        parse_users({"users": [{"name": "a", "role": "viewer", "password": good}] * 2}, "f")
    bad = tmp_path / "u.yaml"
    bad.write_text("users: [ {name: a, role: viewer\n")
    with pytest.raises(AuthError, match=str(bad.name)):
        load_users(bad)


def test_roles_matrix():
    expected = {
        "viewer": {"watch", "estop"},
        "operator": {"watch", "estop", "teleop", "mode", "instruct", "run", "cancel",
                     "survey"},
        "supervisor": {"watch", "estop", "teleop", "mode", "instruct", "run", "cancel",
                       "reset", "high_risk", "confirm", "survey", "edit_site"},
        "site_admin": {"watch", "estop", "survey", "edit_site"},
    }
    for role in ROLES:
        got = {a for a in PERMISSIONS if permitted(role, a)}
        assert got == expected[role], role
    assert not permitted(None, "estop") and not permitted("admin", "watch")
    assert not permitted("supervisor", "no_such_action")


def test_login_limiter_delays_progressively_and_never_locks_out():
    lim = LoginLimiter(free=3, forget_s=60.0, base_s=1.0, max_delay_s=8.0)
    assert [lim.delay(n) for n in range(0, 9)] == [0, 0, 0, 1, 2, 4, 8, 8, 8]
    assert lim.delay(10 ** 6) == 8.0                     # no overflow, capped
    # counted before the password is checked: 6 attempts at one instant, 3 admitted
    got = [lim.begin("1.2.3.4", "bob", 10.0) for _ in range(6)]
    assert [t is not None for t, _ in got] == [True] * 3 + [False] * 3
    assert all(w == pytest.approx(1.0) for _, w in got[3:])
    # refusals are not counted: the wait ends on time, then it doubles (2 s, 4 s, 8 s, 8 s)
    for _ in range(50):
        assert lim.begin("1.2.3.4", "bob", 10.5)[0] is None
    t = 11.0
    for wait in (2.0, 4.0, 8.0, 8.0):
        assert lim.begin("1.2.3.4", "bob", t)[0] is not None
        ticket, w = lim.begin("1.2.3.4", "bob", t + wait - 0.01)
        assert ticket is None and w == pytest.approx(0.01)
        t += wait
    # meanwhile a correct password for bob from a clean address is evaluated at once (the
    # name's wait holds back addresses that failed), and taking the success back leaves that
    # address clean
    assert lim.begin("3.3.3.3", "carol", t - 2.0)[0] is not None        # 3.3.3.3 failed once
    ticket, w = lim.begin("3.3.3.3", "bob", t - 1.0)
    assert ticket is None and w == pytest.approx(1.0)
    ticket, w = lim.begin("5.6.7.8", "bob", t - 1.0)
    assert ticket is not None and w == 0.0
    lim.succeeded(ticket)
    assert lim.begin("5.6.7.9", "bob", t - 1.0)[0] is not None
    # fresh addresses guessing one account share its "new" budget: 3 of 10 admitted
    admitted = sum(lim.begin(f"10.0.0.{k}", "eve", 100.0)[0] is not None for k in range(10))
    assert admitted == 3
    # one address guessing many accounts: 3 admitted
    assert sum(lim.begin("9.9.9.9", f"user{k}", 100.0)[0] is not None for k in range(10)) == 3
    # forgotten forget_s after the last attempt
    assert lim.begin("1.2.3.4", "bob", t + 60.0)[0] is not None
    with pytest.raises(ValueError, match="LoginLimiter"):
        LoginLimiter(free=0)
    small = LoginLimiter(free=3)
    small.MAX_KEYS = 100
    for k in range(1000):                                # bounded memory under a spray
        small.begin(f"10.1.{k // 250}.{k % 250}", f"u{k}", 1.0)
    assert len(small) <= 103


# ----------------------------------------------------------------------------- protocol
@pytest.mark.parametrize("raw,match", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"v": 1}', "'type'"),
    ('{"type": "self_destruct"}', "unknown command"),
    ('{"type": "teleop", "v": 0.1}', "'w' is missing"),
    ('{"type": "teleop", "v": "fast", "w": 0}', "'v' must be a number"),
    ('{"type": "teleop", "v": NaN, "w": 0}', "not a number"),
    ('{"type": "teleop", "v": Infinity, "w": 0}', "not a number"),
    ('{"type": "teleop", "v": 1e999, "w": 0}', "finite"),
    ('{"type": "teleop", "v": true, "w": 0}', "number"),
    ('{"type": "teleop", "v": 0, "w": 0, "boost": 1}', "unknown fields"),
    ('{"type": "mode", "mode": "turbo"}', "one of"),
    ('{"type": "login", "user": 5, "password": "x"}', "string"),
    ('{"type": "run", "plan_id": "p", "confirm_high_risk": "yes"}', "true or false"),
    ('[' * 3000 + ']' * 3000, "limit|JSON"),
    ('{"type": "teleop", "v": ' + "9" * 400 + ', "w": 0}', "finite"),       # no OverflowError
    ('{"type": "teleop", "v": 101, "w": 0}', r"within \[-100, 100\]"),
    ('{"type": "ping", "id": ' + "9" * 30 + '}', "'id'"),
    ('{"type": "run", "plan_id": "p\\nforged"}', "letters, digits"),
    ('{"type": "run", "plan_id": "p1\\n"}', "letters, digits"),
    ('{"type": "answer", "in_reply_to": "", "text": "x"}', "letters, digits"),
])
def test_malformed_messages_are_rejected_with_a_reason(raw, match):
    with pytest.raises(ProtocolError, match=match):
        parse_message(raw, max_bytes=8192)


def test_oversized_and_binary_messages_are_rejected():
    big = json.dumps({"type": "instruct", "text": "x" * 400, "pad": "y" * 5000})
    with pytest.raises(ProtocolError, match="exceeds the limit of 4096 bytes"):
        parse_message(big, 4096)
    with pytest.raises(ProtocolError, match="binary"):
        parse_message(b'{"type": "ping"}')
    with pytest.raises(ProtocolError, match="longer than 500"):
        parse_message(json.dumps({"type": "instruct", "text": "x" * 501}), 8192)


def test_frames_are_decoded_strictly_and_client_text_is_escaped_for_logs():
    assert decode_text(b'{"type": "ping"}') == '{"type": "ping"}'
    for bad in (b"\xff", b"\xed\xa0\x80", b'{"a": "\xc3"}'):        # a surrogate's bytes too
        with pytest.raises(ProtocolError, match="not valid UTF-8"):
            decode_text(bad)
    with pytest.raises(ProtocolError, match="exceeds the limit of 10 bytes"):
        decode_text(b"x" * 11, 10)
    assert printable("eve\nconsole: login ok") == "eve\\nconsole: login ok"
    assert printable("a\x00b\ud800c\u202ed\\e\te\u00e9") == \
        "a\\x00b\\ud800c\\u202ed\\\\e\\te\u00e9"
    assert printable("x" * 300, 10) == "x" * 10 + "...(+290 chars)"
    assert printable(12) == "12"
    assert safe_line("plain 'line' \\ as is") == "plain 'line' \\ as is"
    assert safe_line("two\nlines\x00 \\") == "two\\nlines\\x00 \\\\"


def test_host_header_names_and_the_allow_list():
    assert [host_name(h) for h in ("localhost:8080", "LOCALHOST.", "[::1]:80", "127.0.0.1",
                                   "evil.example:18080", "", None, "a:b", "[::1", "a b",
                                   "x\ty")] == [
        "localhost", "localhost", "::1", "127.0.0.1", "evil.example", None, None, None, None,
        None, None]
    hosts = allowed_hosts("0.0.0.0", ("Robot.Site.example", "fe80::1"))
    assert {"localhost", "127.0.0.1", "::1", socket.gethostname().lower(), "0.0.0.0",
            "robot.site.example", "fe80::1"} == hosts
    assert "evil.example" not in allowed_hosts("127.0.0.1")
    with pytest.raises(ConfigError, match="go together"):
        tls_context("cert.pem", "")
    with pytest.raises(ConfigError, match="missing.pem"):
        tls_context("missing.pem", "missing-key.pem")
    assert tls_context("", "") is None


def test_valid_messages_and_clamping():
    m = parse_message('{"type": "teleop", "v": 3.5, "w": -0.2, "token": "t", "id": 7}')
    assert m == {"type": "teleop", "v": 3.5, "w": -0.2, "token": "t", "id": 7}
    # one teleop core: the twist is scaled by one factor (curvature kept), not per axis
    assert clamp_twist(3.5, -9.0, 0.5, 1.0) == pytest.approx((3.5 / 9.0, -1.0))
    assert clamp_twist(-0.2, 0.3, 0.5, 1.0) == (-0.2, 0.3)
    for kind, (req, _) in COMMANDS.items():
        assert isinstance(req, dict), kind


# ----------------------------------------------------------------------------- rate limits
def test_token_bucket_rate_and_burst():
    b = TokenBucket(rate_hz=10.0, burst=5.0)
    assert sum(b.take(0.0) for _ in range(20)) == 5              # the burst
    assert sum(b.take(0.5) for _ in range(20)) == 5              # 0.5 s * 10 Hz refills 5
    # a steady 20 Hz stream for 2 s gets about 10 Hz through
    # (plus the 5 saved from 0.5 s to 1.0 s)
    passed = sum(b.take(1.0 + k / 20) for k in range(40))
    assert 23 <= passed <= 25
    assert b.refused > 0


def test_throttle_per_section():
    t = Throttle({"camera": 0.5}, default_s=0.1)
    assert t.ready("camera", 0.0)
    t.mark("camera", 0.0)
    assert not t.ready("camera", 0.3) and t.ready("camera", 0.5)
    t.mark("robot", 0.0)
    assert not t.ready("robot", 0.05) and t.ready("robot", 0.1)


def test_state_store_sends_only_changes_and_respects_the_throttle():
    s = StateStore()
    s.set("robot", {"x": 1})
    s.set("camera", {"jpeg": "a"})
    seen: dict = {}
    th = Throttle({"camera": 0.5}, 0.1)
    assert s.changed(seen, th, 0.0) == {"robot": {"x": 1}, "camera": {"jpeg": "a"}}
    assert s.changed(seen, th, 0.2) == {}
    s.set("camera", {"jpeg": "b"})
    s.set("robot", {"x": 2})
    assert s.changed(seen, th, 0.2) == {"robot": {"x": 2}}           # camera not due
    assert s.changed(seen, th, 0.6) == {"camera": {"jpeg": "b"}}


# ----------------------------------------------------------------------------- deadman
def test_deadman_watchdog_stops_once_after_a_gap():
    a = TeleopArbiter(timeout_s=0.3)
    assert a.tick(0.0) is None
    assert a.command("c1", 0.4, 0.1, 0.0) == (True, "driving")
    # fresh commands every 0.1 s: drive
    for k in range(1, 10):
        a.command("c1", 0.4, 0.1, k * 0.1)
        act = a.tick(k * 0.1 + 0.05)
        assert act.deadman and (act.v_mps, act.w_radps) == (0.4, 0.1)     # drive
    last = 0.9
    assert a.tick(last + 0.29).deadman                          # within the timeout: drive
    act = a.tick(last + 0.31)                                   # a gap > 0.3 s
    assert act.source == "stop" and not act.deadman and "no teleop command" in act.reason
    assert a.tick(last + 0.4) is None and not a.active         # the stop is sent once


def test_deadman_release_disconnect_and_a_second_operator():
    a = TeleopArbiter(timeout_s=0.3)
    a.command("c1", 0.2, 0.0, 0.0)
    assert a.command("c2", 0.5, 0.0, 0.1) == (False, "another operator is driving")
    assert a.release("c2") is None                              # c2 held nothing
    assert a.release("c1", "released").source == "stop"
    assert a.command("c2", 0.5, 0.0, 0.2)[0]
    assert a.release("c2", "connection closed").reason == "connection closed"
    assert not a.command("c1", math.nan, 0.0, 0.3)[0]
    # a stale holder no longer blocks others
    a.command("c1", 0.2, 0.0, 1.0)
    assert a.command("c2", 0.2, 0.0, 1.5)[0]


# ----------------------------------------------------------------------------- state helpers
def test_map_payload_and_tail(tmp_path):
    from sitebot.site.bundle import load_bundle
    w = load_bundle("substation")
    m = map_payload(w)
    g = m["grid"]
    import base64
    assert len(base64.b64decode(g["bits"])) == math.ceil(g["width"] * g["height"] / 8)
    assert m["starts"]["robot1"] == [-12.0, -12.0, 0.0] and m["site"] == "substation"
    assert (g["width"], g["height"], g["resolution"]) == (300, 300, 0.1)
    assert len(m["zones"]) == len(w.registry.zones) > 0
    json.dumps(m, allow_nan=False)
    log = tmp_path / "audit.jsonl"
    log.write_text("".join(json.dumps({"seq": i, "event": "e"}) + "\n" for i in range(30))
                   + "garbage\n")
    tail = tail_jsonl(log, 5)
    assert [r["seq"] for r in tail] == [25, 26, 27, 28, 29]
    assert tail_jsonl(tmp_path / "missing.jsonl") == []
    p = plan_dict("p1", "ok", [("navigate_to", {"place": "a"}),
                               ("operate_valve", {"asset": "v", "action": "open"})])
    assert p["high_risk"] and len(p["steps"]) == 2


# ----------------------------------------------------------------------------- server
class RecordingBridge(Bridge):
    """Test double of the ROS bridge: records every call with its time."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, tuple]] = []
        self.lock = threading.Lock()

    def _rec(self, name: str, *args) -> None:
        with self.lock:
            self.calls.append((time.monotonic(), name, args))

    def named(self, name: str) -> list[tuple[float, str, tuple]]:
        with self.lock:
            return [c for c in self.calls if c[1] == name]

    def estop(self, user):
        self._rec("estop", user)
        return True, "emergency stop latched"

    def reset(self, user):
        self._rec("reset", user)
        return False, "estop latched less than 5 s ago"

    def set_mode(self, mode, user):
        self._rec("set_mode", mode)
        return True, f"mode {mode}"

    def teleop(self, v, w):
        self._rec("teleop", v, w)

    def teleop_stop(self):
        self._rec("teleop_stop")

    def instruct(self, request_id, text, role, in_reply_to):
        self._rec("instruct", request_id, text, role, in_reply_to)

    def run_plan(self, plan_id, confirmed, user):
        self._rec("run_plan", plan_id, confirmed)
        return True, "started"

    def cancel(self, user):
        self._rec("cancel")
        return True, "cancel requested"

    def confirm(self, plan_id, yes, user):
        self._rec("confirm", plan_id, yes)
        return True, "ok"


@pytest.fixture(scope="module")
def users():
    return UserStore(parse_users({"users": [
        {"name": n, "role": n, "password": hash_password(n + "-pw", iterations=FAST)}
        for n in ROLES]}).users.values())


@pytest.fixture()
def server(users):
    bridge = RecordingBridge()
    cfg = ServerConfig(host="127.0.0.1", port=0, command_rate_hz=20.0, command_burst=10.0,
                       login_max_failures=3, max_message_bytes=2048)
    srv = ConsoleServer(bridge, users, cfg, map_data={"site": "test"})
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    th = threading.Thread(target=lambda: loop.run_until_complete(srv.run(stop)), daemon=True)
    th.start()
    assert srv.ready.wait(10)
    yield srv, bridge
    loop.call_soon_threadsafe(stop.set)
    th.join(5)


def _url(srv, path=""):
    return f"ws://127.0.0.1:{srv.port}/ws{path}"


def _recv_until(ws, pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            m = json.loads(ws.recv(timeout=max(0.01, end - time.monotonic())))
        except TimeoutError:
            break
        if pred(m):
            return m
    raise AssertionError("expected message not received")


def _login(ws, name):
    ws.send(json.dumps({"type": "login", "user": name, "password": name + "-pw"}))
    m = _recv_until(ws, lambda m: m["type"] in ("welcome", "error"))
    assert m["type"] == "welcome", m
    return m["token"]


def test_http_serves_the_page_and_refuses_other_paths(server):
    srv, _ = server
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/", timeout=5) as r:
        body = r.read().decode()
        assert r.status == 200 and "text/html" in r.headers["Content-Type"]
        assert "EMERGENCY STOP" in body and "console.js" in body
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/console.js", timeout=5) as r:
        assert "javascript" in r.headers["Content-Type"]
    for bad in ("/../setup.py", "/secret", "/static/../auth.py"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{srv.port}{bad}", timeout=5)
        assert e.value.code == 404
        e.value.close()


def test_cross_origin_websocket_is_refused(server):
    srv, _ = server
    with pytest.raises(Exception):
        with connect(_url(srv), origin="http://evil.example", open_timeout=3):
            pass


def test_nothing_works_before_login_and_estop_works_for_a_viewer(server):
    srv, bridge = server
    with connect(_url(srv)) as ws:
        ws.send(json.dumps({"type": "estop"}))
        m = _recv_until(ws, lambda m: m["type"] == "error")
        assert "not authenticated" in m["message"]
        assert bridge.named("estop") == []
        token = _login(ws, "viewer")
        ws.send(json.dumps({"type": "teleop", "v": 0.3, "w": 0.0, "token": token}))
        m = _recv_until(ws, lambda m: m["type"] == "error")
        assert "not permitted for role viewer" in m["message"]
        ws.send(json.dumps({"type": "estop", "token": "forged"}))
        assert "not authenticated" in _recv_until(ws, lambda m: m["type"] == "error")["message"]
        ws.send(json.dumps({"type": "estop", "token": token}))
        m = _recv_until(ws, lambda m: m["type"] == "reply")
        assert m["ok"] and m["cmd"] == "estop"
        assert len(bridge.named("estop")) == 1 and bridge.named("teleop") == []


def test_bad_messages_get_errors_and_the_server_keeps_running(server):
    srv, bridge = server
    with connect(_url(srv)) as ws:
        token = _login(ws, "operator")
        for raw in ("{broken", json.dumps({"type": "warp", "token": token}),
                    json.dumps({"type": "teleop", "v": 1e400, "w": 0, "token": token}),
                    json.dumps({"type": "instruct", "text": "x" * 3000, "token": token})):
            ws.send(raw)
            m = _recv_until(ws, lambda m: m["type"] == "error")
            assert m["message"].startswith("rejected:")
        ws.send(json.dumps({"type": "ping"}))
        assert _recv_until(ws, lambda m: m["type"] == "reply")["message"] == "pong"
    assert srv.counts["protocol_errors"] >= 4
    # a message over the library's hard limit closes that connection only
    with connect(_url(srv)) as ws:
        ws.send("x" * (2 ** 20 + 10))
        with pytest.raises(Exception):
            for _ in range(5):
                ws.recv(timeout=2)
    with connect(_url(srv)) as ws:
        _login(ws, "viewer")


def test_login_attempts_are_rate_limited(server):
    srv, _ = server
    with connect(_url(srv)) as ws:
        for _ in range(3):
            ws.send(json.dumps({"type": "login", "user": "operator", "password": "guess"}))
            m = _recv_until(ws, lambda m: m["type"] == "error")
            assert m["message"] == "invalid user name or password"
        ws.send(json.dumps({"type": "login", "user": "operator", "password": "operator-pw"}))
        m = _recv_until(ws, lambda m: m["type"] in ("error", "welcome"))
        assert m["type"] == "error" and "too many failed logins: wait" in m["message"]
        # a delay, not a lockout: after the wait the right password is accepted
        wait = float(m["message"].split("wait ")[1].split(" s")[0])
        assert 0.0 < wait <= 1.0
        time.sleep(wait + 0.05)
        assert _login(ws, "operator")


def test_incoming_commands_are_rate_limited_but_estop_is_not(server):
    srv, bridge = server
    with connect(_url(srv)) as ws:
        token = _login(ws, "operator")
        for _ in range(30):
            ws.send(json.dumps({"type": "mode", "mode": "manual", "token": token}))
        for _ in range(5):
            ws.send(json.dumps({"type": "estop", "token": token}))
        t_end = time.monotonic() + 3
        while time.monotonic() < t_end and len(bridge.named("estop")) < 5:
            try:
                ws.recv(timeout=0.02)          # read the answers (the client's queue is small)
            except TimeoutError:
                pass
        assert len(bridge.named("estop")) == 5
        assert srv.counts["rate_limited"] >= 15
        assert 8 <= len(bridge.named("set_mode")) <= 16


def test_teleop_is_clamped_and_stopped_on_release_gap_and_close(server):
    srv, bridge = server
    with connect(_url(srv)) as ws:
        token = _login(ws, "operator")
        for _ in range(5):
            ws.send(json.dumps({"type": "teleop", "v": 9.0, "w": -9.0, "token": token}))
            time.sleep(0.1)
        drives = bridge.named("teleop")
        # clamped keeping the curvature: (9, -9) scaled by 1/18 into |v| <= 0.5, |w| <= 1
        assert drives and all(c[2] == (0.5, -0.5) for c in drives)
        assert bridge.named("set_mode")[0][2] == ("manual",)
        ws.send(json.dumps({"type": "teleop_stop", "token": token}))
        time.sleep(0.2)
        assert len(bridge.named("teleop_stop")) == 1
        # gap: one command, then silence: a stop 0.3-0.45 s later (20 Hz watchdog)
        ws.send(json.dumps({"type": "teleop", "v": 0.2, "w": 0.0, "token": token}))
        t0 = time.monotonic()
        deadline = t0 + 2
        while len(bridge.named("teleop_stop")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        stops = bridge.named("teleop_stop")
        assert len(stops) == 2
        gap = stops[1][0] - t0
        assert 0.25 <= gap <= 0.6, f"watchdog stop after {gap:.3f} s"
        # close while driving: a stop
        ws.send(json.dumps({"type": "teleop", "v": 0.2, "w": 0.0, "token": token}))
        time.sleep(0.05)
        t_close = time.monotonic()
    deadline = time.monotonic() + 2
    while len(bridge.named("teleop_stop")) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stops = bridge.named("teleop_stop")
    assert len(stops) == 3 and stops[2][0] - t_close < 0.35


def test_plan_flow_and_high_risk_authorisation(server):
    srv, bridge = server
    with connect(_url(srv)) as op, connect(_url(srv)) as sup:
        t_op = _login(op, "operator")
        t_sup = _login(sup, "supervisor")
        op.send(json.dumps({"type": "instruct", "text": "open valve 3", "token": t_op}))
        rid = _recv_until(op, lambda m: m["type"] == "reply")["request_id"]
        assert bridge.named("instruct")[-1][2][:3] == (rid, "open valve 3", "operator")
        srv.post_plan(plan_dict(rid, "ok", [("operate_valve", {"asset": "v3",
                                                                 "action": "open"})]))
        m = _recv_until(op, lambda m: m["type"] == "state" and "plans" in m)
        assert m["plans"][0]["plan_id"] == rid and m["plans"][0]["high_risk"]
        op.send(json.dumps({"type": "run", "plan_id": rid, "confirm_high_risk": True,
                            "token": t_op}))
        assert "supervisor must authorise" in _recv_until(
            op, lambda m: m["type"] == "error")["message"]
        sup.send(json.dumps({"type": "run", "plan_id": rid, "token": t_sup}))
        assert "confirm" in _recv_until(sup, lambda m: m["type"] == "reply")["message"]
        assert bridge.named("run_plan") == []
        sup.send(json.dumps({"type": "run", "plan_id": rid, "confirm_high_risk": True,
                             "token": t_sup}))
        assert _recv_until(sup, lambda m: m["type"] == "reply")["ok"]
        assert bridge.named("run_plan")[-1][2] == (rid, True)
        # a refusal cannot be run; an unknown plan neither
        srv.post_plan(plan_dict("p-refused", "refuse", [], reason="keep-out zone"))
        op.send(json.dumps({"type": "run", "plan_id": "p-refused", "token": t_op}))
        assert "not a runnable plan" in _recv_until(op, lambda m: m["type"] == "reply")["message"]
        op.send(json.dumps({"type": "reset", "token": t_op}))
        assert "not permitted" in _recv_until(op, lambda m: m["type"] == "error")["message"]
        sup.send(json.dumps({"type": "reset", "token": t_sup}))
        m = _recv_until(sup, lambda m: m["type"] == "reply")
        assert not m["ok"] and "less than 5 s" in m["message"]


def test_state_is_pushed_throttled(server):
    srv, _ = server
    with connect(_url(srv)) as ws:
        _login(ws, "viewer")
        t0 = time.monotonic()
        cams = 0
        while time.monotonic() - t0 < 1.6:
            srv.store.set("robot", {"x": time.monotonic()})
            srv.store.set("camera", {"jpeg": str(time.monotonic())})
            time.sleep(0.02)
        deadline = time.monotonic() + 0.3
        states = []
        while time.monotonic() < deadline:
            try:
                m = json.loads(ws.recv(timeout=0.1))
            except TimeoutError:
                continue
            states.append(m)
        while True:
            try:
                states.append(json.loads(ws.recv(timeout=0.05)))
            except TimeoutError:
                break
        robot = sum(1 for m in states if m["type"] == "state" and "robot" in m)
        cams = sum(1 for m in states if m["type"] == "state" and "camera" in m)
        # 1.6 s of 50 Hz updates: about 10 Hz of robot state, about 2 Hz of camera
        assert 8 <= robot <= 20, robot
        assert 2 <= cams <= 5, cams


# ----------------------------------------------------------------------------- CLI
def test_cli_maps_flags_to_node_parameters_and_hashes_passwords(monkeypatch, capsys):
    import io

    from sitebot.apps import console as cli
    ns = cli._parser().parse_args(["--port", "9000", "--users", "/etc/u.yaml",
                                   "--use-sim-time"])
    argv = cli.build_ros_args(ns, ["--ros-args", "-r", "odom:=/r1/odom"])
    assert argv[1:] == ["--ros-args", "-p", "port:=9000", "-p", "users_file:='/etc/u.yaml'",
                        "-p", "use_sim_time:=true", "-r", "odom:=/r1/odom"]
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert cli.main(["--hash-password"]) == 0
    stored = capsys.readouterr().out.strip()
    assert verify_password("correct horse battery", stored)
    parse_users({"users": [{"name": "a", "role": "viewer", "password": stored}]})
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["--hash-password"]) == 2
    assert cli.main(["--port", "70000"]) == 2
