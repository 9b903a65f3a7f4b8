"""web_console: the operators' browser console; rclpy plumbing for the console core (no
rclpy): :mod:`~sitebot.console.server` (HTTP/WebSocket, logins, validation, rate limits, the
teleop deadman), :mod:`~sitebot.console.views` (messages shaped into the page's sections),
:mod:`~sitebot.console.bridge` (the commands' rules over this node's primitives), parameters
in :mod:`sitebot.console.config`. The executor spins in a background thread, the asyncio
server in the main thread; services and actions are awaited in its worker threads.
Subscribes: ``odometry/filtered`` (fallback ``odom`` composed with the initial pose), ``plan``,
``people``, ``safety/state``, ``camera/color/image_raw``, ``gauges``, ``task/status``,
``task/plan``, ``task/confirmation_request``, ``survey/status``.  Publishes: ``cmd_vel_in`` +
``teleop/deadman`` (hold-to-run), ``task/command``, ``task/confirm``, ``safety/estop``
(fallback of the ``safety/trigger_estop`` service), ``/diagnostics``.  Calls:
``safety/trigger_estop``, ``safety/request`` (reset, mode), ``survey/start``, ``survey/stop``,
``execute_plan`` (action); signed with the site key of ``authority_key_file`` where a user
acts (:mod:`sitebot.console.bridge`).  The server edits the bundle folder ``site`` names.
"""
from __future__ import annotations

import threading
import time
from contextlib import suppress
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from rclpy.action import ActionClient
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from sitebot.console.bridge import ConsoleAudit, ConsoleBridge, Unavailable
from sitebot.console.config import SCHEMA
from sitebot.console.ratelimit import LogThrottle
from sitebot.console.server import ConsoleServer
from sitebot.console.views import (PLAN_STATUSES, ConsoleViews, ViewConfig, path_section,
                                   result_step, survey_section)
from sitebot.errors import SitebotError
from sitebot.nodes import convert, convert_images
from sitebot.nodes.common import QOS_COMMAND, QOS_LATCHED, QOS_SENSOR, QOS_STATE, declare_schema
from sitebot.security import Authority
from sitebot.site.bundle import load_bundle
from sitebot.types import Diagnostic, DiagnosticLevel
from sitebot_interfaces.action import ExecutePlan
from sitebot_interfaces.msg import (GaugeReading, SafetyState, TaskCommand, TaskPlan,
                                    TrackedPersonArray)
from sitebot_interfaces.srv import SafetyRequest


