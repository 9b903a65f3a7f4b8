"""The console's core between the ROS node and the server, without ROS: the robot's messages
shaped into the page's sections (:mod:`sitebot.console.views`), the commands' rules over the
node's primitives (:mod:`sitebot.console.bridge`, against a recording port: a test double of
the node, named as such), the console audit, throttled warnings and the server built from
the node's parameters."""
from __future__ import annotations

import base64
import json
import math

import cv2
import numpy as np
import pytest

from sitebot.console.auth import User, UserStore
from sitebot.console.bridge import ConsoleAudit, ConsoleBridge, Unavailable
from sitebot.console.config import SCHEMA
from sitebot.console.ratelimit import LogThrottle
from sitebot.console.server import ConsoleServer, ServerConfig
from sitebot.console.views import (GAUGES_KEPT, PEOPLE_MAX, PLANS_KEPT, ConsoleViews, ViewConfig,
                                   confirmation_section, path_section, result_step)
from sitebot.safety.config import SCHEMA as SAFETY_SCHEMA
from sitebot.safety.config import SafetyConfig
from sitebot.security import Authority, command_digest, plan_digest, verify
from sitebot.teleop.core import DEADMAN_TIMEOUT_S
from sitebot.types import Pose2D

DEFAULTS = {s.name: s.default for s in SCHEMA}


# ----------------------------------------------------------------------------- config
def test_one_deadman_default_for_the_console_and_the_supervisor():
    assert DEADMAN_TIMEOUT_S == 0.3
    assert DEFAULTS["deadman_timeout_s"] == DEADMAN_TIMEOUT_S
    assert ServerConfig().deadman_timeout_s == DEADMAN_TIMEOUT_S
    assert SafetyConfig().deadman_timeout_s == DEADMAN_TIMEOUT_S
    assert {s.name: s.default for s in SAFETY_SCHEMA}["deadman_timeout_s"] == DEADMAN_TIMEOUT_S


def test_config_defaults_match_the_schema_and_come_from_the_parameters():
    sc = ServerConfig.from_params(DEFAULTS)
    for f in ("host", "port", "state_rate_hz", "camera_rate_hz", "max_linear_mps",
              "max_angular_radps", "deadman_timeout_s", "command_rate_hz", "command_burst",
              "max_message_bytes", "login_max_failures", "login_window_s", "check_origin"):
        assert getattr(sc, f) == DEFAULTS[f] == getattr(ServerConfig(), f), f
    assert sc.teleop_tick_hz == 20.0 and sc.slow_period_s == 1.0      # not parameters
    vc = ViewConfig.from_params(DEFAULTS)
    assert vc == ViewConfig()
    assert ServerConfig.from_params({**DEFAULTS, "port": 9001}).port == 9001


def test_view_config_refuses_bad_values_and_takes_the_spawn_pose():
    with pytest.raises(ValueError, match="pose_timeout_s"):
        ViewConfig(pose_timeout_s=math.nan)
    with pytest.raises(ValueError, match="camera_rate_hz"):
        ViewConfig(camera_rate_hz=0.0)
    with pytest.raises(ValueError, match="jpeg_quality"):
        ViewConfig(jpeg_quality=0)
    with pytest.raises(ValueError, match="footprint_radius_m"):
        ViewConfig(footprint_radius_m=-0.1)

    class Spawn:
        x, y, yaw = 1.0, 2.0, 0.5
    vc = ViewConfig.from_params({**DEFAULTS, "pose_timeout_s": 2.5}, Spawn())
    assert vc.spawn == Pose2D(1.0, 2.0, 0.5) and vc.pose_timeout_s == 2.5
    assert ViewConfig.from_params(DEFAULTS, None).spawn == Pose2D(0.0, 0.0, 0.0)
    v = ConsoleViews(vc)
    v.configure({"pose_timeout_s": 0.5, "world": "ignored", "footprint_radius_m": 0.7})
    assert v.config.pose_timeout_s == 0.5 and v.config.footprint_radius_m == 0.7
    assert v.config.spawn == Pose2D(1.0, 2.0, 0.5)


