"""The safety supervisor's message conversions, besides its node
(:mod:`sitebot.nodes.safety_supervisor`): messages in as the core's inputs
(:mod:`sitebot.safety.inputs`), the core's status and display data
(:mod:`sitebot.safety.display`) out as ``SafetyState`` and rviz markers.  No node logic.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from sitebot.nodes import convert
from sitebot.safety import display
from sitebot.safety.config import SafetyConfig
from sitebot.safety.inputs import tracked_person
from sitebot.safety.types import Obstacle, SafetyStatus, TrajectoryPoint
from sitebot.site.registry import Zone
from sitebot.types import SafetyLevel, StopCategory
from sitebot_interfaces.msg import SafetyState, TrackedPersonArray

__all__ = ["safety_state_msg", "line_strip_marker", "field_markers", "zone_markers",
           "people_obstacles", "trajectory_points"]

_LEVEL_MSG = {SafetyLevel.NORMAL: SafetyState.LEVEL_NORMAL,
              SafetyLevel.REDUCED_SPEED: SafetyState.LEVEL_REDUCED_SPEED,
              SafetyLevel.PROTECTIVE_STOP: SafetyState.LEVEL_PROTECTIVE_STOP,
              SafetyLevel.EMERGENCY_STOP: SafetyState.LEVEL_EMERGENCY_STOP}
_STOP_MSG = {StopCategory.NONE: SafetyState.STOP_NONE, StopCategory.CAT0: SafetyState.STOP_CATEGORY_0,
             StopCategory.CAT1: SafetyState.STOP_CATEGORY_1,
             StopCategory.CAT2: SafetyState.STOP_CATEGORY_2}


def safety_state_msg(st: SafetyStatus, sequence: int, stamp: Time, frame_id: str,
                     session: int = 0, releases: int = 0) -> SafetyState:
    """The supervisor's status as ``safety/state`` (``session``, ``releases``: the stop latch
    protocol, :class:`sitebot.safety.release.StopRelease`)."""
    m = SafetyState(level=_LEVEL_MSG[st.level], mode=int(st.mode),
                    requested_mode=int(st.requested_mode),
                    stop_category=_STOP_MSG[StopCategory(st.stop_category)],
                    estop_latched=bool(st.estop_latched), speed_scale=float(st.speed_scale),
                    max_linear_speed_mps=float(st.max_linear_speed_mps), sequence=sequence,
                    session=int(session), releases=int(releases),
                    closest_separation_m=float(st.closest_separation_m),
                    required_separation_m=float(st.required_separation_m),
                    reasons=[c.code for c in st.causes], message=st.message)
    m.header.stamp, m.header.frame_id = stamp, frame_id
    return m


def line_strip_marker(ns: str, ident: int, frame_id: str, width_m: float,
                      rgba: Sequence[float], xy: Iterable[Sequence[float]], z_m: float) -> Marker:
    """A LINE_STRIP marker through the points ``xy`` [m] at height ``z_m`` (no stamp)."""
    mk = Marker(ns=ns, id=ident, type=Marker.LINE_STRIP, action=Marker.ADD)
    mk.header.frame_id = frame_id
    mk.scale.x = float(width_m)
    mk.color.r, mk.color.g, mk.color.b, mk.color.a = (float(c) for c in rgba)
    mk.points = [Point(x=float(x), y=float(y), z=float(z_m)) for x, y in xy]
    return mk


def field_markers(st: SafetyStatus, footprint_radius_m: float, frame_id: str,
                  stamp: Time) -> MarkerArray:
    """``safety/markers``: the protective field around the footprint, coloured by level."""
    mk = line_strip_marker("protective_field", 0, frame_id, display.FIELD_LINE_M,
                           display.LEVEL_RGBA[st.level],
                           display.protective_field(footprint_radius_m,
                                                    st.required_separation_m),
                           display.FIELD_HEIGHT_M)
    mk.header.stamp = stamp
    return MarkerArray(markers=[mk])


def zone_markers(zones: Sequence[Zone], frame_id: str) -> MarkerArray:
    """``safety/zones``: each zone's outline, coloured by kind, named."""
    arr = MarkerArray()
    for i, z in enumerate(zones):
        mk = line_strip_marker(f"zone/{z.kind.value}", i, frame_id, display.ZONE_LINE_M,
                               (*display.ZONE_RGB[z.kind], 1.0), display.zone_outline(z),
                               display.ZONE_HEIGHT_M)
        mk.text = z.name
        arr.markers.append(mk)
    return arr


def people_obstacles(msg: TrackedPersonArray, config: SafetyConfig) -> list[Obstacle]:
    """The tracked people of a ``people`` message (in its frame)."""
    return [tracked_person(q.pose.pose.position.x, q.pose.pose.position.y,
                           q.twist.twist.linear.x, q.twist.twist.linear.y, q.pose.covariance,
                           config) for q in msg.people]


def trajectory_points(msg: JointTrajectory) -> list[TrajectoryPoint]:
    """The points of an arm trajectory (times from its start [s])."""
    return [TrajectoryPoint(tuple(pt.positions), convert.from_time(pt.time_from_start),
                            tuple(pt.velocities)) for pt in msg.points]
