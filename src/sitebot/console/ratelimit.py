"""Rate limits with an injected clock (no rclpy): a token bucket for incoming commands and
a per-key minimum interval for outgoing state."""
from __future__ import annotations

import math

__all__ = ["TokenBucket", "Throttle"]


class TokenBucket:
    """``rate_hz`` tokens per second, at most ``burst`` saved; ``take(now)`` spends one."""

    def __init__(self, rate_hz: float, burst: float) -> None:
        if not (rate_hz > 0 and math.isfinite(rate_hz)) or not (burst >= 1):
            raise ValueError("rate_hz > 0 (finite) and burst >= 1 needed")
        self.rate = float(rate_hz)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last: float | None = None
        self.refused = 0

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.last is not None and now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        if self.last is None or now > self.last:
            self.last = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        self.refused += 1
        return False


class Throttle:
    """At most one event per ``key`` every ``interval_s`` (outgoing state sections)."""

    def __init__(self, intervals_s: dict[str, float] | None = None,
                 default_s: float = 0.1) -> None:
        self.intervals = dict(intervals_s or {})
        self.default = float(default_s)
        self.last: dict[str, float] = {}

    def interval(self, key: str) -> float:
        return self.intervals.get(key, self.default)

    def ready(self, key: str, now: float) -> bool:
        last = self.last.get(key)
        return last is None or now - last >= self.interval(key) or now < last

    def mark(self, key: str, now: float) -> None:
        self.last[key] = now
