"""Run control of a simulation (sitebot.sim.runner.SimRunner), the simulator's parameters
(sitebot.sim.params) and the fault-message helpers (sitebot.sim.faults), without PyBullet: a
fake simulation and a fake wall clock."""
from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from sitebot.errors import SimulationError, SitebotError
from sitebot.sim.faults import (describe_event, invalid_fault_event, load_fault_schedule,
                                parse_fault_message)
from sitebot.sim.params import SCHEMA, robot_spawns, sim_config_from_params
from sitebot.sim.runner import OBJECTS_PERIOD_S, SimRunner
from sitebot.sim.simulation import RobotSpawn, Sample, SampleKind
from sitebot.types import DiagnosticLevel

DT = 0.01


class FakeSim:
    """What the runner and the fault injector use of a SiteSimulation."""

    def __init__(self) -> None:
        self.step_count = 0
        self.config = SimpleNamespace(time_step_s=DT)
        self.world = SimpleNamespace(id="substation")
        self.robots = {"": object()}
        self.resets: list[int] = []

    @property
    def time_s(self) -> float:
        return self.step_count * DT

    def step(self) -> list[Sample]:
        self.step_count += 1
        return [Sample("", SampleKind.GROUND_TRUTH, self.time_s, self.step_count)]

    def reset(self, seed: int) -> None:
        self.resets.append(seed)
        self.step_count = 0


class FakeClock:
    """A wall clock that advances only by sleeping (and by ``advance``)."""

    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def runner(sim: FakeSim | None = None, clock: FakeClock | None = None, **kw) -> SimRunner:
    clock = clock or FakeClock()
    kw.setdefault("fault_schedule", list)
    return SimRunner(sim or FakeSim(), monotonic=clock.monotonic, sleep=clock.sleep, **kw)


# ------------------------------------------------------------------ due times
def test_clock_and_control_state_fall_due_at_their_rates():
    r = runner(real_time_factor=0.0, clock_rate_hz=50.0, control_state_rate_hz=20.0)
    ticks = [r.tick() for _ in range(100)]                        # 1 s at 10 ms steps
    assert [t.t_s for t in ticks[:3]] == pytest.approx([0.01, 0.02, 0.03])
    assert [s.data for t in ticks for s in t.samples] == list(range(1, 101))
    clock = [round(t.t_s, 6) for t in ticks if t.clock_due]
    control = [round(t.t_s, 6) for t in ticks if t.control_state_due]
    # due from time 0 (the first step), then every 20 ms / 50 ms of simulation time
    assert len(clock) == 51 and clock[:4] == [0.01, 0.02, 0.04, 0.06] and clock[-1] == 1.0
    assert len(control) == 21 and control[:4] == [0.01, 0.05, 0.1, 0.15]


# ------------------------------------------------------------------ pause, step, reset
def test_paused_runner_sleeps_and_steps_on_request():
    sim, clock = FakeSim(), FakeClock()
    r = runner(sim, clock, paused=True)
    assert r.tick() is None and sim.step_count == 0
    assert clock.slept == [0.002]                                 # IDLE_POLL_S

    done: list = []
    th = threading.Thread(target=lambda: done.append(r.step(3, timeout_s=5.0)))
    th.start()
    while th.is_alive():
        r.tick()
    assert done == [(True, "stepped 3", pytest.approx(0.03))]
    assert sim.step_count == 3
    assert r.tick() is None                                       # paused again after 3

    assert r.set_paused(False) == (True, "running")
    assert r.step(1) == (False, "simulation is running; pause it first", None)
    assert r.set_paused(True) == (True, "paused")


def test_reset_waits_for_the_physics_thread_and_reloads_the_schedule():
    sim = FakeSim()
    loads: list[int] = []

    def schedule() -> list:
        loads.append(1)
        return parse_fault_message('{"kind": "lighting", "preset": "dim", "at": 1000}')

    r = runner(sim, fault_schedule=schedule, seed=1, real_time_factor=0.0)
    for _ in range(30):
        r.tick()
    latched: list[float] = []
    out: list = []
    th = threading.Thread(target=lambda: out.append(r.reset("", 7, timeout_s=5.0)))
    th.start()
    while not sim.resets:
        first = r.tick(on_reset=lambda: latched.append(sim.time_s))
    th.join(timeout=5.0)
    assert out == [(True, "reset")]
    assert sim.resets == [7] and latched == [0.0]                 # published before waking
    assert len(loads) == 2 and len(r.faults.pending) == 1         # the file is read again
    assert r.faults.rng.integers(1 << 30) == runner(
        FakeSim(), fault_schedule=list, seed=7).faults.rng.integers(1 << 30)
    # the tick that resets steps too: time restarts from 0 and everything is due again
    assert first.t_s == pytest.approx(0.01) and first.clock_due and first.control_state_due

    assert r.reset("datacentre", 1) == (
        False, "switching worlds is not supported at run time (running 'substation')")
    assert r.reset("", 1, timeout_s=0.01) == (False, "timed out waiting for the physics thread")


