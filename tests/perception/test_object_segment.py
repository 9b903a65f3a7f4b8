"""Object segmentation from a depth image rendered by PyBullet (tests/grasp_scene.py): a
tool-sized box on a bench, seen from the mast camera's position at 640x480.

Measured (this scene, noise-free depth): centroid within 2 mm of the truth, yaw within
0.1 deg, width within 1 mm, support height within 1 mm (see /work/notes/grasp_doc.md)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from grasp_scene import WRENCH, pixel_ray_on_plane, render
from sitebot.perception.object_segment import SegmentConfig, segment_object

NOMINAL = (0.55, 0.0)


def _yaw_error_deg(a: float, b: float) -> float:
    return abs(math.degrees(math.remainder(a - b, math.pi)))


CASES = [(0.5, d, yaw) for d in ((0.0, 0.0), (0.05, 0.0), (0.0, -0.05), (-0.035, 0.035))
         for yaw in (0.0, 30.0, -30.0)] + \
        [(0.85, d, yaw) for d in ((0.0, 0.0), (0.03, -0.04)) for yaw in (0.0, 30.0, -30.0)]


@pytest.mark.parametrize("bench,offset,yaw_deg", CASES)
def test_segments_a_tool_on_a_bench(bench, offset, yaw_deg) -> None:
    x, y = NOMINAL[0] + offset[0], NOMINAL[1] + offset[1]
    yaw = math.radians(yaw_deg)
    shot = render(bench, (x, y), WRENCH, yaw)
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical,
                         (NOMINAL[0], NOMINAL[1], bench + 0.015), 0.15)
    assert seg.found, seg.reason
    truth = np.array([x, y, bench + WRENCH[2] / 2])
    assert np.linalg.norm(seg.centroid - truth) < 0.01, (seg.centroid, truth)
    assert _yaw_error_deg(seg.yaw, yaw) < 5.0
    assert -math.pi / 2 < seg.yaw <= math.pi / 2
    assert abs(seg.width_m - WRENCH[1]) < 0.01
    assert abs(seg.length_m - WRENCH[0]) < 0.01
    assert abs(seg.support_z - bench) < 0.01
    assert abs(seg.top_z - (bench + WRENCH[2])) < 0.01
    assert seg.n_points > 500 and seg.points.shape == (seg.n_points, 3)
    assert seg.support_normal[2] > 0.999
    c, s, _ = seg.support_box                   # a slab from the bench top to the floor
    assert abs(c[2] + s[2] / 2 - bench) < 0.01 and abs(c[2] - s[2] / 2) < 0.01


def test_empty_bench_is_not_found_with_a_reason() -> None:
    shot = render(0.5, None)
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical, (0.55, 0.0, 0.515))
    assert not seg.found
    assert "nothing above the support" in seg.reason
    assert abs(seg.support_z - 0.5) < 0.01          # the support was found
    assert math.isnan(seg.yaw) and np.isnan(seg.centroid).all()


def test_object_outside_the_search_radius_is_not_taken() -> None:
    shot = render(0.5, (0.55, 0.25))
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical, (0.55, 0.0, 0.515), 0.1)
    assert not seg.found and "no object within 0.10 m" in seg.reason


def test_object_cut_by_the_image_border_is_refused() -> None:
    probe = render(0.5, None)
    # the object centre 3 px from the right edge of the image
    xy = pixel_ray_on_plane(probe, probe.width - 4, probe.height / 2, 0.515)[:2]
    shot = render(0.5, xy, WRENCH, math.radians(90))
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical, (*xy, 0.515), 0.15)
    assert not seg.found and "out of view" in seg.reason


def test_region_out_of_view_and_no_support() -> None:
    shot = render(0.5)
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical, (0.55, 3.0, 0.515))
    assert not seg.found and "not in the camera's view" in seg.reason
    # a region in view but in mid-air: no support surface below it
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical, (0.55, 0.0, 0.95), 0.15,
                         SegmentConfig(below_m=0.2))
    assert not seg.found and "no support surface" in seg.reason


def test_too_small_a_cluster_is_refused() -> None:
    shot = render(0.5, NOMINAL, (0.02, 0.02, 0.01))
    seg = segment_object(shot.depth_m, shot.K, shot.T_base_optical, (0.55, 0.0, 0.505),
                         config=SegmentConfig(min_points=200))
    assert not seg.found and "too small" in seg.reason and 0 < seg.n_points < 200


def test_bad_input_raises_value_error() -> None:
    shot = render(0.5)
    d, K, T = shot.depth_m, shot.K, shot.T_base_optical
    bad = d.copy()
    bad[100, 200] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        segment_object(bad, K, T, (0.55, 0.0, 0.515))
    with pytest.raises(ValueError, match="2-D"):
        segment_object(d.reshape(-1), K, T, (0.55, 0.0, 0.515))
    with pytest.raises(ValueError, match="K must have shape"):
        segment_object(d, K[:2], T, (0.55, 0.0, 0.515))
    with pytest.raises(ValueError, match="principal point"):
        segment_object(d[:200, :300], K, T, (0.55, 0.0, 0.515))     # K of another size
    with pytest.raises(ValueError, match="camera pose"):
        segment_object(d, K, T[:3], (0.55, 0.0, 0.515))
    with pytest.raises(ValueError, match="not a rigid transform"):
        segment_object(d, K, T * 2.0, (0.55, 0.0, 0.515))
    with pytest.raises(ValueError, match="expected centre"):
        segment_object(d, K, T, (0.55, np.inf, 0.515))
    with pytest.raises(ValueError, match="radius"):
        segment_object(d, K, T, (0.55, 0.0, 0.515), radius_m=-1.0)
