"""The safety supervisor in simulation: stack.launch.yaml (simulator + supervisor as separate
processes), the test standing in for the navigation stack on ``cmd_vel_in`` and judging from
ground truth (``ground_truth/odom``, ``ground_truth/people``: evaluation only).

Real-time factor 1 and no camera, so sim time and wall time run together."""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import rclpy
from geometry_msgs.msg import PoseArray, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from sitebot.launcher import launched
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR
from sitebot.security import Authority
from sitebot.sim.world_loader import load_world
from sitebot.tools.safety_latency import (PERSON_RADIUS_M, ROBOT_RADIUS_M, SPAWN, crossing_actor,
                                          separations, stack_args, write_world)
from sitebot_interfaces.msg import SafetyState
from sitebot_interfaces.srv import SafetyRequest

from rosprobe import Probe

pytestmark = pytest.mark.integration

T_CMD_S = 8.0            # sim time at which the test starts commanding (stack up before)
CMD_MPS = 0.5
REDUCED_MPS = 0.25
PROTECTIVE = SafetyState.LEVEL_PROTECTIVE_STOP


class Stack:
    """stack.launch.yaml running, a Probe on its topics, a command thread."""

    def __init__(self, h, probe: Probe) -> None:
        self.h, self.probe = h, probe
        self.cmd_in = probe.publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self._v = None
        self._pub = self.cmd_in
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            v, pub = self._v, self._pub
            if v is not None:
                m = TwistStamped()
                m.twist.linear.x = float(v)
                pub.publish(m)
            time.sleep(0.02)

    def command(self, v: float | None) -> None:
        """Publish ``v`` on cmd_vel_in at 50 Hz from now on (None: stop publishing)."""
        self._v = v

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def now(self) -> float:
        return self.probe.latest_sim_time()

    def wait_sim(self, t: float, timeout: float = 40.0, watch: bool = True) -> None:
        self.probe.wait_for(lambda: self.now() >= t, timeout, f"sim time {t:.1f} s",
                            launch=self.h if watch else None)

    def gt(self) -> list:
        return self.probe.get("ground_truth/odom")

    def speed(self) -> float:
        m = self.gt()[-1][1].twist.twist.linear
        return math.hypot(m.x, m.y)

    def states(self) -> list:
        return [m for _, m in self.probe.get("safety/state")]


@contextmanager
def stack(tmp_path: Path, world: str | Path = "substation"):
    probe = Probe()
    probe.subscribe(Clock, "/clock", "state", keep=False)
    probe.subscribe(Odometry, "ground_truth/odom", "state")
    probe.subscribe(PoseArray, "ground_truth/people", "state")
    probe.subscribe(SafetyState, "safety/state", "state")
    probe.subscribe(TwistStamped, "cmd_vel", "state")
    s = None
    try:
        with launched("stack.launch.yaml", {
                **stack_args(world), "real_time_factor": "1.0", "camera_enabled": "false",
                "audit_log": str(tmp_path / "audit.jsonl")}) as h:
            probe.wait_for(lambda: probe.count("safety/state") > 5
                           and probe.count("ground_truth/odom") > 5, 60,
                           "safety/state and ground truth", launch=h)
            s = Stack(h, probe)
            yield s
    finally:
        if s is not None:
            s.close()
        probe.close()


def audit(tmp_path: Path) -> list[dict]:
    p = tmp_path / "audit.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] \
        if p.exists() else []


