"""web_console: the operators' browser console, a thin rclpy bridge to
:class:`sitebot.console.server.ConsoleServer` (which has the HTTP/WebSocket server, the
authentication, validation, rate limits and the teleop deadman; no rclpy).

Threads: the rclpy executor spins in a background thread; the asyncio server runs in the
main thread.  Callbacks write JSON-able sections into the server's state store; commands
from the browser call the bridge methods below (services and actions are awaited in worker
threads with a timeout, never in the executor).

Subscribes: ``odometry/filtered`` (fallback ``odom`` composed with the spawn pose),
``plan`` (nav_msgs/Path), ``people``, ``safety/state``, ``camera/color/image_raw`` (JPEG at
``camera_rate_hz``), ``gauges`` (with crops), ``task/status``, ``task/plan``,
``task/confirmation_request``.  Publishes: ``cmd_vel_in`` + ``teleop/deadman`` (hold-to-run
teleop), ``task/command``, ``task/confirm``, ``safety/estop`` (only as the fallback of the
``safety/trigger_estop`` service), ``/diagnostics``.  Calls: ``safety/trigger_estop``,
``safety/reset``, ``<supervisor_node>/set_parameters`` (mode), ``execute_plan`` (action).
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import threading
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry, Path as PathMsg
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.action import ActionClient
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from sitebot_interfaces.action import ExecutePlan
from sitebot_interfaces.msg import (GaugeReading, SafetyState, TaskCommand, TaskPlan,
                                    TrackedPersonArray)

from sitebot.console.auth import load_users
from sitebot.console.server import Bridge, ConsoleServer, ServerConfig
from sitebot.console.state import (LEVEL_NAMES, MODE_NAMES, encode_jpeg, map_payload, plan_dict,
                             r3, tail_jsonl)
from sitebot.errors import SitebotError
from sitebot.config.params import ParamSpec, ParamType
from sitebot.paths import data_path
from sitebot.safety.audit import AuditLog
from sitebot.sim.world import load_world
from sitebot.nodes import convert
from sitebot.nodes.common import QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING

SCHEMA = (
    ParamSpec("host", S, "127.0.0.1", "address the console listens on (127.0.0.1: this "
              "machine only; put a TLS reverse proxy in front for remote use)", read_only=True),
    ParamSpec("port", I, 8080, "HTTP + WebSocket port (0 = any free port)", 0, 65535,
              read_only=True),
    ParamSpec("users_file", S, "", "users YAML (salted PBKDF2 hashes); '' = the package's "
              "config/console_users.yaml (demo users: replace them on a site)", read_only=True),
    ParamSpec("world", S, "substation", "world whose site map, zones and spawn are shown",
              read_only=True),
    ParamSpec("spawn", S, "robot1", "spawn pose composed with odom when odometry/filtered "
              "is absent", read_only=True),
    ParamSpec("audit_log", S, "", "the safety supervisor's audit log (JSON lines) whose "
              "tail is shown; '' = none"),
    ParamSpec("console_log", S, "", "the console's own audit log of operator actions (JSON "
              "lines, appended); '' = ROS log only", read_only=True),
    ParamSpec("audit_tail_lines", I, 15, "audit lines shown", 1, 200),
    ParamSpec("state_rate_hz", F, 10.0, "state updates sent to each browser", 1.0, 30.0,
              unit="Hz", read_only=True),
    ParamSpec("camera_rate_hz", F, 2.0, "camera frames encoded and sent", 0.1, 10.0,
              unit="Hz", read_only=True),
    ParamSpec("camera_max_width", I, 480, "camera frames are scaled down to this width", 80,
              1920, unit="px", read_only=True),
    ParamSpec("jpeg_quality", I, 70, "JPEG quality of camera frames and gauge crops", 10, 95),
    ParamSpec("max_linear_mps", F, 0.5, "teleop |v| is clamped to this (the supervisor's "
              "manual limit applies after it)", 0.0, 2.0, unit="m/s", read_only=True),
    ParamSpec("max_angular_radps", F, 1.0, "teleop |w| is clamped to this", 0.0, 3.0,
              unit="rad/s", read_only=True),
    ParamSpec("deadman_timeout_s", F, 0.3, "no teleop command from the browser for this long:"
              " stop (zero twist, deadman released)", 0.05, 2.0, unit="s", read_only=True),
    ParamSpec("command_rate_hz", F, 25.0, "incoming commands per browser connection "
              "(token bucket rate; e-stop and teleop release never refused)", 1.0, 200.0,
              unit="Hz", read_only=True),
    ParamSpec("command_burst", F, 40.0, "token bucket size", 1.0, 1000.0, read_only=True),
    ParamSpec("max_message_bytes", I, 4096, "larger WebSocket messages are rejected", 256,
              1048576, unit="B", read_only=True),
    ParamSpec("login_max_failures", I, 5, "failed logins per address or user name in the "
              "window before further attempts are refused", 1, 1000, read_only=True),
    ParamSpec("login_window_s", F, 60.0, "failed-login window", 1.0, 86400.0, unit="s",
              read_only=True),
    ParamSpec("check_origin", B, True, "refuse WebSocket connections from other origins "
              "(cross-site pages)", read_only=True),
    ParamSpec("supervisor_node", S, "safety_supervisor", "the safety supervisor's node name "
              "(its set_parameters service sets the mode)", read_only=True),
    ParamSpec("service_timeout_s", F, 3.0, "waiting for a service or action answer (wall)",
              0.1, 60.0, unit="s"),
    ParamSpec("pose_timeout_s", F, 1.0, "odometry/filtered older than this: the odom pose "
              "is shown", 0.1, 30.0, unit="s"),
    ParamSpec("footprint_radius_m", F, 0.4, "robot footprint radius drawn (the "
              "supervisor's footprint_radius_m)", 0.05, 3.0, unit="m"),
    ParamSpec("base_frame", S, "base_footprint", "robot base frame"),
    ParamSpec("map_frame", S, "map", "map frame"),
)

_YES_NO = {True: "yes", False: "no"}
_RESULT_CODES = {0: "succeeded", 1: "failed", 2: "aborted", 3: "canceled", 4: "rejected"}
_OUTCOMES = {0: "pending", 1: "succeeded", 2: "failed", 3: "skipped", 4: "declined",
             5: "canceled"}


def _wait(future, timeout_s: float) -> Any:
    """Wait (in a worker thread) for an rclpy future resolved by the executor thread."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout_s):
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    return future.result()


