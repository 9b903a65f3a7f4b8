"""The supervisor's side of the stop latch protocol for kernel-level tests (a test double of
:class:`sitebot.safety.release.StopRelease` plus the heartbeat's sequence)."""
from __future__ import annotations

from typing import Any

from sitebot.control.types import Heartbeat
from sitebot.types import StopCategory


class Beats:
    """Pins ``source`` on ``kernel`` (anything with ``pin_supervisor``/``set_supervisor``: a
    kernel, an RtLoop, a LockstepController) and sends its heartbeats: a rising sequence and
    the release count (1: the first heartbeat with no stop releases the start latch)."""

    def __init__(self, kernel: Any, source: int = 7) -> None:
        self.kernel, self.source = kernel, source
        self.seq, self.releases = 0, 1
        assert kernel.pin_supervisor(source)

    def beat(self, stamp_s: float, category: StopCategory = StopCategory.NONE,
             scale: float = 1.0) -> Heartbeat:
        self.seq += 1
        return self.kernel.set_supervisor(self.source, self.seq, self.releases, stamp_s, scale,
                                          category)

    def release(self, stamp_s: float, category: StopCategory = StopCategory.NONE) -> bool:
        """A release (with ``category``: refused unless NONE): True when it opened the latch."""
        self.releases += 1
        return self.beat(stamp_s, category) is Heartbeat.RELEASED