# ----------------------------------------------------------------------------- robot pose
def test_robot_pose_from_the_filter_while_fresh_else_odom_composed_with_the_spawn():
    v = ConsoleViews(ViewConfig(spawn=Pose2D(1.0, 2.0, math.pi / 2), pose_timeout_s=1.0))
    r = v.on_odom(Pose2D(1.0, 0.0, 0.0), 0.3, 0.1, now=10.0)
    # 1 m ahead of a spawn facing +y: (1, 3), heading pi/2
    assert r == {"x": 1.0, "y": 3.0, "yaw": 1.571, "v": 0.3, "w": 0.1, "source": "odom",
                 "t": 10.0}
    assert v.pose == pytest.approx((1.0, 3.0, math.pi / 2))
    r = v.on_filtered(Pose2D(5.0, 6.0, 0.5), now=10.5)
    assert (r["x"], r["y"], r["yaw"], r["source"], r["v"]) == (5.0, 6.0, 0.5, "filter", 0.3)
    assert v.on_odom(Pose2D(9.0, 9.0, 0.0), 0.2, 0.0, now=11.5) is None     # filter fresh
    assert v.twist == (0.2, 0.0)                                            # speed kept
    r = v.on_odom(Pose2D(0.0, 0.0, 0.0), math.nan, 0.0, now=11.6)          # filter stale
    assert (r["x"], r["y"], r["source"], r["v"]) == (1.0, 2.0, "odom", 0.2)
    assert v.on_filtered(Pose2D(math.nan, 0.0, 0.0), now=12.0) is None
    assert v.filtered_at == 10.5


def test_people_in_the_base_frame_are_moved_into_the_map():
    v = ConsoleViews()
    person = [(7, 2.0, 0.0, 1.0, 0.0)]
    assert v.people("base_footprint", person) is None            # no robot pose yet
    assert v.people("map", person) == [{"id": 7, "x": 2.0, "y": 0.0, "vx": 1.0, "vy": 0.0}]
    v.on_filtered(Pose2D(1.0, 3.0, math.pi / 2), now=0.0)
    # 2 m ahead of a robot at (1, 3) facing +y, walking forward: (1, 5), velocity +y
    assert v.people("base_footprint", person) == [{"id": 7, "x": 1.0, "y": 5.0, "vx": 0.0,
                                                   "vy": 1.0}]
    many = [(i, float(i), 0.0, 0.0, 0.0) for i in range(PEOPLE_MAX + 10)]
    assert len(v.people("map", iter(many))) == PEOPLE_MAX == 50
    assert v.people("map", [(1, math.inf, 0.0, 0.0, 0.0)]) == []


def test_path_is_thinned_to_about_300_points_with_the_last_kept():
    pts = [(0.01 * i, 0.0) for i in range(1001)]
    sec = path_section("map", pts)
    assert sec["frame"] == "map" and len(sec["points"]) == 335      # every 3rd + the last
    assert sec["points"][0] == [0.0, 0.0] and sec["points"][-1] == [10.0, 0.0]
    assert len(path_section("map", pts[:1000])["points"]) == 334    # the last is the 999th
    assert path_section("map", [(1.234, 5.678), (math.nan, 0.0)])["points"] == [[1.23, 5.68]]
    assert path_section("odom", [])["points"] == []


def test_safety_section_field_radius_and_requested_mode():
    v = ConsoleViews(ViewConfig(footprint_radius_m=0.4))
    kw = dict(level=2, mode=1, estop=False, stop_category=2, speed_scale=0.0, max_speed=0.25,
              closest=0.9, required=0.6, reasons=[f"r{i}" for i in range(12)],
              message="x" * 400, now=3.456)
    s = v.safety(**kw)
    assert s["field_radius"] == 1.0 and s["required"] == 0.6
    assert (s["level_name"], s["mode"], s["mode_requested"]) == ("protective_stop", "manual",
                                                                 "manual")
    assert len(s["reasons"]) == 8 and len(s["message"]) == 300 and s["t"] == 3.46
    v.mode_requested = "automatic"
    s = v.safety(**{**kw, "required": math.nan, "level": 9})
    assert s["field_radius"] == 0.4 and s["required"] is None
    assert s["level_name"] == "unknown" and s["mode_requested"] == "automatic"
    json.dumps(s, allow_nan=False)


