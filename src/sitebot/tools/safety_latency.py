"""Hazard-to-stop latency of the safety supervisor over topics, in simulation.

``sitebot bench safety latency [--speed 1.2] [--runs 1]`` launches ``stack.launch.yaml``
(simulator + safety supervisor as separate processes) in a copy of the substation world
with one person who walks head-on toward the robot along its line and does not yield,
commands the robot straight ahead at 0.5 m/s on ``cmd_vel_in`` and measures:

* decision delay: sim time from the stamp of the scan the supervisor last received to its
  first ``safety/state`` at PROTECTIVE_STOP (the scan that showed the person inside the
  protective field; bounded above by one scan period + one state period);
* wall time and sim time from that ``safety/state`` (probe's receive time / header stamp) to
  the first ``control/state`` from the control loop that is no longer OK (STOPPING,
  STOPPED or a timeout); control ticks = that sim time / physics step (an upper bound:
  ``control/state`` is published at 20 Hz while the loop ticks at 240 Hz);
* ground truth: the first sim time the person was inside the field (separation < the
  supervisor's required distance) and when the robot's speed reached zero.

Also the world helpers used by ``tests/safety/test_safety_sim.py``.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from sitebot.config.yamlio import load_yaml
from sitebot.nodes.convert import stamp_of as _stamp
from sitebot.paths import data_path

ROBOT_RADIUS_M = 0.4
PERSON_RADIUS_M = 0.25
PHYSICS_DT_S = 1.0 / 240.0
#: spawn of the test robot: open floor in the south-west of the substation yard, facing east
SPAWN = (-12.5, -12.0, 0.0)


def write_world(directory: str | Path, *, spawn: Sequence[float] = SPAWN,
                actors: Sequence[dict[str, Any]] = (), name: str = "substation") -> Path:
    """A copy of the substation world with robot1 at ``spawn`` and only ``actors``.

    The world id stays ``substation`` (it must equal the site registry's id); the site file
    is referenced by absolute path.  Returns the written ``.world.yaml`` path.
    """
    src = data_path("worlds") / "substation.world.yaml"
    data = load_yaml(src)
    data["site"] = str((src.parent / data["site"]).resolve())
    data["spawn"]["robot1"] = [float(v) for v in spawn]
    data["actors"] = [dict(a) for a in actors]
    out = Path(directory) / f"{name}.world.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def stack_args(world: str | Path) -> dict[str, str]:
    """Launch arguments that run the stack on a (modified) world: the simulator plays
    ``world``; the stack gets the installed bundle of the world's site and robot1's spawn as
    its initial pose (the robot's map knows neither the test's people nor its obstacles)."""
    if "/" not in str(world) and not str(world).endswith(".yaml"):
        return {"world": str(world)}
    from sitebot.sim.world_loader import load_world
    w = load_world(world)
    return {"world": str(world), "site": w.registry.site,
            "initial_pose": " ".join(repr(float(v)) for v in w.spawn_poses["robot1"])}


def crossing_actor(speed_mps: float, arrive_s: float, *, ahead_m: float = 4.0,
                   side_m: float = 2.0, spawn: Sequence[float] = SPAWN) -> dict[str, Any]:
    """A non-yielding person crossing the robot's straight-ahead line ``ahead_m`` in front
    of the spawn (from the right, walking left), reaching the line at sim time
    ``arrive_s``."""
    x0, y0, yaw = spawn
    cx, cy = x0 + ahead_m * math.cos(yaw), y0 + ahead_m * math.sin(yaw)
    nx, ny = -math.sin(yaw), math.cos(yaw)          # left of the robot
    start = [cx - side_m * nx, cy - side_m * ny]
    end = [cx + 2.5 * nx, cy + 2.5 * ny]
    return {"id": "crosser", "path": [start, end], "speed": float(speed_mps), "loop": False,
            "radius": PERSON_RADIUS_M, "yields": False,
            "start_delay": max(0.0, arrive_s - side_m / speed_mps)}


def head_on_actor(speed_mps: float, start_s: float, *, from_m: float = 5.5,
                  to_m: float = 1.3, spawn: Sequence[float] = SPAWN) -> dict[str, Any]:
    """A non-yielding person walking toward the robot along its line, stopping ``to_m``
    ahead of the spawn."""
    x0, y0, yaw = spawn
    c, s = math.cos(yaw), math.sin(yaw)
    return {"id": "oncoming", "path": [[x0 + from_m * c, y0 + from_m * s],
                                       [x0 + to_m * c, y0 + to_m * s]],
            "speed": float(speed_mps), "loop": False, "radius": PERSON_RADIUS_M,
            "yields": False, "start_delay": start_s}


def separations(odom: Sequence[tuple[float, Any]], people: Sequence[tuple[float, Any]],
                robot_radius_m: float = ROBOT_RADIUS_M,
                person_radius_m: float = PERSON_RADIUS_M) -> list[tuple[float, float, float]]:
    """(sim time, clearance footprint-to-person [m], robot speed [m/s]) from ground truth
    (``ground_truth/odom`` and ``ground_truth/people``, paired by stamp)."""
    by_stamp = {round(t, 4): m for t, m in people}
    out = []
    for t, m in odom:
        pm = by_stamp.get(round(t, 4))
        if pm is None or not pm.poses:
            continue
        p = m.pose.pose.position
        v = math.hypot(m.twist.twist.linear.x, m.twist.twist.linear.y)
        d = min(math.hypot(q.position.x - p.x, q.position.y - p.y) for q in pm.poses)
        out.append((t, d - robot_radius_m - person_radius_m, v))
    return out


# ---------------------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------------------
def _observer():
    """An independent recorder keyed by receive wall time [s] (time.monotonic)."""
    from sitebot.nodes.recorder import TopicRecorder
    return TopicRecorder("latency_bench", key=lambda _msg: time.monotonic())


def run_once(speed_mps: float = 1.2, *, out_dir: str | Path | None = None,
             t_cmd_s: float = 8.0, duration_s: float = 10.0) -> dict[str, float]:
    """One launched run; returns the figures (NaN where no stop happened)."""
    from geometry_msgs.msg import PoseArray, TwistStamped
    from nav_msgs.msg import Odometry
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import LaserScan

    from sitebot.launcher import launched
    from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE
    from sitebot_interfaces.msg import ControllerStatus, SafetyState

    tmp = Path(out_dir or tempfile.mkdtemp(prefix="sitebot_latency_"))
    world = write_world(tmp, actors=[head_on_actor(speed_mps, t_cmd_s + 1.0)])
    obs = _observer()
    obs.subscribe(Clock, "/clock", QOS_STATE)
    obs.subscribe(LaserScan, "scan", QOS_SENSOR)
    obs.subscribe(SafetyState, "safety/state", QOS_STATE)
    obs.subscribe(ControllerStatus, "control/state", QOS_STATE)
    obs.subscribe(Odometry, "ground_truth/odom", QOS_STATE)
    obs.subscribe(PoseArray, "ground_truth/people", QOS_STATE)
    pub = obs.node.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)

    def sim_now() -> float:
        c = obs.get("/clock")
        return _stamp(c[-1][1]) if c else -1.0

    def wait(pred, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.01)
        raise TimeoutError(f"timed out waiting for {what}")
    try:
        with launched("stack.launch.yaml", {**stack_args(world), "real_time_factor": "1.0",
                                            "camera_enabled": "false",
                                            "audit_log": str(tmp / "audit.jsonl")}):
            wait(lambda: obs.get("safety/state") and obs.get("ground_truth/odom"), 60,
                 "the stack")
            if sim_now() > t_cmd_s:
                raise RuntimeError(f"stack up at sim time {sim_now():.1f} s > {t_cmd_s} s")
            wait(lambda: sim_now() >= t_cmd_s, 30, "start time")
            while sim_now() < t_cmd_s + duration_s:
                m = TwistStamped()
                m.twist.linear.x = 0.5
                pub.publish(m)
                time.sleep(0.02)
    finally:
        obs.close()
    return analyse(obs.messages)


def analyse(msgs: dict[str, list[tuple[float, Any]]]) -> dict[str, float]:
    from sitebot.control.kernel import Status
    from sitebot_interfaces.msg import SafetyState
    nan = math.nan
    res: dict[str, float] = {}
    states = msgs.get("safety/state", [])
    stop = next(((w, m) for w, m in states
                 if m.level >= SafetyState.LEVEL_PROTECTIVE_STOP), None)
    if stop is None:
        return {"stopped": 0.0}
    w_dec, m_dec = stop
    t_dec = _stamp(m_dec)
    res["decision_sim_s"] = t_dec
    res["reasons"] = ",".join(m_dec.reasons)  # type: ignore[assignment]
    scans = [(w, _stamp(m)) for w, m in msgs.get("scan", []) if w <= w_dec]
    if scans:
        res["scan_to_decision_sim_ms"] = (t_dec - scans[-1][1]) * 1e3
        res["scan_to_decision_wall_ms"] = (w_dec - scans[-1][0]) * 1e3
    ctl = next(((w, m) for w, m in msgs.get("control/state", [])
                if w >= w_dec and m.status != Status.OK), None)
    if ctl is not None:
        w_c, m_c = ctl
        res["decision_to_control_wall_ms"] = (w_c - w_dec) * 1e3
        res["decision_to_control_sim_ms"] = (_stamp(m_c) - t_dec) * 1e3
        res["control_ticks"] = max(0.0, (_stamp(m_c) - t_dec) / PHYSICS_DT_S)
        res["control_status"] = float(m_c.status)
    else:
        res["decision_to_control_wall_ms"] = nan
    sep = separations(msgs.get("ground_truth/odom", []) and
                      [(_stamp(m), m) for _, m in msgs["ground_truth/odom"]],
                      [(_stamp(m), m) for _, m in msgs.get("ground_truth/people", [])])
    if sep:
        res["min_separation_m"] = min(s for _, s, _ in sep)
        req = m_dec.required_separation_m
        inside = next((t for t, s, _ in sep if math.isfinite(req) and s < req), nan)
        res["field_entry_sim_s"] = inside
        stopped = next((t for t, _, v in sep if t >= t_dec and v < 0.01), nan)
        res["stopped_sim_s"] = stopped
        res["decision_to_standstill_s"] = stopped - t_dec
    return res


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench safety latency",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--speed", type=float, default=1.2, help="person speed [m/s]")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", default=None, help="directory for the world and audit log")
    a = ap.parse_args(list(argv or []))
    for i in range(a.runs):
        r = run_once(a.speed, out_dir=a.out)
        print(f"run {i + 1}: person {a.speed:g} m/s head-on")
        for k, v in r.items():
            print(f"  {k:32s} {v:.3f}" if isinstance(v, float) else f"  {k:32s} {v}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
