"""config/sitebot.rviz against the running stack (rviz2 itself is not installed here).

The config is parsed; every enabled display's class must map to the message type rviz2
subscribes with (the table below, from rviz_default_plugins); the stack is started once
through launch (``rviz.launch.yaml rviz:=false``: mission stack + site_viz + teleop_relay) and
the ROS graph is read with rclpy's introspection: every displayed topic advertised with exactly
that type and a QoS the display can match, a message arriving on each (subscribed with the
display's own QoS, as rviz2 would), and a subscriber of the right type for each tool topic.
A broken config (mutations) must make the same checker fail.
"""
from __future__ import annotations

import copy
import math
import time

import pytest
import yaml
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from sitebot.launcher import launched
from sitebot.nodes.common import QOS_COMMAND
from sitebot.paths import share_dir
from sitebot.site.bundle import load_bundle
from sitebot.viz.rviz_config import (Endpoint, check_config, load_rviz_config, parse_rviz_config,
                                     resolve_topic)

from rosprobe import Probe

RVIZ = share_dir() / "config" / "sitebot.rviz"

#: rviz_default_plugins display class -> the message type it subscribes with (None: no topic)
DISPLAY_TYPES = {
    "rviz_common/Group": None,
    "rviz_default_plugins/Grid": None,
    "rviz_default_plugins/Axes": None,
    "rviz_default_plugins/TF": "tf2_msgs/msg/TFMessage",
    "rviz_default_plugins/RobotModel": "std_msgs/msg/String",
    "rviz_default_plugins/LaserScan": "sensor_msgs/msg/LaserScan",
    "rviz_default_plugins/PointCloud2": "sensor_msgs/msg/PointCloud2",
    "rviz_default_plugins/Image": "sensor_msgs/msg/Image",
    "rviz_default_plugins/Camera": "sensor_msgs/msg/Image",
    "rviz_default_plugins/Map": "nav_msgs/msg/OccupancyGrid",
    "rviz_default_plugins/Path": "nav_msgs/msg/Path",
    "rviz_default_plugins/Odometry": "nav_msgs/msg/Odometry",
    "rviz_default_plugins/Pose": "geometry_msgs/msg/PoseStamped",
    "rviz_default_plugins/PoseArray": "geometry_msgs/msg/PoseArray",
    "rviz_default_plugins/PoseWithCovariance": "geometry_msgs/msg/PoseWithCovarianceStamped",
    "rviz_default_plugins/Marker": "visualization_msgs/msg/Marker",
    "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
    "rviz_default_plugins/Polygon": "geometry_msgs/msg/PolygonStamped",
}
#: tool class -> the message type it publishes (None: publishes nothing)
TOOL_TYPES = {
    "rviz_default_plugins/Interact": None,
    "rviz_default_plugins/MoveCamera": None,
    "rviz_default_plugins/Select": None,
    "rviz_default_plugins/FocusCamera": None,
    "rviz_default_plugins/Measure": None,
    "rviz_default_plugins/SetInitialPose": "geometry_msgs/msg/PoseWithCovarianceStamped",
    "rviz_default_plugins/SetGoal": "geometry_msgs/msg/PoseStamped",
    "rviz_default_plugins/PublishPoint": "geometry_msgs/msg/PointStamped",
}
#: what the operator must see (topic -> display class), from the issue
REQUIRED = {
    "robot_description": "rviz_default_plugins/RobotModel",
    "scan": "rviz_default_plugins/LaserScan",
    "points": "rviz_default_plugins/PointCloud2",
    "camera/color/image_raw": "rviz_default_plugins/Image",
    "local_map": "rviz_default_plugins/Map",
    "map": "rviz_default_plugins/Map",
    "navigation/costmap": "rviz_default_plugins/Map",
    "plan": "rviz_default_plugins/Path",
    "safety/zones": "rviz_default_plugins/MarkerArray",
    "safety/markers": "rviz_default_plugins/MarkerArray",
    "perception/people_markers": "rviz_default_plugins/MarkerArray",
    "perception/markers": "rviz_default_plugins/MarkerArray",
    "viz/markers": "rviz_default_plugins/MarkerArray",
    "site/markers": "rviz_default_plugins/MarkerArray",
}
FIRST_MESSAGE_TIMEOUT_S = 75.0        # wall seconds after the stack is up, per topic
LIGHT = {"world": "substation", "real_time_factor": "1.0", "camera_width": "320",
         "camera_height": "240", "camera_rate_hz": "2.0", "rviz": "false"}


