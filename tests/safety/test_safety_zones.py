"""Zone rules: keep-out cut at the boundary, turning away allowed, restricted by role, slow
zones, path checks; property: the stopping arc of a gated command never enters."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sitebot.safety.config import SafetyConfig
from sitebot.safety.limits import apply_verdict
from sitebot.safety.ssm import stopping_distance
from sitebot.safety.types import RobotState
from sitebot.safety.zones import PolygonGeometry, ZoneRule, arc_samples
from sitebot.site.loader import parse_registry
from sitebot.types import SafetyLevel

CFG = SafetyConfig()     # footprint 0.4, margin 0.1, step 0.05, lookahead 2 s, a 1, T 0.15

KEEP_OUT = {"id": "ko", "name": "keep out", "kind": "keep_out",
            "polygon": [[3, -1], [5, -1], [5, 1], [3, 1]]}
RESTRICTED = {"id": "rz", "name": "restricted", "kind": "restricted",
              "polygon": [[-1, 3], [1, 3], [1, 5], [-1, 5]], "roles": ["supervisor"]}
SLOW = {"id": "sz", "name": "slow", "kind": "slow",
        "polygon": [[-5, -1], [-3, -1], [-3, 1], [-5, 1]], "max_speed": 0.3}


def site(*zones):
    return parse_registry({"site": "t", "places": [
        {"id": "p0", "name": "origin", "pose": [0.0, 0.0, 0.0]}], "zones": list(zones)})


def rule(role: str = "") -> ZoneRule:
    return ZoneRule(CFG, site(KEEP_OUT, RESTRICTED, SLOW), role)


def test_clearance_signed():
    g = PolygonGeometry(site(KEEP_OUT).zones[0])
    c = g.clearance(np.array([0.0, 4.0, 3.0, 6.0]), np.array([0.0, 0.0, 0.5, 2.0]))
    assert c == pytest.approx([3.0, -1.0, 0.0, math.sqrt(2.0)])


def test_far_from_keep_out_no_limit():
    v = rule().verdict(RobotState(0.0, 0.0, 0.0), 1.0, 0.0)
    assert v.level == SafetyLevel.NORMAL and v.speed_limit_mps == math.inf


def test_keep_out_ahead_cuts_speed_by_hand():
    # robot at x = 2.0 heading at the zone (edge at x = 3): samples collide where
    # 1.0 - s < 0.4 + 0.1 + 0.025, the first at s = 0.5 -> free 0.45 m;
    # 0.5 v^2 + 0.15 v = 0.45 -> v = -0.15 + sqrt(0.0225 + 0.9) = 0.81047 m/s
    v = rule().verdict(RobotState(2.0, 0.0, 0.0), 1.0, 0.0)
    assert v.speed_limit_mps == pytest.approx(-0.15 + math.sqrt(0.9225))
    assert v.codes == ("keep_out_ahead",)
    assert v.level == SafetyLevel.REDUCED_SPEED


def test_at_boundary_zero_but_turning_and_backing_allowed():
    r = rule()
    at = RobotState(2.45, 0.0, 0.0)      # clearance 0.55: free now, 0.05 m further is not
    toward = r.verdict(at, 0.5, 0.3)
    assert toward.speed_limit_mps == 0.0
    assert apply_verdict(0.5, 0.3, toward) == (0.0, 0.3)        # turn in place stays
    assert r.verdict(at, -0.5, 0.0).speed_limit_mps == math.inf  # backing away
    along = r.verdict(RobotState(2.45, 0.0, math.pi / 2), 0.5, 0.0)   # parallel to edge
    assert along.speed_limit_mps == math.inf


def test_inside_keep_out_is_protective_stop():
    v = rule().verdict(RobotState(4.0, 0.0, 0.0), -0.5, 0.0)
    assert v.level == SafetyLevel.PROTECTIVE_STOP
    assert v.codes == ("inside_keep_out",)


def test_restricted_zone_depends_on_role():
    inside = RobotState(0.0, 4.0, 0.0)
    assert rule("").verdict_at(inside).codes == ("inside_restricted_zone",)
    assert rule("operator").verdict_at(inside).level == SafetyLevel.PROTECTIVE_STOP
    assert rule("supervisor").verdict_at(inside).level == SafetyLevel.NORMAL
    r = rule("")
    r.set_role("supervisor")
    assert r.verdict_at(inside).level == SafetyLevel.NORMAL
    # approaching it without the role is cut like a keep-out
    v = rule("").verdict(RobotState(0.0, 2.0, math.pi / 2), 1.0, 0.0)
    assert v.speed_limit_mps == pytest.approx(-0.15 + math.sqrt(0.9225))


def test_slow_zone_inside_and_ahead():
    r = rule()
    # footprint overlapping (centre 0.2 m outside the edge at x = -3)
    assert r.verdict_at(RobotState(-2.8, 0.0, 0.0)).speed_limit_mps == pytest.approx(0.3)
    assert r.verdict_at(RobotState(-2.3, 0.0, 0.0)).speed_limit_mps == math.inf
    # heading into it from 1.5 m: first overlapping sample where 1.5 - s < 0.425 -> s = 1.1,
    # free 1.05 m: 0.5 v^2 + 0.15 v <= 1.05 + 0.5 * 0.3^2 -> v = 1.3165
    v = r.verdict(RobotState(-1.5, 0.0, math.pi), 1.0, 0.0)
    assert v.speed_limit_mps == math.inf          # 1.0 m/s can still brake to 0.3 in time
    v = r.verdict(RobotState(-2.0, 0.0, math.pi), 1.0, 0.0)
    # free: 1.0 - s < 0.425 -> s = 0.6 first, free 0.55: v = -0.15 + sqrt(0.0225 + 2*(0.55+0.045))
    assert v.speed_limit_mps == pytest.approx(-0.15 + math.sqrt(0.0225 + 1.19))
    assert "slow_zone_ahead" in v.codes


def test_no_pose_with_zones_stops():
    assert rule().verdict(None, 0.5, 0.0).codes == ("pose_unknown",)
    assert ZoneRule(CFG, None).verdict(None, 0.5, 0.0).level == SafetyLevel.NORMAL


def test_path_allowed():
    r = rule()
    assert r.path_allowed([(0, 0), (2, 0)])
    check = r.path_allowed([(0, 0), (2.6, 0)])      # footprint + margin reaches x = 3.1
    assert not check and check.zone_id == "ko"
    ok, reason = check
    assert "keep-out zone 'ko'" in reason
    assert not r.path_allowed([(0, 0), (0, 6)])     # through the restricted zone
    assert rule("supervisor").path_allowed([(0, 0), (0, 6)])
    assert not r.path_allowed([(0, float("nan"))])
    assert not r.path_allowed([])


def test_arc_samples_follow_the_arc():
    x, y, s = arc_samples(0.0, 0.0, 0.0, 1.0, 1.0, math.pi / 2, 0.01)
    # radius 1 m quarter circle ends near (1, 1)
    assert s[-1] >= math.pi / 2
    k = int(np.searchsorted(s, math.pi / 2))
    assert (x[k], y[k]) == pytest.approx((1.0, 1.0), abs=0.02)
    x, y, s = arc_samples(1.0, 2.0, math.pi, -0.5, 0.0, 1.0, 0.5)
    assert x == pytest.approx([1.0, 1.5, 2.0]) and y == pytest.approx([2.0, 2.0, 2.0])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(x=st.floats(-2, 7), y=st.floats(-3, 3), yaw=st.floats(-math.pi, math.pi),
       v=st.floats(-1.5, 1.5), w=st.floats(-1.5, 1.5))
def test_gated_command_never_enters_keep_out(x, y, yaw, v, w):
    """From any pose at least the margin (+ half a step) outside, the gated command's
    stopping arc keeps the footprint + margin out of the keep-out zone."""
    r = ZoneRule(CFG, site(KEEP_OUT))
    g = r.forbidden[0]
    need = CFG.footprint_radius_m + CFG.zone_margin_m
    assume(g.clearance(np.array([x]), np.array([y]))[0] >= need + CFG.zone_sample_step_m / 2)
    state = RobotState(x, y, yaw)
    vo, wo = apply_verdict(v, w, r.verdict(state, v, w))
    if vo == 0.0:
        return
    assert math.copysign(1, vo) == math.copysign(1, v) and abs(vo) <= abs(v) + 1e-12
    xs, ys, _ = arc_samples(x, y, yaw, vo, wo, stopping_distance(vo, CFG), 0.002)
    assert g.clearance(xs, ys).min() >= need - 1e-9
