"""Hold-to-run teleop on the console's side (no rclpy; time passed in).

One client at a time holds the teleop pad.  While its commands keep arriving the arbiter
asks for the held twist to be sent (with the deadman pressed); it asks for a stop (zero
twist, deadman released) exactly once when the holder releases the pad, when its commands
stop for longer than ``timeout_s`` (a browser frozen, a lost network) and when its
connection closes.  The supervisor's own hold-to-run timeout is the second layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TeleopArbiter", "TeleopAction"]


@dataclass(frozen=True)
class TeleopAction:
    kind: str                 # "drive" or "stop"
    v: float = 0.0
    w: float = 0.0
    reason: str = ""


class TeleopArbiter:
    def __init__(self, timeout_s: float = 0.3) -> None:
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError("timeout_s must be finite and > 0")
        self.timeout_s = float(timeout_s)
        self.holder: str | None = None
        self.v = 0.0
        self.w = 0.0
        self.last = -math.inf
        self.stops = 0

    @property
    def active(self) -> bool:
        return self.holder is not None

    def command(self, client: str, v: float, w: float, now: float) -> tuple[bool, str]:
        """A held-pad command from ``client``; (accepted, reason).  Refused while another
        client holds the pad (until it releases or goes stale)."""
        if not (math.isfinite(v) and math.isfinite(w)):
            return False, "non-finite velocity"
        if self.holder is not None and self.holder != client:
            if now - self.last <= self.timeout_s:
                return False, "another operator is driving"
        self.holder, self.v, self.w, self.last = client, float(v), float(w), now
        return True, "driving"

    def release(self, client: str, reason: str = "released") -> TeleopAction | None:
        """The pad released by ``client`` (or its connection gone): a stop if it held it."""
        if self.holder != client:
            return None
        self.holder = None
        self.v = self.w = 0.0
        self.stops += 1
        return TeleopAction("stop", reason=reason)

    def tick(self, now: float) -> TeleopAction | None:
        """Periodic: the twist to send while fresh, one stop when it went stale."""
        if self.holder is None:
            return None
        if now - self.last > self.timeout_s or now < self.last - self.timeout_s:
            return self.release(self.holder, reason=f"no teleop command for "
                                                    f"{now - self.last:.2f} s")
        return TeleopAction("drive", self.v, self.w)
