"""The hardware seam: what a control loop reads from and writes to, per joint.

Shaped like ros2_control's ``SystemInterface``: a fixed, ordered tuple of joint names;
``read`` returns positions, velocities and efforts in that order; ``write`` takes one
command mode and one value per joint.  Backends (PyBullet, ros2_control topics, a real
driver) implement :meth:`HardwareInterface.read` and :meth:`HardwareInterface._apply`;
:meth:`HardwareInterface.write` validates every command before a backend sees it.

Units: positions [rad] or [m], velocities [rad/s] or [m/s], efforts [N*m] or [N].
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "CommandMode",
    "HardwareState",
    "HardwareCommand",
    "HardwareInterface",
]


class CommandMode(enum.IntEnum):
    """How a joint's command value is interpreted.

    POSITION: target position [rad | m]; VELOCITY: target velocity [rad/s | m/s];
    EFFORT: torque/force [N*m | N]; BRAKE: hold still with the joint's full effort
    (the value is ignored).
    """

    POSITION = 0
    VELOCITY = 1
    EFFORT = 2
    BRAKE = 3


def _frozen_array(values: Iterable[float] | np.ndarray) -> np.ndarray:
    arr = np.array(values, dtype=np.float64, copy=True).reshape(-1)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class HardwareState:
    """Joint state at ``stamp_s`` [s]; arrays (read-only, float64) in ``joint_names`` order."""

    stamp_s: float
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("positions", "velocities", "efforts"):
            arrays[name] = _frozen_array(getattr(self, name))
            object.__setattr__(self, name, arrays[name])
        n = len(arrays["positions"])
        for name, arr in arrays.items():
            if len(arr) != n:
                raise ValueError(f"HardwareState.{name} has {len(arr)} values, positions has {n}")

    def __len__(self) -> int:
        return len(self.positions)


@dataclass
class HardwareCommand:
    """One command per joint: ``mode[i]`` says how ``values[i]`` is meant.

    ``mode`` may be a single :class:`CommandMode` (applied to every joint) or one per
    joint; it is stored as a tuple.  ``values`` is stored as a float64 array.
    """

    mode: Sequence[CommandMode] | CommandMode
    values: np.ndarray

    def __post_init__(self) -> None:
        self.values = np.array(self.values, dtype=np.float64, copy=True).reshape(-1)
        if isinstance(self.mode, (CommandMode, int)) and not isinstance(self.mode, bool):
            self.mode = (CommandMode(self.mode),) * len(self.values)
        else:
            self.mode = tuple(CommandMode(m) for m in self.mode)

    @classmethod
    def uniform(cls, mode: CommandMode, values: Sequence[float] | np.ndarray) -> "HardwareCommand":
        """The same mode for every joint."""
        return cls(mode, np.asarray(values, dtype=np.float64))

    @classmethod
    def brake(cls, n_joints: int) -> "HardwareCommand":
        """Brake every one of ``n_joints`` joints."""
        return cls(CommandMode.BRAKE, np.zeros(n_joints))

    def __len__(self) -> int:
        return len(self.values)


class HardwareInterface(abc.ABC):
    """A set of joints that can be read and commanded.

    Subclasses set the joint names (constructor argument) and implement :meth:`read` and
    :meth:`_apply`.  They may narrow :meth:`supported_modes`.
    """

    def __init__(self, joint_names: Sequence[str]) -> None:
        names = tuple(joint_names)
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"joint '{dup}' is listed twice in joint_names")
        self._joint_names = names
        # backends that accept every mode on every joint skip the per-joint mode check
        self._all_modes_everywhere = \
            type(self).supported_modes is HardwareInterface.supported_modes

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The joints, in the order of every state and command array."""
        return self._joint_names

    def supported_modes(self, joint_name: str) -> frozenset[CommandMode]:
        """The command modes ``joint_name`` accepts (default: all)."""
        return frozenset(CommandMode)

    @abc.abstractmethod
    def read(self, time_s: float) -> HardwareState:
        """The joints' state now; ``time_s`` [s] becomes the state's stamp."""

    def write(self, command: HardwareCommand) -> None:
        """Validate ``command`` and hand it to the backend.

        :raises ValueError: wrong number of values or modes, a non-finite value or a mode
            the joint does not support; the message names the joint.
        """
        self.validate(command)
        self._apply(command)

    def validate(self, command: HardwareCommand) -> None:
        """Raise ValueError (naming the joint) unless ``command`` fits these joints."""
        names = self._joint_names
        if len(command.values) != len(names):
            raise ValueError(f"command has {len(command.values)} values for "
                             f"{len(names)} joints ({', '.join(names)})")
        if len(command.mode) != len(names):
            raise ValueError(f"command has {len(command.mode)} modes for "
                             f"{len(names)} joints ({', '.join(names)})")
        finite = np.isfinite(command.values)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"joint '{names[i]}': command value {command.values[i]} is not "
                             "finite; values must be finite numbers")
        if self._all_modes_everywhere:
            return
        for name, mode in zip(names, command.mode):
            allowed = self.supported_modes(name)
            if mode not in allowed:
                raise ValueError(f"joint '{name}': mode {mode.name} is not supported; "
                                 f"accepted: {', '.join(m.name for m in sorted(allowed))}")

    @abc.abstractmethod
    def _apply(self, command: HardwareCommand) -> None:
        """Send an already validated command to the joints."""
