"""The navigation costmap: inflation gradient, zones, perceived obstacles (mark, clear, decay)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.errors import SitebotError
from sitebot.navigation.costmap import INSCRIBED, LETHAL, Costmap, CostmapConfig
from sitebot.site.bundle import load_bundle
from sitebot.site.registry import Zone, ZoneKind

RES = 0.05


def empty(size_m: float = 6.0, cfg: CostmapConfig = CostmapConfig(), zones=()) -> Costmap:
    n = int(round(size_m / RES))
    return Costmap(np.zeros((n, n), bool), 0.0, 0.0, cfg, zones)


def test_inflation_gradient_follows_nav2_decay():
    cfg = CostmapConfig()
    occ = np.zeros((120, 120), bool)
    occ[60, 60] = True                               # one obstacle cell, centre (3.025, 3.025)
    cm = Costmap(occ, 0.0, 0.0, cfg)
    y = 60
    xs = np.arange(60, 90)
    d = (xs - 60) * RES
    cost = cm.cost[y, xs].astype(int)
    assert cost[0] == LETHAL
    ins = cfg.footprint_radius_m + 0.5 * RES
    assert (cost[(d > 0) & (d <= ins)] == INSCRIBED).all()
    grad = (d > ins) & (d < cfg.inflation_radius_m)
    expect = np.ceil(252 * np.exp(-cfg.cost_scaling_factor * (d[grad] - ins)))
    assert np.abs(cost[grad] - expect).max() <= 1
    assert (np.diff(cost[d > 0]) <= 0).all(), "cost must fall with distance"
    assert (cost[d >= cfg.inflation_radius_m] == 0).all()
    # the map's edge is lethal
    assert cm.cost[0, 5] == LETHAL and cm.cost[5, -1] == LETHAL


def test_zones_keep_out_restricted_slow():
    ko = Zone("ko", "keep out", ZoneKind.KEEP_OUT, ((1, 1), (2, 1), (2, 2), (1, 2)))
    rs = Zone("rs", "restricted", ZoneKind.RESTRICTED, ((4, 1), (5, 1), (5, 2), (4, 2)),
              roles=("supervisor",))
    sl = Zone("sl", "slow", ZoneKind.SLOW, ((1, 4), (3, 4), (3, 5), (1, 5)), max_speed_mps=0.3)
    cm = empty(zones=(ko, rs, sl))
    assert cm.cost_at(1.5, 1.5)[0] == LETHAL
    # grown by the zone margin (0.1 m), then inscribed by the footprint (0.4 m)
    assert cm.cost_at(2.07, 1.5)[0] == LETHAL
    assert cm.cost_at(2.4, 1.5)[0] == INSCRIBED
    assert cm.cost_at(2.6, 1.5)[0] < INSCRIBED
    assert cm.cost_at(4.5, 1.5)[0] == LETHAL
    assert cm.forbidden_reason(1.5, 1.5).code == "keep_out"
    why = cm.forbidden_reason(4.5, 1.5)
    assert why.code == "restricted" and "'rs'" in why.message
    assert cm.forbidden_reason(2.3, 1.5).code == "zone_margin"
    # the supervisor's role may enter
    cm2 = empty(cfg=CostmapConfig(role="supervisor"), zones=(ko, rs, sl))
    assert cm2.cost_at(4.5, 1.5)[0] < INSCRIBED and cm2.forbidden_reason(4.5, 1.5) is None
    # slow zone: a speed limit and a floor cost, not an obstacle
    assert cm.speed_limit_at(2.0, 4.5)[0] == pytest.approx(0.3)
    assert math.isinf(cm.speed_limit_at(2.0, 3.0)[0])
    assert cm.cost_at(2.0, 4.5)[0] == CostmapConfig().slow_zone_cost
    assert cm.forbidden_reason(2.0, 4.5) is None


def test_scan_marks_clears_and_decays():
    cm = empty()
    n = 360
    ranges = np.full(n, np.inf)
    ranges[0] = 2.0                                   # a hit 2 m ahead along +x
    cm.integrate_scan((1.0, 3.0, 0.0), ranges, 0.0, 2 * math.pi / n, 0.1, 20.0, t=10.0)
    assert cm.update(10.0)
    assert cm.cost_at(3.0, 3.0)[0] == LETHAL
    # inscribed by the footprint (0.4 m), then a soft margin of obstacle_clearance_m (0.6 m)
    assert cm.cost_at(2.7, 3.0)[0] == INSCRIBED
    assert cm.cost_at(2.45, 3.0)[0] == cm.cost_at(2.1, 3.0)[0] == 252
    assert 0 < cm.cost_at(1.9, 3.0)[0] < 252
    why = cm.forbidden_reason(3.0, 3.0)
    assert why.code == "obstacle" and "perceived" in why.message
    # the obstacle moved away: the beam now passes through the cell, clearing it
    ranges[0] = 4.5
    cm.integrate_scan((1.0, 3.0, 0.0), ranges, 0.0, 2 * math.pi / n, 0.1, 20.0, t=11.0)
    cm.update(11.0)
    assert cm.cost_at(3.0, 3.0)[0] < INSCRIBED
    # hits beyond obstacle_max_range_m (4 m) are not marked
    assert cm.cost_at(5.5, 3.0)[0] < INSCRIBED
    # a mark not seen again decays
    ranges[0] = 1.0
    cm.integrate_scan((1.0, 3.0, 0.0), ranges, 0.0, 2 * math.pi / n, 0.1, 20.0, t=20.0)
    cm.update(20.0)
    assert cm.cost_at(2.0, 3.0)[0] == LETHAL
    cm.update(20.0 + CostmapConfig().obstacle_decay_s + 0.1)
    assert cm.cost_at(2.0, 3.0)[0] < INSCRIBED


def test_marks_on_mapped_structure_are_not_grown():
    occ = np.zeros((120, 120), bool)
    occ[:, 60:62] = True                              # a wall along x = 3.0..3.1
    cm = Costmap(occ, 0.0, 0.0, CostmapConfig())
    cm.mark(np.array([2.95]), np.array([3.0]), 1.0)   # the wall's face, seen by the lidar
    cm.mark(np.array([1.0]), np.array([1.0]), 1.0)    # a crate in the open
    cm.update(1.0)
    assert cm.cost_at(2.95, 3.0)[0] == LETHAL         # marked
    assert cm.cost_at(2.45, 3.0)[0] < 252             # but no margin off the mapped wall
    assert cm.cost_at(1.5, 1.0)[0] == 252             # the crate has one


def test_local_grid_in_a_rotated_frame():
    cm = empty()
    grid = np.zeros((20, 20), np.int8)               # 1 m x 1 m at 5 cm
    grid[10, 15] = 100                               # local (0.775, 0.525)
    grid[0, 0] = -1
    # grid origin at (3, 2) rotated by 90 deg: local (lx, ly) -> (3 - ly, 2 + lx)
    cm.integrate_grid(grid, (3.0, 2.0, math.pi / 2), RES, t=1.0)
    cm.update(1.0)
    assert cm.cost_at(3.0 - 0.525, 2.0 + 0.775)[0] == LETHAL
    assert cm.occupancy_values()[cm.cell(3.0 - 0.525, 2.0 + 0.775)] == 100


def test_bad_inputs_are_refused_with_a_reason():
    cm = empty()
    with pytest.raises(SitebotError, match="1-D"):
        cm.integrate_scan((0, 0, 0), np.zeros((2, 2)), 0, 0.1, 0.1, 10, 0.0)
    with pytest.raises(SitebotError, match="non-finite"):
        cm.integrate_scan((math.nan, 0, 0), np.ones(5), 0, 0.1, 0.1, 10, 0.0)
    with pytest.raises(SitebotError, match="2-D"):
        cm.integrate_grid(np.zeros(5), (0, 0, 0), 0.05, 0.0)
    with pytest.raises(SitebotError, match="resolution"):
        cm.integrate_grid(np.zeros((2, 2)), (0, 0, 0), 0.0, 0.0)
    with pytest.raises(SitebotError, match="inflation_radius_m"):
        CostmapConfig(inflation_radius_m=0.2)
    assert cm.forbidden_reason(math.nan, 1.0).code == "invalid"
    assert cm.forbidden_reason(-1.0, 1.0).code == "outside_map"
    # NaN scan readings only clear, never mark
    assert cm.integrate_scan((1, 1, 0), np.full(10, np.nan), 0, 0.1, 0.1, 10, 0.0) == 0


def test_world_costmaps_leave_every_allowed_place_free():
    for name in ("substation", "construction", "datacentre"):
        w = load_bundle(name)
        cm = Costmap.from_site(w)
        assert cm.res == RES
        for p in w.registry.places:
            why = cm.forbidden_reason(p.x, p.y)
            in_restricted = any(z.kind is ZoneKind.RESTRICTED and z.contains(p.x, p.y)
                                for z in w.registry.zones)
            assert (why is not None) == in_restricted, f"{name}/{p.id}: {why}"
        s = w.starts["robot1"]
        assert cm.forbidden_reason(s.x, s.y) is None


def test_map_topic_values_with_unknown_space():
    v = np.zeros((40, 40), np.int8)
    v[:, :12] = -1
    v[20, 20] = 100
    cm = Costmap.from_occupancy(v, 0.0, 0.0, 0.1, CostmapConfig())   # resampled to 5 cm
    assert cm.shape == (80, 80)
    assert cm.cost_at(0.2, 2.0)[0] == LETHAL                         # unknown is lethal
    assert cm.forbidden_reason(0.2, 2.0).code == "unknown"
    assert cm.cost_at(2.05, 2.05)[0] == LETHAL
    cm2 = Costmap.from_occupancy(v, 0.0, 0.0, 0.1, CostmapConfig(allow_unknown=True))
    assert cm2.cost_at(0.9, 1.0)[0] < INSCRIBED
    assert cm2.occupancy_values()[cm2.cell(0.9, 1.0)] == -1
