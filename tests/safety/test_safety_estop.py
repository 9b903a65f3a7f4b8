"""The latched emergency stop: latch, reset refusals with reasons, no automatic restart;
property: the latch holds until a valid reset, and outputs stay zero while latched."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitebot.safety.config import SafetyConfig
from sitebot.safety.estop import EmergencyStop
from sitebot.safety.supervisor import Supervisor
from sitebot.safety.types import BaseCommand, Cause, RobotState
from sitebot.types import SafetyLevel, StopCategory


def test_trigger_latches_and_reset_timing():
    e = EmergencyStop(StopCategory.CAT1, 5.0)
    assert e.request_reset(0.0) == (True, "not latched: nothing to reset")
    assert e.trigger("service", 10.0)
    assert not e.trigger("topic", 11.0)          # already latched
    assert e.sources == ("service", "topic")
    assert e.verdict(11.0).level == SafetyLevel.EMERGENCY_STOP
    ok, reason = e.request_reset(14.9)
    assert not ok and "4.90 s ago" in reason and "5 s" in reason
    blocking = [Cause("scan_stale", SafetyLevel.PROTECTIVE_STOP, "no scan", "scan")]
    ok, reason = e.request_reset(15.0, blocking)
    assert not ok and "scan_stale" in reason
    assert e.latched
    assert e.request_reset(15.0, [Cause("person_nearby", SafetyLevel.REDUCED_SPEED, "")]) == \
        (True, "reset")
    assert not e.latched and e.reset_at_s == 15.0


def test_held_input_blocks_reset():
    e = EmergencyStop(StopCategory.CAT0, 0.0)
    assert e.set_input(True, 1.0, "button")
    ok, reason = e.request_reset(2.0)
    assert not ok and "button" in reason
    e.set_input(False, 3.0, "button")
    assert e.latched                             # releasing the button does not reset
    assert e.request_reset(3.0)[0]


def test_category_validation():
    with pytest.raises(ValueError, match="accepted: 0, 1"):
        EmergencyStop(StopCategory.CAT2)


def ready(sup: Supervisor, t: float) -> None:
    sup.on_scan(np.full(360, 9.0), -math.pi, 2 * math.pi / 360, t)
    sup.on_odometry(0.0, 0.0, t)
    sup.on_localization(RobotState(0.0, 0.0, 0.0, stamp_s=t), t)


def test_supervisor_estop_cycle_no_automatic_restart():
    sup = Supervisor(SafetyConfig(estop_category=0))
    t = 100.0
    ready(sup, t)
    assert sup.update(t).level == SafetyLevel.NORMAL
    sup.trigger_estop("operator_service", t)
    st_ = sup.update(t)
    assert st_.level == SafetyLevel.EMERGENCY_STOP and st_.estop_latched
    assert st_.stop_category == StopCategory.CAT0 and st_.speed_scale == 0.0
    t += 1.0
    ready(sup, t)
    out, verdict = sup.on_command(BaseCommand(0.5, 0.0, t), t)
    assert out == BaseCommand(0.0, 0.0, t) and verdict.codes == ("emergency_stop",)
    assert sup.request_reset(t)[0] is False                   # before 5 s
    t = 105.0
    ready(sup, t)
    # a command stamped before the reset, arriving after it, stays at zero
    ok, reason = sup.request_reset(t)
    assert ok, reason
    assert sup.update(t).level == SafetyLevel.NORMAL
    out, verdict = sup.on_command(BaseCommand(0.5, 0.0, t - 0.01), t + 0.01)
    assert out.v_mps == 0.0 and "awaiting_fresh_command" in verdict.codes
    out, verdict = sup.on_command(BaseCommand(0.5, 0.0, t + 0.02), t + 0.02)
    assert "awaiting_fresh_command" not in verdict.codes
    events = [r["event"] for r in sup.audit.records]
    assert "estop_triggered" in events and "estop_reset_refused" in events
    assert "estop_reset" in events


def test_reset_refused_while_a_stop_cause_persists():
    sup = Supervisor(SafetyConfig())
    ready(sup, 0.0)
    sup.trigger_estop("svc", 0.0)
    # no scan for 10 s -> scan_stale persists
    sup.on_odometry(0.0, 0.0, 10.0)
    sup.on_localization(RobotState(0.0, 0.0, 0.0, stamp_s=10.0), 10.0)
    ok, reason = sup.request_reset(10.0)
    assert not ok and "scan_stale" in reason
    ready(sup, 10.1)
    assert sup.request_reset(10.1)[0]


EVENT = st.one_of(
    st.tuples(st.just("trigger"), st.floats(0.0, 3.0)),
    st.tuples(st.just("input"), st.floats(0.0, 3.0), st.booleans()),
    st.tuples(st.just("reset"), st.floats(0.0, 3.0)),
    st.tuples(st.just("cmd"), st.floats(0.0, 3.0), st.floats(-1, 1), st.floats(-1, 1)),
    st.tuples(st.just("tick"), st.floats(0.0, 3.0)),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(events=st.lists(EVENT, min_size=1, max_size=25))
def test_latch_holds_until_valid_reset(events):
    sup = Supervisor(SafetyConfig(estop_min_latch_s=2.0))
    t = 50.0
    latched = False
    latched_at = None
    held = False
    reset_at = None
    for ev in events:
        t += ev[1]
        ready(sup, t)
        kind = ev[0]
        if kind == "trigger":
            sup.trigger_estop("svc", t)
            if not latched:
                latched, latched_at = True, t
        elif kind == "input":
            sup.set_estop_input(ev[2], t, "button")
            held = ev[2]
            if held and not latched:
                latched, latched_at = True, t
        elif kind == "reset":
            ok, reason = sup.request_reset(t)
            expect = (not latched) or (not held and t - latched_at >= 2.0)
            assert ok == expect, reason
            if ok and latched:
                latched, reset_at = False, t
        elif kind == "cmd":
            out, verdict = sup.on_command(BaseCommand(ev[2], ev[3], t), t)
            if latched or (reset_at is not None and t <= reset_at):
                assert out is None or (out.v_mps, out.w_radps) == (0.0, 0.0)
        status = sup.update(t)
        assert status.estop_latched == latched == sup.estop_latched
        if latched:
            assert status.level == SafetyLevel.EMERGENCY_STOP
            assert status.stop_category == StopCategory.CAT1
            assert status.max_linear_speed_mps == 0.0
