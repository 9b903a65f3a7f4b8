"""Rolling local occupancy grid: ray casting, depth obstacles, rolling window, decay."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.perception.localmap import LocalMap, LocalMapConfig
from sitebot.tools.spatial_synth import render_scan


def wall_scan(x_wall=3.0):
    r, amin, inc = render_scan((0.0, 0.0, 0.0), boxes=[(x_wall + 0.1, 0.0, 0.2, 20.0, 0.0)])
    return r, amin + inc * np.arange(len(r))


def test_free_before_a_wall_occupied_at_it_unknown_behind():
    lm = LocalMap(LocalMapConfig(size_m=10.0, resolution_m=0.05, max_free_range_m=6.0))
    r, a = wall_scan(3.0)
    for k in range(3):
        lm.update_scan((0.0, 0.0, 0.0), r, a, 0.1, 20.0, 0.1 * k)
    assert lm.value_at(1.0, 0.0) == 0
    assert lm.value_at(2.8, 0.5) == 0
    assert lm.value_at(3.02, 0.0) == 100
    assert lm.value_at(3.02, -1.5) == 100
    assert lm.value_at(3.6, 0.0) == -1                   # behind the wall: never seen
    assert lm.value_at(-2.0, 0.0) == 0                   # no return: free up to 6 m
    g = lm.grid()
    assert g.dtype == np.int8 and set(np.unique(g)) <= {-1, 0, 100}


def test_a_person_walking_away_is_cleared_by_later_scans():
    lm = LocalMap()
    r1 = render_scan((0.0, 0.0, 0.0), circles=[(2.0, 0.0, 0.225)])[0]
    a = -math.pi + 2 * math.pi / 720 * np.arange(720)
    for k in range(3):
        lm.update_scan((0.0, 0.0, 0.0), r1, a, 0.1, 20.0, 0.1 * k)
    assert lm.value_at(1.776, 0.0) == 100                # the body's surface
    r2 = render_scan((0.0, 0.0, 0.0), circles=[(2.0, 2.0, 0.225)])[0]
    for k in range(4):
        lm.update_scan((0.0, 0.0, 0.0), r2, a, 0.1, 20.0, 0.5 + 0.1 * k)
    assert lm.value_at(1.776, 0.0) != 100                # no longer an obstacle after 0.4 s
    for k in range(6):
        lm.update_scan((0.0, 0.0, 0.0), r2, a, 0.1, 20.0, 1.0 + 0.1 * k)
    assert lm.value_at(1.776, 0.0) == 0


def test_depth_points_in_the_height_band_are_obstacles():
    lm = LocalMap(LocalMapConfig(max_obstacle_height_m=1.9))
    pts = np.array([[1.0, 1.0, 0.10],      # a low pallet the lidar misses
                    [1.5, -1.0, 0.02],     # floor noise
                    [2.0, 0.0, 2.5]])      # above the robot
    lm.update_points(pts, 1.0)
    assert lm.value_at(1.0, 1.0) == 100
    assert lm.value_at(1.5, -1.0) == -1
    assert lm.value_at(2.0, 0.0) == -1


def test_window_follows_the_robot_and_keeps_world_coordinates():
    lm = LocalMap(LocalMapConfig(size_m=10.0, resolution_m=0.05, recentre_m=1.0))
    lm.update_points(np.array([[2.0, 0.0, 0.5]]), 0.0)
    lm.follow(0.5, 0.0)                                  # within recentre_m: no shift
    assert lm.origin == pytest.approx((-5.0, -5.0))
    lm.follow(3.0, 1.0)
    assert lm.center == pytest.approx((3.0, 1.0), abs=0.05)
    assert lm.value_at(2.0, 0.0, 0.0) == 100             # the same world cell
    lm.follow(20.0, 0.0)                                 # far away: everything forgotten
    assert (lm.grid(0.0) == -1).all()


def test_cells_not_seen_for_decay_s_become_unknown():
    lm = LocalMap(LocalMapConfig(decay_s=2.0))
    lm.update_points(np.array([[1.0, 1.0, 0.5]]), 0.0)
    assert lm.value_at(1.0, 1.0, 1.9) == 100
    assert lm.value_at(1.0, 1.0, 2.1) == -1


def test_rotated_laser_pose_puts_the_wall_where_it_is():
    lm = LocalMap()
    r, a = wall_scan(3.0)
    # the laser at (1, 1) facing +y: the wall at 3 m ahead is at y = 4
    lm.update_scan((1.0, 1.0, math.pi / 2), r, a, 0.1, 20.0, 0.0)
    lm.update_scan((1.0, 1.0, math.pi / 2), r, a, 0.1, 20.0, 0.1)
    assert lm.value_at(1.0, 4.02) == 100
    assert lm.value_at(1.0, 3.0) == 0


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="resolution_m"):
        LocalMapConfig(resolution_m=0.0)


def test_config_ranges_are_checked_with_the_field_named():
    from sitebot.config.checks import check_ranges
    from sitebot.perception.cloud import CloudConfig
    with pytest.raises(ValueError, match=r"LocalMapConfig.resolution_m=0.001: accepted range \[0.01, 1.0\]"):
        LocalMapConfig(resolution_m=0.001)
    with pytest.raises(ValueError, match=r"LocalMapConfig.decay_s=nan"):
        LocalMapConfig(decay_s=float("nan"))
    with pytest.raises(ValueError, match=r"CloudConfig.stride=0: accepted range \[1, 16\]"):
        CloudConfig(stride=0)
    with pytest.raises(ValueError, match=r"CloudConfig.voxel_m='a'"):
        CloudConfig(voxel_m="a")

    class C:
        a, b = 0.5, np.float32(2.0)
    check_ranges(C(), (("a", 0.0, 1.0), ("b", 2.0, 2.0)))
    with pytest.raises(ValueError, match=r"C.a=0.5: accepted range \[0.6, 1.0\]"):
        check_ranges(C(), (("a", 0.6, 1.0),))
