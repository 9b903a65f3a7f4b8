"""sitebot.perception.camera_pipeline (no ROS): camera_info checks, tags with their asset
and base-frame pose, gauge readings at a limited rate, marker helpers and the diagnostic
summary, on a synthetic frame of the substation's oil temperature gauge."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.perception.camera_pipeline import (SCHEMA, CameraInfoError, CameraPerception,
                                                GaugeResult, camera_diagnostic, camera_intrinsics,
                                                tag_axes)
from sitebot.perception.fiducials import camera_mount
from sitebot.perception.gauge import GaugeReading, layouts_from_world
from sitebot.perception.monitor import InputMonitor
from sitebot.sim.world import DialSpec
from sitebot.sim.world_loader import load_world
from sitebot.tools.synthetic_camera import (dial_texture, look_pose, paste_plane, pinhole_K,
                                            tag_texture)
from sitebot.types import DiagnosticLevel, rpy_matrix

PARAMS = {s.name: s.default for s in SCHEMA}


@pytest.fixture(scope="module")
def scene():
    """The substation's t1_oil_temp_gauge (tag 2) 1.2 m ahead at 71 degC, and the core."""
    world = load_world("substation")
    layouts = layouts_from_world(world)
    lay = layouts["t1_oil_temp_gauge"]
    K = pinhole_K(640, 480)
    img = np.full((480, 640, 3), 90, np.uint8)
    T = look_pose(1.2, 10.0, 0.0, 0.0, offset=(0.0, 0.15))
    tex, half = tag_texture(2, 0.08)
    paste_plane(img, K, T, tex, half)
    paste_plane(img, K, T @ lay.T_tag_dial,
                dial_texture(DialSpec(lay.unit, lay.min_value, lay.max_value), 71.0),
                lay.radius_m)
    img = (img.astype(np.float32) * 0.85).astype(np.uint8)
    core = CameraPerception.from_params(PARAMS, world.registry, layouts)
    return core, img, K, T, lay


def test_camera_intrinsics_accepts_a_camera_and_names_what_is_wrong():
    K = pinhole_K(640, 480)
    Kout, d = camera_intrinsics(K.reshape(9).tolist(), [0.0] * 5, (640, 480), (640, 480))
    np.testing.assert_array_equal(Kout, K)
    assert d.shape == (5,)
    with pytest.raises(CameraInfoError, match="camera_info is 320x240 but the image is "
                       "640x480") as e:
        camera_intrinsics(K.reshape(9), [], (320, 240), (640, 480))
    assert e.value.kind == "camera_info_mismatch"
    with pytest.raises(CameraInfoError, match="not finite or not a camera matrix") as e:
        camera_intrinsics([math.nan] * 9, [], (640, 480), (640, 480))
    assert e.value.kind == "bad_camera_info"
    bad = K.copy()
    bad[2, 2] = 2.0                               # not a camera matrix
    with pytest.raises(CameraInfoError, match="not a camera matrix"):
        camera_intrinsics(bad.reshape(9), [], (640, 480), (640, 480))
    with pytest.raises(CameraInfoError, match="has 3 distortion coefficients") as e:
        camera_intrinsics(K.reshape(9), [0.1, 0.0, 0.0], (640, 480), (640, 480))
    assert e.value.kind == "bad_camera_info"