# ------------------------------------------------------------------ 1. person steps in
@pytest.mark.parametrize("person_mps", [0.8, 1.2, 1.6])
def test_person_stepping_into_path_is_never_touched(tmp_path, person_mps):
    # the person reaches the robot's line 4 m ahead of the spawn ~4.25 s after the robot
    # starts: a robot at 0.5 m/s would then be ~2 m (centres) from them
    world = write_world(tmp_path, actors=[crossing_actor(person_mps, T_CMD_S + 4.25)])
    with stack(tmp_path, world) as s:
        assert s.now() < T_CMD_S, f"stack came up late (sim time {s.now():.1f} s)"
        s.wait_sim(T_CMD_S)
        s.command(CMD_MPS)
        s.wait_sim(T_CMD_S + 10.0)
        s.command(None)
        odom = [(t, m) for t, m in s.gt() if t >= T_CMD_S]
        people = s.probe.get("ground_truth/people")
        states = s.states()
    sep = separations(odom, people, ROBOT_RADIUS_M, PERSON_RADIUS_M)
    assert sep, "no ground truth pairs"
    t_min, d_min, _ = min(sep, key=lambda x: x[1])
    top = max((m.level for m in states), default=0)
    person_states = [m for m in states if m.level >= SafetyState.LEVEL_REDUCED_SPEED
                     and any("person" in r for r in m.reasons)]
    near_speeds = [v for _, d, v in sep if d < 1.5]
    print(f"\nperson {person_mps} m/s: min separation {d_min:.3f} m at sim {t_min:.2f} s; "
          f"top level {top}; max speed with the person within 1.5 m: "
          f"{max(near_speeds, default=float('nan')):.3f} m/s")
    assert d_min > 0.0, f"contact: separation {d_min:.3f} m at sim time {t_min:.2f} s"
    assert person_states, ("the supervisor never reported a person cause: levels "
                           f"{sorted({m.level for m in states})}")
    # the robot moved at all (the test is not vacuous) and slowed near the person
    x = [m.pose.pose.position.x for _, m in odom]
    assert max(x) - min(x) > 1.0, "the robot did not drive"
    assert max(near_speeds, default=0.0) <= REDUCED_MPS + 0.08, \
        f"speed {max(near_speeds):.2f} m/s with the person within 1.5 m"


@pytest.mark.parametrize("person_mps", [0.8, 1.6])
def test_person_stepping_into_path_and_staying_stops_the_robot(tmp_path, person_mps):
    """The person walks onto the robot's line 4 m ahead and stays there: the robot, commanded
    at 0.5 m/s throughout, must come to a standstill short of them (no contact)."""
    actor = crossing_actor(person_mps, T_CMD_S + 2.5)
    actor["path"][1] = [SPAWN[0] + 4.0 * math.cos(SPAWN[2]),     # ends on the robot's line
                        SPAWN[1] + 4.0 * math.sin(SPAWN[2])]
    world = write_world(tmp_path, actors=[actor])
    with stack(tmp_path, world) as s:
        s.wait_sim(T_CMD_S)
        s.command(CMD_MPS)
        s.wait_sim(T_CMD_S + 14.0)
        final_speed = s.speed()
        s.command(None)
        odom = [(t, m) for t, m in s.gt() if t >= T_CMD_S]
        people = s.probe.get("ground_truth/people")
        states = s.states()
    sep = separations(odom, people, ROBOT_RADIUS_M, PERSON_RADIUS_M)
    d_min = min(d for _, d, _ in sep)
    d_end = sep[-1][1]
    # standstill: how far the base moved over the last second of sim time (the
    # instantaneous speed of the simulated body jitters by ~1 cm/s even when held still)
    t_end = odom[-1][0]
    tail = [m.pose.pose.position for t, m in odom if t >= t_end - 1.0]
    moved = math.hypot(tail[-1].x - tail[0].x, tail[-1].y - tail[0].y)
    last = states[-1] if states else None
    print(f"\nperson {person_mps} m/s stays in the path: min separation {d_min:.3f} m, "
          f"final {d_end:.3f} m, moved {100 * moved:.1f} cm in the last 1 s, final speed "
          f"{final_speed:.3f} m/s")
    assert d_min > 0.0, f"contact: separation {d_min:.3f} m"
    assert moved < 0.01 and final_speed < 0.05, (
        f"not at a standstill: moved {100 * moved:.1f} cm in the last 1 s, final speed "
        f"{final_speed:.3f} m/s; the supervisor's last state: "
        f"{last and (last.level, round(last.max_linear_speed_mps, 3), list(last.reasons))}")
    x = [m.pose.pose.position.x for _, m in odom]
    assert max(x) - min(x) > 1.0, "the robot did not drive"
    assert any(m.level >= SafetyState.LEVEL_REDUCED_SPEED
               and any("person" in r for r in m.reasons) for m in states)


