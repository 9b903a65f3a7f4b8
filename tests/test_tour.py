"""The scripted tour core (sitebot.tour): stops from the registry, A* planning on occupancy
grids, and the pure-pursuit follower driving a simulated unicycle."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from sitebot.errors import SitebotError
from sitebot.tour import FollowerConfig, GridPlanner, PathFollower, tour_stops, wrap_angle
from sitebot.sim.world import OccupancyGrid, available_worlds, load_world

WORLDS = ("construction", "datacentre", "substation")
RES = 0.1


def test_the_three_worlds_ship() -> None:
    assert available_worlds() == WORLDS


# ---------------------------------------------------------------------------- stops
@pytest.mark.parametrize("name", WORLDS)
def test_tour_stops_longest_route_then_dock(name: str) -> None:
    world = load_world(name)
    reg = world.registry
    longest = max(reg.routes, key=lambda r: len(r.waypoints))
    assert sum(len(r.waypoints) == len(longest.waypoints) for r in reg.routes) == 1
    stops = tour_stops(world)
    assert [s.place_id for s in stops] == list(longest.waypoints) + [reg.docks[0].place]
    assert stops[-1].place_id == "dock_bay"
    for s in stops:
        pl = reg.place(s.place_id)
        assert s.pose == (pl.pose.x, pl.pose.y, pl.pose.yaw)
        assert s.name == pl.name
        assert s.assets == tuple(a.id for a in reg.assets if a.place == s.place_id)
    assert len(tour_stops(world, dock=False)) == len(stops) - 1


def test_tour_stops_named_route_and_unknown_route() -> None:
    world = load_world("substation")
    stops = tour_stops(world, "transformer_patrol", dock=False)
    assert [s.place_id for s in stops] == ["t1_bay", "t2_bay", "t3_bay"]
    assert len(tour_stops(world)) == 10        # yard_patrol (9 places) + dock
    with pytest.raises(SitebotError, match="no_such_route"):
        tour_stops(world, "no_such_route")


# ---------------------------------------------------------------------------- planner
def _wall_grid(gap: bool = True) -> OccupancyGrid:
    """10 m x 10 m; a wall x in [4.8, 5.2) across the whole height, with a gap y in [7, 8)."""
    occ = np.zeros((100, 100), dtype=bool)
    occ[:, 48:52] = True
    if gap:
        occ[70:80, 48:52] = False
    return OccupancyGrid(0.0, 0.0, RES, occ)


def _length(path) -> float:
    return sum(math.dist(a, b) for a, b in zip(path, path[1:]))


def _segment_free(grid: OccupancyGrid, a, b, step: float = 0.02) -> bool:
    """Independent check: dense samples of the segment (both ends included) on free cells."""
    n = max(1, int(math.ceil(math.dist(a, b) / step)))
    return not any(grid.is_occupied(a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n)
                   for i in range(n + 1))


def test_path_goes_through_the_gap() -> None:
    grid = _wall_grid()
    planner = GridPlanner(grid)
    start, goal = (2.0, 2.0), (8.0, 2.0)
    path = planner.plan(start, goal)
    assert path[0] == start and path[-1] == goal
    assert 3 <= len(path) <= 6
    for a, b in zip(path, path[1:]):
        assert planner.line_free(a, b)
        assert _segment_free(grid, a, b)
    crossings = []
    for a, b in zip(path, path[1:]):
        if (a[0] - 5.0) * (b[0] - 5.0) < 0:
            crossings.append(a[1] + (b[1] - a[1]) * (5.0 - a[0]) / (b[0] - a[0]))
    assert len(crossings) == 1 and 7.0 <= crossings[0] <= 8.0
    # the true shortest path hugs the gap's corners (4.8, 7) and (5.2, 7)
    shortest = 2 * math.dist(start, (4.8, 7.0)) + 0.4
    assert shortest == pytest.approx(11.862, abs=1e-3)
    assert shortest <= _length(path) <= 1.15 * shortest


def test_straight_line_when_nothing_is_in_the_way() -> None:
    planner = GridPlanner(_wall_grid())
    path = planner.plan((1.0, 1.0), (3.0, 9.0))
    assert path == [(1.0, 1.0), (3.0, 9.0)]


def test_line_free_sees_the_wall() -> None:
    planner = GridPlanner(_wall_grid())
    assert planner.line_free((2.0, 2.0), (8.0, 2.0)) is False
    assert planner.line_free((2.0, 7.5), (8.0, 7.5)) is True


def test_unreachable_goal_raises() -> None:
    planner = GridPlanner(_wall_grid(gap=False))
    with pytest.raises(SitebotError, match="no path"):
        planner.plan((2.0, 2.0), (8.0, 2.0))
    # a start deep inside an obstacle (more than 10 cells from free space)
    occ = np.zeros((100, 100), dtype=bool)
    occ[20:80, 20:80] = True
    with pytest.raises(SitebotError, match="not in free space"):
        GridPlanner(OccupancyGrid(0.0, 0.0, RES, occ)).plan((5.0, 5.0), (1.0, 1.0))


def test_start_just_inside_an_obstacle_snaps_to_free_space() -> None:
    grid = _wall_grid()
    planner = GridPlanner(grid)
    path = planner.plan((4.85, 7.5), (8.0, 7.5))     # start on a wall cell next to the gap
    assert path[0] == (4.85, 7.5) and path[-1] == (8.0, 7.5)
    assert _length(path) == pytest.approx(3.15, abs=0.2)


@pytest.mark.parametrize("name", WORLDS)
def test_plans_between_tour_stops_on_shipped_worlds(name: str) -> None:
    world = load_world(name)
    grid = world.occupancy_grid(RES, 0.42)          # the tour node's defaults
    planner = GridPlanner(grid)
    spawn = world.spawn_poses["robot1"]
    points = [(spawn.x, spawn.y)] + [s.pose[:2] for s in tour_stops(world)]
    assert len(points) >= 8
    for a, b in zip(points, points[1:]):
        assert not grid.is_occupied(*a) and not grid.is_occupied(*b)
        t0 = time.perf_counter()
        path = planner.plan(a, b)
        elapsed = time.perf_counter() - t0
        assert elapsed < 0.5, f"{a}->{b} took {elapsed:.3f} s"
        assert path[0] == tuple(a) and path[-1] == tuple(b)
        for p, q in zip(path, path[1:]):
            assert planner.line_free(p, q)
            assert _segment_free(grid, p, q), f"{name}: segment {p}->{q} hits the inflated map"
        assert _length(path) >= math.dist(a, b) - 1e-9
        assert _length(path) <= 2.5 * math.dist(a, b) + 2.0


# ---------------------------------------------------------------------------- follower
def _drive(follower: PathFollower, pose, dt: float = 0.05, max_steps: int = 2000):
    x, y, th = pose
    log = []
    for k in range(max_steps):
        v, w, done = follower.update((x, y, th), dt)
        log.append((x, y, th, v, w))
        if done:
            return (x, y, th), log, k
        x += v * math.cos(th) * dt
        y += v * math.sin(th) * dt
        th = wrap_angle(th + w * dt)
    raise AssertionError(f"not done after {max_steps} steps at {(x, y, th)}")


def _dist_to_polyline(p, path) -> float:
    best = math.inf
    for a, b in zip(path, path[1:]):
        a, b, q = np.array(a), np.array(b), np.array(p)
        t = np.clip(np.dot(q - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(q - (a + t * (b - a)))))
    return best


@pytest.mark.parametrize("start", [(0.0, 0.0, 0.0), (0.0, 0.0, math.pi), (-0.3, 0.2, -1.0)])
def test_follower_drives_an_l_shaped_path(start) -> None:
    cfg = FollowerConfig()
    dt = 0.05
    path = [(0.0, 0.0), (3.0, 0.0), (3.0, 3.0)]
    end, log, steps = _drive(PathFollower(path, math.pi / 2, cfg), start, dt)
    assert math.dist(end[:2], (3.0, 3.0)) <= cfg.goal_tolerance_m
    assert abs(wrap_angle(end[2] - math.pi / 2)) <= cfg.yaw_tolerance_rad
    assert steps < 600                                   # < 30 s for ~6 m at 0.6 m/s
    vs = np.array([e[3] for e in log])
    ws = np.array([e[4] for e in log])
    assert np.max(np.abs(vs)) <= cfg.max_speed_mps + 1e-12
    assert np.max(vs) >= 0.9 * cfg.max_speed_mps          # it does reach cruise speed
    assert np.min(vs) >= 0.0                              # never backs up
    assert np.max(np.abs(ws)) <= cfg.max_turn_rate_radps + 1e-12
    dv = np.diff(np.concatenate([[0.0], vs]))
    assert np.max(np.abs(dv)) <= cfg.max_accel_mps2 * dt + 1e-12
    # stays near the path: it cuts the corner by ~0.2 m and never strays further from the
    # path than where it started
    off = max(_dist_to_polyline(e[:2], path) for e in log)
    assert off < max(0.25, _dist_to_polyline(start[:2], path) + 0.01)


def test_follower_respects_a_lower_speed_limit() -> None:
    cfg = FollowerConfig(max_speed_mps=0.3, max_accel_mps2=0.2)
    dt = 0.1
    end, log, steps = _drive(PathFollower([(0.0, 0.0), (4.0, 0.0)], 0.0, cfg), (0.0, 0.0, 0.0), dt)
    vs = np.array([e[3] for e in log])
    assert np.max(vs) <= 0.3 + 1e-12
    assert np.max(np.abs(np.diff(np.concatenate([[0.0], vs])))) <= 0.2 * dt + 1e-12
    assert math.dist(end[:2], (4.0, 0.0)) <= cfg.goal_tolerance_m
    assert steps * dt >= 4.0 / 0.3                        # could not have been faster


def test_follower_turns_on_the_spot_for_a_goal_behind() -> None:
    cfg = FollowerConfig()
    f = PathFollower([(0.0, 0.0), (-2.0, 0.0)], math.pi, cfg)
    v, w, done = f.update((0.0, 0.0, 0.0), 0.05)
    assert v == 0.0 and w == pytest.approx(cfg.max_turn_rate_radps) and done is False


def test_follower_stops_for_an_obstacle_ahead() -> None:
    cfg = FollowerConfig()
    f = PathFollower([(0.0, 0.0), (5.0, 0.0)], 0.0, cfg)
    for _ in range(20):                                   # get up to speed
        v, _, _ = f.update((0.0, 0.0, 0.0), 0.05)
    assert v == pytest.approx(0.5)
    assert f.blocked is False
    v, w, done = f.update((0.0, 0.0, 0.0), 0.05, min_range_ahead_m=0.3)
    assert v == 0.0 and f.blocked is True and done is False
    v, _, _ = f.update((0.0, 0.0, 0.0), 0.05, min_range_ahead_m=0.3)
    assert v == 0.0 and f.blocked is True
    # clear again: it ramps up from standstill
    v, _, _ = f.update((0.0, 0.0, 0.0), 0.05, min_range_ahead_m=5.0)
    assert f.blocked is False and v == pytest.approx(0.025)


def test_wrap_angle() -> None:
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert wrap_angle(-3 * math.pi / 2) == pytest.approx(math.pi / 2)
    assert wrap_angle(0.25) == 0.25


def test_final_turn_does_not_flip_back_to_driving():
    """Regression: within tolerance, a few cm of scrub during the final turn must not send
    the follower back to driving (it used to oscillate between the two and time out)."""
    f = PathFollower([(0.0, 0.0), (1.0, 0.0)], goal_yaw=math.pi / 2)
    v, w, done = f.update((0.95, 0.0, 0.0), 0.02)          # 5 cm short: at goal, turn
    assert v == 0.0 and w > 0.0 and not done
    v, w, done = f.update((0.85, 0.05, 0.8), 0.02)          # scrubbed 16 cm away while turning
    assert v == 0.0 and w > 0.0, "still turning on the spot, not driving"
    v, w, done = f.update((0.86, 0.05, math.pi / 2), 0.02)
    assert done and v == 0.0
