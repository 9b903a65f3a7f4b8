"""The velocity pass-through controller (sitebot.sim.passthrough): diff-drive kinematics,
command timeout, refusal of bad commands, position hold."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.hardware import CommandMode, HardwareState
from sitebot.sim.passthrough import PassThroughController, diff_drive_wheel_speeds

JOINTS = ("left_wheel_joint", "right_wheel_joint", "arm_joint_1", "arm_joint_2",
          "gripper_left_finger_joint")
WHEELS = ("left_wheel_joint", "right_wheel_joint")
R, B = 0.1, 0.53          # the robot's wheel radius and separation [m]
V, P = CommandMode.VELOCITY, CommandMode.POSITION


def _ctl(timeout: float = 0.5) -> PassThroughController:
    return PassThroughController(JOINTS, WHEELS, R, B, cmd_timeout_s=timeout)


def _state(positions=(0.0, 0.0, 0.4, -0.5, 0.02), t: float = 0.0) -> HardwareState:
    n = len(positions)
    return HardwareState(t, np.array(positions, float), np.zeros(n), np.zeros(n))


@pytest.mark.parametrize("v, w, left, right", [
    (0.5, 0.0, 5.0, 5.0),
    (0.0, 1.0, -2.65, 2.65),         # w * B/2 / R = 0.265 / 0.1
    (0.5, 1.0, 2.35, 7.65),
    (-0.2, -0.5, -0.675, -3.325),
    (0.0, 0.0, 0.0, 0.0),
])
def test_diff_drive_wheel_speeds(v: float, w: float, left: float, right: float) -> None:
    assert diff_drive_wheel_speeds(v, w, R, B) == pytest.approx((left, right), abs=1e-12)
    # and back: v = R (l + r) / 2, w = R (r - l) / B
    l, r = diff_drive_wheel_speeds(v, w, R, B)
    assert R * (l + r) / 2 == pytest.approx(v, abs=1e-12)
    assert R * (r - l) / B == pytest.approx(w, abs=1e-12)


def test_fresh_command_gives_velocity_modes() -> None:
    c = _ctl()
    assert c.set_base_command(0.5, 1.0, stamp_s=1.0) is True
    cmd = c.update(_state(), 1.2)
    assert cmd.mode == (V, V, P, P, P)
    assert cmd.values[:2] == pytest.approx([2.35, 7.65], abs=1e-12)


def test_command_times_out_to_brake() -> None:
    c = _ctl(timeout=0.5)
    c.set_base_command(0.5, 0.0, stamp_s=2.0)
    assert c.update(_state(), 2.5).mode[:2] == (V, V)               # exactly at the timeout
    cmd = c.update(_state(), 2.5001)
    assert cmd.mode[:2] == (CommandMode.BRAKE, CommandMode.BRAKE)
    assert cmd.values[:2] == pytest.approx([0.0, 0.0], abs=0)
    assert cmd.mode[2:] == (P, P, P)                                # arm keeps holding
    c.set_base_command(0.2, 0.0, stamp_s=3.0)                        # a new command: drives again
    cmd = c.update(_state(), 3.1)
    assert cmd.mode[:2] == (V, V) and cmd.values[:2] == pytest.approx([2.0, 2.0])


def test_no_command_brakes() -> None:
    cmd = _ctl().update(_state(), 0.0)
    assert cmd.mode[:2] == (CommandMode.BRAKE, CommandMode.BRAKE)
    assert cmd.values[:2] == pytest.approx([0.0, 0.0], abs=0)


@pytest.mark.parametrize("bad", [(math.nan, 0.0, 1.0), (0.3, math.inf, 1.0),
                                 (-math.inf, 0.0, 1.0), (0.3, 0.0, math.nan)])
def test_non_finite_command_is_refused_and_brakes(bad: tuple[float, float, float]) -> None:
    c = _ctl()
    assert c.set_base_command(0.5, 0.0, stamp_s=1.0) is True
    assert c.update(_state(), 1.0).values[:2] == pytest.approx([5.0, 5.0])
    assert c.set_base_command(*bad) is False
    cmd = c.update(_state(), 1.01)             # well within the timeout of the old command
    assert cmd.mode[:2] == (CommandMode.BRAKE, CommandMode.BRAKE)
    assert cmd.values[:2] == pytest.approx([0.0, 0.0], abs=0)
    assert np.all(np.isfinite(cmd.values))


@pytest.mark.parametrize("names, positions", [
    (("arm_joint_9",), (0.1,)),                      # unknown joint
    (("left_wheel_joint",), (0.1,)),                 # wheels take velocities only
    (("arm_joint_1", "right_wheel_joint"), (0.1, 0.2)),
    (("arm_joint_1",), (math.nan,)),
    (("arm_joint_1", "arm_joint_2"), (0.1, math.inf)),
    (("arm_joint_1", "arm_joint_2"), (0.1,)),        # lengths differ
    (("arm_joint_1",), (0.1, 0.2)),
])
def test_bad_joint_targets_are_refused(names, positions) -> None:
    c = _ctl()
    c.update(_state(), 0.0)
    assert c.set_joint_targets(names, positions) is False
    cmd = c.update(_state(), 0.01)
    # nothing of a refused request is applied, not even its valid part
    assert cmd.values[2:] == pytest.approx([0.4, -0.5, 0.02], abs=0)


def test_joint_targets_are_held() -> None:
    c = _ctl()
    c.update(_state(), 0.0)
    assert c.set_joint_targets(["arm_joint_2", "gripper_left_finger_joint"], [1.2, 0.035]) is True
    for t in (0.01, 5.0):
        cmd = c.update(_state(positions=(3.0, 4.0, 0.1, 0.1, 0.0)), t)
        assert cmd.mode[2:] == (P, P, P)
        # arm_joint_1 was never commanded: it holds its start position 0.4
        assert cmd.values[2:] == pytest.approx([0.4, 1.2, 0.035], abs=0)


def test_first_update_holds_current_positions() -> None:
    c = _ctl()
    cmd = c.update(_state(positions=(1.0, 2.0, 0.7, -1.1, 0.03)), 0.0)
    assert cmd.mode[2:] == (P, P, P)
    assert cmd.values[2:] == pytest.approx([0.7, -1.1, 0.03], abs=0)
    # later updates keep the start positions even though the joints sag
    cmd = c.update(_state(positions=(1.0, 2.0, 0.6, -1.0, 0.01)), 0.1)
    assert cmd.values[2:] == pytest.approx([0.7, -1.1, 0.03], abs=0)


def test_target_set_before_first_update_wins_over_hold() -> None:
    c = _ctl()
    assert c.set_joint_targets(["arm_joint_1"], [0.9]) is True
    cmd = c.update(_state(positions=(0.0, 0.0, 0.7, -1.1, 0.03)), 0.0)
    assert cmd.values[2:] == pytest.approx([0.9, -1.1, 0.03], abs=0)


def test_reset_forgets_commands_and_targets() -> None:
    c = _ctl()
    c.set_base_command(0.5, 0.0, 0.0)
    c.update(_state(), 0.0)
    c.set_joint_targets(["arm_joint_1"], [1.5])
    c.reset()
    cmd = c.update(_state(positions=(0.0, 0.0, -0.3, 0.2, 0.01)), 0.0)
    assert cmd.mode[:2] == (CommandMode.BRAKE, CommandMode.BRAKE)
    assert cmd.values[2:] == pytest.approx([-0.3, 0.2, 0.01], abs=0)
