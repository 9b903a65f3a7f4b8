"""Lockstep loop driver: one kernel tick per physics step, through the hardware seam.

This is the PyBullet backend of the control loop. It owns the simulator's hardware seam
(it replaced the foundation's velocity pass-through): each physics step the simulation calls
:meth:`LockstepController.update` with the joints' state; the controller runs the kernel
and returns a :class:`~sitebot.control.hardware.HardwareCommand`. Deterministic: the same inputs
give the same commands.
"""
from __future__ import annotations

import threading
from typing import Callable, Sequence

import numpy as np

from sitebot.control.hardware import CommandMode, HardwareCommand, HardwareState
from sitebot.control.kernel import ControlKernel
from sitebot.control.types import Heartbeat, Interface, KernelConfig, KernelOutput, Reject, Status
from sitebot.types import StopCategory

__all__ = ["LockstepController", "STANDALONE_SOURCE"]

#: the supervisor source the controller pins when it is its own supervisor
#: (``supervisor_required=False``)
STANDALONE_SOURCE = 0

_ARM_MODE = {Interface.POSITION: CommandMode.POSITION, Interface.VELOCITY: CommandMode.VELOCITY,
             Interface.EFFORT: CommandMode.EFFORT}
_ARM_FIELD = {Interface.POSITION: "position", Interface.VELOCITY: "velocity",
              Interface.EFFORT: "effort"}


class LockstepController:
    """Drives ``hardware_joint_names`` (as the seam orders them) with a :class:`ControlKernel`.

    ``arm_joint_names`` are the kernel's joints in its order, ``wheel_joint_names`` (left,
    right) the base. Arm commands use the kernel's interface (POSITION / VELOCITY / EFFORT
    mode); wheels get the kernel's wheel velocities (which ramp down within the limits on a
    command timeout or a category 1 stop, and are zero at once for category 0), or BRAKE on
    invalid input.

    ``supervisor_required=False`` makes the controller its own supervisor: it pins
    :data:`STANDALONE_SOURCE` and gives the kernel a heartbeat every tick (speed scale 1, no
    stop, one release): for simulations without the safety supervisor only.  With it (the
    default) no heartbeat means no motion.

    ``lock`` guards every kernel call; the ROS side (``ControlIO``) may replace it with its
    own so that setpoints from callbacks and ticks from the physics thread never interleave.
    ``on_step(status)`` is called after each tick, under the lock.
    """

    def __init__(self, config: KernelConfig, hardware_joint_names: Sequence[str],
                 arm_joint_names: Sequence[str], wheel_joint_names: Sequence[str],
                 dt_s: float, kernel: ControlKernel | None = None,
                 supervisor_required: bool = True) -> None:
        names = list(hardware_joint_names)
        self.config = config
        self.kernel = kernel or ControlKernel(config)
        self.out = KernelOutput(config)
        self.dt_s = float(dt_s)
        self.supervisor_required = supervisor_required
        self.lock: threading.Lock | threading.RLock = threading.RLock()
        self.on_step: Callable[[Status], None] | None = None
        self._arm = np.array([names.index(j) for j in arm_joint_names], dtype=np.intp)
        self._wheels = np.array([names.index(j) for j in wheel_joint_names], dtype=np.intp)
        interface = Interface(config.interface)
        self._modes_run = [CommandMode.BRAKE] * len(names)
        for i in self._arm:
            self._modes_run[i] = _ARM_MODE[interface]
        for i in self._wheels:
            self._modes_run[i] = CommandMode.VELOCITY
        self._modes_brake = list(self._modes_run)
        for i in self._wheels:
            self._modes_brake[i] = CommandMode.BRAKE
        self._arm_field = _ARM_FIELD[interface]
        self._values = np.zeros(len(names))
        self._initialised = False
        self._own_sequence = 0
        self.status = Status.OK

    # ------------------------------------------------------------------ setpoints
    def set_base_command(self, v_mps: float, w_radps: float, stamp_s: float) -> Reject:
        with self.lock:
            return Reject(self.kernel.set_base_command(v_mps, w_radps, stamp_s))

    def set_trajectory(self, times_s, positions, velocities=None, accelerations=None,
                       start_time_s: float = 0.0) -> Reject:
        with self.lock:
            return Reject(self.kernel.set_trajectory(times_s, positions, velocities,
                                                     accelerations, start_time_s))

    def pin_supervisor(self, source: int) -> bool:
        with self.lock:
            return bool(self.kernel.pin_supervisor(source))

    def set_supervisor(self, source: int, sequence: int, releases: int, stamp_s: float,
                       speed_scale: float, stop_category: int) -> Heartbeat:
        with self.lock:
            return self.kernel.set_supervisor(source, sequence, releases, stamp_s,
                                              speed_scale, stop_category)

    def _own_heartbeat(self, time_s: float) -> None:
        self._own_sequence += 1
        self.kernel.set_supervisor(STANDALONE_SOURCE, self._own_sequence, 1, time_s, 1.0,
                                   StopCategory.NONE)

    # ------------------------------------------------------------------ the tick
    def update(self, state: HardwareState, time_s: float) -> HardwareCommand:
        q = state.positions
        qd = state.velocities
        with self.lock:
            if not self._initialised:
                self.kernel.reset(np.ascontiguousarray(q[self._arm]))
                if not self.supervisor_required:
                    self.kernel.pin_supervisor(STANDALONE_SOURCE)
                self._initialised = True
            if not self.supervisor_required:
                self._own_heartbeat(time_s)
            self.status = Status(self.kernel.step(
                time_s, self.dt_s, np.ascontiguousarray(q[self._arm]),
                np.ascontiguousarray(qd[self._arm]), np.ascontiguousarray(q[self._wheels]),
                np.ascontiguousarray(qd[self._wheels]), self.out))
            self._values[self._arm] = getattr(self.out, self._arm_field)
            self._values[self._wheels] = self.out.wheel_velocity
            if self.on_step is not None:
                self.on_step(self.status)
        modes = self._modes_brake if self.status is Status.INVALID_INPUT else self._modes_run
        return HardwareCommand(mode=modes, values=self._values)

    def reset(self) -> None:
        """Forget everything: the next tick holds the joints where they are."""
        with self.lock:
            self._initialised = False
