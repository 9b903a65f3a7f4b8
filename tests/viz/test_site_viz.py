"""site_viz: the scene core (no ROS), then the node in one process with real rclpy: the
static map and site markers, the safety/task/gauge texts, and malformed input that must be
dropped with a warning while the node keeps publishing."""
from __future__ import annotations

import json
import math
from functools import partial

import numpy as np
import pytest
import rclpy
from nav_msgs.msg import OccupancyGrid
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from sitebot.nodes.common import QOS_LATCHED, QOS_STATE
from sitebot.site.bundle import load_bundle
from sitebot.viz import scene
from sitebot_interfaces.msg import GaugeReading, SafetyState

from rosprobe import spin_until

WORLD = load_bundle("substation")     # what site_viz loads


# ------------------------------------------------------------------ core
def test_site_map_is_the_static_grid():
    g = scene.site_map(WORLD, 0.1)
    grid = WORLD.occupancy_grid(0.1, 0.0, keep_out=False)
    assert (g.height, g.width) == grid.occupied.shape
    assert g.data.dtype == np.int8 and g.data.size == g.width * g.height
    assert set(np.unique(g.data).tolist()) == {0, 100}
    assert int((g.data == 100).sum()) == int(grid.occupied.sum())
    # row-major from the origin: the cell holding the spawn pose is free
    sx, sy, _ = WORLD.starts["robot1"]
    r, c = int((sy - g.origin_y) / g.resolution_m), int((sx - g.origin_x) / g.resolution_m)
    assert g.data[r * g.width + c] == 0
    with_zones = scene.site_map(WORLD, 0.1, keep_out=True)
    assert int((with_zones.data == 100).sum()) > int((g.data == 100).sum())


def test_registry_markers_label_every_place_asset_and_tag():
    reg = WORLD.registry
    specs = scene.registry_markers(reg)
    by_ns = {}
    for s in specs:
        by_ns.setdefault(s.ns, []).append(s)
    assert len(by_ns["places"]) == len(by_ns["place_labels"]) == len(reg.places)
    assert len(by_ns["fiducials"]) == len(reg.markers)
    assert len(by_ns["assets"]) == len(reg.assets)
    ids = [(s.ns, s.id) for s in specs]
    assert len(ids) == len(set(ids)), "marker (ns, id) pairs must be unique"
    # an asset with a tag is shown at its surveyed tag
    t1 = next(a for a in reg.assets if a.id == "t1")
    tag = next(m for m in reg.markers if m.tag == t1.fiducial)
    assert scene.asset_positions(reg)["t1"] == (tag.x, tag.y, tag.z)
    gauge_labels = [s.text for s in by_ns["asset_labels"] if "bar" in s.text]
    assert gauge_labels, "gauge labels carry their range and unit"


def test_safety_text_colours_and_staleness():
    text, col = scene.safety_text(2, 1, 0.0, ["deadman_released"], False, math.inf, math.inf,
                                  0.1, 1.0)
    assert text.startswith("PROTECTIVE STOP | manual") and "deadman_released" in text
    assert col == scene.LEVEL_COLORS[2]
    text, col = scene.safety_text(0, 0, 1.0, [], False, 2.5, 0.44, 3.0, 1.0)
    assert "stale (3.0 s old)" in text and col == scene.UNKNOWN_COLOR
    text, col = scene.safety_text(3, 0, 0.0, [], True, 0.3, 0.44, 0.0, 1.0)
    assert "E-STOP LATCHED" in text and "closest 0.30 m / needs 0.44 m" in text
    assert scene.safety_text(0, 0, 1.0, [], False, 1, 1, None, 1.0)[1] == scene.UNKNOWN_COLOR


def test_task_status_parsing_refuses_bad_input():
    s = scene.parse_task_status(json.dumps({"plan_id": "p1", "step": 2, "steps": 9,
                                            "state": "running", "skill": "navigate_to"}))
    assert scene.task_status_text(s) == "task p1: step 2/9 navigate_to running"
    fin = {"plan_id": "p1", "state": "finished", "code": "SUCCEEDED", "reason": ""}
    assert scene.task_status_text(fin) == "task p1: finished SUCCEEDED"
    with pytest.raises(ValueError, match="not JSON"):
        scene.parse_task_status("{oops")
    with pytest.raises(ValueError, match="JSON list, not an object"):
        scene.parse_task_status("[1, 2]")


