"""Data sources: watchdogs, refused updates, scan clustering, people, localization
divergence, battery policies, heartbeats."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sitebot.safety.config import SafetyConfig
from sitebot.safety.sources import (BatterySource, HeartbeatSource, LocalizationSource, ObstacleSet,
                                    OdometrySource, PeopleSource, ScanSource, cluster_scan)
from sitebot.safety.types import Obstacle, RobotState, SensorPose
from sitebot.types import SafetyLevel

CFG = SafetyConfig()
INC = 2 * math.pi / 360


def ring(r: float = 8.0) -> np.ndarray:
    return np.full(360, r)


def with_person(ranges: np.ndarray, bearing_deg: float, dist: float, width: float
                ) -> np.ndarray:
    """Put a flat object of ``width`` [m] at ``dist`` [m] centred on a bearing (beam 180 =
    straight ahead for angle_min = -pi)."""
    out = ranges.copy()
    half = math.degrees(math.atan2(width / 2, dist))
    for k in range(360):
        a = -180 + k
        if abs(a - bearing_deg) <= half:
            out[k] = dist / math.cos(math.radians(a - bearing_deg))
    return out


def test_watchdog_missing_then_fresh_then_stale():
    s = OdometrySource(CFG)            # timeout 0.5 s, required
    v = s.verdict(10.0)
    assert v.level == SafetyLevel.PROTECTIVE_STOP and v.codes == ("odometry_stale",)
    assert s.update(0.2, 0.0, 10.0) is None
    assert s.verdict(10.5).level == SafetyLevel.NORMAL
    assert s.age_s(10.5) == pytest.approx(0.5)
    assert s.verdict(10.51).codes == ("odometry_stale",)


def test_stamp_rules():
    s = OdometrySource(CFG)
    assert s.update(0.0, 0.0, 10.0, stamp_s=9.9) is None
    assert s.update(0.0, 0.0, 10.1, stamp_s=9.9) == "duplicate_stamp"
    assert s.update(0.0, 0.0, 10.1, stamp_s=9.8) == "stamp_backwards"
    assert s.update(math.nan, 0.0, 10.1, stamp_s=10.0) == "non_finite_twist"
    # a stamp ahead of now counts as now (never fresher than the clock)
    assert s.update(0.0, 0.0, 10.2, stamp_s=15.0) is None
    assert s.age_s(10.2) == 0.0
    assert s.rejected == 3
    # a late message is as old as its stamp
    s2 = OdometrySource(CFG)
    s2.update(0.0, 0.0, 10.0, stamp_s=9.0)
    assert not s2.fresh(10.0)


def test_optional_source_stale_says_nothing():
    p = PeopleSource(CFG)            # people_required false
    assert p.verdict(5.0).level == SafetyLevel.NORMAL
    req = PeopleSource(SafetyConfig(people_required=True))
    assert req.verdict(5.0).codes == ("people_stale",)


def test_clock_backwards_is_stale():
    s = OdometrySource(CFG)
    s.update(0.0, 0.0, 10.0)
    assert s.age_s(9.0) == math.inf and not s.fresh(9.0)


def test_cluster_scan_wall_and_person():
    # a circular wall at 8 m (one long cluster, not a person) and a 0.4 m wide object 2 m
    # straight ahead (person-sized)
    r = with_person(ring(), 0.0, 2.0, 0.4)
    cl = cluster_scan(r, -math.pi, INC, SensorPose(), CFG)
    assert cl.x.size == 360
    assert int(cl.person.sum()) == 1
    k = int(np.flatnonzero(cl.person)[0])
    # bounding box: x 2.0, y within +-0.2 (beams at whole degrees: +-5 deg -> +-0.175 m)
    assert cl.cx[k] == pytest.approx(2.0, abs=0.01)
    assert cl.cy[k] == pytest.approx(0.0, abs=1e-9)
    assert 0.3 < cl.width[k] < 0.45
    assert not cl.person[cl.width > 1.0].any()


def test_cluster_scan_transform_and_invalid_beams():
    r = np.full(360, np.inf)
    r[180] = 1.0          # straight ahead of the laser
    r[0] = np.nan
    # laser 0.2 m forward, turned 90 deg left: its forward is the base's +y
    cl = cluster_scan(r, -math.pi, INC, SensorPose(0.2, 0.0, math.pi / 2), CFG)
    assert cl.x == pytest.approx([0.2]) and cl.y == pytest.approx([1.0])
    # REP-117: -inf is an object closer than range_min: kept, at range_min
    r3 = np.array([-np.inf, np.inf, np.nan])
    cl3 = cluster_scan(r3, 0.0, 0.1, SensorPose(), CFG, range_min_m=0.05)
    assert cl3.x == pytest.approx([0.05]) and cl3.y == pytest.approx([0.0])
    # range limits
    r2 = np.array([0.01, 1.0, 50.0])
    cl2 = cluster_scan(r2, 0.0, 0.1, SensorPose(), CFG, range_min_m=0.05, range_max_m=30.0)
    assert cl2.x.size == 1


def test_scan_source_candidates_covered_by_people():
    cfg = SafetyConfig()
    scan = ScanSource(cfg)
    r = with_person(ring(), 0.0, 2.0, 0.4)
    assert scan.update(r, -math.pi, INC, 1.0) is None
    cand = scan.candidates()
    assert len(cand) == 1 and cand.person.all()
    assert cand.vh == pytest.approx([1.6])
    assert cand.margin == pytest.approx([0.1])      # intrusion distance C
    tracked = ObstacleSet.from_obstacles([Obstacle(2.2, 0.1, 0.25, is_person=True)], cfg)
    assert len(scan.candidates(tracked)) == 0
    far = ObstacleSet.from_obstacles([Obstacle(5.0, 3.0, 0.25, is_person=True)], cfg)
    assert len(scan.candidates(far)) == 1
    assert len(scan.points) == 360 and not scan.points.person.any()


def test_scan_source_refuses_bad_scans():
    scan = ScanSource(CFG)
    assert scan.update([], -math.pi, INC, 1.0) == "ranges_empty_or_too_long"
    assert scan.update(ring(), -math.pi, 0.0, 1.0) == "bad_scan_geometry"
    assert scan.update(ring(), math.nan, INC, 1.0) == "bad_scan_geometry"
    assert scan.update(["a"], -math.pi, INC, 1.0) == "ranges_not_numeric"
    assert scan.updates == 0


def test_scan_ignore_radius():
    scan = ScanSource(SafetyConfig(scan_ignore_radius_m=0.3))
    r = ring()
    r[10] = 0.2
    scan.update(r, -math.pi, INC, 1.0)
    assert len(scan.points) == 359


def test_localization_divergence_stops_when_turning_is_not_allowed():
    loc = LocalizationSource(dataclasses.replace(CFG, relocalize_turn_radps=0.0))
    for t in (10.0, 11.0, 12.0):
        loc.update(RobotState(0, 0, 0, stamp_s=t), t, cov_trace_m2=0.5)
    v = loc.verdict(12.0)
    assert v.level == SafetyLevel.PROTECTIVE_STOP and v.codes == ("localization_diverged",)
    assert (v.speed_limit_mps, v.turn_limit_radps) == (0.0, 0.0) and v.stops


def test_people_source():
    p = PeopleSource(CFG)
    people = [Obstacle(2.0, 0.0, 0.3, vx_mps=-1.0, measured_speed=True, position_std_m=0.1),
              Obstacle(0.0, 3.0, 0.3)]
    assert p.update(people, 1.0) is None
    assert p.people.person.all()                       # every entry is a person
    assert p.people.vh == pytest.approx([1.0, 1.6])    # measured approach, default
    assert p.people.margin == pytest.approx([0.1 + 0.2, 0.1])
    assert p.update([Obstacle(math.inf, 0.0)], 2.0) == "non_finite_person"
    assert p.update(["x"], 2.0) == "not_an_obstacle"


def test_localization_divergence_reduces_then_only_turns():
    loc = LocalizationSource(CFG)          # max trace 0.25, NIS 11.34, stop after 2 s
    assert loc.update(RobotState(0, 0, 0, stamp_s=10.0), 10.0, cov_trace_m2=0.01) is None
    assert loc.verdict(10.0).level == SafetyLevel.NORMAL
    loc.update(RobotState(0, 0, 0, stamp_s=10.5), 10.5, cov_trace_m2=0.5)
    v = loc.verdict(10.5)
    assert v.level == SafetyLevel.REDUCED_SPEED and v.codes == ("localization_diverging",)
    assert v.speed_limit_mps == pytest.approx(0.25)
    loc.update(RobotState(0, 0, 0, stamp_s=12.4), 12.4, nis=50.0)
    assert loc.verdict(12.4).level == SafetyLevel.REDUCED_SPEED
    loc.update(RobotState(0, 0, 0, stamp_s=12.5), 12.5, nis=50.0)
    v = loc.verdict(12.5)
    # no translation; turning in place at up to 0.3 rad/s, to look for markers
    assert v.level == SafetyLevel.REDUCED_SPEED and v.codes == ("localization_diverged",)
    assert (v.speed_limit_mps, v.turn_limit_radps) == (0.0, pytest.approx(0.3))
    assert not v.stops and "turning in place only" in v.causes[0].message
    loc.update(RobotState(0, 0, 0, stamp_s=12.6), 12.6, cov_trace_m2=0.01, nis=1.0)
    assert loc.verdict(12.6).level == SafetyLevel.NORMAL
    loc.update(RobotState(0, 0, 0, stamp_s=12.7), 12.7, cov_trace_m2=math.nan)
    assert loc.verdict(12.7).level == SafetyLevel.REDUCED_SPEED
    assert loc.update(RobotState(math.nan, 0, 0, stamp_s=12.8), 12.8) == "non_finite_pose"


@pytest.mark.parametrize("policy,level,limit", [("finish", SafetyLevel.REDUCED_SPEED, 0.25),
                                                ("return", SafetyLevel.NORMAL, math.inf)])
def test_battery_policies(policy, level, limit):
    b = BatterySource(SafetyConfig(battery_policy=policy))   # low below 0.2
    assert b.update(0.5, 1.0) is None
    assert b.verdict(1.0).causes == ()
    b.update(0.1, 2.0)
    v = b.verdict(2.0)
    assert v.codes == ("battery_low",) and v.level == level
    assert v.speed_limit_mps == limit
    assert b.update(1.5, 3.0) == "fraction_out_of_range"


def test_heartbeat():
    h = HeartbeatSource("navigation", 1.0)
    assert h.verdict(0.0).codes == ("heartbeat_navigation_stale",)
    h.update(1.0)
    assert h.verdict(2.0).level == SafetyLevel.NORMAL
    assert h.verdict(2.1).level == SafetyLevel.PROTECTIVE_STOP
