"""The navigation stack's core, without ROS (sitebot.navigation.frames, .config, .stack): the
robot's pose in the map frame and the frames of goals, grids and people; the parameters
turned into the parts' configs; the supervisor's state, goals, scans, local grids, maps, the
control tick and the diagnostics (the node test, tests/navigation/test_navigation_node.py, runs the
same through rclpy)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.description.urdf import load_robot_description
from sitebot.errors import ConfigError, SitebotError
from sitebot.navigation.behaviour import BehaviourConfig, Outcome, SafetyInput
from sitebot.navigation.config import (SCHEMA, NavigationConfig, StackConfig,
                                       navigation_config_from_params)
from sitebot.navigation.controller import ControllerConfig
from sitebot.navigation.costmap import LETHAL, CostmapConfig
from sitebot.navigation.frames import FrameConfig, PoseTracker
from sitebot.navigation.planner import PlannerConfig
from sitebot.navigation.stack import NavigationStack, grid_values
from sitebot.site.bundle import load_bundle
from sitebot.types import DiagnosticLevel, Pose2D

HALF_PI = math.pi / 2


# ---------------------------------------------------------------------------- frames
def test_dead_reckoning_composes_odometry_with_the_spawn_pose():
    tr = PoseTracker((1.0, 2.0, HALF_PI), FrameConfig(pose_timeout_s=0.5))
    assert tr.pose(0.0) is None and tr.map_odom is None
    tr.set_odom((1.0, 0.0, 0.0), t=10.0)          # 1 m forward: north from the spawn
    p = tr.pose(10.2)
    assert isinstance(p, Pose2D)
    assert p == pytest.approx((1.0, 3.0, HALF_PI))
    assert tr.map_odom == (1.0, 2.0, HALF_PI)
    assert tr.pose(10.6) is None                   # older than pose_timeout_s
    with pytest.raises(ValueError, match="non-finite pose"):
        tr.set_odom((math.nan, 0.0, 0.0), t=11.0)
    assert tr.odom_t == 10.0


def test_filter_pose_and_the_map_odom_transform():
    tr = PoseTracker((0.0, 0.0, 0.0), FrameConfig(pose_source="filter"))
    tr.set_odom((1.0, 0.0, 0.0), t=1.0)
    assert tr.map_odom is None and tr.pose(1.0) is None   # no filter yet
    tr.set_filter((5.0, 5.0, 0.0), "map", t=1.0)
    tr.set_odom((1.0, 0.0, 0.0), t=1.1)
    assert tr.map_odom == pytest.approx((4.0, 5.0, 0.0))
    assert tr.pose(1.2) == (5.0, 5.0, 0.0)
    with pytest.raises(ValueError, match="frame 'odom', expected 'map'"):
        tr.set_filter((5.0, 5.0, 0.0), "odom", t=2.0)
    with pytest.raises(SitebotError, match="pose_source"):
        FrameConfig(pose_source="gps")


def test_goals_grids_and_people_in_the_map_frame():
    tr = PoseTracker((4.0, 5.0, 0.0))
    with pytest.raises(SitebotError, match=r"goal pose in unknown frame 'odom' \(accepted: "
                                           r"'map', 'odom'\)"):
        tr.goal_in_map((1.0, 1.0, 0.0), "odom")    # map->odom not known yet
    assert tr.grid_in_map((1.0, 1.0, 0.0), "odom") is None
    tr.set_odom((0.0, 0.0, 0.0), t=1.0)            # dead reckoning: map->odom = spawn
    assert tr.goal_in_map((1.0, 1.0, HALF_PI), "odom") == pytest.approx((5.0, 6.0, HALF_PI))
    assert tr.goal_in_map((1.0, 1.0, 0.5), "map") == (1.0, 1.0, 0.5)
    assert tr.grid_in_map((-2.0, -2.0, 0.0), "odom") == pytest.approx((2.0, 3.0, 0.0))
    with pytest.raises(ValueError, match="unknown frame 'camera_link' \\(expected 'odom' or "
                                         "'map'\\)"):
        tr.grid_in_map((0.0, 0.0, 0.0), "camera_link")
    # people: map-frame points as they are, others from the robot's base frame; NaN dropped
    tr.set_odom((0.0, 0.0, HALF_PI), t=2.0)        # the robot at (4, 5) facing north
    (px, py), = tr.points_in_map([(1.0, 0.0), (math.nan, 1.0)], "base_link", 2.1)
    assert (px, py) == pytest.approx((4.0, 6.0))
    assert tr.points_in_map([(7.0, 8.0)], "map", 2.1) == [(7.0, 8.0)]
    assert tr.points_in_map([(1.0, 0.0)], "base_link", 9.0) == []    # no fresh pose


# ---------------------------------------------------------------------------- config
def test_parameters_become_the_parts_configs():
    cfg = navigation_config_from_params({})
    assert cfg.costmap == CostmapConfig()
    assert cfg.planner == PlannerConfig(escape_radius_m=0.4 + 0.2)   # footprint + margin
    assert cfg.controller == ControllerConfig()
    # the recovery turn keeps its own rate (0.5); rotate_speed_radps (0.8) is the controller's
    assert cfg.behaviour == BehaviourConfig(pose_timeout_s=5.0)
    assert cfg.behaviour.rotate_speed_radps == 0.5 and cfg.controller.rotate_speed_radps == 0.8
    assert cfg.stack == StackConfig() and cfg.frames == FrameConfig()
    assert cfg.stack.people_timeout_s == 1.0 and cfg.stack.stop_hold_s == 0.5
    c2 = navigation_config_from_params({
        "pose_timeout_s": 1.0, "footprint_radius_m": 0.6, "inflation_radius_m": 0.5,
        "min_turn_radius_m": 2.0, "max_turn_radius_m": 1.0, "min_lookahead_m": 2.0,
        "escape_margin_m": 0.5, "world": "ignored (the node's)"})
    assert c2.behaviour.pose_timeout_s == 10.0                     # 10 pose timeouts
    assert c2.costmap.inflation_radius_m == 0.6                    # at least the footprint
    assert c2.planner.min_turn_radius_m == 1.0 and c2.planner.escape_radius_m == 1.1
    assert c2.controller.min_lookahead_m == 1.2
    assert navigation_config_from_params({"pose_abort_s": 20.0}).behaviour.pose_timeout_s \
        == 20.0
    with pytest.raises(ConfigError, match="people_timeout_s"):
        navigation_config_from_params({"people_timeout_s": 0.0})
    names = [s.name for s in SCHEMA]
    assert len(names) == len(set(names)) == 61
    assert {"escape_margin_m", "pose_abort_s", "people_timeout_s", "stop_hold_s"} <= set(names)


# ---------------------------------------------------------------------------- stack
@pytest.fixture(scope="module")
def world():
    """The substation's site bundle (what the navigation node loads)."""
    return load_bundle("substation")


