"""sitebot.perception.spatial_pipeline and .spatial_setup (no ROS): the people the node
publishes (map or base frame, headings, covariances), map poses, sensor mounts and the
configuration, with numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.description.urdf import load_robot_description
from sitebot.perception.monitor import InputMonitor, LatencyLog
from sitebot.perception.people import Detection, PeopleTracker, TrackerConfig
from sitebot.perception.spatial_pipeline import (UNOBSERVED_VARIANCE, PersonOut, ScanOutput,
                                                 SpatialConfig, SpatialPerception,
                                                 spatial_diagnostic)
from sitebot.perception.spatial_setup import (SCHEMA, SensorMounts, default_spatial, robot_mounts,
                                              spatial_config_from_params)
from sitebot.tools.spatial_synth import render_scan
from sitebot.types import DiagnosticLevel, Pose2D

MAP_POSE = (1.0, 2.0, math.pi / 2)        # map <- odom at the start


def core(initial=MAP_POSE) -> SpatialPerception:
    return SpatialPerception(default_spatial(), np.eye(4), (0.0, 0.0, 0.0), None, initial)


def person(pid=1, x=1.0, y=5.0, vx=0.0, vy=1.0, cov=(0.01, 0.04, 0.09, 0.16)) -> PersonOut:
    return PersonOut(pid, x, y, vx, vy, np.diag(cov), 0.8)


def test_person_heading_and_covariances():
    assert person(vx=0.0, vy=0.5).heading(0.05) == pytest.approx(math.pi / 2)
    assert person(vx=-1.0, vy=0.0).heading(0.05) == pytest.approx(math.pi)
    assert person(vx=0.03, vy=0.03).heading(0.05) == 0.0          # 4.2 cm/s: standing
    assert person(vx=0.03, vy=0.03).heading(0.01) == pytest.approx(math.pi / 4)
    p = person()
    p.cov[0, 1] = p.cov[1, 0] = 0.002
    pc = p.pose_covariance()
    np.testing.assert_array_equal(pc[:2, :2], [[0.01, 0.002], [0.002, 0.04]])
    np.testing.assert_array_equal(np.diag(pc)[2:],
                                  [UNOBSERVED_VARIANCE] * 3 + [math.pi ** 2])
    tc = p.twist_covariance()
    np.testing.assert_array_equal(np.diag(tc), [0.09, 0.16] + [UNOBSERVED_VARIANCE] * 4)
    assert np.count_nonzero(pc) == 8 and np.count_nonzero(tc) == 6


def test_map_pose_sets_map_from_odom():
    sp = core(initial=None)
    assert sp.map_from_odom is None and not sp.map_pose_seen
    assert sp.odom_pose() == Pose2D(0.0, 0.0, 0.0)
    sp.on_odom(1.0, 1.0, 0.0, 0.0)
    sp.on_odom(2.0, 2.0, 0.0, 0.0)
    assert isinstance(sp.odom_pose(1.2), Pose2D) and sp.odom_pose(1.2) == (1.0, 0.0, 0.0)
    sp.on_map_pose(2.0, 5.0, 5.0, math.pi / 2)                    # base in map at t = 2
    assert sp.map_pose_seen and isinstance(sp.map_from_odom, Pose2D)
    np.testing.assert_allclose(sp.map_from_odom, (5.0, 3.0, math.pi / 2), atol=1e-12)
    with pytest.raises(ValueError, match="not finite"):
        sp.on_map_pose(3.0, math.nan, 0.0, 0.0)


def test_people_out_in_map_and_people_in_base():
    sp = core()
    sp.on_odom(0.0, 1.0, 0.0, 0.0)         # base in map: (1, 2, pi/2) (+) (1, 0, 0) = (1, 3, pi/2)
    trk = PeopleTracker(TrackerConfig(birth_hits=1))
    tracks = trk.update([Detection(2.0, 0.0, 0.1, 0.9, "scan")], 0.0)   # odom (2, 0)
    people, frame = sp.people_out(tracks)
    assert frame == "map" and len(people) == 1
    assert (people[0].x, people[0].y) == pytest.approx((1.0, 4.0))
    base = sp.people_in_base([person()], "map", 0.0)     # map (1, 5), walking along map y
    b = base[0]
    assert (b.id, b.confidence) == (1, 0.8)
    assert (b.x, b.y, b.vx, b.vy) == pytest.approx((2.0, 0.0, 1.0, 0.0), abs=1e-12)
    np.testing.assert_allclose(np.diag(b.cov), [0.04, 0.01, 0.16, 0.09], atol=1e-12)


def test_people_for_output_never_in_odom():
    sp = core()
    sp.on_odom(0.0, 1.0, 0.0, 0.0)
    p = [person()]
    out = ScanOutput([], p, "map", {})
    people, frame = sp.people_for_output(out, 0.0, "map")
    assert frame == "map" and people is p
    people, frame = sp.people_for_output(out, 0.0, "base")
    assert frame == "base" and (people[0].x, people[0].y) == pytest.approx((2.0, 0.0))
    # without a map pose the core's people are in odom: published in the base frame
    sp = core(initial=None)
    sp.on_odom(0.0, 1.0, 0.0, math.pi)                          # odom (1, 0), facing -x
    out = ScanOutput([], [person(x=0.0, y=0.0, vx=1.0, vy=0.0)], "odom", {})
    people, frame = sp.people_for_output(out, 0.0, "map")
    assert frame == "base"
    assert (people[0].x, people[0].y, people[0].vx) == pytest.approx((1.0, 0.0, -1.0),
                                                                     abs=1e-12)


def test_depth_and_scan_take_their_sensor_mounts():
    T_cam, laser = robot_mounts(load_robot_description())
    sp = SpatialPerception(default_spatial(), np.eye(4), (0.0, 0.0, 0.0))
    r, amin, inc = render_scan(laser, circles=[(2.5, 0.0, 0.225)], noise_m=0.0)
    sp.on_scan(r, amin, inc, 0.1, 20.0, 0.0, laser_pose=laser)
    assert sp.laser == laser and isinstance(sp.laser, Pose2D)
    depth = np.full((12, 16), np.nan, np.float32)
    K = np.array([[10.0, 0, 7.5], [0, 10.0, 5.5], [0, 0, 1.0]])
    sp.on_depth(depth, K, 0.0, T_base_cam=T_cam)
    np.testing.assert_array_equal(sp.T_base_cam, T_cam)
    np.testing.assert_array_equal(sp.cloud.T_base_cam, T_cam)
    sp.on_depth(depth, K, 0.1)                                    # kept when not given
    np.testing.assert_array_equal(sp.cloud.T_base_cam, T_cam)


def test_sensor_mounts_from_the_urdf():
    desc = load_robot_description()
    T_cam, laser = robot_mounts(desc)
    assert isinstance(laser, Pose2D)
    assert laser == pytest.approx((0.24, 0.0, 0.0), abs=1e-9)
    m = SensorMounts(desc, "base_footprint", "camera_depth_optical_frame", "laser_link")
    np.testing.assert_array_equal(m.camera(), T_cam)
    assert m.camera("") is m.camera("camera_depth_optical_frame")         # looked up once
    assert m.laser() == laser and m.laser("laser_link") == laser
    with pytest.raises(ValueError, match="not fixed"):
        m.laser("nowhere")
    with pytest.raises(ValueError, match="not fixed"):
        SensorMounts(desc, "base_footprint", "nowhere", "laser_link")


def test_config_from_params_and_its_checks():
    defaults = {s.name: s.default for s in SCHEMA}
    assert defaults["static_map_resolution_m"] == 0.1
    assert defaults["person_heading_min_speed_mps"] == 0.05
    cfg = spatial_config_from_params(dict(defaults, static_map_resolution_m=0.05,
                                          person_heading_min_speed_mps=0.2))
    assert (cfg.static_map_resolution_m, cfg.person_heading_min_speed_mps) == (0.05, 0.2)
    assert (default_spatial().static_map_resolution_m,
            default_spatial().person_heading_min_speed_mps) == (0.1, 0.05)
    with pytest.raises(ValueError, match="static_map_resolution_m=0.0"):
        SpatialConfig(static_map_resolution_m=0.0)
    with pytest.raises(ValueError, match="person_heading_min_speed_mps"):
        SpatialConfig(person_heading_min_speed_mps=math.nan)


def test_spatial_diagnostic_reports_stale_inputs_and_the_map_pose_source():
    sp = core(initial=None)
    m = InputMonitor(100)
    d = spatial_diagnostic(sp, m, 10.0, 1.0, "")
    assert d.name == "spatial perception" and d.level == DiagnosticLevel.WARN
    assert d.message == "stale or missing: scan, odom, depth"
    assert dict(d.values)["map_pose_source"] == "none"
    for k in ("scan", "odom", "depth"):
        m.seen(k, 9.5)
    m.add_latency("scan_total_ms", 2.0)
    m.add_latency("scan_total_ms", 4.0)
    m.latency["cloud_total_ms"] = LatencyLog(100)      # no sample yet: left out
    m.skip("scan", 9.0, 2.0, "scan: bad")
    sp.on_odom(9.5, 0.0, 0.0, 0.0)
    d = spatial_diagnostic(core(), m, 10.0, 1.0, "map")
    assert d.level == DiagnosticLevel.OK and d.message == "ok"
    assert d.values == (("latency_scan_total_ms_mean", "3.00"),
                        ("latency_scan_total_ms_max", "4.00"),
                        ("frames_depth", "0"), ("frames_odom", "0"), ("frames_scan", "0"),
                        ("skipped_scan", "1"), ("people_tracked", "0"),
                        ("people_frame", "map"),
                        ("map_pose_source", "odom + initial map pose"))
    assert spatial_diagnostic(core(), m, 10.6, 1.0, "map").message == \
        "stale or missing: scan, odom, depth"
    sp.on_map_pose(9.5, 1.0, 2.0, 0.0)
    assert dict(spatial_diagnostic(sp, m, 10.0, 1.0, "map").values)["map_pose_source"] == \
        "odometry/filtered"