# ----------------------------------------------------------------------------- camera, gauges
def test_camera_frames_at_the_rate_scaled_to_the_width():
    v = ConsoleViews(ViewConfig(camera_rate_hz=2.0, camera_max_width=480))
    assert v.camera_due(100.0) and not v.camera_due(100.3) and v.camera_due(100.5)
    img = np.full((480, 640, 3), 128, np.uint8)
    sec = v.camera(img, 640, 480, 12.345)
    jpeg = cv2.imdecode(np.frombuffer(base64.b64decode(sec["jpeg"]), np.uint8), 1)
    assert jpeg.shape == (360, 480, 3)
    assert (sec["width"], sec["height"], sec["stamp"]) == (640, 480, 12.35)
    assert v.camera(np.zeros((0, 0, 3), np.uint8), 0, 0, 0.0) is None


def test_gauge_crops_at_most_once_a_second_and_40_gauges_kept():
    v = ConsoleViews()
    calls = []

    def crop():
        calls.append(1)
        return np.full((100, 320, 3), 200, np.uint8)
    kw = dict(valid=True, value=3.14159, unit="bar" * 10, confidence=0.87654,
              failure="", stamp=5.0)
    g = v.gauge(asset="pg1", crop=crop, t=0.0, **kw)
    first = g[0]["crop"]
    assert len(calls) == 1 and first and g[0]["value"] == 3.142 and g[0]["unit"] == ("bar" * 6)[:16]
    img = cv2.imdecode(np.frombuffer(base64.b64decode(first), np.uint8), 1)
    assert img.shape[1] == 160                                  # crops 160 px wide
    g = v.gauge(asset="pg1", crop=crop, t=0.5, **{**kw, "value": 2.0})
    assert len(calls) == 1 and g[0]["crop"] == first and g[0]["value"] == 2.0
    v.gauge(asset="pg1", crop=crop, t=1.0, **kw)
    assert len(calls) == 2
    v.gauge(asset="pg2", crop=None, t=1.0, **kw)
    assert [e["crop"] for e in v.gauge(asset="pg2", crop=None, t=2.0, **kw)][1] is None
    for i in range(GAUGES_KEPT + 5):
        out = v.gauge(asset=f"g{i}", crop=None, t=3.0, **kw)
    assert len(out) == GAUGES_KEPT == 40 and out[0]["asset"] == "g5"


def test_audit_tail_is_reread_only_when_the_file_changes(tmp_path):
    log = tmp_path / "audit.jsonl"
    v = ConsoleViews(ViewConfig(audit_log=str(log), audit_tail_lines=2))
    assert v.audit_tail() is None                               # no file yet
    log.write_text("".join(json.dumps({"seq": i, "sim_time_s": i * 0.5, "wall_time": "w",
                                       "event": "level", "level": i}) + "\n"
                           for i in range(3)))
    out = v.audit_tail()
    assert out == [{"seq": 1, "t": 0.5, "event": "level", "detail": '{"level": 1}'},
                   {"seq": 2, "t": 1.0, "event": "level", "detail": '{"level": 2}'}]
    assert v.audit_tail() is None                               # unchanged
    with open(log, "a") as f:
        f.write(json.dumps({"seq": 3, "event": "estop"}) + "\n")
    assert [r["seq"] for r in v.audit_tail()] == [2, 3]
    assert ConsoleViews().audit_tail() is None                  # no audit_log