@pytest.fixture(scope="module")
def description():
    return load_robot_description()


def make_stack(world, description, **params) -> NavigationStack:
    return NavigationStack.for_site(world, world.initial_pose("robot1"),
                                    navigation_config_from_params(params), description)


def test_spawn_and_map_source(world, description):
    with pytest.raises(SitebotError, match="'robot9' is neither 'x y yaw' nor a start"):
        world.initial_pose("robot9")
    s = NavigationStack.for_site(world, world.initial_pose("robot1"), NavigationConfig(),
                                 description, site_map=False)
    assert s.costmap is None and s.tick(1.0) is None
    st = s.status(1.0)
    assert st.level == DiagnosticLevel.WARN and st.message == "waiting for map"
    with pytest.raises(SitebotError, match="no map yet"):
        s.start(s.goal_for_place("t1_bay"), 1.0)


def test_safety_state_a_zero_limit_is_a_stop(world, description):
    s = make_stack(world, description)
    s.safety_state(0, math.nan, [], "no limit", 1.0)
    assert s.safety == SafetyInput(2, 0.0, ("no limit",)) and s.safety_t == 1.0
    s.safety_state(1, 0.0005, ["slow_zone"], "", 2.0)
    assert s.safety == SafetyInput(2, 0.0005, ("slow_zone",))
    s.safety_state(1, 0.3, ["person_near"], "", 3.0)
    assert s.safety == SafetyInput(1, 0.3, ("person_near",))
    s.safety_state(3, -1.0, ["estop"], "", 4.0)
    assert s.safety == SafetyInput(3, 0.0, ("estop",))
    # a lost localization allows turning in place only: not a stop, the behaviour turns
    s.safety_state(1, 0.0, ["localization_diverged"], "", 5.0)
    assert s.safety == SafetyInput(1, 0.0, ("localization_diverged",))