def _import_type(full: str):
    pkg, _, name = full.split("/")
    return getattr(__import__(f"{pkg}.msg", fromlist=[name]), name)


def _qos(ref) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=ref.depth,
                      reliability=ReliabilityPolicy.RELIABLE if ref.reliability == "Reliable"
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL
                      if ref.durability == "Transient Local" else DurabilityPolicy.VOLATILE)


def _endpoint(info) -> Endpoint:
    q = info.qos_profile
    return Endpoint(info.topic_type,
                    "best_effort" if q.reliability == ReliabilityPolicy.BEST_EFFORT
                    else "reliable",
                    "transient_local" if q.durability == DurabilityPolicy.TRANSIENT_LOCAL
                    else "volatile",
                    info.node_name)


# ------------------------------------------------------------------ offline
def test_config_parses_with_fixed_frame_map_and_known_classes():
    cfg = load_rviz_config(RVIZ)
    assert cfg.fixed_frame == "map"
    enabled = cfg.enabled_displays()
    assert len([d for d in enabled if d.topic is not None]) >= 14
    unknown = [d.cls for d in enabled if d.cls not in DISPLAY_TYPES]
    assert unknown == []
    shown = {d.topic.name: d.cls for d in enabled if d.topic is not None}
    missing = {t: c for t, c in REQUIRED.items() if shown.get(t) != c}
    assert missing == {}, f"required displays missing or of the wrong class: {missing}"
    assert "rviz_default_plugins/TF" in {d.cls for d in enabled}
    tools = {t.cls: t.topic.name if t.topic else None for t in cfg.tools}
    assert tools["rviz_default_plugins/SetGoal"] == "goal_pose"
    assert tools["rviz_default_plugins/SetInitialPose"] == "initialpose"
    # no sitebot_interfaces type is shown: rviz2 could not display it
    assert all(not (DISPLAY_TYPES[d.cls] or "").startswith("sitebot") for d in enabled)


def test_parser_names_file_and_key_of_a_broken_config(tmp_path):
    doc = yaml.safe_load(RVIZ.read_text())
    doc["Visualization Manager"]["Displays"][1]["Description Topic"]["Reliability Policy"] = "Sure"
    with pytest.raises(Exception, match=r"Displays\[1\]\.Description Topic\.Reliability Policy"):
        parse_rviz_config(yaml.safe_dump(doc), "x.rviz")
    with pytest.raises(Exception, match="Fixed Frame"):
        parse_rviz_config("Visualization Manager: {Displays: []}", "y.rviz")
    with pytest.raises(Exception, match="not YAML"):
        parse_rviz_config("a: [", "z.rviz")


def test_checker_on_a_synthetic_graph():
    cfg = parse_rviz_config(yaml.safe_dump({"Visualization Manager": {
        "Global Options": {"Fixed Frame": "map"},
        "Displays": [
            {"Class": "rviz_default_plugins/LaserScan", "Name": "Scan", "Enabled": True,
             "Topic": {"Value": "scan", "Reliability Policy": "Reliable"}},
            {"Class": "rviz_common/Group", "Name": "Off", "Enabled": False, "Displays": [
                {"Class": "rviz_default_plugins/Map", "Name": "M", "Enabled": True,
                 "Topic": {"Value": "nobody"}}]},
            {"Class": "rviz_default_plugins/Map", "Name": "Map", "Enabled": True,
             "Topic": {"Value": "map", "Durability Policy": "Transient Local"}}],
        "Tools": [{"Class": "rviz_default_plugins/SetGoal", "Topic": {"Value": "goal_pose"}}]}}))
    graph = {"/scan": {"publishers": [Endpoint("sensor_msgs/msg/LaserScan", "best_effort")]},
             "/map": {"publishers": [Endpoint("nav_msgs/msg/OccupancyGrid", "reliable",
                                              "volatile", "map_server")]},
             "/goal_pose": {"subscribers": [Endpoint("geometry_msgs/msg/PoseStamped")]}}
    problems = check_config(cfg, graph, DISPLAY_TYPES, TOOL_TYPES)
    assert len(problems) == 2, problems          # the disabled group is not checked
    assert "Best Effort" in problems[0] and "Scan" in problems[0]
    assert "Volatile" in problems[1] and "map_server" in problems[1]
    assert resolve_topic("scan", "/robot1") == "/robot1/scan"