# ------------------------------------------------------------------ 2. supervisor dies
def test_killed_supervisor_stops_the_robot(tmp_path):
    world = write_world(tmp_path)            # no people
    with stack(tmp_path, world) as s:
        # through the supervisor: the loop obeys no one else (tests/security); with the
        # supervisor dead the loop's heartbeat watchdog and command timeout both stop it (a
        # heartbeat lost under fresh commands: tests/control/test_control_sim.py)
        s.command(CMD_MPS)
        s.probe.wait_for(lambda: s.speed() > CMD_MPS - 0.03, 20, "0.5 m/s", launch=s.h)
        t_kill = s.now()
        os.kill(s.h.pids["safety_supervisor"], signal.SIGKILL)
        s.probe.wait_for(lambda: s.speed() < 0.01, 10, "standstill after the kill")
        t_stop = next(t for t, m in s.gt() if t > t_kill and math.hypot(
            m.twist.twist.linear.x, m.twist.twist.linear.y) < 0.01)
        last_beat = s.probe.get("safety/state")[-1][0]
        t_end = s.now()
        s.wait_sim(t_end + 1.0, watch=False)
        moved = [m.pose.pose.position.x for t, m in s.gt() if t >= t_end]
    dt = t_stop - t_kill
    print(f"\nkilled at sim {t_kill:.2f} s (last heartbeat {last_beat:.2f} s), standstill "
          f"{dt:.3f} s later (commands kept coming on cmd_vel_in)")
    # heartbeat timeout 0.5 s + braking 0.5 m/s at 1 m/s^2 = 0.5 s + margin
    assert dt <= 0.5 + 0.5 + 0.25, f"stopped {dt:.2f} s after the kill"
    assert max(moved) - min(moved) < 0.01, "moved again without a heartbeat"


# ------------------------------------------------------------------ 3. scan goes silent
class InProcessSupervisor:
    """SafetySupervisorNode in its own context (wall clock), fed by the test."""

    def __init__(self, tmp_path: Path) -> None:
        from sitebot.nodes.safety_supervisor import SafetySupervisorNode
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = SafetySupervisorNode(context=self.context, parameter_overrides=[
            Parameter("audit_log", value=str(tmp_path / "audit.jsonl")),
            Parameter("localization_source", value="dead_reckoning")])
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5)


def test_silent_scan_is_a_protective_stop(tmp_path):
    sup = InProcessSupervisor(tmp_path)
    probe = Probe()
    probe.subscribe(SafetyState, "safety/state", "state")
    probe.subscribe(TwistStamped, "cmd_vel", "state")
    scan_pub = probe.publisher(LaserScan, "scan", QOS_SENSOR)
    odom_pub = probe.publisher(Odometry, "odom")
    cmd_pub = probe.publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
    scanning = threading.Event()
    scanning.set()
    stop = threading.Event()
    stopped_at = [math.nan]

    def feed() -> None:
        k = 0
        while not stop.is_set():
            now = probe.node.get_clock().now().to_msg()
            if k % 5 == 0 and scanning.is_set():          # 10 Hz scan
                sc = LaserScan()
                sc.header.stamp, sc.header.frame_id = now, "laser_link"
                sc.angle_min, sc.angle_max = -math.pi, math.pi
                sc.angle_increment = 2 * math.pi / 360
                sc.range_min, sc.range_max = 0.1, 30.0
                sc.ranges = [math.inf] * 360
                scan_pub.publish(sc)
            od = Odometry()
            od.header.stamp = now
            od.pose.pose.orientation.w = 1.0
            odom_pub.publish(od)                           # 50 Hz
            cmd = TwistStamped()
            cmd.twist.linear.x = 0.3
            cmd_pub.publish(cmd)
            k += 1
            time.sleep(0.02)
    thread = threading.Thread(target=feed, daemon=True)
    try:
        thread.start()

        def moving() -> bool:
            out = probe.get("cmd_vel")
            return bool(out) and out[-1][1].twist.linear.x > 0.05
        probe.wait_for(lambda: moving() and probe.count("safety/state") > 0, 20,
                       "gated cmd_vel moving and the supervisor's state")
        assert probe.get("safety/state")[-1][1].level < PROTECTIVE
        t0 = time.monotonic()
        scanning.clear()
        stopped_at[0] = t0

        def scan_stop() -> bool:
            st = probe.get("safety/state")
            return bool(st) and st[-1][1].level >= PROTECTIVE and any(
                "scan" in r for r in st[-1][1].reasons)
        probe.wait_for(scan_stop, 5, "protective stop for the scan")
        dt = time.monotonic() - t0
        n_before = probe.count("cmd_vel")
        time.sleep(0.5)
        after = probe.get("cmd_vel")[n_before:]
    finally:
        stop.set()
        thread.join(timeout=2)
        probe.close()
        sup.close()
    print(f"\nscan silent -> protective stop after {dt * 1e3:.0f} ms (wall); "
          f"{len(after)} gated commands after it, max |v| "
          f"{max((abs(m.twist.linear.x) for _, m in after), default=0.0):.3f}")
    # scan_timeout_s 0.5 + one scan period 0.1 + one state period + scheduling margin
    assert dt <= 0.5 + 0.1 + 0.1, f"protective stop {dt:.2f} s after the last scan"
    assert all(abs(m.twist.linear.x) < 1e-9 for _, m in after), "motion passed the stop"


