"""Speed and separation monitoring: S_p by hand, the speed limit it gives, and a property
test that the limit keeps the separation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitebot.safety.config import SafetyConfig
from sitebot.safety.sources import ObstacleSet
from sitebot.safety.ssm import (SeparationMonitor, approach_factors, max_safe_speed,
                                protective_separation, stopping_distance)
from sitebot.safety.types import Obstacle
from sitebot.types import SafetyLevel

CFG = SafetyConfig()   # T_r 0.1, T_cl 0.05, a 1.0, C 0.1, Z_d 0.05, Z_r 0.05, footprint 0.4


def sp(v_r: float, v_h: float, cfg: SafetyConfig = CFG, person: bool = True) -> float:
    """S_p written out term by term, independently of the module."""
    t_s = cfg.stop_latency_s + v_r / cfg.braking_decel_mps2
    s_h = v_h * (cfg.reaction_time_s + t_s)
    s_r = v_r * cfg.reaction_time_s
    s_s = v_r * cfg.stop_latency_s + v_r ** 2 / (2 * cfg.braking_decel_mps2)
    c = cfg.intrusion_distance_m if person else 0.0
    return s_h + s_r + s_s + c + cfg.sensing_uncertainty_m + cfg.position_uncertainty_m


def obstacles(*obs: Obstacle) -> ObstacleSet:
    return ObstacleSet.from_obstacles(list(obs), CFG)


def test_protective_separation_by_hand():
    kw = dict(reaction_time_s=0.1, stop_latency_s=0.05, braking_decel_mps2=1.0,
              intrusion_distance_m=0.1, sensing_uncertainty_m=0.05,
              position_uncertainty_m=0.05)
    # standstill: S_h = 1.6 * (0.1 + 0.05) = 0.24, + C + Z_d + Z_r = 0.2 -> 0.44 m
    assert protective_separation(0.0, 1.6, **kw) == pytest.approx(0.44)
    # 0.5 m/s: T_s = 0.55 s; S_h = 1.6 * 0.65 = 1.04; S_r = 0.05; S_s = 0.025 + 0.125
    assert protective_separation(0.5, 1.6, **kw) == pytest.approx(1.44)
    # 1 m/s: S_h = 1.6 * 1.15 = 1.84; S_r = 0.1; S_s = 0.05 + 0.5 -> 2.69 m
    assert protective_separation(1.0, 1.6, **kw) == pytest.approx(2.69)
    # static obstacle at 1 m/s: 0.1 + 0.55 + Z = 0.75 (+ C 0.1 given here)
    assert protective_separation(1.0, 0.0, **kw) == pytest.approx(0.85)
    assert sp(1.0, 1.6) == pytest.approx(2.69)


def test_stopping_distance():
    # 1 m/s: 1 * (0.1 + 0.05) + 1 / 2 = 0.65 m
    assert stopping_distance(1.0, CFG) == pytest.approx(0.65)
    assert stopping_distance(-0.5, CFG) == pytest.approx(0.075 + 0.125)


def test_max_safe_speed_inverts_sp():
    # K + B u + A u^2 = d with K = 0.44, B = 1.75, A = 0.5, d = 2.35 -> u = 0.873451
    u = max_safe_speed(np.array([2.35, 0.3]), np.array([0.44, 0.44]),
                       np.array([1.75, 1.75]), 0.5)
    assert u[0] == pytest.approx((-3.5 + math.sqrt(3.5 ** 2 + 4 * 3.82)) / 2, rel=1e-9)
    assert u[0] == pytest.approx(0.87345, abs=1e-5)
    assert u[1] == -1.0    # d < K: even standing still is too close


def test_person_ahead_limits_speed():
    mon = SeparationMonitor(CFG)
    # person centre 3 m ahead, radius 0.25: d = 3 - 0.4 - 0.25 = 2.35 m
    r = mon.verdict(1.0, 0.0, obstacles(Obstacle(3.0, 0.0, 0.25, is_person=True)))
    assert r.closest_separation_m == pytest.approx(2.35)
    assert r.verdict.speed_limit_mps == pytest.approx(0.87345, abs=1e-5)
    assert r.verdict.level == SafetyLevel.REDUCED_SPEED
    assert "person_separation_limit" in r.verdict.codes
    # required separation reported at the checked speed (1 m/s, straight at it): 2.69 m
    assert r.required_separation_m == pytest.approx(2.69)
    assert sp(r.verdict.speed_limit_mps, 1.6) == pytest.approx(2.35, abs=1e-9)


def test_person_inside_protective_field_stops():
    mon = SeparationMonitor(CFG)
    # d = 1.0 - 0.4 - 0.2 = 0.4 < K = 0.44 -> protective stop, whatever the direction
    for v in (1.0, -1.0, 0.0):
        r = mon.verdict(v, 0.0, obstacles(Obstacle(-1.0, 0.0, 0.2, is_person=True)))
        assert r.verdict.level == SafetyLevel.PROTECTIVE_STOP
        assert r.verdict.speed_limit_mps == 0.0
        assert r.verdict.codes == ("person_in_protective_field",)


def test_person_nearby_forces_reduced_speed():
    mon = SeparationMonitor(CFG)
    # d = 2.0 - 0.4 - 0.2 = 1.4 < 1.5 -> reduced speed 0.25 m/s; SSM alone would allow
    # (-1.75 + sqrt(1.75^2 + 2 * (1.4 - 0.44))) = 0.4769 m/s straight at it
    r = mon.verdict(0.2, 0.0, obstacles(Obstacle(0.0, 2.0, 0.2, is_person=True)),
                    directional=False)
    assert r.person_near
    assert r.verdict.level == SafetyLevel.REDUCED_SPEED
    assert r.verdict.speed_limit_mps == pytest.approx(0.25)
    assert "person_nearby" in r.verdict.codes


def test_measured_person_speed_is_used():
    mon = SeparationMonitor(CFG)
    # walking away at 1 m/s (measured): v_h = 0 -> K = C + Z = 0.2, B = 0.15
    away = Obstacle(3.0, 0.0, 0.25, vx_mps=1.0, is_person=True, measured_speed=True)
    r = mon.verdict(1.0, 0.0, obstacles(away))
    # 0.5 u^2 + 0.15 u + 0.2 = 2.35 -> u = (-0.15 + sqrt(0.0225 + 4.3)) = 1.9291
    assert r.verdict.speed_limit_mps == pytest.approx(-0.15 + math.sqrt(0.0225 + 4.3))
    # approaching at 0.5 m/s measured: v_h = 0.5
    toward = Obstacle(3.0, 0.0, 0.25, vx_mps=-0.5, is_person=True, measured_speed=True)
    r = mon.verdict(1.0, 0.0, obstacles(toward))
    K, B = 0.5 * 0.15 + 0.2, 0.15 + 0.5
    assert r.verdict.speed_limit_mps == pytest.approx(
        -B + math.sqrt(B * B + 2 * (2.35 - K)))


def test_static_obstacle_limits_only_motion_toward_it():
    mon = SeparationMonitor(CFG)
    wall = obstacles(Obstacle(1.0, 0.0))   # a point 1 m ahead: d = 0.6, K = 0.1, B = 0.15
    r = mon.verdict(1.0, 0.0, wall)
    # 0.5 v^2 + 0.15 v + 0.1 = 0.6 -> v = -0.15 + sqrt(0.0225 + 1) = 0.86119
    assert r.verdict.speed_limit_mps == pytest.approx(-0.15 + math.sqrt(1.0225))
    assert r.verdict.level == SafetyLevel.REDUCED_SPEED
    assert "obstacle_ahead" in r.verdict.codes
    # reversing away: no limit at all
    assert mon.verdict(-1.0, 0.0, wall).verdict.speed_limit_mps == math.inf
    # in the direction-free status, static obstacles do not limit
    assert mon.verdict(0.0, 0.0, wall, directional=False).verdict.speed_limit_mps == math.inf


def test_wall_too_close_allows_backing_away():
    mon = SeparationMonitor(CFG)
    wall = obstacles(Obstacle(0.45, 0.0))    # d = 0.05 < K = 0.1
    ahead = mon.verdict(0.3, 0.0, wall)
    assert ahead.verdict.speed_limit_mps == 0.0
    assert ahead.verdict.level == SafetyLevel.REDUCED_SPEED
    assert ahead.verdict.codes == ("obstacle_in_protective_field",)
    back = mon.verdict(-0.3, 0.0, wall)
    assert back.verdict.speed_limit_mps == math.inf
    assert back.verdict.level == SafetyLevel.NORMAL


def test_approach_factors():
    x = np.array([1.0, 0.0, -1.0, 1.0])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    c = approach_factors(x, y, 1.0, 0.0, 1.0)
    assert c == pytest.approx([1.0, 0.0, 0.0, math.cos(math.pi / 4)])
    c = approach_factors(x, y, -1.0, 0.0, 1.0)
    assert c == pytest.approx([0.0, 0.0, 1.0, 0.0])
    # turning at 1 rad/s for 0.5 s: bearings within 0.5 rad count fully
    c = approach_factors(np.array([1.0]), np.array([math.tan(0.4)]), 1.0, 1.0, 0.5)
    assert c[0] == pytest.approx(1.0)
    c = approach_factors(np.array([0.0]), np.array([1.0]), 1.0, 1.0, 0.5)
    assert c[0] == pytest.approx(math.cos(math.pi / 2 - 0.5))


obstacle_st = st.builds(
    Obstacle, st.floats(-6, 6), st.floats(-6, 6), st.floats(0.0, 0.4),
    st.floats(-2, 2), st.floats(-2, 2), st.booleans(), st.booleans())


@settings(max_examples=200, deadline=None, derandomize=True)
@given(obs=st.lists(obstacle_st, min_size=1, max_size=8), v=st.floats(-2, 2),
       w=st.floats(-2, 2))
def test_limit_keeps_separation(obs, v, w):
    """At the allowed speed, every obstacle's clearance is at least S_p for the speed
    toward it (instantaneous bearing), or the robot must stop."""
    mon = SeparationMonitor(CFG)
    res = mon.verdict(v, w, obstacles(*obs))
    vmax = res.verdict.speed_limit_mps
    speed = min(abs(v), vmax)
    for o in obs:
        d = math.hypot(o.x_m, o.y_m) - CFG.footprint_radius_m - o.radius_m
        bearing = math.atan2(o.y_m, o.x_m) if v >= 0 else math.atan2(-o.y_m, -o.x_m)
        c = math.cos(bearing)
        c = c if c > 1e-9 else 0.0     # exactly sideways: not approaching
        if o.is_person:
            vh = (max(0.0, -(o.vx_mps * o.x_m + o.vy_mps * o.y_m) / math.hypot(o.x_m, o.y_m))
                  if o.measured_speed and math.hypot(o.x_m, o.y_m) > 1e-9 else
                  (math.hypot(o.vx_mps, o.vy_mps) if o.measured_speed else 1.6))
            if d < sp(0.0, vh):
                assert res.verdict.level == SafetyLevel.PROTECTIVE_STOP
                continue
        else:
            vh = (max(0.0, -(o.vx_mps * o.x_m + o.vy_mps * o.y_m) / math.hypot(o.x_m, o.y_m))
                  if o.measured_speed and math.hypot(o.x_m, o.y_m) > 1e-9 else
                  (math.hypot(o.vx_mps, o.vy_mps) if o.measured_speed else 0.0))
        if res.verdict.level == SafetyLevel.PROTECTIVE_STOP or speed * c == 0.0:
            continue
        assert d >= sp(c * speed, vh, person=o.is_person) - 1e-9
