"""The hardware seam: state/command value types and command validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitebot.control.hardware import CommandMode, HardwareCommand, HardwareInterface, HardwareState

JOINTS = ("left_wheel_joint", "right_wheel_joint", "arm_joint_1")


class RecordingHardware(HardwareInterface):
    """A backend that keeps what reaches it; wheels accept velocity and brake only."""

    def __init__(self) -> None:
        super().__init__(JOINTS)
        self.applied: list[HardwareCommand] = []
        self.positions = np.zeros(len(JOINTS))

    def supported_modes(self, joint_name: str) -> frozenset[CommandMode]:
        if "wheel" in joint_name:
            return frozenset({CommandMode.VELOCITY, CommandMode.BRAKE})
        return super().supported_modes(joint_name)

    def read(self, time_s: float) -> HardwareState:
        n = len(JOINTS)
        return HardwareState(time_s, self.positions, np.zeros(n), np.zeros(n))

    def _apply(self, command: HardwareCommand) -> None:
        self.applied.append(command)


def test_state_arrays_are_float64_read_only_copies() -> None:
    src = [1, 2, 3]
    s = HardwareState(1.5, src, np.zeros(3), (0.5, 0.25, 0.0))
    assert s.stamp_s == 1.5 and len(s) == 3
    for arr in (s.positions, s.velocities, s.efforts):
        assert arr.dtype == np.float64 and arr.shape == (3,)
        with pytest.raises(ValueError):
            arr[0] = 9.0
    src[0] = 100
    assert s.positions[0] == 1.0
    with pytest.raises(ValueError, match="velocities has 2 values"):
        HardwareState(0.0, np.zeros(3), np.zeros(2), np.zeros(3))


def test_command_mode_broadcast_and_helpers() -> None:
    c = HardwareCommand(CommandMode.VELOCITY, [1.0, 2.0, 3.0])
    assert c.mode == (CommandMode.VELOCITY,) * 3 and len(c) == 3
    assert c.values.dtype == np.float64
    c2 = HardwareCommand([0, 1, 3], np.zeros(3))
    assert c2.mode == (CommandMode.POSITION, CommandMode.VELOCITY, CommandMode.BRAKE)
    b = HardwareCommand.brake(4)
    assert b.mode == (CommandMode.BRAKE,) * 4 and not b.values.any()
    u = HardwareCommand.uniform(CommandMode.EFFORT, [0.5])
    assert u.mode == (CommandMode.EFFORT,) and u.values[0] == 0.5
    with pytest.raises(ValueError):
        HardwareCommand([7], [0.0])


def test_valid_command_reaches_the_backend() -> None:
    hw = RecordingHardware()
    assert hw.joint_names == JOINTS
    cmd = HardwareCommand([CommandMode.VELOCITY, CommandMode.BRAKE, CommandMode.POSITION],
                          [1.0, 0.0, -0.5])
    hw.write(cmd)
    assert hw.applied == [cmd]
    assert hw.read(2.0).stamp_s == 2.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_value_is_rejected_naming_the_joint(bad: float) -> None:
    hw = RecordingHardware()
    with pytest.raises(ValueError, match="joint 'right_wheel_joint'.*not finite"):
        hw.write(HardwareCommand(CommandMode.VELOCITY, [0.0, bad, 0.0]))
    assert hw.applied == []


def test_wrong_lengths_are_rejected() -> None:
    hw = RecordingHardware()
    with pytest.raises(ValueError, match="2 values for 3 joints"):
        hw.write(HardwareCommand(CommandMode.VELOCITY, [0.0, 0.0]))
    cmd = HardwareCommand(CommandMode.VELOCITY, [0.0, 0.0, 0.0])
    cmd.mode = (CommandMode.VELOCITY,) * 2
    with pytest.raises(ValueError, match="2 modes for 3 joints"):
        hw.write(cmd)
    assert hw.applied == []


def test_unsupported_mode_is_rejected_naming_the_joint() -> None:
    hw = RecordingHardware()
    with pytest.raises(ValueError, match="joint 'left_wheel_joint': mode POSITION.*VELOCITY"):
        hw.write(HardwareCommand(CommandMode.POSITION, [0.0, 0.0, 0.0]))
    assert hw.applied == []


def test_duplicate_joint_names_are_rejected() -> None:
    class Dup(RecordingHardware):
        def __init__(self) -> None:
            HardwareInterface.__init__(self, ("a", "b", "a"))

    with pytest.raises(ValueError, match="joint 'a' is listed twice"):
        Dup()


def test_interface_is_abstract() -> None:
    with pytest.raises(TypeError):
        HardwareInterface(JOINTS)  # type: ignore[abstract]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=3,
                       max_size=3),
       bad_index=st.integers(0, 2), bad=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_property_finite_accepted_non_finite_rejected(values: list[float], bad_index: int,
                                                       bad: float) -> None:
    hw = RecordingHardware()
    modes = [CommandMode.VELOCITY, CommandMode.VELOCITY, CommandMode.EFFORT]
    hw.write(HardwareCommand(modes, values))
    np.testing.assert_array_equal(hw.applied[-1].values, values)
    broken = list(values)
    broken[bad_index] = bad
    with pytest.raises(ValueError, match=f"joint '{JOINTS[bad_index]}'"):
        hw.write(HardwareCommand(modes, broken))
    assert len(hw.applied) == 1
