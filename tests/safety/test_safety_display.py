"""What the supervisor node shows (sitebot.safety.display): the protective field, zone
outlines and the diagnostics summary."""
from __future__ import annotations

import math

import pytest

from sitebot.safety import Cause, Mode, SafetyLevel, SafetyStatus, StopCategory
from sitebot.safety.display import LEVEL_RGBA, diagnostic, protective_field, zone_outline
from sitebot.site.loader import parse_registry
from sitebot.types import DiagnosticLevel


def test_protective_field_is_a_closed_circle_of_footprint_plus_separation():
    pts = protective_field(0.4, 1.2)
    assert len(pts) == 37 and pts[0] == pytest.approx(pts[-1])
    assert all(math.hypot(x, y) == pytest.approx(1.6) for x, y in pts)
    assert pts[9] == pytest.approx((0.0, 1.6))                    # 90 deg after 9 of 36
    # no obstacle (infinite separation): the footprint alone
    assert all(math.hypot(x, y) == pytest.approx(0.4) for x, y in protective_field(0.4, math.inf))
    assert len(protective_field(1.0, 0.0, segments=4)) == 5


def test_field_colours_by_level():
    assert LEVEL_RGBA[SafetyLevel.NORMAL] == (0.1, 0.8, 0.1, 1.0)
    assert LEVEL_RGBA[SafetyLevel.REDUCED_SPEED] == (1.0, 0.7, 0.0, 1.0)
    assert LEVEL_RGBA[SafetyLevel.PROTECTIVE_STOP] == LEVEL_RGBA[SafetyLevel.EMERGENCY_STOP] \
        == (1.0, 0.1, 0.1, 1.0)


def test_zone_outline_is_closed():
    reg = parse_registry({"site": "s", "zones": [
        {"id": "pit", "name": "Pit", "kind": "keep_out", "polygon": [[0, 0], [2, 0], [2, 1]]}]})
    assert zone_outline(reg.zone("pit")) == [(0.0, 0.0), (2.0, 0.0), (2.0, 1.0), (0.0, 0.0)]


def _status(level: SafetyLevel, message: str) -> SafetyStatus:
    return SafetyStatus(stamp_s=1.0, level=level, mode=Mode.AUTOMATIC,
                        stop_category=StopCategory.NONE, speed_scale=1.0,
                        max_linear_speed_mps=1.0, causes=(Cause("scan_stale", level, message),),
                        message=message)


def test_diagnostic_summary():
    d = diagnostic(None, {"scan": 0.1}, {"commands": 3})
    assert (d.name, d.level, d.message, d.values) == ("safety", DiagnosticLevel.WARN,
                                                      "no decision yet", ())
    d = diagnostic(_status(SafetyLevel.PROTECTIVE_STOP, "scan stale"),
                   {"scan": 0.61234, "people": math.inf}, {"commands": 3, "dropped": 0})
    assert d.level == DiagnosticLevel.WARN and d.message == "PROTECTIVE_STOP: scan stale"
    assert d.values == (("age_scan_s", "0.612"), ("age_people_s", "inf"), ("commands", "3"),
                        ("dropped", "0"))
    assert diagnostic(_status(SafetyLevel.REDUCED_SPEED, "x"), {}, {}).level == DiagnosticLevel.OK
    assert diagnostic(_status(SafetyLevel.EMERGENCY_STOP, "x"), {}, {}).level == \
        DiagnosticLevel.ERROR