# ------------------------------------------------------------------ node, real rclpy
def test_node_publishes_and_survives_malformed_input():
    from sitebot.nodes.site_viz import SiteVizNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = SiteVizNode(context=ctx, parameter_overrides=[
            rclpy.Parameter("publish_rate_hz", value=10.0),
            rclpy.Parameter("publish_map", value=True)])
        test = rclpy.create_node("site_viz_test", context=ctx)
        got: dict[str, list] = {"map": [], "site": [], "viz": []}
        test.create_subscription(OccupancyGrid, "map", got["map"].append, QOS_LATCHED)
        test.create_subscription(MarkerArray, "site/markers", got["site"].append, QOS_LATCHED)
        test.create_subscription(MarkerArray, "viz/markers", got["viz"].append, QOS_STATE)
        safety = test.create_publisher(SafetyState, "safety/state", QOS_STATE)
        gauges = test.create_publisher(GaugeReading, "gauges", QOS_STATE)
        task = test.create_publisher(String, "task/status", QOS_STATE)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        ex.add_node(test)

        spin = partial(spin_until, executor=ex, step=0.05, must=False)
        assert spin(lambda: got["map"] and got["site"] and got["viz"])
        first = got["viz"][-1].markers
        assert [m.text for m in first if m.ns == "safety_state"] == \
            ["SAFETY: no state from the supervisor"]
        spin(lambda: safety.get_subscription_count() > 0
                   and task.get_subscription_count() > 0
                   and gauges.get_subscription_count() > 0)
        # malformed: not JSON, a JSON list, an unknown gauge, a 'valid' NaN reading
        task.publish(String(data="{not json"))
        task.publish(String(data="[1]"))
        gauges.publish(GaugeReading(asset_id="no_such_gauge", valid=True, value=1.0))
        gauges.publish(GaugeReading(asset_id="t1_oil_pressure_gauge", valid=True,
                                    value=math.nan, unit="bar"))
        # good input
        st = SafetyState(level=SafetyState.LEVEL_REDUCED_SPEED, mode=SafetyState.MODE_AUTOMATIC,
                         speed_scale=0.25, reasons=["person_nearby"],
                         closest_separation_m=1.2, required_separation_m=0.9)
        n0 = len(got["viz"])

        def latest(ns):
            return [m for m in got["viz"][-1].markers if m.ns == ns] if got["viz"] else []
        safety.publish(st)
        task.publish(String(data=json.dumps({"plan_id": "p7", "step": 1, "steps": 2,
                                             "state": "running", "skill": "read_gauge"})))
        gauges.publish(GaugeReading(asset_id="t1_oil_temp_gauge", valid=True, value=61.5,
                                    unit="degC", confidence=0.9))
        assert spin(lambda: len(got["viz"]) > n0 + 2
                          and latest("safety_state") and "REDUCED" in latest("safety_state")[0].text
                          and "p7" in latest("task_status")[0].text
                          and len(latest("gauge_readings")) == 2)
        texts = sorted(m.text for m in latest("gauge_readings"))
        assert texts[0].startswith("t1_oil_pressure_gauge: unreadable")
        assert texts[1].startswith("t1_oil_temp_gauge: 61.5 degC (0.90)")
        col = latest("safety_state")[0].color
        assert (col.r, col.g, col.b) == pytest.approx(scene.LEVEL_COLORS[1][:3], abs=1e-6)
        assert node.counts["dropped"] == 4 and node.counts["task_status"] == 1
        # the map matches the site bundle's
        m = got["map"][-1]
        g = scene.site_map(WORLD, 0.1)
        assert (m.info.width, m.info.height) == (g.width, g.height)
        assert bytes(m.data) == g.data.tobytes()
        ex.shutdown()
        node.destroy_node()
        test.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
