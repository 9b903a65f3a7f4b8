"""The latched emergency stop.

Inputs: :meth:`EmergencyStop.trigger` (an event: a service call, a message saying
"stop") and :meth:`EmergencyStop.set_input` (a held input such as a button published as a
bool topic: asserted latches, and the latch cannot be reset while any input is asserted).
The latch holds until :meth:`EmergencyStop.request_reset` succeeds; it never clears by
itself.  A reset is refused, with the reason, while an input is asserted, before
``min_latch_s`` has passed since the stop, or while another PROTECTIVE_STOP/EMERGENCY_STOP
cause persists.  After a reset the supervisor keeps the output at zero until a command
stamped after the reset arrives (no automatic restart).
"""
from __future__ import annotations

import math
from typing import Iterable

from sitebot.safety.types import ZERO_VERDICT, Cause, Verdict
from sitebot.types import SafetyLevel, StopCategory

__all__ = ["EmergencyStop"]


class EmergencyStop:
    """Latched emergency stop of category 0 or 1."""

    def __init__(self, category: StopCategory | int = StopCategory.CAT1,
                 min_latch_s: float = 5.0) -> None:
        cat = StopCategory(int(category))
        if cat not in (StopCategory.CAT0, StopCategory.CAT1):
            raise ValueError(f"emergency stop category {int(category)} is not accepted; "
                             "accepted: 0, 1")
        self.category = cat
        self.min_latch_s = float(min_latch_s)      # [s]
        self.latched = False
        self.latched_at_s: float | None = None     # [s] time of the (first) trigger
        self.sources: tuple[str, ...] = ()          # what triggered it, in order
        self.inputs: dict[str, bool] = {}           # held inputs by source
        self.reset_at_s: float | None = None        # [s] time of the last reset

    # -- inputs ------------------------------------------------------------------------
    def trigger(self, source: str, now: float) -> bool:
        """Latch (or stay latched); True when this call latched it."""
        src = str(source) or "unknown"
        if not math.isfinite(now):
            now = self.latched_at_s if self.latched_at_s is not None else 0.0
        if src not in self.sources:
            self.sources = self.sources + (src,)
        if self.latched:
            return False
        self.latched = True
        self.latched_at_s = now
        return True

    def set_input(self, asserted: bool, now: float, source: str = "estop_input") -> bool:
        """A held input's state; asserted latches.  True when this call latched it."""
        self.inputs[str(source)] = bool(asserted)
        if asserted:
            return self.trigger(source, now)
        return False

    @property
    def asserted_inputs(self) -> tuple[str, ...]:
        """The held inputs still asserted."""
        return tuple(k for k, v in self.inputs.items() if v)

    # -- reset -------------------------------------------------------------------------
    def request_reset(self, now: float, active_causes: Iterable[Cause] = ()) -> tuple[bool,
                                                                                      str]:
        """Try to reset; (True, "reset") on success, else (False, the reason)."""
        if not self.latched:
            return True, "not latched: nothing to reset"
        held = self.asserted_inputs
        if held:
            return False, f"emergency stop input still asserted: {', '.join(held)}"
        if not math.isfinite(now) or self.latched_at_s is None:
            return False, "no valid time for the reset"
        elapsed = now - self.latched_at_s
        if elapsed < self.min_latch_s:
            return False, (f"latched {max(elapsed, 0.0):.2f} s ago; a reset is accepted "
                           f"{self.min_latch_s:g} s after the stop")
        blocking = [c for c in active_causes
                    if c.level >= SafetyLevel.PROTECTIVE_STOP and c.code != "emergency_stop"]
        if blocking:
            return False, "stop causes persist: " + ", ".join(
                f"{c.code} ({c.message})" for c in blocking)
        self.latched = False
        self.latched_at_s = None
        self.sources = ()
        self.reset_at_s = now
        return True, "reset"

    # -- rule --------------------------------------------------------------------------
    def verdict(self, now: float) -> Verdict:
        if not self.latched:
            return ZERO_VERDICT
        inputs = self.asserted_inputs
        return Verdict(SafetyLevel.EMERGENCY_STOP, 0.0, 0.0, (Cause(
            "emergency_stop", SafetyLevel.EMERGENCY_STOP,
            f"emergency stop latched by {', '.join(self.sources) or 'unknown'}"
            + (f"; input asserted: {', '.join(inputs)}" if inputs else ""), "estop"),))

    def on_time_jump(self, now: float) -> None:
        """The clock went backwards: restart the minimum latch time from ``now``."""
        if self.latched:
            self.latched_at_s = now
        if self.reset_at_s is not None:
            self.reset_at_s = now
