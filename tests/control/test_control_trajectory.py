"""Trajectory validation before the kernel (sitebot.control.trajectory): core, no ROS."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.control.kernel import kernel_config_from_description
from sitebot.control.trajectory import (KernelTrajectory, TrajectoryCheck, TrajectoryRejected,
                                        Waypoint, explain_rejection, validate_trajectory)
from sitebot.control.types import Reject

NAMES = ["j1", "j2", "j3"]
LO = np.array([-1.0, -2.0, 0.0])
HI = np.array([1.0, 2.0, 0.04])
VMAX = np.array([1.0, 0.5, 0.1])
SP = np.array([0.1, -0.2, 0.01])


def check(names, points, setpoint=SP, ignored=(), vel_max=VMAX, tol=TrajectoryCheck()):
    return validate_trajectory(names, points, NAMES, LO, HI, setpoint, ignored, vel_max, tol)


def rejected(names, points, **kw) -> TrajectoryRejected:
    with pytest.raises(TrajectoryRejected) as e:
        check(names, points, **kw)
    return e.value


def test_check_defaults_and_validation():
    c = TrajectoryCheck()
    assert (c.limit_tolerance, c.start_tolerance, c.speed_tolerance) == (1e-9, 1e-3, 1e-6)
    for field in ("limit_tolerance", "start_tolerance", "speed_tolerance"):
        for bad in (-1e-3, math.nan, math.inf, "x"):
            with pytest.raises(ValueError, match=field):
                TrajectoryCheck(**{field: bad})
    assert TrajectoryCheck(start_tolerance=0).start_tolerance == 0.0


def test_reorders_fills_missing_joints_and_drops_ignored_ones():
    t = check(["j3", "mimic", "j1"], [Waypoint(1.0, [0.02, 9.0, 0.5], [0.01, 0.0, 0.2]),
                                      Waypoint(2.0, [0.03, 9.0, 0.6], [0.0, 0.0, 0.0])],
              ignored=["mimic"])
    assert isinstance(t, KernelTrajectory)
    np.testing.assert_array_equal(t.times_s, [1.0, 2.0])
    np.testing.assert_array_equal(t.positions, [[0.5, -0.2, 0.02], [0.6, -0.2, 0.03]])
    np.testing.assert_array_equal(t.velocities, [[0.2, 0.0, 0.01], [0.0, 0.0, 0.0]])
    assert t.accelerations is None


@pytest.mark.parametrize("names, points, code, text", [
    (NAMES, [], Reject.EMPTY, "no points"),
    ([], [Waypoint(1.0, [])], Reject.WRONG_SIZE, "no joint_names"),
    (["j1", "j1"], [Waypoint(1.0, [0.0, 0.0])], Reject.WRONG_SIZE, "duplicate joint name(s) j1"),
    (["j1", "x"], [Waypoint(1.0, [0.0, 0.0])], None, "unknown joint(s) 'x'"),
    (["m"], [Waypoint(1.0, [0.0])], Reject.WRONG_SIZE, "names only ignored joints (m)"),
    (NAMES, [Waypoint(1.0, [0.0, 0.0])], Reject.WRONG_SIZE, "point 0: 2 positions for 3"),
    (NAMES, [Waypoint(1.0, SP, [0, 0, 0]), Waypoint(2.0, SP)], Reject.WRONG_SIZE,
     "point 1: 0 velocities for 3 joint names (point 0 has them: all points or none)"),
    (NAMES, [Waypoint(1.0, SP), Waypoint(2.0, SP, [0, 0, 0])], Reject.WRONG_SIZE,
     "point 1: has velocities but point 0 has none"),
    (NAMES, [Waypoint(math.inf, SP)], Reject.NON_FINITE, "time_from_start is not finite"),
    (NAMES, [Waypoint(-0.5, SP)], Reject.NON_MONOTONIC_TIME, "time_from_start -0.5 s is negative"),
    (NAMES, [Waypoint(1.0, SP), Waypoint(0.75, SP)], Reject.NON_MONOTONIC_TIME,
     "point 1: time_from_start 0.75 s is not after point 0's 1 s"),
    (NAMES, [Waypoint(1.0, SP, [], [0, 0, 0])], Reject.WRONG_SIZE,
     "accelerations without velocities"),
    (NAMES, [Waypoint(1.0, [0.1, math.nan, 0.0])], Reject.NON_FINITE,
     "point 0: position of j2 is nan"),
    (NAMES, [Waypoint(1.0, SP, [0.0, 0.0, -math.inf])], Reject.NON_FINITE,
     "point 0: velocity of j3 is -inf"),
    (NAMES, [Waypoint(9.0, [0.1, 2.5, 0.0])], Reject.OUT_OF_LIMITS,
     "point 0: position 2.5 of j2 is outside its limits [-2, 2]"),
    # 0.1 -> 0.9 in 0.5 s: 1.6 on average, over j1's 1.0
    (NAMES, [Waypoint(0.5, [0.9, -0.2, 0.01])], Reject.OUT_OF_LIMITS,
     "point 0: j1 would have to move from its setpoint 0.1 to 0.9 in 0.5 s, 1.6 on average, "
     "over its velocity limit 1"),
    # a first point at time 0 that is 0.3 away from the setpoint would be a jump
    (NAMES, [Waypoint(0.0, [0.4, -0.2, 0.01]), Waypoint(2.0, SP)], Reject.NON_MONOTONIC_TIME,
     "puts j1 at 0.4, 0.3 away from its current setpoint 0.1"),
])
def test_rejections_name_the_problem_and_the_kernel_code(names, points, code, text):
    e = rejected(names, points, ignored=["m"])
    assert e.code == code and text in e.reason, e.reason
    assert str(e) == e.reason


def test_without_a_setpoint_a_subset_or_a_start_at_zero_is_refused():
    e = rejected(["j2"], [Waypoint(1.0, [0.0])], setpoint=None)
    assert e.code is None and "names only j2" in e.reason and "no setpoint yet" in e.reason
    e = rejected(NAMES, [Waypoint(0.0, SP)], setpoint=None)
    assert e.code is None and "no setpoint yet" in e.reason
    t = check(NAMES, [Waypoint(0.1, [0.9, 1.9, 0.04])], setpoint=None)   # no way to check
    np.testing.assert_array_equal(t.positions, [[0.9, 1.9, 0.04]])


def test_tolerances_are_the_check_s():
    over = [Waypoint(9.0, [1.0 + 5e-10, 0.0, 0.0])]          # within the default 1e-9
    assert check(NAMES, over).positions[0, 0] == 1.0 + 5e-10
    e = rejected(NAMES, over, tol=TrajectoryCheck(limit_tolerance=0.0))
    assert e.code is Reject.OUT_OF_LIMITS
    near = [Waypoint(0.0, [0.1 + 5e-4, -0.2, 0.01]), Waypoint(1.0, SP)]
    assert check(NAMES, near).positions[0, 0] == pytest.approx(0.1005)
    e = rejected(NAMES, near, tol=TrajectoryCheck(start_tolerance=1e-4))
    assert e.code is Reject.NON_MONOTONIC_TIME and "0.0005 away" in e.reason
    # exactly at j1's 1.0 rad/s (plus 5e-7 relative): passes with the default 1e-6 slack
    fast = [Waypoint(0.5, [0.1 + 0.5 * (1 + 5e-7), -0.2, 0.01])]
    check(NAMES, fast)
    e = rejected(NAMES, fast, tol=TrajectoryCheck(speed_tolerance=1e-7))
    assert e.code is Reject.OUT_OF_LIMITS and "velocity limit 1" in e.reason
    check(NAMES, fast, vel_max=None)                       # no limits given: not checked


def test_explain_rejection_names_the_point_and_the_limit():
    from sitebot.description.urdf import load_robot_description
    desc = load_robot_description()
    cfg = kernel_config_from_description(desc)             # arm_joint_2: 1.5 rad/s, 3 rad/s^2
    names = [f"q{i}" for i in range(7)]
    times = np.array([1.0, 1.5])
    pos = np.zeros((2, 7))
    pos[1, 1] = 1.4                                        # 2.8 rad/s between points 0 and 1
    t = KernelTrajectory(times, pos, None, None)
    assert explain_rejection(Reject.OUT_OF_LIMITS, t, cfg, names) == (
        "points 0->1: q1 would move at 2.8 on average, over its velocity limit 1.5")
    vel = np.zeros((2, 7))
    vel[0, 3] = 9.0
    assert explain_rejection(Reject.OUT_OF_LIMITS, t._replace(velocities=vel), cfg, names) == (
        f"point 0: velocity 9 of q3 exceeds its limit {cfg.vel_max[3]:g}")
    acc = np.zeros((2, 7))
    acc[0, 0] = 100.0
    assert explain_rejection(Reject.OUT_OF_LIMITS, t._replace(accelerations=acc), cfg,
                             names).startswith("point 0: acceleration 100 of q0 exceeds")
    assert explain_rejection(Reject.TOO_MANY_POINTS, t, cfg, names) == (
        "2 points over 1.5 s; the kernel takes at most 256 points")
    assert explain_rejection(Reject.NON_FINITE, t, cfg, names) == "2 points over 1.5 s"
    still = KernelTrajectory(times, np.zeros((2, 7)), None, None)
    assert explain_rejection(Reject.OUT_OF_LIMITS, still, cfg, names) == (
        "2 points over 1.5 s; outside the kernel's limits")
