"""Core value types: combine (the most restrictive wins), mode parsing."""
from __future__ import annotations

import math

import pytest

from sitebot.safety.types import Cause, Verdict, combine
from sitebot.types import Mode, SafetyLevel

R = SafetyLevel.REDUCED_SPEED


def test_combine_most_restrictive_wins():
    a = Verdict(R, 0.5, 1.0, (Cause("x", R, "x", "a"),))
    b = Verdict(SafetyLevel.NORMAL, 0.3, math.inf, (Cause("y", SafetyLevel.NORMAL, "y"),))
    c = combine([a, b, Verdict()])
    assert (c.level, c.speed_limit_mps, c.turn_limit_radps) == (R, 0.3, 1.0)
    assert c.codes == ("x", "y")
    assert combine([]) == Verdict()


def test_combine_stop_zeroes_limits_and_nan_is_zero():
    c = combine([Verdict(SafetyLevel.PROTECTIVE_STOP, math.inf, math.inf)])
    assert (c.speed_limit_mps, c.turn_limit_radps) == (0.0, 0.0) and c.stops
    assert combine([Verdict(speed_limit_mps=math.nan)]).speed_limit_mps == 0.0


def test_combine_deduplicates_causes():
    k = Cause("scan_stale", SafetyLevel.PROTECTIVE_STOP, "m", "scan")
    assert combine([Verdict(causes=(k,)), Verdict(causes=(k,))]).causes == (k,)


def test_mode_parse():
    assert Mode.parse("Manual") is Mode.MANUAL
    assert Mode.parse(2) is Mode.REDUCED_SPEED
    with pytest.raises(ValueError, match="automatic, manual, reduced_speed"):
        Mode.parse("turbo")
    with pytest.raises(ValueError):
        Mode.parse(True)