class WebConsoleNode(Node, Bridge):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("web_console", **kwargs)
        self.p = declare_schema(self, SCHEMA)
        p = self.p
        self.world = load_world(p["world"])
        sp = self.world.spawn_poses.get(p["spawn"])
        self.spawn = (sp.x, sp.y, sp.yaw) if sp is not None else (0.0, 0.0, 0.0)
        users_path = p["users_file"] or str(data_path("config") / "console_users.yaml")
        self.users = load_users(users_path)
        self.server: ConsoleServer | None = None
        self.lock = threading.Lock()
        self.filtered: tuple[float, float, float, float] | None = None   # x, y, yaw, t
        self.pose: tuple[float, float, float] | None = None
        self.twist = (0.0, 0.0)
        self.mode_requested: str | None = None
        self.last_cmd_ns = -1
        self.plan_msgs: dict[str, TaskPlan] = {}
        self.goal_handle = None
        self.task: dict = {}
        self.gauges: dict[str, dict] = {}
        self.gauge_crop_at: dict[str, float] = {}
        self.camera_at = -math.inf
        self.audit_sig: tuple | None = None
        self.console_audit = AuditLog(p["console_log"]) if p["console_log"] else None
        self.warned: dict[str, float] = {}

        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self.deadman_pub = self.create_publisher(Bool, "teleop/deadman", QOS_COMMAND)
        self.estop_pub = self.create_publisher(Bool, "safety/estop", QOS_COMMAND)
        self.command_pub = self.create_publisher(TaskCommand, "task/command", QOS_COMMAND)
        self.confirm_pub = self.create_publisher(TaskCommand, "task/confirm", QOS_COMMAND)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(Odometry, "odometry/filtered", self.on_filtered, QOS_STATE)
        self.create_subscription(Odometry, "odom", self.on_odom, QOS_STATE)
        self.create_subscription(PathMsg, "plan", self.on_path, QOS_LATCHED)
        self.create_subscription(TrackedPersonArray, "people", self.on_people, QOS_SENSOR)
        self.create_subscription(SafetyState, "safety/state", self.on_safety, QOS_STATE)
        self.create_subscription(Image, "camera/color/image_raw", self.on_image, QOS_SENSOR)
        self.create_subscription(GaugeReading, "gauges", self.on_gauge, QOS_SENSOR)
        self.create_subscription(String, "task/status", self.on_task_status, QOS_STATE)
        self.create_subscription(TaskPlan, "task/plan", self.on_plan, QOS_COMMAND)
        self.create_subscription(String, "task/confirmation_request", self.on_confirm_request,
                                 QOS_COMMAND)
        self.estop_cli = self.create_client(Trigger, "safety/trigger_estop")
        self.reset_cli = self.create_client(Trigger, "safety/reset")
        self.param_cli = self.create_client(SetParameters,
                                            f"{p['supervisor_node']}/set_parameters")
        self.exec_cli = ActionClient(self, ExecutePlan, "execute_plan")
        self.create_timer(1.0, self.on_slow_timer)

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def warn(self, key: str, text: str, period_s: float = 5.0) -> None:
        t = time.monotonic()
        if t - self.warned.get(key, -math.inf) >= period_s:
            self.warned[key] = t
            self.get_logger().warning(text)

    def _guard(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a malformed message never kills the node
            self.warn(what, f"{what}: message ignored: {type(e).__name__}: {e}")

    def _set(self, name: str, payload: Any) -> None:
        if self.server is not None:
            self.server.store.set(name, payload)

    def audit_write(self, event: str, **fields: Any) -> None:
        self.get_logger().info(f"console: {event} " + " ".join(f"{k}={v}"
                                                               for k, v in fields.items()))
        if self.console_audit is not None:
            self.console_audit.write(event, self.now(), **fields)

    # ------------------------------------------------------------------ inputs
    def on_filtered(self, msg: Odometry) -> None:
        self._guard("odometry/filtered", self._filtered, msg)

    def _filtered(self, msg: Odometry) -> None:
        x, y, yaw = convert.planar_pose(msg.pose.pose)
        if all(map(math.isfinite, (x, y, yaw))):
            self.filtered = (x, y, yaw, self.now())
            self._publish_robot(x, y, yaw, "filter")

    def on_odom(self, msg: Odometry) -> None:
        self._guard("odom", self._odom, msg)

    def _odom(self, msg: Odometry) -> None:
        tw = msg.twist.twist
        if math.isfinite(tw.linear.x) and math.isfinite(tw.angular.z):
            self.twist = (tw.linear.x, tw.angular.z)
        f = self.filtered
        if f is not None and self.now() - f[3] <= self.p["pose_timeout_s"]:
            return
        ox, oy, oyaw = convert.planar_pose(msg.pose.pose)
        sx, sy, syaw = self.spawn
        c, s = math.cos(syaw), math.sin(syaw)
        x, y = sx + c * ox - s * oy, sy + s * ox + c * oy
        yaw = math.remainder(syaw + oyaw, math.tau)
        if all(map(math.isfinite, (x, y, yaw))):
            self._publish_robot(x, y, yaw, "odom")

    def _publish_robot(self, x: float, y: float, yaw: float, source: str) -> None:
        self.pose = (x, y, yaw)
        self._set("robot", {"x": r3(x), "y": r3(y), "yaw": r3(yaw), "v": r3(self.twist[0]),
                            "w": r3(self.twist[1]), "source": source, "t": r3(self.now(), 2)})

    def on_path(self, msg: PathMsg) -> None:
        self._guard("plan", self._path, msg)

    def _path(self, msg: PathMsg) -> None:
        pts = [(ps.pose.position.x, ps.pose.position.y) for ps in msg.poses]
        step = max(1, len(pts) // 300)
        pts = pts[::step] + (pts[-1:] if pts and (len(pts) - 1) % step else [])
        self._set("path", {"frame": msg.header.frame_id,
                           "points": [[r3(x, 2), r3(y, 2)] for x, y in pts
                                      if math.isfinite(x) and math.isfinite(y)]})

    def on_people(self, msg: TrackedPersonArray) -> None:
        self._guard("people", self._people, msg)

    def _people(self, msg: TrackedPersonArray) -> None:
        in_map = msg.header.frame_id == self.p["map_frame"]
        if not in_map and self.pose is None:
            return
        out = []
        for person in msg.people[:50]:
            px, py = person.pose.pose.position.x, person.pose.pose.position.y
            vx, vy = person.twist.twist.linear.x, person.twist.twist.linear.y
            if not in_map:
                x0, y0, yaw = self.pose
                c, s = math.cos(yaw), math.sin(yaw)
                px, py = x0 + c * px - s * py, y0 + s * px + c * py
                vx, vy = c * vx - s * vy, s * vx + c * vy
            if math.isfinite(px) and math.isfinite(py):
                out.append({"id": int(person.id), "x": r3(px, 2), "y": r3(py, 2),
                            "vx": r3(vx, 2), "vy": r3(vy, 2)})
        self._set("people", out)

    def on_safety(self, msg: SafetyState) -> None:
        self._guard("safety/state", self._safety, msg)

    def _safety(self, msg: SafetyState) -> None:
        req = float(msg.required_separation_m)
        field = self.p["footprint_radius_m"] + (req if math.isfinite(req) else 0.0)
        self._set("safety", {
            "level": int(msg.level), "level_name": LEVEL_NAMES.get(msg.level, "unknown"),
            "mode": MODE_NAMES.get(msg.mode, "unknown"),
            "mode_requested": self.mode_requested or MODE_NAMES.get(msg.mode, "unknown"),
            "estop": bool(msg.estop_latched), "stop_category": int(msg.stop_category),
            "speed_scale": r3(msg.speed_scale), "max_speed": r3(msg.max_linear_speed_mps),
            "closest": r3(msg.closest_separation_m), "required": r3(req),
            "field_radius": r3(field), "reasons": list(msg.reasons)[:8],
            "message": msg.message[:300], "t": r3(self.now(), 2)})

    def on_image(self, msg: Image) -> None:
        t = time.monotonic()
        if self.server is None or t - self.camera_at < 1.0 / self.p["camera_rate_hz"]:
            return
        self.camera_at = t
        self._guard("camera/color/image_raw", self._image, msg)

    def _image(self, msg: Image) -> None:
        arr = convert.image_to_bgr(msg)
        if arr is None:
            self.warn("image", f"camera image with encoding {msg.encoding!r} "
                               f"{msg.width}x{msg.height} not shown (rgb8, bgr8, mono8)")
            return
        jpeg = encode_jpeg(arr, self.p["jpeg_quality"], self.p["camera_max_width"])
        if jpeg:
            self._set("camera", {"jpeg": jpeg, "width": int(msg.width),
                                 "height": int(msg.height),
                                 "stamp": r3(convert.from_time(msg.header.stamp), 2)})

    def on_gauge(self, msg: GaugeReading) -> None:
        self._guard("gauges", self._gauge, msg)

    def _gauge(self, msg: GaugeReading) -> None:
        aid = msg.asset_id[:64]
        entry = {"asset": aid, "valid": bool(msg.valid), "value": r3(msg.value),
                 "unit": msg.unit[:16], "confidence": r3(msg.confidence),
                 "failure": msg.failure_reason[:120],
                 "stamp": r3(convert.from_time(msg.header.stamp), 2)}
        t = time.monotonic()
        old = self.gauges.get(aid, {})
        entry["crop"] = old.get("crop")
        if msg.crop.width > 0 and t - self.gauge_crop_at.get(aid, -math.inf) >= 1.0:
            arr = convert.image_to_bgr(msg.crop)
            if arr is not None:
                entry["crop"] = encode_jpeg(arr, self.p["jpeg_quality"], 160)
                self.gauge_crop_at[aid] = t
        self.gauges[aid] = entry
        if len(self.gauges) > 40:
            self.gauges.pop(next(iter(self.gauges)))
        self._set("gauges", list(self.gauges.values()))

    def on_task_status(self, msg: String) -> None:
        self._guard("task/status", self._task_status, msg)

    def _task_status(self, msg: String) -> None:
        d = json.loads(msg.data)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        with self.lock:
            self.task = dict(self.task, status={k: d[k] for k in list(d)[:12]})
            if d.get("state") == "finished":
                self.task["running"] = False
            task = dict(self.task)
        self._set("task", task)
        if self.server is not None:
            self.server._event(f"task: {json.dumps(d)[:280]}")

    def on_plan(self, msg: TaskPlan) -> None:
        self._guard("task/plan", self._plan, msg)

    def _plan(self, msg: TaskPlan) -> None:
        status = {TaskPlan.STATUS_OK: "ok", TaskPlan.STATUS_CLARIFY: "clarify",
                  TaskPlan.STATUS_REFUSE: "refuse"}.get(msg.status, "unknown")
        steps = [(s.skill, dict(zip(s.arg_names, s.arg_values))) for s in msg.steps]
        self.plan_msgs[msg.plan_id] = msg
        while len(self.plan_msgs) > 50:
            self.plan_msgs.pop(next(iter(self.plan_msgs)))
        if self.server is not None:
            self.server.post_plan(plan_dict(msg.plan_id, status, steps, question=msg.question,
                                            reason=msg.reason, explanation=msg.explanation,
                                            instruction=msg.instruction, role=msg.role))

    def on_confirm_request(self, msg: String) -> None:
        self._guard("task/confirmation_request", self._confirm_request, msg)

    def _confirm_request(self, msg: String) -> None:
        d = json.loads(msg.data)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        self._set("confirmation", {"plan_id": str(d.get("plan_id", ""))[:64],
                                   "question": str(d.get("question", ""))[:300],
                                   "role_required": str(d.get("role_required", ""))[:32]})

    def on_slow_timer(self) -> None:
        self._guard("audit tail", self._audit_tail)
        self._guard("diagnostics", self._diagnostics)

    def _audit_tail(self) -> None:
        path = self.p["audit_log"]
        if not path:
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        sig = (st.st_size, st.st_mtime_ns)
        if sig == self.audit_sig:
            return
        self.audit_sig = sig
        out = []
        for rec in tail_jsonl(path, self.p["audit_tail_lines"]):
            detail = {k: v for k, v in rec.items()
                      if k not in ("seq", "sim_time_s", "wall_time", "event")}
            out.append({"seq": rec.get("seq"), "t": rec.get("sim_time_s"),
                        "event": str(rec.get("event", ""))[:60],
                        "detail": json.dumps(detail, default=str)[:240]})
        self._set("audit", out)

    def _diagnostics(self) -> None:
        srv = self.server
        d = DiagnosticStatus(name=f"{self.get_name()}: web console", hardware_id="web_console")
        if srv is None or srv.port is None:
            d.level, d.message = DiagnosticStatus.WARN, "server not started"
        else:
            d.level = DiagnosticStatus.OK
            d.message = (f"http://{srv.config.host}:{srv.port}/, {len(srv.sessions)} "
                         f"connection(s), teleop {'held' if srv.teleop.active else 'idle'}")
            d.values = [KeyValue(key=k, value=str(v)) for k, v in srv.counts.items()]
        arr = DiagnosticArray(status=[d])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    # ------------------------------------------------------------------ Bridge
    def _trigger(self, client, what: str) -> tuple[bool, str]:
        if not client.wait_for_service(timeout_sec=min(1.0, self.p["service_timeout_s"])):
            return False, f"{what} service {client.srv_name} not available"
        res = _wait(client.call_async(Trigger.Request()), self.p["service_timeout_s"])
        return bool(res.success), res.message

    def estop(self, user: str) -> tuple[bool, str]:
        self.teleop_stop()
        try:
            ok, msg = self._trigger(self.estop_cli, "emergency stop")
        except TimeoutError as e:
            ok, msg = False, str(e)
        if not ok:
            # fallback: the e-stop input as a pressed-then-released button (latched by the
            # supervisor; released so that a reset is not refused for a held input)
            self.estop_pub.publish(Bool(data=True))
            self.estop_pub.publish(Bool(data=False))
            msg = f"{msg}; sent on safety/estop instead"
        self.audit_write("estop", user=user, result=msg)
        return True, msg

    def reset(self, user: str) -> tuple[bool, str]:
        try:
            ok, msg = self._trigger(self.reset_cli, "reset")
        except TimeoutError as e:
            ok, msg = False, str(e)
        self.audit_write("reset", user=user, ok=ok, message=msg)
        return ok, msg

    def set_mode(self, mode: str, user: str) -> tuple[bool, str]:
        if not self.param_cli.wait_for_service(timeout_sec=min(1.0,
                                                               self.p["service_timeout_s"])):
            return False, f"{self.param_cli.srv_name} not available"
        req = SetParameters.Request(parameters=[Parameter(
            name="mode", value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                              string_value=mode))])
        try:
            res = _wait(self.param_cli.call_async(req), self.p["service_timeout_s"])
        except TimeoutError as e:
            return False, str(e)
        r = res.results[0] if res.results else None
        ok = bool(r and r.successful)
        if ok:
            self.mode_requested = mode
        self.audit_write("mode", user=user, mode=mode, ok=ok)
        return ok, f"mode {mode}" if ok else f"mode {mode} refused: {r.reason if r else '?'}"

    def teleop(self, v: float, w: float) -> None:
        now = self.get_clock().now()
        if now.nanoseconds <= self.last_cmd_ns:      # the supervisor drops duplicate stamps
            return
        self.last_cmd_ns = now.nanoseconds
        self.deadman_pub.publish(Bool(data=True))
        m = TwistStamped()
        m.header.stamp = now.to_msg()
        m.header.frame_id = self.p["base_frame"]
        m.twist.linear.x, m.twist.angular.z = float(v), float(w)
        self.cmd_pub.publish(m)

    def teleop_stop(self) -> None:
        now = self.get_clock().now()
        m = TwistStamped()
        if now.nanoseconds > self.last_cmd_ns:
            self.last_cmd_ns = now.nanoseconds
            m.header.stamp = now.to_msg()
        m.header.frame_id = self.p["base_frame"]
        self.cmd_pub.publish(m)
        self.deadman_pub.publish(Bool(data=False))

    def instruct(self, request_id: str, text: str, role: str, in_reply_to: str) -> None:
        m = TaskCommand(request_id=request_id, text=text, role=role, in_reply_to=in_reply_to)
        m.header.stamp = self.get_clock().now().to_msg()
        self.command_pub.publish(m)

    def run_plan(self, plan_id: str, confirmed: bool, user: str) -> tuple[bool, str]:
        msg = self.plan_msgs.get(plan_id)
        if msg is None:
            return False, f"plan {plan_id} not received from the planner"
        if not self.exec_cli.wait_for_server(timeout_sec=self.p["service_timeout_s"]):
            return False, "the executor's execute_plan action is not available"
        goal = ExecutePlan.Goal(plan=msg, confirmed=bool(confirmed))
        try:
            handle = _wait(self.exec_cli.send_goal_async(goal, feedback_callback=self._feedback),
                           self.p["service_timeout_s"])
        except TimeoutError as e:
            return False, f"execute_plan: {e}"
        if not handle.accepted:
            return False, "the executor refused the plan (another plan running?)"
        self.goal_handle = handle
        with self.lock:
            self.task = {"plan_id": plan_id, "running": True, "user": user,
                         "steps": [{"skill": s.skill,
                                    "args": dict(zip(s.arg_names, s.arg_values))}
                                   for s in msg.steps]}
            task = dict(self.task)
        self._set("task", task)
        handle.get_result_async().add_done_callback(lambda f: self._guard(
            "execute_plan result", self._result, plan_id, f))
        self.audit_write("run", user=user, plan_id=plan_id, confirmed=confirmed)
        return True, f"plan {plan_id} started"

    def _feedback(self, fb_msg) -> None:
        fb = fb_msg.feedback
        cur = fb.current
        with self.lock:
            self.task = dict(self.task, step=int(fb.step_index) + 1, step_count=int(fb.step_count),
                             state=fb.state[:120],
                             current={"skill": cur.step.skill,
                                      "outcome": _OUTCOMES.get(cur.outcome, "?"),
                                      "message": cur.message[:200]})
            task = dict(self.task)
        self._set("task", task)

    def _result(self, plan_id: str, fut) -> None:
        res = fut.result().result
        steps = []
        for s in res.steps:
            steps.append({"skill": s.step.skill,
                          "args": dict(zip(s.step.arg_names, s.step.arg_values)),
                          "outcome": _OUTCOMES.get(s.outcome, "?"), "message": s.message[:200],
                          "duration_s": r3(s.duration_s, 1),
                          "readings": [{"asset": r.asset_id, "value": r3(r.value),
                                        "unit": r.unit, "confidence": r3(r.confidence),
                                        "valid": bool(r.valid)} for r in s.readings]})
        with self.lock:
            self.task = dict(self.task, running=False,
                             result={"code": _RESULT_CODES.get(res.code, str(res.code)),
                                     "reason": res.reason[:300], "steps": steps})
            task = dict(self.task)
        self.goal_handle = None
        self._set("task", task)
        self._set("confirmation", None)

    def cancel(self, user: str) -> tuple[bool, str]:
        h = self.goal_handle
        if h is None:
            return False, "no plan running from this console"
        h.cancel_goal_async()
        self.audit_write("cancel", user=user)
        return True, "cancel requested"

    def confirm(self, plan_id: str, yes: bool, user: str) -> tuple[bool, str]:
        m = TaskCommand(request_id=f"confirm-{plan_id}"[:64], text=_YES_NO[yes],
                        role="supervisor", in_reply_to=plan_id)
        m.header.stamp = self.get_clock().now().to_msg()
        self.confirm_pub.publish(m)
        self._set("confirmation", None)
        self.audit_write("confirm", user=user, plan_id=plan_id, answer=_YES_NO[yes])
        return True, f"answered {_YES_NO[yes]}"


def server_config(p: dict) -> ServerConfig:
    return ServerConfig(
        host=p["host"], port=p["port"], state_rate_hz=p["state_rate_hz"],
        camera_rate_hz=p["camera_rate_hz"], max_linear_mps=p["max_linear_mps"],
        max_angular_radps=p["max_angular_radps"], deadman_timeout_s=p["deadman_timeout_s"],
        command_rate_hz=p["command_rate_hz"], command_burst=p["command_burst"],
        max_message_bytes=p["max_message_bytes"], login_max_failures=p["login_max_failures"],
        login_window_s=p["login_window_s"], check_origin=p["check_origin"])


def main(args: list[str] | None = None) -> int:
    """Run the node: rclpy in a background thread, the web server in this one."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node: WebConsoleNode | None = None
    executor = None
    spin_thread = None
    try:
        node = WebConsoleNode()
        log = node.get_logger()
        server = ConsoleServer(
            node, node.users, server_config(node.p), map_data=map_payload(node.world),
            log=lambda level, text: getattr(log, "warning" if level == "warning" else
                                            ("error" if level == "error" else "info"))(text),
            audit=node.audit_write)
        node.server = server
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)

        def spin() -> None:
            try:
                executor.spin()
            except (ExternalShutdownException, rclpy.executors.ShutdownException):
                pass
            except Exception as e:  # noqa: BLE001
                log.error(f"executor stopped: {type(e).__name__}: {e}")
            finally:
                server.stop()
        spin_thread = threading.Thread(target=spin, name="rclpy-executor", daemon=True)
        spin_thread.start()

        async def serve() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
            await server.run(stop)
        asyncio.run(serve())
        return 0
    except KeyboardInterrupt:
        return 0
    except SitebotError as e:
        print(f"[ERROR] {e}", flush=True)
        return 2
    except OSError as e:                       # e.g. the port is taken
        print(f"[ERROR] web_console: {e}", flush=True)
        return 2
    finally:
        if node is not None:
            try:
                node.teleop_stop()
            except Exception:  # noqa: BLE001
                pass
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)      # spin() returns
        if spin_thread is not None:
            spin_thread.join(timeout=3.0)
        if node is not None and (spin_thread is None or not spin_thread.is_alive()):
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