# ------------------------------------------------------------------ 4. reset refused
def call(probe: Probe, name: str, timeout: float = 10.0) -> Trigger.Response:
    """*name* called; ``safety/reset`` goes to the authenticated ``safety/request`` with a
    supervisor's assertion signed with the session's key (tests/conftest.py)."""
    if name == "safety/reset":
        return request(probe.node, "reset", "", signed_for("reset", "reset"), probe, timeout)
    client = probe.node.create_client(Trigger, name)
    assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
    fut = client.call_async(Trigger.Request())
    probe.wait_for(fut.done, timeout, f"reply of {name}")
    return fut.result()


def signed_for(scope: str, subject: str, role: str = "supervisor") -> str:
    return Authority.open("").sign(scope, subject, "tester", role, time.time())


def request(node, what: str, mode: str, authority: str, probe: Probe | None = None,
            timeout: float = 10.0) -> SafetyRequest.Response:
    """One call of the supervisor's safety/request (spun by *probe*, or by the caller's
    executor when None)."""
    client = node.create_client(SafetyRequest, "safety/request")
    assert client.wait_for_service(timeout_sec=timeout), "safety/request not available"
    fut = client.call_async(SafetyRequest.Request(request=what, mode=mode, authority=authority))
    if probe is not None:
        probe.wait_for(fut.done, timeout, "reply of safety/request")
    else:
        end = time.monotonic() + timeout
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.01)
    assert fut.done(), "no reply of safety/request"
    return fut.result()


def test_reset_refused_while_cause_persists(tmp_path):
    world = write_world(tmp_path)
    with stack(tmp_path, world) as s:
        estop = s.probe.publisher(Bool, "safety/estop", QOS_COMMAND)
        held = [True]
        stop = threading.Event()

        def hold() -> None:
            while not stop.is_set():
                estop.publish(Bool(data=held[0]))
                time.sleep(0.05)
        th = threading.Thread(target=hold, daemon=True)
        th.start()
        try:
            r = call(s.probe, "safety/trigger_estop")
            assert r.success
            t_stop = s.now()
            s.probe.wait_for(lambda: s.states()[-1].estop_latched, 5, "latched state")
            time.sleep(0.3)
            r1 = call(s.probe, "safety/reset")
            assert not r1.success and "asserted" in r1.message and "estop_topic" in r1.message, \
                r1.message
            held[0] = False
            time.sleep(0.3)
            r2 = call(s.probe, "safety/reset")
            t2 = s.now()
            assert t2 - t_stop < 5.0
            assert not r2.success and "5 s" in r2.message, r2.message
            s.wait_sim(t_stop + 5.2)
            r3 = call(s.probe, "safety/reset")
            assert r3.success, r3.message
            s.probe.wait_for(lambda: s.states()[-1].level < SafetyState.LEVEL_EMERGENCY_STOP
                             and not s.states()[-1].estop_latched, 5, "unlatched state")
            # no automatic restart: nothing moves until a new command arrives
            n_cmd = s.probe.count("cmd_vel")
            t_reset = s.now()
            s.wait_sim(t_reset + 1.5)
            still = [math.hypot(m.twist.twist.linear.x, m.twist.twist.linear.y)
                     for t, m in s.gt() if t >= t_reset]
            assert max(still) < 0.01 and s.probe.count("cmd_vel") == n_cmd
            s.command(CMD_MPS)
            s.probe.wait_for(lambda: s.speed() > 0.3, 10, "motion after a new command")
        finally:
            stop.set()
            th.join(timeout=2)
    print(f"\nrefused: {r1.message!r}; {r2.message!r}; accepted after 5 s: {r3.message!r}")


