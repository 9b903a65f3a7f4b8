"""map_server with real rclpy: the bundle's map.yaml on ``map`` exactly as nav2_map_server
would publish it (reliable, transient local, frame map), the keep-out mask, the GetMap
service; a bad bundle stops it at start with the file and key."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import rclpy
from nav_msgs.msg import OccupancyGrid
from nav_msgs.srv import GetMap
from rclpy.executors import SingleThreadedExecutor

from sitebot.nodes.common import QOS_LATCHED
from sitebot.site.bundle import load_bundle

from rosprobe import spin_until


def test_map_and_mask_reach_a_late_subscriber_and_get_map_answers():
    from sitebot.nodes.map_server import MapServerNode
    site = load_bundle("substation")
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = MapServerNode(context=ctx)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        spin_until(lambda: False, 0.3, executor=ex, must=False)
        test = rclpy.create_node("map_server_test", context=ctx)     # joins after publishing
        got: dict[str, list] = {"map": [], "mask": []}
        test.create_subscription(OccupancyGrid, "map", got["map"].append, QOS_LATCHED)
        test.create_subscription(OccupancyGrid, "keepout_filter_mask", got["mask"].append,
                                 QOS_LATCHED)
        cli = test.create_client(GetMap, "map_server/map")
        ex.add_node(test)
        spin_until(lambda: got["map"] and got["mask"] and cli.service_is_ready(), 10,
                   "the latched map and mask", executor=ex)
        m = got["map"][0]
        assert m.header.frame_id == "map"
        assert (m.info.width, m.info.height, m.info.resolution) == (600, 600, pytest.approx(0.05))
        assert (m.info.origin.position.x, m.info.origin.position.y) == (-15.0, -15.0)
        assert bytes(m.data) == site.map.values.tobytes()
        mask = np.frombuffer(bytes(got["mask"][0].data), np.int8)
        assert set(np.unique(mask).tolist()) == {0, 100}
        assert int((mask == 100).sum()) == int((site.keep_out_mask() == 100).sum()) > 1000
        fut = cli.call_async(GetMap.Request())
        spin_until(fut.done, 10, "GetMap", executor=ex)
        assert bytes(fut.result().map.data) == bytes(m.data)
        ex.shutdown()
        test.destroy_node()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_a_bad_bundle_stops_the_node_at_start(tmp_path):
    b = tmp_path / "bad"
    shutil.copytree(load_bundle("datacentre").folder, b)
    (b / "map.yaml").write_text((b / "map.yaml").read_text().replace("resolution: 0.05",
                                                                     "resolution: [0.05]"))
    r = subprocess.run([sys.executable, "-m", "sitebot.nodes.map_server", "--ros-args", "-p",
                        f"site:={b}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"{b}/map.yaml: resolution: must be a number" in r.stderr + r.stdout


AUTONOMY_NODES = ("safety_supervisor", "localization", "camera_perception",
                  "spatial_perception", "navigation", "arm_planner", "task_planner",
                  "task_executor", "site_viz", "web_console")


@pytest.mark.parametrize("node", AUTONOMY_NODES)
def test_no_autonomy_node_starts_on_a_bad_bundle(tmp_path, node):
    """Every node that takes ``site`` refuses a bundle whose place lies in a wall: exit code
    2 and one line naming site.yaml and the key (the bundle loader's check, not each
    node's)."""
    b = tmp_path / "bad"
    shutil.copytree(load_bundle("substation").folder, b)
    text = (b / "site.yaml").read_text()
    (b / "site.yaml").write_text(text.replace("pose: [-6.0, -6.9, -1.5708]",
                                              "pose: [-6.0, -8.5, -1.5708]", 1))
    r = subprocess.run([sys.executable, "-m", f"sitebot.nodes.{node}", "--ros-args", "-p",
                        f"site:={b}"], capture_output=True, text=True, timeout=120)
    out = r.stderr + r.stdout
    assert r.returncode == 2, out[-2000:]
    assert f"{b}/site.yaml: places[0].pose: place 't1_bay' (-6, -8.5) lies in an occupied " \
           "cell of map.yaml" in out, out[-2000:]