def test_tag_axes_point_along_the_tag_axes():
    T = np.eye(4)
    T[:3, :3] = rpy_matrix(0.3, -0.2, 1.1)
    T[:3, 3] = (0.1, -0.2, 1.5)
    axes = tag_axes(T)
    assert len(axes) == 3
    for k, A in enumerate(axes):
        np.testing.assert_allclose(A[:3, 0], T[:3, k], atol=1e-12)       # arrow x = axis k
        np.testing.assert_allclose(A[:3, 3], T[:3, 3])
        np.testing.assert_allclose(A[:3, :3] @ A[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(A[:3, :3]) == pytest.approx(1.0)
    np.testing.assert_array_equal(axes[0], T)


def test_gauge_result_label_and_colour():
    ok = GaugeResult(GaugeReading("g1", True, 71.234, "degC", 0.873), np.eye(4), 0)
    assert ok.label == "g1: 71.2 degC (0.87)" and ok.rgba == (0.1, 1.0, 0.1, 1.0)
    no = GaugeResult(GaugeReading("g1", False, math.nan, "degC", 0.2, "blurred"), np.eye(4), 3)
    assert no.label == "g1: ? (blurred)" and no.rgba == (1.0, 0.5, 0.0, 1.0)


def test_tags_come_with_their_asset_and_base_pose(scene):
    core, img, K, T, _ = scene
    tags = core.detect(img, K, np.zeros(5))
    assert [t.detection.tag_id for t in tags] == [2]
    tag = tags[0]
    assert tag.asset_id == "t1_oil_temp_gauge"
    assert np.linalg.norm(tag.detection.T_cam_tag[:3, 3] - T[:3, 3]) < 0.03
    T_base_cam = camera_mount(base_frame="base_footprint",
                              camera_frame="camera_color_optical_frame")
    np.testing.assert_allclose(tag.T_base_tag, T_base_cam @ tag.detection.T_cam_tag)
    assert 0.8 < tag.T_base_tag[0, 3] < 1.5 and abs(tag.T_base_tag[1, 3]) < 0.5
    # the level-robot prior: the up hint is the base's z seen from the camera
    np.testing.assert_allclose(core.detector.up_hint_cam, T_base_cam[:3, :3].T @ [0, 0, 1.0])
    assert len(core.monitor.latency["fiducials"]) >= 1


def test_gauges_are_read_at_most_at_their_rate(scene):
    core, img, K, _, lay = scene
    tags = core.detect(img, K, np.zeros(5))
    core.last_gauge_s = -math.inf
    out = core.read_gauges(img, K, tags, np.zeros(5), 100.0, 2.0)
    assert len(out) == 1
    g = out[0]
    assert g.reading.asset_id == "t1_oil_temp_gauge" and g.reading.valid
    assert abs(g.reading.value - 71.0) <= 0.02 * (lay.max_value - lay.min_value)
    assert g.marker_id == sorted(core.layouts).index("t1_oil_temp_gauge")
    np.testing.assert_allclose(g.T_cam_dial, tags[0].detection.T_cam_tag @ lay.T_tag_dial)
    assert core.read_gauges(img, K, tags, np.zeros(5), 100.4, 2.0) == []    # 0.4 s < 0.5 s
    assert len(core.read_gauges(img, K, tags, np.zeros(5), 100.5, 2.0)) == 1
    assert len(core.read_gauges(img, K, tags, np.zeros(5), 100.5, 0.0)) == 1  # no limit
    assert core.read_gauges(img, K, [], np.zeros(5), 200.0, 0.0) == []       # no tag
    assert len(core.monitor.latency["gauges"]) == 3


def test_camera_diagnostic_levels_and_values():
    m = InputMonitor(10, ("fiducials", "gauges", "frame"))
    d = camera_diagnostic(m, 0, math.inf)
    assert d.level == DiagnosticLevel.WARN
    assert d.message == "no frame processed in the last 2 s"
    assert camera_diagnostic(m, 0, 3.0, 5.0).level == DiagnosticLevel.OK
    assert camera_diagnostic(m, 0, 3.0, 2.5).message == "no frame processed in the last 2.5 s"
    m.count("throttled")
    m.count("throttled")
    m.skip("bad_image", 0.0, 5.0)
    m.skip("no_camera_info", 0.0, 5.0)
    m.add_latency("frame", 4.0)
    m.add_latency("frame", 6.0)
    d = camera_diagnostic(m, 7, 0.5)
    assert d.name == "camera pipelines"
    assert d.level == DiagnosticLevel.WARN and d.message == "2 frames skipped (bad input)"
    assert d.values == (
        ("frames_processed", "7"), ("frames_skipped", "2"), ("frames_throttled", "2"),
        ("skipped_bad_image", "1"), ("skipped_no_camera_info", "1"),
        ("fiducials_latency_mean_ms", "nan"), ("fiducials_latency_p95_ms", "nan"),
        ("gauges_latency_mean_ms", "nan"), ("gauges_latency_p95_ms", "nan"),
        ("frame_latency_mean_ms", "5.00"), ("frame_latency_p95_ms", "5.90"))
