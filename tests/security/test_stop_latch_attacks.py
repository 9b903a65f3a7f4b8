"""Issue 19, findings 1 and 2 (motion): a participant on the robot's DDS domain that is not
the safety supervisor cannot move the robot, during a stop or otherwise.

Against the running stack (stack.launch.yaml: simulator with the control loop, and the
safety supervisor, as separate processes), measured with ``ground_truth/odom``:

1. ``cmd_vel`` published straight to the control loop at 0.5 m/s (bypassing the supervisor,
   toward the HV keep-out zone): 0 m moved; the same speed through ``cmd_vel_in`` moves it
   (the stack is live).
2. During an emergency stop, a forged heartbeat (SafetyState level 0, no stop, scale 1.0) at
   200 Hz plus ``cmd_vel`` at 0.3 m/s: 0 m moved, and the supervisor reports the second
   heartbeat source (an e-stop with that cause in its audit log).
3. An impostor that takes the supervisor's node name and sends "no stop" heartbeats (with a
   release count) and ``cmd_vel``: 0 m moved.

Bounded loops, localhost only (the test's own ROS domain).
"""
from __future__ import annotations

import json
import math
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from std_srvs.srv import Trigger

from sitebot.launcher import launched
from sitebot.nodes.common import QOS_COMMAND
from sitebot_interfaces.msg import ControllerStatus, SafetyState

from rosprobe import Probe, SupervisorDouble

pytestmark = pytest.mark.integration

STILL_M = 0.01           # "0 m": below the simulator's ground-truth jitter, far below a step


class Flood:
    """Publishes from a thread at ``rate_hz`` until stopped: a forged heartbeat and/or a
    ``cmd_vel``."""

    def __init__(self, probe: Probe, rate_hz: float, v: float, heartbeat: bool,
                 impostor: SupervisorDouble | None = None) -> None:
        self.probe, self.period, self.v, self.heartbeat = probe, 1.0 / rate_hz, v, heartbeat
        self.impostor = impostor
        self.state = probe.publisher(SafetyState, "safety/state")
        self.cmd = (impostor.cmd_pub if impostor is not None
                    else probe.publisher(TwistStamped, "cmd_vel", QOS_COMMAND))
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seq = 10**6
        while not self._stop.wait(self.period):
            seq += 1
            if self.impostor is not None:
                self.impostor.releases += 1          # every beat claims a new release
                self.impostor.beat(SafetyState.STOP_NONE, 1.0)
            elif self.heartbeat:
                m = SafetyState(level=SafetyState.LEVEL_NORMAL, stop_category=SafetyState.STOP_NONE,
                                speed_scale=1.0, max_linear_speed_mps=1.0, sequence=seq,
                                session=0xF0F0, releases=seq)
                self.state.publish(m)                # stamp 0: arrival time counts
            c = TwistStamped()                       # stamp 0: "now" to every node
            c.twist.linear.x = self.v
            self.cmd.publish(c)
            self.sent += 1

    def __enter__(self) -> "Flood":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


@contextmanager
def running_stack(tmp_path: Path):
    probe = Probe("attack_probe")
    probe.subscribe(Clock, "/clock", "state", keep=False)
    probe.subscribe(Odometry, "ground_truth/odom", "state")
    probe.subscribe(SafetyState, "safety/state", "state")
    probe.subscribe(ControllerStatus, "control/state", "state")
    try:
        with launched("stack.launch.yaml", {
                "world": "substation", "real_time_factor": "1.0", "camera_enabled": "false",
                "audit_log": str(tmp_path / "audit.jsonl")}) as h:
            probe.wait_for(lambda: probe.count("safety/state") > 5
                           and probe.count("ground_truth/odom") > 5
                           and any(m.latch == 0 for _, m in probe.get("control/state")),
                           90, "the stack up and the loop released by its supervisor", launch=h)
            yield h, probe
    finally:
        probe.close()


def position(probe: Probe) -> tuple[float, float]:
    p = probe.get("ground_truth/odom")[-1][1].pose.pose.position
    return p.x, p.y