# ------------------------------------------------------------------ against the stack
@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Start the stack once; record first-arrival times and the graph."""
    tmp = tmp_path_factory.mktemp("rviz")
    cfg = load_rviz_config(RVIZ)
    shown = [d for d in cfg.enabled_displays() if d.topic is not None]
    probe = Probe("rviz_probe")
    probe.subscribe(Clock, "/clock", "state", keep=False)
    for d in shown:
        # subscribed exactly as the display would: its type and QoS
        probe.subscribe(_import_type(DISPLAY_TYPES[d.cls]), d.topic.name, _qos(d.topic),
                        keep=d.topic.name != "camera/color/image_raw")
    goal_pub = probe.publisher(PoseStamped, "goal_pose", QOS_COMMAND)
    first: dict[str, float] = {}
    out: dict = {"cfg": cfg, "first": first}
    try:
        with launched("rviz.launch.yaml", {**LIGHT, "out_dir": str(tmp)}) as h:
            probe.wait_for(lambda: goal_pub.get_subscription_count() > 0
                           and probe.count("/clock") > 20, 120,
                           "navigation's goal_pose subscriber and the clock", launch=h)
            t_up = time.monotonic()
            out["up_s"] = t_up
            # 2D Goal Pose, as rviz2's SetGoal tool sends it: a plan follows, and on the way
            # to T1 the camera sees its tag and gauges (perception/markers)
            t1 = next(p for p in load_bundle("substation").registry.places if p.id == "t1_bay")
            goal = PoseStamped()
            goal.header.frame_id = "map"
            goal.pose.position.x, goal.pose.position.y = t1.x, t1.y
            goal.pose.orientation.z, goal.pose.orientation.w = -math.sqrt(0.5), math.sqrt(0.5)
            goal_pub.publish(goal)
            topics = [d.topic.name for d in shown]
            deadline = t_up + FIRST_MESSAGE_TIMEOUT_S
            while time.monotonic() < deadline and len(first) < len(topics) and not h.failed:
                for t in topics:
                    if t not in first and probe.count(t) > 0:
                        first[t] = time.monotonic() - t_up
                time.sleep(0.05)
            out["failed"] = h.failed
            out["tail"] = "\n".join(h.lines[-20:])
            node = probe.node
            graph: dict[str, dict[str, list[Endpoint]]] = {}
            names = {n for n, _ in node.get_topic_names_and_types()}
            out["names_and_types"] = dict(node.get_topic_names_and_types())
            # the whole graph, so that a mutated config can be checked against it too
            for t in names:
                pubs = [_endpoint(i) for i in node.get_publishers_info_by_topic(t)
                        if i.node_name != "rviz_probe"]
                subs = [_endpoint(i) for i in node.get_subscriptions_info_by_topic(t)
                        if i.node_name != "rviz_probe"]
                graph[t] = {"publishers": pubs, "subscribers": subs}
            out["graph"] = graph
            out["names"] = names
            out["latest"] = {t: probe.get(t)[-1][1] for t in ("map", "site/markers",
                                                             "viz/markers") if probe.count(t)}
    finally:
        probe.close()
    return out


@pytest.mark.integration
def test_every_displayed_topic_is_advertised_with_the_displays_type(live):
    problems = check_config(live["cfg"], live["graph"], DISPLAY_TYPES, TOOL_TYPES)
    for d in live["cfg"].enabled_displays():
        if d.topic is None:
            continue
        full = resolve_topic(d.topic.name)
        types = live["names_and_types"].get(full, [])
        print(f"{full:32s} {', '.join(types):40s} publishers "
              f"{len(live['graph'][full]['publishers'])}")
    assert problems == [], "\n".join(problems)
    for d in live["cfg"].enabled_displays():
        if d.topic is not None:
            assert live["names_and_types"][resolve_topic(d.topic.name)] == \
                [DISPLAY_TYPES[d.cls]], d.path


@pytest.mark.integration
def test_a_message_arrives_on_every_displayed_topic(live):
    shown = [d.topic.name for d in live["cfg"].enabled_displays() if d.topic is not None]
    print("\nfirst message after the stack was up [s]:")
    for t in shown:
        print(f"  {t:32s} {live['first'].get(t, math.inf):6.1f}")
    late = [t for t in shown if live["first"].get(t, math.inf) > FIRST_MESSAGE_TIMEOUT_S]
    assert not live["failed"], live["tail"]
    assert late == [], f"no message within {FIRST_MESSAGE_TIMEOUT_S:.0f} s on {late}"


@pytest.mark.integration
def test_tool_topics_have_subscribers_of_the_tools_type(live):
    for topic, want in (("/goal_pose", "geometry_msgs/msg/PoseStamped"),
                        ("/initialpose", "geometry_msgs/msg/PoseWithCovarianceStamped")):
        subs = live["graph"][topic]["subscribers"]
        assert len(subs) >= 1, topic
        assert {s.type for s in subs} == {want}
    nodes = {s.node for s in live["graph"]["/goal_pose"]["subscribers"]}
    assert "navigation" in nodes
    assert "localization" in {s.node for s in live["graph"]["/initialpose"]["subscribers"]}


def _mutated(**change) -> object:
    doc = yaml.safe_load(RVIZ.read_text())
    displays = doc["Visualization Manager"]["Displays"]

    def find(name, items):
        for d in items:
            if d.get("Name") == name:
                return d
            found = find(name, d.get("Displays", []))
            if found:
                return found
        return None
    for name, (key, value) in change.items():
        name = name.replace("_", " ")
        if name == "SetGoal":
            tool = next(t for t in doc["Visualization Manager"]["Tools"]
                        if t["Class"].endswith("/SetGoal"))
            tool["Topic"]["Value"] = value
            continue
        d = find(name, displays)
        assert d is not None, name
        if key == "Class":
            d["Class"] = value
        else:
            d["Topic"][key] = value
    return parse_rviz_config(yaml.safe_dump(copy.deepcopy(doc)), "mutated.rviz")


@pytest.mark.integration
@pytest.mark.parametrize("change, expect", [
    ({"Scan": ("Value", "scan_typo")}, "nobody publishes"),
    ({"Scan": ("Class", "rviz_default_plugins/Image")}, "the display needs sensor_msgs/msg/Image"),
    ({"Scan": ("Class", "rviz_default_plugins/LaserScann")}, "unknown display class"),
    ({"Scan": ("Reliability Policy", "Reliable")}, "Best Effort"),
    ({"Zones": ("Value", "safety/zone")}, "nobody publishes"),
    ({"Site_map": ("Value", "safety/state")}, "needs nav_msgs/msg/OccupancyGrid"),
    ({"Protective_field": ("Durability Policy", "Transient Local")}, "Volatile"),
    ({"SetGoal": ("Value", "goal")}, "nobody subscribes"),
])
def test_a_broken_config_fails_the_check(live, change, expect):
    cfg = _mutated(**change)
    problems = check_config(cfg, live["graph"], DISPLAY_TYPES, TOOL_TYPES)
    assert len(problems) == 1, problems
    assert expect in problems[0], problems[0]


@pytest.mark.integration
def test_site_viz_content_matches_the_site(live):
    from sitebot.viz.scene import registry_markers
    world = load_bundle("substation")
    grid = world.map                        # map_server publishes the bundle's map.yaml
    m = live["latest"]["map"]
    occupied = sum(1 for v in m.data if v == 100) / len(m.data)
    print(f"\nmap {m.info.width}x{m.info.height} at {m.info.resolution:.2f} m, "
          f"{100 * occupied:.1f} % occupied")
    assert (m.info.width, m.info.height) == (grid.width, grid.height)
    assert len(m.data) == m.info.width * m.info.height
    assert math.isclose(m.info.resolution, 0.05, rel_tol=1e-6)
    assert bytes(m.data) == grid.values.tobytes()
    assert (m.info.origin.position.x, m.info.origin.position.y) == \
        pytest.approx((grid.origin_x, grid.origin_y))
    assert 0.01 < occupied < 0.6
    assert m.header.frame_id == "map"
    site = live["latest"]["site/markers"].markers
    assert len(site) == 1 + len(registry_markers(world.registry))     # DELETEALL first
    labels = {mk.text for mk in site if mk.text}
    assert "T1 transformer bay" in labels and "tag 1" in labels
    viz = live["latest"]["viz/markers"].markers
    safety = [mk for mk in viz if mk.ns == "safety_state"]
    assert len(safety) == 1 and safety[0].header.frame_id == "base_footprint"
    assert "automatic" in safety[0].text and "stale" not in safety[0].text, safety[0].text
    c = safety[0].color
    assert c.a == pytest.approx(1.0)
    assert not (c.r == pytest.approx(0.6, abs=1e-3) and c.g == pytest.approx(0.6, abs=1e-3)), \
        "grey = no fresh safety state"
