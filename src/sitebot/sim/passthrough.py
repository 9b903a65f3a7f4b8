"""Velocity pass-through controller: the placeholder the C control loop replaces.

It turns the latest base command (v [m/s], w [rad/s]) into wheel velocities with
differential-drive kinematics and holds the latest arm/gripper position targets. It keeps
the one safety behaviour the real loop must have from day one: a base command older than
``cmd_timeout_s`` (or a non-finite one) brakes the wheels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..hardware import CommandMode, HardwareCommand, HardwareState

__all__ = ["PassThroughController", "diff_drive_wheel_speeds"]


def diff_drive_wheel_speeds(v_mps: float, w_radps: float, wheel_radius_m: float,
                            wheel_separation_m: float) -> tuple[float, float]:
    """(left, right) wheel speeds [rad/s] for a body twist (v [m/s], w [rad/s])."""
    half = wheel_separation_m / 2.0
    return ((v_mps - w_radps * half) / wheel_radius_m,
            (v_mps + w_radps * half) / wheel_radius_m)


@dataclass
class _BaseCommand:
    v_mps: float = 0.0
    w_radps: float = 0.0
    stamp_s: float = -math.inf


class PassThroughController:
    """Maps commands to a :class:`~sitebot.hardware.HardwareCommand` once per physics step."""

    def __init__(self, joint_names: Sequence[str], wheel_joints: Sequence[str],
                 wheel_radius_m: float, wheel_separation_m: float,
                 cmd_timeout_s: float = 0.5) -> None:
        self.joint_names = tuple(joint_names)
        self._wheel_idx = [self.joint_names.index(w) for w in wheel_joints]
        self.wheel_radius_m = wheel_radius_m
        self.wheel_separation_m = wheel_separation_m
        self.cmd_timeout_s = cmd_timeout_s
        self._base = _BaseCommand()
        self._targets: dict[str, float] = {}
        self._initialised = False
        n = len(self.joint_names)
        self._modes = [CommandMode.POSITION] * n
        for i in self._wheel_idx:
            self._modes[i] = CommandMode.VELOCITY
        self._values = np.zeros(n)

    def set_base_command(self, v_mps: float, w_radps: float, stamp_s: float) -> bool:
        """Store a base command; a non-finite one is refused (and brakes). Returns accepted."""
        if not (math.isfinite(v_mps) and math.isfinite(w_radps) and math.isfinite(stamp_s)):
            self._base = _BaseCommand()
            return False
        self._base = _BaseCommand(v_mps, w_radps, stamp_s)
        return True

    def set_joint_targets(self, names: Sequence[str], positions: Sequence[float]) -> bool:
        """Hold new position targets [rad or m] for the named joints. Refuses unknown/non-finite."""
        if len(names) != len(positions):
            return False
        if any(n not in self.joint_names or self.joint_names.index(n) in self._wheel_idx
               for n in names):
            return False
        if not all(math.isfinite(p) for p in positions):
            return False
        self._targets.update(zip(names, (float(p) for p in positions)))
        return True

    def update(self, state: HardwareState, time_s: float) -> HardwareCommand:
        if not self._initialised:
            # hold where the joints are at start (no jump to zero)
            for i, n in enumerate(self.joint_names):
                if i not in self._wheel_idx:
                    self._targets.setdefault(n, float(state.positions[i]))
            self._initialised = True
        modes = list(self._modes)
        for i, n in enumerate(self.joint_names):
            if i not in self._wheel_idx:
                self._values[i] = self._targets.get(n, float(state.positions[i]))
        fresh = time_s - self._base.stamp_s <= self.cmd_timeout_s
        if fresh:
            left, right = diff_drive_wheel_speeds(self._base.v_mps, self._base.w_radps,
                                                  self.wheel_radius_m, self.wheel_separation_m)
            self._values[self._wheel_idx[0]] = left
            self._values[self._wheel_idx[1]] = right
        else:
            for i in self._wheel_idx:
                modes[i] = CommandMode.BRAKE
                self._values[i] = 0.0
        return HardwareCommand(mode=modes, values=self._values)

    def reset(self) -> None:
        self._base = _BaseCommand()
        self._targets.clear()
        self._initialised = False
