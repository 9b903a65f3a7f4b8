"""The control loop in the simulation (lockstep with PyBullet): the watchdogs stop the real
robot within the configured timeout plus one braking distance, a category 0 stop brakes at
once, stops hold until released, and tracking meets its aims."""
from __future__ import annotations

import math

import pytest
from heartbeats import Beats

from sitebot.control.kernel import Status
from sitebot.sim.simulation import SimConfig, SiteSimulation
from sitebot.tools.control_tracking import track_arm, track_base
from sitebot.types import StopCategory

V = 0.5          # [m/s] cruise speed of these tests


@pytest.fixture
def sim():
    s = SiteSimulation("substation", config=SimConfig(camera_enabled=False))
    yield s
    s.close()


def speed(sim: SiteSimulation) -> float:
    return math.hypot(*sim.ground_truth().linear_velocity_mps[:2])


def position(sim: SiteSimulation) -> tuple[float, float]:
    gt = sim.ground_truth()
    return gt.x_m, gt.y_m


def beats(sim: SiteSimulation) -> Beats:
    """The supervisor's heartbeats for the simulated robot's controller (one per sim)."""
    ctl = sim.robot().controller
    if not hasattr(ctl, "test_beats"):
        ctl.test_beats = Beats(ctl)
    return ctl.test_beats


def cruise(sim: SiteSimulation, duration_s: float = 2.0) -> None:
    """Fresh commands and heartbeats every step until at speed V."""
    ctl = sim.robot().controller
    for _ in range(int(duration_s / sim.config.time_step_s)):
        beats(sim).beat(sim.time_s, StopCategory.NONE, 1.0)
        ctl.set_base_command(V, 0.0, sim.time_s)
        sim.step()
    assert speed(sim) == pytest.approx(V, rel=0.05)


def run_until_stopped(sim: SiteSimulation, limit_s: float, heartbeat: bool, commands: bool
                      ) -> float:
    """Step (keeping heartbeat and/or commands alive) until the base is still; return the
    time it took [s]."""
    ctl = sim.robot().controller
    t0 = sim.time_s
    while sim.time_s - t0 < limit_s:
        if heartbeat:
            beats(sim).beat(sim.time_s, StopCategory.NONE, 1.0)
        if commands:
            ctl.set_base_command(V, 0.0, sim.time_s)
        sim.step()
        if speed(sim) < 0.01:
            return sim.time_s - t0
    return math.inf


def braking_bound(sim: SiteSimulation, timeout_s: float) -> tuple[float, float]:
    """(time, distance) allowed: the timeout at speed V, then one braking ramp at the
    configured deceleration, plus 0.1 s / 2 cm for the physics to follow."""
    a = sim.robot().controller.config.base_lin_acc_max
    return (timeout_s + V / a + 0.1, V * timeout_s + V * V / (2 * a) + 0.02)


def test_command_stream_stops_then_the_robot_stops(sim):
    cruise(sim)
    p0 = position(sim)
    took = run_until_stopped(sim, 5.0, heartbeat=True, commands=False)
    t_max, d_max = braking_bound(sim, sim.config.cmd_timeout_s)
    assert took <= t_max, f"stopped after {took:.2f} s, allowed {t_max:.2f} s"
    assert math.dist(p0, position(sim)) <= d_max
    assert sim.robot().controller.status is Status.COMMAND_TIMEOUT


def test_heartbeat_lost_then_the_robot_stops_and_stays_stopped(sim):
    cruise(sim)
    p0 = position(sim)
    took = run_until_stopped(sim, 5.0, heartbeat=False, commands=True)
    t_max, d_max = braking_bound(sim, sim.config.heartbeat_timeout_s)
    assert took <= t_max, f"stopped after {took:.2f} s, allowed {t_max:.2f} s"
    assert math.dist(p0, position(sim)) <= d_max
    ctl = sim.robot().controller
    assert ctl.status in (Status.HEARTBEAT_TIMEOUT, Status.STOPPED)
    # the heartbeat comes back but the stop is latched: fresh commands do not move it ...
    p1 = position(sim)
    for _ in range(240):
        beats(sim).beat(sim.time_s, StopCategory.NONE, 1.0)
        ctl.set_base_command(V, 0.0, sim.time_s)
        sim.step()
    assert math.dist(p1, position(sim)) < 0.005
    # ... until the stop is released
    assert beats(sim).release(sim.time_s)
    for _ in range(480):
        beats(sim).beat(sim.time_s, StopCategory.NONE, 1.0)
        ctl.set_base_command(V, 0.0, sim.time_s)
        sim.step()
    assert speed(sim) == pytest.approx(V, rel=0.05)


def test_category_0_brakes_at_once_and_release_is_refused_while_requested(sim):
    cruise(sim)
    ctl = sim.robot().controller
    p0 = position(sim)
    took = math.inf
    t0 = sim.time_s
    while sim.time_s - t0 < 3.0:
        beats(sim).beat(sim.time_s, StopCategory.CAT0, 1.0)
        ctl.set_base_command(V, 0.0, sim.time_s)
        sim.step()
        if speed(sim) < 0.01:
            took = sim.time_s - t0
            break
    # no ramp: the wheels are braked at once (the base slides on for a few cm)
    assert took < 0.4, f"category 0 stop took {took:.2f} s"
    assert math.dist(p0, position(sim)) < 0.15
    assert not beats(sim).release(sim.time_s, StopCategory.CAT0), \
        "release must be refused while the stop is requested"


def test_speed_scale_caps_the_base(sim):
    """The scale caps the speed at scale x base_lin_vel_max (1.0 m/s): 0.3 caps a 0.5 m/s
    command to 0.3 m/s; 0.8 leaves it alone (the supervisor already limited it)."""
    ctl = sim.robot().controller
    for scale, expected in ((0.3, 0.3), (0.8, V)):
        for _ in range(720):
            beats(sim).beat(sim.time_s, StopCategory.NONE, scale)
            ctl.set_base_command(V, 0.0, sim.time_s)
            sim.step()
        assert speed(sim) == pytest.approx(expected, rel=0.05), scale


def test_arm_tracking_meets_the_aim():
    r = track_arm(seg_s=1.5, n_waypoints=3)
    assert r.rms_error_rad < 0.01, r
    assert r.max_error_rad < 0.05, r


def test_base_velocity_tracking():
    r = track_base(commands=((0.5, 0.0, 2.5), (0.3, 0.4, 2.5)))
    assert r.rms_linear_error_mps < 0.03, r
    assert r.rms_angular_error_radps < 0.05, r
    assert r.samples > 500