# ----------------------------------------------------------------------------- task, plans
def test_task_section_through_start_feedback_status_and_result():
    v = ConsoleViews()
    t = v.task_started("p1", "op", [("navigate_to", {"place": "a"}), ("dock", {})])
    assert t == {"plan_id": "p1", "running": True, "user": "op",
                 "steps": [{"skill": "navigate_to", "args": {"place": "a"}},
                           {"skill": "dock", "args": {}}]}
    t = v.task_feedback(0, 2, "moving" * 30, "navigate_to", 1, "arrived")
    assert (t["step"], t["step_count"], len(t["state"])) == (1, 2, 120)
    assert t["current"] == {"skill": "navigate_to", "outcome": "succeeded",
                            "message": "arrived"}
    t, event = v.task_status(json.dumps({"state": "finished", "k": 1}))
    assert not t["running"] and t["status"] == {"state": "finished", "k": 1}
    assert event == 'task: {"state": "finished", "k": 1}'
    with pytest.raises(ValueError, match="JSON object"):
        v.task_status("[1, 2]")
    step = result_step("read_gauge", {"asset": "pg1"}, 2, "m" * 300, 12.34,
                       [("pg1", 3.14159, "bar", 0.9, True)])
    assert step == {"skill": "read_gauge", "args": {"asset": "pg1"}, "outcome": "failed",
                    "message": "m" * 200, "duration_s": 12.3,
                    "readings": [{"asset": "pg1", "value": 3.142, "unit": "bar",
                                  "confidence": 0.9, "valid": True}]}
    t = v.task_result(1, "gauge unreadable", [step])
    assert t["result"]["code"] == "failed" and t["result"]["steps"] == [step]
    assert v.task_result(99, "", [])["result"]["code"] == "99"


def test_confirmation_and_kept_plans():
    c = confirmation_section(json.dumps({"plan_id": "p" * 80, "question": "open valve 3?",
                                         "role_required": "supervisor", "x": 1}))
    assert c == {"plan_id": "p" * 64, "question": "open valve 3?",
                 "role_required": "supervisor"}
    with pytest.raises(ValueError):
        confirmation_section('"text"')
    v = ConsoleViews()
    for i in range(PLANS_KEPT + 1):
        v.keep_plan(f"p{i}", i)
    assert v.plan("p0") is None and v.plan("p1") == 1 and v.plan(f"p{PLANS_KEPT}") == PLANS_KEPT


