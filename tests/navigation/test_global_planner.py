"""The global planner: never through keep-out or inscribed cells (property test over random
maps), bounded curvature, clear rejections of bad goals, plans in every world."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitebot.navigation.costmap import INSCRIBED, Costmap, CostmapConfig
from sitebot.navigation.planner import GlobalPlanner, PlanError, PlannerConfig
from sitebot.sim.world_loader import available_worlds
from sitebot.site.bundle import load_bundle
from sitebot.site.registry import Zone, ZoneKind

RES = 0.05
N = 120                                  # 6 m x 6 m maps


def dense(xy: np.ndarray, step: float = 0.01) -> np.ndarray:
    """Points every ``step`` metres along the polyline (the path between its samples too)."""
    out = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:]):
        n = max(1, int(math.ceil(math.hypot(*(b - a)) / step)))
        t = np.linspace(0, 1, n + 1)[1:, None]
        out.append(a + (b - a) * t)
    return np.vstack(out)


rect = st.tuples(st.floats(0.3, 5.2), st.floats(0.3, 5.2), st.floats(0.1, 1.5), st.floats(0.1, 1.5))


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(obstacles=st.lists(rect, min_size=0, max_size=6), keep_out=rect,
       start=st.tuples(st.floats(0.5, 5.5), st.floats(0.5, 5.5)),
       goal=st.tuples(st.floats(0.5, 5.5), st.floats(0.5, 5.5), st.floats(-3.1, 3.1)),
       coarse=st.sampled_from([0, 4]))
def test_paths_never_enter_keep_out_or_inscribed_cells(obstacles, keep_out, start, goal, coarse):
    occ = np.zeros((N, N), bool)
    for x, y, w, h in obstacles:
        occ[int(y / RES):int((y + h) / RES), int(x / RES):int((x + w) / RES)] = True
    kx, ky, kw, kh = keep_out
    zone = Zone("ko", "keep out", ZoneKind.KEEP_OUT,
                ((kx, ky), (kx + kw, ky), (kx + kw, ky + kh), (kx, ky + kh)))
    cm = Costmap(occ, 0.0, 0.0, CostmapConfig(), (zone,))
    planner = GlobalPlanner(PlannerConfig(coarse_factor=coarse))
    try:
        plan = planner.plan(cm, (start[0], start[1], 0.0), goal)
    except PlanError as e:
        assert e.code in ("goal_forbidden", "start_occupied", "unreachable"), e
        if e.code == "goal_forbidden":
            assert cm.cost_at(goal[0], goal[1])[0] >= INSCRIBED
        return
    pts = dense(plan.xy)
    r, c = cm.cells(pts[:, 0], pts[:, 1])
    assert cm.in_bounds(r, c).all()
    assert not cm.zone_core[r, c].any(), "path enters the keep-out zone"
    assert not any(zone.contains(x, y) for x, y in pts[::5])
    assert not cm.static_lethal[r, c].any(), "path crosses an obstacle"
    # beyond the escape radius of the start (+ a cell), the footprint never touches anything
    far = np.hypot(pts[:, 0] - start[0], pts[:, 1] - start[1]) > planner.config.escape_radius_m \
        + 2 * RES
    assert (cm.cost[r[far], c[far]] < INSCRIBED).all(), "path through inscribed cells"
    assert np.allclose(plan.xy[0], start) and np.allclose(plan.xy[-1], goal[:2])
    assert plan.yaw[-1] == pytest.approx(goal[2])


def curvature(xy: np.ndarray) -> np.ndarray:
    """Heading change per metre at each interior sample."""
    d = np.diff(xy, axis=0)
    h = np.arctan2(d[:, 1], d[:, 0])
    dh = np.abs(np.angle(np.exp(1j * np.diff(h))))
    seg = np.hypot(d[:, 0], d[:, 1])
    return dh / (0.5 * (seg[:-1] + seg[1:]))


def test_the_three_worlds_ship() -> None:
    assert available_worlds() == ("construction", "datacentre", "substation")


@pytest.mark.parametrize("world", ["substation", "construction", "datacentre"])
def test_world_plans_are_drivable(world):
    w = load_bundle(world)
    cm = Costmap.from_site(w)
    cfg = PlannerConfig()
    planner = GlobalPlanner(cfg)
    s = w.starts["robot1"]
    n_ok, smooth_corners = 0, 0
    for p in w.registry.places:
        if cm.forbidden_reason(p.x, p.y) is not None:
            continue
        plan = planner.plan(cm, (s.x, s.y, s.yaw), (p.x, p.y, p.yaw))
        n_ok += 1
        assert plan.smoothed
        assert (cm.cost_at(plan.xy[:, 0], plan.xy[:, 1]) < INSCRIBED).all()
        k = curvature(plan.xy)
        corner = plan.turn_in_place[1:-1]
        # arcs of at least min_turn_radius_m; only flagged corners turn sharper
        assert (k[~corner] <= 1.0 / cfg.min_turn_radius_m + 1.0).all(), \
            f"{p.id}: curvature {k[~corner].max():.2f} 1/m"
        smooth_corners += int((k[~corner] > 0.2).sum() > 0)
        # not much longer than the grid path it smooths
        grid_len = np.hypot(*np.diff(cm.center(plan.grid_cells[:, 0], plan.grid_cells[:, 1]),
                                     axis=1)).sum()
        assert plan.length_m <= grid_len + 0.2
    assert n_ok >= 10
    assert smooth_corners >= 1, "no corner was rounded"


def test_corridor_search_matches_the_full_search():
    w = load_bundle("substation")
    cm = Costmap.from_site(w)
    fine = GlobalPlanner(PlannerConfig(coarse_factor=0))
    multi = GlobalPlanner(PlannerConfig(coarse_factor=4))
    rng = np.random.default_rng(3)
    for _ in range(8):
        while True:
            a = rng.uniform(-14, 14, 2)
            b = rng.uniform(-14, 14, 2)
            if cm.forbidden_reason(*a) is None and cm.forbidden_reason(*b) is None:
                break
        try:
            pf = fine.plan(cm, (*a, 0.0), (*b, 0.0))
        except PlanError:
            with pytest.raises(PlanError):
                multi.plan(cm, (*a, 0.0), (*b, 0.0))
            continue
        pm = multi.plan(cm, (*a, 0.0), (*b, 0.0))
        assert pf.method == "full" and pm.method in ("corridor", "full")
        assert pm.length_m <= 1.1 * pf.length_m + 0.3


def box_world():
    """6 m x 6 m; a walled 1.6 m box at (4.2..5.8, 0.2..1.8); a keep-out and a restricted zone."""
    occ = np.zeros((N, N), bool)
    occ[4:36, 84:116] = True
    occ[8:32, 88:112] = False                         # inside the box: free but enclosed
    ko = Zone("pit", "pit", ZoneKind.KEEP_OUT, ((1, 4), (2.5, 4), (2.5, 5.5), (1, 5.5)))
    rs = Zone("hv", "hv room", ZoneKind.RESTRICTED, ((3.5, 4), (5, 4), (5, 5.5), (3.5, 5.5)),
              roles=("supervisor",))
    return Costmap(occ, 0.0, 0.0, CostmapConfig(), (ko, rs))


@pytest.mark.parametrize("goal,code,words", [
    ((math.nan, 2.0, 0.0), "invalid_pose", "not finite"),
    ((2.0, 2.0, math.inf), "invalid_pose", "not finite"),
    ((1.7, 4.7, 0.0), "goal_forbidden", "keep-out zone 'pit'"),
    ((4.2, 4.7, 0.0), "goal_forbidden", "restricted zone 'hv'"),
    ((2.7, 4.7, 0.0), "goal_forbidden", "zone margin"),
    ((4.25, 1.0, 0.0), "goal_forbidden", "inside an obstacle"),
    ((9.0, 1.0, 0.0), "goal_forbidden", "outside the map"),
    ((5.0, 1.0, 0.0), "unreachable", "no collision-free path"),
])
def test_bad_goals_are_rejected_with_a_reason(goal, code, words):
    cm = box_world()
    with pytest.raises(PlanError) as e:
        GlobalPlanner().plan(cm, (1.0, 1.0, 0.0), goal)
    assert e.value.code == code
    assert words in str(e.value)


def test_start_in_inflated_space_escapes_but_not_through_walls():
    cm = box_world()
    # 0.3 m from the box's west wall (inscribed): the plan leaves
    plan = GlobalPlanner().plan(cm, (3.9, 1.0, 0.0), (1.0, 1.0, 0.0))
    assert plan.length_m < 3.5
    with pytest.raises(PlanError) as e:
        GlobalPlanner().plan(cm, (4.25, 1.0, 0.0), (1.0, 1.0, 0.0))    # inside the wall
    assert e.value.code == "start_occupied"
