"""The ROS side of one regression run: launch the stack, drive the mission, inject faults,
record, stop. (The only module of ``sitebot.regress`` that talks to ROS.)
:func:`run_scenario` is called in a worker process (``python -m sitebot.regress.worker``)
whose ``ROS_DOMAIN_ID`` the runner chose, so parallel runs never share DDS traffic. It
returns the raw material (recorded messages, events, process exits); metrics, verdicts,
bags and reports are made by the core modules from it.

Sequence: the simulator starts paused; once every node of the launch is in the ROS graph
(and has subscribed to what it needs) the driver unpauses it, so sim time 0 is the same
moment of every run. While running, the driver reacts to ``/clock`` (100 Hz sim time):
scripted ``cmd_vel_in`` (mission ``drive``), runner faults due at their sim time or
condition, and conditional simulator faults (sent on ``sim/fault``). In lockstep runs the
driver is a participant of the simulator's barrier (:mod:`sitebot.barrier`), and its
mission and fault decisions run in its ``/clock`` callback, at the same simulated instants
whatever the machine's load.

The driver acts as the site's operator tools do: its instructions, plans, confirmations,
resets and mode changes carry assertions signed with the run's authority key (the default
key file, which ``sitebot regress`` makes sure exists; :mod:`sitebot.security`), as user
``regress`` with the scenario's role (resets and mode changes: ``supervisor``).
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from geometry_msgs.msg import PoseArray, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool

from sitebot.nodes.barrier_ack import BarrierAcker
from sitebot.nodes.barrier_work import count_actions
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE
from sitebot.nodes.executors import make_executor, spin_once
from sitebot.regress.plan_msgs import plan_dict as _plan_dict
from sitebot.regress.plan_msgs import plan_outcome as _plan_outcome
from sitebot.regress.plan_msgs import step_outcome as _step_outcome
from sitebot.regress.plan_msgs import steps_digest as _steps_digest
from sitebot.regress.prepare import RUN_EXECUTOR
from sitebot.regress.scenario import FaultSpec, Scenario
from sitebot.security import Authority, AuthorityError, command_digest
from sitebot.types import quaternion_to_yaw, yaw_to_quaternion
from sitebot_interfaces.msg import (ControllerStatus, FiducialDetectionArray,
                                    LocalizationStatus, SafetyState, TaskCommand, TaskPlan,
                                    TaskStep, TrackedPersonArray)
from sitebot_interfaces.srv import SafetyRequest

__all__ = ["run_scenario", "RECORDED", "decode_records"]

#: topic -> (ROS type name, message class, QoS); what every run records into its bag
RECORDED: dict[str, tuple[str, type, QoSProfile]] = {
    "ground_truth/odom": ("nav_msgs/msg/Odometry", Odometry, QOS_STATE),
    "ground_truth/people": ("geometry_msgs/msg/PoseArray", PoseArray, QOS_STATE),
    "odom": ("nav_msgs/msg/Odometry", Odometry, QOS_STATE),
    "scan": ("sensor_msgs/msg/LaserScan", LaserScan, QOS_SENSOR),
    "safety/state": ("sitebot_interfaces/msg/SafetyState", SafetyState, QOS_STATE),
    "cmd_vel_in": ("geometry_msgs/msg/TwistStamped", TwistStamped, QOS_COMMAND),
    "cmd_vel": ("geometry_msgs/msg/TwistStamped", TwistStamped, QOS_COMMAND),
    "safety/estop": ("std_msgs/msg/Bool", Bool, QOS_COMMAND),
    "teleop/deadman": ("std_msgs/msg/Bool", Bool, QOS_COMMAND),
    "control/state": ("sitebot_interfaces/msg/ControllerStatus", ControllerStatus, QOS_STATE),
    "sim/fault_events": ("std_msgs/msg/String", String, QOS_COMMAND),
    "people": ("sitebot_interfaces/msg/TrackedPersonArray", TrackedPersonArray, QOS_SENSOR),
    "odometry/filtered": ("nav_msgs/msg/Odometry", Odometry, QOS_STATE),
    "localization/status": ("sitebot_interfaces/msg/LocalizationStatus", LocalizationStatus,
                            QOS_STATE),
    "fiducials": ("sitebot_interfaces/msg/FiducialDetectionArray", FiducialDetectionArray,
                  QOS_SENSOR),
    "task/plan": ("sitebot_interfaces/msg/TaskPlan", TaskPlan, QOS_COMMAND),
    "task/status": ("std_msgs/msg/String", String, QOS_STATE),
    "task/confirmation_request": ("std_msgs/msg/String", String, QOS_COMMAND),
}
EVENTS_TOPIC = ("regress/events", "std_msgs/msg/String")
_NAV_CODES = {1: "blocked", 2: "aborted", 3: "canceled", 99: "rejected"}   # a goal's end


def _stamp(msg: Any) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


class _Driver:
    """The run's own ROS node: recorder (raw CDR per topic, keyed by sim time), command
    and fault publisher, service and action client."""

    def __init__(self, sc: Scenario, lockstep: bool = False) -> None:
        self.sc = sc
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("regress_driver", context=self.context,
                                      parameter_overrides=[Parameter("use_sim_time",
                                                                     value=True)])
        self.executor = make_executor(RUN_EXECUTOR["executor"], context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.raw: dict[str, list[tuple[int, bytes]]] = {t: [] for t in RECORDED}
        self.sim_t = -1.0
        self.level = 0
        self.pose: tuple[float, float] | None = None
        self.events: list[dict] = []                # runner events (faults, resets, mission)
        self.fault_time: dict[int, float] = {}      # fault index -> sim time it started
        self.task_states: list[str] = []            # executor task/status 'state' values
        self.confirm_requests: list[dict] = []      # executor task/confirmation_request
        self.clock_count = 0
        self.drive_on = False
        #: the scripted operator's decisions (mission, faults), run at each /clock in
        #: lockstep, so that they fall on the same simulated instant whatever the load
        self.on_tick: Callable[[], None] | None = None
        self._drive_t = -math.inf                   # sim time of the last scripted output
        n = self.node
        for topic, (_, cls, qos) in RECORDED.items():
            n.create_subscription(cls, topic, self._recorder(topic), qos, raw=True)
        n.create_subscription(Clock, "/clock", self.on_clock, QOS_STATE)
        self.cmd_pub = n.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self.estop_pub = n.create_publisher(Bool, "safety/estop", QOS_COMMAND)
        self.deadman_pub = n.create_publisher(Bool, "teleop/deadman", QOS_COMMAND)
        self.fault_pub = n.create_publisher(String, "sim/fault", QOS_COMMAND)
        self.task_pub = n.create_publisher(TaskCommand, "task/command", QOS_COMMAND)
        self.confirm_pub = n.create_publisher(TaskCommand, "task/confirm", QOS_COMMAND)
        self.pause_cli = n.create_client(SetBool, "sim/pause")
        self.request_cli = n.create_client(SafetyRequest, "safety/request")
        self.authority = Authority.open("", lambda text: self.event("authority_key", error=text))
        self.estop_held: bool | None = None
        self.deadman_held: bool | None = None
        self.acker = BarrierAcker(n) if lockstep else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ ROS plumbing
    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                spin_once(self.executor, 0.05)
            except Exception as e:                 # noqa: BLE001 - keep recording
                self.event("driver_error", error=f"{type(e).__name__}: {e}")

    def _recorder(self, topic: str) -> Callable[[bytes], None]:
        def cb(data: bytes) -> None:
            t = self.sim_t
            with self.lock:
                self.raw[topic].append((int(max(t, 0.0) * 1e9), bytes(data)))
            if topic == "safety/state":
                self.level = deserialize_message(data, SafetyState).level
            elif topic == "ground_truth/odom":
                p = deserialize_message(data, Odometry).pose.pose.position
                self.pose = (p.x, p.y)
            elif topic == "sim/fault_events":
                ev = json.loads(deserialize_message(data, String).data)
                label = str(ev.get("label", ""))
                if label.startswith("fault") and ev.get("phase") == "start":
                    self.fault_time.setdefault(int(label[5:]), float(ev["t"]))
            elif topic in ("task/status", "task/confirmation_request"):
                try:
                    d = json.loads(deserialize_message(data, String).data)
                except ValueError:
                    return
                if not isinstance(d, dict):
                    return
                if topic == "task/status":
                    with self.lock:
                        self.task_states.append(str(d.get("state", "")))
                else:
                    with self.lock:
                        self.confirm_requests.append(d)
        return cb

    def sign(self, scope: str, subject: str, role: str, digest: str = "") -> str:
        """An assertion as user ``regress`` ('' without a usable key: the stack refuses)."""
        try:
            return self.authority.sign(scope, subject, "regress", role or "operator",
                                       time.time(), digest=digest)
        except AuthorityError as e:
            self.event("unsigned", scope=scope, reason=str(e))
            return ""

    def event(self, kind: str, **fields: Any) -> dict:
        ev = {"t": round(self.sim_t, 4), "kind": kind, **fields}
        with self.lock:
            self.events.append(ev)
        return ev

    def on_clock(self, msg: Clock) -> None:
        self.sim_t = msg.clock.sec + msg.clock.nanosec * 1e-9
        self.clock_count += 1
        # 50 Hz in sim time whatever the clock rate (100 Hz, or 50 Hz in task-stack runs)
        if self.sim_t - self._drive_t >= 0.02 - 1e-6 or self.sim_t < self._drive_t:
            self._drive_t = self.sim_t
            self._drive(msg)
        if self.on_tick is not None and self.sim_t >= 0.0:
            self.on_tick()

    def _drive(self, clock: Clock) -> None:
        if self.estop_held is not None:
            self.estop_pub.publish(Bool(data=self.estop_held))
        deadman = self.deadman_held
        drive = self.sc.mission.drive
        if drive and self.drive_on:
            cur = None
            for seg in drive:
                if seg[0] <= self.sim_t + 1e-9:
                    cur = seg
            if cur is not None:
                m = TwistStamped()
                # paced: zero stamp = "now" for the supervisor (a scripted operator has no
                # sensor time, and a /clock copy would age in a loaded machine's queues); in
                # lockstep the clock's own time, which nothing ages
                if self.acker is not None:
                    m.header.stamp = clock.clock
                m.header.frame_id = "base_footprint"
                m.twist.linear.x, m.twist.angular.z = float(cur[1]), float(cur[2])
                self.cmd_pub.publish(m)
                deadman = True if cur[3] else deadman
        if deadman is not None:
            self.deadman_pub.publish(Bool(data=bool(deadman)))

    def call(self, client, request, timeout: float = 10.0):
        if not client.wait_for_service(timeout_sec=timeout):
            return None
        fut = client.call_async(request)
        end = time.monotonic() + timeout
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.01)
        return fut.result() if fut.done() else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


# ============================================================================ the run
class _Mission:
    """Mission progress: done flag, outcome, details."""

    def __init__(self, drv: _Driver, sc: Scenario, handle: Any, out_dir: Path) -> None:
        self.drv, self.sc, self.h, self.out = drv, sc, handle, out_dir
        self.done, self.outcome, self.details = False, "none", {}
        self.stage, self.fut, self.result_fut = 0, None, None
        self.goal_results: list[dict] = []
        self.plan_msg: TaskPlan | None = None
        self.sent_at: float | None = None
        self.answered = 0                      # confirmation requests answered
        kind = sc.mission.kind
        n = drv.node
        if kind == "goals":
            from sitebot_interfaces.action import NavigateToPlace
            self.action = ActionClient(n, NavigateToPlace, "navigate_to_place")
            self.goal_cls = NavigateToPlace
        elif kind in ("instruction", "plan"):
            from sitebot_interfaces.action import ExecutePlan
            self.action = ActionClient(n, ExecutePlan, "execute_plan")
            self.goal_cls = ExecutePlan
            if kind == "instruction":
                n.create_subscription(TaskPlan, "task/plan", self._on_plan, QOS_COMMAND)

    def _on_plan(self, msg: TaskPlan) -> None:
        if self.plan_msg is None:
            self.plan_msg = msg

    def start(self) -> None:
        kind = self.sc.mission.kind
        if kind == "none":
            self.drv.drive_on = True

    def _send_instruction(self) -> None:
        """Publish the instruction once the planner subscribes; again every 5 s (sim) until
        its plan comes (a volatile topic loses what is sent before discovery)."""
        d = self.drv
        if d.task_pub.get_subscription_count() == 0:
            return
        if self.sent_at is not None and d.sim_t - self.sent_at < 5.0:
            return
        m = TaskCommand()
        m.request_id = "regress_1"
        m.text = self.sc.mission.text
        m.role = self.sc.mission.role
        m.authority = d.sign("command", m.request_id, m.role, command_digest(m.text))
        d.task_pub.publish(m)
        if self.sent_at is None:
            d.event("instruction_sent", text=m.text, role=m.role)
        self.sent_at = d.sim_t

    def _answer_confirmations(self) -> None:
        """Answer the executor's confirmation requests as a supervisor would (mission key
        ``confirm``); each request once."""
        d = self.drv
        with d.lock:
            reqs = list(d.confirm_requests[self.answered:])
        for req in reqs:
            self.answered += 1
            answer = self.sc.mission.confirm
            if not answer:
                d.event("confirmation_request", question=str(req.get("question", "")),
                        answered=False)
                continue
            m = TaskCommand()
            m.request_id = f"regress_confirm_{self.answered}"
            m.in_reply_to = str(req.get("plan_id", ""))
            m.text = answer
            m.role = "supervisor"
            m.authority = d.sign("confirm", m.in_reply_to, m.role,
                                 str(req.get("plan_digest", "")))
            d.confirm_pub.publish(m)
            d.event("confirmation_answered", question=str(req.get("question", "")),
                    plan_id=m.in_reply_to, answer=answer)

    def poll(self) -> None:
        if self.done:
            return
        kind = self.sc.mission.kind
        if kind in ("instruction", "plan"):
            self._answer_confirmations()
        if kind == "none":
            return                                   # runs until the duration
        if kind == "goals":
            self._poll_goals()
        elif kind == "instruction":
            if self.stage == 0:
                if self.plan_msg is None:
                    self._send_instruction()
                else:
                    st = self.plan_msg.status
                    self.details["plan"] = _plan_dict(self.plan_msg)
                    if st == TaskPlan.STATUS_OK:
                        self.stage = 1
                        self._send_plan(self.plan_msg)
                    else:
                        self.outcome = "refused" if st == TaskPlan.STATUS_REFUSE else "clarify"
                        self.done = True
                        self.drv.event("mission_done", outcome=self.outcome,
                                       reason=self.plan_msg.reason or self.plan_msg.question)
            else:
                self._poll_result()
        elif kind == "plan":
            if self.stage == 0:
                self.stage = 1
                plan = TaskPlan()
                plan.plan_id = "regress_plan"
                plan.status = TaskPlan.STATUS_OK
                plan.role = self.sc.mission.role
                for st in self.sc.mission.steps:
                    step = TaskStep()
                    step.skill = st["skill"]
                    args = st.get("args") or {}
                    step.arg_names = [str(k) for k in args]
                    step.arg_values = [str(v) for v in args.values()]
                    plan.steps.append(step)
                plan.authority = self.drv.sign("plan", plan.plan_id, plan.role,
                                               _steps_digest(plan))
                self._send_plan(plan)
            else:
                self._poll_result()

    def _send_plan(self, plan: TaskPlan) -> None:
        goal = self.goal_cls.Goal()
        goal.plan = plan
        # unconfirmed when the scenario answers the executor's question itself
        goal.confirmed = not self.sc.mission.confirm
        if goal.confirmed:
            goal.authority = self.drv.sign("confirm", plan.plan_id, "supervisor",
                                           _steps_digest(plan))
        if not self.action.wait_for_server(timeout_sec=10.0):
            self.outcome, self.done = "failed", True
            self.details["error"] = "no execute_plan action server"
            return
        self.fut = self.action.send_goal_async(goal)
        self.drv.event("plan_sent", steps=len(plan.steps), confirmed=bool(goal.confirmed))

    def _poll_result(self) -> None:
        if self.fut is not None and self.fut.done() and self.result_fut is None:
            gh = self.fut.result()
            if not gh.accepted:
                self.outcome, self.done = "refused", True
                return
            self.result_fut = gh.get_result_async()
        if self.result_fut is not None and self.result_fut.done():
            res = self.result_fut.result().result
            steps = [_step_outcome(s) for s in res.steps]
            self.details["result"] = {"code": int(res.code), "reason": res.reason,
                                      "steps": steps}
            self.outcome = _plan_outcome(int(res.code), steps)
            self.done = True
            self.drv.event("mission_done", outcome=self.outcome, reason=res.reason)

    def _poll_goals(self) -> None:
        goals = self.sc.mission.goals
        if self.fut is None:
            if self.stage >= len(goals):
                bad = [r for r in self.goal_results if r["code"] != 0]
                self.outcome, self.done = ("failed" if bad else "succeeded"), True
                self.details["goals"] = self.goal_results
                self.drv.event("mission_done", outcome=self.outcome, reason="" if not bad else
                               f"navigate to {goals[bad[0]['goal']]}: "
                               f"{_NAV_CODES.get(bad[0]['code'], 'failed')} ({bad[0]['reason']})")
                return
            if not self.action.wait_for_server(timeout_sec=10.0):
                self.outcome, self.done = "failed", True
                self.details["error"] = "no navigate_to_place action server"
                return
            g = goals[self.stage]
            goal = self.goal_cls.Goal()
            if isinstance(g, str):
                goal.place_id = g
            else:
                goal.pose.header.frame_id = "map"
                goal.pose.pose.position.x, goal.pose.pose.position.y = float(g[0]), float(g[1])
                _, _, qz, qw = yaw_to_quaternion(g[2])
                goal.pose.pose.orientation.z, goal.pose.pose.orientation.w = qz, qw
            self.fut = self.action.send_goal_async(goal)
            self.result_fut = None
            self.drv.event("goal_sent", goal=g if isinstance(g, str) else list(g))
            return
        if self.fut.done() and self.result_fut is None:
            gh = self.fut.result()
            if not gh.accepted:
                self.goal_results.append({"goal": self.stage, "code": 99, "reason": "rejected"})
                self.stage += 1
                self.fut = None
                return
            self.result_fut = gh.get_result_async()
        if self.result_fut is not None and self.result_fut.done():
            res = self.result_fut.result().result
            self.goal_results.append({"goal": self.stage, "code": int(res.code),
                                      "reason": res.reason, "t": self.drv.sim_t})
            self.stage += 1
            self.fut = None


class _Faults:
    """Runner faults and conditional simulator faults."""

    def __init__(self, drv: _Driver, sc: Scenario, handle: Any) -> None:
        self.drv, self.sc, self.h = drv, sc, handle
        self.pending = [f for f in sc.faults if f.runner or f.when is not None]
        self.killed: list[str] = []
        self.resets: dict[int, dict] = {}
        self._cond: dict[int, float] = {}
        self.calls: list = []               # (fault, sim time sent, future)

    def _due(self, f: FaultSpec) -> bool:
        d = self.drv
        if f.at is not None:
            return d.sim_t >= f.at
        w = f.when or {}
        t0 = 0.0
        if "after_fault" in w:
            if w["after_fault"] not in d.fault_time:
                return False
            t0 = d.fault_time[w["after_fault"]]
        if "level" in w and d.level < w["level"]:
            return False
        if "robot_near" in w:
            x, y, r = w["robot_near"]
            if d.pose is None or math.hypot(d.pose[0] - x, d.pose[1] - y) > r:
                return False
        if "task_status" in w:
            with d.lock:
                if not any(w["task_status"] in st for st in d.task_states):
                    return False
        first = self._cond.setdefault(f.index, d.sim_t)     # when the condition first held
        return d.sim_t >= max(first, t0) + w.get("delay", 0.0)

    def poll(self) -> None:
        self.poll_calls()
        for f in list(self.pending):
            if self._due(f):
                self.pending.remove(f)
                self.apply(f)

    def apply(self, f: FaultSpec) -> None:
        d = self.drv
        t = d.sim_t
        if not f.runner:
            d.fault_pub.publish(String(data=json.dumps(f.sim_fault() | {"at": 0.0})))
            # its start time comes back on sim/fault_events (label fault<index>)
            d.event("fault_sent", index=f.index, fault=f.kind)
            return
        d.fault_time[f.index] = t
        p = f.params
        if f.kind == "kill_node":
            pid = self.h.pids.get(p["node"])
            if pid is None:
                d.event("fault", index=f.index, fault=f.kind, node=p["node"],
                        error="no such running process")
                return
            self.killed.append(p["node"])
            os.killpg(pid, signal.SIGKILL)
            d.event("fault", index=f.index, fault=f.kind, node=p["node"], pid=pid)
        elif f.kind == "estop":
            d.estop_held = bool(p["pressed"])
            d.estop_pub.publish(Bool(data=d.estop_held))
            d.event("fault", index=f.index, fault=f.kind, pressed=d.estop_held)
        elif f.kind == "deadman":
            d.deadman_held = bool(p["pressed"])
            d.event("fault", index=f.index, fault=f.kind, pressed=d.deadman_held)
        elif f.kind == "reset":
            # asynchronous: the answer is recorded when it comes (the loop keeps running)
            if not d.request_cli.service_is_ready():
                self.resets[f.index] = {"accepted": False,
                                        "reason": "safety/request not available"}
                d.event("fault", index=f.index, fault=f.kind, **self.resets[f.index])
                return
            self.calls.append((f, t, d.request_cli.call_async(SafetyRequest.Request(
                request="reset", authority=d.sign("reset", "reset", "supervisor")))))
        elif f.kind == "set_mode":
            if not d.request_cli.service_is_ready():
                d.event("fault", index=f.index, fault=f.kind, mode=p["mode"], accepted=False,
                        reason="safety/request not available")
                return
            self.calls.append((f, t, d.request_cli.call_async(SafetyRequest.Request(
                request="mode", mode=p["mode"],
                authority=d.sign("mode", p["mode"], "supervisor")))))

    def poll_calls(self) -> None:
        d = self.drv
        for item in list(self.calls):
            f, t, fut = item
            if not fut.done():
                continue
            self.calls.remove(item)
            res = fut.result()
            r = {"accepted": bool(res.success) if res else False,
                 "reason": res.message if res else "no answer from safety/request"}
            if f.kind == "reset":
                self.resets[f.index] = r
                d.event("fault", index=f.index, fault=f.kind, called_at=round(t, 4), **r)
            else:
                d.event("fault", index=f.index, fault=f.kind, mode=f.params["mode"],
                        called_at=round(t, 4), **r)


def _graph_ready(drv: _Driver, nodes: list[str], mission: "_Mission") -> bool:
    names = set(drv.node.get_node_names())
    if not all(n in names for n in nodes):
        return False
    # the supervisor listens to cmd_vel_in and the simulator's pause service answers
    if not (drv.cmd_pub.get_subscription_count() > 0 and drv.pause_cli.service_is_ready()):
        return False
    # the mission's servers are up (so that sim time is not spent waiting for them): the
    # planner listens to task/command, the action server answers
    if mission.sc.mission.kind == "instruction" and drv.task_pub.get_subscription_count() == 0:
        return False
    action = getattr(mission, "action", None)
    return action is None or action.server_is_ready()


def run_scenario(sc: Scenario, out_dir: Path, launch_file: str, launch_args: dict[str, str],
                 *, env: dict[str, str], progress: Callable[[dict], None],
                 log_path: Path, lockstep: bool = False) -> dict[str, Any]:
    """Run one scenario; returns {'raw': {topic: [(t_ns, cdr)]}, 'events', 'mission',
    'exit_codes', 'failed', 'killed', 'resets', 'fault_time', 'sim_time_s', 'wall_s',
    'startup_wall_s', 'aborted'}."""
    from sitebot.launcher import launched

    log = open(log_path, "w", buffering=1)
    t_wall0 = time.monotonic()
    drv = _Driver(sc, lockstep)
    aborted = ""
    mission = None
    faults = None
    codes: dict = {}
    failed: list = []
    startup = math.nan
    run_wall0 = math.nan
    try:
        with launched(launch_file, launch_args, env=env,
                      on_line=lambda line: log.write(line + "\n")) as h:
            expected = [n.name for n in h.description.processes]
            deadline = t_wall0 + min(sc.wall_limit, 120.0)
            mission = _Mission(drv, sc, h, out_dir)
            if drv.acker is not None:             # its action client takes part too
                count_actions(drv.node, drv.acker.counter)
            while not _graph_ready(drv, expected, mission):
                if h.failed or time.monotonic() > deadline:
                    aborted = ("a process died during start-up: " + ", ".join(h.failed)
                               if h.failed else "the stack did not come up within "
                               f"{min(sc.wall_limit, 120.0):.0f} s (nodes seen: "
                               f"{sorted(drv.node.get_node_names())})")
                    break
                time.sleep(0.05)
            if not aborted:
                faults = _Faults(drv, sc, h)
                # armed before the clock runs: the first /clock drives (it used to be the
                # first one after this thread got round to it: replays differed from 0.5 s)
                mission.start()
                if lockstep:
                    drv.on_tick = lambda: (faults.poll(), mission.poll())
                r = drv.call(drv.pause_cli, SetBool.Request(data=False))
                if r is None or not r.success:
                    aborted = "could not unpause the simulator"
            if not aborted:
                startup = time.monotonic() - t_wall0
                run_wall0 = time.monotonic()
                drv.event("started", startup_wall_s=round(startup, 2))
                last_progress = 0.0
                wall_end = t_wall0 + sc.wall_limit
                while True:
                    now = time.monotonic()
                    if drv.sim_t >= 0.0 and not lockstep:   # (lockstep: at each /clock)
                        faults.poll()
                        mission.poll()
                    unexpected = [n for n in h.failed if n not in faults.killed]
                    if mission.done:
                        break
                    if drv.sim_t >= sc.duration:
                        break
                    if unexpected:
                        aborted = "process died: " + ", ".join(unexpected)
                        break
                    if now > wall_end:
                        aborted = f"wall-clock limit {sc.wall_limit:g} s reached at sim " \
                                  f"time {drv.sim_t:.1f} s"
                        break
                    if now - last_progress >= 1.0:
                        last_progress = now
                        progress({"sim_t": round(max(drv.sim_t, 0.0), 1),
                                  "wall_s": round(now - t_wall0, 1), "level": drv.level})
                    time.sleep(0.01)
            sim_end = drv.sim_t
            codes = dict(h.exit_codes)
            failed = list(h.failed)
    finally:
        drv.close()
        log.close()
    wall_s = time.monotonic() - t_wall0
    return {
        "raw": drv.raw, "events": drv.events,
        "mission": {"outcome": mission.outcome if mission and faults else "not_started",
                    "done": bool(mission and faults and mission.done),
                    "details": mission.details if mission and faults else {}},
        "exit_codes": codes, "failed": failed,
        "killed": faults.killed if faults else [],
        "resets": faults.resets if faults else {},
        "fault_time": drv.fault_time,
        "sim_time_s": max(sim_end if mission and faults else drv.sim_t, 0.0),
        "wall_s": wall_s, "run_wall_s": (time.monotonic() - run_wall0)
        if math.isfinite(run_wall0) else 0.0,
        "startup_wall_s": startup, "aborted": aborted,
    }


# ============================================================================ decoding
def decode_records(raw: dict[str, list[tuple[int, bytes]]]) -> dict[str, list]:
    """Plain-Python records for the metrics (core) from the recorded CDR messages."""
    out: dict[str, list] = {}

    def each(topic: str):
        cls = RECORDED[topic][1]
        for t_ns, data in raw.get(topic, []):
            yield t_ns * 1e-9, deserialize_message(data, cls)

    gt = []
    for _, m in each("ground_truth/odom"):
        p, q, tw = m.pose.pose.position, m.pose.pose.orientation, m.twist.twist.linear
        gt.append((_stamp(m), p.x, p.y, quaternion_to_yaw((q.x, q.y, q.z, q.w)),
                   math.hypot(tw.x, tw.y)))
    out["truth"] = sorted(gt)
    out["people"] = sorted((_stamp(m), [(q.position.x, q.position.y) for q in m.poses])
                           for _, m in each("ground_truth/people"))
    out["safety"] = sorted((_stamp(m), int(m.level), list(m.reasons),
                            float(m.closest_separation_m), float(m.required_separation_m),
                            float(m.speed_scale), int(m.mode), bool(m.estop_latched))
                           for _, m in each("safety/state"))
    out["cmd_in"] = [(t, m.twist.linear.x, m.twist.angular.z) for t, m in each("cmd_vel_in")]
    out["cmd_out"] = [(t, m.twist.linear.x, m.twist.angular.z) for t, m in each("cmd_vel")]
    out["sim_faults"] = [json.loads(m.data) for _, m in each("sim/fault_events")]
    return out


def serialize_event(ev: dict) -> bytes:
    """A runner event as a std_msgs/String (JSON) CDR message, for the bag."""
    return bytes(serialize_message(String(data=json.dumps(ev))))