# ------------------------------------------------------------------ faults
def test_inject_queues_faults_and_reports_bad_ones():
    sim = FakeSim()
    r = runner(sim)
    for _ in range(50):
        r.tick()                                                  # t = 0.5 s
    assert r.inject(json.dumps([{"kind": "lighting", "preset": "dim"},
                                {"kind": "sensor_dropout", "sensor": "scan", "duration": 1,
                                 "at": 2.0}])) is None
    assert [(f.kind, f.at) for f in r.faults.pending] == [("lighting", 0.5),
                                                          ("sensor_dropout", 2.0)]
    ev = r.inject("{not json")
    assert ev["phase"] == "error" and ev["kind"] == "invalid" and ev["t"] == pytest.approx(0.5)
    ev = r.inject('{"kind": "earthquake"}')
    assert "sim/fault[0].kind" in ev["error"] and "earthquake" in ev["error"]
    assert len(r.faults.pending) == 2                             # nothing queued


def test_fault_messages_schedules_and_event_lines(tmp_path):
    assert [f.kind for f in parse_fault_message('{"kind": "remove_body", "id": "box"}')] == \
        ["remove_body"]
    with pytest.raises(ValueError):
        parse_fault_message("[1, 2")
    with pytest.raises(SimulationError, match=r"sim/fault\[1\]\.id"):
        parse_fault_message('[{"kind": "remove_body", "id": "a"}, {"kind": "remove_body"}]')
    path = tmp_path / "faults.yaml"
    path.write_text("faults:\n  - {kind: lighting, preset: dim, at: 3.5}\n")
    (f,) = load_fault_schedule(path)
    assert (f.kind, f.at, f.params["preset"]) == ("lighting", 3.5, "dim")
    path.write_text("- {kind: lighting, at: 1}\n")
    with pytest.raises(SimulationError, match=r"faults\.yaml: faults\[0\]\.preset"):
        load_fault_schedule(path)
    assert invalid_fault_event(1.5, "bad") == {"t": 1.5, "phase": "error", "kind": "invalid",
                                              "error": "bad"}
    assert describe_event({"t": 2.0, "kind": "lighting", "phase": "start"}) == (
        False, "fault lighting start at t=2.000 s")
    assert describe_event({"t": 0.25, "kind": "invalid", "phase": "error", "error": "x"}) == (
        True, "fault invalid error at t=0.250 s: x")


# ------------------------------------------------------------------ pacing, diagnostics
def test_pacing_holds_the_real_time_factor_and_measures_it():
    clock = FakeClock()
    r = runner(clock=clock, real_time_factor=2.0)
    due = []
    for _ in range(300):                                          # 3 s of simulation
        r.tick()
        due.append(r.pace())
    # at 2x, 3 s of simulation take 1.5 s of wall time (sleeps only when >= 2 ms ahead)
    assert clock.t - 100.0 == pytest.approx(1.5, abs=0.003)
    assert due.count(True) == 1
    assert r.rtf_measured == pytest.approx(2.0, rel=0.01)
    d = r.diagnostic()
    assert d.name == "physics" and d.level == DiagnosticLevel.OK
    assert d.message == "real-time factor 2.00"
    assert dict(d.values) == {"sim_time_s": "3.000", "real_time_factor": f"{r.rtf_measured:.3f}",
                              "paused": "False", "world": "substation"}
    r.rtf_measured = 1.5                                          # below 80 % of 2
    assert r.diagnostic().level == DiagnosticLevel.WARN
    assert r.diagnostic().message == "real-time factor 1.50 below target 2"


def test_as_fast_as_possible_never_sleeps():
    clock = FakeClock()
    r = runner(clock=clock, real_time_factor=0.0)
    for _ in range(100):
        r.tick()
        assert r.pace() is False
    assert clock.slept == []
    assert r.diagnostic().level == DiagnosticLevel.OK             # no target, no warning


def test_objects_are_published_at_most_every_half_second_per_robot():
    r = runner()
    objs = {"drill": (1.0, 2.0, 0.1)}
    times = [0.05 * k for k in range(25)]
    sent = [t for t in times if r.objects_due("", t, objs)]
    assert OBJECTS_PERIOD_S == 0.5
    assert sent == pytest.approx([0.0, 0.5, 1.0])
    assert r.objects_due("robot2", 0.6, objs)                     # per robot
    assert not r.objects_due("robot2", 5.0, {})                   # nothing to publish


# ------------------------------------------------------------------ parameters
def test_sim_config_from_the_schema_defaults():
    p = {s.name: s.default for s in SCHEMA}
    cfg = sim_config_from_params({**p, "scan_rate_hz": 0.0, "camera_width": 640,
                                  "odom_slip_std": 0.02, "seed": 5})
    assert cfg.time_step_s == pytest.approx(1 / 240)
    assert cfg.rates.scan_hz == 0.0 and cfg.lidar.scan_rate_hz == 1e-3   # never 0 in the model
    assert cfg.rates.camera_hz == 5.0 and cfg.camera.width == 640 and cfg.camera.height == 240
    assert cfg.odom.slip_sigma == 0.02 and cfg.imu.gyro_noise_sigma_radps == 0.002
    assert cfg.seed == 5 and cfg.cmd_timeout_s == 0.5 and cfg.supervisor_required


def test_robot_spawns():
    assert robot_spawns([], []) == [RobotSpawn("", None)]
    assert robot_spawns(["r1", "r2"], [1, 2, 0.5, 3, 4, -1.0]) == [
        RobotSpawn("r1", (1, 2, 0.5)), RobotSpawn("r2", (3, 4, -1.0))]
    with pytest.raises(SitebotError, match=r"'robot_poses': 4 values for 2 robots"):
        robot_spawns(["r1", "r2"], [1, 2, 3, 4])
