"""The simulation started through `sitebot launch` as separate processes, observed by an
independent rclpy subscriber: every topic publishes its declared type at its declared rate
(within 20 %, in sim time), and the TF tree connects odom to every sensor frame."""
from __future__ import annotations

import math

import pytest
from geometry_msgs.msg import PoseArray
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, Imu, JointState, LaserScan
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from sitebot.config.params import load_params_file
from sitebot.launcher import launched
from sitebot.paths import data_path

from rosprobe import Probe, rate_hz

pytestmark = pytest.mark.integration

WINDOW_S = 6.0           # sim-time window over which rates are measured
TOLERANCE = 0.20

SENSOR_FRAMES = ("laser_link", "imu_link", "camera_link", "camera_color_optical_frame",
                 "camera_depth_optical_frame")


def declared_rates() -> dict[str, float]:
    p = load_params_file(data_path("config", "sim.yaml"))["simulator"]
    return {
        "/clock": p["clock_rate_hz"],
        "joint_states": p["joint_states_rate_hz"],
        "odom": p["odom_rate_hz"],
        "imu/data": p["imu_rate_hz"],
        "scan": p["scan_rate_hz"],
        "camera/color/image_raw": p["camera_rate_hz"],
        "camera/depth/image_raw": p["camera_rate_hz"],
        "camera/camera_info": p["camera_rate_hz"],
        "ground_truth/odom": p["ground_truth_rate_hz"],
        "ground_truth/people": p["ground_truth_rate_hz"],
        # moving joints with joint_states, odom -> base_footprint with odometry
        "tf": p["joint_states_rate_hz"] + p["odom_rate_hz"],
    }


TYPES = {
    "/clock": (Clock, "state"), "joint_states": (JointState, "state"),
    "odom": (Odometry, "state"), "imu/data": (Imu, "sensor"), "scan": (LaserScan, "sensor"),
    "camera/color/image_raw": (Image, "sensor"), "camera/depth/image_raw": (Image, "sensor"),
    "camera/camera_info": (CameraInfo, "sensor"), "ground_truth/odom": (Odometry, "state"),
    "ground_truth/people": (PoseArray, "state"),
}
TYPE_NAMES = {
    "/clock": "rosgraph_msgs/msg/Clock", "/joint_states": "sensor_msgs/msg/JointState",
    "/odom": "nav_msgs/msg/Odometry", "/imu/data": "sensor_msgs/msg/Imu",
    "/scan": "sensor_msgs/msg/LaserScan", "/camera/color/image_raw": "sensor_msgs/msg/Image",
    "/camera/depth/image_raw": "sensor_msgs/msg/Image",
    "/camera/camera_info": "sensor_msgs/msg/CameraInfo", "/tf": "tf2_msgs/msg/TFMessage",
    "/tf_static": "tf2_msgs/msg/TFMessage", "/robot_description": "std_msgs/msg/String",
    "/ground_truth/odom": "nav_msgs/msg/Odometry",
    "/ground_truth/people": "geometry_msgs/msg/PoseArray",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


@pytest.fixture(scope="module")
def sim_run():
    """Launch the simulation, record WINDOW_S of sim time, stop it."""
    probe = Probe()
    for topic, (t, qos) in TYPES.items():
        probe.subscribe(t, topic, qos, keep=topic not in ("camera/color/image_raw",
                                                          "camera/depth/image_raw"))
    probe.subscribe(TFMessage, "tf", "state")
    probe.subscribe(TFMessage, "tf_static", "latched")
    probe.subscribe(String, "robot_description", "latched")
    with launched("sim.launch.yaml", {"real_time_factor": "2.0"}) as h:
        probe.wait_for(lambda: probe.count("/clock") > 0, 60, "the first /clock message", launch=h)
        t0 = probe.latest_sim_time()
        probe.wait_for(lambda: probe.latest_sim_time() >= t0 + WINDOW_S + 1.0,
                       60 + 3 * WINDOW_S, f"{WINDOW_S} s of sim time", launch=h)
        graph = dict(probe.node.get_topic_names_and_types())
        alive = h.failed
    yield probe, t0, graph, alive
    probe.close()


def test_no_node_died(sim_run):
    _, _, _, failed = sim_run
    assert not failed, f"processes died: {failed}"


def test_every_topic_has_its_declared_type(sim_run):
    _, _, graph, _ = sim_run
    for topic, type_name in TYPE_NAMES.items():
        assert topic in graph, f"{topic} is not advertised; advertised: {sorted(graph)}"
        assert graph[topic] == [type_name], f"{topic}: {graph[topic]} != [{type_name}]"


@pytest.mark.parametrize("topic", list(declared_rates()))
def test_topic_rate_within_20_percent(sim_run, topic):
    probe, t0, _, _ = sim_run
    expected = declared_rates()[topic]
    stamps = [s for s, _ in probe.get(topic) if t0 <= s <= t0 + WINDOW_S]
    measured = rate_hz(stamps)
    assert abs(measured - expected) <= TOLERANCE * expected, \
        f"{topic}: {measured:.2f} Hz over {len(stamps)} messages, declared {expected:.2f} Hz"


def test_sensor_messages_are_well_formed(sim_run):
    probe, _, _, _ = sim_run
    scan = probe.get("scan")[-1][1]
    assert scan.header.frame_id == "laser_link"
    n = round((scan.angle_max - scan.angle_min) / scan.angle_increment) + 1
    assert abs(len(scan.ranges) - n) <= 1
    finite = [r for r in scan.ranges if math.isfinite(r)]
    assert len(finite) > 0.2 * len(scan.ranges), "the substation yard has walls in range"
    assert all(scan.range_min <= r <= scan.range_max for r in finite)
    info = probe.get("camera/camera_info")[-1][1]
    assert (info.width, info.height) == (320, 240)
    assert info.header.frame_id == "camera_color_optical_frame"
    assert info.k[0] > 0 and abs(info.k[2] - 160) < 1 and abs(info.k[5] - 120) < 1
    imu = probe.get("imu/data")[-1][1]
    assert imu.header.frame_id == "imu_link"
    assert 9.3 < imu.linear_acceleration.z < 10.3           # gravity, robot at rest
    js = probe.get("joint_states")[-1][1]
    assert {"left_wheel_joint", "right_wheel_joint", "arm_joint_1", "arm_joint_6"} <= set(js.name)
    assert len(js.position) == len(js.name) == len(js.velocity)
    odom = probe.get("odom")[-1][1]
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_footprint")
    desc = probe.get("robot_description")
    assert len(desc) >= 1 and "<robot" in desc[-1][1].data and "arm_joint_1" in desc[-1][1].data


def test_tf_tree_connects_odom_to_every_sensor_frame(sim_run):
    probe, _, _, _ = sim_run
    parent: dict[str, str] = {}
    for topic in ("tf_static", "tf"):
        for _, msg in probe.get(topic):
            for tr in msg.transforms:
                prev = parent.setdefault(tr.child_frame_id, tr.header.frame_id)
                assert prev == tr.header.frame_id, \
                    f"{tr.child_frame_id} has two parents: {prev} and {tr.header.frame_id}"

    def root_path(frame: str) -> list[str]:
        path = [frame]
        while path[-1] in parent:
            path.append(parent[path[-1]])
            assert len(path) < 50, f"cycle in tf: {path}"
        return path

    for frame in SENSOR_FRAMES + ("gripper_tcp", "left_wheel_link", "arm_link_6"):
        path = root_path(frame)
        assert path[-1] == "odom", f"{frame} does not connect to odom: {' -> '.join(path)}"
