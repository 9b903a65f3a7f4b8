"""site_viz: what rviz2 needs that no other node publishes with a type rviz2 displays.

Outputs: ``map`` (nav_msgs/OccupancyGrid, latched: the site bundle's map, only with
``publish_map: true`` where no map_server runs), ``site/markers
(visualization_msgs/MarkerArray, latched: places, assets, surveyed AprilTags, labelled),
``viz/markers`` (MarkerArray at ``publish_rate_hz``: the safety state as coloured text above
the robot, the task status, the latest gauge readings at their gauges), ``/diagnostics``.
Inputs: ``safety/state`` (sitebot_interfaces/SafetyState), ``gauges``
(sitebot_interfaces/GaugeReading), ``task/status`` (std_msgs/String, the executor's JSON).

The content is built by :mod:`sitebot.viz.scene` (core, no ROS). Malformed input is dropped
with a throttled warning; the node never stops publishing because of it.
"""
from __future__ import annotations

import array
import math
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid
from rclpy.node import Node
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from sitebot.config.params import ParamSpec, ParamType
from sitebot.nodes.common import QOS_LATCHED, QOS_STATE, declare_schema, run_node
from sitebot.site.bundle import load_bundle
from sitebot.site.params import SITE_PARAM
from sitebot.types import yaw_to_quaternion
from sitebot.viz import scene
from sitebot_interfaces.msg import GaugeReading, SafetyState

F, B, S = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING

SCHEMA = (
    SITE_PARAM,
    ParamSpec("map_frame", S, "map", "frame of the map and of the site markers"),
    ParamSpec("base_frame", S, "base_footprint", "robot frame the status texts hang above"),
    ParamSpec("publish_map", B, False, "publish the site bundle's map on 'map' (only where "
              "no map server runs: map_server owns 'map')"),
    ParamSpec("map_resolution_m", F, 0.1, "cell size of the published site map", 0.02, 1.0,
              unit="m"),
    ParamSpec("map_keep_out", B, False, "draw keep-out zones into the map as occupied (they "
              "are shown as outlines on safety/zones anyway)"),
    ParamSpec("publish_rate_hz", F, 2.0, "viz/markers (status texts) rate", 0.2, 20.0,
              unit="Hz"),
    ParamSpec("safety_stale_s", F, 1.0, "a safety state older than this is shown as stale "
              "(grey)", 0.1, 30.0, unit="s"),
    ParamSpec("text_height_m", F, 0.25, "height of the labels' letters", 0.05, 2.0, unit="m"),
    ParamSpec("status_height_m", F, 1.8, "height of the safety text above the base frame",
              0.0, 5.0, unit="m"),
    ParamSpec("gauge_max_age_s", F, 600.0, "readings older than this are no longer shown",
              1.0, 86400.0, unit="s"),
    ParamSpec("warn_period_s", F, 5.0, "shortest period between two warnings of one kind",
              0.1, 60.0, unit="s"),
)


def marker_msg(spec: scene.MarkerSpec) -> Marker:
    """visualization_msgs/Marker from a core :class:`~sitebot.viz.scene.MarkerSpec`
    (stamp 0: rviz2 uses the latest transform)."""
    m = Marker()
    m.header.frame_id = spec.frame
    m.ns, m.id, m.type, m.action = spec.ns, int(spec.id), int(spec.type), Marker.ADD
    x, y, z, yaw = spec.pose
    m.pose.position.x, m.pose.position.y, m.pose.position.z = float(x), float(y), float(z)
    q = yaw_to_quaternion(float(yaw))
    m.pose.orientation.x, m.pose.orientation.y = float(q[0]), float(q[1])
    m.pose.orientation.z, m.pose.orientation.w = float(q[2]), float(q[3])
    m.scale.x, m.scale.y, m.scale.z = (float(v) for v in spec.scale)
    m.color.r, m.color.g, m.color.b, m.color.a = (float(v) for v in spec.color)
    m.text = spec.text
    m.points = [Point(x=float(a), y=float(b), z=float(c)) for a, b, c in spec.points]
    m.frame_locked = spec.frame != "map"
    return m


