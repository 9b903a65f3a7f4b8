"""Bookkeeping of a perception node's inputs, without ROS: how many inputs of each kind were
skipped and whether a warning about them is due, when each input last arrived, rolling
latency windows per pipeline, and rate limits. Time is an argument (seconds of one
monotonic clock)."""
from __future__ import annotations

import math
import re
from collections import defaultdict, deque
from typing import Iterable

import numpy as np

__all__ = ["due", "LatencyLog", "InputMonitor"]

#: a warning's key drops the numbers of its message: one problem, one throttle
_NUMBERS = re.compile(r"[-+\d.e]+")
_KEY_CHARS = 80


def due(last_s: float, now_s: float, rate_hz: float) -> bool:
    """Whether something limited to ``rate_hz`` (0 = no limit) and last done at ``last_s``
    may run again at ``now_s``."""
    return rate_hz <= 0 or now_s - last_s >= 1.0 / rate_hz


class LatencyLog:
    """The last ``window`` latencies of one pipeline [ms]; NaN statistics while empty."""

    def __init__(self, window: int) -> None:
        self.samples: deque[float] = deque(maxlen=window)

    def add(self, ms: float) -> None:
        self.samples.append(float(ms))

    def __len__(self) -> int:
        return len(self.samples)

    def mean(self) -> float:
        return float(np.mean(self.samples)) if self.samples else math.nan

    def max(self) -> float:
        return float(np.max(self.samples)) if self.samples else math.nan

    def p95(self) -> float:
        return float(np.percentile(self.samples, 95)) if self.samples else math.nan


class InputMonitor:
    """Skipped inputs per kind (:attr:`skipped`, 0 for a kind never skipped), the time each
    input last arrived (:attr:`last_seen`) and latency logs by name (:attr:`latency`, in
    the order first used)."""

    def __init__(self, latency_window: int, latency_names: Iterable[str] = ()) -> None:
        self.skipped: defaultdict[str, int] = defaultdict(int)
        self.last_seen: dict[str, float] = {}
        self._window = int(latency_window)
        self.latency: dict[str, LatencyLog] = {n: LatencyLog(self._window)
                                               for n in latency_names}
        self._warned: dict[str, float] = {}

    def count(self, kind: str) -> int:
        """Count one skipped input of ``kind``, without a warning; the count so far."""
        self.skipped[kind] += 1
        return self.skipped[kind]

    def skip(self, kind: str, now_s: float, period_s: float, message: str | None = None
             ) -> bool:
        """Count one skipped input of ``kind``; True when a warning is due: none was given
        for the last ``period_s`` about this kind (or, with ``message``, about this kind of
        problem: the message with its numbers left out)."""
        self.count(kind)
        key = kind if message is None else \
            kind + ":" + _NUMBERS.sub("#", message)[:_KEY_CHARS]
        if now_s - self._warned.get(key, -math.inf) >= period_s:
            self._warned[key] = now_s
            return True
        return False

    def seen(self, kind: str, now_s: float) -> None:
        self.last_seen[kind] = now_s

    def stale(self, kinds: Iterable[str], now_s: float, timeout_s: float) -> list[str]:
        """The ``kinds`` not seen for more than ``timeout_s`` (or never)."""
        return [k for k in kinds if now_s - self.last_seen.get(k, -math.inf) > timeout_s]

    def add_latency(self, name: str, ms: float) -> None:
        if name not in self.latency:
            self.latency[name] = LatencyLog(self._window)
        self.latency[name].add(ms)
