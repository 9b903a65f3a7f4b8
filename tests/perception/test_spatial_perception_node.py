"""spatial_perception node with real rclpy over DDS: synthetic depth, scans and odometry in,
points, obstacles, local map, people, markers and diagnostics out; bad input survives."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, LaserScan, PointCloud2
from visualization_msgs.msg import MarkerArray

from sitebot.description.urdf import load_robot_description
from sitebot.nodes import convert, convert_images
from sitebot.nodes.common import QOS_LATCHED, QOS_SENSOR, QOS_STATE
from sitebot.nodes.convert_images import cloud_to_points, points_to_cloud
from sitebot.nodes.spatial_perception import SpatialPerceptionNode
from sitebot.perception.spatial_setup import robot_mounts
from sitebot.tools.spatial_synth import default_camera, render_depth, render_scan
from sitebot_interfaces.msg import ObstacleArray, TrackedPersonArray

from rosprobe import spin_until

MAP_POSE = (1.0, 2.0, math.pi / 2)
PERSON = (2.5, -0.3)               # base frame
BOX = (2.2, 1.0, 0.5, 0.5, 0.5, 0.3)


@pytest.fixture(scope="module")
def rig():
    ctx = Context()
    rclpy.init(context=ctx)
    node = SpatialPerceptionNode(context=ctx, parameter_overrides=[
        Parameter("initial_pose", Parameter.Type.STRING, " ".join(str(v) for v in MAP_POSE)),
        Parameter("local_map_rate_hz", Parameter.Type.DOUBLE, 10.0)])
    io = rclpy.create_node("spatial_test_io", context=ctx)
    got: dict[str, list] = {k: [] for k in ("points", "obstacles", "local_map", "people",
                                            "markers", "diag")}
    for topic, typ, key, qos in (("points", PointCloud2, "points", QOS_SENSOR),
                                 ("obstacles", ObstacleArray, "obstacles", QOS_SENSOR),
                                 ("local_map", OccupancyGrid, "local_map", QOS_LATCHED),
                                 ("people", TrackedPersonArray, "people", QOS_SENSOR),
                                 ("perception/people_markers", MarkerArray, "markers", QOS_STATE),
                                 ("/diagnostics", DiagnosticArray, "diag", QOS_STATE)):
        io.create_subscription(typ, topic, lambda m, k=key: got[k].append(m), qos)
    pubs = {"depth": io.create_publisher(Image, "camera/depth/image_raw", QOS_SENSOR),
            "info": io.create_publisher(__import__("sensor_msgs.msg").msg.CameraInfo,
                                        "camera/depth/camera_info", QOS_SENSOR),
            "scan": io.create_publisher(LaserScan, "scan", QOS_SENSOR),
            "odom": io.create_publisher(Odometry, "odom", QOS_STATE)}
    ex = MultiThreadedExecutor(num_threads=2, context=ctx)
    ex.add_node(node)
    ex.add_node(io)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    T_cam, laser = robot_mounts(load_robot_description())
    K = default_camera(160, 120)
    depth = render_depth(T_cam, K, 160, 120, boxes=[BOX], cylinders=[(*PERSON, 0.225, 1.75)])
    ranges, amin, inc = render_scan(laser, circles=[(*PERSON, 0.225)],
                                    boxes=[BOX[:2] + BOX[2:4] + BOX[5:]],
                                    noise_m=0.005, rng=np.random.default_rng(0))
    r = dict(node=node, io=io, got=got, pubs=pubs, K=K, depth=depth, ranges=ranges,
             amin=amin, inc=inc, t=10.0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
            min(io.count_subscribers(t) for t in ("scan", "odom", "camera/depth/image_raw",
                                                   "camera/depth/camera_info")) == 0
            or io.count_publishers("people") == 0):
        time.sleep(0.02)
    yield r
    ex.shutdown()
    node.destroy_node()
    io.destroy_node()
    rclpy.shutdown(context=ctx)


wait_for = spin_until     # the node spins in its own thread here


def send_frame(rig, depth=True, scan=None, image=None, info_size=None):
    rig["t"] += 0.1
    t = rig["t"]
    stamp = convert.to_time(t)
    od = Odometry()
    od.header.stamp, od.header.frame_id = stamp, "odom"
    od.pose.pose.orientation.w = 1.0
    rig["pubs"]["odom"].publish(od)
    if depth:
        w, h = info_size or (160, 120)
        rig["pubs"]["info"].publish(convert_images.camera_info_msg(rig["K"], w, h, stamp,
                                                            "camera_depth_optical_frame"))
        rig["pubs"]["depth"].publish(image or convert_images.image_depth_msg(
            rig["depth"], stamp, "camera_depth_optical_frame"))
    m = scan or LaserScan()
    if scan is None:
        m.angle_min, m.angle_increment = rig["amin"], rig["inc"]
        m.angle_max = rig["amin"] + rig["inc"] * (len(rig["ranges"]) - 1)
        m.range_min, m.range_max = 0.1, 20.0
        m.ranges = rig["ranges"].tolist()
    m.header.stamp, m.header.frame_id = stamp, "laser_link"
    rig["pubs"]["scan"].publish(m)


def test_people_points_obstacles_local_map_and_diagnostics(rig):
    got = rig["got"]
    for _ in range(10):
        n = len(got["people"])
        send_frame(rig)
        wait_for(lambda: len(got["people"]) > n, what="a people message per scan")
    wait_for(lambda: got["people"] and got["people"][-1].people, what="a tracked person")
    msg = got["people"][-1]
    assert msg.header.frame_id == "map"
    p = msg.people[0]
    c, s = math.cos(MAP_POSE[2]), math.sin(MAP_POSE[2])
    ex = (MAP_POSE[0] + c * PERSON[0] - s * PERSON[1], MAP_POSE[1] + s * PERSON[0] + c * PERSON[1])
    assert math.hypot(p.pose.pose.position.x - ex[0], p.pose.pose.position.y - ex[1]) < 0.12
    assert 0 < p.pose.covariance[0] < 0.05 and p.confidence > 0.5
    assert len(msg.people) == 1                       # the box is not a person
    # points: base frame, x y z float32, everything in front of the robot
    wait_for(lambda: got["points"] and got["obstacles"] and got["local_map"], what="outputs")
    pc = got["points"][-1]
    assert pc.header.frame_id == "base_footprint" and pc.point_step == 12
    pts = cloud_to_points(pc)
    assert len(pts) > 500 and pts[:, 0].min() > 0.5
    obst = got["obstacles"][-1]
    centres = [(o.center.x, o.center.y) for o in obst.obstacles]
    assert any(math.hypot(x - BOX[0], y - BOX[1]) < 0.35 for x, y in centres)
    assert any(math.hypot(x - PERSON[0], y - PERSON[1]) < 0.3 for x, y in centres)
    lmap = got["local_map"][-1]
    assert lmap.header.frame_id == "odom" and lmap.info.width == 200
    g = np.array(lmap.data, np.int8).reshape(lmap.info.height, lmap.info.width)
    res, ox, oy = lmap.info.resolution, lmap.info.origin.position.x, lmap.info.origin.position.y
    # the person's near surface (base = odom here): laser at x = 0.24
    col = int((PERSON[0] - 0.22 - ox) / res)
    row = int((PERSON[1] - oy) / res)
    assert g[row, col] == 100
    assert g[row, int((1.0 - ox) / res)] == 0
    assert got["markers"] and any(mk.ns == "people/body" for mk in got["markers"][-1].markers)
    wait_for(lambda: any(any(kv.key.startswith("latency_scan_people_ms") for kv in st.values)
                         for d in got["diag"] for st in d.status), what="latency diagnostics")


def _diag_value(rig, key):
    for d in reversed(rig["got"]["diag"]):
        for st in d.status:
            for kv in st.values:
                if kv.key == key:
                    return kv.value
    return None


def test_bad_input_is_skipped_with_a_warning_and_the_node_carries_on(rig):
    node = rig["node"]
    warnings: list[str] = []
    logger = node.get_logger()
    orig = logger.warning
    logger.warning = lambda text, **kw: warnings.append(text)
    try:
        stamp = convert.to_time(rig["t"])
        trunc = convert_images.image_depth_msg(rig["depth"], stamp, "camera_depth_optical_frame")
        trunc.data = bytes(trunc.data)[:1000]
        rgb = convert_images.image_rgb_msg(np.zeros((120, 160, 3), np.uint8), stamp,
                                    "camera_depth_optical_frame")
        empty = Image(encoding="32FC1")
        bad_scan = LaserScan(angle_min=-math.pi, angle_max=math.pi, angle_increment=0.1,
                             range_min=0.1, range_max=20.0, ranges=[1.0] * 10)
        nan_scan = LaserScan(angle_min=math.nan, angle_max=1.0, angle_increment=0.1,
                             ranges=[1.0] * 10)
        before_depth = node.core.counts["depth"]
        for kw, kind in ((dict(image=trunc), "depth"), (dict(image=rgb), "depth"),
                         (dict(image=empty), "depth"), (dict(info_size=(640, 480)), "depth"),
                         (dict(scan=bad_scan, depth=False), "scan"),
                         (dict(scan=nan_scan, depth=False), "scan")):
            n = node.skipped[kind]
            if "info_size" in kw:          # camera_info first, so that the image meets it
                rig["pubs"]["info"].publish(convert_images.camera_info_msg(
                    rig["K"], 640, 480, stamp, "camera_depth_optical_frame"))
                wait_for(lambda: node.info is not None and node.info.width == 640,
                         what="the 640x480 camera_info")
            send_frame(rig, **kw)
            wait_for(lambda: node.skipped[kind] > n,
                     what=lambda: f"{kw} counted as bad {kind}: {dict(node.skipped)}")
        text = " | ".join(warnings)
        assert "truncated" in text and "rgb8" in text
        assert "720" not in text and "10 ranges" in text           # the wrong length named
        assert node.core.counts["depth"] == before_depth            # nothing bad processed
        # a good frame afterwards is processed as usual
        n = len(rig["got"]["people"])
        rig["pubs"]["info"].publish(convert_images.camera_info_msg(
            rig["K"], 160, 120, stamp, "camera_depth_optical_frame"))
        wait_for(lambda: node.info.width == 160, what="the 160x120 camera_info again")
        send_frame(rig)
        wait_for(lambda: node.core.counts["depth"] > before_depth and
                 len(rig["got"]["people"]) > n, what="a good frame after bad ones")
    finally:
        logger.warning = orig
    wait_for(lambda: (_diag_value(rig, "skipped_depth") or "0") >= "4", timeout=5,
             what="skip counts in diagnostics")


def test_pointcloud2_round_trip():
    pts = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    msg = points_to_cloud(pts, convert.to_time(1.0), "base_footprint")
    np.testing.assert_array_equal(cloud_to_points(msg), pts)
    msg.data = bytes(msg.data)[:600]
    with pytest.raises(ValueError, match="100 points"):
        cloud_to_points(msg)
