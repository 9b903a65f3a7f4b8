"""What the supervisor node hears, as core inputs (sitebot.safety.inputs): tracked people,
the dead-reckoning map pose, the covariance trace, the filter's own health."""
from __future__ import annotations

import math

import pytest

from sitebot.errors import SitebotError
from sitebot.safety import Obstacle, RobotState, SafetyConfig, Supervisor, safety_config_from_params
from sitebot.safety.inputs import (FilterHealth, dead_reckoning_state, position_cov_trace,
                                   tracked_person)
from sitebot.types import Pose2D


def _cov(xx: float, yy: float) -> list[float]:
    c = [0.0] * 36
    c[0], c[7], c[35] = xx, yy, 9.0
    return c


def test_tracked_person_radius_speed_and_position_std():
    p = tracked_person(2.0, -1.0, 0.5, 0.25, _cov(0.04, 0.09), SafetyConfig())
    assert p == Obstacle(2.0, -1.0, 0.25, 0.5, 0.25, is_person=True, measured_speed=True,
                         source="people", position_std_m=pytest.approx(0.3))
    # the radius is the config's person_radius_m; no 6x6 covariance: std 0
    q = tracked_person(1.0, 0.0, 0.0, 0.0, [], SafetyConfig(person_radius_m=0.4))
    assert (q.radius_m, q.position_std_m) == (0.4, 0.0)
    # a negative variance (a broken tracker) is not a std
    assert tracked_person(1.0, 0.0, 0.0, 0.0, _cov(-1.0, -2.0), SafetyConfig()).position_std_m == 0.0


def test_person_radius_is_a_validated_parameter():
    assert SafetyConfig().person_radius_m == 0.25
    assert safety_config_from_params({"person_radius_m": 0.3}).person_radius_m == 0.3
    for bad in (0.01, 1.5):
        with pytest.raises(SitebotError, match="person_radius_m"):
            safety_config_from_params({"person_radius_m": bad})


def test_person_radius_sets_the_separation():
    """A tracked person 2 m ahead: clearance = 2 - footprint 0.4 - person radius."""
    seps = []
    for radius in (0.25, 0.5):
        sup = Supervisor(SafetyConfig(person_radius_m=radius, scan_required=False,
                                      localization_required=False))
        sup.on_odometry(0.0, 0.0, 10.0, stamp_s=10.0)
        sup.on_people([tracked_person(2.0, 0.0, 0.0, 0.0, [], sup.config)], 10.0, stamp_s=10.0)
        seps.append(sup.update(10.0).closest_separation_m)
    assert seps == pytest.approx([2.0 - 0.4 - 0.25, 2.0 - 0.4 - 0.5])


def test_dead_reckoning_composes_odometry_with_the_spawn_pose():
    st = dead_reckoning_state(Pose2D(1.0, 2.0, math.pi / 2), Pose2D(1.0, 0.5, 0.25),
                              0.3, -0.1, 12.5)
    assert isinstance(st, RobotState)
    assert (st.x_m, st.y_m, st.yaw_rad) == pytest.approx((0.5, 3.0, math.pi / 2 + 0.25))
    assert (st.v_mps, st.w_radps, st.stamp_s) == (0.3, -0.1, 12.5)
    # the heading is wrapped: spawn facing west, turned a further 90 deg left
    st = dead_reckoning_state(Pose2D(-12.0, -12.0, math.pi), Pose2D(0.0, 0.0, math.pi / 2),
                              0.0, 0.0, 0.0)
    assert (st.x_m, st.y_m, st.yaw_rad) == pytest.approx((-12.0, -12.0, -math.pi / 2))


def test_position_cov_trace():
    assert position_cov_trace(_cov(0.04, 0.09)) == pytest.approx(0.13)


def test_filter_health():
    h = FilterHealth()
    assert h.nis(5.0, 1.0) is None                       # no status yet
    h.update(False, 3.2, 10.0)
    assert h.nis(10.5, 1.0) == 3.2
    assert h.nis(11.0, 1.0) == 3.2                       # exactly the timeout: still fresh
    assert h.nis(11.01, 1.0) is None                     # stale: only the covariance counts
    h.update(False, math.nan, 12.0)
    assert h.nis(12.0, 1.0) == math.inf                  # a NaN NIS is divergence
    h.update(True, 0.5, 13.0)
    assert h.nis(13.2, 1.0) == math.inf                  # the filter says it diverged