# ----------------------------------------------------------------------------- the bridge
class RecordingPort:
    """Test double of the node's primitives: records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.ns = [100]
        self.trigger_result: tuple[bool, str] | Exception = (True, "latched")
        self.mode_result: tuple[bool, str] | Exception = (True, "")
        self.reset_result: tuple[bool, str] | Exception = (True, "reset")
        self.send_result: object = "handle-1"

    def named(self, name: str) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == name]

    def _answer(self, result):
        if isinstance(result, Exception):
            raise result
        return result

    def now_ns(self) -> int:
        return self.ns.pop(0) if len(self.ns) > 1 else self.ns[0]

    def trigger(self, service):
        self.calls.append(("trigger", service))
        return self._answer(self.trigger_result)

    def pulse_estop(self):
        self.calls.append(("pulse_estop",))

    def safety_request(self, request, mode, authority):
        self.calls.append(("safety_request", request, mode, authority))
        return self._answer(self.reset_result if request == "reset" else self.mode_result)

    def publish_twist(self, v, w, deadman, stamp_ns):
        self.calls.append(("twist", v, w, deadman, stamp_ns))

    def publish_task_command(self, confirm, request_id, text, role, in_reply_to, authority):
        self.calls.append(("task_command", confirm, request_id, text, role, in_reply_to,
                           authority))

    def send_plan(self, plan, confirmed, authority):
        self.calls.append(("send_plan", plan, confirmed, authority))
        return self._answer(self.send_result)

    def watch_plan(self, handle):
        self.calls.append(("watch_plan", handle))

    def cancel_plan(self, handle):
        self.calls.append(("cancel_plan", handle))


KEY = bytes(range(32))
T0 = 1_700_000_000.0


@pytest.fixture()
def link():
    port = RecordingPort()
    audit: list[tuple] = []
    b = ConsoleBridge(port, ConsoleViews(), lambda event, **f: audit.append((event, f)),
                      Authority(KEY), wall=lambda: T0)
    b.server = ConsoleServer(b, UserStore([User("sup", "supervisor"), User("op", "operator")]))
    return b, port, audit


def test_estop_stops_teleop_and_falls_back_to_the_estop_input(link):
    b, port, audit = link
    assert b.estop("op") == (True, "latched")
    assert port.named("twist") == [(0.0, 0.0, False, 100)] and port.named("pulse_estop") == []
    port.trigger_result = Unavailable("emergency stop service /safety/trigger_estop not "
                                      "available")
    ok, msg = b.estop("op")
    assert ok and msg == ("emergency stop service /safety/trigger_estop not available; "
                          "sent on safety/estop instead")
    port.trigger_result = (False, "refused")
    assert b.estop("op") == (True, "refused; sent on safety/estop instead")
    assert len(port.named("pulse_estop")) == 2
    assert [a[0] for a in audit] == ["estop"] * 3 and audit[1][1]["result"] == msg


def test_reset_and_mode(link):
    b, port, audit = link
    port.reset_result = (False, "latched 0.81 s ago")
    assert b.reset("sup") == (False, "latched 0.81 s ago")
    request, mode, token = port.named("safety_request")[-1]
    assert (request, mode) == ("reset", "")
    a = verify(KEY, token, T0 + 1.0, "reset", "reset")          # signed for the user
    assert (a.user, a.role) == ("sup", "supervisor")
    port.reset_result = Unavailable("no answer within 3 s")
    assert b.reset("sup") == (False, "no answer within 3 s")
    assert audit[-1] == ("reset", {"user": "sup", "ok": False,
                                   "message": "no answer within 3 s"})
    assert b.set_mode("manual", "op") == (True, "mode manual")
    assert b.views.mode_requested == "manual"
    a = verify(KEY, port.named("safety_request")[-1][2], T0, "mode", "manual")
    assert (a.user, a.role) == ("op", "operator")
    b.reset("nobody")                                          # unknown user: not signed
    assert port.named("safety_request")[-1] == ("reset", "", "")
    assert audit[-2][0] == "unsigned" and "no logged-in user" in audit[-2][1]["reason"]
    port.mode_result = (False, "estop latched")
    assert b.set_mode("automatic", "op") == (False, "mode automatic refused: estop latched")
    assert b.views.mode_requested == "manual"
    n = len(audit)
    port.mode_result = Unavailable("safety request service /safety/request not available")
    assert b.set_mode("manual", "op") == (False, "safety request service /safety/request not "
                                                 "available")
    assert len(audit) == n                                     # no answer: not audited


def test_teleop_stamps_increase_and_a_stop_is_always_sent(link):
    b, port, _ = link
    port.ns = [100, 100, 150, 150, 200, 200]
    b.teleop(0.3, 0.1)
    b.teleop(0.3, 0.1)                 # the same stamp: dropped (the supervisor would)
    b.teleop(0.4, 0.0)
    b.teleop_stop()                    # not newer: sent without a stamp
    b.teleop_stop()
    assert port.named("twist") == [(0.3, 0.1, True, 100), (0.4, 0.0, True, 150),
                                   (0.0, 0.0, False, None), (0.0, 0.0, False, 200)]


def test_plan_is_shown_kept_run_and_finished(link):
    b, port, audit = link
    assert b.run_plan("p1", True, "sup") == (False, "plan p1 not received from the planner")
    b.on_plan("msg-p1", "p1", "ok", iter([("operate_valve", {"asset": "v3",
                                                             "action": "open"})]),
              question="", reason="", explanation="e", instruction="open v3", role="operator")
    shown = b.server.plans.get("p1")
    assert shown["high_risk"] and shown["steps"][0]["args"]["asset"] == "v3"
    port.send_result = Unavailable("the executor refused the plan (another plan running?)")
    assert b.run_plan("p1", True, "sup") == (False, "the executor refused the plan "
                                                    "(another plan running?)")
    assert b.server.store.get("task") is None and b.goal is None
    assert b.cancel("sup") == (False, "no plan running from this console")
    port.send_result = "handle-1"
    assert b.run_plan("p1", 1, "sup") == (True, "plan p1 started")
    plan, confirmed, token = port.named("send_plan")[-1]
    assert (plan, confirmed) == ("msg-p1", True)
    a = verify(KEY, token, T0, "confirm", "p1",        # bound to the kept plan's steps
               plan_digest([("operate_valve", {"asset": "v3", "action": "open"})]))
    assert (a.user, a.role) == ("sup", "supervisor")
    assert port.named("watch_plan") == [("handle-1",)]
    assert b.server.store.get("task")["steps"] == [{"skill": "operate_valve",
                                                    "args": {"asset": "v3", "action": "open"}}]
    b.on_feedback(0, 1, "operating", "operate_valve", 0, "")
    assert b.server.store.get("task")["current"]["outcome"] == "pending"
    assert b.cancel("sup") == (True, "cancel requested")
    assert port.named("cancel_plan") == [("handle-1",)]
    b.show("confirmation", {"plan_id": "p1"})
    b.on_result(3, "canceled by the operator", [])
    assert b.goal is None and b.server.store.get("confirmation") is None
    assert b.server.store.get("task")["result"]["code"] == "canceled"
    assert [a[0] for a in audit] == ["run", "cancel"]


def test_instruct_confirm_and_task_status(link):
    b, port, audit = link
    b.server.plans.request("r1", "op", "operator", "go to the yard", 0.0)
    b.instruct("r1", "go to the yard", "operator", "")
    b.on_confirmation_request('{"plan_id": "p9p9", "question": "close v1?", '
                              '"plan_digest": "abc"}')
    assert b.server.store.get("confirmation")["question"] == "close v1?"
    assert b.confirm("p9p9", False, "sup") == (True, "answered no")
    (c1, c2) = port.named("task_command")
    assert c1[:5] == (False, "r1", "go to the yard", "operator", "")
    a = verify(KEY, c1[5], T0, "command", "r1", command_digest("go to the yard"))
    assert (a.user, a.role) == ("op", "operator")
    assert c2[:5] == (True, "confirm-p9p9", "no", "supervisor", "p9p9")
    assert verify(KEY, c2[5], T0, "confirm", "p9p9", "abc").user == "sup"
    assert b.server.store.get("confirmation") is None
    assert audit[-1] == ("confirm", {"user": "sup", "plan_id": "p9p9", "answer": "no"})
    b.on_task_status('{"state": "running"}')
    assert b.server.store.get("task")["status"] == {"state": "running"}
    assert b.server.store.get("events")[-1]["text"] == 'task: {"state": "running"}'
    b.show("robot", None)                                        # nothing new: not stored
    assert b.server.store.get("robot") is None


def test_console_audit_logs_a_line_and_appends_json(tmp_path):
    lines: list[str] = []
    a = ConsoleAudit(str(tmp_path / "console.jsonl"), lines.append, lambda: 12.5)
    a("estop", user="op", result="latched")
    assert lines == ["console: estop user=op result=latched"]
    a.log.close()
    rec = json.loads((tmp_path / "console.jsonl").read_text().splitlines()[0])
    assert (rec["event"], rec["sim_time_s"], rec["user"], rec["result"]) == (
        "estop", 12.5, "op", "latched")
    ConsoleAudit("", lines.append, lambda: 0.0)("login", user="v")   # log line only
    assert lines[-1] == "console: login user=v"


def test_log_throttle_one_warning_per_kind_per_period():
    out: list[str] = []
    now = [0.0]
    w = LogThrottle(out.append, 5.0, clock=lambda: now[0])
    w("a", "first")
    w("a", "again")
    w("b", "other kind")
    now[0] = 5.0
    w("a", "later")

    def bad(msg):
        raise KeyError(msg)
    w.guard("odom", bad, "x")
    w.guard("odom", bad, "y")                                  # throttled
    w.guard("plan", lambda m: out.append(f"ok {m}"), "z")
    assert out == ["first", "other kind", "later", "odom: message ignored: KeyError: 'x'",
                   "ok z"]


def test_server_from_the_node_parameters_and_its_summary():
    from sitebot.site.bundle import load_bundle
    srv = ConsoleServer.from_params(None, DEFAULTS, load_bundle("substation"))
    assert len(srv.users) == 3 and srv.users.authenticate("viewer", "viewer-demo-1")
    assert srv.map_data["site"] == "substation" and srv.config.port == 8080
    assert srv.teleop.timeout_s == DEADMAN_TIMEOUT_S and srv.teleop.max_linear_mps == 0.5
    assert srv.summary() == (False, "server not started", {})
    srv.port = 8080
    ok, text, counts = srv.summary()
    assert ok and text == "http://127.0.0.1:8080/, 0 connection(s), teleop idle"
    assert counts["teleop_stops"] == 0
