"""Rate limits with an injected clock (no rclpy): a token bucket for incoming commands,
a per-key minimum interval for outgoing state, and the same for repeated warnings."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

__all__ = ["TokenBucket", "Throttle", "LogThrottle"]


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


class LogThrottle:
    """At most one warning per ``key`` every ``period_s`` (a malformed topic, a camera with
    an unknown encoding); :meth:`guard` runs a callback and warns instead of raising."""

    def __init__(self, log: Callable[[str], None], period_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.clock = log, clock
        self.throttle = Throttle(default_s=period_s)

    def __call__(self, key: str, text: str) -> None:
        t = self.clock()
        if self.throttle.ready(key, t):
            self.throttle.mark(key, t)
            self.log(text)

    def guard(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(*args)``; an exception is a warning under ``what`` ("<what>: message
        ignored: <type>: <text>"), never raised."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a malformed message never kills the caller
            self(what, f"{what}: message ignored: {type(e).__name__}: {e}")