def test_goals_from_places_and_poses(world, description):
    s = make_stack(world, description)
    g = s.goal_for_place("t1_bay")
    place = world.registry.place("t1_bay")
    assert (g.x, g.y, g.yaw, g.label) == (place.x, place.y, place.yaw, "t1_bay")
    with pytest.raises(SitebotError, match="unknown place 'nowhere' in site '.*'; places: "):
        s.goal_for_place("nowhere")
    q = (0.0, 0.0, math.sin(0.25), math.cos(0.25))
    g = s.goal_from_pose((1.0, 2.0), q, "map")
    assert (g.x, g.y, g.label) == (1.0, 2.0, "pose (1.00, 2.00)")
    assert g.yaw == pytest.approx(0.5)
    with pytest.raises(SitebotError, match="zero quaternion"):
        s.goal_from_pose((1.0, 2.0), (0.0, 0.0, 0.0, 0.0), "map")
    with pytest.raises(SitebotError, match="non-finite values"):
        s.goal_from_pose((math.inf, 2.0), q, "map")
    s.frames.set_odom((0.0, 0.0, 0.0), 1.0)         # map->odom = spawn (-12, -12, 0)
    g = s.goal_from_pose((2.0, 1.0), q, "odom")
    assert (g.x, g.y) == pytest.approx((-10.0, -11.0))
    assert g.label == "pose (2.00, 1.00) in odom"


def test_scan_marks_from_the_lasers_mount(world, description):
    s = make_stack(world, description)
    assert s.mount("laser_link") == pytest.approx((0.24, 0.0, 0.0))
    with pytest.raises(ValueError, match="not fixed to 'base_footprint'"):
        s.mount("no_such_frame")
    ranges = np.full(360, np.inf)
    ranges[0] = 2.0                                  # one hit straight ahead
    assert s.scan("laser_link", ranges, 0.0, 2 * math.pi / 360, 0.1, 20.0, 1.0) == 0  # no pose
    s.frames.set_odom((0.0, 0.0, 0.0), 1.0)
    assert s.scan("laser_link", ranges, 0.0, 2 * math.pi / 360, 0.1, 20.0, 1.0) == 1
    s.costmap.update(1.0)
    # the robot at the spawn (-12, -12) facing east: the hit 0.24 + 2 m ahead
    assert s.costmap.cost_at(-12.0 + 2.24, -12.0)[0] == LETHAL
    assert make_stack(world, description, use_scan=False).scan(
        "laser_link", ranges, 0.0, 2 * math.pi / 360, 0.1, 20.0, 1.0) == 0


def test_local_grids_and_maps(world, description):
    s = make_stack(world, description)
    with pytest.raises(ValueError, match="7 values for 10x10 cells"):
        s.local_grid([0] * 7, 10, 10, (0.0, 0.0, 0.0), 0.05, "odom", 1.0)
    cells = [0] * 100
    cells[55] = 100                                 # row 5, column 5
    assert s.local_grid(cells, 10, 10, (0.0, 0.0, 0.0), 0.1, "odom", 1.0) == 0  # no map->odom
    s.frames.set_odom((0.0, 0.0, 0.0), 1.0)
    assert s.local_grid(cells, 10, 10, (0.0, 0.0, 0.0), 0.1, "odom", 1.0) == 1
    s.costmap.update(1.0)
    assert s.costmap.cost_at(-12.0 + 0.55, -12.0 + 0.55)[0] == LETHAL
    assert grid_values(cells, 10, 10).shape == (10, 10) and grid_values(cells, 10, 10)[5, 5] == 100
    # a site map replaces the costmap and cancels the running goal
    s.start(s.goal_for_place("yard_southwest"), 2.0)
    nav = s.nav
    grid = [0] * (200 * 200)
    with pytest.raises(ValueError, match="rotated map origins"):
        s.map_grid(grid, 200, 200, (-15.0, -15.0, 0.1), 0.15, "map")
    with pytest.raises(ValueError, match="frame 'odom', expected 'map'"):
        s.map_grid(grid, 200, 200, (-15.0, -15.0, 0.0), 0.15, "odom")
    s.map_grid(grid, 200, 200, (-15.0, -15.0, 0.0), 0.15, "map")
    assert nav.outcome == Outcome("canceled", "the map changed") and s.nav is not nav
    assert s.costmap.shape == (600, 600) and s.costmap.origin_x == -15.0


