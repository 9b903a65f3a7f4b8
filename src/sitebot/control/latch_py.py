"""The supervisor side of the pure-Python reference kernel: its heartbeat and the stop latch.

Mirrors ``ck_pin_supervisor``, ``ck_set_supervisor`` and the latch fields of ``ck_kernel``
in ``src/sitebot/control/native/control_kernel.c`` operation for operation (contract:
docs/control.md, "Stop latch"); :class:`sitebot.control.kernel_py.ControlKernel` owns one
and sets :attr:`SupervisorLatch.last_t` every tick.
"""
from __future__ import annotations

import math
from typing import Any

from sitebot.control.types import Heartbeat, Latch
from sitebot.types import StopCategory

__all__ = ["SupervisorLatch"]

_U64 = 1 << 64
_CATEGORIES = {int(c): c for c in StopCategory}


def _u64(name: str, value: Any) -> int:
    """An unsigned 64-bit int argument (TypeError/ValueError naming it, like the C binding)."""
    if not isinstance(value, int):
        raise TypeError(f"argument '{name}' must be an int, got {type(value).__name__}")
    if not 0 <= value < _U64:
        raise ValueError(f"argument '{name}' must be in [0, 2**64), got {value!r}")
    return int(value)


class SupervisorLatch:
    """The pinned supervisor, its latest heartbeat, and the stop latch (bits of Latch)."""

    def __init__(self, heartbeat_timeout_s: float) -> None:
        self.timeout = float(heartbeat_timeout_s)
        self.pinned = False
        self.src = 0
        self._forget_source()
        self.foreign_rx = False
        self.foreign_t = -math.inf
        self.latch = int(Latch.START)
        self.cat0_latched = False
        self.last_t = -math.inf              # the kernel's latest tick time [s]

    def _forget_source(self) -> None:
        """What a pinned source said (sequence, releases, its latest heartbeat): nothing yet."""
        self.seq_rx, self.seq = False, 0
        self.rel_seen = self.rel_floor = 0
        self.hb_rx, self.hb_stamp = False, -math.inf
        self.scale, self.cat = 0.0, StopCategory.NONE

    def close(self, cause: Latch) -> None:
        """Close the latch for ``cause``; a release must bring a count above today's."""
        self.latch |= int(cause)
        self.rel_floor = self.rel_seen

    def fresh(self) -> bool:
        return self.hb_rx and not (self.last_t - self.hb_stamp > self.timeout)

    def pin(self, source: int) -> bool:
        src = _u64("source", source)
        if self.pinned and self.src == src:
            return True
        if self.pinned and self.fresh():
            return False
        if self.pinned:
            self.latch |= int(Latch.HEARTBEAT)
        self.pinned, self.src = True, src
        self._forget_source()
        return True

    def heartbeat(self, source: int, sequence: int, releases: int, stamp_s: float,
                  speed_scale: float, stop_category: int) -> Heartbeat:
        src, seq, rel = (_u64("source", source), _u64("sequence", sequence),
                         _u64("releases", releases))
        cat = _CATEGORIES.get(int(stop_category))
        if cat is None:
            raise ValueError(f"argument 'stop_category' must be one of 0, 1, 2, 255 "
                             f"(StopCategory), got {stop_category!r}")
        stamp, scale = float(stamp_s), float(speed_scale)
        if not self.pinned or src != self.src:
            self.foreign_rx = True
            self.foreign_t = self.last_t
            self.close(Latch.FOREIGN)
            return Heartbeat.FOREIGN
        if (self.seq_rx and seq <= self.seq) or rel < self.rel_seen:
            self.close(Latch.SEQUENCE)
            return Heartbeat.SEQUENCE
        self.seq_rx, self.seq, self.rel_seen = True, seq, rel
        if cat is not StopCategory.NONE:
            self.close(Latch.STOP)
            if cat is StopCategory.CAT0:
                self.cat0_latched = True
        if not math.isfinite(stamp):
            return Heartbeat.ACCEPTED               # not a heartbeat
        if not math.isfinite(scale):
            scale = 0.0
        self.hb_rx = True
        self.hb_stamp = stamp
        self.scale = min(max(scale, 0.0), 1.0)
        self.cat = cat
        if (self.latch and cat is StopCategory.NONE and rel > self.rel_floor and self.fresh()
                and not (self.foreign_rx and not (self.last_t - self.foreign_t > self.timeout))):
            self.latch = 0
            self.cat0_latched = False
            return Heartbeat.RELEASED
        return Heartbeat.ACCEPTED
