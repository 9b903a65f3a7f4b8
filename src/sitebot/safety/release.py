"""The supervisor's half of the stop latch protocol (core, no ROS; docs/control.md).

The control loop's kernel latches every stop and opens the latch only on a *release*: a
heartbeat from the pinned supervisor whose ``releases`` count exceeds the count it saw when
the latch closed.  :class:`StopRelease` decides when the supervisor issues one:

* when its own state goes from a stop (or from its start) to "no stop": the normal path;
* when it allows motion but the loop reports its latch closed for a reason the supervisor
  cannot see itself (the loop started after it, or lost its heartbeat for a while): again,
  at most every ``retry_s``, while that lasts;
* never while it requests a stop, nor after a fault until its stop has been reset.

A latch closed because of a second heartbeat source (FOREIGN) or a sequence going backwards
(SEQUENCE) is a fault: :meth:`StopRelease.loop_state` returns it once, when it appears, and
the supervisor latches its emergency stop so that a person resets it (an authenticated
reset) before the robot moves again.

``session`` is a random 64-bit token drawn at start: with the publisher's GID it is the
source the loop pins.
"""
from __future__ import annotations

import math
import secrets

from sitebot.control.types import Latch
from sitebot.types import StopCategory

__all__ = ["StopRelease", "LATCH_FAULTS"]

#: ControllerStatus.latch bits (the kernel's Latch) that are faults, not stops
LATCH_FAULTS = {Latch.FOREIGN: "a second safety/state source",
                Latch.SEQUENCE: "the supervisor's sequence went backwards"}


class StopRelease:
    """Release counting for one supervisor run (see the module docstring).

    :param retry_s: [s] the shortest interval between two releases issued because the loop
        still reports its latch closed.
    :param session: the per-boot token (default: drawn from ``secrets``; never 0).
    """

    def __init__(self, retry_s: float = 0.5, session: int | None = None) -> None:
        self.retry_s = float(retry_s)
        self.session = int(session) if session is not None else secrets.randbits(64) or 1
        self.releases = 0
        self._stopped = True
        self._allows_motion = False
        self._last_release_s = -math.inf
        self._loop_latch = 0
        self._fault_pending = False

    def _issue(self, now_s: float) -> None:
        self.releases += 1
        self._last_release_s = now_s

    def update(self, stop_category: StopCategory, now_s: float) -> int:
        """The supervisor's stop category now; returns the release count to publish."""
        if StopCategory(int(stop_category)) is not StopCategory.NONE:
            self._stopped, self._allows_motion = True, False
            return self.releases
        if self._stopped:
            self._stopped = False
            self._fault_pending = False         # the stop was reset: a person decided
            self._issue(now_s)
        self._allows_motion = True
        return self.releases

    def loop_state(self, latch: int, now_s: float) -> str | None:
        """The loop's latch (ControllerStatus.latch).  Returns the text of a fault that
        appeared with this report (None: none new); may issue a release (see above)."""
        latch = int(latch)
        new = latch & ~self._loop_latch
        self._loop_latch = latch
        fault = next((text for bit, text in LATCH_FAULTS.items() if new & bit), None)
        if fault is not None:
            self._fault_pending = True
            return fault
        if (latch and self._allows_motion and not self._fault_pending
                and now_s - self._last_release_s >= self.retry_s):
            self._issue(now_s)
        return None
