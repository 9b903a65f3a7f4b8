"""Command checks and limits: dropped commands, verdict application, acceleration
limits, hold-to-run."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitebot.safety.config import ModeLimits, SafetyConfig
from sitebot.safety.limits import (CommandFilter, HoldToRun, apply_verdict, limit_acceleration,
                                   mode_verdict)
from sitebot.safety.types import BaseCommand, Verdict
from sitebot.types import Mode, SafetyLevel

CFG = SafetyConfig()
AUTO = CFG.mode_limits(Mode.AUTOMATIC)


def test_filter_reasons():
    f = CommandFilter(CFG)       # absurd 5 m/s, 10 rad/s; max age 0.5 s; future 0.1 s
    assert f.check(BaseCommand(0.5, 0.0, 10.0), 10.0) is None
    assert f.check(BaseCommand(0.5, 0.0, 10.0), 10.05) == "duplicate_stamp"
    assert f.check(BaseCommand(0.5, 0.0, 9.9), 10.05) == "stamp_backwards"
    assert f.check(BaseCommand(math.nan, 0.0, 10.1), 10.1) == "non_finite"
    assert f.check(BaseCommand(0.0, math.inf, 10.1), 10.1) == "non_finite"
    assert f.check(BaseCommand(6.0, 0.0, 10.1), 10.1) == "absurd"
    assert f.check(BaseCommand(0.0, -11.0, 10.1), 10.1) == "absurd"
    assert f.check(BaseCommand(0.1, 0.0, 10.1), 10.7) == "stale"
    assert f.check(BaseCommand(0.1, 0.0, 10.9), 10.7) == "future"
    assert f.check("not a command", 10.7) == "not_a_command"
    # rejected ones are not remembered: 10.1 is still newer than 10.0
    assert f.check(BaseCommand(0.1, 0.0, 10.1), 10.2) is None


def test_apply_verdict_keeps_curvature():
    v, w = apply_verdict(1.0, 0.5, Verdict(speed_limit_mps=0.25))
    assert (v, w) == pytest.approx((0.25, 0.125))
    v, w = apply_verdict(-1.0, 1.0, Verdict(speed_limit_mps=0.8, turn_limit_radps=0.5))
    assert (v, w) == pytest.approx((-0.5, 0.5))
    assert apply_verdict(1.0, 0.5, Verdict(SafetyLevel.PROTECTIVE_STOP)) == (0.0, 0.0)
    # translation forbidden but not stopped: turning in place, clipped
    assert apply_verdict(1.0, 2.0, Verdict(speed_limit_mps=0.0, turn_limit_radps=1.5)) == \
        (0.0, 1.5)
    assert apply_verdict(0.3, 0.1, Verdict(speed_limit_mps=math.nan)) == (0.0, 0.1)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(v=st.floats(-5, 5), w=st.floats(-10, 10), lv=st.floats(0, 3), lw=st.floats(0, 3),
       level=st.sampled_from(list(SafetyLevel)))
def test_apply_verdict_never_exceeds(v, w, lv, lw, level):
    vo, wo = apply_verdict(v, w, Verdict(level, lv, lw))
    assert abs(vo) <= lv and abs(wo) <= lw
    assert abs(vo) <= abs(v) and vo * v >= 0.0
    if level >= SafetyLevel.PROTECTIVE_STOP:
        assert (vo, wo) == (0.0, 0.0)
    elif vo != 0.0:
        assert vo * w == pytest.approx(wo * v, abs=1e-9)     # same curvature


def test_acceleration_limit():
    lim = ModeLimits(1.0, 1.5, 1.0, 2.0)
    # from 0.2 m/s, 0.1 s: at most 0.3 m/s (w could reach 0.2 of 0.5): one factor 0.3
    assert limit_acceleration(1.0, 0.5, 0.2, 0.0, 0.1, lim) == pytest.approx((0.3, 0.15))
    # slowing down is free
    assert limit_acceleration(0.1, 0.0, 1.0, 0.0, 0.01, lim) == (0.1, 0.0)
    # reversing counts from zero
    assert limit_acceleration(-1.0, 0.0, 0.5, 0.0, 0.1, lim) == pytest.approx((-0.1, 0.0))
    # angular acceleration binds: w may rise by 0.2 rad/s
    assert limit_acceleration(0.1, 1.0, 0.1, 0.0, 0.1, lim) == pytest.approx((0.02, 0.2))


def test_hold_to_run():
    h = HoldToRun(0.3)
    assert not h.held(1.0)
    h.feed(True, 1.0)
    assert h.held(1.29) and not h.held(1.31)
    h.feed(False, 1.1)
    assert not h.held(1.1)
    v = mode_verdict(Mode.MANUAL, CFG.mode_limits(Mode.MANUAL), h, 1.2)
    assert v.level == SafetyLevel.PROTECTIVE_STOP and v.codes == ("deadman_released",)
    h.feed(True, 1.2)
    v = mode_verdict(Mode.MANUAL, CFG.mode_limits(Mode.MANUAL), h, 1.3)
    assert v.level == SafetyLevel.NORMAL and v.speed_limit_mps == 0.5
    assert mode_verdict(Mode.AUTOMATIC, AUTO, None, 0.0).speed_limit_mps == 1.0