def _wait(future, timeout_s: float) -> Any:
    """Wait (in a worker thread) for an rclpy future resolved by the executor thread."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout_s):
        raise Unavailable(f"no answer within {timeout_s:g} s")
    return future.result()


def _step(s) -> tuple[str, dict]:
    """A sitebot_interfaces/PlanStep as (skill, args)."""
    return s.skill, dict(zip(s.arg_names, s.arg_values))


class WebConsoleNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("web_console", **kwargs)
        self.p = p = declare_schema(self, SCHEMA, on_change=lambda ch: self.views.configure(ch))
        self.site = load_bundle(p["site"])
        self.views = ConsoleViews(ViewConfig.from_params(
            p, self.site.initial_pose(p["initial_pose"])))
        self.audit_write = ConsoleAudit(p["console_log"], self.get_logger().info, self.now)
        self.bridge = ConsoleBridge(self, self.views, self.audit_write, Authority.open(
            p["authority_key_file"], self.get_logger().error))
        self.warn = LogThrottle(self.get_logger().warning)    # one per kind per 5 s
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self.deadman_pub = self.create_publisher(Bool, "teleop/deadman", QOS_COMMAND)
        self.estop_pub = self.create_publisher(Bool, "safety/estop", QOS_COMMAND)
        self.command_pub = self.create_publisher(TaskCommand, "task/command", QOS_COMMAND)
        self.confirm_pub = self.create_publisher(TaskCommand, "task/confirm", QOS_COMMAND)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        for typ, topic, fn, qos in (
                (Odometry, "odometry/filtered", self._filtered, QOS_STATE),
                (Odometry, "odom", self._odom, QOS_STATE),
                (PathMsg, "plan", self._path, QOS_LATCHED),
                (TrackedPersonArray, "people", self._people, QOS_SENSOR),
                (SafetyState, "safety/state", self._safety, QOS_STATE),
                (Image, "camera/color/image_raw", self._image, QOS_SENSOR),
                (GaugeReading, "gauges", self._gauge, QOS_SENSOR),
                (String, "task/status", lambda m: self.bridge.on_task_status(m.data), QOS_STATE),
                (TaskPlan, "task/plan", self._plan, QOS_COMMAND),
                (String, "task/confirmation_request",
                 lambda m: self.bridge.on_confirmation_request(m.data), QOS_COMMAND),
                (DiagnosticStatus, "survey/status", lambda m: self.bridge.show("survey", (
                    survey_section(m.level, m.message, ((v.key, v.value) for v in m.values)))),
                 QOS_LATCHED)):
            self.create_subscription(
                typ, topic, lambda m, t=topic, f=fn: self.warn.guard(t, f, m), qos)
        self.triggers = {"estop": self.create_client(Trigger, "safety/trigger_estop"),
                         "survey_start": self.create_client(Trigger, "survey/start"),
                         "survey_stop": self.create_client(Trigger, "survey/stop")}
        self.request_cli = self.create_client(SafetyRequest, "safety/request")
        self.exec_cli = ActionClient(self, ExecutePlan, "execute_plan")
        self.create_timer(1.0, self.on_slow_timer)

    # ------------------------------------------------------------------ inputs
    def _filtered(self, msg: Odometry) -> None:
        self.bridge.show("robot", self.views.on_filtered(convert.planar_pose(msg.pose.pose),
                                                         self.now()))

    def _odom(self, msg: Odometry) -> None:
        tw = msg.twist.twist
        self.bridge.show("robot", self.views.on_odom(convert.planar_pose(msg.pose.pose),
                                                     tw.linear.x, tw.angular.z, self.now()))

    def _path(self, msg: PathMsg) -> None:
        self.bridge.show("path", path_section(msg.header.frame_id, [
            (ps.pose.position.x, ps.pose.position.y) for ps in msg.poses]))

    def _people(self, msg: TrackedPersonArray) -> None:
        self.bridge.show("people", self.views.people(msg.header.frame_id, (
            (q.id, q.pose.pose.position.x, q.pose.pose.position.y, q.twist.twist.linear.x,
             q.twist.twist.linear.y) for q in msg.people)))

    def _safety(self, msg: SafetyState) -> None:
        self.bridge.show("safety", self.views.safety(
            level=msg.level, mode=msg.mode, estop=msg.estop_latched,
            stop_category=msg.stop_category, speed_scale=msg.speed_scale,
            max_speed=msg.max_linear_speed_mps, closest=msg.closest_separation_m,
            required=float(msg.required_separation_m), reasons=msg.reasons,
            message=msg.message, now=self.now()))

    def _image(self, msg: Image) -> None:
        if self.bridge.server is None or not self.views.camera_due(time.monotonic()):
            return
        arr = convert_images.image_to_bgr(msg)
        if arr is None:
            self.warn("image", f"camera image with encoding {msg.encoding!r} "
                               f"{msg.width}x{msg.height} not shown (rgb8, bgr8, mono8)")
            return
        self.bridge.show("camera", self.views.camera(arr, msg.width, msg.height,
                                                     convert.from_time(msg.header.stamp)))

    def _gauge(self, msg: GaugeReading) -> None:
        self.bridge.show("gauges", self.views.gauge(
            asset=msg.asset_id, valid=msg.valid, value=msg.value, unit=msg.unit,
            confidence=msg.confidence, failure=msg.failure_reason,
            stamp=convert.from_time(msg.header.stamp), t=time.monotonic(),
            crop=(lambda: convert_images.image_to_bgr(msg.crop)) if msg.crop.width > 0 else None))

    def _plan(self, msg: TaskPlan) -> None:
        self.bridge.on_plan(msg, msg.plan_id, PLAN_STATUSES.get(msg.status, "unknown"),
                            map(_step, msg.steps), question=msg.question, reason=msg.reason,
                            explanation=msg.explanation, instruction=msg.instruction,
                            role=msg.role)

    def on_slow_timer(self) -> None:
        self.warn.guard("audit tail", lambda: self.bridge.show("audit", self.views.audit_tail()))
        self.warn.guard("diagnostics", self._diagnostics)

    def _diagnostics(self) -> None:
        srv = self.bridge.server
        ok, text, counts = srv.summary() if srv else (False, "server not started", {})
        arr = DiagnosticArray(status=[convert.diagnostic_status(Diagnostic(
            "web console", DiagnosticLevel.OK if ok else DiagnosticLevel.WARN, text,
            tuple((k, str(v)) for k, v in counts.items())), self.get_name(), "web_console")])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    # ------------------------------------------------------------------ RobotPort
    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def now(self) -> float:
        return self.now_ns() * 1e-9

    def _service(self, client, request, label: str = "") -> Any:
        if not client.wait_for_service(timeout_sec=min(1.0, self.p["service_timeout_s"])):
            raise Unavailable(f"{label}{client.srv_name} not available")
        return _wait(client.call_async(request), self.p["service_timeout_s"])

    def trigger(self, service: str) -> tuple[bool, str]:
        res = self._service(self.triggers[service], Trigger.Request(),
                            "emergency stop service " if service == "estop" else "")
        return bool(res.success), res.message

    def pulse_estop(self) -> None:
        self.estop_pub.publish(Bool(data=True))
        self.estop_pub.publish(Bool(data=False))

    def safety_request(self, request: str, mode: str, authority: str) -> tuple[bool, str]:
        res = self._service(self.request_cli, SafetyRequest.Request(
            request=request, mode=mode, authority=authority), "safety request service ")
        return bool(res.success), res.message

    def publish_twist(self, v: float, w: float, deadman: bool, stamp_ns: int | None) -> None:
        m = TwistStamped()
        if stamp_ns is not None:
            m.header.stamp = Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        m.header.frame_id = self.p["base_frame"]
        m.twist.linear.x, m.twist.angular.z = v, w
        if deadman:       # the deadman first: the supervisor reads the hold with the command
            self.deadman_pub.publish(Bool(data=True))
        self.cmd_pub.publish(m)
        if not deadman:
            self.deadman_pub.publish(Bool(data=False))

    def publish_task_command(self, confirm: bool, request_id: str, text: str, role: str,
                             in_reply_to: str, authority: str) -> None:
        m = TaskCommand(request_id=request_id, text=text, role=role, in_reply_to=in_reply_to,
                        authority=authority)
        m.header.stamp = self.get_clock().now().to_msg()
        (self.confirm_pub if confirm else self.command_pub).publish(m)

    def send_plan(self, plan: TaskPlan, confirmed: bool, authority: str) -> Any:
        if not self.exec_cli.wait_for_server(timeout_sec=self.p["service_timeout_s"]):
            raise Unavailable("the executor's execute_plan action is not available")
        goal = ExecutePlan.Goal(plan=plan, confirmed=confirmed, authority=authority)
        try:
            handle = _wait(self.exec_cli.send_goal_async(goal, feedback_callback=self._feedback),
                           self.p["service_timeout_s"])
        except Unavailable as e:
            raise Unavailable(f"execute_plan: {e}") from None
        if not handle.accepted:
            raise Unavailable("the executor refused the plan (another plan running?)")
        return handle

    def watch_plan(self, handle: Any) -> None:
        handle.get_result_async().add_done_callback(lambda f: self.warn.guard(
            "execute_plan result", self._result, f))

    def cancel_plan(self, handle: Any) -> None:
        handle.cancel_goal_async()

    def _feedback(self, fb_msg) -> None:
        fb, cur = fb_msg.feedback, fb_msg.feedback.current
        self.bridge.on_feedback(fb.step_index, fb.step_count, fb.state, cur.step.skill,
                                cur.outcome, cur.message)

    def _result(self, fut) -> None:
        res = fut.result().result
        self.bridge.on_result(res.code, res.reason, [
            result_step(*_step(s.step), s.outcome, s.message, s.duration_s,
                        [(r.asset_id, r.value, r.unit, r.confidence, r.valid)
                         for r in s.readings]) for s in res.steps])


def main(args: list[str] | None = None) -> int:
    """Run the node: rclpy in a background thread, the web server in this one."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = executor = spin_thread = None
    try:
        node = WebConsoleNode()
        log = node.get_logger()
        server = ConsoleServer.from_params(
            node.bridge, node.p, node.site, audit=node.audit_write,
            log=lambda level, text: getattr(log, level if level in ("warning", "error")
                                            else "info")(text))
        node.bridge.server = server
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
        server.serve_until_signalled()
        return 0
    except KeyboardInterrupt:
        return 0
    except (SitebotError, OSError) as e:       # a bad bundle, parameter; the port is taken
        print(f"[ERROR] web_console: {e}", flush=True)
        return 2
    finally:
        if node is not None:
            with suppress(Exception):          # best effort: a last teleop stop
                node.bridge.teleop_stop()
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