def test_tick_plans_drives_pauses_and_holds_a_stop(world, description):
    s = make_stack(world, description)
    assert s.tick(0.0) is None                      # no clock yet
    assert s.tick(1.0) is None                      # no goal
    s.frames.set_odom((0.0, 0.0, HALF_PI), 1.0)     # at the spawn, facing north
    goal = s.goal_for_place("yard_southwest")       # about 5 m north
    assert s.start(goal, 1.0) is None and s.counts["goals"] == 1
    t = s.tick(1.05)                                # no safety state: paused
    assert (t.v, t.w, t.plan) == (0.0, 0.0, None) and s.state.startswith("paused")
    assert "safety/state stale" in s.state
    s.safety_state(0, 1.0, [], "", 1.05)
    t = s.tick(1.1)
    assert t.plan is not None and (t.v, t.w) == (0.0, 0.0) and s.state == "following: planned"
    assert s.last_plan_ms == pytest.approx(t.plan.time_s * 1e3)
    s.frames.set_odom((0.0, 0.0, HALF_PI), 1.15)
    s.safety_state(0, 1.0, [], "", 1.15)
    t = s.tick(1.15)
    assert t.plan is None and t.v > 0.0 and math.isfinite(s.remaining_m)
    assert 4.0 < s.remaining_m < 7.0
    # a tracked person 1 m ahead slows the base; one older than people_timeout_s (1 s) not
    s.people_seen([(1.0, 0.0)], "base_footprint", 1.15)

    def step(now):
        s.frames.set_odom((0.0, 0.0, HALF_PI), now)
        s.safety_state(0, 1.0, [], "", now)
        return s.tick(now)
    step(1.2)
    assert s.state == "following: person near"
    step(2.2)
    assert s.state != "following: person near"
    # cancel (the action's client): counted, the behaviour idles and the tick sends nothing
    out = s.cancel("canceled by the client")
    assert out == Outcome("canceled", "canceled by the client")
    assert s.counts["canceled"] == 1 and s.last_outcome == "canceled: canceled by the client"
    assert s.tick(2.3) is None
    st = s.status(2.3)
    assert st.name == "navigation" and st.message == "canceled"
    assert st.level == DiagnosticLevel.OK
    values = dict(st.values)
    assert values["goals"] == "1" and values["canceled"] == "1" and values["replans"] == "1"
    assert values["last_plan_ms"] != "nan" and values["pose_fresh"] == "True"
    s.record_cycle(2.0)
    s.record_cycle(1.0)
    assert dict(s.status(2.3).values)["control_cycle_max_ms"] == "2.00"


def test_an_outcome_in_a_tick_holds_the_stop(world, description):
    s = make_stack(world, description, pose_abort_s=0.0, pose_timeout_s=0.1)
    s.safety_state(0, 1.0, [], "", 1.0)
    s.start(s.goal_for_place("yard_southwest"), 1.0)
    assert s.tick(1.0).outcome is None               # no pose: waiting for one
    s.safety_state(0, 1.0, [], "", 2.5)
    t = s.tick(2.5)                                  # no pose for 1 s (10 x 0.1 s): aborted
    assert t.outcome == Outcome("aborted", "no valid pose for 1 s")
    assert t.message == "goal yard_southwest: aborted: no valid pose for 1 s"
    assert (t.v, t.w) == (0.0, 0.0) and s.counts["aborted"] == 1
    assert s.tick(2.9) == type(t)()                  # zero commands within stop_hold_s
    assert s.tick(3.1) is None
    st = s.status(3.1)
    assert st.level == DiagnosticLevel.WARN and st.message == "aborted"


def test_goal_end_for_the_action_server(world, description):
    s = make_stack(world, description)
    s.start(s.goal_for_place("yard_southwest"), 1.0)
    nav = s.nav
    assert s.goal_end(nav, True, False) is None
    assert s.goal_end(nav, False, False) == ("abort", Outcome("aborted",
                                                               "preempted by a new goal"))
    how, out = s.goal_end(nav, True, True)
    assert how == "canceled" and out.code == "canceled" and s.counts["canceled"] == 1
    s.start(s.goal_for_place("t1_bay"), 2.0)
    s.nav.outcome = Outcome("succeeded", "reached t1_bay")
    assert s.goal_end(s.nav, True, False) == ("succeed", s.nav.outcome)
    # a cancel request ends the goal canceled, even one that has just ended otherwise
    assert s.goal_end(s.nav, True, True) == ("canceled", Outcome("canceled", "reached t1_bay"))
    s.nav.outcome = Outcome("blocked", "blocked for more than 30 s")
    assert s.goal_end(s.nav, True, False)[0] == "abort"
