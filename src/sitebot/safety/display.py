"""What the supervisor's node shows besides ``safety/state`` (no ROS): the protective field
and the zones as line strips for rviz, and the ``/diagnostics`` summary.

The node turns these into ``visualization_msgs/Marker`` and ``diagnostic_msgs`` messages.
"""
from __future__ import annotations

import math
from typing import Mapping

from sitebot.safety.types import SafetyStatus
from sitebot.site.registry import Zone, ZoneKind
from sitebot.types import Diagnostic, DiagnosticLevel, SafetyLevel

__all__ = ["protective_field", "zone_outline", "diagnostic", "LEVEL_RGBA", "ZONE_RGB",
           "FIELD_SEGMENTS", "FIELD_HEIGHT_M", "FIELD_LINE_M", "ZONE_HEIGHT_M", "ZONE_LINE_M"]

#: the protective field's circle is drawn with this many segments
FIELD_SEGMENTS = 36
#: height [m] of the protective field's line above the base frame
FIELD_HEIGHT_M = 0.05
#: width [m] of the protective field's line
FIELD_LINE_M = 0.03
#: height [m] of the zone outlines above the map
ZONE_HEIGHT_M = 0.02
#: width [m] of the zone outlines
ZONE_LINE_M = 0.05
#: colour (RGBA) of the protective field per level: green, amber, red (stops)
LEVEL_RGBA: Mapping[SafetyLevel, tuple[float, float, float, float]] = {
    SafetyLevel.NORMAL: (0.1, 0.8, 0.1, 1.0),
    SafetyLevel.REDUCED_SPEED: (1.0, 0.7, 0.0, 1.0),
    SafetyLevel.PROTECTIVE_STOP: (1.0, 0.1, 0.1, 1.0),
    SafetyLevel.EMERGENCY_STOP: (1.0, 0.1, 0.1, 1.0)}
#: colour (RGB) of a zone's outline per kind
ZONE_RGB: Mapping[ZoneKind, tuple[float, float, float]] = {
    ZoneKind.KEEP_OUT: (0.9, 0.1, 0.1), ZoneKind.SLOW: (0.95, 0.8, 0.1),
    ZoneKind.RESTRICTED: (0.2, 0.4, 0.95)}
#: a safety level's diagnostic level: a protective stop is a warning, an emergency stop an
#: error
_LEVEL_DIAGNOSTIC = {SafetyLevel.NORMAL: DiagnosticLevel.OK,
                     SafetyLevel.REDUCED_SPEED: DiagnosticLevel.OK,
                     SafetyLevel.PROTECTIVE_STOP: DiagnosticLevel.WARN,
                     SafetyLevel.EMERGENCY_STOP: DiagnosticLevel.ERROR}


def protective_field(footprint_radius_m: float, required_separation_m: float,
                     segments: int = FIELD_SEGMENTS) -> list[tuple[float, float]]:
    """The protective field in the base frame: a closed circle (``segments + 1`` points,
    the first repeated) of radius footprint + the required separation [m] (the footprint
    alone when that is not finite)."""
    r = footprint_radius_m + (required_separation_m if math.isfinite(required_separation_m)
                              else 0.0)
    return [(r * math.cos(2 * math.pi * k / segments), r * math.sin(2 * math.pi * k / segments))
            for k in range(segments + 1)]


def zone_outline(zone: Zone) -> list[tuple[float, float]]:
    """A zone's polygon closed (its first vertex repeated at the end), map frame [m]."""
    return [(float(x), float(y)) for x, y in list(zone.polygon) + [zone.polygon[0]]]


def diagnostic(status: SafetyStatus | None, source_ages: Mapping[str, float],
               counts: Mapping[str, int], name: str = "safety") -> Diagnostic:
    """The supervisor's diagnostics: its level and message, each source's data age [s]
    (``age_<source>_s``) and the command counters; a warning before the first decision."""
    if status is None:
        return Diagnostic(name, DiagnosticLevel.WARN, "no decision yet")
    values = [(f"age_{k}_s", f"{v:.3f}") for k, v in source_ages.items()]
    values += [(k, str(v)) for k, v in counts.items()]
    return Diagnostic(name, _LEVEL_DIAGNOSTIC[status.level],
                      f"{status.level.name}: {status.message}", tuple(values))
