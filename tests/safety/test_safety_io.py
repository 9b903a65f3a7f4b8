"""The safety supervisor's message conversions (sitebot.nodes.safety_io)."""
from __future__ import annotations

import math

import pytest
from builtin_interfaces.msg import Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker

from sitebot.nodes import safety_io
from sitebot.safety import Cause, Mode, SafetyConfig, SafetyLevel, SafetyStatus, StopCategory
from sitebot.site.loader import parse_registry
from sitebot_interfaces.msg import SafetyState, TrackedPerson, TrackedPersonArray

STAMP = Time(sec=12, nanosec=500)


def _status(level: SafetyLevel, cat: StopCategory, required: float) -> SafetyStatus:
    return SafetyStatus(stamp_s=12.0, level=level, mode=Mode.REDUCED_SPEED, stop_category=cat,
                        speed_scale=0.25, max_linear_speed_mps=0.25,
                        causes=(Cause("person_nearby", level, "a person"),),
                        closest_separation_m=1.2, required_separation_m=required,
                        estop_latched=False, message="a person")


def test_safety_state_message():
    m = safety_io.safety_state_msg(_status(SafetyLevel.PROTECTIVE_STOP, StopCategory.CAT2, 0.8),
                                   7, STAMP, "base_footprint")
    assert (m.level, m.stop_category) == (SafetyState.LEVEL_PROTECTIVE_STOP,
                                          SafetyState.STOP_CATEGORY_2)
    assert m.mode == int(Mode.REDUCED_SPEED) and m.sequence == 7
    assert (m.speed_scale, m.closest_separation_m, m.required_separation_m) == \
        pytest.approx((0.25, 1.2, 0.8))
    assert list(m.reasons) == ["person_nearby"] and m.message == "a person"
    assert m.header.stamp == STAMP and m.header.frame_id == "base_footprint"


def test_field_and_zone_markers():
    arr = safety_io.field_markers(_status(SafetyLevel.REDUCED_SPEED, StopCategory.NONE, 1.1),
                                  0.4, "base_footprint", STAMP)
    (mk,) = arr.markers
    assert (mk.ns, mk.id, mk.type) == ("protective_field", 0, Marker.LINE_STRIP)
    assert len(mk.points) == 37 and mk.points[0].z == pytest.approx(0.05)
    assert math.hypot(mk.points[9].x, mk.points[9].y) == pytest.approx(1.5)
    assert (mk.color.r, mk.color.g, mk.color.b) == pytest.approx((1.0, 0.7, 0.0))
    assert mk.header.stamp == STAMP and mk.scale.x == pytest.approx(0.03)
    reg = parse_registry({"site": "s", "zones": [
        {"id": "pit", "name": "Pit", "kind": "keep_out", "polygon": [[0, 0], [2, 0], [2, 1]]},
        {"id": "yard", "name": "Yard", "kind": "slow", "max_speed": 0.3,
         "polygon": [[5, 5], [6, 5], [6, 6]]}]})
    z = safety_io.zone_markers(reg.zones, "map").markers
    assert [(m.ns, m.id, m.text) for m in z] == [("zone/keep_out", 0, "Pit"),
                                                ("zone/slow", 1, "Yard")]
    assert [c for p in z[0].points for c in (p.x, p.y, p.z)] == pytest.approx(
        [0, 0, 0.02, 2, 0, 0.02, 2, 1, 0.02, 0, 0, 0.02])


def test_people_and_trajectories_in():
    msg = TrackedPersonArray()
    q = TrackedPerson()
    q.pose.pose.position.x, q.pose.pose.position.y = 3.0, -1.0
    q.twist.twist.linear.x = -0.5
    q.pose.covariance[0], q.pose.covariance[7] = 0.01, 0.04
    msg.people.append(q)
    (p,) = safety_io.people_obstacles(msg, SafetyConfig())
    assert (p.x_m, p.y_m, p.radius_m, p.vx_mps) == (3.0, -1.0, 0.25, -0.5)
    assert p.is_person and p.measured_speed and p.position_std_m == pytest.approx(0.2)
    tr = JointTrajectory(joint_names=["a", "b"])
    tr.points.append(JointTrajectoryPoint(positions=[0.1, 0.2], velocities=[0.0, 0.1]))
    tr.points[0].time_from_start.sec, tr.points[0].time_from_start.nanosec = 1, 500_000_000
    (pt,) = safety_io.trajectory_points(tr)
    assert pt.positions == (0.1, 0.2) and pt.velocities == (0.0, 0.1)
    assert pt.time_from_start_s == pytest.approx(1.5)