def grid_msg(g: scene.GridSpec, stamp: Any) -> OccupancyGrid:
    m = OccupancyGrid()
    m.header.frame_id = g.frame
    m.header.stamp = stamp
    m.info.map_load_time = stamp
    m.info.resolution = float(g.resolution_m)
    m.info.width, m.info.height = int(g.width), int(g.height)
    m.info.origin.position.x, m.info.origin.position.y = float(g.origin_x), float(g.origin_y)
    m.info.origin.orientation.w = 1.0
    m.data = array.array("b", g.data.tobytes())
    return m


class SiteVizNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("site_viz", **kwargs)
        self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        p = self.p
        self.site = load_bundle(p["site"])
        self.registry = self.site.registry
        self.gauge_pos = scene.asset_positions(self.registry)
        self.gauge_ids = {a.id: i for i, a in enumerate(self.registry.assets)}
        self.safety: tuple[SafetyState, float] | None = None
        self.task: tuple[str, float] | None = None
        self.readings: dict[str, tuple[GaugeReading, float]] = {}
        self.counts = {"safety_state": 0, "gauges": 0, "task_status": 0, "dropped": 0}
        self._warned: dict[str, float] = {}
        self.last_error = ""

        self.map_pub = self.create_publisher(OccupancyGrid, "map", QOS_LATCHED)
        self.site_pub = self.create_publisher(MarkerArray, "site/markers", QOS_LATCHED)
        self.viz_pub = self.create_publisher(MarkerArray, "viz/markers", QOS_STATE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        self.create_subscription(SafetyState, "safety/state", self.on_safety, QOS_STATE)
        self.create_subscription(GaugeReading, "gauges", self.on_gauge, QOS_STATE)
        self.create_subscription(String, "task/status", self.on_task, QOS_STATE)
        self.publish_static()
        self.create_timer(1.0 / p["publish_rate_hz"], self.on_timer)
        self.create_timer(1.0, self.on_diagnostics)
        self.get_logger().info(
            f"site_viz: '{self.site.site}': {len(self.registry.places)} places, "
            f"{len(self.registry.assets)} assets, {len(self.registry.markers)} tags"
            + (f", map {p['map_resolution_m']} m/cell on {self.resolve_topic_name('map')}"
               if p["publish_map"] else ", no map"))

    def _on_params(self, changed: dict[str, Any]) -> None:
        self.p.update(changed)
        if hasattr(self, "site_pub") and set(changed) & {"map_resolution_m", "map_keep_out",
                                                         "text_height_m", "publish_map"}:
            self.publish_static()

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _warn(self, kind: str, text: str) -> None:
        self.counts["dropped"] += 1
        self.last_error = text
        t = time.monotonic()
        if t - self._warned.get(kind, -math.inf) >= self.p["warn_period_s"]:
            self._warned[kind] = t
            self.get_logger().warning(text)

    # ------------------------------------------------------------------ static
    def publish_static(self) -> None:
        p = self.p
        if p["publish_map"]:
            g = scene.site_map(self.site, p["map_resolution_m"], p["map_keep_out"],
                               p["map_frame"])
            self.map_pub.publish(grid_msg(g, self.get_clock().now().to_msg()))
        arr = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        arr.markers.append(clear)
        arr.markers.extend(marker_msg(s) for s in scene.registry_markers(
            self.registry, p["map_frame"], p["text_height_m"]))
        self.site_pub.publish(arr)

    # ------------------------------------------------------------------ inputs
    def on_safety(self, msg: SafetyState) -> None:
        self.safety = (msg, self.now())
        self.counts["safety_state"] += 1

    def on_gauge(self, msg: GaugeReading) -> None:
        if msg.asset_id not in self.gauge_pos:
            self._warn("gauges", f"gauges: reading for '{msg.asset_id}', which is not an asset "
                       f"of site '{self.registry.site}': dropped")
            return
        if msg.valid and not math.isfinite(msg.value):
            self._warn("gauges", f"gauges: '{msg.asset_id}' valid but value {msg.value}: "
                       "shown as unreadable")
        self.readings[msg.asset_id] = (msg, self.now())
        self.counts["gauges"] += 1

    def on_task(self, msg: String) -> None:
        try:
            text = scene.task_status_text(scene.parse_task_status(msg.data))
        except ValueError as e:
            self._warn("task", f"{e}: dropped ({msg.data[:60]!r})")
            return
        self.task = (text, self.now())
        self.counts["task_status"] += 1

    # ------------------------------------------------------------------ periodic
    def _status_specs(self, now: float) -> list[scene.MarkerSpec]:
        p = self.p
        base, h = p["base_frame"], p["text_height_m"]
        if self.safety is None:
            text, color = scene.safety_text(0, 0, math.nan, [], False, math.inf, math.inf,
                                             None, p["safety_stale_s"])
        else:
            m, at = self.safety
            text, color = scene.safety_text(m.level, m.mode, m.speed_scale, list(m.reasons),
                                             m.estop_latched, m.closest_separation_m,
                                             m.required_separation_m, now - at,
                                             p["safety_stale_s"])
        out = [scene.MarkerSpec("safety_state", 0, scene.TEXT_VIEW_FACING, base,
                                (0.0, 0.0, p["status_height_m"], 0.0), (0.0, 0.0, 1.2 * h),
                                color, text)]
        task = self.task[0] if self.task else "task: none"
        out.append(scene.MarkerSpec("task_status", 0, scene.TEXT_VIEW_FACING, base,
                                    (0.0, 0.0, p["status_height_m"] + 0.9, 0.0),
                                    (0.0, 0.0, h), (0.8, 0.9, 1.0, 1.0), task))
        for aid, (m, at) in sorted(self.readings.items()):
            age = now - at
            if age > p["gauge_max_age_s"]:
                continue
            text, color = scene.gauge_text(aid, m.valid, m.value, m.unit, m.confidence,
                                           m.failure_reason, max(age, 0.0))
            x, y, z = self.gauge_pos[aid]
            out.append(scene.MarkerSpec("gauge_readings", self.gauge_ids[aid],
                                        scene.TEXT_VIEW_FACING, p["map_frame"],
                                        (x, y, z + 0.5, 0.0), (0.0, 0.0, 0.8 * h), color, text))
        return out

    def on_timer(self) -> None:
        try:
            specs = self._status_specs(self.now())
            arr = MarkerArray()
            clear = Marker()
            clear.action = Marker.DELETEALL       # readings that aged out disappear
            arr.markers.append(clear)
            arr.markers.extend(marker_msg(s) for s in specs)
            self.viz_pub.publish(arr)
        except Exception as e:  # noqa: BLE001 - one bad value must not end the display
            self._warn("timer", f"viz/markers not published: {type(e).__name__}: {e}")

    def on_diagnostics(self) -> None:
        now = self.now()
        d = DiagnosticStatus(name=f"{self.get_name()}: visualisation", hardware_id="site_viz")
        age = now - self.safety[1] if self.safety else math.inf
        if self.counts["dropped"]:
            d.level = DiagnosticStatus.WARN
            d.message = f"{self.counts['dropped']} inputs dropped; last: {self.last_error}"
        elif age > self.p["safety_stale_s"]:
            d.level, d.message = DiagnosticStatus.WARN, "no fresh safety/state"
        else:
            d.level, d.message = DiagnosticStatus.OK, "ok"
        d.values = [KeyValue(key="safety_state_age_s", value=f"{age:.2f}"),
                    KeyValue(key="gauges_shown", value=str(len(self.readings)))]
        d.values += [KeyValue(key=k, value=str(v)) for k, v in self.counts.items()]
        arr = DiagnosticArray(status=[d])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(SiteVizNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
