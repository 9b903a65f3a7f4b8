"""Point cloud pipeline on synthetic depth images of known geometry (no simulator, no ROS)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.description.urdf import load_robot_description
from sitebot.perception.cloud import (CloudConfig, CloudPipeline, DepthError, check_depth_info,
                                      cluster_points, decode_depth, depth_to_points, fit_ground)
from sitebot.perception.spatial_setup import robot_mounts
from sitebot.tools.spatial_synth import default_camera, render_depth

W, H = 320, 240
K = default_camera(W, H)


@pytest.fixture(scope="module")
def T_cam():
    return robot_mounts(load_robot_description())[0]


def test_camera_mount_from_urdf_is_on_the_mast_pitched_15_deg_down(T_cam):
    assert T_cam[2, 3] == pytest.approx(1.33, abs=0.01)
    optical_z = T_cam[:3, 2]                       # viewing direction in the base frame
    assert math.degrees(math.asin(-optical_z[2])) == pytest.approx(15.0, abs=0.1)


def test_floor_only_gives_a_horizontal_plane_and_no_clusters(T_cam):
    depth = render_depth(T_cam, K, W, H)
    res = CloudPipeline(CloudConfig(), T_cam).process(depth, K)
    assert res.plane_found
    assert res.plane[2] > math.cos(math.radians(1.0))
    assert abs(res.plane[3]) < 0.01
    assert len(res.clusters) == 0
    assert res.ground.mean() > 0.95


@pytest.mark.parametrize("method", ["grid", "dbscan"])
def test_box_on_the_floor_is_one_cluster_with_its_extent(T_cam, method):
    box = (3.0, 0.4, 0.5, 0.4, 0.6, 0.0)             # cx, cy, sx, sy, sz, yaw
    depth = render_depth(T_cam, K, W, H, boxes=[box])
    res = CloudPipeline(CloudConfig(cluster_method=method), T_cam).process(depth, K)
    assert len(res.clusters) == 1
    lo, hi = res.clusters.mins[0], res.clusters.maxs[0]
    # the camera sees the front face and the top: x from the front face, y and z extents
    assert lo[0] == pytest.approx(2.75, abs=0.06)
    assert lo[1] == pytest.approx(0.2, abs=0.06) and hi[1] == pytest.approx(0.6, abs=0.06)
    assert hi[2] == pytest.approx(0.6, abs=0.06) and lo[2] < 0.12


def test_small_obstacle_of_10cm_is_found_and_separate_boxes_stay_separate(T_cam):
    boxes = [(2.0, -0.5, 0.12, 0.12, 0.12, 0.3), (2.5, 0.5, 0.6, 0.6, 0.6, 0.0),
             (2.5, 1.3, 0.6, 0.6, 0.6, 0.0)]            # 20 cm gap between the crates
    depth = render_depth(T_cam, K, W, H, boxes=boxes)
    res = CloudPipeline(CloudConfig(), T_cam).process(depth, K)
    c = res.clusters.centers
    assert len(res.clusters) == 3
    assert np.min(np.hypot(c[:, 0] - 2.0, c[:, 1] + 0.5)) < 0.1


def test_a_wall_is_never_removed_as_ground(T_cam):
    wall = (2.2, 0.0, 0.2, 8.0, 2.5, 0.0)             # a wall filling most of the view
    depth = render_depth(T_cam, K, W, H, boxes=[wall])
    res = CloudPipeline(CloudConfig(), T_cam).process(depth, K)
    assert res.plane[2] > 0.99                         # a floor plane, never the wall's
    assert len(res.clusters) == 1
    assert res.clusters.maxs[0, 2] > 1.75             # the wall is an obstacle up to the view's top
    # no floor in view at all: the prior (z = 0) is used, the wall is still kept
    depth2 = render_depth(T_cam, K, W, H, boxes=[(1.0, 0.0, 0.2, 8.0, 3.0, 0.0)], floor=False)
    res2 = CloudPipeline(CloudConfig(), T_cam).process(depth2, K)
    assert not res2.plane_found and len(res2.clusters) == 1


def test_tilted_plane_is_not_taken_for_ground():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 3, (2000, 2))
    ramp = np.column_stack([xy, 0.3 * xy[:, 0] - 0.1])       # 17 deg slope through z = 0
    plane, found = fit_ground(ramp.astype(np.float32), CloudConfig())
    assert not found and tuple(plane) == (0, 0, 1, 0)


def test_person_cylinder_cluster_height(T_cam):
    depth = render_depth(T_cam, K, W, H, cylinders=[(3.0, 0.0, 0.225, 1.75)])
    res = CloudPipeline(CloudConfig(), T_cam).process(depth, K)
    assert len(res.clusters) == 1
    assert res.clusters.maxs[0, 2] == pytest.approx(1.75, abs=0.06)
    assert res.clusters.sizes[0, 1] == pytest.approx(0.45, abs=0.08)


def test_pipeline_on_320x240_is_fast_enough_to_run_per_frame(T_cam):
    # not a benchmark (see spatial_bench): a gross regression guard only
    depth = render_depth(T_cam, K, W, H, boxes=[(3.0, 0.4, 0.5, 0.4, 0.6, 0.0)])
    p = CloudPipeline(CloudConfig(), T_cam)
    p.process(depth, K)
    assert p.process(depth, K).timings_ms["total_ms"] < 500


# ------------------------------------------------------------------ decoding and bad input
def test_16uc1_millimetres_and_32fc1_metres_decode_alike():
    d = np.array([[1.0, 2.5], [0.0, 4.0]], np.float32)
    mm = (d * 1000).astype("<u2")
    a = decode_depth(mm.tobytes(), 2, 2, 4, "16UC1")
    b = decode_depth(d.astype("<f4").tobytes(), 2, 2, 8, "32FC1")
    big = decode_depth(mm.astype(">u2").tobytes(), 2, 2, 4, "16UC1", is_bigendian=True)
    for x in (a, b, big):
        assert np.isnan(x[1, 0])                          # 0 = no return
        np.testing.assert_allclose(x[[0, 0, 1], [0, 1, 1]], [1.0, 2.5, 4.0], atol=1e-3)


def test_row_padding_is_honoured():
    d = np.arange(6, dtype="<f4").reshape(2, 3) + 1
    padded = np.zeros((2, 4), "<f4")
    padded[:, :3] = d
    out = decode_depth(padded.tobytes(), 3, 2, 16, "32FC1")
    np.testing.assert_array_equal(out, d)


@pytest.mark.parametrize("args,words", [
    ((b"\0" * 10, 4, 4, 16, "32FC1"), "truncated"),
    ((b"\0" * 64, 4, 4, 16, "rgb8"), "encoding 'rgb8'"),
    ((b"", 0, 0, 0, "32FC1"), "empty"),
    ((b"\0" * 64, 4, 4, 8, "32FC1"), "step"),
])
def test_bad_depth_buffers_are_refused_with_the_reason(args, words):
    with pytest.raises(DepthError, match=words):
        decode_depth(*args)


def test_depth_info_must_exist_and_match_the_image():
    check_depth_info((160, 120), (160, 120))
    with pytest.raises(DepthError, match="no camera/depth/camera_info received yet"):
        check_depth_info(None, (160, 120))
    with pytest.raises(DepthError, match="camera_info is for 640x480, the image is 160x120"):
        check_depth_info((640, 480), (160, 120))


def test_nan_inf_and_zero_are_no_return_and_bad_K_is_refused():
    d = np.full((4, 4), 2.0, np.float32)
    d[0, 0], d[1, 1], d[2, 2] = np.nan, np.inf, 0.0
    K4 = default_camera(4, 4)
    assert len(depth_to_points(d, K4)) == 13
    with pytest.raises(DepthError, match="outside"):
        depth_to_points(d, default_camera(320, 240))     # camera_info of another image size
    with pytest.raises(DepthError, match="focal"):
        depth_to_points(d, np.zeros((3, 3)))
    with pytest.raises(DepthError, match="non-empty"):
        depth_to_points(np.zeros((0, 0), np.float32), K4)


def test_cluster_points_empty_and_noise():
    assert len(cluster_points(np.zeros((0, 3), np.float32))) == 0
    lone = np.array([[1, 1, 0.5], [5, 5, 0.5]], np.float32)
    assert len(cluster_points(lone, min_points=2)) == 0