def speed(probe: Probe) -> float:
    t = probe.get("ground_truth/odom")[-1][1].twist.twist.linear
    return math.hypot(t.x, t.y)


def sim_now(probe: Probe) -> float:
    return probe.latest_sim_time()


def wait_sim(probe: Probe, h, seconds: float) -> None:
    t0 = sim_now(probe)
    probe.wait_for(lambda: sim_now(probe) >= t0 + seconds, 10 * seconds + 20,
                   f"{seconds} s of sim time", launch=h)


def moved_during(probe: Probe, h, seconds: float) -> float:
    """The largest distance from where the robot was, over ``seconds`` of sim time."""
    t0 = sim_now(probe)
    x0, y0 = position(probe)
    wait_sim(probe, h, seconds)
    return max(math.hypot(m.pose.pose.position.x - x0, m.pose.pose.position.y - y0)
               for t, m in probe.get("ground_truth/odom") if t >= t0)


def call(probe: Probe, name: str) -> Trigger.Response:
    client = probe.node.create_client(Trigger, name)
    try:
        assert client.wait_for_service(timeout_sec=10.0), name
        fut = client.call_async(Trigger.Request())
        deadline = time.monotonic() + 10.0
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fut.done(), f"{name}: no answer"
        return fut.result()
    finally:
        probe.node.destroy_client(client)


def test_no_participant_but_the_supervisor_moves_the_robot(tmp_path):
    with running_stack(tmp_path) as (h, probe):
        # 1. straight to the control loop at 0.5 m/s (the robot faces the keep-out zone
        #    from its spawn in the substation world): nothing moves
        with Flood(probe, 50.0, 0.5, heartbeat=False) as f:
            direct = moved_during(probe, h, 3.0)
        assert f.sent > 20
        assert direct < STILL_M, f"direct cmd_vel moved the robot {direct:.3f} m"
        # ... while the same speed through the supervisor does (the stack is live)
        with Flood(probe, 50.0, 0.0, heartbeat=False) as f:
            f.cmd = probe.publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
            f.v = 0.3
            through = moved_during(probe, h, 2.0)
            f.v = 0.0
            probe.wait_for(lambda: speed(probe) < 0.01, 30, "stopped again", launch=h)
        assert through > 0.2, f"cmd_vel_in moved it only {through:.3f} m"

        # 2. an emergency stop, then a forged "NORMAL, no stop" heartbeat at 200 Hz and
        #    cmd_vel at 0.3 m/s (the issue measured 0.84-0.93 m before the fix)
        assert call(probe, "safety/trigger_estop").success
        probe.wait_for(lambda: probe.get("safety/state")[-1][1].level
                       == SafetyState.LEVEL_EMERGENCY_STOP, 10, "EMERGENCY_STOP", launch=h)
        with Flood(probe, 200.0, 0.3, heartbeat=True) as f:
            forged = moved_during(probe, h, 3.0)
        assert f.sent > 100
        assert forged < STILL_M, f"a forged heartbeat moved the robot {forged:.3f} m"
        loop = probe.get("control/state")[-1][1]
        assert loop.latch & ControllerStatus.LATCH_FOREIGN, loop
        assert "foreign" in loop.message

        # 3. an impostor under the supervisor's own node name, claiming releases
        impostor = SupervisorDouble(probe)
        try:
            with Flood(probe, 200.0, 0.3, heartbeat=True, impostor=impostor) as f:
                taken = moved_during(probe, h, 3.0)
        finally:
            impostor.close()
        assert f.sent > 100
        assert taken < STILL_M, f"an impostor supervisor moved the robot {taken:.3f} m"
        assert not h.failed

    # the supervisor reported the second heartbeat source: an e-stop with that cause
    log = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()
           if line.strip()]
    faults = [e for e in log if e.get("event") == "control_loop_fault"]
    assert faults and all(e["fault"] == "a second safety/state source" for e in faults), faults
    print(f"\nmoved: direct cmd_vel {direct:.4f} m, forged heartbeat in e-stop {forged:.4f} m, "
          f"impostor {taken:.4f} m (through the supervisor: {through:.2f} m)")
