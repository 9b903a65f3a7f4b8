"""The demo's map picture (sitebot.viz.map_image): scale, zones blended in their colour, the
true and the estimated path, the legend."""
from __future__ import annotations

import numpy as np

from sitebot.sim.world_loader import load_world
from sitebot.site.registry import ZoneKind
from sitebot.viz.map_image import ESTIMATE_COLOR, TRUE_PATH_COLOR, ZONE_COLORS, draw_map


def px(x: float, y: float, px_per_m: float = 20.0, h: int = 600) -> tuple[int, int]:
    """(row, column) of a substation map point (origin (-15, -15), north up)."""
    return int(h - (y + 15.0) * px_per_m), int((x + 15.0) * px_per_m)


def test_substation_map_picture():
    w = load_world("substation")                     # 30 m x 30 m
    truth = [(0.0, -12.0, -12.0, 0.0), (1.0, -12.0, -8.0, 0.0)]
    estimate = [(0.0, -11.0, -12.0, 0.0), (1.0, -11.0, -8.0, 0.0)]
    img = draw_map(w, truth, estimate)
    assert img.shape == (600, 600, 3) and img.dtype == np.uint8
    assert draw_map(w, truth, estimate, px_per_m=10.0).shape == (300, 300, 3)
    assert tuple(img[px(-12.0, -10.0)]) == TRUE_PATH_COLOR
    assert tuple(img[px(-11.0, -10.0)]) == ESTIMATE_COLOR
    # free floor in the slow zone: 35 % of the zone's colour over the light floor (245)
    want = 0.35 * np.array(ZONE_COLORS[ZoneKind.SLOW]) + 0.65 * 245
    assert np.abs(img[px(-8.5, -10.5)] - want).max() <= 1
    # the keep-out zone is an obstacle of the map (70) under its colour
    want = 0.35 * np.array(ZONE_COLORS[ZoneKind.KEEP_OUT]) + 0.65 * 70
    assert np.abs(img[px(8.0, 8.0)] - want).max() <= 1
    # the legend's first swatch, top left: the true path's colour
    assert tuple(img[16, 17]) == TRUE_PATH_COLOR
    # a path of one sample is not drawn
    bare = draw_map(w, truth[:1], [])
    assert tuple(bare[px(-12.0, -10.0)]) != TRUE_PATH_COLOR