# ------------------------------------------------------------------ 5. keep-out zone
def _dist_to_polygon(px: float, py: float, poly) -> tuple[float, bool]:
    n = len(poly)
    inside = False
    best = math.inf
    for i in range(n):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
        if (y1 > py) != (y2 > py) and px < x1 + (py - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
        dx, dy = x2 - x1, y2 - y1
        u = max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(px - x1 - u * dx, py - y1 - u * dy))
    return best, inside


def test_keep_out_zone_cuts_command_at_boundary(tmp_path):
    zone = next(z for z in load_world("substation").registry.zones if z.id == "hv_keep_out")
    # 2.5 m south of the zone's south edge (y = 2), facing north into it
    spawn = (7.5, 2.0 - 2.5, math.pi / 2)
    world = write_world(tmp_path, spawn=spawn)
    with stack(tmp_path, world) as s:
        s.command(CMD_MPS)
        t0 = s.now()
        s.wait_sim(t0 + 10.0)
        end = s.gt()[-1][1]
        log = audit(tmp_path)
        states = s.states()
        speed = s.speed()
    p = end.pose.pose.position
    d, inside = _dist_to_polygon(p.x, p.y, zone.polygon)
    clearance = d - ROBOT_RADIUS_M
    print(f"\nkeep-out: robot stopped at ({p.x:.2f}, {p.y:.2f}), footprint "
          f"{clearance:.3f} m from the zone (travelled {p.y - spawn[1]:.2f} m)")
    assert not inside and clearance >= 0.0, f"footprint enters the zone ({clearance:.3f} m)"
    assert speed < 0.02, f"still moving at {speed:.2f} m/s"
    assert p.y - spawn[1] > 1.0, "the robot hardly moved toward the zone"
    in_state = any(any("keep_out" in r for r in m.reasons) for m in states)
    in_audit = any("keep_out" in json.dumps(e) for e in log)
    assert in_state or in_audit, "no keep_out cause in safety/state nor the audit log"


def test_mode_switches_to_manual_at_run_time(tmp_path):
    """An authenticated request on safety/request switches the supervisor to manual
    (hold-to-run) mode at run time; `ros2 param set /safety_supervisor mode manual` is
    refused naming that service; an unknown mode is refused naming the accepted ones.
    (Hold-to-run itself is tested on the core: tests/safety/test_safety_limits.py.)"""
    sup = InProcessSupervisor(tmp_path)
    client = rclpy.create_node("mode_client", context=sup.context)
    sup.executor.add_node(client)
    try:
        node = sup.node
        res = node.set_parameters([Parameter("mode", value="manual")])
        assert not res[0].successful and "safety/request" in res[0].reason
        assert int(node.sup.requested_mode) == 0                     # Mode.AUTOMATIC
        r = request(client, "mode", "manual", signed_for("mode", "manual", "operator"))
        assert r.success, r.message
        assert int(node.sup.requested_mode) == 1                     # Mode.MANUAL
        bad = request(client, "mode", "turbo", signed_for("mode", "turbo"))
        assert not bad.success and "automatic" in bad.message
        assert int(node.sup.requested_mode) == 1
    finally:
        sup.executor.remove_node(client)
        client.destroy_node()
        sup.close()
